/**
 * Named pipes: a {@linkcode NamedPipeServer} that is an async iterable of connections (like
 * `Deno.listen`), a client ({@linkcode NamedPipeClient.connect}), and connections
 * ({@linkcode PipeConnection}) with `read`/`write`, whole messages, `transact`, `peek` and
 * `readable`/`writable` streams. {@linkcode callNamedPipe} does a one-shot request/response.
 *
 * All I/O is overlapped (`FILE_FLAG_OVERLAPPED`, see `_io.ts`): many reads and writes
 * can be in flight on many connections at once, the event loop is never blocked, and every
 * operation takes an `AbortSignal` (cancelled with `CancelIoEx`) and a timeout.
 *
 * Names: `foo` means `\\.\pipe\foo`; a full path (`\\.\pipe\foo`, `\\server\pipe\foo` for a
 * client) is taken as given. The pipe's own name may not contain a backslash and the whole path
 * is at most 256 characters.
 *
 * Behaviour that differs from raw Win32, on purpose:
 * - The end of the stream: a read that fails with `ERROR_BROKEN_PIPE` (the peer closed) or
 *   `ERROR_PIPE_NOT_CONNECTED` (the server disconnected) returns `null`, like `Deno.Conn.read`;
 *   a write to a closed peer throws `Deno.errors.BrokenPipe`.
 * - Security: by default a server's pipe gets a DACL that lets only the current user in
 *   (`D:P(A;;GA;;;<your SID>)`), remote clients are rejected (`PIPE_REJECT_REMOTE_CLIENTS`), and
 *   `FILE_FLAG_FIRST_PIPE_INSTANCE` refuses a name some other server already holds. Clients ask
 *   for `SECURITY_IDENTIFICATION` by default (`impersonationLevel`), so a server can tell who
 *   they are but cannot act as them.
 * - Identity: a server's connection tells the client's process (`clientProcessId`), user
 *   (`clientUser()`) and computer (`clientComputerName()`); `impersonate(fn)` runs a synchronous
 *   `fn` as the client and always reverts.
 * - Message mode: {@linkcode PipeConnection.readMessage} reassembles a message longer than the
 *   read buffer (`ERROR_MORE_DATA`), so callers always get whole messages, up to
 *   `maxMessageBytes` (default 64 MiB): a longer one is refused before it is read, with a
 *   {@linkcode MessageTooLargeError}, and that connection is closed.
 *
 * @example An echo server and a client
 * ```ts
 * import { NamedPipeClient, NamedPipeServer } from "./pipe.ts";
 *
 * using server = NamedPipeServer.listen("echo", { mode: "message" });
 * (async () => {
 *   for await (const conn of server) {
 *     (async () => {
 *       using c = conn;
 *       for (let m; (m = await c.readMessage()) !== null;) await c.write(m);
 *     })();
 *   }
 * })();
 *
 * using client = await NamedPipeClient.connect("echo", { timeout: 5000 });
 * const reply = await client.transact(new TextEncoder().encode("hello"));
 * console.log(new TextDecoder().decode(reply)); // "hello"
 * ```
 *
 * @module
 */
import { z } from "zod";
import { advapi32 } from "../ffi/advapi32.ts";
import {
  checkBool,
  checkHandle,
  errorName,
  lastError,
  win32Error,
  withLastError,
} from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  FILE_FLAG_FIRST_PIPE_INSTANCE,
  FILE_FLAG_OVERLAPPED,
  FILE_SHARE_READ,
  FILE_SHARE_WRITE,
  GENERIC_READ,
  GENERIC_WRITE,
  kernel32,
  kernel32Extra,
  OPEN_EXISTING,
  PIPE_ACCESS_DUPLEX,
  PIPE_READMODE_BYTE,
  PIPE_READMODE_MESSAGE,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
  PIPE_TYPE_MESSAGE,
  PIPE_UNLIMITED_INSTANCES,
  PIPE_WAIT,
  SECURITY_IDENTIFICATION,
  SECURITY_SQOS_PRESENT,
  SYNCHRONIZE,
} from "../ffi/kernel32.ts";
import { currentUserSid, SecurityAttributes } from "../ffi/security.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import {
  associate,
  cancelAll,
  ERROR_OPERATION_ABORTED,
  type IoResult,
  OverlappedOp,
  type OverlappedRunOptions,
} from "./_io.ts";
import { clientPipeNameSchema, serverPipeNameSchema } from "./_names.ts";
import {
  checkServerOwner,
  openThreadToken,
  parseDirectoryEntries,
  type PipeInfo,
  type PipeUser,
  tokenUser,
} from "./_pipe_native.ts";
import { ntdll } from "../ffi/ntdll.ts";
import { ProtocolError } from "./channel.ts";
import { type IoOptions, ioOptionsSchema, parseArg, signalSchema } from "./_validate.ts";
import { sleep } from "./_wait.ts";
import { Lane } from "./_queue.ts";

export { MAX_PIPE_PATH } from "./_names.ts";
export type { PipeInfo, PipeUser } from "./_pipe_native.ts";

/**
 * Default of `maxMessageBytes`: 64 MiB.
 *
 * @example Raise the limit fourfold for one server
 * ```ts
 * import { DEFAULT_MAX_MESSAGE_BYTES, NamedPipeServer } from "./pipe.ts";
 * using server = NamedPipeServer.listen("bulk", {
 *   mode: "message",
 *   maxMessageBytes: 4 * DEFAULT_MAX_MESSAGE_BYTES,
 * });
 * ```
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * A peer sent a message longer than this end's `maxMessageBytes`. It was refused before its
 * bytes were read (the size comes from `PeekNamedPipe`'s count of what is left of the message,
 * so no buffer of that size was made), and the connection was closed: the peer sees the end of
 * the stream. Other connections of a server are not affected.
 *
 * @example Tell an oversized message from other failures
 * ```ts
 * import { MessageTooLargeError, type PipeConnection } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * try {
 *   await conn.readMessage({ maxMessageBytes: 1 << 20 });
 * } catch (e) {
 *   if (e instanceof MessageTooLargeError) console.log(`refused ${e.size} bytes`);
 *   else throw e;
 * }
 * ```
 */
export class MessageTooLargeError extends ProtocolError {
  /** The message's size in bytes, or, when the system did not say, how many arrived before the limit. */
  readonly size: number;
  /** The limit it broke. */
  readonly limit: number;

