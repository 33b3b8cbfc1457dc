/**
 * Anonymous pipes (`CreatePipe`) and child processes wired to them (`CreateProcessW` with
 * redirected standard handles).
 *
 * {@linkcode createPipe} makes a one-way pipe: a {@linkcode PipeReader} and a
 * {@linkcode PipeWriter}, either end optionally inheritable. {@linkcode spawnChild} starts a
 * program with its stdin, stdout and stderr each `"piped"` (an anonymous pipe whose other end
 * this process holds), `"null"` (the `NUL` device) or `"inherit"` (this process's own handle).
 * Only the handles meant for the child are inheritable, and the child inherits exactly those:
 * they are listed in a `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`, so handles that other code of this
 * process made inheritable do not leak into it.
 *
 * A pipe is made as Windows' own `CreatePipe` makes it, as a uniquely named one-instance byte
 * pipe (`\\.\pipe\winipc-anonymous-<pid>-<n>-<uuid>`, local clients only), so that every end
 * this process keeps is opened with `FILE_FLAG_OVERLAPPED`: its reads and writes go through the
 * process's I/O completion port (`_io.ts`), hold no worker thread while they wait, take the
 * shared `{ timeout, signal }`, and `close()` cancels one in flight (`CancelIoEx`); the operation
 * then rejects with `Deno.errors.Interrupted`. An end a child inherits stays synchronous, as
 * programs expect of their standard handles (a `timeout` or `signal` given to its read or write
 * rejects with `Deno.errors.NotSupported`: that I/O cannot be cancelled). Status is kept: a read ends the stream (`null`) only on
 * `ERROR_BROKEN_PIPE` or `ERROR_HANDLE_EOF`, a write throws `Deno.errors.BrokenPipe` only on
 * `ERROR_BROKEN_PIPE` or `ERROR_NO_DATA`, and every other failure is a `Win32Error` naming
 * `ReadFile` or `WriteFile` and the code. The one exception: with `inheritable: "both"` both
 * ends are synchronous, their I/O runs on a worker thread (a `nonblocking` call, not
 * cancellable), and that thread's error code is not readable from here, so any failed read
 * there reads as the end and any failed write as `BrokenPipe`.
 *
 * @example Run a program and read its output
 * ```ts
 * import { spawnChild } from "./anonymous_pipe.ts";
 * await using child = spawnChild("cmd.exe", ["/c", "echo", "hello"], { stdout: "piped" });
 * const text = await new Response(child.stdout!.readable).text();
 * const { code } = await child.status;
 * ```
 *
 * @module
 */
import { z } from "zod";
import {
  checkBool,
  checkHandle,
  isInvalidHandle,
  lastError,
  win32Error,
  withLastError,
} from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  CREATE_NO_WINDOW,
  CREATE_UNICODE_ENVIRONMENT,
  DUPLICATE_SAME_ACCESS,
  EXTENDED_STARTUPINFO_PRESENT,
  FILE_ATTRIBUTE_NORMAL,
  FILE_FLAG_FIRST_PIPE_INSTANCE,
  FILE_FLAG_OVERLAPPED,
  FILE_SHARE_READ,
  FILE_SHARE_WRITE,
  GENERIC_READ,
  GENERIC_WRITE,
  kernel32,
  OPEN_EXISTING,
  PIPE_ACCESS_INBOUND,
  PIPE_REJECT_REMOTE_CLIENTS,
  PIPE_TYPE_BYTE,
  PIPE_WAIT,
  PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
  STARTF_USESTDHANDLES,
  STD_ERROR_HANDLE,
  STD_INPUT_HANDLE,
  STD_OUTPUT_HANDLE,
  STILL_ACTIVE,
} from "../ffi/kernel32.ts";
import { SecurityAttributes } from "../ffi/security.ts";
import { wide } from "../ffi/strings.ts";
import { StructLayout } from "../ffi/struct.ts";
import { cancelAll, ERROR_OPERATION_ABORTED, OverlappedOp } from "./_io.ts";
import { waitObject } from "./_wait.ts";
import { type IoOptions, ioOptionsSchema, parseArg } from "./_validate.ts";
import { registerSettled, settled } from "./_pipe_end_settled.ts";
import { Lane } from "./_queue.ts";

// Users never make an end or a child: the constructors are private, and createPipe and spawnChild
// make them through these, which each class's static block sets.
let newReader!: (handle: OwnedHandle, overlapped: boolean) => PipeReader;
let newWriter!: (handle: OwnedHandle, overlapped: boolean) => PipeWriter;
let newChild!: (init: ChildInit) => ChildProcess;

/** What {@linkcode spawnChild} hands a {@linkcode ChildProcess}. */
interface ChildInit {
  pid: number;
  process: OwnedHandle;
  stdin: PipeWriter | null;
  stdout: PipeReader | null;
  stderr: PipeReader | null;
  handleListUsed: boolean;
}

const ERROR_INSUFFICIENT_BUFFER = 122;

