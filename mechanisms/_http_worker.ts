/**
 * The thread that makes WinINet's blocking calls for `mechanisms/http.ts`.
 *
 * WinINet in synchronous mode blocks until the network answers, and a failed call's reason is in
 * `GetLastError` of the thread that made it. So each transfer runs here, in a Deno Worker (its own
 * OS thread, which may block): every call is synchronous, and `GetLastError` is read right after
 * the failing call on this same thread. The main thread's event loop never waits on WinINet.
 *
 * The main thread talks to this one through messages (out) and a SharedArrayBuffer (in):
 * `shared[0]` is the abort flag, `shared[1]` the number of chunks the main thread can still take
 * (flow control). Both are checked between calls, so an abort takes effect after the current
 * read or write (each bounded by the receive/send timeout).
 *
 * @module
 */
import { Win32Error, win32Error } from "../ffi/error.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import {
  checkInternet,
  checkInternetHandle,
  ERROR_HTTP_HEADER_NOT_FOUND,
  ERROR_INSUFFICIENT_BUFFER,
  HTTP_QUERY_CONTENT_LENGTH,
  HTTP_QUERY_FLAG_NUMBER,
  HTTP_QUERY_RAW_HEADERS_CRLF,
  HTTP_QUERY_STATUS_CODE,
  INTERNET_BUFFERSW,
  INTERNET_FLAG_KEEP_CONNECTION,
  INTERNET_FLAG_NO_CACHE_WRITE,
  INTERNET_FLAG_NO_COOKIES,
  INTERNET_FLAG_NO_UI,
  INTERNET_FLAG_RELOAD,
  INTERNET_FLAG_SECURE,
  INTERNET_OPEN_TYPE_PRECONFIG,
  INTERNET_OPTION_CONNECT_TIMEOUT,
  INTERNET_OPTION_RECEIVE_TIMEOUT,
  INTERNET_OPTION_SECURITY_FLAGS,
  INTERNET_OPTION_SEND_TIMEOUT,
  INTERNET_OPTION_URL,
  INTERNET_SERVICE_HTTP,
  SECURITY_FLAG_IGNORE_CERT_CN_INVALID,
  SECURITY_FLAG_IGNORE_CERT_DATE_INVALID,
  SECURITY_FLAG_IGNORE_REVOCATION,
  SECURITY_FLAG_IGNORE_UNKNOWN_CA,
  wininet,
} from "../ffi/wininet.ts";
import { kernel32 } from "../ffi/kernel32.ts";

/** A transfer to run. */
export interface Job {
  method: string;
  url: string;
  headers: [string, string][];
  timeout: number;
  agent: string;
  /** Accept any server certificate (unknown CA, wrong name, expired). */
  insecure?: boolean;
  /** For PUT/POST: the file to send. */
  uploadPath?: string;
  shared: SharedArrayBuffer;
}

/** What the worker reports. */
export type WorkerMessage =
  | {
    type: "response";
    status: number;
    rawHeaders: string;
    url: string;
    contentLength: number | null;
  }
  | { type: "progress"; loaded: number; total: number }
  | { type: "chunk"; data: Uint8Array<ArrayBuffer> }
  | { type: "end" }
  | { type: "aborted" }
  | {
    type: "error";
    message: string;
    functionName?: string;
    code?: number;
    context?: string;
    systemMessage?: string;
    kind?: string;
  };

const ABORT = 0;
const CREDITS = 1;
const CHUNK = 64 * 1024;

class Aborted extends Error {}

/** This Worker's global scope (typed here, so that no `deno.worker` lib directive is needed). */
const scope = self as unknown as {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: MessageEvent<Job>) => void) | null;
  close(): void;
};

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

