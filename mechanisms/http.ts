/**
 * HTTP and HTTPS transfers through WinINet: download a URL to a stream ({@linkcode download}) or
 * a file ({@linkcode downloadFile}), upload a file ({@linkcode upload}), with progress, status and
 * headers, redirects followed (WinINet's own handling), timeouts and AbortSignal cancellation.
 *
 * WinINet's synchronous calls block, so each transfer runs in a Deno Worker (its own thread) that
 * makes the calls and reads `GetLastError` on that same thread right after a failing call; see
 * `_http_worker.ts`. Bytes come back to this thread as transferred chunks, with flow control, so a
 * slow reader does not make the worker buffer the whole body.
 *
 * A status of 400 or more is an {@linkcode HttpStatusError} (unless `allowErrorStatus`), never
 * an empty or error-page file. {@linkcode downloadFile} writes to a temporary name beside the
 * target and renames it only when the whole body arrived, so a failed or aborted download never
 * leaves a truncated file under the final name.
 *
 * @example Download with progress
 * ```ts
 * import { downloadFile } from "./http.ts";
 * const result = await downloadFile("http://127.0.0.1:8000/big.bin", "big.bin", {
 *   onProgress: ({ loaded, total }) => console.log(loaded, total),
 *   signal: AbortSignal.timeout(60_000),
 * });
 * console.log(result.status, result.bytes);
 * ```
 *
 * @module
 */
import { z } from "zod";
import { win32Error, WinipcError } from "../ffi/error.ts";
import { isWindows, UnsupportedPlatformError } from "../ffi/library.ts";
import type { Job, WorkerMessage } from "./_http_worker.ts";
import { type IoOptions, parseArg, signalSchema, urlSchema } from "./_validate.ts";

// ---------------------------------------------------------------------------------------------
// validation

const headersSchema = z.record(
  z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: "must be a header name" }),
  z.string().refine((v) => !/[\r\n\0]/.test(v), { error: "must not contain CR, LF or NUL" }),
).optional();

const baseOptions = {
  headers: headersSchema,
  timeout: z.number({ error: "must be a number of milliseconds" }).int()
    .min(1, { error: "must be at least 1 ms" })
    .max(0xffff_fffe, { error: "must be below 2^32 - 1 ms" }).optional(),
  signal: signalSchema,
  onProgress: z.function().optional(),
  userAgent: z.string().min(1).max(1000).optional(),
  insecure: z.boolean().optional(),
};

const downloadSchema = z.object({
  ...baseOptions,
  allowErrorStatus: z.boolean().optional(),
}).strict().optional();

const uploadSchema = z.object({
  ...baseOptions,
  method: z.enum(["PUT", "POST"], { error: 'must be "PUT" or "POST"' }).optional(),
  contentType: z.string().min(1).refine((v) => !/[\r\n\0]/.test(v)).optional(),
}).strict().optional();

const pathSchema = z.string({ error: "must be a path" }).min(1, { error: "must not be empty" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });

// ---------------------------------------------------------------------------------------------
// public types

/**
 * Progress of a transfer.
 *
 * @example Print a percentage while downloading
 * ```ts
 * import { downloadFile, type Progress } from "./http.ts";
 * const show = ({ loaded, total }: Progress) =>
 *   console.log(total ? `${Math.round((loaded / total) * 100)} %` : `${loaded} bytes`);
 * await downloadFile("http://127.0.0.1:8000/big.iso", "big.iso", { onProgress: show });
 * ```
 */
export interface Progress {
  /** Bytes transferred so far. */
  loaded: number;
  /** The total, when known (Content-Length for downloads, the file size for uploads). */
  total?: number;
}

/**
 * Options shared by every transfer.
 *
 * @example A token, a 10 s timeout and a way to cancel
 * ```ts
 * import { download } from "./http.ts";
 * const controller = new AbortController();
 * const response = await download("https://example.com/report.csv", {
 *   headers: { Authorization: "Bearer 123" },
 *   timeout: 10_000,
 *   signal: controller.signal,
 *   userAgent: "report-fetcher/1.0",
 * });
 * ```
 */