  /**
   * Makes the error.
   *
   * @param path The pipe's path.
   * @param size The message's size (or the bytes seen so far, with `atLeast`).
   * @param limit The limit.
   * @param atLeast Whether `size` is a lower bound.
   */
  constructor(path: string, size: number, limit: number, atLeast = false) {
    super(
      `Pipe "${path}": a message of ${atLeast ? "more than " : ""}${size} bytes is larger than ` +
        `maxMessageBytes (${limit}); the connection is closed`,
      "ERR_MESSAGE_TOO_LARGE",
    );
    this.name = "MessageTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

const ERROR_FILE_NOT_FOUND = 2;
const ERROR_ACCESS_DENIED = 5;
const ERROR_BROKEN_PIPE = 109;
const ERROR_ALREADY_EXISTS = 183;
const ERROR_PIPE_BUSY = 231;
const ERROR_NO_DATA = 232;
const ERROR_PIPE_NOT_CONNECTED = 233;
const ERROR_MORE_DATA = 234;
const ERROR_PIPE_CONNECTED = 535;
const ERROR_PIPE_LOCAL = 229;

/** Whether this thread impersonates a pipe client now (inside `impersonate`). */
let impersonating = false;

/**
 * Ends an impersonation (`RevertToSelf`). Its failure is thrown: the thread would otherwise go
 * on acting as the client.
 */
function revertToSelf(): void {
  checkBool(advapi32().RevertToSelf(), "RevertToSelf", "Cannot stop impersonating a pipe client");
}

/**
 * How a pipe carries data: a byte stream, or messages whose boundaries are kept.
 *
 * @example Server and client agree on message mode
 * ```ts
 * import { NamedPipeClient, NamedPipeServer, type PipeMode } from "./pipe.ts";
 * const mode: PipeMode = "message";
 * using server = NamedPipeServer.listen("jobs", { mode });
 * await using client = await NamedPipeClient.connect("jobs", { mode });
 * ```
 */
export type PipeMode = "byte" | "message";

/**
 * What a client opens a pipe for: both ways (`"duplex"`, the default), or one way. A one-way
 * client can reach a server that only sends (`PIPE_ACCESS_OUTBOUND`: open it `"read"`) or only
 * receives (`PIPE_ACCESS_INBOUND`: open it `"write"`), which refuse a duplex open.
 *
 * @example Read what a server broadcasts, without the right to write
 * ```ts
 * import { NamedPipeClient } from "./pipe.ts";
 * using feed = await NamedPipeClient.connect("ticker", { access: "read" });
 * for await (const chunk of feed.readable) console.log(chunk.length);
 * ```
 */
export type PipeAccess = "read" | "write" | "duplex";

// ---------------------------------------------------------------------------------------------
// names and validation

/**
 * The full path of a pipe name: `foo` becomes `\\.\pipe\foo`, a full path stays as it is.
 *
 * @param name A pipe name or path.
 * @returns The full path.
 * @throws {TypeError} When the name is not valid.
 * @throws {RangeError} When the path is longer than 256 characters.
 *
 * @example The path of a pipe name
 * ```ts
 * import { pipePath } from "./pipe.ts";
 * pipePath("jobs"); // "\\\\.\\pipe\\jobs"
 * ```
 */
export function pipePath(name: string): string {
  return parseArg(clientPipeNameSchema, name, "name");
}

const modeSchema = z.enum(["byte", "message"], { error: 'must be "byte" or "message"' });
const bufferSizeSchema = z.number({ error: "must be a number of bytes" })
  .int({ error: "must be a whole number of bytes" })
  .min(0, { error: "must not be negative" })
  .max(0x7fff_ffff, { error: "must be below 2 GiB" });
const readSizeSchema = z.number({ error: "must be a number of bytes" })
  .int({ error: "must be a whole number of bytes" })
  .min(1, { error: "must be at least 1 byte" })
  .max(0x7fff_ffff, { error: "must be below 2 GiB" });
const ioOptionsArg = ioOptionsSchema.optional();
const maxMessageSchema = z.number({ error: "must be a number of bytes" })
  .int({ error: "must be a whole number of bytes" })
  .min(1, { error: "must be at least 1 byte" })
  .max(0xffff_ffff, { error: "must be below 4 GiB" });
const readMessageOptionsSchema = ioOptionsSchema.extend({
  maxMessageBytes: maxMessageSchema.optional(),
}).strict().optional();
const bytesSchema = z.union([z.instanceof(Uint8Array), z.string()], {
  error: "must be a Uint8Array or a string",
});

export type { IoOptions } from "./_validate.ts";

/**
 * Options of {@linkcode PipeConnection.readMessage}.
 *
 * @example Accept messages up to 1 MiB from this peer
 * ```ts
 * import type { PipeConnection } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * const message = await conn.readMessage({ maxMessageBytes: 1 << 20, timeout: 5000 });
 * ```
 */
export interface ReadMessageOptions extends IoOptions {
  /**
   * The longest message accepted (message mode); a longer one is refused before it is read,
   * with {@linkcode MessageTooLargeError}, and the connection is closed. Default: the
   * connection's own (`maxMessageBytes` of the server or of `connect`, default 64 MiB).
   */
  maxMessageBytes?: number;
}

function toBytes(data: Uint8Array | string): Uint8Array<ArrayBuffer> {
  if (typeof data === "string") return new TextEncoder().encode(data);
  // FFI needs memory that stays put while the operation is in flight: copy views of shared or
  // resizable buffers, pass ordinary ones as they are.
  return data.buffer instanceof ArrayBuffer && !data.buffer.resizable
    ? data as Uint8Array<ArrayBuffer>
    : new Uint8Array(data);
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1 && chunks[0].buffer instanceof ArrayBuffer) {
    return chunks[0] as Uint8Array<ArrayBuffer>;
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// connections

/**
 * What {@linkcode PipeConnection.peek} sees without reading.
 *
 * @example Look at the first bytes of the next message
 * ```ts
 * import type { PipeConnection } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * const { available, leftThisMessage, data } = conn.peek(4);
 * if (available > 0) console.log(`${leftThisMessage} bytes, starting with`, data);
 * ```
 */
export interface PeekResult {
  /** Bytes waiting in the pipe (all messages). */
  available: number;
  /** Bytes left in the current message (message mode; 0 in byte mode). */
  leftThisMessage: number;
  /** Up to the requested number of the first waiting bytes, not consumed. */
  data: Uint8Array;
}

/**
 * Options of {@linkcode PipeConnection.transact}.
 *
 * @example Expect large replies
 * ```ts
 * import type { PipeConnection } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * const report = await conn.transact("report", { replyBufferSize: 1 << 20, timeout: 10_000 });
 * ```
 */
export interface TransactOptions extends IoOptions {
  /** The first read's buffer size; a longer reply is reassembled. Default 65536. */
  replyBufferSize?: number;
  /**
   * The longest reply accepted; a longer one is refused before it is read, with
   * {@linkcode MessageTooLargeError}, and the connection is closed. Default: the connection's
   * own (64 MiB unless `connect` said otherwise).
   */
  maxMessageBytes?: number;
}

const transactOptionsSchema = ioOptionsSchema.extend({
  replyBufferSize: readSizeSchema.optional(),
  maxMessageBytes: maxMessageSchema.optional(),
}).strict().optional();

// Users never make a connection: the constructor is protected, and the server makes one through
// this, which the class's static block sets (the client is its subclass).
let newConnection!: (init: ConnectionInit) => PipeConnection;

/** What the server and the client hand a {@linkcode PipeConnection}. */
interface ConnectionInit {
  path: string;
  side: "server" | "client";
  mode: PipeMode;
  access?: PipeAccess;
  handle: OwnedHandle;
  readOp?: OverlappedOp;
  readBufferSize?: number;
  maxMessageBytes?: number;
  onClose?: () => void;
}

/**
 * One end of a connected named pipe: a server's connection (from {@linkcode NamedPipeServer}) or
 * a client ({@linkcode NamedPipeClient}). One read and one write may run at the same time; more
 * calls of the same kind queue in order.
 *
 * `close()` cancels what is in flight (reads reject with `Deno.errors.Interrupted`) and closes
 * the handle once the cancelled operations have ended. Data already written stays readable by
 * the peer, which then sees the end of the stream.
 *
 * @example Read whole messages until the peer closes
 * ```ts
 * import type { PipeConnection } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * for (let m; (m = await conn.readMessage()) !== null;) console.log(m.length);
 * ```
 */
export class PipeConnection implements Disposable, AsyncDisposable {
  /** The pipe's full path, e.g. `\\.\pipe\jobs`. */
  readonly path: string;
  /** Which end this is. */
  readonly side: "server" | "client";
  /** The read mode: `"message"` reads stop at message boundaries. */
  readonly mode: PipeMode;
  /**
   * What this end may do: `"duplex"` (a server's connection, and clients by default), or a
   * client opened `"read"`-only or `"write"`-only.
   */
  readonly access: PipeAccess;
  readonly #handle: OwnedHandle;
  readonly #readOp: OverlappedOp;
  readonly #writeOp: OverlappedOp;
  readonly #readLane = new Lane();
  readonly #writeLane = new Lane();
  readonly #readBufferSize: number;
  readonly #maxMessageBytes: number;
  #onClose: (() => void) | undefined;
  #closing = false;
  /** Whether the handle is associated with the completion port (done once, on first I/O). */
  #associated = false;
  /**
   * `readMessage`'s read buffer (`readBufferSize` bytes, made on its first call): each message is
   * copied out of it, instead of a fresh buffer of that size being made and zeroed per read.
   */
  #scratch: Uint8Array<ArrayBuffer> | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  static {
    newConnection = (init) => new PipeConnection(init);
  }

  /**
   * Made by {@linkcode NamedPipeServer} and {@linkcode NamedPipeClient.connect} (protected, not
   * private, for {@linkcode NamedPipeClient}, which extends this class).
   */
  protected constructor(init: ConnectionInit) {
    this.path = init.path;
    this.side = init.side;
    this.mode = init.mode;
    this.access = init.access ?? "duplex";
    this.#handle = init.handle;
    this.#readOp = init.readOp ?? new OverlappedOp();
    this.#writeOp = new OverlappedOp();
    this.#readBufferSize = init.readBufferSize ?? 65536;
    this.#maxMessageBytes = init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#onClose = init.onClose;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * The raw pipe handle, for FFI calls of your own. Valid until `close()`.
   *
   * @throws {Deno.errors.BadResource} When closed.
   */
  get unsafeHandle(): Deno.PointerObject {
    this.#check();
    return this.#handle.unsafeHandle;
  }

  /** Refuses an operation this end was not opened for. */
  #may(what: "read" | "write"): void {
    if (this.access !== "duplex" && this.access !== what) {
      throw new Deno.errors.NotSupported(
        `Cannot ${what === "read" ? "read from" : "write to"} pipe "${this.path}": this end ` +
          `was opened ${this.access}-only (access: "${this.access}")`,
      );
    }
  }

  /**
   * The run options of one operation on `h`, this connection's handle: associates it with the
   * completion port on its first operation, so later ones skip `run`'s per-operation attempt
   * (about 13 µs under a loaded Wine, twice per round trip).
   */
  #io(h: Deno.PointerObject, opts: IoOptions, what: string): OverlappedRunOptions {
    const context = this.#context(what);
    if (!this.#associated) {
      associate(h, context);
      this.#associated = true;
    }
    return { ...opts, context, associated: true };
  }

  #check(): Deno.PointerObject {
    if (this.#closing) throw new Deno.errors.BadResource(`Pipe "${this.path}" is closed`);
    return this.#handle.unsafeHandle;
  }

  /**
   * The process id at the client end (`GetNamedPipeClientProcessId`).
   *
   * @throws {Win32Error} When the system cannot tell.
   */
  get clientProcessId(): number {
    return this.#processId("GetNamedPipeClientProcessId", "client");
  }

  /**
   * The process id at the server end (`GetNamedPipeServerProcessId`).
   *
   * @throws {Win32Error} When the system cannot tell.
   */
  get serverProcessId(): number {
    return this.#processId("GetNamedPipeServerProcessId", "server");
  }

  /** The process id at one end of the pipe. */
  #processId(
    fn: "GetNamedPipeClientProcessId" | "GetNamedPipeServerProcessId",
    end: "client" | "server",
  ): number {
    const out = new Uint32Array(1);
    if (!kernel32()[fn](this.#check(), out)) {
      throw win32Error(fn, lastError(), {
        context: `Cannot get the ${end} process of pipe "${this.path}"`,
      });
    }
    return out[0];
  }

  /** The handle of a server end, or a clear error for a client. */
  #serverEnd(what: string): Deno.PointerObject {
    if (this.side !== "server") {
      throw new TypeError(`Cannot ${what} on pipe "${this.path}": this is the client end`);
    }
    return this.#check();
  }

