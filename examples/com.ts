// COM automation: drive Scripting.Dictionary late-bound, then call a TypeScript object that
// another process serves in the Running Object Table.
// Run: deno run -A examples/com.ts
import { createObject, getObject, serveObject } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const name = `example-com-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  using _registration = serveObject(name, { Shout: (text: string) => text.toUpperCase() });
  console.log("ready");
  await new Promise((r) => setTimeout(r, 5000));
} else {
  using dict = createObject("Scripting.Dictionary");
  dict.Add("a", 1);
  dict.Add("b", 2);
  console.log(`dictionary has ${dict.Count} keys`);
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  using remote = getObject(name);
  console.log(`the other process says: ${remote.$call("Shout", "hello")}`);
  peer.kill();
  await peer.status;
}