/** `STARTUPINFOEXW` (112 bytes on x64): `STARTUPINFOW` and the attribute list pointer. */
const STARTUPINFOEXW = new StructLayout(
  {
    cb: "u32",
    lpReserved: "pointer",
    lpDesktop: "pointer",
    lpTitle: "pointer",
    dwX: "u32",
    dwY: "u32",
    dwXSize: "u32",
    dwYSize: "u32",
    dwXCountChars: "u32",
    dwYCountChars: "u32",
    dwFillAttribute: "u32",
    dwFlags: "u32",
    wShowWindow: "u16",
    cbReserved2: "u16",
    lpReserved2: "pointer",
    hStdInput: "pointer",
    hStdOutput: "pointer",
    hStdError: "pointer",
    lpAttributeList: "pointer",
  } as const,
);
/** The size of a plain `STARTUPINFOW` (104 bytes on x64). */

/** `PROCESS_INFORMATION` (24 bytes on x64). */
const PROCESS_INFORMATION = new StructLayout(
  {
    hProcess: "pointer",
    hThread: "pointer",
    dwProcessId: "u32",
    dwThreadId: "u32",
  } as const,
);

function toBytes(data: Uint8Array | string): Uint8Array<ArrayBuffer> {
  if (typeof data === "string") return new TextEncoder().encode(data);
  return data.buffer instanceof ArrayBuffer && !data.buffer.resizable
    ? data as Uint8Array<ArrayBuffer>
    : new Uint8Array(data);
}

const ioOptionsArg = ioOptionsSchema.optional();

/**
 * The checked waiting options of a read or write on `end`: its signal and deadline (from the
 * call). A synchronous end's `ReadFile`/`WriteFile` runs on a worker thread and cannot be
 * cancelled, so it takes neither: a `signal` or a finite `timeout` there rejects with
 * `NotSupported` before anything is read or written.
 */
function waitOf(
  end: PipeEnd,
  options: IoOptions | undefined,
): { signal: AbortSignal | undefined; deadline: number } {
  const { signal, timeout } = parseArg(ioOptionsArg, options, "options") ?? {};
  const finite = timeout !== undefined && timeout !== Infinity;
  if (!end.op && (signal !== undefined || finite)) {
    throw new Deno.errors.NotSupported(
      `The ${end.what} is a synchronous end (one a child inherits): its I/O cannot be ` +
        "cancelled, so it takes no timeout or signal",
    );
  }
  signal?.throwIfAborted();
  return { signal, deadline: finite ? performance.now() + timeout : Infinity };
}

/** What is left of `deadline` in milliseconds (`undefined` for none). */
function left(deadline: number): number | undefined {
  return deadline === Infinity ? undefined : Math.max(0, deadline - performance.now());
}

/**
 * A handle whose close waits until the operation in flight on it has ended. An overlapped end
 * (ours) runs its I/O through the I/O core and `close()` cancels it; a synchronous end (one
 * made for a child, or both ends of an `inheritable: "both"` pipe) runs `ReadFile`/`WriteFile` on
 * a worker thread, which cannot be cancelled.
 */
class PipeEnd {
  readonly #handle: OwnedHandle;
  readonly lane = new Lane();
  readonly op: OverlappedOp | undefined;
  #inFlight: Promise<unknown> | undefined;
  #closing = false;
  readonly what: string;

  constructor(handle: OwnedHandle, what: string, overlapped: boolean) {
    this.#handle = handle;
    this.what = what;
    if (overlapped) this.op = new OverlappedOp();
  }

  get closed(): boolean {
    return this.#closing;
  }

