/**
 * TCP and UDP over Windows Sockets (ws2_32), with a `Deno.listen`/`Deno.connect`-like API:
 * {@linkcode listen} gives an async iterable of {@linkcode TcpConn}s, {@linkcode connect} dials
 * out, {@linkcode listenDatagram} sends and receives UDP datagrams. IPv4 and IPv6.
 *
 * How it stays off the event loop: every socket is non-blocking (`ioctlsocket(FIONBIO)`). An
 * operation is first tried on this thread; when Winsock answers `WSAEWOULDBLOCK`, the operation
 * waits for readiness in one shared poller: a single `WSAPoll` over every waiting socket, run as a
 * `nonblocking` FFI call (one worker thread for all sockets, not one per socket). A loopback UDP
 * socket of the poller's own is always in the set, so a new waiter wakes the poll with one byte.
 * `WSAPoll` was chosen over `WSAEventSelect`/overlapped I/O because one call covers any number of
 * sockets (no 64-handle limit of `WaitForMultipleObjects`), and under Wine it maps directly to the
 * host's `poll` on host sockets.
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
import { Win32Error } from "../ffi/error.ts";
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
  FIONBIO,
  IPPROTO_TCP,
  IPPROTO_UDP,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  SD_SEND,
  SO_ERROR,
  SO_EXCLUSIVEADDRUSE,
  SO_LINGER,
  SO_REUSEADDR,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  SOCKADDR_STORAGE_SIZE,
  SOCKET_ERROR,
  SOL_SOCKET,
  TCP_NODELAY,
  ws2,
  WSAECONNRESET,
  WSAEMSGSIZE,
  WSAENOTCONN,
  WSAEWOULDBLOCK,
  wsaLastError,
  WSAPOLLFD,
} from "../ffi/ws2_32.ts";
import { hostnameSchema, parseArg, portSchema, signalSchema } from "./_validate.ts";

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

const connectSchema = z.object({
  port: portSchema.refine((p) => p !== 0, { error: "must not be 0" }),
  hostname: hostnameSchema.optional(),
  family: familySchema,
  noDelay: z.boolean().optional(),
  signal: signalSchema,
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
  if (code !== 0) {
    throw new Win32Error("GetAddrInfoW", code, { context: `Cannot resolve "${hostname}"` });
  }
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
// the shared poller

interface Waiter {
  socket: bigint;
  events: number;
  resolve: (revents: number) => void;
  reject: (error: unknown) => void;
}

/**
 * One `WSAPoll` over every socket that waits, on a worker thread. A UDP socket bound to loopback
 * and sent to itself wakes the poll when the set changes.
 */
class Poller {
  #waiters: Waiter[] = [];
  #running = false;
  #idle: PromiseWithResolvers<void> | null = null;
  /** The sockets (and their events) of the poll in flight, or null between polls. */
  #inFlight: Map<bigint, number> | null = null;
  #deferredClose: bigint[] = [];
  #wake: bigint | null = null;
  #wakeAddr: Uint8Array<ArrayBuffer> | null = null;
  #wakePending = false;
  readonly #byte = new Uint8Array(1);
  readonly #drain = new Uint8Array(64);

