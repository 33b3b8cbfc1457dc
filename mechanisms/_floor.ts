/**
 * The floor: each kernel mechanism's ping-pong done with plain synchronous Win32 calls, as a C
 * program makes them: blocking `WriteFile`/`ReadFile` on a message-mode pipe and on mailslots,
 * `SendMessageW(WM_COPYDATA)` into a thread blocked in `GetMessageW`, blocking `send`/`recv` on a
 * TCP socket, and two sequence counters in a mapping for shared memory. `winipc bench --floor`
 * measures these beside winipc's own API in the same run: no Deno library on this system can make
 * a round trip faster than its floor, so the ratio to it says how much of the time is winipc's
 * own.
 *
 * Every call here blocks the calling thread, event loop included. That is the point: the bench's
 * two processes do nothing else while they measure. Internal, not part of the public API; setup
 * failures throw `Win32Error`, and nothing here is hardened against a hostile peer (the peer is
 * the bench's own second process).
 *
 * @module
 */
import {
  checkBool,
  checkHandle,
  checkNonZero,
  isInvalidHandle,
  lastError,
  win32Error,
} from "../ffi/error.ts";
import {
  FILE_SHARE_READ,
  GENERIC_READ,
  GENERIC_WRITE,
  kernel32,
  MAILSLOT_WAIT_FOREVER,
  OPEN_EXISTING,
  PIPE_ACCESS_DUPLEX,
  PIPE_READMODE_MESSAGE,
  PIPE_TYPE_MESSAGE,
  PIPE_WAIT,
} from "../ffi/kernel32.ts";
import { wide } from "../ffi/strings.ts";
import {
  COPYDATASTRUCT,
  MSG,
  user32,
  WM_COPYDATA,
  WM_USER,
  WNDCLASSEXW,
  WNDPROC,
  WS_EX_TOOLWINDOW,
  WS_POPUP,
} from "../ffi/user32.ts";
import {
  AF_INET,
  checkSocket,
  checkSocketResult,
  IPPROTO_TCP,
  SOCK_STREAM,
  TCP_NODELAY,
  ws2,
} from "../ffi/ws2_32.ts";
import { SharedMemory } from "./shm.ts";

/** One end of a floor connection. Replies are views, valid until the next call. */
export interface FloorEnd {
  /** Sends a message and waits for the reply. */
  roundTrip(message: Uint8Array): Uint8Array;
  /** Sends a message that gets no reply. */
  send(message: Uint8Array): void;
  /** Waits for one message (on mechanisms where the peer's last reply was kept, that one). */
  receive(): Uint8Array;
  /** Releases the handles. */
  close(): void;
}

/** What a floor server does with each message: its reply, if any, and whether it was the last. */
export type FloorHandler = (message: Uint8Array) => { reply?: Uint8Array; last?: boolean };

const ERROR_BROKEN_PIPE = 109;
const ERROR_PIPE_CONNECTED = 535;
const ERROR_PIPE_BUSY = 231;
const ERROR_FILE_NOT_FOUND = 2;

function buffer(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Math.max(size, 64));
}

function writeAll(handle: Deno.PointerObject, data: Uint8Array, what: string): void {
  const written = new Uint32Array(1);
  checkBool(
    kernel32().WriteFile(handle, data as Uint8Array<ArrayBuffer>, data.length, written, null),
    "WriteFile",
    what,
  );
}

/** Opens an existing pipe or mailslot, retrying briefly while the server gets there (setup only). */
function openExisting(path: string, access: number, share: number): Deno.PointerObject {
  const k = kernel32();
  for (let attempt = 0;; attempt++) {
    const handle = k.CreateFileW(wide(path), access, share, null, OPEN_EXISTING, 0, null);
    // INVALID_HANDLE_VALUE reads as 2^64 - 1 through a "pointer" result, never as -1n.
    if (!isInvalidHandle(handle)) return checkHandle(handle, "CreateFileW");
    const code = lastError();
    if ((code !== ERROR_PIPE_BUSY && code !== ERROR_FILE_NOT_FOUND) || attempt === 500) {
      throw win32Error("CreateFileW", code, { context: `Cannot open "${path}"` });
    }
    k.Sleep(10);
  }
}