function run(job: Job): void {
  const lib = wininet();
  const flags = new Int32Array(job.shared);
  const checkAbort = () => {
    if (Atomics.load(flags, ABORT) !== 0) throw new Aborted();
  };
  const url = new URL(job.url);
  const context = `Cannot ${job.method} ${job.url}`;
  const handles: Deno.PointerObject[] = [];
  try {
    const session = checkInternetHandle(
      lib.InternetOpenW(wide(job.agent), INTERNET_OPEN_TYPE_PRECONFIG, null, null, 0),
      "InternetOpenW",
      context,
    );
    handles.push(session);
    const ms = new Uint32Array([job.timeout]);
    for (
      const option of [
        INTERNET_OPTION_CONNECT_TIMEOUT,
        INTERNET_OPTION_SEND_TIMEOUT,
        INTERNET_OPTION_RECEIVE_TIMEOUT,
      ]
    ) {
      checkInternet(lib.InternetSetOptionW(session, option, ms, 4), "InternetSetOptionW", context);
    }
    const secure = url.protocol === "https:";
    const port = url.port ? Number(url.port) : secure ? 443 : 80;
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const connection = checkInternetHandle(
      lib.InternetConnectW(session, wide(host), port, null, null, INTERNET_SERVICE_HTTP, 0, 0n),
      "InternetConnectW",
      context,
    );
    handles.push(connection);
    const requestFlags = INTERNET_FLAG_RELOAD | INTERNET_FLAG_NO_CACHE_WRITE |
      INTERNET_FLAG_KEEP_CONNECTION | INTERNET_FLAG_NO_UI | INTERNET_FLAG_NO_COOKIES |
      (secure ? INTERNET_FLAG_SECURE : 0);
    const request = checkInternetHandle(
      lib.HttpOpenRequestW(
        connection,
        wide(job.method),
        wide(`${url.pathname}${url.search}` || "/"),
        null,
        null,
        null,
        requestFlags >>> 0,
        0n,
      ),
      "HttpOpenRequestW",
      context,
    );
    handles.push(request);
    if (secure && job.insecure) {
      const flags = new Uint32Array(1);
      const len = new Uint32Array([4]);
      checkInternet(
        lib.InternetQueryOptionW(request, INTERNET_OPTION_SECURITY_FLAGS, flags, len),
        "InternetQueryOptionW",
        context,
      );
      flags[0] |= SECURITY_FLAG_IGNORE_UNKNOWN_CA | SECURITY_FLAG_IGNORE_CERT_CN_INVALID |
        SECURITY_FLAG_IGNORE_CERT_DATE_INVALID | SECURITY_FLAG_IGNORE_REVOCATION;
      checkInternet(
        lib.InternetSetOptionW(request, INTERNET_OPTION_SECURITY_FLAGS, flags, 4),
        "InternetSetOptionW",
        context,
      );
    }
    const headerText = job.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
    checkAbort();
    if (job.uploadPath === undefined) {
      const h = headerText ? wide(headerText) : null;
      checkInternet(
        lib.HttpSendRequestW(request, h, headerText.length, null, 0),
        "HttpSendRequestW",
        context,
      );
    } else {
      sendFile(request, job.uploadPath, headerText, context, checkAbort);
    }
    const status = queryNumber(request, HTTP_QUERY_STATUS_CODE, context);
    const rawHeaders = queryString(request, HTTP_QUERY_RAW_HEADERS_CRLF, context) ?? "";
    const length = queryString(request, HTTP_QUERY_CONTENT_LENGTH, context);
    post({
      type: "response",
      status,
      rawHeaders,
      url: queryUrl(request) ?? job.url,
      contentLength: length !== null && /^\d+$/.test(length.trim()) ? Number(length) : null,
    });
    const read = new Uint32Array(1);
    for (;;) {
      for (let c; (c = Atomics.load(flags, CREDITS)) <= 0;) {
        checkAbort();
        Atomics.wait(flags, CREDITS, c, 250);
      }
      checkAbort();
      const buf = new Uint8Array(CHUNK);
      checkInternet(
        lib.InternetReadFile(request, buf, buf.length, read),
        "InternetReadFile",
        `${context}: the transfer broke off`,
      );
      if (read[0] === 0) break;
      Atomics.sub(flags, CREDITS, 1);
      const data = read[0] === CHUNK ? buf : buf.slice(0, read[0]);
      post({ type: "chunk", data }, [data.buffer]);
    }
    post({ type: "end" });
  } catch (e) {
    if (e instanceof Aborted || Atomics.load(flags, ABORT) !== 0) post({ type: "aborted" });
    else if (e instanceof Win32Error) {
      const marker = `: ${e.functionName} failed`;
      const at = e.message.indexOf(marker);
      post({
        type: "error",
        message: e.message,
        functionName: e.functionName,
        code: e.code,
        context: at > 0 ? e.message.slice(0, at) : undefined,
        systemMessage: e.systemMessage,
      });
    } else {
      post({
        type: "error",
        message: e instanceof Error ? e.message : String(e),
        kind: e instanceof Error ? e.name : undefined,
      });
    }
  } finally {
    for (const h of handles.reverse()) lib.InternetCloseHandle(h);
  }
}

