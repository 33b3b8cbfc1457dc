// A winipc MessageWindow titled <title>, idle between messages. By default it replies with the
// payload's length from `onCopyData` (on the main thread); with `at-once` it has no handler and
// the window thread replies 64 (the sender's payload length) at once.
import { MessageWindow } from "../../mechanisms/copydata.ts";

const [title, mode] = Deno.args;
const _window = mode === "at-once"
  ? new MessageWindow({ title, reply: 64 })
  : new MessageWindow({ title, onCopyData: (m) => m.data.length });
console.log("ready");