  /** Starts impersonating the client on this thread; the caller must revert. */
  #impersonateClient(what: string): void {
    const h = this.#serverEnd(what);
    if (impersonating) {
      throw new TypeError(
        `Cannot ${what} on pipe "${this.path}": this thread impersonates a client already`,
      );
    }
    if (!advapi32().ImpersonateNamedPipeClient(h)) {
      throw win32Error("ImpersonateNamedPipeClient", lastError(), {
        context: this.#context(`${what} on`),
      });
    }
  }

  /**
   * The user at the client end (server side only): the server impersonates the client for a
   * moment (`ImpersonateNamedPipeClient`), opens the thread's token (`OpenThreadToken`), reverts
   * at once (`RevertToSelf`, also on failure), then reads the token's user
   * (`GetTokenInformation(TokenUser)`) and names it (`LookupAccountSidW`).
   *
   * A client that connected with `impersonationLevel: "anonymous"` shows as the anonymous
   * logon (`S-1-5-7`) on Windows.
   *
   * @returns The client's SID, account name and domain.
   * @throws {TypeError} On a client end.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Win32Error} When the system cannot tell.
   *
   * @example Serve only one account
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * const user = conn.clientUser();
   * if (user.name !== "backup") conn.close();
   * ```
   */
  clientUser(): PipeUser {
    this.#impersonateClient("read the client's user");
    let token: Deno.PointerObject | null;
    try {
      token = openThreadToken();
    } finally {
      revertToSelf();
    }
    if (token === null) {
      throw win32Error("OpenThreadToken", 1008, {
        context: this.#context("read the client's user of"),
      });
    }
    try {
      return tokenUser(token);
    } finally {
      kernel32().CloseHandle(token);
    }
  }

  /**
   * The computer the client runs on (server side only; `GetNamedPipeClientComputerNameW`), or
   * `null` for a client on this machine (`ERROR_PIPE_LOCAL`).
   *
   * Wine 10 has no `GetNamedPipeClientComputerNameW`: there this throws an `Error` that says so.
   *
   * @returns The client's computer name, or `null` when it is local.
   * @throws {TypeError} On a client end.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Win32Error} When the system cannot tell.
   *
   * @example Log where a client comes from
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * console.log(conn.clientComputerName() ?? "this machine");
   * ```
   */
  clientComputerName(): string | null {
    const h = this.#serverEnd("read the client's computer name");
    let fn;
    try {
      fn = kernel32Extra().GetNamedPipeClientComputerNameW;
    } catch (cause) {
      throw new Error(
        `Cannot read the client's computer name of pipe "${this.path}": this system has no ` +
          "GetNamedPipeClientComputerNameW (Wine 10 lacks it)",
        { cause },
      );
    }
    const buffer = new Uint16Array(256);
    if (!fn(h, buffer, buffer.byteLength)) {
      const code = lastError();
      if (code === ERROR_PIPE_LOCAL) return null;
      throw win32Error("GetNamedPipeClientComputerNameW", code, {
        context: this.#context("read the client's computer name of"),
      });
    }
    return fromWide(buffer);
  }

  /**
   * Runs `fn` on this thread while impersonating the client (server side only), and always
   * reverts (`RevertToSelf`), also when `fn` throws.
   *
   * Impersonation belongs to a thread, and JavaScript's `await` gives the thread to other code,
   * so `fn` must be synchronous: everything it does happens under the client's identity and
   * nothing else runs meanwhile. A function that returns a promise is refused with a
   * `TypeError` after the revert (the part after its first `await` would run as the server,
   * not as the client); its rejection is handled. Calls do not nest.
   *
   * What the client lets the server do while impersonating is the client's choice
   * ({@linkcode NamedPipeConnectOptions.impersonationLevel}): at the default, identification,
   * the server may read the client's token and check access against it, but opening a file
   * as the client fails with `ERROR_BAD_IMPERSONATION_LEVEL`.
   *
   * @param fn A synchronous function.
   * @returns What `fn` returned.
   * @throws {TypeError} On a client end, for a `fn` that returns a promise, or when nested.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Win32Error} When `ImpersonateNamedPipeClient` or `RevertToSelf` fails.
   * @throws What `fn` throws.
   *
   * @example Open a file as the client (the client must allow impersonation)
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * const text = conn.impersonate(() => Deno.readTextFileSync("C:\\Users\\Public\\note.txt"));
   * ```
   */
  impersonate<T>(fn: () => T): T {
    if (typeof fn !== "function") {
      throw new TypeError('Invalid argument "fn": must be a function');
    }
    this.#impersonateClient("impersonate the client");
    impersonating = true;
    let result: T;
    try {
      result = fn();
    } finally {
      impersonating = false;
      revertToSelf();
    }
    const maybe = result as { then?: unknown; catch?: unknown } | null | undefined;
    if (maybe !== null && typeof maybe === "object" && typeof maybe.then === "function") {
      (result as PromiseLike<unknown>).then(undefined, () => undefined);
      throw new TypeError(
        `Cannot impersonate the client on pipe "${this.path}": fn returned a promise; ` +
          "impersonation holds on one thread only while fn runs, so fn must be synchronous",
      );
    }
    return result;
  }

  #context(what: string): string {
    return `Cannot ${what} pipe "${this.path}"`;
  }

  /** Maps a read's status: `null` for the end of the stream, throws for failures. */
  #readStatus(result: IoResult, functionName: string): "ok" | "more" | "eof" {
    switch (result.error) {
      case 0:
        return "ok";
      case ERROR_MORE_DATA:
        return "more";
      case ERROR_BROKEN_PIPE:
      case ERROR_PIPE_NOT_CONNECTED:
        return "eof";
      case ERROR_OPERATION_ABORTED:
        throw new Deno.errors.Interrupted(`Read from pipe "${this.path}" was cancelled: closed`);
      default:
        throw win32Error(functionName, result.error, {
          context: this.#context("read from"),
        });
    }
  }

  /**
   * Reads up to `buffer.length` bytes. In message mode a read stops at the end of a message; a
   * message longer than the buffer comes in several reads (use {@linkcode readMessage} for
   * whole messages).
   *
   * @param buffer Where the bytes go.
   * @param options AbortSignal and timeout.
   * @returns The number of bytes read, or `null` at the end of the stream (the peer closed:
   *   `ERROR_BROKEN_PIPE` / `ERROR_PIPE_NOT_CONNECTED`).
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Deno.errors.Interrupted} When `close()` ran during the read.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed.
   * @throws {Win32Error} When `ReadFile` fails otherwise.
   *
   * @example Read with a timeout
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * const buffer = new Uint8Array(4096);
   * const n = await conn.read(buffer, { timeout: 1000 });
   * ```
   */
  async read(buffer: Uint8Array, options?: IoOptions): Promise<number | null> {
    parseArg(z.instanceof(Uint8Array, { error: "must be a Uint8Array" }), buffer, "buffer");
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    this.#may("read");
    const target = toBytes(buffer);
    return await this.#readLane.run(async () => {
      const h = this.#check();
      const result = await this.#readOp.run(
        h,
        (ov) => kernel32().ReadFile(h, target, target.length, null, ov),
        this.#io(h, opts, "read from"),
      );
      const status = this.#readStatus(result, "ReadFile");
      if (status === "eof") return null;
      if (target !== buffer) buffer.set(target.subarray(0, result.bytes));
      return result.bytes;
    });
  }

  /**
   * Reads one whole message (message mode), reassembling one longer than the read buffer: the
   * first `ReadFile` fills the connection's read buffer, `ERROR_MORE_DATA` says there is more,
   * `PeekNamedPipe` tells how much, and further reads fetch the rest. In byte mode this returns
   * whatever one read gets (up to the read buffer size).
   *
   * A message longer than `maxMessageBytes` is refused before it is read: its size is known
   * from `PeekNamedPipe` after the first read, no buffer of that size is made, the connection
   * is closed and {@linkcode MessageTooLargeError} is thrown.
   *
   * @param options AbortSignal, timeout (for each underlying read), `maxMessageBytes`.
   * @returns The message, or `null` at the end of the stream.
   * @throws {MessageTooLargeError} When the message is longer than `maxMessageBytes`.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Deno.errors.Interrupted} When `close()` ran during the read.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed.
   * @throws {Win32Error} When a read fails otherwise.
   *
   * @example Read one whole message
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * const message = await conn.readMessage();
   * if (message) console.log(new TextDecoder().decode(message));
   * ```
   */
  async readMessage(options?: ReadMessageOptions): Promise<Uint8Array<ArrayBuffer> | null> {
    const { maxMessageBytes, ...opts }: ReadMessageOptions =
      parseArg(readMessageOptionsSchema, options, "options") ?? {};
    this.#may("read");
    const limit = maxMessageBytes ?? this.#maxMessageBytes;
    return await this.#readLane.run(() => this.#readWhole(opts, this.#readBufferSize, limit));
  }

  /** Closes the connection and makes the error for a message over `limit`. */
  #tooLarge(size: number, limit: number, atLeast = false): MessageTooLargeError {
    this.close();
    return new MessageTooLargeError(this.path, size, limit, atLeast);
  }

  /**
   * Reads the rest of a message (or a first chunk of `size`) until the message ends, refusing
   * one longer than `limit` (message mode) before reading more of it.
   */
  async #readWhole(
    opts: IoOptions,
    size: number,
    limit: number,
    first: Uint8Array[] = [],
  ): Promise<Uint8Array<ArrayBuffer> | null> {
    const chunks = first;
    let more = first.length > 0;
    let total = first.reduce((n, c) => n + c.length, 0);
    for (;;) {
      const h = this.#check();
      const scratch = size === this.#readBufferSize
        ? this.#scratch ??= new Uint8Array(size)
        : undefined;
      const buffer = scratch ?? new Uint8Array(size);
      const result = await this.#readOp.run(
        h,
        (ov) => kernel32().ReadFile(h, buffer, buffer.length, null, ov),
        this.#io(h, opts, "read from"),
      );
      const status = this.#readStatus(result, "ReadFile");
      if (status === "eof") {
        if (more) {
          throw new Deno.errors.UnexpectedEof(
            `Pipe "${this.path}" closed in the middle of a message`,
          );
        }
        return null;
      }
      chunks.push(scratch ? scratch.slice(0, result.bytes) : buffer.subarray(0, result.bytes));
      total += result.bytes;
      if (this.mode === "message" && total > limit) throw this.#tooLarge(total, limit);
      if (status === "ok") return concat(chunks);
      if (result.bytes === 0) {
        // "More data" with none read: never seen; reading on would never yield.
        throw win32Error("ReadFile", ERROR_MORE_DATA, {
          context: `${this.#context("read from")}: a read reported more data but returned none`,
        });
      }
      more = true;
      size = this.#nextChunk(h, total, limit);
    }
  }

  /**
   * After `ERROR_MORE_DATA` with `total` bytes read: the size of the next read, the rest of the
   * message as `PeekNamedPipe` counts it. A message whose size passes `limit` is refused here,
   * before any buffer for it is made; when the system does not tell the size, reads go on in
   * read-buffer chunks and the total is checked after each.
   */
  #nextChunk(h: Deno.PointerObject, total: number, limit: number): number {
    const left = this.#peekCounts(h).leftThisMessage;
    if (left > 0 && total + left > limit) throw this.#tooLarge(total + left, limit);
    if (left > 0) return left;
    return Math.max(1, Math.min(this.#readBufferSize, limit - total + 1));
  }

  #peekCounts(h: Deno.PointerObject): { available: number; leftThisMessage: number } {
    const available = new Uint32Array(1);
    const left = new Uint32Array(1);
    const [ok, code] = withLastError(() =>
      kernel32().PeekNamedPipe(h, null, 0, null, available, left)
    );
    if (!ok) {
      if (code === ERROR_BROKEN_PIPE || code === ERROR_PIPE_NOT_CONNECTED) {
        return { available: 0, leftThisMessage: 0 };
      }
      throw win32Error("PeekNamedPipe", code, { context: this.#context("peek into") });
    }
    return { available: available[0], leftThisMessage: left[0] };
  }

  /**
   * Looks at waiting data without consuming it (`PeekNamedPipe`). Never waits.
   *
   * @param size How many of the first waiting bytes to copy (default 0: counts only).
   * @returns The counts and the bytes.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Win32Error} When `PeekNamedPipe` fails (other than at the end of the stream).
   *
   * @example See whether data is waiting
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * if (conn.peek().available > 0) console.log("data is waiting");
   * ```
   */
  peek(size = 0): PeekResult {
    parseArg(bufferSizeSchema, size, "size");
    this.#may("read");
    const h = this.#check();
    const buffer = new Uint8Array(size);
    const read = new Uint32Array(1);
    const available = new Uint32Array(1);
    const left = new Uint32Array(1);
    const [ok, code] = withLastError(() =>
      kernel32().PeekNamedPipe(h, size ? buffer : null, size, read, available, left)
    );
    if (!ok) {
      if (code === ERROR_BROKEN_PIPE || code === ERROR_PIPE_NOT_CONNECTED) {
        return { available: 0, leftThisMessage: 0, data: new Uint8Array(0) };
      }
      throw win32Error("PeekNamedPipe", code, { context: this.#context("peek into") });
    }
    return {
      available: available[0],
      leftThisMessage: left[0],
      data: buffer.subarray(0, read[0]),
    };
  }

  #writeStatus(result: IoResult, functionName: string): void {
    if (result.error === 0) return;
    if (
      result.error === ERROR_BROKEN_PIPE || result.error === ERROR_NO_DATA ||
      result.error === ERROR_PIPE_NOT_CONNECTED
    ) {
      throw new Deno.errors.BrokenPipe(
        `Cannot write to pipe "${this.path}": the other end is closed (${errorName(result.error)})`,
      );
    }
    if (result.error === ERROR_OPERATION_ABORTED) {
      throw new Deno.errors.Interrupted(`Write to pipe "${this.path}" was cancelled: closed`);
    }
    throw win32Error(functionName, result.error, { context: this.#context("write to") });
  }

  /**
   * Writes all of `data`; in message mode, as one message. Resolves when the pipe has taken the
   * bytes (they sit in its buffer until the peer reads them).
   *
   * @param data Bytes, or text (written as UTF-8).
   * @param options AbortSignal and timeout.
   * @returns The number of bytes written.
   * @throws {Deno.errors.BrokenPipe} When the peer has closed.
   * @throws {Deno.errors.BadResource} When the connection is closed.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed (the peer does not read).
   * @throws {Deno.errors.WriteZero} When a byte-mode `WriteFile` succeeds but takes no bytes.
   * @throws {Win32Error} When `WriteFile` fails otherwise.
   *
   * @example Write text
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * await conn.write("hello");
   * ```
   */
  async write(data: Uint8Array | string, options?: IoOptions): Promise<number> {
    parseArg(bytesSchema, data, "data");
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    this.#may("write");
    const bytes = toBytes(data);
    return await this.#writeLane.run(async () => {
      let written = 0;
      do {
        const h = this.#check();
        const rest = written ? bytes.subarray(written) : bytes;
        const result = await this.#writeOp.run(
          h,
          (ov) => kernel32().WriteFile(h, rest, rest.length, null, ov),
          this.#io(h, opts, "write to"),
        );
        this.#writeStatus(result, "WriteFile");
        if (result.bytes === 0 && rest.length > 0) {
          // Never seen; looping on it would never yield to the event loop.
          throw new Deno.errors.WriteZero(
            `Cannot write to pipe "${this.path}": WriteFile succeeded but took no bytes`,
          );
        }
        written += result.bytes;
        // A message-mode write is all or nothing; a byte-mode one may be partial in theory.
      } while (written < bytes.length && this.mode === "byte");
      return written;
    });
  }

  /**
   * Writes a request message and reads the reply message in one call (`TransactNamedPipe`).
   * The connection must be in message read mode, and nothing else may be waiting to be read.
   * A reply longer than `replyBufferSize` is reassembled.
   *
   * @param request The request (bytes, or text as UTF-8).
   * @param options AbortSignal, timeout and the reply buffer size.
   * @returns The reply.
   * @throws {MessageTooLargeError} When the reply is longer than `maxMessageBytes` (the
   *   connection is then closed).
   * @throws {Deno.errors.BrokenPipe} When the server closed before replying.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed.
   * @throws {Win32Error} When `TransactNamedPipe` fails (e.g. `ERROR_BAD_PIPE` in byte mode).
   *
   * @example Send a request and read the reply
   * ```ts
   * import type { PipeConnection } from "./pipe.ts";
   * declare const conn: PipeConnection;
   * const reply = await conn.transact("status?", { timeout: 5000 });
   * ```
   */
  async transact(request: Uint8Array | string, options?: TransactOptions): Promise<Uint8Array> {
    parseArg(bytesSchema, request, "request");
    const opts: TransactOptions = parseArg(transactOptionsSchema, options, "options") ?? {};
    this.#may("write");
    this.#may("read");
    const bytes = toBytes(request);
    const size = opts.replyBufferSize ?? this.#readBufferSize;
    const limit = opts.maxMessageBytes ?? this.#maxMessageBytes;
    const io = { signal: opts.signal, timeout: opts.timeout };
    // A transaction is a write and a read: it holds both lanes.
    return await this.#writeLane.run(() =>
      this.#readLane.run(async () => {
        const h = this.#check();
        const reply = new Uint8Array(size);
        const result = await this.#readOp.run(
          h,
          (ov) => kernel32().TransactNamedPipe(h, bytes, bytes.length, reply, size, null, ov),
          this.#io(h, io, "transact on"),
        );
        if (result.error === ERROR_BROKEN_PIPE || result.error === ERROR_PIPE_NOT_CONNECTED) {
          throw new Deno.errors.BrokenPipe(
            `Cannot transact on pipe "${this.path}": the other end closed (${
              errorName(result.error)
            })`,
          );
        }
        if (result.error === ERROR_MORE_DATA) {
          if (result.bytes > limit) throw this.#tooLarge(result.bytes, limit, true);
          const next = this.#nextChunk(h, result.bytes, limit);
          return (await this.#readWhole(io, next, limit, [reply.subarray(0, result.bytes)]))!;
        }
        if (result.error === ERROR_OPERATION_ABORTED) {
          throw new Deno.errors.Interrupted(`Transaction on pipe "${this.path}" was cancelled`);
        }
        if (result.error !== 0) {
          throw win32Error("TransactNamedPipe", result.error, {
            context: this.#context("transact on"),
          });
        }
        if (result.bytes > limit) throw this.#tooLarge(result.bytes, limit);
        return reply.subarray(0, result.bytes);
      })
    );
  }

  /**
   * The data as a stream: chunks of up to the read buffer size in byte mode, one chunk per
   * message in message mode. It closes at the end of the stream; cancelling it closes the
   * connection.
   */
  get readable(): ReadableStream<Uint8Array> {
    this.#may("read");
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const chunk = await this.#readLane.run(() =>
            this.#readWhole({}, this.#readBufferSize, this.#maxMessageBytes)
          );
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        } catch (e) {
          controller.error(e);
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
  }

  /**
   * A stream to write to: each chunk is one `write` (one message in message mode). Closing it
   * closes the connection (pipes have no half-close); the peer reads what was written, then
   * the end of the stream.
   */
  get writable(): WritableStream<Uint8Array> {
    this.#may("write");
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.close(),
      abort: () => this.close(),
    });
  }

  /**
   * Closes the connection: cancels operations in flight and closes the handle once they have
   * ended. A second call does nothing.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const handle = this.#handle;
    const raw = handle.unsafeHandle;
    const finish = () => {
      this.#readOp[Symbol.dispose]();
      this.#writeOp[Symbol.dispose]();
      handle.close();
      const onClose = this.#onClose;
      this.#onClose = undefined;
      onClose?.();
    };
    if (this.#readOp.busy || this.#writeOp.busy) {
      cancelAll(raw);
      Promise.all([this.#readOp.idle(), this.#writeOp.idle()]).then(finish);
    } else finish();
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the connection and waits until its handle is released. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await Promise.all([this.#readOp.idle(), this.#writeOp.idle()]);
  }
}

// ---------------------------------------------------------------------------------------------
// server

/**
 * Options of {@linkcode NamedPipeServer.listen}.
 *
 * @example At most 16 clients, open to every authenticated user of this machine
 * ```ts
 * import { NamedPipeServer } from "./pipe.ts";
 * using server = NamedPipeServer.listen("jobs", {
 *   mode: "message",
 *   maxInstances: 16,
 *   sddl: "D:P(A;;GA;;;AU)",
 * });
 * ```
 */
