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
 * Anonymous pipes cannot do overlapped I/O, so each `read` or `write` is a `ReadFile` /
 * `WriteFile` run on one of Deno's worker threads (a `nonblocking` FFI call): the event loop stays
 * free, but an operation in flight cannot be cancelled, and each one holds a worker thread (Deno
 * has about 8) until it completes. A failed read is the end of the stream: when the writing end
 * is closed (the child exited) `ReadFile` fails with `ERROR_BROKEN_PIPE`, and the worker thread's
 * error code is not readable from here (see the design's FFI facts), so every failure reads as
 * the end.
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
import { checkBool, checkHandle, isInvalidHandle, lastError, Win32Error } from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  CREATE_NO_WINDOW,
  CREATE_UNICODE_ENVIRONMENT,
  DUPLICATE_SAME_ACCESS,
  EXTENDED_STARTUPINFO_PRESENT,
  FILE_SHARE_READ,
  FILE_SHARE_WRITE,
  GENERIC_READ,
  GENERIC_WRITE,
  HANDLE_FLAG_INHERIT,
  kernel32,
  OPEN_EXISTING,
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
import { waitObject } from "./_wait.ts";
import { parseArg, signalSchema, timeoutSchema } from "./_validate.ts";

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
const STARTUPINFOW_SIZE = STARTUPINFOEXW.offsetOf("lpAttributeList");

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

/** Runs async operations one after another. */
class Lane {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

/** A handle whose close waits until the operation in flight on it has ended. */
class PipeEnd {
  readonly #handle: OwnedHandle;
  readonly lane = new Lane();
  #inFlight: Promise<unknown> | undefined;
  #closing = false;
  readonly what: string;

  constructor(handle: OwnedHandle, what: string) {
    this.#handle = handle;
    this.what = what;
  }

  get closed(): boolean {
    return this.#closing;
  }

  get unsafeHandle(): Deno.PointerObject {
    if (this.#closing) throw new Deno.errors.BadResource(`The ${this.what} is closed`);
    return this.#handle.unsafeHandle;
  }

  /** Runs one worker-thread call; close() waits for it. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight = promise;
    return promise.finally(() => {
      if (this.#inFlight === promise) this.#inFlight = undefined;
    });
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    // A ReadFile/WriteFile on a worker thread still uses the handle: close after it.
    const inFlight = this.#inFlight;
    if (inFlight) inFlight.finally(() => this.#handle.close()).catch(() => undefined);
    else this.#handle.close();
  }

  async settled(): Promise<void> {
    await this.#inFlight?.catch(() => undefined);
  }
}

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

  /** @internal Made by {@linkcode createPipe} and {@linkcode spawnChild}. */
  constructor(handle: OwnedHandle) {
    this.#end = new PipeEnd(handle, "pipe reader");
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
   * Reads up to `buffer.length` bytes (`ReadFile` on a worker thread).
   *
   * @param buffer Where the bytes go.
   * @returns The number of bytes read, or `null` at the end of the stream (every writing end
   *   closed: `ERROR_BROKEN_PIPE`).
   * @throws {Deno.errors.BadResource} When the reader is closed.
   *
   * @example Read a chunk
   * ```ts
   * import type { PipeReader } from "./anonymous_pipe.ts";
   * declare const reader: PipeReader;
   * const n = await reader.read(new Uint8Array(4096));
   * ```
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    parseArg(z.instanceof(Uint8Array, { error: "must be a Uint8Array" }), buffer, "buffer");
    if (buffer.length === 0) return 0;
    const target = toBytes(buffer);
    return await this.#end.lane.run(async () => {
      const h = this.#end.unsafeHandle;
      const count = new Uint32Array(1);
      const ok = await this.#end.track(
        kernel32().ReadFileAsync(h, target, target.length, count, null),
      );
      if (!ok || count[0] === 0) return null; // ERROR_BROKEN_PIPE: the writers are gone
      if (target !== buffer) buffer.set(target.subarray(0, count[0]));
      return count[0];
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

  /** Closes the handle (after a read in flight ends). A second call does nothing. */
  close(): void {
    this.#end.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Resolves when no read is in flight. */
  settled(): Promise<void> {
    return this.#end.settled();
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

  /** @internal Made by {@linkcode createPipe} and {@linkcode spawnChild}. */
  constructor(handle: OwnedHandle) {
    this.#end = new PipeEnd(handle, "pipe writer");
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
   * Writes all of `data` (`WriteFile` on a worker thread; it waits while the pipe is full).
   *
   * @param data Bytes, or text (written as UTF-8).
   * @returns The number of bytes written.
   * @throws {Deno.errors.BrokenPipe} When the reading end is closed.
   * @throws {Deno.errors.BadResource} When the writer is closed.
   *
   * @example Write bytes
   * ```ts
   * import type { PipeWriter } from "./anonymous_pipe.ts";
   * declare const writer: PipeWriter;
   * await writer.write(new Uint8Array([1, 2, 3]));
   * ```
   */
  async write(data: Uint8Array | string): Promise<number> {
    parseArg(
      z.union([z.instanceof(Uint8Array), z.string()], {
        error: "must be a Uint8Array or a string",
      }),
      data,
      "data",
    );
    const bytes = toBytes(data);
    return await this.#end.lane.run(async () => {
      let written = 0;
      while (written < bytes.length) {
        const h = this.#end.unsafeHandle;
        const rest = bytes.subarray(written);
        const count = new Uint32Array(1);
        const ok = await this.#end.track(
          kernel32().WriteFileAsync(h, rest, rest.length, count, null),
        );
        if (!ok) {
          throw new Deno.errors.BrokenPipe(
            `Cannot write to the pipe: the reading end is closed (after ${written} bytes)`,
          );
        }
        written += count[0];
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

  /** Closes the handle (after a write in flight ends). A second call does nothing. */
  close(): void {
    this.#end.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Resolves when no write is in flight. */
  settled(): Promise<void> {
    return this.#end.settled();
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

function rawPipe(options: CreatePipeOptions): [OwnedHandle, OwnedHandle] {
  const k = kernel32();
  const read = new BigUint64Array(1);
  const write = new BigUint64Array(1);
  const inherit = options.inheritable ?? "none";
  using security = new SecurityAttributes({ inheritable: inherit !== "none" });
  checkBool(
    k.CreatePipe(read, write, security.bytes, options.size ?? 0),
    "CreatePipe",
    "Cannot create an anonymous pipe",
  );
  const r = new OwnedHandle(Deno.UnsafePointer.create(read[0])!);
  const w = new OwnedHandle(Deno.UnsafePointer.create(write[0])!);
  // Both ends were created inheritable; take the flag off the end that must stay here.
  if (inherit === "read") k.SetHandleInformation(w.unsafeHandle, HANDLE_FLAG_INHERIT, 0);
  if (inherit === "write") k.SetHandleInformation(r.unsafeHandle, HANDLE_FLAG_INHERIT, 0);
  return [r, w];
}

/**
 * Creates an anonymous pipe (`CreatePipe`).
 *
 * @param options Which end is inheritable, buffer size.
 * @returns The two ends.
 * @throws {TypeError} For a bad option.
 * @throws {Win32Error} When `CreatePipe` fails.
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
  const [r, w] = rawPipe(opts);
  const reader = new PipeReader(r);
  const writer = new PipeWriter(w);
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
  /** Whether the child inherited only its three handles (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`). */
  readonly handleListUsed: boolean;
  readonly #process: OwnedHandle;
  #status: Promise<ChildStatus> | undefined;

  /** @internal */
  constructor(init: {
    pid: number;
    process: OwnedHandle;
    stdin: PipeWriter | null;
    stdout: PipeReader | null;
    stderr: PipeReader | null;
    handleListUsed: boolean;
  }) {
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
  async wait(options?: { timeout?: number; signal?: AbortSignal }): Promise<ChildStatus | null> {
    const opts: { timeout?: number; signal?: AbortSignal } = parseArg(
      z.object({ timeout: timeoutSchema.optional(), signal: signalSchema }).strict().optional(),
      options,
      "options",
    ) ?? {};
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

  /** Closes the pipes and the process handle (the child keeps running if it still is). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.stdin?.close();
    this.stdout?.close();
    this.stderr?.close();
    await Promise.all([this.stdin?.settled(), this.stdout?.settled(), this.stderr?.settled()]);
    this.#process.close();
  }
}

/**
 * Starts a program with `CreateProcessW`, its standard handles wired to anonymous pipes.
 *
 * The child inherits only its own three handles: they are listed in a
 * `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` (in a `STARTUPINFOEXW`); if the system refuses the list,
 * the child inherits every inheritable handle, as plain `CreateProcessW` does
 * (`handleListUsed` says which). This process's ends of the pipes are never inheritable.
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
  const k = kernel32();
  const owned: OwnedHandle[] = []; // the child's ends: closed here once the child has them
  const ours: { stdin?: PipeWriter; stdout?: PipeReader; stderr?: PipeReader } = {};
  const childEnd = (which: "stdin" | "stdout" | "stderr", mode: StdioMode): Deno.PointerObject => {
    if (mode === "piped") {
      const [r, w] = rawPipe({
        inheritable: which === "stdin" ? "read" : "write",
        size: opts.pipeSize,
      });
      if (which === "stdin") {
        ours.stdin = new PipeWriter(w);
        owned.push(r);
        return r.unsafeHandle;
      }
      if (which === "stdout") ours.stdout = new PipeReader(r);
      else ours.stderr = new PipeReader(r);
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
    const size = new BigUint64Array(1);
    k.InitializeProcThreadAttributeList(null, 1, 0, size);
    let attributes: Uint8Array<ArrayBuffer> | null = null;
    if (lastError() === ERROR_INSUFFICIENT_BUFFER && size[0] > 0n) {
      attributes = new Uint8Array(Number(size[0]));
      if (!k.InitializeProcThreadAttributeList(attributes, 1, 0, size)) attributes = null;
      else if (
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
        k.DeleteProcThreadAttributeList(attributes);
        attributes = null;
      }
    }
    const startup = STARTUPINFOEXW.alloc({
      cb: attributes ? STARTUPINFOEXW.size : STARTUPINFOW_SIZE,
      dwFlags: STARTF_USESTDHANDLES,
      hStdInput,
      hStdOutput,
      hStdError,
      lpAttributeList: attributes ? Deno.UnsafePointer.of(attributes) : null,
    });
    const info = PROCESS_INFORMATION.alloc();
    const commandLine = wide([program, ...args].map(quoteArgument).join(" "));
    const env = opts.env ? environmentBlock(opts.env) : null;
    const flags = CREATE_NO_WINDOW | (attributes ? EXTENDED_STARTUPINFO_PRESENT : 0) |
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
    if (attributes) k.DeleteProcThreadAttributeList(attributes);
    if (!ok) {
      throw new Win32Error("CreateProcessW", code, {
        context: `Cannot start "${program}"`,
      });
    }
    const pi = PROCESS_INFORMATION.read(info);
    if (pi.hThread) k.CloseHandle(pi.hThread);
    return new ChildProcess({
      pid: pi.dwProcessId,
      process: new OwnedHandle(pi.hProcess!),
      stdin: ours.stdin ?? null,
      stdout: ours.stdout ?? null,
      stderr: ours.stderr ?? null,
      handleListUsed: attributes !== null,
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
