/**
 * Mailslots: one-way datagrams to a named slot. One process reads
 * ({@linkcode MailslotReader}, `CreateMailslotW`); any number write
 * ({@linkcode MailslotWriter}, `CreateFileW` + `WriteFile`, or {@linkcode sendMailslot}). Each
 * write is one message, read whole.
 *
 * Names: `foo` means `\\.\mailslot\foo` (a name may have pseudo-folders: `app\events`); a full
 * path is taken as given. A reader's slot is always on this machine (`\\.\mailslot\...`). A
 * writer may also name `\\<computer>\mailslot\<name>`, `\\<domain>\mailslot\<name>` or
 * `\\*\mailslot\<name>`: the last two are *domain broadcasts*, delivered to every slot of that
 * name in the domain (the primary domain for `*`) as datagrams that may be lost, at most 424
 * bytes each. (Wine has no domain broadcast: opening such a path fails there with
 * `ERROR_PATH_NOT_FOUND`.)
 *
 * Reading: a mailslot handle does synchronous I/O only, so a `ReadFile` on an empty slot blocks
 * its thread until a message comes or the slot's read timeout passes. The reader asks
 * `GetMailslotInfo` whether a message is waiting (and how big it is) and reads it at once when
 * one is; otherwise it waits on one of Deno's worker threads (a `nonblocking` `ReadFile` with a
 * one-byte buffer, which a longer message makes fail with `ERROR_INSUFFICIENT_BUFFER` while it
 * stays first in the slot), so the arrival of a message wakes it, with no timer on the path.
 * Each such wait lasts at most 100 ms (the slot's read timeout is set to the time left, up to
 * that, before it): a blocked `ReadFile` cannot be cancelled, so this bounds how late an
 * AbortSignal or `close()` is noticed, and an idle reader renews its wait ten times a second.
 * The read timeout a user sets ({@linkcode MailslotReaderOptions.readTimeout},
 * {@linkcode MailslotReader.setReadTimeout}) is kept by the reader and honoured across those
 * waits. Use one reader per slot; while it waits it holds one worker thread.
 *
 * Why not the I/O core's completion port (`_io.ts`), as pipes and serial ports use: measured under
 * Wine 10 (2026-12-02), `CreateIoCompletionPort` refuses a `CreateMailslotW` handle with
 * `ERROR_INVALID_PARAMETER` (Wine opens it for synchronous I/O), and an overlapped `ReadFile` on
 * it blocks the calling thread until a message or the read timeout, ignoring the `OVERLAPPED`.
 * So the worker-thread wait above is the documented fallback. The reader used to poll
 * `GetMailslotInfo` with timers instead (1 ms rising to 20 ms between checks). Measured
 * 2026-12-02, deno.exe 2.9.6 under Wine 10 on a quiet 2-core Intel Xeon VM, `winipc bench
 * --mechanism mailslot,pipe --size 64 --floor`, three rounds alternating the two readers: the
 * timer reader 2,687 / 2,732 / 3,846 µs p50 (14.5–20.6× its floor), this one 612 / 541 /
 * 636 µs (1.4–3.7×, the floors move between about 170 and 430 µs from run to run), level with
 * the named pipe in the same runs (575–676 µs).
 *
 * @example A reader and a writer in two processes
 * ```ts
 * import { MailslotReader, sendMailslot } from "./mailslot.ts";
 * // reader
 * using slot = MailslotReader.create("events", { maxMessageBytes: 4096 });
 * for await (const message of slot) console.log(new TextDecoder().decode(message));
 * // writer, elsewhere
 * sendMailslot("events", "started");
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkBool, lastError, win32Error } from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  FILE_SHARE_READ,
  FILE_SHARE_WRITE,
  GENERIC_WRITE,
  kernel32,
  MAILSLOT_NO_MESSAGE,
  MAILSLOT_WAIT_FOREVER,
  OPEN_EXISTING,
} from "../ffi/kernel32.ts";
import { SecurityAttributes, type SecurityOptions } from "../ffi/security.ts";
import { wide } from "../ffi/strings.ts";
import { FULL_MAILSLOT_PATH, readerSlotNameSchema, writerSlotNameSchema } from "./_names.ts";
import {
  type IoOptions,
  ioOptionsSchema,
  parseArg,
  securitySchema,
  signalSchema,
  timeoutSchema,
} from "./_validate.ts";
import { ProtocolError } from "./channel.ts";

export { MAX_MAILSLOT_PATH } from "./_names.ts";

export type { SecurityOptions } from "../ffi/security.ts";

const ERROR_ALREADY_EXISTS = 183;
/**
 * The longest one worker-thread wait for a message lasts (see the module doc): how late an
 * AbortSignal or `close()` can be noticed, and how often an idle reader's wait is renewed.
 */
