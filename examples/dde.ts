// DDE: a server in another process serves an item; this process pokes it, then requests it.
// Run: deno run -A examples/dde.ts
import { DdeClient, DdeServer } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const service = `example-dde-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  const items = new Map<string, string>([["price", "1.0832"]]);
  const server = new DdeServer(service, {
    topics: ["EURUSD"],
    // DDE item names are case-insensitive (atoms): "Price" and "price" are one item
    request: (_topic, item) => items.get(item.toLowerCase()),
    poke: (_topic, item, data) => void items.set(item.toLowerCase(), data.text()),
  });
  console.log("ready");
  await new Promise((r) => setTimeout(r, 5000));
  server.close();
} else {
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  await using client = await DdeClient.connect(service, "EURUSD");
  console.log(`price: ${await client.request("price")}`);
  await client.poke("price", "1.0901");
  console.log(`after poke: ${await client.request("price")}`);
  peer.kill();
  await peer.status;
}