/** A message-mode pipe server with one instance, synchronous I/O. */
export class FloorPipeServer {
  readonly #pipe: Deno.PointerObject;
  readonly #buffer: Uint8Array<ArrayBuffer>;

  /** Creates `\\.\pipe\<name>` with buffers of at least `size` bytes. */
  constructor(name: string, size: number) {
    const buffers = Math.max(65536, size);
    this.#pipe = checkHandle(
      kernel32().CreateNamedPipeW(
        wide(`\\\\.\\pipe\\${name}`),
        PIPE_ACCESS_DUPLEX,
        PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
        1,
        buffers,
        buffers,
        0,
        null,
      ),
      "CreateNamedPipeW",
    );
    this.#buffer = buffer(size);
  }

  /** Waits for the client, then answers its messages until it disconnects. */
  serve(handler: FloorHandler): void {
    const k = kernel32();
    try {
      if (!k.ConnectNamedPipe(this.#pipe, null) && lastError() !== ERROR_PIPE_CONNECTED) {
        throw win32Error("ConnectNamedPipe", lastError());
      }
      const read = new Uint32Array(1);
      for (;;) {
        if (!k.ReadFile(this.#pipe, this.#buffer, this.#buffer.length, read, null)) {
          const code = lastError();
          if (code === ERROR_BROKEN_PIPE) return;
          throw win32Error("ReadFile", code);
        }
        const { reply, last } = handler(this.#buffer.subarray(0, read[0]));
        if (reply) writeAll(this.#pipe, reply, "Cannot reply");
        if (last) return;
      }
    } finally {
      k.CloseHandle(this.#pipe);
    }
  }
}

/** Connects to a {@linkcode FloorPipeServer}, in message mode. */
export function floorPipeConnect(name: string, size: number): FloorEnd {
  const k = kernel32();
  const pipe = openExisting(`\\\\.\\pipe\\${name}`, (GENERIC_READ | GENERIC_WRITE) >>> 0, 0);
  checkBool(
    k.SetNamedPipeHandleState(pipe, new Uint32Array([PIPE_READMODE_MESSAGE]), null, null),
    "SetNamedPipeHandleState",
  );
  const reply = buffer(size);
  const read = new Uint32Array(1);
  const receive = () => {
    checkBool(k.ReadFile(pipe, reply, reply.length, read, null), "ReadFile");
    return reply.subarray(0, read[0]);
  };
  return {
    roundTrip(message) {
      writeAll(pipe, message, "Cannot send");
      return receive();
    },
    send: (message) => writeAll(pipe, message, "Cannot send"),
    receive,
    close: () => void k.CloseHandle(pipe),
  };
}

/** A mailslot's reading end, synchronous, waiting forever. */
export class FloorMailslot {
  readonly #slot: Deno.PointerObject;
  readonly #buffer: Uint8Array<ArrayBuffer>;

  /** Creates `\\.\mailslot\<name>` for messages of up to `size` bytes. */
  constructor(name: string, size: number) {
    this.#slot = checkHandle(
      kernel32().CreateMailslotW(wide(`\\\\.\\mailslot\\${name}`), 0, MAILSLOT_WAIT_FOREVER, null),
      "CreateMailslotW",
    );
    this.#buffer = buffer(size);
  }

  /** Waits for the next message. */
  read(): Uint8Array {
    const read = new Uint32Array(1);
    checkBool(
      kernel32().ReadFile(this.#slot, this.#buffer, this.#buffer.length, read, null),
      "ReadFile",
    );
    return this.#buffer.subarray(0, read[0]);
  }

  /** Closes the mailslot. */
  close(): void {
    kernel32().CloseHandle(this.#slot);
  }
}

/** A writer to `\\.\mailslot\<name>`: `write` sends one message. */
export function floorMailslotWriter(name: string): { write(m: Uint8Array): void; close(): void } {
  const file = openExisting(`\\\\.\\mailslot\\${name}`, GENERIC_WRITE, FILE_SHARE_READ);
  return {
    write: (message) => writeAll(file, message, "Cannot send"),
    close: () => void kernel32().CloseHandle(file),
  };
}

/** Answers mailslot messages from `there` through the mailslot `back`. */
export function floorMailslotServe(
  inbox: FloorMailslot,
  back: string,
  handler: FloorHandler,
): void {
  const out = floorMailslotWriter(back);
  try {
    for (;;) {
      const { reply, last } = handler(inbox.read());
      if (reply) out.write(reply);
      if (last) return;
    }
  } finally {
    out.close();
    inbox.close();
  }
}

/**
 * A hidden top-level window titled `title` whose thread blocks in `GetMessageW` (WM_COPYDATA is a
 * sent message: the window procedure runs inside that call). Each payload goes to `handler`; the
 * reply value is the payload's length.
 */
export function floorWindowServe(title: string, handler: FloorHandler, ready: () => void): void {
  const u = user32();
  const instance = kernel32().GetModuleHandleW(null);
  const className = wide(`winipc.floor.${Deno.pid}.${Date.now()}`);
  let done = false;
  let failure: unknown;
  const procedure = new Deno.UnsafeCallback(WNDPROC, (hwnd, message, wParam, lParam) => {
    if (message !== WM_COPYDATA || done) return u.DefWindowProcW(hwnd, message, wParam, lParam);
    try {
      const cds = new Deno.UnsafePointerView(Deno.UnsafePointer.create(BigInt(lParam))!);
      const length = cds.getUint32(COPYDATASTRUCT.offsetOf("cbData"));
      const data = cds.getPointer(COPYDATASTRUCT.offsetOf("lpData"));
      const payload = length && data
        ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(data, length))
        : new Uint8Array(0);
      if (handler(payload).last) {
        done = true;
        u.PostMessageW(hwnd, WM_USER, 0n, 0n); // GetMessageW returns for a posted message
      }
      return BigInt(length);
    } catch (e) {
      failure = e;
      done = true;
      u.PostMessageW(hwnd, WM_USER, 0n, 0n);
      return 0n;
    }
  });
  const cls = WNDCLASSEXW.alloc({
    cbSize: WNDCLASSEXW.size,
    lpfnWndProc: procedure.pointer,
    hInstance: instance,
    lpszClassName: Deno.UnsafePointer.of(className),
  });
  checkNonZero(u.RegisterClassExW(cls), "RegisterClassExW");
  const hwnd = checkHandle(
    u.CreateWindowExW(
      WS_EX_TOOLWINDOW,
      className,
      wide(title),
      WS_POPUP,
      0,
      0,
      0,
      0,
      null,
      null,
      instance,
      null,
    ),
    "CreateWindowExW",
  );
  try {
    ready();
    const msg = new Uint8Array(MSG.size);
    while (!done && u.GetMessageW(msg, null, 0, 0) > 0) {
      // only posted messages return here; the sent WM_COPYDATA ran inside GetMessageW
    }
    if (failure) throw failure;
  } finally {
    u.DestroyWindow(hwnd);
    u.UnregisterClassW(className, instance);
    procedure.close();
  }
}

/** Sends WM_COPYDATA to the window titled `title` with `SendMessageW` (no timeout). */
export function floorCopyDataConnect(title: string): FloorEnd {
  const u = user32();
  let hwnd: Deno.PointerValue = null;
  for (let attempt = 0; hwnd === null && attempt < 500; attempt++) {
    hwnd = u.FindWindowW(null, wide(title));
    if (hwnd === null) kernel32().Sleep(10);
  }
  if (hwnd === null) throw new Error(`No window "${title}"`);
  const cds = new Uint8Array(COPYDATASTRUCT.size);
  const view = new DataView(cds.buffer);
  const cdsValue = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(cds)));
  let last: Uint8Array = new Uint8Array(0);
  const send = (message: Uint8Array) => {
    view.setUint32(COPYDATASTRUCT.offsetOf("cbData"), message.length, true);
    view.setBigUint64(
      COPYDATASTRUCT.offsetOf("lpData"),
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(message as Uint8Array<ArrayBuffer>))),
      true,
    );
    const reply = u.SendMessageW(hwnd, WM_COPYDATA, 0n, cdsValue);
    if (Number(reply) !== message.length) throw new Error(`copydata floor: reply ${reply}`);
    last = message;
  };
  return {
    roundTrip(message) {
      send(message);
      return message;
    },
    send,
    receive: () => last,
    close() {},
  };
}

