/**
 * TCP and UDP over Windows Sockets (ws2_32), with a `Deno.listen`/`Deno.connect`-like API:
 * {@linkcode listen} gives an async iterable of {@linkcode TcpConn}s, {@linkcode connect} dials
 * out, {@linkcode listenDatagram} sends and receives UDP datagrams. IPv4 and IPv6.
 *
 * How it stays off the event loop: every socket is made with `WSA_FLAG_OVERLAPPED` and runs its
 * I/O through the process's I/O completion port (`mechanisms/_io.ts`): `WSARecv`/`WSASend` on a
 * connection, `WSARecvFrom`/`WSASendTo` on a UDP socket, and the extension functions `AcceptEx`
 * and `ConnectEx` (found with `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)`) for accepting and
 * connecting. Each operation is issued on this thread; one that Winsock completes at once costs
 * no completion packet (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`, set when the socket is first
 * associated with the port), and one that pends is completed by the core's one
 * `GetQueuedCompletionStatusEx` wait, shared with every pipe and serial port of the process: any
 * number of waiting sockets cost one worker thread.
 *
 * Status comes from each operation's own result: `WSAGetLastError` right after an operation that
 * failed at once, `WSAGetOverlappedResult` for one that completed later (it gives the WSA code,
 * `WSAECONNRESET`, where `GetOverlappedResult` says `ERROR_NETNAME_DELETED`). Only a receive that
 * completes with 0 bytes (the peer's orderly shutdown) is the end of the stream; every other
 * failure is a {@linkcode Win32Error} naming the function (`WSARecv`, `WSASend`, `AcceptEx`,
 * `ConnectEx`, ...) and the code. `close()` cancels the operations in flight (`CancelIoEx`); they
 * end with `BadResource`, and `closesocket` runs once the last of them has its completion, so no
 * buffer or `OVERLAPPED` is released while the kernel may still write to it.
 *
 * Measured under Wine 10 (deno.exe 2.9.6, 2026-12-02): sockets associate with the completion port,
 * pending `WSARecv`s complete through it, `SetFileCompletionNotificationModes` works on them (a send
 * or receive that completes at once posts no packet, nor does a UDP receive that fails at once
 * with `WSAEMSGSIZE`), `CancelIoEx` ends a pending receive with `WSA_OPERATION_ABORTED`, a reset
 * peer ends it with `WSAECONNRESET`, and both extension functions are found. A packet for an
 * operation that already completed at once would be dropped by the core; each socket reuses its
 * own `OVERLAPPED`s, so such a packet never points at freed memory.
 *
 * Before this, sockets were non-blocking and waited for readiness in one shared `WSAPoll` on a
 * worker thread. Both designs measured under Wine 10 (deno.exe 2.9.6, 2026-12-02, a loaded 2-core
 * machine, load average 3 to 8), 68-byte round trips to a `Deno.listen` echo server in another
 * process, the two designs interleaved in one process in blocks of 100, 2,000 each, three runs
 * per row:
 *
 * | design | p50 µs | p90 µs |
 * |---|---|---|
 * | `WSAPoll` readiness, then `recv`/`send` (before) | 169–212 | 212–264 |
 * | overlapped, association tried before every operation | 183–195 | 282–317 |
 * | overlapped, each socket associated once (this module) | 172–208 | 237–275 |
 *
 * (The first two rows come from one set of runs, the first and third from another.) Trying to
 * associate an associated socket again costs about 5 µs under Wine, twice per round trip, so
 * each socket associates once (the `associated` option of `_io.ts`'s `run`). What is left of the
 * p90 gap is Wine's: it completes a socket's pending receive in the thread that issued it (the
 * server queues it a system APC, and interrupts the main thread, busy in Deno's event loop, to
 * run the `recv`), then posts the packet that wakes the core's worker-thread wait, which wakes the
 * main thread again; with `WSAPoll` the worker wakes, then the main thread `recv`s.
 * `winipc bench --mechanism socket --size 64 --floor` (both processes on winipc sockets, so two
 * pending receives per round trip), the two designs in alternated runs, load average about 4:
 * p50 229, 240, 232, 297 µs before, 454, 260, 268, 294 µs after (floors 82–155 µs): under Wine
 * the overlapped design is no faster, and by these runs somewhat slower.
 * On Windows the completion port is the native path (the kernel completes the receive, no
 * thread of the process runs it), and `WSAPoll` there is known not to report a failed
 * non-blocking connect on older Windows 10 releases, which `ConnectEx` reports as its own status.
 *
 * Errors are {@linkcode Win32Error}s named from `WSAGetLastError` (`WSAECONNREFUSED`,
 * `WSAEADDRINUSE`, ...), read synchronously right after the failing call.
 *
 * @example An echo server and a client
 * ```ts
 * import { connect, listen } from "./socket.ts";
 * const listener = await listen({ port: 0, hostname: "127.0.0.1" });
 * (async () => {
 *   for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * })();
 * using conn = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * await conn.write(new TextEncoder().encode("hi"));
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkCode, Win32Error, win32Error } from "../ffi/error.ts";
import { wide } from "../ffi/strings.ts";
import {
  ADDRINFOW,
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  AI_PASSIVE,
  byteSwap16,
  checkSocket,
  checkSocketResult,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SD_SEND,
  SO_EXCLUSIVEADDRUSE,
  SO_LINGER,
  SO_REUSEADDR,
  SO_UPDATE_ACCEPT_CONTEXT,
  SO_UPDATE_CONNECT_CONTEXT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  SOCKADDR_STORAGE_SIZE,
  SOL_SOCKET,
  TCP_NODELAY,
  ws2,
  WSA_FLAG_OVERLAPPED,
  WSA_IO_PENDING,
  WSABUF,
  WSAECONNRESET,
  WSAEMSGSIZE,
  WSAENOTCONN,
  wsaExtension,
  type WsaExtensionName,
  wsaLastError,
} from "../ffi/ws2_32.ts";
import { associate, cancelAll, type IoResult, OverlappedOp } from "./_io.ts";
import {
  hostnameSchema,
  type IoOptions,
  ioOptionsSchema,
  parseArg,
  portSchema,
} from "./_validate.ts";
import { lessBusy, moreBusy } from "./_socket_idle.ts";

// ---------------------------------------------------------------------------------------------
// validation

const familySchema = z.union([z.literal(4), z.literal(6)], { error: "must be 4 or 6" }).optional();

const listenSchema = z.object({
  port: portSchema,
  hostname: hostnameSchema.optional(),
  family: familySchema,
  reuseAddress: z.boolean().optional(),
  exclusiveAddressUse: z.boolean().optional(),
  backlog: z.number().int().min(1).max(0x7fff_ffff).optional(),
}).strict().refine((o) => !(o.reuseAddress && o.exclusiveAddressUse), {
  error: "reuseAddress and exclusiveAddressUse exclude each other",
});

const connectSchema = ioOptionsSchema.extend({
  port: portSchema.refine((p) => p !== 0, { error: "must not be 0" }),
  hostname: hostnameSchema.optional(),
  family: familySchema,
  noDelay: z.boolean().optional(),
}).strict();

const datagramSchema = z.object({
  port: portSchema,
  hostname: hostnameSchema.optional(),
  family: familySchema,
  reuseAddress: z.boolean().optional(),
}).strict();

const targetSchema = z.object({
  port: portSchema.refine((p) => p !== 0, { error: "must not be 0" }),
  hostname: hostnameSchema,
}).passthrough();

const bytesSchema = z.instanceof(Uint8Array, { error: "must be a Uint8Array" });
const writeSchema = z.union([z.instanceof(Uint8Array), z.string()], {
  error: "must be a Uint8Array or a string",
});
const encoder = new TextEncoder();
const ioOptionsArg = ioOptionsSchema.optional();

/** The milliseconds left before a deadline (`undefined`: none). */
function left(deadline: number): number | undefined {
  return deadline === Infinity ? undefined : Math.max(0, deadline - performance.now());
}