export interface NamedPipeServerOptions {
  /**
   * `"byte"` (default): a byte stream (`PIPE_TYPE_BYTE`). `"message"`: writes are messages and
   * reads stop at message ends (`PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE`).
   */
  mode?: PipeMode;
  /**
   * The most instances (simultaneous connections plus listening instances), 1 to 254
   * (`nMaxInstances`), or 255 = `PIPE_UNLIMITED_INSTANCES`, the default: no limit.
   */
  maxInstances?: number;
  /**
   * How many instances wait for clients at once (default 2, at most `maxInstances`). While one
   * has just connected and its replacement is being created, another is still listening, so a
   * client never meets a moment with no free instance.
   */
  backlog?: number;
  /** The pipe's outbound buffer size, a hint to the system (`nOutBufferSize`). Default 65536. */
  outBufferSize?: number;
  /** The pipe's inbound buffer size, a hint to the system (`nInBufferSize`). Default 65536. */
  inBufferSize?: number;
  /** The size of each connection's read buffer (longer messages are reassembled). Default 65536. */
  readBufferSize?: number;
  /**
   * The longest message a connection's `readMessage` (and `readable`) accepts, in message mode.
   * A client that sends a longer one has it refused before it is read
   * ({@linkcode MessageTooLargeError}) and its connection closed; the server and its other
   * connections go on. Default 64 MiB ({@linkcode DEFAULT_MAX_MESSAGE_BYTES}).
   */
  maxMessageBytes?: number;
  /**
   * The pipe's security descriptor in SDDL. Default `D:P(A;;GA;;;<current user SID>)`: only the
   * user running this process may connect (or create more instances).
   */
  sddl?: string;
  /**
   * Refuse clients from other machines (`PIPE_REJECT_REMOTE_CLIENTS`). Default `true`. With
   * `false`, clients on other machines may open `\\<this machine>\pipe\<name>` (the DACL still
   * decides who). Wine 10 cannot open a pipe through a computer name at all
   * (`ERROR_PATH_NOT_FOUND`), so the refusal cannot be shown there.
   */
  rejectRemoteClients?: boolean;
  /**
   * Fail when a pipe of this name exists already (`FILE_FLAG_FIRST_PIPE_INSTANCE`), so nobody
   * else's server can be joined or squatted. Default `true`. With `false`, this server adds
   * instances to an existing pipe, whose settings must then be the same.
   */
  firstInstance?: boolean;
}