export interface TransferOptions extends IoOptions {
  /** Request headers. */
  headers?: Record<string, string>;
  /** Connect, send and receive timeout, each, in milliseconds (default 30000). */
  timeout?: number;
  /** Cancels the transfer. */
  signal?: AbortSignal;
  /** Called as bytes move. */
  onProgress?: (progress: Progress) => void;
  /** The User-Agent (default `winipc`). */
  userAgent?: string;
  /**
   * HTTPS only: accept any server certificate (unknown authority, other name, expired). For
   * tests and self-signed development servers; never for real traffic. Default false.
   */
  insecure?: boolean;
}

/**
 * Options of {@linkcode download} and {@linkcode downloadFile}.
 *
 * @example Read an error page instead of throwing
 * ```ts
 * import { download } from "./http.ts";
 * const response = await download("http://127.0.0.1:8000/missing", { allowErrorStatus: true });
 * if (response.status === 404) console.log(await new Response(response.body).text());
 * ```
 */
export interface DownloadOptions extends TransferOptions {
  /** Return a 4xx/5xx response instead of throwing {@linkcode HttpStatusError} (default false). */
  allowErrorStatus?: boolean;
}

/**
 * Options of {@linkcode upload}.
 *
 * @example POST a JSON file
 * ```ts
 * import { upload } from "./http.ts";
 * await upload("http://127.0.0.1:8000/api/import", "rows.json", {
 *   method: "POST",
 *   contentType: "application/json",
 * });
 * ```
 */
export interface UploadOptions extends TransferOptions {
  /** `PUT` (default) or `POST`. */
  method?: "PUT" | "POST";
  /** The Content-Type (default `application/octet-stream`). */
  contentType?: string;
}

/**
 * What a response said.
 *
 * @example Log where a redirect led and how big the body is
 * ```ts
 * import { download, type ResponseInfo } from "./http.ts";
 * const response = await download("http://127.0.0.1:8000/latest");
 * const { url, status, statusText, headers, contentLength }: ResponseInfo = response;
 * console.log(url, status, statusText, headers.get("content-type"), contentLength);
 * await response.body.cancel();
 * ```
 */
export interface ResponseInfo {
  /** The final URL, after redirects. */
  url: string;
  /** The status code. */
  status: number;
  /** The reason phrase (`OK`, `Not Found`). */
  statusText: string;
  /** The response headers. */
  headers: Headers;
  /** The Content-Length, when the server sent one. */
  contentLength?: number;
}

/**
 * A response whose body is still to be read.
 *
 * @example Stream the body to a file, then wait for the transfer's thread
 * ```ts
 * import { download } from "./http.ts";
 * const response = await download("http://127.0.0.1:8000/data.bin");
 * await using file = await Deno.open("data.bin", { write: true, create: true });
 * await response.body.pipeTo(file.writable);
 * await response.finished;
 * ```
 */
export interface HttpDownload extends ResponseInfo {
  /** The body. Cancelling it cancels the transfer. */
  body: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** Resolves when the transfer's thread has finished and released its handles. */
  finished: Promise<void>;
}

/**
 * The result of {@linkcode downloadFile}.
 *
 * @example Report what was saved
 * ```ts
 * import { downloadFile } from "./http.ts";
 * const { path, bytes, status } = await downloadFile("http://127.0.0.1:8000/a.zip", "a.zip");
 * console.log(`${status}: ${bytes} bytes in ${path}`);
 * ```
 */
export interface DownloadFileResult extends ResponseInfo {
  /** Where the body was written. */
  path: string;
  /** How many bytes. */
  bytes: number;
}

/**
 * The result of {@linkcode upload}.
 *
 * @example Read the server's answer to an upload
 * ```ts
 * import { upload } from "./http.ts";
 * const { status, bytes, body } = await upload("http://127.0.0.1:8000/files/a.txt", "a.txt");
 * console.log(`${status} after ${bytes} bytes: ${body}`);
 * ```
 */
export interface UploadResult extends ResponseInfo {
  /** Bytes sent. */
  bytes: number;
  /** The response body, as text. */
  body: string;
}