  get unsafeHandle(): Deno.PointerObject {
    if (this.#closing) throw new Deno.errors.BadResource(`The ${this.what} is closed`);
    return this.#handle.unsafeHandle;
  }

  /** Runs one operation; close() waits for it. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight = promise;
    return promise.finally(() => {
      if (this.#inFlight === promise) this.#inFlight = undefined;
    });
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    // An operation in flight still uses the handle: cancel it (overlapped), close after it.
    const inFlight = this.#inFlight;
    if (!inFlight) return this.#handle.close();
    if (this.op) cancelAll(this.#handle.unsafeHandle);
    inFlight.catch(() => undefined).finally(() => this.#handle.close());
  }

  async settled(): Promise<void> {
    await this.#inFlight?.catch(() => undefined);
  }
}

/** `ERROR_BROKEN_PIPE`, `ERROR_HANDLE_EOF`: the end of the stream. */
const END_OF_STREAM = new Set([109, 38]);
/** `ERROR_NO_DATA` (232): the pipe is being closed (a write's reader is gone). */
const ERROR_NO_DATA = 232;

/**
 * The reading end of an anonymous pipe.
 *
 * @example Write into a pipe and read it back
 * ```ts
 * import { createPipe } from "./anonymous_pipe.ts";
 * const { reader, writer } = createPipe();
 * await writer.write("hi");
 * writer.close();
 * console.log(await new Response(reader.readable).text()); // "hi"
 * ```
 */
export class PipeReader implements Disposable {
  readonly #end: PipeEnd;
  #readable: ReadableStream<Uint8Array> | undefined;

  static {
    newReader = (handle, overlapped) => new PipeReader(handle, overlapped);
  }

  /**
   * Made by {@linkcode createPipe} and {@linkcode spawnChild}.
   * @param handle The reading end.
   * @param overlapped Whether it was opened with `FILE_FLAG_OVERLAPPED`.
   */
  private constructor(handle: OwnedHandle, overlapped: boolean) {
    const end = new PipeEnd(handle, "pipe reader", overlapped);
    this.#end = end;
    registerSettled(this, () => end.settled());
  }

  /** The raw handle. @throws {Deno.errors.BadResource} When closed. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#end.unsafeHandle;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#end.closed;
  }

  /**
   * Reads up to `buffer.length` bytes (an overlapped `ReadFile` through the I/O core).
   *
   * @param buffer Where the bytes go.
   * @param options `timeout` (milliseconds from the call, default none) and `signal`; either
   *   cancels the read, and the reader stays usable (nothing was read). A synchronous end (an
   *   end a child inherits, or either end with `inheritable: "both"`) cannot cancel its read and
   *   takes neither: it rejects with `NotSupported`.
   * @returns The number of bytes read, or `null` at the end of the stream (every writing end
   *   closed: `ERROR_BROKEN_PIPE`).
   * @throws {Deno.errors.BadResource} When the reader is closed.
   * @throws {Deno.errors.Interrupted} When `close()` ran during the read.
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   * @throws The signal's reason when it aborts first.
   * @throws {Deno.errors.NotSupported} When a synchronous end is given a timeout or a signal.
   * @throws {Win32Error} When `ReadFile` fails otherwise.
   *
   * @example Read a chunk
   * ```ts
   * import type { PipeReader } from "./anonymous_pipe.ts";
   * declare const reader: PipeReader;
   * const n = await reader.read(new Uint8Array(4096));
   * ```
   */
  async read(buffer: Uint8Array, options?: IoOptions): Promise<number | null> {
    parseArg(z.instanceof(Uint8Array, { error: "must be a Uint8Array" }), buffer, "buffer");
    const { signal, deadline } = waitOf(this.#end, options);
    if (buffer.length === 0) return 0;
    const target = toBytes(buffer);
    return await this.#end.lane.run(async () => {
      const op = this.#end.op;
      if (!op) {
        const h = this.#end.unsafeHandle;
        const count = new Uint32Array(1);
        const ok = await this.#end.track(
          kernel32().ReadFileAsync(h, target, target.length, count, null),
        );
        // A synchronous end's failure code stays on the worker thread: read as the end.
        if (!ok || count[0] === 0) return null;
        if (target !== buffer) buffer.set(target.subarray(0, count[0]));
        return count[0];
      }
      for (;;) {
        const h = this.#end.unsafeHandle;
        const result = await this.#end.track(op.run(
          h,
          (ov) => kernel32().ReadFile(h, target, target.length, null, ov),
          { context: "Cannot read from the pipe", signal, timeout: left(deadline) },
        ));
        if (result.error === 0) {
          if (result.bytes === 0) continue; // a zero-length write: not the end
          if (target !== buffer) buffer.set(target.subarray(0, result.bytes));
          return result.bytes;
        }
        if (END_OF_STREAM.has(result.error)) return null;
        if (result.error === ERROR_OPERATION_ABORTED && this.#end.closed) {
          throw new Deno.errors.Interrupted("The pipe reader was closed during the read");
        }
        throw win32Error("ReadFile", result.error, { context: "Cannot read from the pipe" });
      }
    });
  }

  /** The data as a stream of chunks (up to 64 KiB each); it closes at the end of the stream. */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const buffer = new Uint8Array(65536);
          const n = await this.read(buffer);
          if (n === null) {
            controller.close();
            this.close();
          } else controller.enqueue(buffer.subarray(0, n));
        } catch (e) {
          controller.error(e);
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
  }

  /** Closes the handle, cancelling a read in flight first. A second call does nothing. */
  close(): void {
    this.#end.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The writing end of an anonymous pipe. Closing it is how the reader (a child's stdin) sees the
 * end of the stream.
 *
 * @example Feed a child's stdin
 * ```ts
 * import type { PipeWriter } from "./anonymous_pipe.ts";
 * declare const writer: PipeWriter;
 * await writer.write("line\n");
 * writer.close();
 * ```
 */
export class PipeWriter implements Disposable {
  readonly #end: PipeEnd;
  #writable: WritableStream<Uint8Array> | undefined;

  static {
    newWriter = (handle, overlapped) => new PipeWriter(handle, overlapped);
  }

  /**
   * Made by {@linkcode createPipe} and {@linkcode spawnChild}.
   * @param handle The writing end.
   * @param overlapped Whether it was opened with `FILE_FLAG_OVERLAPPED`.
   */
  private constructor(handle: OwnedHandle, overlapped: boolean) {
    const end = new PipeEnd(handle, "pipe writer", overlapped);
    this.#end = end;
    registerSettled(this, () => end.settled());
  }

  /** The raw handle. @throws {Deno.errors.BadResource} When closed. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#end.unsafeHandle;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#end.closed;
  }

  /**
   * Writes all of `data` (overlapped `WriteFile`s through the I/O core; it waits while the pipe
   * is full).
   *
   * @param data Bytes, or text (written as UTF-8).
   * @param options `timeout` (milliseconds from the call, for the whole of `data`, default none)
   *   and `signal`; either cancels the write, after which an unknown part of `data` may have been
   *   written. A synchronous end (an end a child inherits, or either end with
   *   `inheritable: "both"`) cannot cancel its write and takes neither: it rejects with
   *   `NotSupported`.
   * @returns The number of bytes written.
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   * @throws The signal's reason when it aborts first.
   * @throws {Deno.errors.NotSupported} When a synchronous end is given a timeout or a signal.
   * @throws {Deno.errors.BrokenPipe} When the reading end is closed.
   * @throws {Deno.errors.BadResource} When the writer is closed.
   * @throws {Deno.errors.Interrupted} When `close()` ran during the write.
   * @throws {Win32Error} When `WriteFile` fails otherwise.
   *
   * @example Write bytes
   * ```ts
   * import type { PipeWriter } from "./anonymous_pipe.ts";
   * declare const writer: PipeWriter;
   * await writer.write(new Uint8Array([1, 2, 3]));
   * ```
   */
  async write(data: Uint8Array | string, options?: IoOptions): Promise<number> {
    parseArg(
      z.union([z.instanceof(Uint8Array), z.string()], {
        error: "must be a Uint8Array or a string",
      }),
      data,
      "data",
    );
    const { signal, deadline } = waitOf(this.#end, options);
    const bytes = toBytes(data);
    return await this.#end.lane.run(async () => {
      let written = 0;
      while (written < bytes.length) {
        const h = this.#end.unsafeHandle;
        const rest = bytes.subarray(written);
        const op = this.#end.op;
        let done: number;
        let error: number;
        if (op) {
          ({ bytes: done, error } = await this.#end.track(op.run(
            h,
            (ov) => kernel32().WriteFile(h, rest, rest.length, null, ov),
            { context: "Cannot write to the pipe", signal, timeout: left(deadline) },
          )));
        } else {
          const count = new Uint32Array(1);
          const ok = await this.#end.track(
            kernel32().WriteFileAsync(h, rest, rest.length, count, null),
          );
          // A synchronous end's failure code stays on the worker thread: read as broken.
          [done, error] = [count[0], ok ? 0 : 109];
        }
        if (error === 109 || error === ERROR_NO_DATA) {
          throw new Deno.errors.BrokenPipe(
            `Cannot write to the pipe: the reading end is closed (after ${written} bytes)`,
          );
        }
        if (error === ERROR_OPERATION_ABORTED && this.#end.closed) {
          throw new Deno.errors.Interrupted("The pipe writer was closed during the write");
        }
        if (error !== 0) {
          throw win32Error("WriteFile", error, { context: "Cannot write to the pipe" });
        }
        written += done;
      }
      return written;
    });
  }

  /** A stream to write to; closing it closes the writer (the reader sees the end). */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.close(),
      abort: () => this.close(),
    });
  }

  /** Closes the handle, cancelling a write in flight first. A second call does nothing. */
  close(): void {
    this.#end.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Options of {@linkcode createPipe}.
 *
 * @example A 64 KiB pipe whose reading end a child may inherit
 * ```ts
 * import { createPipe } from "./anonymous_pipe.ts";
 * using pipe = createPipe({ inheritable: "read", size: 65536 });
 * ```
 */
export interface CreatePipeOptions {
  /** Which end child processes may inherit (`HANDLE_FLAG_INHERIT`). Default `"none"`. */
  inheritable?: "none" | "read" | "write" | "both";
  /** The pipe's buffer size in bytes, a hint (`nSize`); 0 (default) is the system's default. */
  size?: number;
}

const createPipeOptionsSchema = z.object({
  inheritable: z.enum(["none", "read", "write", "both"], {
    error: 'must be "none", "read", "write" or "both"',
  }).optional(),
  size: z.number({ error: "must be a number of bytes" })
    .int({ error: "must be a whole number of bytes" })
    .min(0, { error: "must not be negative" })
    .max(0x7fff_ffff, { error: "must be below 2 GiB" }).optional(),
}).strict().optional();

let pipeSerial = 0;
/** The buffer size when none is given (CreatePipe's own default is a page). */
const DEFAULT_PIPE_SIZE = 65536;

/**
 * An anonymous pipe made as Windows' own `CreatePipe` makes it, as a uniquely named pipe (one
 * instance, byte mode, local clients only; the read end is the server, the write end the
 * client), so that the ends that stay in this process can be opened with
 * `FILE_FLAG_OVERLAPPED`: their I/O goes through the I/O core and can be cancelled. An end a
 * child inherits stays synchronous, as children expect of their standard handles.
 *
 * @returns The read and write ends, and which of them are overlapped.
 */
function rawPipe(
  options: CreatePipeOptions,
): { r: OwnedHandle; w: OwnedHandle; readOverlapped: boolean; writeOverlapped: boolean } {
  const k = kernel32();
  const inherit = options.inheritable ?? "none";
  const readInherit = inherit === "read" || inherit === "both";
  const writeInherit = inherit === "write" || inherit === "both";
  // A named pipe's quota of 0 makes every write wait for a read; CreatePipe's 0 means a default.
  const size = options.size || DEFAULT_PIPE_SIZE;
  const name = wide(
    `\\\\.\\pipe\\winipc-anonymous-${k.GetCurrentProcessId()}-${++pipeSerial}-${crypto.randomUUID()}`,
  );
  const context = "Cannot create an anonymous pipe";
  using readSecurity = new SecurityAttributes({ inheritable: readInherit });
  const r = new OwnedHandle(checkHandle(
    k.CreateNamedPipeW(
      name,
      (PIPE_ACCESS_INBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE |
        (readInherit ? 0 : FILE_FLAG_OVERLAPPED)) >>> 0,
      PIPE_TYPE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      1,
      size,
      size,
      0,
      readSecurity.bytes,
    ),
    "CreateNamedPipeW",
    context,
  ));
  try {
    using writeSecurity = new SecurityAttributes({ inheritable: writeInherit });
    const w = new OwnedHandle(checkHandle(
      k.CreateFileW(
        name,
        GENERIC_WRITE,
        0,
        writeSecurity.bytes,
        OPEN_EXISTING,
        writeInherit ? FILE_ATTRIBUTE_NORMAL : FILE_FLAG_OVERLAPPED,
        null,
      ),
      "CreateFileW",
      context,
    ));
    return { r, w, readOverlapped: !readInherit, writeOverlapped: !writeInherit };
  } catch (error) {
    r.close();
    throw error;
  }
}

/**
 * Creates an anonymous pipe (a uniquely named pipe, as `CreatePipe` makes one; see the module doc).
 *
 * @param options Which end is inheritable, buffer size.
 * @returns The two ends.
 * @throws {TypeError} For a bad option.
 * @throws {Win32Error} When `CreateNamedPipeW` or `CreateFileW` fails.
 *
 * @example An end a child process may inherit
 * ```ts
 * import { createPipe } from "./anonymous_pipe.ts";
 * using pipe = createPipe({ inheritable: "read" });
 * // pass pipe.reader.unsafeHandle to a child as its stdin; write with pipe.writer
 * ```
 */
export function createPipe(
  options?: CreatePipeOptions,
): { reader: PipeReader; writer: PipeWriter } & Disposable {
  const opts: CreatePipeOptions = parseArg(createPipeOptionsSchema, options, "options") ?? {};
  const { r, w, readOverlapped, writeOverlapped } = rawPipe(opts);
  const reader = newReader(r, readOverlapped);
  const writer = newWriter(w, writeOverlapped);
  return {
    reader,
    writer,
    [Symbol.dispose]() {
      reader.close();
      writer.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// child processes

/**
 * Where a child's standard handle goes.
 *
 * @example Keep the output, share this console's stderr
 * ```ts
 * import { spawnChild, type StdioMode } from "./anonymous_pipe.ts";
 * const stderr: StdioMode = "inherit";
 * await using child = spawnChild("where.exe", ["cmd"], { stdout: "piped", stderr });
 * ```
 */
export type StdioMode = "piped" | "null" | "inherit";

/**
 * Options of {@linkcode spawnChild}.
 *
 * @example Run in another folder with an extra variable
 * ```ts
 * import { spawnChild } from "./anonymous_pipe.ts";
 * await using child = spawnChild("cmd.exe", ["/c", "echo %GREETING%"], {
 *   cwd: "C:\\",
 *   env: { GREETING: "hello" },
 *   stderr: "null",
 * });
 * console.log(await new Response(child.stdout!.readable).text()); // "hello\r\n"
 * ```
 */
export interface SpawnChildOptions {
  /** The child's stdin. Default `"null"`. */
  stdin?: StdioMode;
  /** The child's stdout. Default `"piped"`. */
  stdout?: StdioMode;
  /** The child's stderr. Default `"piped"`. */
  stderr?: StdioMode;
  /** The working directory. Default: this process's. */
  cwd?: string;
  /** Variables to set in the child's environment, over a copy of this process's. */
  env?: Record<string, string>;
  /** Pipe buffer size hint in bytes (0, the default, is the system's). */
  pipeSize?: number;
}

const stdioSchema = z.enum(["piped", "null", "inherit"], {
  error: 'must be "piped", "null" or "inherit"',
});
const spawnOptionsSchema = z.object({
  stdin: stdioSchema.optional(),
  stdout: stdioSchema.optional(),
  stderr: stdioSchema.optional(),
  cwd: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }).optional(),
  env: z.record(
    z.string().min(1).refine((k) => !k.includes("=") && !k.includes("\0"), {
      error: 'must not contain "=" or NUL',
    }),
    z.string().refine((v) => !v.includes("\0"), { error: "must not contain NUL" }),
  ).optional(),
  pipeSize: z.number().int().min(0).max(0x7fff_ffff).optional(),
}).strict().optional();

/**
 * Quotes one argument the way the Microsoft C runtime (and Deno) splits a command line: quotes
 * around arguments with spaces, tabs or quotes; `\"` for a quote; backslashes doubled only
 * before a quote.
 *
 * @param arg The argument.
 * @returns The quoted argument.
 *
 * @example Quote an argument for a command line
 * ```ts
 * import { quoteArgument } from "./anonymous_pipe.ts";
 * quoteArgument('say "hi"'); // '"say \\"hi\\""'
 * ```
 */
export function quoteArgument(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      slashes++;
    } else if (ch === '"') {
      out += "\\".repeat(slashes * 2 + 1) + '"';
      slashes = 0;
    } else {
      out += "\\".repeat(slashes) + ch;
      slashes = 0;
    }
  }
  return out + "\\".repeat(slashes * 2) + '"';
}

