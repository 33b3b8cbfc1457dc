// Named pipes: a message-mode server in another process, a client that transacts with it.
// Run: deno run -A examples/pipe.ts
import { NamedPipeClient, NamedPipeServer } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const name = `example-pipe-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  using server = NamedPipeServer.listen(name, { mode: "message" });
  console.log("ready");
  for await (const conn of server) {
    await using _conn = conn;
    const request = await conn.readMessage();
    await conn.write(`you said: ${new TextDecoder().decode(request!)}`);
    break;
  }
} else {
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  await using client = await NamedPipeClient.connect(name, { mode: "message", timeout: 10_000 });
  console.log(new TextDecoder().decode(await client.transact("hello")));
  await peer.status;
}