  #wakeSocket(): bigint {
    if (this.#wake !== null) return this.#wake;
    const lib = ws2();
    const s = checkSocket(
      lib.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP),
      "socket",
      "Cannot create the poller's wake-up socket",
    );
    try {
      const addr = SOCKADDR_IN.alloc({ sin_family: AF_INET, sin_addr: [127, 0, 0, 1] });
      checkSocketResult(lib.bind(s, addr, addr.length), "bind", "Cannot bind the wake-up socket");
      const len = new Int32Array([SOCKADDR_STORAGE_SIZE]);
      const name = new Uint8Array(SOCKADDR_STORAGE_SIZE);
      checkSocketResult(lib.getsockname(s, name, len), "getsockname", "Wake-up socket");
      setNonBlocking(s, "Wake-up socket");
      this.#wakeAddr = name.slice(0, len[0]);
    } catch (e) {
      lib.closesocket(s);
      throw e;
    }
    this.#wake = s;
    return s;
  }

  /** Wakes a poll in flight so it sees a changed set. */
  #kick(): void {
    if (!this.#running || this.#inFlight === null || this.#wakePending) return;
    this.#wakePending = true;
    const addr = this.#wakeAddr!;
    ws2().sendto(this.#wake!, this.#byte, 1, 0, addr, addr.length);
  }

  /**
   * Waits until the socket is ready for `events` (or has an error or hang-up).
   *
   * @returns The `revents` WSAPoll reported.
   */
  wait(socket: bigint, events: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    this.#wakeSocket();
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = { socket, events, resolve, reject };
      if (signal) {
        const onAbort = () => {
          this.#remove(waiter);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        waiter.resolve = (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        };
        waiter.reject = (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        };
      }
      this.#waiters.push(waiter);
      if (!this.#running) this.#run();
      // A poll in flight that does not watch this socket for these events must start over.
      else if (((this.#inFlight?.get(socket) ?? 0) & events) !== events) this.#kick();
    });
  }

  #remove(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** Rejects every waiter on `socket` and closes it (after the poll in flight, if it holds it). */
  close(socket: bigint, reason: () => unknown): void {
    const mine = this.#waiters.filter((w) => w.socket === socket);
    this.#waiters = this.#waiters.filter((w) => w.socket !== socket);
    if (this.#inFlight?.has(socket)) {
      this.#deferredClose.push(socket);
      this.#kick();
    } else {
      ws2().closesocket(socket);
    }
    for (const w of mine) w.reject(reason());
  }

  /** Resolves when no poll is in flight (for tests: no FFI call left pending). */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    const lib = ws2();
    try {
      while (this.#waiters.length > 0) {
        const wanted = new Map<bigint, number>();
        for (const w of this.#waiters) wanted.set(w.socket, (wanted.get(w.socket) ?? 0) | w.events);
        const count = wanted.size + 1;
        const fds = new Uint8Array(count * WSAPOLLFD.size);
        WSAPOLLFD.write(fds, { fd: this.#wake!, events: POLLIN });
        let i = 1;
        for (const [fd, events] of wanted) {
          WSAPOLLFD.write(fds, { fd, events }, i++ * WSAPOLLFD.size);
        }
        this.#inFlight = wanted;
        const n = await lib.WSAPollAsync(fds, count, -1);
        this.#inFlight = null;
        for (const s of this.#deferredClose.splice(0)) lib.closesocket(s);
        if (n === SOCKET_ERROR) {
          // The worker thread's error is not ours: poll again here, at once, to learn it.
          const again = lib.WSAPoll(fds, count, 0);
          const error = new Win32Error("WSAPoll", again === SOCKET_ERROR ? wsaLastError() : 0, {
            context: "Cannot wait for sockets",
          });
          for (const w of this.#waiters.splice(0)) w.reject(error);
          break;
        }
        const ready = new Map<bigint, number>();
        for (let k = 0; k < count; k++) {
          const v = WSAPOLLFD.read(fds, k * WSAPOLLFD.size);
          if (v.revents !== 0) ready.set(v.fd, v.revents & 0xffff);
        }
        if (ready.has(this.#wake!)) {
          while (lib.recv(this.#wake!, this.#drain, this.#drain.length, 0) > 0) { /* drain */ }
          this.#wakePending = false;
        }
        const keep: Waiter[] = [];
        const done: [Waiter, number][] = [];
        for (const w of this.#waiters) {
          const revents = ready.get(w.socket);
          if (revents !== undefined && (revents & (w.events | POLLERR | POLLHUP | POLLNVAL))) {
            done.push([w, revents]);
          } else keep.push(w);
        }
        this.#waiters = keep;
        for (const [w, revents] of done) w.resolve(revents);
        // Let the woken operations run (and register again) before the next poll.
        await Promise.resolve();
      }
    } finally {
      this.#running = false;
      this.#inFlight = null;
      this.#idle?.resolve();
      this.#idle = null;
    }
  }
}

const poller = new Poller();

/**
 * Resolves when the shared poller has no `WSAPoll` in flight, e.g. after every socket is closed.
 * Tests await it so that no FFI call is pending when they end.
 *
 * @returns A promise that resolves when the poller is idle.
 *
 * @example A test that leaves no FFI call behind
 * ```ts
 * import { listen, pollerIdle } from "./socket.ts";
 * Deno.test("listen on an ephemeral port", async () => {
 *   const listener = await listen({ port: 0 });
 *   listener.close();
 *   await pollerIdle();
 * });
 * ```
 */
export function pollerIdle(): Promise<void> {
  return poller.idle();
}

function setNonBlocking(socket: bigint, context: string): void {
  const on = new Uint32Array([1]);
  checkSocketResult(ws2().ioctlsocket(socket, FIONBIO, on), "ioctlsocket", context);
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

function newSocket(family: 4 | 6, type: number, protocol: number, context: string): bigint {
  const s = checkSocket(
    ws2().socket(family === 4 ? AF_INET : AF_INET6, type, protocol),
    "socket",
    context,
  );
  try {
    setNonBlocking(s, context);
  } catch (e) {
    ws2().closesocket(s);
    throw e;
  }
  return s;
}

function closedError(what: string): Deno.errors.BadResource {
  return new Deno.errors.BadResource(`${what} is closed`);
}

/**
 * The socket that a {@linkcode TcpConn}, {@linkcode TcpListener} or {@linkcode DatagramSocket}
 * owns: usable until `close()`, which runs once and goes through the poller (a wait pending on
 * the socket fails with `BadResource`).
 */
class OwnedSocket {
  #socket: bigint | null;
  readonly #what: string;

  /**
   * @param socket The socket, now owned.
   * @param what What it is, for the error once it is closed (`"Listener"`).
   */
  constructor(socket: bigint, what: string) {
    this.#socket = socket;
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

  /** Closes the socket. A second call does nothing. */
  close(): void {
    const s = this.#socket;
    if (s === null) return;
    this.#socket = null;
    poller.close(s, () => closedError(this.#what));
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
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
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
   * @returns How many bytes were read, or `null` at the end of the stream (the peer sent FIN).
   * @throws {Win32Error} On a socket error (`WSAECONNRESET`...).
   * @throws {Deno.errors.BadResource} When the connection is (or gets) closed.
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    parseArg(bytesSchema, buffer, "buffer");
    if (buffer.length === 0) return 0;
    const lib = ws2();
    const len = Math.min(buffer.length, 0x7fff_ffff);
    for (;;) {
      const s = this.#socket.live;
      const n = lib.recv(s, buffer, len, 0);
      if (n > 0) return n;
      if (n === 0) return null;
      const code = wsaLastError();
      if (code !== WSAEWOULDBLOCK) {
        throw new Win32Error("recv", code, { context: `Cannot read from ${this.#peer()}` });
      }
      await poller.wait(s, POLLIN);
    }
  }

  /**
   * Writes all of `data` (waiting while the send buffer is full).
   *
   * @param data The bytes.
   * @returns `data.length`.
   * @throws {Win32Error} On a socket error (`WSAECONNRESET`, `WSAESHUTDOWN`...).
   * @throws {Deno.errors.BadResource} When the connection is (or gets) closed.
   */
  async write(data: Uint8Array): Promise<number> {
    parseArg(bytesSchema, data, "data");
    const lib = ws2();
    let off = 0;
    while (off < data.length) {
      const s = this.#socket.live;
      const chunk = off === 0 && data.length <= 0x7fff_ffff ? data : data.subarray(off);
      const n = lib.send(s, chunk, Math.min(chunk.length, 0x7fff_ffff), 0);
      if (n >= 0) {
        off += n;
        continue;
      }
      const code = wsaLastError();
      if (code !== WSAEWOULDBLOCK) {
        throw new Win32Error("send", code, { context: `Cannot write to ${this.#peer()}` });
      }
      await poller.wait(s, POLLOUT);
    }
    return data.length;
  }

  /**
   * Shuts the sending side (`shutdown(SD_SEND)`): the peer reads the end of the stream; this side
   * can still read.
   *
   * @throws {Win32Error} When `shutdown` fails.
   */
  closeWrite(): Promise<void> {
    checkSocketResult(
      ws2().shutdown(this.#socket.live, SD_SEND),
      "shutdown",
      `Cannot shut down ${this.#peer()}`,
    );
    return Promise.resolve();
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
   * @returns The connection (non-blocking, owned by the caller).
   * @throws {Deno.errors.BadResource} When the listener is (or gets) closed.
   * @throws {Win32Error} When `accept` fails.
   */
  async accept(): Promise<TcpConn> {
    const lib = ws2();
    const addr = new Uint8Array(SOCKADDR_STORAGE_SIZE);
    const len = new Int32Array(1);
    for (;;) {
      const s = this.unsafeHandle;
      len[0] = addr.length;
      const c = lib.accept(s, addr, len);
      if (c !== 0xffff_ffff_ffff_ffffn) {
        try {
          setNonBlocking(c, "Cannot set up an accepted connection");
          return adoptConn(c);
        } catch (e) {
          lib.closesocket(c);
          // A client that reset before we could read its address is gone: wait for the next.
          if (e instanceof Win32Error && (e.code === WSAECONNRESET || e.code === WSAENOTCONN)) {
            continue;
          }
          throw e;
        }
      }
      const code = wsaLastError();
      if (code === WSAECONNRESET) continue; // the client gave up before we accepted
      if (code !== WSAEWOULDBLOCK) {
        throw new Win32Error("accept", code, {
          context: `Cannot accept on ${show(this.addr.hostname, this.addr.port)}`,
        });
      }
      await poller.wait(s, POLLIN);
    }
  }

  /** Yields connections until the listener is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<TcpConn> {
    return this.#socket.untilClosed(() => this.accept());
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
export interface ConnectOptions {
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
}

async function connectOne(addr: Resolved, o: ConnectOptions, context: string): Promise<TcpConn> {
  const lib = ws2();
  const s = newSocket(addr.family, SOCK_STREAM, IPPROTO_TCP, context);
  try {
    if (o.noDelay) setIntOption(s, IPPROTO_TCP, TCP_NODELAY, 1, context);
    const r = lib.connect(s, addr.sockaddr, addr.sockaddr.length);
    if (r === SOCKET_ERROR) {
      const code = wsaLastError();
      if (code !== WSAEWOULDBLOCK) throw new Win32Error("connect", code, { context });
      await poller.wait(s, POLLOUT, o.signal);
      const err = new Int32Array(1);
      const len = new Int32Array([4]);
      checkSocketResult(lib.getsockopt(s, SOL_SOCKET, SO_ERROR, err, len), "getsockopt", context);
      if (err[0] !== 0) throw new Win32Error("connect", err[0], { context });
    }
    return adoptConn(s);
  } catch (e) {
    // through the poller: an aborted wait may have left the socket in the poll in flight
    poller.close(s, () => closedError("Connection"));
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
 *
 * @example Connect with Nagle off
 * ```ts
 * import { connect } from "./socket.ts";
 * using conn = await connect({ hostname: "localhost", port: 8080, noDelay: true });
 * ```
 */
export async function connect(options: ConnectOptions): Promise<TcpConn> {
  const o = parseArg(connectSchema, options, "options");
  const hostname = o.hostname ?? "127.0.0.1";
  const addrs = await resolve(hostname, o.port, { family: o.family, type: SOCK_STREAM });
  const context = `Cannot connect to ${show(hostname, o.port)}`;
  let last: unknown;
  for (const addr of addrs) {
    o.signal?.throwIfAborted();
    try {
      return await connectOne(addr, o, context);
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
   * @param data The payload (at most 65507 bytes for IPv4).
   * @param target Where to (host names are resolved once and remembered).
   * @returns The bytes sent.
   * @throws {Win32Error} When the name does not resolve or `sendto` fails (`WSAEMSGSIZE`...).
   */
  async send(data: Uint8Array, target: DatagramTarget): Promise<number> {
    parseArg(bytesSchema, data, "data");
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
    const lib = ws2();
    for (;;) {
      const s = this.#socket.live;
      const n = lib.sendto(s, data, data.length, 0, addr.sockaddr, addr.sockaddr.length);
      if (n >= 0) return n;
      const code = wsaLastError();
      if (code !== WSAEWOULDBLOCK) {
        throw new Win32Error("sendto", code, {
          context: `Cannot send a datagram to ${show(hostname, t.port)}`,
        });
      }
      await poller.wait(s, POLLOUT);
    }
  }

  /**
   * Receives one datagram.
   *
   * @param buffer Where to receive (default a new 64 KiB buffer); a longer datagram is an error.
   * @returns The payload and the sender's address.
   * @throws {Win32Error} When `recvfrom` fails (`WSAEMSGSIZE` for a datagram longer than the buffer).
   * @throws {Deno.errors.BadResource} When the socket is (or gets) closed.
   */
  async receive(buffer?: Uint8Array): Promise<[Uint8Array, NetAddr]> {
    const buf = buffer === undefined
      ? new Uint8Array(65536)
      : parseArg(bytesSchema, buffer, "buffer");
    const from = new Uint8Array(SOCKADDR_STORAGE_SIZE);
    const fromLen = new Int32Array(1);
    const lib = ws2();
    for (;;) {
      const s = this.#socket.live;
      fromLen[0] = from.length;
      const n = lib.recvfrom(s, buf, buf.length, 0, from, fromLen);
      if (n >= 0) return [buf.subarray(0, n), readSockaddr(from, "udp")];
      const code = wsaLastError();
      // WSAECONNRESET on UDP reports an ICMP "port unreachable" for an earlier send: not fatal.
      if (code === WSAECONNRESET) continue;
      if (code !== WSAEWOULDBLOCK) {
        const context = code === WSAEMSGSIZE
          ? `Datagram longer than the ${buf.length}-byte buffer`
          : "Cannot receive a datagram";
        throw new Win32Error("recvfrom", code, { context });
      }
      await poller.wait(s, POLLIN);
    }
  }

  /** Yields datagrams until the socket is closed. */
  [Symbol.asyncIterator](): AsyncIterableIterator<[Uint8Array, NetAddr]> {
    return this.#socket.untilClosed(() => this.receive());
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