/** What cmd.exe would read in an argument as something other than text: refused for batch files. */
const BATCH_REFUSED = /["%!\r\n]/;
/** What needs quotes on a batch file's command line (inside quotes cmd.exe reads these as text). */
const BATCH_QUOTED = /[\s&|<>()^,;=]/;

/**
 * Quotes one argument for a batch file (`.bat`, `.cmd`), whose command line cmd.exe reads, not
 * the C runtime: an argument with spaces or cmd.exe's operators (`&|<>()^,;=`) goes in quotes,
 * where cmd.exe reads them as text; an argument with a quote, `%`, `!` or a line break is refused,
 * because no quoting keeps cmd.exe from reading those (a quote ends the quoted part, `%` and `!`
 * expand variables, a line break ends the command).
 *
 * @param arg The argument.
 * @param name The argument's name, for the error.
 * @returns The quoted argument.
 * @throws {TypeError} For an argument cmd.exe cannot be given safely.
 *
 * @example Quote an argument for a batch file
 * ```ts
 * import { quoteBatchArgument } from "./anonymous_pipe.ts";
 * quoteBatchArgument("a b&c", "args.0"); // '"a b&c"'
 * ```
 */
export function quoteBatchArgument(arg: string, name: string): string {
  const bad = arg.match(BATCH_REFUSED);
  if (bad) {
    const what = bad[0] === "\r" || bad[0] === "\n"
      ? "a line break"
      : bad[0] === '"'
      ? "a quote"
      : `"${bad[0]}"`;
    throw new TypeError(
      `Invalid argument "${name}": an argument to a batch file must not contain ${what}, which cmd.exe would not read as text`,
    );
  }
  return arg === "" || BATCH_QUOTED.test(arg) ? `"${arg}"` : arg;
}

function environmentBlock(extra: Record<string, string>): Uint16Array<ArrayBuffer> {
  const vars = { ...Deno.env.toObject(), ...extra };
  const text = Object.keys(vars)
    .sort((a, b) => a.toUpperCase() < b.toUpperCase() ? -1 : 1)
    .map((k) => `${k}=${vars[k]}\0`)
    .join("") + "\0";
  return wide(text).subarray(0, text.length) as Uint16Array<ArrayBuffer>;
}

/**
 * How a child ended.
 *
 * @example Fail when the child failed
 * ```ts
 * import { spawnChild } from "./anonymous_pipe.ts";
 * await using child = spawnChild("cmd.exe", ["/c", "exit 3"], { stdout: "null", stderr: "null" });
 * const { success, code } = await child.status;
 * if (!success) throw new Error(`cmd.exe exited with ${code}`);
 * ```
 */
export interface ChildStatus {
  /** `true` when the exit code is 0. */
  success: boolean;
  /** The exit code (`GetExitCodeProcess`). */
  code: number;
}

/**
 * A child process started by {@linkcode spawnChild}.
 *
 * @example Feed stdin, read stdout, get the exit code
 * ```ts
 * import { spawnChild } from "./anonymous_pipe.ts";
 * await using child = spawnChild("sort.exe", [], { stdin: "piped", stdout: "piped" });
 * await child.stdin!.write("b\r\na\r\n");
 * child.stdin!.close();
 * console.log(await new Response(child.stdout!.readable).text());
 * console.log((await child.status).code);
 * ```
 */
export class ChildProcess implements AsyncDisposable {
  /** The process id. */
  readonly pid: number;
  /** Write the child's stdin here (when `stdin: "piped"`); close it to send the end. */
  readonly stdin: PipeWriter | null;
  /** The child's stdout (when `stdout: "piped"`). */
  readonly stdout: PipeReader | null;
  /** The child's stderr (when `stderr: "piped"`). */
  readonly stderr: PipeReader | null;
  /**
   * Whether the child inherited only its three handles (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`):
   * always `true`, since {@linkcode spawnChild} starts no child when the system refuses the list.
   */
  readonly handleListUsed: boolean;
  readonly #process: OwnedHandle;
  #status: Promise<ChildStatus> | undefined;
  #closing: Promise<void> | undefined;

  static {
    newChild = (init) => new ChildProcess(init);
  }

  /** Made by {@linkcode spawnChild}. */
  private constructor(init: ChildInit) {
    this.pid = init.pid;
    this.#process = init.process;
    this.stdin = init.stdin;
    this.stdout = init.stdout;
    this.stderr = init.stderr;
    this.handleListUsed = init.handleListUsed;
  }

  /** The raw process handle. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#process.unsafeHandle;
  }

  /** Resolves when the child has exited, with its exit code. */
  get status(): Promise<ChildStatus> {
    return this.#status ??= this.wait().then((s) => s!);
  }

  /**
   * Waits for the child to exit, without blocking the event loop.
   *
   * @param options Timeout (milliseconds) and AbortSignal.
   * @returns The status, or `null` when the timeout elapsed first.
   * @throws The signal's reason when aborted.
   *
   * @example Wait for a child with a timeout
   * ```ts
   * import type { ChildProcess } from "./anonymous_pipe.ts";
   * declare const child: ChildProcess;
   * const status = await child.wait({ timeout: 10_000 });
   * if (status === null) child.kill();
   * ```
   */
  async wait(options?: IoOptions): Promise<ChildStatus | null> {
    const opts: IoOptions = parseArg(ioOptionsSchema.optional(), options, "options") ?? {};
    const h = this.#process.unsafeHandle;
    const state = await waitObject(h, opts, `Cannot wait for process ${this.pid}`);
    if (state === "timeout") return null;
    const code = new Uint32Array(1);
    checkBool(
      kernel32().GetExitCodeProcess(h, code),
      "GetExitCodeProcess",
      `Cannot read the exit code of process ${this.pid}`,
    );
    return { success: code[0] === 0, code: code[0] };
  }

  /**
   * Ends the child now (`TerminateProcess`).
   *
   * @param exitCode Its exit code. Default 1.
   * @throws {Win32Error} When it cannot be terminated (it may have exited already).
   */
  kill(exitCode = 1): void {
    const code = new Uint32Array(1);
    const h = this.#process.unsafeHandle;
    if (kernel32().GetExitCodeProcess(h, code) && code[0] !== STILL_ACTIVE) return;
    checkBool(
      kernel32().TerminateProcess(h, exitCode >>> 0),
      "TerminateProcess",
      `Cannot terminate process ${this.pid}`,
    );
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Closes the pipes, then, once their operations in flight have ended, the process handle. The
   * child keeps running if it still is. A second call does nothing.
   */
  close(): void {
    this.#closing ??= (async () => {
      this.stdin?.close();
      this.stdout?.close();
      this.stderr?.close();
      await Promise.all([settled(this.stdin), settled(this.stdout), settled(this.stderr)]);
      this.#process.close();
    })();
  }

  /** Closes the pipes and the process handle (the child keeps running if it still is). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#closing;
  }
}

/** The command line: the C runtime's quoting, or cmd.exe's for a batch file. */
function commandLineFor(program: string, args: string[]): string {
  if (/\.(bat|cmd)$/i.test(program.replace(/["\s]+$/, ""))) {
    const quoted = args.map((arg, i) => quoteBatchArgument(arg, `args.${i}`));
    if (program.includes('"')) {
      throw new TypeError(
        'Invalid argument "program": a batch file\'s path must not contain a quote',
      );
    }
    return [`"${program}"`, ...quoted].join(" ");
  }
  return [program, ...args].map(quoteArgument).join(" ");
}

/**
 * Starts a program with `CreateProcessW`, its standard handles wired to anonymous pipes.
 *
 * The child inherits only its own three handles: they are listed in a
 * `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` (in a `STARTUPINFOEXW`). If the system refuses the list,
 * no child is started (a `Win32Error`), rather than one that inherits every inheritable handle
 * of this process, as plain `CreateProcessW` would. This process's ends of the pipes are never
 * inheritable.
 *
 * A batch file (`.bat`, `.cmd`) runs under cmd.exe, which reads its command line by rules of its
 * own: its arguments are quoted with {@linkcode quoteBatchArgument}, which refuses what cmd.exe
 * would not read as text (a quote, `%`, `!`, a line break) with a `TypeError`, before anything
 * runs.
 *
 * @param program The program: a path, or a name the system looks up (as `CreateProcessW` does
 *   with no application name: the program's folder, the current folder, the system folders, then
 *   `PATH`).
 * @param args The arguments, each quoted as the C runtime expects ({@linkcode quoteArgument}).
 * @param options Where stdin/stdout/stderr go, working directory, environment.
 * @returns The running child.
 * @throws {TypeError} For a bad argument or option.
 * @throws {Win32Error} When the process cannot be started (`ERROR_FILE_NOT_FOUND`...).
 *
 * @example Run deno with piped stdio
 * ```ts
 * import { spawnChild } from "./anonymous_pipe.ts";
 * const child = spawnChild(Deno.execPath(), ["--version"]);
 * console.log(await new Response(child.stdout!.readable).text());
 * await child.status;
 * ```
 */
export function spawnChild(
  program: string,
  args: string[] = [],
  options?: SpawnChildOptions,
): ChildProcess {
  parseArg(
    z.string({ error: "must be a string" }).min(1, { error: "must not be empty" })
      .refine((s) => !s.includes("\0"), { error: "must not contain NUL" }),
    program,
    "program",
  );
  parseArg(
    z.array(
      z.string({ error: "must be a string" }).refine((s) => !s.includes("\0"), {
        error: "must not contain NUL",
      }),
      { error: "must be an array of strings" },
    ),
    args,
    "args",
  );
  const opts: SpawnChildOptions = parseArg(spawnOptionsSchema, options, "options") ?? {};
  const line = commandLineFor(program, args); // a batch file's bad argument fails here
  const k = kernel32();
  const owned: OwnedHandle[] = []; // the child's ends: closed here once the child has them
  const ours: { stdin?: PipeWriter; stdout?: PipeReader; stderr?: PipeReader } = {};
  const childEnd = (which: "stdin" | "stdout" | "stderr", mode: StdioMode): Deno.PointerObject => {
    if (mode === "piped") {
      const { r, w } = rawPipe({
        inheritable: which === "stdin" ? "read" : "write",
        size: opts.pipeSize,
      });
      if (which === "stdin") {
        ours.stdin = newWriter(w, true);
        owned.push(r);
        return r.unsafeHandle;
      }
      if (which === "stdout") ours.stdout = newReader(r, true);
      else ours.stderr = newReader(r, true);
      owned.push(w);
      return w.unsafeHandle;
    }
    if (mode === "inherit") {
      const std = k.GetStdHandle(
        which === "stdin"
          ? STD_INPUT_HANDLE
          : which === "stdout"
          ? STD_OUTPUT_HANDLE
          : STD_ERROR_HANDLE,
      );
      if (!isInvalidHandle(std)) {
        // A private inheritable duplicate, so the list holds distinct handles we own.
        const out = new BigUint64Array(1);
        const process = k.GetCurrentProcess();
        if (k.DuplicateHandle(process, std, process, out, 0, 1, DUPLICATE_SAME_ACCESS)) {
          const dup = new OwnedHandle(Deno.UnsafePointer.create(out[0])!);
          owned.push(dup);
          return dup.unsafeHandle;
        }
      }
      // No standard handle to pass on (no console): the child gets NUL instead.
    }
    using security = new SecurityAttributes({ inheritable: true });
    const nul = new OwnedHandle(checkHandle(
      k.CreateFileW(
        wide("NUL"),
        (GENERIC_READ | GENERIC_WRITE) >>> 0,
        FILE_SHARE_READ | FILE_SHARE_WRITE,
        security.bytes,
        OPEN_EXISTING,
        0,
        null,
      ),
      "CreateFileW",
      "Cannot open NUL for a child's standard handle",
    ));
    owned.push(nul);
    return nul.unsafeHandle;
  };
  try {
    const hStdInput = childEnd("stdin", opts.stdin ?? "null");
    const hStdOutput = childEnd("stdout", opts.stdout ?? "piped");
    const hStdError = childEnd("stderr", opts.stderr ?? "piped");

    // The handle list: exactly the child's three handles.
    const list = new BigUint64Array(
      [hStdInput, hStdOutput, hStdError].map((h) => Deno.UnsafePointer.value(h) as bigint),
    );
    // Fail closed: without the list the child would inherit every inheritable handle of this
    // process (other code's too), so a system that refuses it gets no child.
    const size = new BigUint64Array(1);
    const [, sizing] = withLastError(() => k.InitializeProcThreadAttributeList(null, 1, 0, size));
    if (sizing !== ERROR_INSUFFICIENT_BUFFER || size[0] === 0n) {
      throw win32Error("InitializeProcThreadAttributeList", sizing, {
        context: `Cannot start "${program}": cannot limit the handles it inherits`,
      });
    }
    const attributes = new Uint8Array(Number(size[0]));
    checkBool(
      k.InitializeProcThreadAttributeList(attributes, 1, 0, size),
      "InitializeProcThreadAttributeList",
      `Cannot start "${program}": cannot limit the handles it inherits`,
    );
    if (
      !k.UpdateProcThreadAttribute(
        attributes,
        0,
        BigInt(PROC_THREAD_ATTRIBUTE_HANDLE_LIST),
        list,
        BigInt(list.byteLength),
        null,
        null,
      )
    ) {
      const code = lastError();
      k.DeleteProcThreadAttributeList(attributes);
      throw win32Error("UpdateProcThreadAttribute", code, {
        context: `Cannot start "${program}": cannot limit the handles it inherits`,
      });
    }
    const startup = STARTUPINFOEXW.alloc({
      cb: STARTUPINFOEXW.size,
      dwFlags: STARTF_USESTDHANDLES,
      hStdInput,
      hStdOutput,
      hStdError,
      lpAttributeList: Deno.UnsafePointer.of(attributes),
    });
    const info = PROCESS_INFORMATION.alloc();
    const commandLine = wide(line);
    const env = opts.env ? environmentBlock(opts.env) : null;
    const flags = CREATE_NO_WINDOW | EXTENDED_STARTUPINFO_PRESENT |
      (env ? CREATE_UNICODE_ENVIRONMENT : 0);
    const ok = k.CreateProcessW(
      null,
      commandLine,
      null,
      null,
      1,
      flags,
      env,
      opts.cwd === undefined ? null : wide(opts.cwd),
      startup,
      info,
    );
    const code = lastError();
    k.DeleteProcThreadAttributeList(attributes);
    if (!ok) {
      throw win32Error("CreateProcessW", code, {
        context: `Cannot start "${program}"`,
      });
    }
    const pi = PROCESS_INFORMATION.read(info);
    if (pi.hThread) k.CloseHandle(pi.hThread);
    return newChild({
      pid: pi.dwProcessId,
      process: new OwnedHandle(pi.hProcess!),
      stdin: ours.stdin ?? null,
      stdout: ours.stdout ?? null,
      stderr: ours.stderr ?? null,
      handleListUsed: true,
    });
  } catch (e) {
    ours.stdin?.close();
    ours.stdout?.close();
    ours.stderr?.close();
    throw e;
  } finally {
    // The child has its copies now (or failed to start): ours of its ends must go, or its
    // stdout would never reach the end of the stream.
    for (const h of owned) h.close();
  }
}