/** A blocking TCP socket, with length-prefixed frames. */
class FloorSocket implements FloorEnd {
  readonly #socket: bigint;
  #buffer: Uint8Array<ArrayBuffer>;
  readonly #header = new Uint8Array(4);

  constructor(socket: bigint, size: number) {
    this.#socket = socket;
    this.#buffer = buffer(size + 4);
    const on = new Uint32Array([1]);
    checkSocketResult(
      ws2().setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, new Uint8Array(on.buffer), 4),
      "setsockopt",
    );
  }

  #recvExactly(into: Uint8Array<ArrayBuffer>, length: number): boolean {
    for (let got = 0; got < length;) {
      const n = ws2().recv(this.#socket, into.subarray(got, length), length - got, 0);
      if (n === 0) return false;
      got += checkSocketResult(n, "recv");
    }
    return true;
  }

  /** The next frame, or null at the end of the stream. */
  next(): Uint8Array | null {
    if (!this.#recvExactly(this.#header, 4)) return null;
    const length = new DataView(this.#header.buffer).getUint32(0, true);
    if (length + 4 > this.#buffer.length) this.#buffer = buffer(length + 4);
    if (!this.#recvExactly(this.#buffer, length)) return null;
    return this.#buffer.subarray(0, length);
  }

  send(message: Uint8Array): void {
    const frame = new Uint8Array(4 + message.length);
    new DataView(frame.buffer).setUint32(0, message.length, true);
    frame.set(message, 4);
    for (let sent = 0; sent < frame.length;) {
      sent += checkSocketResult(
        ws2().send(this.#socket, frame.subarray(sent), frame.length - sent, 0),
        "send",
      );
    }
  }

  roundTrip(message: Uint8Array): Uint8Array {
    this.send(message);
    return this.receive();
  }

  receive(): Uint8Array {
    const frame = this.next();
    if (frame === null) throw new Deno.errors.UnexpectedEof("The floor peer closed the socket");
    return frame;
  }

  close(): void {
    ws2().closesocket(this.#socket);
  }
}

function loopback(port: number): Uint8Array<ArrayBuffer> {
  const address = new Uint8Array(16);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  address.set([127, 0, 0, 1], 4);
  return address;
}

/** A blocking TCP listener on 127.0.0.1 (an ephemeral port). */
export class FloorTcpListener {
  readonly #socket: bigint;
  /** The port it listens on. */
  readonly port: number;

  /** Listens on 127.0.0.1, any free port. */
  constructor() {
    const w = ws2();
    this.#socket = checkSocket(w.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket");
    const address = loopback(0);
    checkSocketResult(w.bind(this.#socket, address, address.length), "bind");
    checkSocketResult(w.listen(this.#socket, 1), "listen");
    const length = new Int32Array([address.length]);
    checkSocketResult(w.getsockname(this.#socket, address, length), "getsockname");
    this.port = new DataView(address.buffer).getUint16(2, false);
  }

  /** Waits for one connection, then stops listening. */
  accept(size: number): FloorEnd {
    const w = ws2();
    try {
      const conn = checkSocket(w.accept(this.#socket, null, null), "accept");
      return new FloorSocket(conn, size);
    } finally {
      w.closesocket(this.#socket);
    }
  }
}

/** Connects to 127.0.0.1:`port` and answers frames until the other side closes. */
export function floorTcpServe(port: number, size: number, handler: FloorHandler): void {
  const w = ws2();
  const socket = checkSocket(w.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket");
  const address = loopback(port);
  checkSocketResult(w.connect(socket, address, address.length), "connect");
  const conn = new FloorSocket(socket, size);
  try {
    for (let frame; (frame = conn.next()) !== null;) {
      const { reply, last } = handler(frame);
      if (reply) conn.send(reply);
      if (last) return;
    }
  } finally {
    conn.close();
  }
}

/**
 * Shared memory with nothing but two sequence counters: the client writes a request and bumps
 * one, the server spins until it moves, writes the reply and bumps the other. Spinning both ways,
 * no wake-up, no FFI call: the floor of any shared-memory channel.
 */
const SHM_HEADER = 64;
const REQUEST_SEQ = 0;
const REQUEST_LENGTH = 1;
const REPLY_SEQ = 4;
const REPLY_LENGTH = 5;
/** A spinning side gives up after this long without a message (its peer is gone). */
const SHM_IDLE_MS = 30_000;

function shmLayout(size: number): { request: number; reply: number; total: number } {
  const slot = Math.ceil(Math.max(size, 64) / 64) * 64;
  return { request: SHM_HEADER, reply: SHM_HEADER + slot, total: SHM_HEADER + 2 * slot };
}

function spinUntil(words: Int32Array, index: number, value: number): void {
  let checkAt = 1 << 16;
  let deadline = 0;
  for (let i = 0; Atomics.load(words, index) !== value; i++) {
    if (i === checkAt) {
      checkAt += 1 << 16;
      const now = performance.now();
      if (deadline === 0) deadline = now + SHM_IDLE_MS;
      else if (now > deadline) throw new Deno.errors.TimedOut("The floor peer stopped answering");
    }
  }
}

/** Creates the floor's mapping, and returns the client's end of it. */
export function floorShmCreate(name: string, size: number): FloorEnd {
  const layout = shmLayout(size);
  const shm = SharedMemory.create(name, { size: layout.total });
  const bytes = shm.view.bytes;
  const words = shm.view.int32Array(0, SHM_HEADER / 4);
  let seq = 0;
  const send = (message: Uint8Array) => {
    bytes.set(message, layout.request);
    words[REQUEST_LENGTH] = message.length;
    Atomics.store(words, REQUEST_SEQ, ++seq);
    spinUntil(words, REPLY_SEQ, seq);
  };
  const reply = () => bytes.subarray(layout.reply, layout.reply + words[REPLY_LENGTH]);
  return {
    roundTrip(message) {
      send(message);
      return reply();
    },
    send,
    receive: reply,
    close: () => shm.close(),
  };
}

/** Opens the floor's mapping and answers requests until the last one. */
export function floorShmServe(name: string, size: number, handler: FloorHandler): void {
  const layout = shmLayout(size);
  using shm = SharedMemory.open(name);
  const bytes = shm.view.bytes;
  const words = shm.view.int32Array(0, SHM_HEADER / 4);
  for (let seq = 1;; seq++) {
    spinUntil(words, REQUEST_SEQ, seq);
    const length = Math.min(words[REQUEST_LENGTH] >>> 0, layout.reply - layout.request);
    const { reply, last } = handler(bytes.subarray(layout.request, layout.request + length));
    if (reply) {
      bytes.set(reply, layout.reply);
      words[REPLY_LENGTH] = reply.length;
    } else {
      words[REPLY_LENGTH] = 0;
    }
    Atomics.store(words, REPLY_SEQ, seq);
    if (last) return;
  }
}