const serverOptionsSchema = z.object({
  mode: modeSchema.optional(),
  maxInstances: z.number({ error: "must be a number" }).int({ error: "must be a whole number" })
    .min(1, { error: "must be at least 1" }).max(255, { error: "must be at most 255" }).optional(),
  backlog: z.number({ error: "must be a number" }).int({ error: "must be a whole number" })
    .min(1, { error: "must be at least 1" }).max(64, { error: "must be at most 64" }).optional(),
  outBufferSize: bufferSizeSchema.optional(),
  inBufferSize: bufferSizeSchema.optional(),
  readBufferSize: readSizeSchema.optional(),
  maxMessageBytes: maxMessageSchema.optional(),
  sddl: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).optional(),
  rejectRemoteClients: z.boolean({ error: "must be a boolean" }).optional(),
  firstInstance: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().optional();

const acceptOptionsSchema = z.object({ signal: signalSchema }).strict().optional();

type ServerSettings = Required<Omit<NamedPipeServerOptions, "sddl">> & { sddl: string };

interface Waiter {
  resolve: (conn: PipeConnection | null) => void;
  reject: (error: unknown) => void;
}

/**
 * A named pipe server: an async iterable of connections, like `Deno.listen`.
 *
 * It keeps `backlog` instances listening (overlapped `ConnectNamedPipe`); when one connects it
 * becomes a {@linkcode PipeConnection} and a new instance takes its place at once. Connections
 * that arrive while nobody calls `accept()` wait in a queue (bounded by `maxInstances`).
 * `close()` stops listening and wakes a pending `accept()` (the iteration ends); connections
 * already accepted stay open until you close them.
 *
 * @example Serve clients concurrently
 * ```ts
 * import { NamedPipeServer, type PipeConnection } from "./pipe.ts";
 * async function handle(conn: PipeConnection) {
 *   using c = conn;
 *   console.log("client pid", c.clientProcessId);
 *   for (let m; (m = await c.readMessage()) !== null;) await c.write(m);
 * }
 * using server = NamedPipeServer.listen("jobs", { mode: "message" });
 * for await (const conn of server) handle(conn);
 * ```
 */
export class NamedPipeServer implements AsyncIterable<PipeConnection>, Disposable {
  /** The pipe's full path, e.g. `\\.\pipe\jobs`. */
  readonly path: string;
  /** The pipe's mode. */
  readonly mode: PipeMode;
  readonly #settings: ServerSettings;
  readonly #name: Uint16Array<ArrayBuffer>;
  readonly #listening = new Map<OwnedHandle, OverlappedOp>();
  readonly #queue: PipeConnection[] = [];
  readonly #waiters: Waiter[] = [];
  #connected = 0;
  #closed = false;
  #error: unknown;

  private constructor(path: string, settings: ServerSettings) {
    this.path = path;
    this.mode = settings.mode;
    this.#settings = settings;
    this.#name = wide(path);
  }

  /**
   * Creates the pipe and starts listening.
   *
   * @param name The pipe's name (`jobs`) or local path (`\\.\pipe\jobs`).
   * @param options Mode, instances, buffers, security.
   * @returns The listening server.
   * @throws {TypeError} For a bad name or option.
   * @throws {RangeError} For a name or option out of range.
   * @throws {Win32Error} When the pipe cannot be created; `ERROR_ACCESS_DENIED` or
   *   `ERROR_ALREADY_EXISTS` when a pipe of that name exists already (with `firstInstance`),
   *   `ERROR_PIPE_BUSY` when its instances are all taken.
   *
   * @example Listen in message mode
   * ```ts
   * import { NamedPipeServer } from "./pipe.ts";
   * using server = NamedPipeServer.listen("jobs", { mode: "message", maxInstances: 8 });
   * ```
   */
  static listen(name: string, options?: NamedPipeServerOptions): NamedPipeServer {
    const path = parseArg(serverPipeNameSchema, name, "name");
    const opts = parseArg(serverOptionsSchema, options, "options") ?? {};
    const maxInstances = opts.maxInstances ?? PIPE_UNLIMITED_INSTANCES;
    const settings: ServerSettings = {
      mode: opts.mode ?? "byte",
      maxInstances,
      backlog: Math.min(opts.backlog ?? 2, maxInstances),
      outBufferSize: opts.outBufferSize ?? 65536,
      inBufferSize: opts.inBufferSize ?? 65536,
      readBufferSize: opts.readBufferSize ?? 65536,
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      sddl: opts.sddl ?? `D:P(A;;GA;;;${currentUserSid()})`,
      rejectRemoteClients: opts.rejectRemoteClients ?? true,
      firstInstance: opts.firstInstance ?? true,
    };
    const server = new NamedPipeServer(path, settings);
    server.#listen(server.#createInstance(settings.firstInstance)); // throws for a taken name
    server.#replenish();
    return server;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many instances are listening for clients now. */
  get listening(): number {
    return this.#listening.size;
  }

  #createInstance(first: boolean): OwnedHandle {
    const s = this.#settings;
    const k = kernel32();
    const openMode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
      (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    const pipeMode =
      (s.mode === "message"
        ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
        : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE) |
      PIPE_WAIT |
      (s.rejectRemoteClients ? PIPE_REJECT_REMOTE_CLIENTS : 0);
    const context = `Cannot create named pipe "${this.path}"`;
    using security = new SecurityAttributes({ sddl: s.sddl });
    k.SetLastError(0);
    const raw = k.CreateNamedPipeW(
      this.#name,
      openMode >>> 0,
      pipeMode,
      s.maxInstances,
      s.outBufferSize,
      s.inBufferSize,
      0,
      security.bytes,
    );
    const code = lastError();
    if (raw === null || Deno.UnsafePointer.value(raw) === 0xffff_ffff_ffff_ffffn) {
      throw win32Error("CreateNamedPipeW", code, {
        context: first && code === ERROR_ACCESS_DENIED
          ? `${context}: a pipe of that name exists already`
          : context,
      });
    }
    if (first && code === ERROR_ALREADY_EXISTS) {
      // Windows refuses FILE_FLAG_FIRST_PIPE_INSTANCE with ERROR_ACCESS_DENIED; Wine creates
      // the instance but reports ERROR_ALREADY_EXISTS. Refuse it the same way.
      k.CloseHandle(raw);
      throw win32Error("CreateNamedPipeW", code, {
        context: `${context}: a pipe of that name exists already`,
      });
    }
    return new OwnedHandle(raw);
  }

  /** Starts an overlapped ConnectNamedPipe on an instance and handles its outcome. */
  #listen(handle: OwnedHandle): void {
    const op = new OverlappedOp();
    this.#listening.set(handle, op);
    const h = handle.unsafeHandle;
    op.run(h, (ov) => kernel32().ConnectNamedPipe(h, ov)).then(
      (result) => this.#connectedOrNot(handle, op, result.error),
      (error) => this.#connectedOrNot(handle, op, -1, error),
    );
  }

  #connectedOrNot(handle: OwnedHandle, op: OverlappedOp, code: number, error?: unknown): void {
    this.#listening.delete(handle);
    if (this.#closed || (code !== 0 && code !== ERROR_PIPE_CONNECTED)) {
      op[Symbol.dispose]();
      handle.close();
      if (this.#closed) return;
      if (code !== ERROR_NO_DATA) {
        // ERROR_NO_DATA: a client came and went before we saw it; anything else is a failure.
        this.#error = error ??
          win32Error("ConnectNamedPipe", code, {
            context: `Cannot accept on pipe "${this.path}"`,
          });
      }
      this.#replenish();
      return;
    }
    this.#connected++;
    const conn = newConnection({
      path: this.path,
      side: "server",
      mode: this.mode,
      handle,
      readOp: op,
      readBufferSize: this.#settings.readBufferSize,
      maxMessageBytes: this.#settings.maxMessageBytes,
      onClose: () => {
        this.#connected--;
        this.#replenish();
      },
    });
    this.#replenish();
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#queue.push(conn);
  }

  /** Keeps `backlog` instances listening, within `maxInstances`. */
  #replenish(): void {
    const s = this.#settings;
    while (
      !this.#closed && this.#listening.size < s.backlog &&
      // 255 is PIPE_UNLIMITED_INSTANCES: no limit, as for CreateNamedPipeW itself.
      (s.maxInstances === PIPE_UNLIMITED_INSTANCES ||
        this.#listening.size + this.#connected < s.maxInstances)
    ) {
      try {
        this.#listen(this.#createInstance(false));
      } catch (e) {
        this.#error = e;
        break;
      }
    }
    if (this.#error !== undefined && this.#listening.size === 0) {
      const error = this.#error;
      this.#error = undefined;
      for (const w of this.#waiters.splice(0)) w.reject(error);
    }
  }

  /**
   * Waits for the next client.
   *
   * @param options An AbortSignal that stops waiting (the listening instance stays).
   * @returns The connection.
   * @throws {Deno.errors.BadResource} When the server is closed (also when `close()` runs
   *   during the wait).
   * @throws The signal's reason when aborted.
   * @throws {Win32Error} When no instance can listen (e.g. `ERROR_PIPE_BUSY`).
   *
   * @example Accept one connection with a deadline
   * ```ts
   * import { NamedPipeServer } from "./pipe.ts";
   * using server = NamedPipeServer.listen("jobs");
   * using conn = await server.accept({ signal: AbortSignal.timeout(10_000) });
   * ```
   */
  async accept(options?: { signal?: AbortSignal }): Promise<PipeConnection> {
    const opts: { signal?: AbortSignal } = parseArg(acceptOptionsSchema, options, "options") ?? {};
    const conn = await this.#next(opts.signal);
    if (conn === null) throw new Deno.errors.BadResource(`Pipe server "${this.path}" is closed`);
    return conn;
  }

  #next(signal?: AbortSignal): Promise<PipeConnection | null> {
    signal?.throwIfAborted();
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    if (this.#error !== undefined && this.#listening.size === 0) {
      const error = this.#error;
      this.#error = undefined;
      return Promise.reject(error);
    }
    return new Promise<PipeConnection | null>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (conn) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(conn);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Yields connections until the server is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<PipeConnection> {
    for (;;) {
      const conn = await this.#next();
      if (conn === null) return;
      yield conn;
    }
  }

  /**
   * Stops listening: cancels the listening instances, closes connections nobody accepted yet,
   * and ends a pending `accept()` and the iteration. Accepted connections stay open. A second
   * call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of this.#listening.keys()) cancelAll(handle.unsafeHandle);
    for (const conn of this.#queue.splice(0)) conn.close();
    for (const w of this.#waiters.splice(0)) w.resolve(null);
  }

  /** Closes the server. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------------------------
// client

/**
 * Options of {@linkcode NamedPipeClient.connect}.
 *
 * @example Wait up to 30 s for the server to start
 * ```ts
 * import { NamedPipeClient } from "./pipe.ts";
 * await using client = await NamedPipeClient.connect("jobs", { timeout: 30_000 });
 * ```
 */
export interface NamedPipeConnectOptions extends IoOptions {
  /**
   * The read mode. Default: the pipe's own type (`GetNamedPipeInfo`), so a client of a
   * message-mode server reads messages. `"message"` on a byte-mode pipe fails.
   */
  mode?: PipeMode;
  /**
   * Milliseconds to wait for the server to exist and for a free instance (`WaitNamedPipeW`),
   * then fail with `Deno.errors.TimedOut`. Default 10000; 0 tries once.
   */
  timeout?: number;
  /** Stops waiting; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The size of the connection's read buffer (longer messages are reassembled). Default 65536. */
  readBufferSize?: number;
  /**
   * The longest message `readMessage` and `transact` accept from the server (message mode); a
   * longer one is refused before it is read ({@linkcode MessageTooLargeError}) and the
   * connection closed. Default 64 MiB ({@linkcode DEFAULT_MAX_MESSAGE_BYTES}).
   */
  maxMessageBytes?: number;
  /**
   * What the server may do with this client's identity (`SECURITY_SQOS_PRESENT` and a
   * `SECURITY_*` level on `CreateFileW`):
   * - `"anonymous"`: the server cannot identify the client;
   * - `"identification"` (default): it can read who the client is and check access against it,
   *   but cannot act as the client;
   * - `"impersonation"`: it can act as the client on its own machine;
   * - `"delegation"`: it can act as the client on other machines too.
   */
  impersonationLevel?: ImpersonationLevel;
  /**
   * `"duplex"` (default: `GENERIC_READ | GENERIC_WRITE`), `"read"` (`GENERIC_READ` and
   * `FILE_WRITE_ATTRIBUTES`, which setting message mode needs) or `"write"` (`GENERIC_WRITE` and
   * `FILE_READ_ATTRIBUTES`, which reading the pipe's type needs). Operations the handle was
   * not opened for throw `Deno.errors.NotSupported`.
   */
  access?: PipeAccess;
  /**
   * Connect only to a server that runs as the current user, as .NET's
   * `PipeOptions.CurrentUserOnly`: after `CreateFileW`, the server's process
   * (`GetNamedPipeServerProcessId`) must have a token whose user is this process's user; else
   * the handle is closed, before anything is sent, and `Deno.errors.PermissionDenied` is thrown.
   * This stops a squatter (another user's process that created the name first) from receiving
   * what this client sends. A server whose token cannot be read (another user's process) does
   * not pass; a remote pipe (`\\server\pipe\x`) cannot be checked and is refused. Default
   * `false` here, since servers of arbitrary pipes are often services of SYSTEM or
   * Administrators; `RpcClient` and the CLI's `rpc call` turn it on.
   */
  currentUserOnly?: boolean;
}

/**
 * How far a pipe server may use a client's identity; see
 * {@linkcode NamedPipeConnectOptions.impersonationLevel}.
 *
 * @example Let the server open files as this client
 * ```ts
 * import { type ImpersonationLevel, NamedPipeClient } from "./pipe.ts";
 * const impersonationLevel: ImpersonationLevel = "impersonation";
 * using client = await NamedPipeClient.connect("files", { impersonationLevel });
 * ```
 */
export type ImpersonationLevel = "anonymous" | "identification" | "impersonation" | "delegation";

/** `SECURITY_ANONYMOUS` ... `SECURITY_DELEGATION`: the level in bits 16-17 of CreateFileW's flags. */
const impersonationFlags: Record<ImpersonationLevel, number> = {
  anonymous: 0,
  identification: SECURITY_IDENTIFICATION,
  impersonation: 2 << 16,
  delegation: 3 << 16,
};

const connectOptionsSchema = ioOptionsSchema.extend({
  mode: modeSchema.optional(),
  readBufferSize: readSizeSchema.optional(),
  maxMessageBytes: maxMessageSchema.optional(),
  impersonationLevel: z.enum(["anonymous", "identification", "impersonation", "delegation"], {
    error: 'must be "anonymous", "identification", "impersonation" or "delegation"',
  }).optional(),
  access: z.enum(["read", "write", "duplex"], { error: 'must be "read", "write" or "duplex"' })
    .optional(),
  currentUserOnly: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().optional();

const FILE_READ_ATTRIBUTES = 0x0080;
const FILE_WRITE_ATTRIBUTES = 0x0100;
/** The rights a client asks for, by access. */
const accessRights: Record<PipeAccess, number> = {
  duplex: (GENERIC_READ | GENERIC_WRITE) >>> 0,
  read: (GENERIC_READ | FILE_WRITE_ATTRIBUTES) >>> 0,
  write: (GENERIC_WRITE | FILE_READ_ATTRIBUTES) >>> 0,
};

/** `FSCTL_PIPE_WAIT`: what `WaitNamedPipeW` asks of the named pipe file system. */
const FSCTL_PIPE_WAIT = 0x0011_0018;
/** The named pipe file system's root (`\\.\pipe\`), opened overlapped on first use. */
let pipeRoot: OwnedHandle | undefined;
/** A local pipe path, `\\.\pipe\<name>`: its name. */
const localPipe = /^\\\\\.\\pipe\\(.+)$/i;

/**
 * Waits until an instance of a busy pipe is free, at most `left` ms. For a local pipe this is
 * `WaitNamedPipeW`'s own request (`FSCTL_PIPE_WAIT`) issued overlapped on the pipe file
 * system's root, so it waits in the I/O core (no worker thread) and an abort cancels it at once;
 * measured under Wine 10, its completion arrives through the port. A remote pipe
 * (`\\server\pipe\x`) waits with `WaitNamedPipeW` on a worker thread, in 250 ms slices so an
 * abort is seen. Either way the caller then tries `CreateFileW` again (another client may win).
 */
async function waitForInstance(
  path: string,
  wname: Uint16Array<ArrayBuffer>,
  left: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const k = kernel32();
  const local = localPipe.exec(path);
  if (!local) {
    await k.WaitNamedPipeWAsync(wname, Math.max(1, Math.min(250, Math.ceil(left))));
    return;
  }
  if (!pipeRoot || pipeRoot.closed) {
    const root = k.CreateFileW(
      wide("\\\\.\\pipe\\"),
      (GENERIC_READ | SYNCHRONIZE) >>> 0,
      FILE_SHARE_READ | FILE_SHARE_WRITE,
      null,
      OPEN_EXISTING,
      FILE_FLAG_OVERLAPPED,
      null,
    );
    if (root === null || Deno.UnsafePointer.value(root) === 0xffff_ffff_ffff_ffffn) {
      throw win32Error("CreateFileW", lastError(), {
        context: `Cannot wait for pipe "${path}": cannot open the pipe file system`,
      });
    }
    pipeRoot = new OwnedHandle(root);
  }
  const name = local[1];
  // FILE_PIPE_WAIT_FOR_BUFFER: Timeout (8), NameLength (4), TimeoutSpecified (1), pad, Name.
  const request = new Uint8Array(14 + name.length * 2);
  const view = new DataView(request.buffer);
  view.setBigInt64(0, -BigInt(Math.max(1, Math.ceil(left))) * 10_000n, true);
  view.setUint32(8, name.length * 2, true);
  request[12] = 1;
  for (let i = 0; i < name.length; i++) view.setUint16(14 + 2 * i, name.charCodeAt(i), true);
  const root = pipeRoot.unsafeHandle;
  using op = new OverlappedOp();
  // 0: an instance is free; ERROR_SEM_TIMEOUT / ERROR_FILE_NOT_FOUND (the server went away): the
  // caller's loop looks again and keeps its deadline. Other codes: CreateFileW will tell.
  await op.run(
    root,
    (ov) => k.DeviceIoControl(root, FSCTL_PIPE_WAIT, request, request.length, null, 0, null, ov),
    { signal, context: `Cannot wait for pipe "${path}"` },
  );
}

/**
 * The client end of a named pipe.
 *
 * @example Request and reply
 * ```ts
 * import { NamedPipeClient } from "./pipe.ts";
 * using client = await NamedPipeClient.connect("jobs", { timeout: 5000 });
 * await client.write("run 42");
 * console.log(await client.readMessage());
 * ```
 */
export class NamedPipeClient extends PipeConnection {
  /**
   * Connects to a pipe server, waiting up to `timeout` for the pipe to exist and for a free
   * instance: `CreateFileW` (overlapped, identification-level impersonation unless
   * `impersonationLevel` says otherwise); on
   * `ERROR_PIPE_BUSY` waits for a free instance (a local pipe: `WaitNamedPipeW`'s request,
   * `FSCTL_PIPE_WAIT`, overlapped through the I/O core; a remote one: `WaitNamedPipeW` on a
   * worker thread, in slices so the signal is seen); on `ERROR_FILE_NOT_FOUND` (no server yet)
   * retries with a short back-off, since Windows has no notification of a pipe's creation.
   *
   * @param name The pipe's name (`jobs`) or path (`\\.\pipe\jobs`, `\\server\pipe\jobs`).
   * @param options Read mode, timeout, AbortSignal.
   * @returns The connected client.
   * @throws {TypeError} For a bad name or option.
   * @throws {Deno.errors.TimedOut} When no server (or no free instance) came within `timeout`;
   *   the message names the pipe and the last error.
   * @throws {Deno.errors.PermissionDenied} With `currentUserOnly`, when the server does not run
   *   as the current user.
   * @throws {Win32Error} When `CreateFileW` fails for another reason (`ERROR_ACCESS_DENIED`...).
   *
   * @example Connect to a server in message mode
   * ```ts
   * import { NamedPipeClient } from "./pipe.ts";
   * using client = await NamedPipeClient.connect("\\\\.\\pipe\\jobs", { mode: "message" });
   * ```
   */
  static async connect(name: string, options?: NamedPipeConnectOptions): Promise<NamedPipeClient> {
    const path = parseArg(clientPipeNameSchema, name, "name");
    const opts: NamedPipeConnectOptions = parseArg(connectOptionsSchema, options, "options") ??
      {};
    const timeout = opts.timeout ?? 10_000;
    const { signal } = opts;
    const deadline = performance.now() + timeout;
    const k = kernel32();
    const wname = wide(path);
    const context = `Cannot connect to pipe "${path}"`;
    const level = impersonationFlags[opts.impersonationLevel ?? "identification"];
    const access = opts.access ?? "duplex";
    let raw: Deno.PointerObject | null = null;
    for (let round = 0;; round++) {
      signal?.throwIfAborted();
      // The code decides between waiting (ERROR_PIPE_BUSY, ERROR_FILE_NOT_FOUND) and failing.
      const [h, code] = withLastError(() =>
        k.CreateFileW(
          wname,
          accessRights[access],
          0,
          null,
          OPEN_EXISTING,
          FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | level,
          null,
        )
      );
      if (h !== null && Deno.UnsafePointer.value(h) !== 0xffff_ffff_ffff_ffffn) {
        raw = h;
        break;
      }
      if (code !== ERROR_PIPE_BUSY && code !== ERROR_FILE_NOT_FOUND) {
        throw win32Error("CreateFileW", code, { context });
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `${context}: ${
            code === ERROR_FILE_NOT_FOUND ? "no such pipe" : "all instances busy"
          } after waiting ${timeout} ms (${errorName(code)})`,
        );
      }
      if (code === ERROR_PIPE_BUSY) {
        await waitForInstance(path, wname, left, signal);
      } else {
        // No server yet: WaitNamedPipeW would fail at once, so poll with a back-off.
        await sleep(Math.min(left, [1, 2, 5, 10, 20][round] ?? 50), signal);
      }
    }
    const handle = new OwnedHandle(raw);
    try {
      if (opts.currentUserOnly) {
        if (!localPipe.test(path)) {
          throw new Deno.errors.PermissionDenied(
            `${context}: currentUserOnly cannot check the owner of a server on another machine`,
          );
        }
        const refused = checkServerOwner(path, raw);
        if (refused) throw refused;
      }
      const flags = new Uint32Array(1);
      let mode = opts.mode;
      if (mode === undefined) {
        mode = k.GetNamedPipeInfo(raw, flags, null, null, null) &&
            (flags[0] & PIPE_TYPE_MESSAGE)
          ? "message"
          : "byte";
      }
      if (mode === "message") {
        const state = new Uint32Array([PIPE_READMODE_MESSAGE]);
        if (!k.SetNamedPipeHandleState(raw, state, null, null)) {
          throw win32Error("SetNamedPipeHandleState", lastError(), {
            context: `${context}: cannot read messages (is it a byte-mode pipe?)`,
          });
        }
      }
      return new NamedPipeClient({
        path,
        side: "client",
        mode,
        access,
        handle,
        readBufferSize: opts.readBufferSize,
        maxMessageBytes: opts.maxMessageBytes,
      });
    } catch (e) {
      handle.close();
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// one-shot call

/**
 * Options of {@linkcode callNamedPipe}.
 *
 * @example A quick status question that gives up after 500 ms
 * ```ts
 * import { callNamedPipe } from "./pipe.ts";
 * const reply = await callNamedPipe("jobs", "status?", { timeout: 500, replyBufferSize: 256 });
 * ```
 */
export interface CallNamedPipeOptions extends IoOptions {
  /** Milliseconds to wait for a free instance and for the reply. Default 10000. */
  timeout?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** The first read's buffer size; a longer reply is reassembled. Default 65536. */
  replyBufferSize?: number;
  /** The longest reply accepted ({@linkcode MessageTooLargeError} beyond). Default 64 MiB. */
  maxMessageBytes?: number;
}

const callOptionsSchema = ioOptionsSchema.extend({
  replyBufferSize: readSizeSchema.optional(),
  maxMessageBytes: maxMessageSchema.optional(),
}).strict().optional();

/**
 * Sends one request to a message-mode pipe server and returns its reply: what `CallNamedPipeW`
 * does (wait for an instance, connect, set message mode, `TransactNamedPipe`, close), composed
 * from those calls so that it is cancellable, never blocks a thread, reports the real error
 * code, and reassembles a reply of any length (`CallNamedPipeW` itself would truncate it).
 * The raw `CallNamedPipeW` stays available in `ffi/kernel32.ts`.
 *
 * @param name The pipe's name or path.
 * @param request The request (bytes, or text as UTF-8).
 * @param options Timeout, AbortSignal, reply buffer size.
 * @returns The reply.
 * @throws {Deno.errors.TimedOut} When no server answered within the timeout.
 * @throws {Deno.errors.BrokenPipe} When the server closed without replying.
 * @throws {Win32Error} When a call fails otherwise.
 *
 * @example One request, one reply
 * ```ts
 * import { callNamedPipe } from "./pipe.ts";
 * const reply = await callNamedPipe("jobs", "status?", { timeout: 2000 });
 * ```
 */
export async function callNamedPipe(
  name: string,
  request: Uint8Array | string,
  options?: CallNamedPipeOptions,
): Promise<Uint8Array> {
  parseArg(bytesSchema, request, "request");
  const opts: CallNamedPipeOptions = parseArg(callOptionsSchema, options, "options") ?? {};
  const timeout = opts.timeout ?? 10_000;
  const start = performance.now();
  using client = await NamedPipeClient.connect(name, {
    mode: "message",
    timeout,
    signal: opts.signal,
  });
  const left = timeout === Infinity
    ? undefined
    : Math.max(0, Math.floor(timeout - (performance.now() - start)));
  return await client.transact(request, {
    signal: opts.signal,
    timeout: left,
    replyBufferSize: opts.replyBufferSize,
    maxMessageBytes: opts.maxMessageBytes,
  });
}

// ---------------------------------------------------------------------------------------------
// listing

const STATUS_NO_MORE_FILES = 0x8000_0006;
const STATUS_NO_SUCH_FILE = 0xc000_000f;
const FileDirectoryInformation = 1;
const ERROR_BAD_DEV_TYPE = 66;

/**
 * The named pipes on this machine: the directory of the named pipe file system (`\\.\pipe\`),
 * read with `NtQueryDirectoryFile` as Sysinternals' PipeList does, with each pipe's current and
 * maximum instance counts (-1: unlimited) as the system reports them.
 *
 * Wine 10 cannot list that directory (`STATUS_BAD_DEVICE_TYPE`): there this throws a
 * `Win32Error` with `ERROR_BAD_DEV_TYPE` whose message says so.
 *
 * @returns The pipes, in the order the system lists them.
 * @throws {Win32Error} When the directory cannot be opened or read.
 *
 * @example Is a server listening?
 * ```ts
 * import { listPipes } from "./pipe.ts";
 * const up = listPipes().some((p) => p.name.toLowerCase() === "jobs");
 * ```
 */
export function listPipes(): PipeInfo[] {
  const k = kernel32();
  const context = "Cannot list the named pipes";
  const root = checkHandle(
    k.CreateFileW(
      wide("\\\\.\\pipe\\"),
      (GENERIC_READ | SYNCHRONIZE) >>> 0,
      FILE_SHARE_READ | FILE_SHARE_WRITE,
      null,
      OPEN_EXISTING,
      0,
      null,
    ),
    "CreateFileW",
    context,
  );
  try {
    const pipes: PipeInfo[] = [];
    const buffer = new Uint8Array(64 * 1024);
    const status = new BigUint64Array(2); // IO_STATUS_BLOCK { Status/Pointer; Information }
    // Each call returns at least one entry, so a bounded number of calls covers any listing.
    for (let call = 0; call < 1_000_000; call++) {
      const code = ntdll().NtQueryDirectoryFile(
        root,
        null,
        null,
        null,
        status,
        buffer,
        buffer.length,
        FileDirectoryInformation,
        0,
        null,
        call === 0 ? 1 : 0,
      );
      if (code === STATUS_NO_MORE_FILES || (call === 0 && code === STATUS_NO_SUCH_FILE)) break;
      if (code !== 0) {
        const error = ntdll().RtlNtStatusToDosError(code);
        throw win32Error("NtQueryDirectoryFile", error, {
          context: error === ERROR_BAD_DEV_TYPE
            ? `${context}: this system cannot list \\\\.\\pipe\\ (Wine 10 cannot)`
            : context,
        });
      }
      pipes.push(...parseDirectoryEntries(buffer, Number(status[1])));
    }
    return pipes;
  } finally {
    k.CloseHandle(root);
  }
}