const WAIT_SLICE_MS = 100;
/**
 * The largest message a domain broadcast (`\\*\mailslot\x`, `\\domain\mailslot\x`) carries.
 *
 * @example Keep a broadcast within the limit
 * ```ts
 * import { MAX_BROADCAST_MESSAGE, sendMailslot } from "./mailslot.ts";
 * const note = new TextEncoder().encode("service restarted");
 * if (note.length <= MAX_BROADCAST_MESSAGE) sendMailslot("\\\\*\\mailslot\\events", note);
 * ```
 */
export const MAX_BROADCAST_MESSAGE = 424;

/**
 * The full path of a mailslot name: `foo` becomes `\\.\mailslot\foo`; a full path (also
 * `\\*\mailslot\foo`, a domain broadcast) stays as it is.
 *
 * @param name The name or path.
 * @returns The path.
 * @throws {TypeError} When the name is not valid.
 * @throws {RangeError} When the path is longer than 260 characters.
 *
 * @example The path of a mailslot name
 * ```ts
 * import { mailslotPath } from "./mailslot.ts";
 * mailslotPath("events"); // "\\\\.\\mailslot\\events"
 * ```
 */
export function mailslotPath(name: string): string {
  return parseArg(writerSlotNameSchema, name, "name");
}

function isBroadcast(path: string): boolean {
  return path.match(FULL_MAILSLOT_PATH)![1] !== ".";
}

const bytesSchema = z.union([z.instanceof(Uint8Array), z.string()], {
  error: "must be a Uint8Array or a string",
});

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

/**
 * What {@linkcode MailslotReader.info} reports (`GetMailslotInfo`).
 *
 * @example Drain what is waiting without blocking
 * ```ts
 * import { MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("events");
 * while (slot.info().nextSize !== null) console.log(await slot.readText());
 * ```
 */
export interface MailslotInfo {
  /** The largest message the slot takes, in bytes; 0 means any size. */
  maxMessageSize: number;
  /** The size of the next message, or `null` when none is waiting. */
  nextSize: number | null;
  /** How many messages are waiting. */
  messageCount: number;
  /** The read timeout in milliseconds; `Infinity` waits forever. */
  readTimeout: number;
}

/**
 * Options of {@linkcode MailslotReader.create}.
 *
 * @example Small messages, reads that give up after a second
 * ```ts
 * import { MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("events", { maxMessageBytes: 400, readTimeout: 1000 });
 * ```
 */
export interface MailslotReaderOptions {
  /**
   * The largest message accepted, in bytes: `CreateMailslotW`'s `nMaxMessageSize`, so on Windows
   * a writer's larger `WriteFile` fails, and checked again against `GetMailslotInfo`'s next size
   * before a message is read (a larger one is discarded and the read throws a
   * {@linkcode ProtocolError}). Default {@linkcode DEFAULT_MAILSLOT_MAX_MESSAGE} (64 KiB); 1 to
   * 2 GiB - 1.
   */
  maxMessageBytes?: number;
  /**
   * The former name of `maxMessageBytes` (0, any size, is no longer accepted).
   *
   * @deprecated Use `maxMessageBytes`.
   */
  maxMessageSize?: number;
  /**
   * How long a read waits for a message, in milliseconds (`lReadTimeout`): 0 returns at once,
   * `Infinity` (the default) waits forever. Change it later with `setReadTimeout`.
   */
  readTimeout?: number;
  /** Inheritance and access control. Default: the creator's default DACL. */
  security?: SecurityOptions;
}

/**
 * The default largest message of a {@linkcode MailslotReader}: 64 KiB (65,536 bytes).
 *
 * @example A reader for bigger messages
 * ```ts
 * import { DEFAULT_MAILSLOT_MAX_MESSAGE, MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("dumps", { maxMessageBytes: 16 * DEFAULT_MAILSLOT_MAX_MESSAGE });
 * ```
 */
export const DEFAULT_MAILSLOT_MAX_MESSAGE = 65_536;

const maxBytesSchema = z.number({ error: "must be a number of bytes" })
  .int({ error: "must be a whole number of bytes" })
  .min(1, { error: "must be at least 1 byte" })
  .max(0x7fff_ffff, { error: "must be below 2 GiB" });