// ---------------------------------------------------------------------------------------------
// addresses

/**
 * A socket's address, as `Deno.NetAddr` has it, plus the IP family.
 *
 * @example Log who connected
 * ```ts
 * import { listen, type NetAddr } from "./socket.ts";
 * await using listener = await listen({ port: 0 });
 * for await (const conn of listener) {
 *   const { hostname, port, family }: NetAddr = conn.remoteAddr;
 *   console.log(`IPv${family} client ${hostname}:${port}`);
 *   conn.close();
 * }
 * ```
 */
export interface NetAddr {
  /** `"tcp"` or `"udp"`. */
  transport: "tcp" | "udp";
  /** The numeric address, e.g. `127.0.0.1` or `::1`. */
  hostname: string;
  /** The port. */
  port: number;
  /** 4 or 6. */
  family: 4 | 6;
}

/** A resolved address, ready for `bind`/`connect`/`sendto`. */
interface Resolved {
  family: 4 | 6;
  sockaddr: Uint8Array<ArrayBuffer>;
}

function formatIpv6(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // IPv4-mapped ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.slice(12).join(".")}`;
  }
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Reads a `sockaddr_in`/`sockaddr_in6` into a {@linkcode NetAddr}. */
function readSockaddr(bytes: Uint8Array, transport: "tcp" | "udp"): NetAddr {
  const family = bytes[0] | (bytes[1] << 8);
  if (family === AF_INET) {
    const v = SOCKADDR_IN.read(bytes);
    return { transport, hostname: v.sin_addr.join("."), port: byteSwap16(v.sin_port), family: 4 };
  }
  if (family === AF_INET6) {
    const v = SOCKADDR_IN6.read(bytes);
    return {
      transport,
      hostname: formatIpv6(v.sin6_addr),
      port: byteSwap16(v.sin6_port),
      family: 6,
    };
  }
  throw new Error(`Unexpected socket address family ${family}`);
}

/**
 * Resolves a host name with `GetAddrInfoW` (on a worker thread: it returns its own error code).
 */
async function resolve(
  hostname: string,
  port: number,
  options: { family?: 4 | 6; type: number; passive?: boolean },
): Promise<Resolved[]> {
  const lib = ws2();
  const hints = ADDRINFOW.alloc({
    ai_family: options.family === 4 ? AF_INET : options.family === 6 ? AF_INET6 : AF_UNSPEC,
    ai_socktype: options.type,
    ai_flags: options.passive ? AI_PASSIVE : 0,
  });
  const out = new BigUint64Array(1);
  const code = await lib.GetAddrInfoWAsync(wide(hostname), wide(String(port)), hints, out);
  checkCode(code, "GetAddrInfoW", `Cannot resolve "${hostname}"`);
  const head = Deno.UnsafePointer.create(out[0]);
  const result: Resolved[] = [];
  try {
    for (let p = head; p !== null;) {
      const info = ADDRINFOW.read(
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, ADDRINFOW.size)),
      );
      if ((info.ai_family === AF_INET || info.ai_family === AF_INET6) && info.ai_addr) {
        const len = Number(info.ai_addrlen);
        const sockaddr = new Uint8Array(len);
        sockaddr.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(info.ai_addr, len)));
        const family = info.ai_family === AF_INET ? 4 : 6;
        if (!result.some((r) => r.sockaddr.every((b, i) => b === sockaddr[i]))) {
          result.push({ family, sockaddr });
        }
      }
      p = info.ai_next;
    }
  } finally {
    if (head) lib.FreeAddrInfoW(head);
  }
  if (result.length === 0) {
    throw new Error(`Cannot resolve "${hostname}": no IPv4 or IPv6 address`);
  }
  return result;
}