/**
 * The server answered with a status of 400 or more.
 *
 * @example Tell a missing resource apart
 * ```ts
 * import { download, HttpStatusError } from "./http.ts";
 * try {
 *   await download("http://127.0.0.1:8000/missing");
 * } catch (e) {
 *   if (e instanceof HttpStatusError && e.status === 404) console.log("not there");
 * }
 * ```
 */
export class HttpStatusError extends WinipcError {
  /** The status code. */
  readonly status: number;
  /** The reason phrase. */
  readonly statusText: string;
  /** The final URL. */
  readonly url: string;
  /** The response headers. */
  readonly headers: Headers;

  /**
   * Makes the error from a response.
   *
   * @param method The request's method.
   * @param info The response.
   */
  constructor(method: string, info: ResponseInfo) {
    super(
      `${method} ${info.url} failed with HTTP ${info.status}${
        info.statusText ? ` ${info.statusText}` : ""
      }`,
      info.status,
      `HTTP_${info.status}`,
    );
    this.name = "HttpStatusError";
    this.status = info.status;
    this.statusText = info.statusText;
    this.url = info.url;
    this.headers = info.headers;
  }
}

// ---------------------------------------------------------------------------------------------
// the worker side of a transfer

const CREDITS_WINDOW = 8;

/** One transfer on its worker thread: a message queue in, abort and flow control out. */
class Transfer {
  readonly #worker: Worker;
  readonly #flags: Int32Array;
  readonly #queue: WorkerMessage[] = [];
  #waiting: PromiseWithResolvers<WorkerMessage> | null = null;
  /** The worker has sent its last message. */
  #ended = false;
  /** The reader has been given a last message (the worker's, or "aborted" at once on abort). */
  #delivered = false;
  readonly finished: Promise<void>;
  #onFinished!: () => void;

  constructor(job: Omit<Job, "shared">) {
    const shared = new SharedArrayBuffer(8);
    this.#flags = new Int32Array(shared);
    this.finished = new Promise((r) => this.#onFinished = r);
    this.#worker = new Worker(new URL("./_http_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WorkerMessage>) => this.#push(e.data);
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#push({ type: "error", message: `The transfer thread failed: ${e.message}` });
    };
    this.#worker.postMessage({ ...job, shared } satisfies Job);
  }