const readerOptionsSchema = z.object({
  maxMessageBytes: maxBytesSchema.optional(),
  maxMessageSize: maxBytesSchema.optional(),
  readTimeout: timeoutSchema.optional(),
  security: securitySchema,
}).strict().refine(
  (o) =>
    o.maxMessageBytes === undefined || o.maxMessageSize === undefined ||
    o.maxMessageBytes === o.maxMessageSize,
  { error: "maxMessageBytes and maxMessageSize (its former name) differ" },
).optional();

const readOptionsSchema = ioOptionsSchema.optional();

/**
 * Options of {@linkcode MailslotReader.messages}.
 *
 * @example Skip oversized messages, with a warning
 * ```ts
 * import { MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("events", { maxMessageBytes: 1024 });
 * for await (const m of slot.messages({ onError: (e) => console.warn(e.message) })) {
 *   console.log(m.length);
 * }
 * ```
 */
export interface MailslotMessagesOptions {
  /** Ends the iteration. */
  signal?: AbortSignal;
  /**
   * Told of each message discarded for being over `maxMessageBytes`; the iteration goes on.
   * Default: none, and such a message's error ends the iteration.
   */
  onError?: (error: ProtocolError) => void;
}

/**
 * Options of one {@linkcode MailslotReader.read}.
 *
 * @example Wait up to 5 s for the next message, or until the user presses Ctrl+C
 * ```ts
 * import { MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("events");
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGINT", () => controller.abort());
 * const message = await slot.read({ timeout: 5000, signal: controller.signal });
 * ```
 */
export interface MailslotReadOptions extends IoOptions {
  /** Milliseconds to wait; default: the slot's read timeout. */
  timeout?: number;
  /** Stops waiting; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The reading end of a mailslot: create it, then read messages one by one or iterate over them.
 *
 * @example Read with a timeout
 * ```ts
 * import { MailslotReader } from "./mailslot.ts";
 * using slot = MailslotReader.create("events", { readTimeout: 5000 });
 * try {
 *   console.log(await slot.readText());
 * } catch (e) {
 *   if (e instanceof Deno.errors.TimedOut) console.log("nothing in 5 s");
 * }
 * ```
 */
export class MailslotReader implements Disposable, AsyncIterable<Uint8Array> {
  /** The slot's full path, e.g. `\\.\mailslot\events`. */
  readonly path: string;
  /** The largest message this reader accepts, in bytes (`maxMessageBytes`). */
  readonly maxMessageBytes: number;
  readonly #handle: OwnedHandle;
  #reading = false;
  /** The read timeout users set (the slot's own is set per wait, see `#waitForMessage`). */
  #readTimeout: number;
  /** Whether a worker-thread wait is in flight: the handle is closed only after it. */
  #waiting = false;
  #closing = false;

  private constructor(
    path: string,
    handle: OwnedHandle,
    maxMessageBytes: number,
    readTimeout: number,
  ) {
    this.path = path;
    this.#handle = handle;
    this.maxMessageBytes = maxMessageBytes;
    this.#readTimeout = readTimeout;
  }

  /**
   * Creates the slot (`CreateMailslotW`).
   *
   * @param name The slot's name (`events`) or local path (`\\.\mailslot\events`).
   * @param options Largest message, read timeout, security.
   * @returns The reader.
   * @throws {TypeError} For a bad name or option.
   * @throws {RangeError} For an option out of range.
   * @throws {Win32Error} When the slot cannot be created; `ERROR_ALREADY_EXISTS` when another
   *   reader has it.
   *
   * @example Create a mailslot
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events", { maxMessageBytes: 400 });
   * ```
   */
  static create(name: string, options?: MailslotReaderOptions): MailslotReader {
    const path = parseArg(readerSlotNameSchema, name, "name");
    const opts: MailslotReaderOptions = parseArg(readerOptionsSchema, options, "options") ?? {};
    const timeout = opts.readTimeout === undefined || opts.readTimeout === Infinity
      ? MAILSLOT_WAIT_FOREVER
      : opts.readTimeout;
    const k = kernel32();
    using security = new SecurityAttributes(opts.security);
    k.SetLastError(0);
    const max = opts.maxMessageBytes ?? opts.maxMessageSize ?? DEFAULT_MAILSLOT_MAX_MESSAGE;
    const raw = k.CreateMailslotW(wide(path), max, timeout, security.bytes);
    const code = lastError();
    const context = `Cannot create mailslot "${path}"`;
    if (raw === null || Deno.UnsafePointer.value(raw) === 0xffff_ffff_ffff_ffffn) {
      throw win32Error("CreateMailslotW", code, { context });
    }
    if (code === ERROR_ALREADY_EXISTS) {
      // Windows fails the call; Wine hands out a second reader and reports ERROR_ALREADY_EXISTS.
      k.CloseHandle(raw);
      throw win32Error("CreateMailslotW", code, {
        context: `${context}: another reader has it`,
      });
    }
    const readTimeout = timeout === MAILSLOT_WAIT_FOREVER ? Infinity : timeout;
    return new MailslotReader(path, new OwnedHandle(raw), max, readTimeout);
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closing || this.#handle.closed;
  }

