/**
 * The synchronous peer of `run.ts`: `peer.ts pipe <name>` creates the message-mode pipe
 * `\\.\pipe\<name>` (one instance), `peer.ts tcp <port>` connects to 127.0.0.1:`port`; either
 * way it echoes each message with blocking calls on its main thread (`mechanisms/_floor.ts`, the
 * bench's floor; on TCP, frames of a 4-byte length and the message) until the other end closes.
 *
 * @module
 */
import { FloorPipeServer, floorTcpServe } from "../../mechanisms/_floor.ts";

const [mechanism, where] = Deno.args;
const echo = (message: Uint8Array) => ({ reply: message });
if (mechanism === "pipe" && where) new FloorPipeServer(where, 64).serve(echo);
else if (mechanism === "tcp" && where) floorTcpServe(Number(where), 64, echo);
else throw new Error("usage: peer.ts pipe <name> | peer.ts tcp <port>");
