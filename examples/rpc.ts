// Typed RPC between two processes: a zod schema checked on both sides.
// Run: deno run -A examples/rpc.ts
import { z } from "zod";
import { defineProcedures, RpcClient, RpcServer } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const api = defineProcedures({
  greet: { params: z.object({ name: z.string().min(1) }), result: z.string() },
});
const name = `example-rpc-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  await using _server = await RpcServer.listen(name, api, {
    greet: ({ name }) => `hello, ${name}`,
  });
  console.log("ready");
  await new Promise((r) => setTimeout(r, 5000));
} else {
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  await using client = await RpcClient.connect(name, api);
  console.log(await client.call("greet", { name: "Ada" }));
  try {
    await client.call("greet", { name: "" });
  } catch (e) {
    console.log(`rejected: ${(e as Error).message}`);
  }
  peer.kill();
  await peer.status;
}