  /** The raw handle. @throws {Deno.errors.BadResource} When closed. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#h();
  }

  #h(): Deno.PointerObject {
    if (this.closed) {
      throw new Deno.errors.BadResource(`Mailslot "${this.path}" is closed`);
    }
    return this.#handle.unsafeHandle;
  }

  /**
   * The slot's state (`GetMailslotInfo`).
   *
   * @returns Maximum message size, next message size, message count and read timeout.
   * @throws {Deno.errors.BadResource} When closed.
   * @throws {Win32Error} When `GetMailslotInfo` fails.
   *
   * @example Count the waiting messages
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events");
   * console.log(slot.info().messageCount);
   * ```
   */
  info(): MailslotInfo {
    const max = new Uint32Array(1);
    const next = new Uint32Array(1);
    const count = new Uint32Array(1);
    const timeout = new Uint32Array(1);
    checkBool(
      kernel32().GetMailslotInfo(this.#h(), max, next, count, timeout),
      "GetMailslotInfo",
      `Cannot query mailslot "${this.path}"`,
    );
    return {
      maxMessageSize: max[0],
      nextSize: next[0] === MAILSLOT_NO_MESSAGE ? null : next[0],
      messageCount: count[0],
      readTimeout: this.#readTimeout,
    };
  }

  /**
   * Changes the read timeout (`SetMailslotInfo`).
   *
   * @param timeout Milliseconds; 0 returns at once, `Infinity` waits forever.
   * @throws {RangeError} For a negative or too large value.
   * @throws {Win32Error} When `SetMailslotInfo` fails.
   *
   * @example Change the read timeout
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events");
   * slot.setReadTimeout(250);
   * ```
   */
  setReadTimeout(timeout: number): void {
    const ms = parseArg(timeoutSchema, timeout, "timeout");
    this.#h();
    this.#readTimeout = ms;
  }

  /**
   * Reads the next message, waiting for one up to the read timeout.
   *
   * @param options A timeout for this read (default: the slot's) and an AbortSignal.
   * @returns The message.
   * @throws {Deno.errors.TimedOut} When no message came within the timeout.
   * @throws {ProtocolError} When the next message is larger than `maxMessageBytes`: it is
   *   discarded, and the next read returns the message after it (only under Wine, where
   *   writers are not held to the slot's maximum).
   * @throws {Deno.errors.BadResource} When the reader is closed (also during the wait).
   * @throws {Deno.errors.Busy} When another read of this reader is in progress.
   * @throws The signal's reason when aborted.
   *
   * @example Read one message
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events");
   * const message = await slot.read({ timeout: 1000 });
   * ```
   */
  async read(options?: MailslotReadOptions): Promise<Uint8Array> {
    const opts: MailslotReadOptions = parseArg(readOptionsSchema, options, "options") ?? {};
    if (this.#reading) {
      throw new Deno.errors.Busy(`Mailslot "${this.path}" is already being read`);
    }
    this.#reading = true;
    try {
      return await this.#read(opts);
    } finally {
      this.#reading = false;
    }
  }

  async #read(opts: MailslotReadOptions): Promise<Uint8Array> {
    const { signal } = opts;
    const first = this.info();
    const timeout = opts.timeout ?? this.#readTimeout;
    const deadline = performance.now() + timeout;
    for (let round = 0;; round++) {
      signal?.throwIfAborted();
      const info = round === 0 ? first : this.info();
      if (info.nextSize !== null) return this.#take(info);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(
          `No message in mailslot "${this.path}" within ${timeout} ms`,
        );
      }
      const small = await this.#waitForMessage(Math.min(left, WAIT_SLICE_MS));
      if (small) return small;
    }
  }

  /**
   * Waits up to `ms` for a message, on a worker thread: a `ReadFile` with a one-byte buffer
   * blocks until a message comes or the slot's read timeout (set to `ms` for it) passes, and a
   * message longer than one byte makes it fail with `ERROR_INSUFFICIENT_BUFFER` and stay first in
   * the slot, for {@linkcode #take}. A message of one byte or none is read by this call.
   *
   * @returns That short message, or `null` (look with `GetMailslotInfo`).
   */
  async #waitForMessage(ms: number): Promise<Uint8Array | null> {
    const h = this.#h();
    const k = kernel32();
    checkBool(
      k.SetMailslotInfo(h, Math.max(1, Math.ceil(ms))),
      "SetMailslotInfo",
      `Cannot wait for mailslot "${this.path}"`,
    );
    this.#waiting = true;
    const one = new Uint8Array(1);
    const count = new Uint32Array(1);
    try {
      const ok = await k.ReadFileAsync(h, one, 1, count, null);
      return ok ? one.subarray(0, count[0]) : null;
    } finally {
      this.#waiting = false;
      if (this.#closing) this.#handle.close();
    }
  }

  /**
   * Reads the waiting message (there is one: ReadFile returns at once). Its size, as
   * `GetMailslotInfo` reported it, is checked against `maxMessageBytes` before the buffer is
   * made.
   */
  #take(info: MailslotInfo): Uint8Array {
    const size = info.nextSize!;
    if (size > this.maxMessageBytes) {
      // Windows holds writers to the slot's nMaxMessageSize, so only Wine gets here. A read with a
      // smaller buffer fails there (ERROR_INSUFFICIENT_BUFFER) and leaves the message first in the
      // queue, so the only way past it is to read it whole, into a buffer dropped at once.
      this.#read1(new Uint8Array(size));
      throw new ProtocolError(
        `Message of ${size} bytes in mailslot "${this.path}" is over maxMessageBytes ` +
          `(${this.maxMessageBytes}): discarded`,
      );
    }
    const buffer = new Uint8Array(Math.max(size, 1));
    const count = this.#read1(buffer);
    return buffer.subarray(0, count);
  }

  #read1(buffer: Uint8Array<ArrayBuffer>): number {
    const count = new Uint32Array(1);
    checkBool(
      kernel32().ReadFile(this.#h(), buffer, buffer.length, count, null),
      "ReadFile",
      `Cannot read from mailslot "${this.path}"`,
    );
    return count[0];
  }

  /**
   * Reads the next message as UTF-8 text.
   *
   * @param options Timeout and AbortSignal, as for {@linkcode read}.
   * @returns The text.
   * @throws As {@linkcode read}.
   *
   * @example Read one message as text
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events");
   * console.log(await slot.readText({ timeout: 1000 }));
   * ```
   */
  async readText(options?: MailslotReadOptions): Promise<string> {
    return new TextDecoder().decode(await this.read(options));
  }

  /**
   * The messages as they come, until the reader is closed or the signal aborts. The slot's read
   * timeout does not end the iteration: it waits on.
   *
   * @param options An AbortSignal that ends the iteration, and `onError` to be told of a
   *   message over `maxMessageBytes` and go on (without it, that message's
   *   {@linkcode ProtocolError} ends the iteration; the reader itself stays usable).
   * @returns An async iterable of messages.
   *
   * @example Print messages for a minute
   * ```ts
   * import { MailslotReader } from "./mailslot.ts";
   * using slot = MailslotReader.create("events");
   * for await (const m of slot.messages({ signal: AbortSignal.timeout(60_000) })) console.log(m);
   * ```
   */
  async *messages(options?: MailslotMessagesOptions): AsyncGenerator<Uint8Array> {
    const opts: MailslotMessagesOptions = parseArg(
      z.object({
        signal: signalSchema,
        onError: z.custom<(error: ProtocolError) => void>((f) => typeof f === "function", {
          error: "must be a function",
        }).optional(),
      }).strict().optional(),
      options,
      "options",
    ) ?? {};
    for (;;) {
      if (this.closed || opts.signal?.aborted) return;
      try {
        yield await this.read({ timeout: Infinity, signal: opts.signal });
      } catch (e) {
        if (this.closed || (opts.signal?.aborted && e === opts.signal.reason)) return;
        if (e instanceof ProtocolError && opts.onError) {
          opts.onError(e); // that message was discarded; the next one follows
          continue;
        }
        throw e;
      }
    }
  }

  /** Iterates over the messages until the reader is closed. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.messages();
  }

  /**
   * Closes the slot: writers then fail to open it. A read in progress ends with `BadResource`
   * within 100 ms (its wait on a worker thread cannot be cut short); the
   * handle is closed when that wait returns. A second call does nothing.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#waiting) this.#handle.close();
  }

  /** Closes the slot. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A writer of a mailslot (`CreateFileW` on its path). Several writers, in as many processes, may
 * write to one slot; each `write` is one message.
 *
 * @example Send several messages
 * ```ts
 * import { MailslotWriter } from "./mailslot.ts";
 * using writer = MailslotWriter.open("events");
 * writer.write("one");
 * writer.write("two");
 * ```
 */