  #push(message: WorkerMessage): void {
    if (this.#ended) return;
    const final = message.type === "end" || message.type === "error" || message.type === "aborted";
    if (final) {
      this.#ended = true;
      this.#worker.terminate();
      this.#onFinished();
    }
    if (this.#delivered) return; // the reader was already told the transfer was aborted
    if (final) this.#delivered = true;
    this.#deliver(message);
  }

  #deliver(message: WorkerMessage): void {
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = null;
      w.resolve(message);
    } else this.#queue.push(message);
  }

  /** The next message. */
  next(): Promise<WorkerMessage> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    if (this.#delivered) return Promise.resolve({ type: "aborted" });
    this.#waiting = Promise.withResolvers();
    return this.#waiting.promise;
  }

  /** Lets the worker send `n` more chunks. */
  credit(n = 1): void {
    Atomics.add(this.#flags, 1, n);
    Atomics.notify(this.#flags, 1);
  }

  /**
   * Asks the worker to stop after its current call, and tells the reader at once. (A blocked
   * WinINet call is not interrupted: Wine does not end it when its handle is closed from another
   * thread, so the worker ends by itself within the timeout and then releases its handles.)
   */
  abort(): void {
    Atomics.store(this.#flags, 0, 1);
    Atomics.notify(this.#flags, 1);
    if (this.#delivered) return;
    this.#delivered = true;
    this.#queue.length = 0;
    this.#deliver({ type: "aborted" });
  }
}

function toError(m: Extract<WorkerMessage, { type: "error" }>): Error {
  if (m.functionName !== undefined && m.code !== undefined) {
    return win32Error(m.functionName, m.code, {
      context: m.context,
      systemMessage: m.systemMessage,
    });
  }
  return m.kind === "RangeError" ? new RangeError(m.message) : new Error(m.message);
}

function parseHeaders(raw: string): { statusText: string; headers: Headers } {
  const lines = raw.split("\r\n");
  // Redirects leave only the final response here; the first line is its status line.
  const statusLine = lines.shift() ?? "";
  const statusText = statusLine.replace(/^HTTP\/\S+\s+\d+\s*/, "");
  const headers = new Headers();
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at <= 0) continue;
    try {
      headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
    } catch {
      // a header Headers refuses (malformed name) is left out rather than failing the transfer
    }
  }
  return { statusText, headers };
}

async function begin(
  method: string,
  url: URL,
  options: TransferOptions,
  extra: { uploadPath?: string; headers?: Record<string, string> },
): Promise<{ transfer: Transfer; info: ResponseInfo; cleanup: () => void }> {
  if (!isWindows()) throw new UnsupportedPlatformError();
  options.signal?.throwIfAborted();
  const headers = Object.entries({ ...extra.headers, ...options.headers });
  const transfer = new Transfer({
    method,
    url: url.href,
    headers,
    timeout: options.timeout ?? 30_000,
    agent: options.userAgent ?? "winipc",
    insecure: options.insecure,
    uploadPath: extra.uploadPath,
  });
  const signal = options.signal;
  const onAbort = () => transfer.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const cleanup = () => signal?.removeEventListener("abort", onAbort);
  try {
    for (;;) {
      const m = await transfer.next();
      if (m.type === "progress") {
        options.onProgress?.({ loaded: m.loaded, total: m.total });
        continue;
      }
      if (m.type === "error") throw toError(m);
      if (m.type === "aborted") throw signal?.reason ?? new Error("The transfer was aborted");
      if (m.type !== "response") throw new Error(`Unexpected message from the transfer thread`);
      const { statusText, headers } = parseHeaders(m.rawHeaders);
      return {
        transfer,
        cleanup,
        info: {
          url: m.url,
          status: m.status,
          statusText,
          headers,
          contentLength: m.contentLength ?? undefined,
        },
      };
    }
  } catch (e) {
    transfer.abort();
    cleanup();
    throw e;
  }
}

function bodyStream(
  transfer: Transfer,
  options: TransferOptions,
  total: number | undefined,
  cleanup: () => void,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let loaded = 0;
  transfer.credit(CREDITS_WINDOW);
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      for (;;) {
        const m = await transfer.next();
        if (m.type === "chunk") {
          loaded += m.data.length;
          transfer.credit();
          controller.enqueue(m.data);
          options.onProgress?.({ loaded, total });
          return;
        }
        if (m.type === "progress") continue;
        cleanup();
        if (m.type === "end") {
          if (total !== undefined && loaded < total) {
            controller.error(
              new Error(`The transfer ended after ${loaded} of ${total} bytes`),
            );
          } else controller.close();
        } else if (m.type === "error") controller.error(toError(m));
        else controller.error(options.signal?.reason ?? new Error("The transfer was aborted"));
        return;
      }
    },
    cancel() {
      transfer.abort();
      cleanup();
    },
  }, { highWaterMark: 0 });
}

// ---------------------------------------------------------------------------------------------
// public API

/**
 * Starts a GET and returns the response once its headers arrived; read `body` for the bytes.
 *
 * @param url An absolute http or https URL.
 * @param options Headers, timeout, signal, progress.
 * @returns Status, headers, final URL, Content-Length and the body stream.
 * @throws {TypeError} For a malformed URL or options.
 * @throws {HttpStatusError} For a status of 400 or more (unless `allowErrorStatus`).
 * @throws {Win32Error} When WinINet fails (`ERROR_INTERNET_CANNOT_CONNECT`,
 *   `ERROR_INTERNET_NAME_NOT_RESOLVED`, `ERROR_INTERNET_TIMEOUT`...).
 *
 * @example Stream a body
 * ```ts
 * import { download } from "./http.ts";
 * const response = await download("http://127.0.0.1:8000/");
 * console.log(response.status, response.headers.get("content-type"));
 * const text = await new Response(response.body).text();
 * ```
 */
