/**
 * The synchronous peer of `run.ts`: `peer.ts <pipe name>`. Creates the message-mode pipe
 * `\\.\pipe\<name>` (one instance) with `mechanisms/_floor.ts` and echoes each message with
 * blocking `ReadFile`/`WriteFile` on its main thread until the client disconnects.
 *
 * @module
 */
import { FloorPipeServer } from "../../mechanisms/_floor.ts";

const [name] = Deno.args;
if (!name) throw new Error("usage: peer.ts <pipe name>");
new FloorPipeServer(name, 64).serve((message) => ({ reply: message }));
