// Microsoft RPC through rpcrt4 (ncalrpc), no MIDL: a server process and a client.
// Run: deno run -A examples/msrpc.ts
import { MsRpcClient, MsRpcServer, NdrReader, NdrWriter } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const iface = { uuid: "7a1c2e9b-55d4-4e0f-8a61-2b9f3c4d5e6f", version: [1, 0] as [number, number] };
const endpoint = `example-msrpc-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  using _server = MsRpcServer.listen({
    ...iface,
    endpoint,
    procedures: [(request, response) => void response.long(request.long() * request.long())],
  });
  console.log("ready");
  await new Promise((r) => setTimeout(r, 5000));
} else {
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  using client = MsRpcClient.connect({ ...iface, endpoint });
  const reply = await client.call(0, new NdrWriter().long(6).long(7).bytes());
  console.log(`6 x 7 = ${new NdrReader(reply).long()} (computed in another process)`);
  peer.kill();
  await peer.status;
}
