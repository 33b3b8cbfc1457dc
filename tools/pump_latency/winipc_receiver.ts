// A winipc MessageWindow titled <title>, idle between messages: replies with the payload's length.
import { MessageWindow } from "../../mechanisms/copydata.ts";

const [title] = Deno.args;
const _window = new MessageWindow({ title, onCopyData: (m) => m.data.length });
console.log("ready");
