// WM_COPYDATA: a hidden window in another process receives a payload and replies with a number.
// Run: deno run -A examples/copydata.ts
import { MessageWindow, sendCopyData } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const title = `example-copydata-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  const window = new MessageWindow({ title, onCopyData: (m) => m.text().length });
  console.log("ready");
  for await (const message of window) {
    if (message.text() === "bye") break;
  }
  window.close();
} else {
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  const reply = await sendCopyData(title, "héllo from another process");
  console.log(`the receiver counted ${reply} characters`);
  await sendCopyData(title, "bye");
  await peer.status;
}