/** Sends the request with a body read from a file: HttpSendRequestExW, InternetWriteFile, HttpEndRequestW. */
function sendFile(
  request: Deno.PointerObject,
  path: string,
  headerText: string,
  context: string,
  checkAbort: () => void,
): void {
  const lib = wininet();
  using file = Deno.openSync(path, { read: true });
  const size = file.statSync().size;
  if (size > 0xffff_ffff) {
    throw new RangeError(
      `${context}: "${path}" is ${size} bytes; WinINet uploads at most 4 GiB - 1`,
    );
  }
  const headers = wide(headerText);
  const buffers = INTERNET_BUFFERSW.alloc({
    dwStructSize: INTERNET_BUFFERSW.size,
    lpcszHeader: headerText ? Deno.UnsafePointer.of(headers) : null,
    dwHeadersLength: headerText.length,
    dwHeadersTotal: headerText.length,
    dwBufferTotal: size,
  });
  checkInternet(
    lib.HttpSendRequestExW(request, buffers, null, 0, 0n),
    "HttpSendRequestExW",
    context,
  );
  const buf = new Uint8Array(CHUNK);
  const written = new Uint32Array(1);
  let sent = 0;
  post({ type: "progress", loaded: 0, total: size });
  for (;;) {
    checkAbort();
    const n = file.readSync(buf);
    if (n === null || n === 0) break;
    let off = 0;
    while (off < n) {
      checkInternet(
        lib.InternetWriteFile(request, buf.subarray(off, n), n - off, written),
        "InternetWriteFile",
        `${context}: the upload broke off`,
      );
      if (written[0] === 0) throw new Error(`${context}: the server took no more bytes`);
      off += written[0];
    }
    sent += n;
    post({ type: "progress", loaded: sent, total: size });
  }
  checkInternet(lib.HttpEndRequestW(request, null, 0, 0n), "HttpEndRequestW", context);
}

function queryNumber(request: Deno.PointerObject, level: number, context: string): number {
  const value = new Uint32Array(1);
  const len = new Uint32Array([4]);
  checkInternet(
    wininet().HttpQueryInfoW(request, (level | HTTP_QUERY_FLAG_NUMBER) >>> 0, value, len, null),
    "HttpQueryInfoW",
    context,
  );
  return value[0];
}

function queryString(request: Deno.PointerObject, level: number, context: string): string | null {
  let buf = new Uint16Array(4096);
  for (let attempt = 0; attempt < 3; attempt++) {
    const len = new Uint32Array([buf.byteLength]);
    if (wininet().HttpQueryInfoW(request, level, buf, len, null)) {
      return fromWide(buf, len[0] / 2);
    }
    const code = kernel32().GetLastError();
    if (code === ERROR_HTTP_HEADER_NOT_FOUND) return null;
    if (code !== ERROR_INSUFFICIENT_BUFFER) {
      throw win32Error("HttpQueryInfoW", code, { context });
    }
    buf = new Uint16Array(Math.ceil(len[0] / 2) + 1);
  }
  return null;
}

function queryUrl(request: Deno.PointerObject): string | null {
  const buf = new Uint16Array(8192);
  const len = new Uint32Array([buf.byteLength]);
  if (!wininet().InternetQueryOptionW(request, INTERNET_OPTION_URL, buf, len)) return null;
  return fromWide(buf);
}

scope.onmessage = (event: MessageEvent<Job>) => {
  try {
    run(event.data);
  } finally {
    scope.close();
  }
};