export class MailslotWriter implements Disposable {
  /** The slot's path. */
  readonly path: string;
  readonly #handle: OwnedHandle;
  readonly #broadcast: boolean;

  private constructor(path: string, handle: OwnedHandle) {
    this.path = path;
    this.#handle = handle;
    this.#broadcast = isBroadcast(path);
  }

  /**
   * Opens a slot for writing.
   *
   * @param name The slot's name or path (`\\*\mailslot\x` broadcasts to the domain).
   * @returns The writer.
   * @throws {TypeError} For a bad name.
   * @throws {Win32Error} When the slot cannot be opened (`ERROR_FILE_NOT_FOUND`: no reader).
   *
   * @example Open a mailslot by its full path
   * ```ts
   * import { MailslotWriter } from "./mailslot.ts";
   * using writer = MailslotWriter.open("\\\\.\\mailslot\\events");
   * ```
   */
  static open(name: string): MailslotWriter {
    const path = parseArg(writerSlotNameSchema, name, "name");
    const raw = kernel32().CreateFileW(
      wide(path),
      GENERIC_WRITE,
      // Other writers hold the slot open for writing too: share both ways.
      FILE_SHARE_READ | FILE_SHARE_WRITE,
      null,
      OPEN_EXISTING,
      0,
      null,
    );
    if (raw === null || Deno.UnsafePointer.value(raw) === 0xffff_ffff_ffff_ffffn) {
      const code = lastError();
      throw win32Error("CreateFileW", code, {
        context: `Cannot open mailslot "${path}"${code === 2 ? ": no reader has created it" : ""}`,
      });
    }
    return new MailslotWriter(path, new OwnedHandle(raw));
  }

