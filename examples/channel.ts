// The shared-memory message channel: 10,000 messages to another process and back.
// Run: deno run -A examples/channel.ts
import { ShmChannel } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const name = `Local\\example-channel-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  await using channel = await ShmChannel.open(name);
  console.log("ready");
  for await (const message of channel) await channel.send(message); // echo until the end
} else {
  await using channel = await ShmChannel.create(name);
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  let sum = 0;
  for (let i = 0; i < 10_000; i++) {
    await channel.send(new Uint8Array(new Uint32Array([i]).buffer));
    const reply = await channel.receive();
    sum += new Uint32Array(reply!.slice().buffer)[0];
  }
  await channel.closeWrite(); // the peer's loop ends
  await peer.status;
  console.log(`10000 round trips, sum of the echoed numbers: ${sum}`);
}
