// The clipboard: text set here is read by another process.
// Run: deno run -A examples/clipboard.ts
import { clipboard } from "../mod.ts";

if (Deno.args[0] === "peer") {
  console.log(`the other process read: ${await clipboard.readText()}`);
} else {
  await clipboard.writeText("héllo ✓ from the clipboard example");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", import.meta.filename!, "peer"],
  }).output();
  await Deno.stdout.write(out.stdout);
}