  /**
   * Writes one message (`WriteFile`; a mailslot write never waits for the reader).
   *
   * @param data Bytes, or text (written as UTF-8).
   * @returns The number of bytes written.
   * @throws {RangeError} For a broadcast message over 424 bytes.
   * @throws {Deno.errors.BadResource} When the writer is closed.
   * @throws {Win32Error} When `WriteFile` fails (e.g. the message is over the slot's maximum).
   *
   * @example Send bytes
   * ```ts
   * import { MailslotWriter } from "./mailslot.ts";
   * using writer = MailslotWriter.open("events");
   * writer.write(new Uint8Array([1, 2, 3]));
   * ```
   */
  write(data: Uint8Array | string): number {
    parseArg(bytesSchema, data, "data");
    const bytes = toBytes(data);
    if (this.#broadcast && bytes.length > MAX_BROADCAST_MESSAGE) {
      throw new RangeError(
        `Invalid argument "data": a broadcast message must be at most ${MAX_BROADCAST_MESSAGE} bytes (got ${bytes.length})`,
      );
    }
    if (this.#handle.closed) {
      throw new Deno.errors.BadResource(`Mailslot writer "${this.path}" is closed`);
    }
    const count = new Uint32Array(1);
    checkBool(
      kernel32().WriteFile(this.#handle.unsafeHandle, bytes, bytes.length, count, null),
      "WriteFile",
      `Cannot write to mailslot "${this.path}"`,
    );
    return count[0];
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /** Closes the writer. A second call does nothing. */
  close(): void {
    this.#handle.close();
  }

  /** Closes the writer. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a slot, writes one message and closes it.
 *
 * @param name The slot's name or path.
 * @param data The message (bytes, or text as UTF-8).
 * @returns The number of bytes written.
 * @throws As {@linkcode MailslotWriter.open} and {@linkcode MailslotWriter.write}.
 *
 * @example Send one message
 * ```ts
 * import { sendMailslot } from "./mailslot.ts";
 * sendMailslot("events", "hello ✓");
 * ```
 */
export function sendMailslot(name: string, data: Uint8Array | string): number {
  parseArg(bytesSchema, data, "data");
  using writer = MailslotWriter.open(name);
  return writer.write(data);
}
