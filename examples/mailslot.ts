// Mailslots: three writer processes, one reader; one-way datagrams.
// Run: deno run -A examples/mailslot.ts
import { MailslotReader, sendMailslot } from "../mod.ts";

const name = `example-slot-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  sendMailslot(name, `note from writer ${Deno.args[2]}`);
} else {
  using reader = MailslotReader.create(name);
  const writers = [1, 2, 3].map((i) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", import.meta.filename!, "peer", String(Deno.pid), String(i)],
    }).spawn()
  );
  const notes: string[] = [];
  for (let i = 0; i < 3; i++) notes.push(await reader.readText({ timeout: 10_000 }));
  for (const w of writers) await w.status;
  console.log(notes.sort().join("\n"));
}