/** The canonical name of a resolved address, for messages (`127.0.0.1:80`, `[::1]:80`). */
function show(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// overlapped I/O through the process's completion port

/** A `WSABUF` over `bytes`, which must stay alive while the operation runs. */
function wsabuf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return WSABUF.alloc({
    len: bytes.length,
    buf: bytes.length === 0 ? null : Deno.UnsafePointer.of(bytes),
  });
}

/** `AcceptEx` and `ConnectEx`, found once per address family. */
const extensions = new Map<string, unknown>();

function extension<N extends WsaExtensionName>(
  socket: bigint,
  family: 4 | 6,
  name: N,
): ReturnType<typeof wsaExtension<N>> {
  const key = `${name}/${family}`;
  let fn = extensions.get(key) as ReturnType<typeof wsaExtension<N>> | undefined;
  if (!fn) {
    fn = wsaExtension(socket, name);
    extensions.set(key, fn);
  }
  return fn;
}

/** A socket value as the 8 bytes `SO_UPDATE_ACCEPT_CONTEXT` takes. */
function socketBytes(socket: bigint): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new BigUint64Array([socket]).buffer);
}

function setIntOption(
  socket: bigint,
  level: number,
  name: number,
  value: number,
  context: string,
): void {
  const v = new Int32Array([value]);
  checkSocketResult(ws2().setsockopt(socket, level, name, v, 4), "setsockopt", context);
}

function sockName(
  socket: bigint,
  transport: "tcp" | "udp",
  fn: "getsockname" | "getpeername",
): NetAddr {
  const buf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Int32Array([buf.length]);
  checkSocketResult(ws2()[fn](socket, buf, len), fn, `Cannot read a socket's address`);
  return readSockaddr(buf, transport);
}

/** A socket for overlapped I/O (`WSASocketW` with `WSA_FLAG_OVERLAPPED`), in blocking mode. */
function newSocket(family: 4 | 6, type: number, protocol: number, context: string): bigint {
  return checkSocket(
    ws2().WSASocketW(
      family === 4 ? AF_INET : AF_INET6,
      type,
      protocol,
      null,
      0,
      WSA_FLAG_OVERLAPPED,
    ),
    "WSASocketW",
    context,
  );
}

function closedError(what: string): Deno.errors.BadResource {
  return new Deno.errors.BadResource(`${what} is closed`);
}

/**
 * The socket that a {@linkcode TcpConn}, {@linkcode TcpListener} or {@linkcode DatagramSocket}
 * owns: usable until `close()`, which runs once, cancels the operations in flight (they fail with
 * `BadResource`) and releases the socket when the last of them has completed.
 */
class OwnedSocket {
  #socket: bigint | null;
  readonly #raw: bigint;
  readonly #handle: Deno.PointerObject;
  readonly #what: string;
  #inFlight = 0;
  #associated = false;

  /**
   * @param socket The socket, now owned.
   * @param what What it is, for the error once it is closed (`"Listener"`).
   */
  constructor(socket: bigint, what: string) {
    this.#socket = socket;
    this.#raw = socket;
    this.#handle = Deno.UnsafePointer.create(socket)!;
    this.#what = what;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#socket === null;
  }

