/**
 * The peer of `run.ts`: `peer.ts pipe <name> [how]` creates the message-mode pipe
 * `\\.\pipe\<name>` (one instance), `peer.ts tcp <port> [how]` connects to 127.0.0.1:`port`
 * (frames of a 4-byte length and the message, `TCP_NODELAY`); either way it echoes each message
 * until the other end closes. `how`:
 *
 * - `sync` (default): blocking calls on its main thread (`mechanisms/_floor.ts`, the bench's
 *   floor);
 * - `nonblocking`: each read a `nonblocking` FFI call on the synchronous handle, each reply a
 *   blocking write (the `nonblocking-ffi` variant's design, on this side too);
 * - `winipc`: winipc's `NamedPipeServer` or `connect()` (the `winipc` variant's, as the bench's
 *   peer).
 *
 * @module
 */
import { checkBool, checkHandle, lastError } from "../../ffi/error.ts";
import {
  kernel32,
  PIPE_ACCESS_DUPLEX,
  PIPE_READMODE_MESSAGE,
  PIPE_TYPE_MESSAGE,
  PIPE_WAIT,
} from "../../ffi/kernel32.ts";
import { wide } from "../../ffi/strings.ts";
import {
  AF_INET,
  checkSocket,
  checkSocketResult,
  IPPROTO_TCP,
  SOCK_STREAM,
  TCP_NODELAY,
  ws2,
} from "../../ffi/ws2_32.ts";
import { FloorPipeServer, floorTcpServe } from "../../mechanisms/_floor.ts";
import { NamedPipeServer } from "../../mechanisms/pipe.ts";
import { connect } from "../../mechanisms/socket.ts";

const [mechanism, where, how = "sync"] = Deno.args;
if (!(mechanism === "pipe" || mechanism === "tcp") || !where) {
  throw new Error("usage: peer.ts pipe <name> | tcp <port> [sync|nonblocking|winipc]");
}
const FRAME = 4 + 64;
const ERROR_PIPE_CONNECTED = 535;
const echo = (message: Uint8Array) => ({ reply: message });
const buffer = new Uint8Array(4096);

if (how === "sync") {
  if (mechanism === "pipe") new FloorPipeServer(where, 64).serve(echo);
  else floorTcpServe(Number(where), 64, echo);
} else if (how === "nonblocking" && mechanism === "pipe") {
  const k = kernel32();
  const pipe = checkHandle(
    k.CreateNamedPipeW(
      wide(`\\\\.\\pipe\\${where}`),
      PIPE_ACCESS_DUPLEX,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
      1,
      65536,
      65536,
      0,
      null,
    ),
    "CreateNamedPipeW",
  );
  if (!k.ConnectNamedPipe(pipe, null) && lastError() !== ERROR_PIPE_CONNECTED) {
    throw new Error(`ConnectNamedPipe failed: ${lastError()}`);
  }
  const count = new Uint32Array(1);
  while (await k.ReadFileAsync(pipe, buffer, buffer.length, count, null)) {
    checkBool(k.WriteFile(pipe, buffer, count[0], count, null), "WriteFile");
  }
  // a failed read (the pool thread's error is not this thread's to read) is taken as the end
  k.CloseHandle(pipe);
} else if (how === "nonblocking") {
  const w = ws2();
  const recv = Deno.dlopen("ws2_32.dll", {
    recv: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  }).symbols.recv;
  const socket = checkSocket(w.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket");
  const address = new Uint8Array(16);
  new DataView(address.buffer).setUint16(0, AF_INET, true);
  new DataView(address.buffer).setUint16(2, Number(where), false);
  address.set([127, 0, 0, 1], 4);
  checkSocketResult(w.connect(socket, address, address.length), "connect");
  const on = new Uint8Array(new Uint32Array([1]).buffer);
  checkSocketResult(w.setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, on, 4), "setsockopt");
  serve: for (;;) {
    for (let got = 0; got < FRAME;) {
      const n = await recv(socket, buffer.subarray(got), FRAME - got, 0);
      if (n <= 0) break serve;
      got += n;
    }
    checkSocketResult(w.send(socket, buffer, FRAME, 0), "send");
  }
  w.closesocket(socket);
} else if (how === "winipc" && mechanism === "pipe") {
  using server = NamedPipeServer.listen(where, { mode: "message", maxInstances: 1 });
  using conn = await server.accept();
  for (let message; (message = await conn.readMessage()) !== null;) await conn.write(message);
} else if (how === "winipc") {
  await using conn = await connect({ hostname: "127.0.0.1", port: Number(where), noDelay: true });
  serve: for (;;) {
    for (let got = 0; got < FRAME;) {
      const n = await conn.read(buffer.subarray(got, FRAME));
      if (n === null) break serve;
      got += n;
    }
    await conn.write(buffer.subarray(0, FRAME));
  }
} else {
  throw new Error(`unknown peer kind ${how}`);
}