export async function download(url: string, options?: DownloadOptions): Promise<HttpDownload> {
  const u = parseArg(urlSchema, url, "url");
  const o = (parseArg(downloadSchema, options, "options") ?? {}) as DownloadOptions;
  const { transfer, info, cleanup } = await begin("GET", u, o, {});
  if (info.status >= 400 && !o.allowErrorStatus) {
    transfer.abort();
    cleanup();
    await transfer.finished;
    throw new HttpStatusError("GET", info);
  }
  return {
    ...info,
    body: bodyStream(transfer, o, info.contentLength, cleanup),
    finished: transfer.finished,
  };
}

/**
 * Downloads a URL into a file. The bytes go to a temporary file beside `path`, renamed to `path`
 * only when the whole body arrived; on any failure or abort the temporary file is removed and
 * `path` is left as it was.
 *
 * @param url An absolute http or https URL.
 * @param path The file to write (replaced if it exists).
 * @param options Headers, timeout, signal, progress.
 * @returns The response and the byte count.
 * @throws {TypeError} For a malformed URL, path or options.
 * @throws {HttpStatusError} For a status of 400 or more.
 * @throws {Win32Error} When WinINet fails.
 *
 * @example Download a file
 * ```ts
 * import { downloadFile } from "./http.ts";
 * const { bytes } = await downloadFile("http://127.0.0.1:8000/a.zip", "a.zip");
 * ```
 */
export async function downloadFile(
  url: string,
  path: string,
  options?: Omit<DownloadOptions, "allowErrorStatus">,
): Promise<DownloadFileResult> {
  parseArg(urlSchema, url, "url");
  const target = parseArg(pathSchema, path, "path");
  const response = await download(url, options);
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  const temp = `${target}.${random}.part`;
  let bytes = 0;
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    await response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          bytes += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    ).pipeTo(file.writable);
    await Deno.rename(temp, target);
  } catch (e) {
    await Deno.remove(temp).catch(() => undefined);
    throw e;
  }
  await response.finished;
  const { body: _body, finished: _finished, ...info } = response;
  return { ...info, path: target, bytes };
}

/**
 * Uploads a file with PUT (default) or POST: `HttpSendRequestExW` with the file's size as the
 * Content-Length, `InternetWriteFile` in 64 KiB pieces, `HttpEndRequestW`.
 *
 * @param url An absolute http or https URL.
 * @param path The file to send (at most 4 GiB - 1, a WinINet limit).
 * @param options Method, content type, headers, timeout, signal, progress.
 * @returns The response, its body as text, and the bytes sent.
 * @throws {TypeError} For a malformed URL, path or options.
 * @throws {Deno.errors.NotFound} When the file does not exist.
 * @throws {HttpStatusError} For a status of 400 or more.
 * @throws {Win32Error} When WinINet fails.
 *
 * @example PUT a file
 * ```ts
 * import { upload } from "./http.ts";
 * const { status } = await upload("http://127.0.0.1:8000/up/a.bin", "a.bin", {
 *   onProgress: ({ loaded, total }) => console.log(`${loaded}/${total}`),
 * });
 * ```
 */
export async function upload(
  url: string,
  path: string,
  options?: UploadOptions,
): Promise<UploadResult> {
  const u = parseArg(urlSchema, url, "url");
  const source = parseArg(pathSchema, path, "path");
  const o = (parseArg(uploadSchema, options, "options") ?? {}) as UploadOptions;
  const stat = await Deno.stat(source).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot upload "${source}": no such file`);
    }
    throw e;
  });
  if (!stat.isFile) throw new TypeError(`Cannot upload "${source}": not a file`);
  const method = o.method ?? "PUT";
  const { transfer, info, cleanup } = await begin(method, u, o, {
    uploadPath: source,
    headers: { "Content-Type": o.contentType ?? "application/octet-stream" },
  });
  const body = await new Response(
    bodyStream(transfer, { ...o, onProgress: undefined }, undefined, cleanup),
  ).text();
  await transfer.finished;
  if (info.status >= 400) throw new HttpStatusError(method, info);
  return { ...info, bytes: stat.size, body };
}