  /**
   * The socket, for a call on it now.
   *
   * @throws {Deno.errors.BadResource} When it is closed.
   */
  get live(): bigint {
    if (this.#socket === null) throw closedError(this.#what);
    return this.#socket;
  }

  /**
   * Runs one overlapped operation on the socket through the completion port.
   *
   * @param fn The Winsock function, for errors (`"WSARecv"`).
   * @param context What is being done, for errors.
   * @param issue Starts the operation with the given `OVERLAPPED`; returns whether it succeeded
   *   at once (`WSARecv(...) === 0`, or the BOOL of `AcceptEx`/`ConnectEx`).
   * @param options The op to use (a fresh one when it is busy or absent), an AbortSignal and a
   *   timeout.
   * @returns The bytes transferred.
   * @throws {Deno.errors.BadResource} When the socket is (or gets) closed.
   * @throws {Win32Error} With the operation's own WSA code when it fails.
   * @throws The signal's reason when aborted.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed first.
   */
  async io(
    fn: string,
    context: string,
    issue: (overlapped: Uint8Array<ArrayBuffer>) => boolean,
    options: IoOptions & { op?: OverlappedOp } = {},
  ): Promise<number> {
    const s = this.live;
    const op = options.op && !options.op.busy ? options.op : new OverlappedOp();
    let atOnce = 0;
    let result: IoResult;
    if (!this.#associated) {
      // Once per socket: the core would otherwise try again before every operation.
      associate(this.#handle, context);
      this.#associated = true;
    }
    this.#inFlight++;
    moreBusy();
    try {
      result = await op.run(this.#handle, (overlapped) => {
        if (issue(overlapped)) return true;
        // Read here, synchronously; the core reads the same code (Winsock's last error is the
        // thread's) to see whether the operation pends.
        const code = wsaLastError();
        if (code !== WSA_IO_PENDING) atOnce = code;
        return false;
      }, { signal: options.signal, timeout: options.timeout, context, associated: true });
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0 && this.#socket === null) this.#release();
      lessBusy();
    }
    if (result.error === 0) return result.bytes;
    if (this.#socket === null) throw closedError(this.#what);
    throw win32Error(fn, atOnce || this.#completionError(s, op, result.error), { context });
  }

  /** The WSA code of an operation that completed with a failure (`WSAGetOverlappedResult`). */
  #completionError(s: bigint, op: OverlappedOp, fallback: number): number {
    const count = new Uint32Array(1);
    const flags = new Uint32Array(1);
    if (ws2().WSAGetOverlappedResult(s, op.overlapped, count, 0, flags)) return fallback;
    return wsaLastError() || fallback;
  }

  #release(): void {
    ws2().closesocket(this.#raw);
    lessBusy(); // the close that waited for the operations
  }

  /**
   * Gives the socket up without closing it (after a connection attempt that succeeded, when a
   * {@linkcode TcpConn} takes it over). Only while no operation is in flight.
   *
   * @returns The socket.
   */
  detach(): bigint {
    const s = this.live;
    this.#socket = null;
    return s;
  }

  /** Closes the socket. A second call does nothing. */
  close(): void {
    const s = this.#socket;
    if (s === null) return;
    this.#socket = null;
    if (this.#inFlight === 0) {
      ws2().closesocket(s);
      return;
    }
    moreBusy(); // until #release
    cancelAll(this.#handle);
  }

  /**
   * Yields what `next` gives until the socket is closed (`next` fails with `BadResource`).
   *
   * @param next Accepts or receives the next item.
   */
  async *untilClosed<T>(next: () => Promise<T>): AsyncIterableIterator<T> {
    for (;;) {
      try {
        yield await next();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }
}

// Each class takes ownership of a socket through a private constructor, so that no public
// signature takes a raw SOCKET; these are how the module makes them.
let adoptConn: (socket: bigint) => TcpConn;
let adoptListener: (socket: bigint) => TcpListener;
let adoptDatagram: (socket: bigint) => DatagramSocket;

// ---------------------------------------------------------------------------------------------
// TCP connections

/**
 * A TCP connection: `read`/`write`, or the `readable`/`writable` streams, `closeWrite` to send
 * FIN, `close` to release the socket.
 *
 * @example Send and receive
 * ```ts
 * import { connect } from "./socket.ts";
 * using conn = await connect({ hostname: "127.0.0.1", port: 8080 });
 * await conn.write(new TextEncoder().encode("ping"));
 * const buf = new Uint8Array(100);
 * const n = await conn.read(buf);
 * ```
 */
export class TcpConn implements Disposable, AsyncDisposable {
  readonly #socket: OwnedSocket;
  readonly #readOp = new OverlappedOp();
  readonly #writeOp = new OverlappedOp();
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  /** Whether `closeWrite()` shut the sending side. */
  #writeClosed = false;
  /** This end's address. */
  readonly localAddr: NetAddr;
  /** The peer's address. */
  readonly remoteAddr: NetAddr;

  static {
    adoptConn = (socket) => new TcpConn(socket);
  }

  /** Takes ownership of a connected non-blocking socket. */
  private constructor(socket: bigint) {
    this.#socket = new OwnedSocket(socket, "Connection");
    this.localAddr = sockName(socket, "tcp", "getsockname");
    this.remoteAddr = sockName(socket, "tcp", "getpeername");
  }

  /** The raw `SOCKET`, for FFI calls. Valid until `close()`. */
  get unsafeHandle(): bigint {
    return this.#socket.live;
  }

  /**
   * Reads up to `buffer.length` bytes.
   *
   * @param buffer Where to put them.
   * @param options `timeout` (milliseconds, default none) and `signal`; either cancels the read,
   *   and no byte is lost (bytes that arrived first are returned).
   * @returns How many bytes were read, or `null` at the end of the stream (the peer sent FIN).
   * @throws {Win32Error} On a socket error (`WSAECONNRESET`...).
   * @throws {Deno.errors.BadResource} When the connection is (or gets) closed.
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   */
  async read(buffer: Uint8Array, options?: IoOptions): Promise<number | null> {
    parseArg(bytesSchema, buffer, "buffer");
    const opts = parseArg(ioOptionsArg, options, "options") ?? {};
    if (buffer.length === 0) return 0;
    const s = this.#socket.live;
    const into = buffer.length > 0x7fff_ffff ? buffer.subarray(0, 0x7fff_ffff) : buffer;
    const buffers = wsabuf(into);
    const flags = new Uint32Array(1);
    const n = await this.#socket.io(
      "WSARecv",
      `Cannot read from ${this.#peer()}`,
      (overlapped) => ws2().WSARecv(s, buffers, 1, null, flags, overlapped, null) === 0,
      { ...opts, op: this.#readOp },
    );
    return n === 0 ? null : n; // 0 bytes: the peer's orderly shutdown
  }

  /**
   * Writes all of `data` (waiting while the send buffer is full).
   *
   * @param data The bytes, or text (written as UTF-8).
   * @param options `timeout` (milliseconds, default none) and `signal`; either cancels the write,
   *   after which an unknown part of `data` may have been sent.
   * @returns The number of bytes written (all of them).
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   * @throws {Win32Error} On a socket error (`WSAECONNRESET`, `WSAESHUTDOWN`...).
   * @throws {Deno.errors.BadResource} When the connection is (or gets) closed.
   */
  async write(data: Uint8Array | string, options?: IoOptions): Promise<number> {
    parseArg(writeSchema, data, "data");
    if (typeof data === "string") data = encoder.encode(data);
    const { signal, timeout } = parseArg(ioOptionsArg, options, "options") ?? {};
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
    let off = 0;
    while (off < data.length) {
      const s = this.#socket.live;
      const chunk = off === 0 && data.length <= 0x7fff_ffff
        ? data
        : data.subarray(off, off + 0x7fff_ffff);
      const buffers = wsabuf(chunk);
      // An overlapped send on a stream socket completes when all of it is sent (or fails).
      const n = await this.#socket.io(
        "WSASend",
        `Cannot write to ${this.#peer()}`,
        (overlapped) => ws2().WSASend(s, buffers, 1, null, 0, overlapped, null) === 0,
        { op: this.#writeOp, signal, timeout: left(deadline) },
      );
      if (n === 0) throw new Deno.errors.WriteZero(`Cannot write to ${this.#peer()}: 0 bytes sent`);
      off += n;
    }
    return data.length;
  }

  /**
   * Half-closes (`shutdown(SD_SEND)`): the peer reads every byte written before it, then the end
   * of the stream; this side can still read. A second call does nothing. The Promise is for the
   * convention every `closeWrite()` follows (see CONTRIBUTING.md); a failure rejects it.
   *
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Win32Error} When `shutdown` fails.
   */
  closeWrite(): Promise<void> {
    try {
      const socket = this.#socket.live;
      if (!this.#writeClosed) {
        checkSocketResult(
          ws2().shutdown(socket, SD_SEND),
          "shutdown",
          `Cannot shut down ${this.#peer()}`,
        );
        this.#writeClosed = true;
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Turns Nagle's algorithm off (`true`) or on (`TCP_NODELAY`).
   *
   * @param noDelay Whether small writes go out at once.
   */
  setNoDelay(noDelay = true): void {
    setIntOption(
      this.#socket.live,
      IPPROTO_TCP,
      TCP_NODELAY,
      noDelay ? 1 : 0,
      "Cannot set TCP_NODELAY",
    );
  }

  /** The connection's bytes as a stream; reading it ends at the peer's FIN. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buf = new Uint8Array(64 * 1024);
        try {
          const n = await this.read(buf);
          if (n === null) controller.close();
          else controller.enqueue(buf.subarray(0, n));
        } catch (e) {
          if (e instanceof Deno.errors.BadResource) controller.close();
          else controller.error(e);
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** A stream that writes to the connection; closing it sends FIN (`closeWrite`). */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.#socket.closed ? undefined : this.closeWrite(),
      abort: () => this.abort(),
    });
    return this.#writable;
  }

  #peer(): string {
    return show(this.remoteAddr.hostname, this.remoteAddr.port);
  }

  /** Whether `close()` (or `abort()`) has run. */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Closes the socket; pending reads and writes fail with `BadResource`. A second call does nothing. */
  close(): void {
    this.#socket.close();
  }

  /**
   * Aborts the connection: unsent data is dropped and the peer gets a reset (`SO_LINGER` with a
   * zero timeout, then `closesocket`) instead of an orderly end. A closed connection is left as is.
   */
  abort(): void {
    if (this.#socket.closed) return;
    const linger = new Uint16Array([1, 0]); // l_onoff = 1, l_linger = 0
    ws2().setsockopt(this.#socket.live, SOL_SOCKET, SO_LINGER, linger, 4);
    this.close();
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------
// TCP listener

/**
 * Options of {@linkcode listen}.
 *
 * @example Listen on every IPv4 address, port 8080, and nobody else may bind it
 * ```ts
 * import { listen } from "./socket.ts";
 * await using listener = await listen({
 *   port: 8080,
 *   hostname: "0.0.0.0",
 *   exclusiveAddressUse: true,
 *   backlog: 64,
 * });
 * ```
 */
export interface ListenOptions {
  /** The port; 0 lets the system choose (read it from `listener.addr.port`). */
  port: number;
  /**
   * The address to listen on (default `127.0.0.1`, loopback only, unlike `Deno.listen`'s
   * `0.0.0.0`). A name is resolved; use `::1` or `::` for IPv6.
   */
  hostname?: string;
  /** Prefer this IP family when resolving `hostname`. */
  family?: 4 | 6;
  /** `SO_REUSEADDR`: bind even if the address is in use (default false). */
  reuseAddress?: boolean;
  /** `SO_EXCLUSIVEADDRUSE`: nobody else may bind the address, even with `SO_REUSEADDR`. */
  exclusiveAddressUse?: boolean;
  /** The `listen` backlog (default `SOMAXCONN`). */
  backlog?: number;
}

const SOMAXCONN = 0x7fff_ffff;

/**
 * A listening TCP socket; iterate it for connections (as `Deno.Listener`).
 *
 * @example Accept connections
 * ```ts
 * import { listen } from "./socket.ts";
 * using listener = await listen({ port: 0 });
 * for await (const conn of listener) {
 *   conn.close();
 *   break;
 * }
 * ```
 */
export class TcpListener implements AsyncIterable<TcpConn>, Disposable, AsyncDisposable {
  readonly #socket: OwnedSocket;
  readonly #op = new OverlappedOp();
  /** The address it listens on (with the port the system chose for port 0). */
  readonly addr: NetAddr;

  static {
    adoptListener = (socket) => new TcpListener(socket);
  }

  /** Takes ownership of a listening non-blocking socket. */
  private constructor(socket: bigint) {
    this.#socket = new OwnedSocket(socket, "Listener");
    this.addr = sockName(socket, "tcp", "getsockname");
  }

  /** The raw `SOCKET`. Valid until `close()`. */
  get unsafeHandle(): bigint {
    return this.#socket.live;
  }

  /**
   * Waits for the next connection.
   *
   * @param options `timeout` (milliseconds, default none) and `signal`, which stop the wait.
   * @returns The connection (non-blocking, owned by the caller).
   * @throws {Deno.errors.BadResource} When the listener is (or gets) closed.
   * @throws {Win32Error} When `accept` fails.
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   */
  async accept(options?: IoOptions): Promise<TcpConn> {
    const { signal, timeout } = parseArg(ioOptionsArg, options, "options") ?? {};
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
    const lib = ws2();
    const context = `Cannot accept on ${show(this.addr.hostname, this.addr.port)}`;
    const family = this.addr.family;
    for (;;) {
      const listening = this.#socket.live;
      const acceptEx = extension(listening, family, "AcceptEx");
      const c = newSocket(family, SOCK_STREAM, IPPROTO_TCP, context);
      // AcceptEx writes both addresses there (each with 16 bytes more than the largest address).
      const addresses = new Uint8Array(2 * (SOCKADDR_STORAGE_SIZE + 16));
      const received = new Uint32Array(1);
      try {
        await this.#socket.io(
          "AcceptEx",
          context,
          (overlapped) =>
            acceptEx.call(
              listening,
              c,
              addresses,
              0,
              SOCKADDR_STORAGE_SIZE + 16,
              SOCKADDR_STORAGE_SIZE + 16,
              received,
              overlapped,
            ) !== 0,
          { op: this.#op, signal, timeout: left(deadline) },
        );
        // getpeername, shutdown and the rest work on it only after this.
        checkSocketResult(
          lib.setsockopt(c, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, socketBytes(listening), 8),
          "setsockopt",
          context,
        );
        return adoptConn(c);
      } catch (e) {
        lib.closesocket(c);
        // A client that reset before we could take it (or read its address) is gone: wait for
        // the next.
        if (e instanceof Win32Error && (e.code === WSAECONNRESET || e.code === WSAENOTCONN)) {
          continue;
        }
        throw e;
      }
    }
  }

  /** Yields connections until the listener is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<TcpConn> {
    return this.#socket.untilClosed(() => this.accept());
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Stops listening; a pending `accept` fails with `BadResource`. A second call does nothing. */
  close(): void {
    this.#socket.close();
  }

  /** Closes the listener. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the listener. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

function applyAddressOptions(
  s: bigint,
  o: { reuseAddress?: boolean; exclusiveAddressUse?: boolean },
  context: string,
): void {
  if (o.reuseAddress) setIntOption(s, SOL_SOCKET, SO_REUSEADDR, 1, context);
  if (o.exclusiveAddressUse) setIntOption(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1, context);
}

/**
 * Listens for TCP connections.
 *
 * @param options Port, address and socket options.
 * @returns The listener.
 * @throws {RangeError} For a port out of 0..65535.
 * @throws {TypeError} For a malformed host name or options.
 * @throws {Win32Error} When the name does not resolve (`WSAHOST_NOT_FOUND`), or `bind`/`listen`
 *   fail (`WSAEADDRINUSE`, `WSAEACCES`...).
 *
 * @example Listen on an ephemeral port on IPv6 loopback
 * ```ts
 * import { listen } from "./socket.ts";
 * using listener = await listen({ port: 0, hostname: "::1" });
 * console.log(listener.addr.port);
 * ```
 */
export async function listen(options: ListenOptions): Promise<TcpListener> {
  const o = parseArg(listenSchema, options, "options");
  const hostname = o.hostname ?? "127.0.0.1";
  const [addr] = await resolve(hostname, o.port, {
    family: o.family,
    type: SOCK_STREAM,
    passive: true,
  });
  const context = `Cannot listen on ${show(hostname, o.port)}`;
  const s = newSocket(addr.family, SOCK_STREAM, IPPROTO_TCP, context);
  const lib = ws2();
  try {
    applyAddressOptions(s, o, context);
    checkSocketResult(lib.bind(s, addr.sockaddr, addr.sockaddr.length), "bind", context);
    checkSocketResult(lib.listen(s, o.backlog ?? SOMAXCONN), "listen", context);
    return adoptListener(s);
  } catch (e) {
    lib.closesocket(s);
    throw e;
  }
}

/**
 * Options of {@linkcode connect}.
 *
 * @example Connect over IPv6 without Nagle's delay, giving up after 3 s
 * ```ts
 * import { connect } from "./socket.ts";
 * await using conn = await connect({
 *   hostname: "localhost",
 *   port: 9000,
 *   family: 6,
 *   noDelay: true,
 *   signal: AbortSignal.timeout(3000),
 * });
 * ```
 */
export interface ConnectOptions extends IoOptions {
  /** The port, 1 to 65535. */
  port: number;
  /** The host (default `127.0.0.1`); each resolved address is tried in turn. */
  hostname?: string;
  /** Only this IP family. */
  family?: 4 | 6;
  /** `TCP_NODELAY` (default false). */
  noDelay?: boolean;
  /** Aborts the connection attempt. */
  signal?: AbortSignal;
  /**
   * Milliseconds for the whole attempt, over every address (default none); a name lookup in
   * progress is not interrupted.
   */
  timeout?: number;
}

async function connectOne(
  addr: Resolved,
  o: ConnectOptions,
  context: string,
  deadline: number,
): Promise<TcpConn> {
  const lib = ws2();
  const s = newSocket(addr.family, SOCK_STREAM, IPPROTO_TCP, context);
  const owned = new OwnedSocket(s, "Connection");
  try {
    if (o.noDelay) setIntOption(s, IPPROTO_TCP, TCP_NODELAY, 1, context);
    // ConnectEx takes a bound socket: the wildcard address, a port of the system's choice.
    const local = addr.family === 4
      ? SOCKADDR_IN.alloc({ sin_family: AF_INET })
      : SOCKADDR_IN6.alloc({ sin6_family: AF_INET6 });
    checkSocketResult(lib.bind(s, local, local.length), "bind", context);
    const connectEx = extension(s, addr.family, "ConnectEx");
    const sent = new Uint32Array(1);
    await owned.io(
      "ConnectEx",
      context,
      (overlapped) =>
        connectEx.call(s, addr.sockaddr, addr.sockaddr.length, null, 0, sent, overlapped) !== 0,
      { signal: o.signal, timeout: left(deadline) },
    );
    // getpeername, shutdown and the rest work on it only after this.
    checkSocketResult(
      lib.setsockopt(s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, null, 0),
      "setsockopt",
      context,
    );
    const conn = adoptConn(s);
    owned.detach();
    return conn;
  } catch (e) {
    owned.close();
    throw e;
  }
}

/**
 * Opens a TCP connection.
 *
 * @param options Host, port and options.
 * @returns The connection.
 * @throws {RangeError} For a port out of 1..65535.
 * @throws {TypeError} For a malformed host name or options.
 * @throws {Win32Error} When the name does not resolve (`WSAHOST_NOT_FOUND`) or every address
 *   refused (`WSAECONNREFUSED`) or timed out (`WSAETIMEDOUT`): the last address's error.
 * @throws {Deno.errors.TimedOut} When `options.timeout` elapses first.
 *
 * @example Connect with Nagle off
 * ```ts
 * import { connect } from "./socket.ts";
 * using conn = await connect({ hostname: "localhost", port: 8080, noDelay: true });
 * ```
 */
export async function connect(options: ConnectOptions): Promise<TcpConn> {
  const o = parseArg(connectSchema, options, "options");
  const deadline = o.timeout === undefined ? Infinity : performance.now() + o.timeout;
  const hostname = o.hostname ?? "127.0.0.1";
  const addrs = await resolve(hostname, o.port, { family: o.family, type: SOCK_STREAM });
  const context = `Cannot connect to ${show(hostname, o.port)}`;
  let last: unknown;
  for (const addr of addrs) {
    o.signal?.throwIfAborted();
    try {
      return await connectOne(addr, o, context, deadline);
    } catch (e) {
      if (!(e instanceof Win32Error)) throw e;
      last = e;
    }
  }
  throw last;
}

// ---------------------------------------------------------------------------------------------
// UDP

/**
 * Options of {@linkcode listenDatagram}.
 *
 * @example Bind UDP port 5353 on IPv6 loopback, shared with other listeners
 * ```ts
 * import { listenDatagram } from "./socket.ts";
 * await using udp = await listenDatagram({ port: 5353, hostname: "::1", reuseAddress: true });
 * ```
 */
export interface DatagramOptions {
  /** The port; 0 lets the system choose. */
  port: number;
  /** The address to bind (default `127.0.0.1`). */
  hostname?: string;
  /** Prefer this IP family when resolving `hostname`. */
  family?: 4 | 6;
  /** `SO_REUSEADDR` (default false). */
  reuseAddress?: boolean;
}

/**
 * Where a datagram goes.
 *
 * @example Send one datagram to a named host
 * ```ts
 * import { type DatagramTarget, listenDatagram } from "./socket.ts";
 * await using udp = await listenDatagram({ port: 0 });
 * const target: DatagramTarget = { hostname: "localhost", port: 514 };
 * await udp.send(new TextEncoder().encode("<14>winipc: hello"), target);
 * ```
 */
export interface DatagramTarget {
  /** Host name or address. */
  hostname: string;
  /** Port, 1 to 65535. */
  port: number;
}

/**
 * A bound UDP socket: `send` datagrams to any address, `receive` them from any.
 *
 * @example A round trip
 * ```ts
 * import { listenDatagram } from "./socket.ts";
 * using a = await listenDatagram({ port: 0 });
 * using b = await listenDatagram({ port: 0 });
 * await a.send(new TextEncoder().encode("hi"), b.addr);
 * const [data, from] = await b.receive();
 * ```
 */
export class DatagramSocket
  implements AsyncIterable<[Uint8Array, NetAddr]>, Disposable, AsyncDisposable {
  readonly #socket: OwnedSocket;
  readonly #sendOp = new OverlappedOp();
  readonly #receiveOp = new OverlappedOp();
  #targets = new Map<string, Resolved>();
  /** The bound address. */
  readonly addr: NetAddr;

  static {
    adoptDatagram = (socket) => new DatagramSocket(socket);
  }

  /** Takes ownership of a bound non-blocking UDP socket. */
  private constructor(socket: bigint) {
    this.#socket = new OwnedSocket(socket, "Datagram socket");
    this.addr = sockName(socket, "udp", "getsockname");
  }

  /** The raw `SOCKET`. Valid until `close()`. */
  get unsafeHandle(): bigint {
    return this.#socket.live;
  }

  /**
   * Sends one datagram.
   *
   * @param data The payload (at most 65507 bytes for IPv4), or text (sent as UTF-8).
   * @param target Where to (host names are resolved once and remembered).
   * @param options `timeout` (milliseconds, default none) and `signal`.
   * @returns The bytes sent.
   * @throws {Win32Error} When the name does not resolve or `sendto` fails (`WSAEMSGSIZE`...).
   */
  async send(
    data: Uint8Array | string,
    target: DatagramTarget,
    options?: IoOptions,
  ): Promise<number> {
    parseArg(writeSchema, data, "data");
    const opts = parseArg(ioOptionsArg, options, "options") ?? {};
    if (typeof data === "string") data = encoder.encode(data);
    const t = parseArg(targetSchema, target, "target");
    const hostname = parseArg(hostnameSchema, t.hostname, "target.hostname");
    const key = `${hostname}|${t.port}`;
    let addr = this.#targets.get(key);
    if (!addr) {
      const all = await resolve(hostname, t.port, {
        family: this.addr.family,
        type: SOCK_DGRAM,
      });
      addr = all[0];
      this.#targets.set(key, addr);
    }
    const s = this.#socket.live;
    const to = addr.sockaddr;
    const buffers = wsabuf(data);
    return await this.#socket.io(
      "WSASendTo",
      `Cannot send a datagram to ${show(hostname, t.port)}`,
      (overlapped) =>
        ws2().WSASendTo(s, buffers, 1, null, 0, to, to.length, overlapped, null) === 0,
      { ...opts, op: this.#sendOp },
    );
  }

  /**
   * Receives one datagram.
   *
   * @param buffer Where to receive (default a new 64 KiB buffer); a longer datagram is an error.
   * @param options `timeout` (milliseconds, default none) and `signal`, which stop the wait.
   * @returns The payload and the sender's address.
   * @throws {Win32Error} When `recvfrom` fails (`WSAEMSGSIZE` for a datagram longer than the buffer).
   * @throws {Deno.errors.BadResource} When the socket is (or gets) closed.
   */
  async receive(buffer?: Uint8Array, options?: IoOptions): Promise<[Uint8Array, NetAddr]> {
    const { signal, timeout } = parseArg(ioOptionsArg, options, "options") ?? {};
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
    const buf = buffer === undefined
      ? new Uint8Array(65536)
      : parseArg(bytesSchema, buffer, "buffer");
    // Written when the operation completes: they live as long as it does.
    const from = new Uint8Array(SOCKADDR_STORAGE_SIZE);
    const fromLen = new Int32Array(1);
    const flags = new Uint32Array(1);
    const buffers = wsabuf(buf);
    for (;;) {
      const s = this.#socket.live;
      let n: number;
      try {
        n = await this.#socket.io(
          "WSARecvFrom",
          "Cannot receive a datagram",
          (overlapped) => {
            fromLen[0] = from.length;
            flags[0] = 0;
            return ws2().WSARecvFrom(
              s,
              buffers,
              1,
              null,
              flags,
              from,
              fromLen,
              overlapped,
              null,
            ) ===
              0;
          },
          { op: this.#receiveOp, signal, timeout: left(deadline) },
        );
      } catch (e) {
        if (!(e instanceof Win32Error)) throw e;
        // WSAECONNRESET on UDP reports an ICMP "port unreachable" for an earlier send: not fatal.
        if (e.code === WSAECONNRESET) continue;
        if (e.code !== WSAEMSGSIZE) throw e;
        throw win32Error("WSARecvFrom", e.code, {
          context: `Datagram longer than the ${buf.length}-byte buffer`,
        });
      }
      return [buf.subarray(0, n), readSockaddr(from, "udp")];
    }
  }

  /** Yields datagrams until the socket is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<[Uint8Array, NetAddr]> {
    return this.#socket.untilClosed(() => this.receive());
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Closes the socket; a pending `receive` fails with `BadResource`. A second call does nothing. */
  close(): void {
    this.#socket.close();
  }

  /** Closes the socket. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the socket. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Binds a UDP socket.
 *
 * @param options Port, address, options.
 * @returns The socket.
 * @throws {RangeError} For a port out of 0..65535.
 * @throws {TypeError} For a malformed host name or options.
 * @throws {Win32Error} When the name does not resolve or `bind` fails (`WSAEADDRINUSE`...).
 *
 * @example Bind an ephemeral port
 * ```ts
 * import { listenDatagram } from "./socket.ts";
 * using udp = await listenDatagram({ port: 0, hostname: "127.0.0.1" });
 * ```
 */
export async function listenDatagram(options: DatagramOptions): Promise<DatagramSocket> {
  const o = parseArg(datagramSchema, options, "options");
  const hostname = o.hostname ?? "127.0.0.1";
  const [addr] = await resolve(hostname, o.port, {
    family: o.family,
    type: SOCK_DGRAM,
    passive: true,
  });
  const context = `Cannot bind UDP ${show(hostname, o.port)}`;
  const s = newSocket(addr.family, SOCK_DGRAM, IPPROTO_UDP, context);
  const lib = ws2();
  try {
    applyAddressOptions(s, o, context);
    checkSocketResult(lib.bind(s, addr.sockaddr, addr.sockaddr.length), "bind", context);
    return adoptDatagram(s);
  } catch (e) {
    lib.closesocket(s);
    throw e;
  }
}
