/**
 * Raw bindings to wininet.dll (HTTP and HTTPS client), and the conversion of a failed WinINet
 * call into a {@linkcode Win32Error} whose text comes from wininet.dll's own message table.
 *
 * WinINet calls in synchronous mode block until the network answers. winipc makes them on a
 * worker thread of its own (a Deno `Worker`, see `mechanisms/http.ts`): there a synchronous call
 * may block, and `GetLastError` is read on the same thread right after the call, as it must be.
 *
 * `HINTERNET` handles are `"pointer"`; strings are `"buffer"` from `wide()`.
 *
 * @module
 */
import { lastError, systemMessage, win32Error } from "./error.ts";
import { kernel32 } from "./kernel32.ts";
import { lazyLibrary } from "./library.ts";
import { fromWide, wide } from "./strings.ts";
import { StructLayout } from "./struct.ts";

const symbols = {
  /** HINTERNET InternetOpenW(LPCWSTR lpszAgent, DWORD dwAccessType, LPCWSTR lpszProxy, LPCWSTR lpszProxyBypass, DWORD dwFlags) */
  InternetOpenW: {
    parameters: ["buffer", "u32", "buffer", "buffer", "u32"],
    result: "pointer",
  },
  /** HINTERNET InternetConnectW(HINTERNET hInternet, LPCWSTR lpszServerName, INTERNET_PORT nServerPort, LPCWSTR lpszUserName, LPCWSTR lpszPassword, DWORD dwService, DWORD dwFlags, DWORD_PTR dwContext) */
  InternetConnectW: {
    parameters: ["pointer", "buffer", "u16", "buffer", "buffer", "u32", "u32", "usize"],
    result: "pointer",
  },
  /** HINTERNET InternetOpenUrlW(HINTERNET hInternet, LPCWSTR lpszUrl, LPCWSTR lpszHeaders, DWORD dwHeadersLength, DWORD dwFlags, DWORD_PTR dwContext) */
  InternetOpenUrlW: {
    parameters: ["pointer", "buffer", "buffer", "u32", "u32", "usize"],
    result: "pointer",
  },
  /** HINTERNET HttpOpenRequestW(HINTERNET hConnect, LPCWSTR lpszVerb, LPCWSTR lpszObjectName, LPCWSTR lpszVersion, LPCWSTR lpszReferrer, LPCWSTR *lplpszAcceptTypes, DWORD dwFlags, DWORD_PTR dwContext) */
  HttpOpenRequestW: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer", "buffer", "u32", "usize"],
    result: "pointer",
  },
  /** BOOL HttpSendRequestW(HINTERNET hRequest, LPCWSTR lpszHeaders, DWORD dwHeadersLength, LPVOID lpOptional, DWORD dwOptionalLength) */
  HttpSendRequestW: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32"],
    result: "i32",
  },
  /** BOOL HttpSendRequestExW(HINTERNET hRequest, LPINTERNET_BUFFERSW lpBuffersIn, LPINTERNET_BUFFERSW lpBuffersOut, DWORD dwFlags, DWORD_PTR dwContext) */
  HttpSendRequestExW: {
    parameters: ["pointer", "buffer", "buffer", "u32", "usize"],
    result: "i32",
  },
  /** BOOL HttpEndRequestW(HINTERNET hRequest, LPINTERNET_BUFFERSW lpBuffersOut, DWORD dwFlags, DWORD_PTR dwContext) */
  HttpEndRequestW: { parameters: ["pointer", "buffer", "u32", "usize"], result: "i32" },
  /** BOOL InternetWriteFile(HINTERNET hFile, LPCVOID lpBuffer, DWORD dwNumberOfBytesToWrite, LPDWORD lpdwNumberOfBytesWritten) */
  InternetWriteFile: { parameters: ["pointer", "buffer", "u32", "buffer"], result: "i32" },
  /** BOOL InternetReadFile(HINTERNET hFile, LPVOID lpBuffer, DWORD dwNumberOfBytesToRead, LPDWORD lpdwNumberOfBytesRead) */
  InternetReadFile: { parameters: ["pointer", "buffer", "u32", "buffer"], result: "i32" },
  /** BOOL HttpQueryInfoW(HINTERNET hRequest, DWORD dwInfoLevel, LPVOID lpBuffer, LPDWORD lpdwBufferLength, LPDWORD lpdwIndex) */
  HttpQueryInfoW: {
    parameters: ["pointer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL InternetQueryOptionW(HINTERNET hInternet, DWORD dwOption, LPVOID lpBuffer, LPDWORD lpdwBufferLength) */
  InternetQueryOptionW: {
    parameters: ["pointer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL InternetSetOptionW(HINTERNET hInternet, DWORD dwOption, LPVOID lpBuffer, DWORD dwBufferLength) */
  InternetSetOptionW: { parameters: ["pointer", "u32", "buffer", "u32"], result: "i32" },
  /** BOOL InternetCloseHandle(HINTERNET hInternet) */
  InternetCloseHandle: { parameters: ["pointer"], result: "i32" },
  /** BOOL InternetGetLastResponseInfoW(LPDWORD lpdwError, LPWSTR lpszBuffer, LPDWORD lpdwBufferLength) */
  InternetGetLastResponseInfoW: {
    parameters: ["buffer", "buffer", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The wininet.dll symbols, opened on first use. Calls block: make them on a thread that may block.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Open a session
 * ```ts
 * import { INTERNET_OPEN_TYPE_PRECONFIG, wininet } from "./wininet.ts";
 * import { wide } from "./strings.ts";
 * if (Deno.build.os === "windows") {
 *   const h = wininet().InternetOpenW(wide("demo"), INTERNET_OPEN_TYPE_PRECONFIG, null, null, 0);
 *   wininet().InternetCloseHandle(h);
 * }
 * ```
 */
export const wininet: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "wininet.dll",
  symbols,
);

/** `INTERNET_BUFFERSW` (56 bytes on x64). */
export const INTERNET_BUFFERSW: StructLayout<{
  dwStructSize: "u32";
  Next: "pointer";
  lpcszHeader: "pointer";
  dwHeadersLength: "u32";
  dwHeadersTotal: "u32";
  lpvBuffer: "pointer";
  dwBufferLength: "u32";
  dwBufferTotal: "u32";
  dwOffsetLow: "u32";
  dwOffsetHigh: "u32";
}> = new StructLayout(
  {
    dwStructSize: "u32",
    Next: "pointer",
    lpcszHeader: "pointer",
    dwHeadersLength: "u32",
    dwHeadersTotal: "u32",
    lpvBuffer: "pointer",
    dwBufferLength: "u32",
    dwBufferTotal: "u32",
    dwOffsetLow: "u32",
    dwOffsetHigh: "u32",
  } as const,
);

/**
 * The text for a WinINet error: wininet.dll's message table first, then the system's. For
 * `ERROR_INTERNET_EXTENDED_ERROR` the server's last response text is added.
 *
 * @param code The error code.
 * @returns The text (may be empty).
 */
export function internetMessage(code: number): string {
  let text = "";
  if (code >= 12000 && code <= 12999) {
    const module = kernel32().GetModuleHandleW(wide("wininet.dll"));
    text = systemMessage(code, module);
  } else {
    text = systemMessage(code);
  }
  if (code === ERROR_INTERNET_EXTENDED_ERROR) {
    const err = new Uint32Array(1);
    const buf = new Uint16Array(1024);
    const len = new Uint32Array([buf.length]);
    if (wininet().InternetGetLastResponseInfoW(err, buf, len)) {
      const extra = fromWide(buf, len[0]).trim();
      if (extra) text = text ? `${text}: ${extra}` : extra;
    }
  }
  return text;
}

/**
 * Throws the last error (with WinINet's text) when a `BOOL` result is 0. Synchronous calls only.
 *
 * @param result The call's result.
 * @param functionName The function's name.
 * @param context What was being done.
 * @throws {Win32Error} When `result` is 0.
 */
export function checkInternet(result: number, functionName: string, context: string): void {
  if (!result) {
    const code = lastError();
    throw win32Error(functionName, code, { context, systemMessage: internetMessage(code) });
  }
}

/**
 * Returns the handle, or throws the last error (with WinINet's text) when it is NULL.
 *
 * @param handle The call's result.
 * @param functionName The function's name.
 * @param context What was being done.
 * @returns The handle.
 * @throws {Win32Error} When the handle is NULL.
 */
export function checkInternetHandle(
  handle: Deno.PointerValue,
  functionName: string,
  context: string,
): Deno.PointerObject {
  if (handle === null) {
    const code = lastError();
    throw win32Error(functionName, code, { context, systemMessage: internetMessage(code) });
  }
  return handle;
}

// ---- constants ----
/** `InternetOpenW`: use the system's proxy settings. */
export const INTERNET_OPEN_TYPE_PRECONFIG = 0;
/** `InternetOpenW`: connect directly, no proxy. */
export const INTERNET_OPEN_TYPE_DIRECT = 1;
/** `InternetConnectW` service: HTTP (and HTTPS). */
export const INTERNET_SERVICE_HTTP = 3;
/** Request flag: fetch from the server, not the cache. */
export const INTERNET_FLAG_RELOAD = 0x8000_0000;
/** Request flag: do not add the response to the cache. */
export const INTERNET_FLAG_NO_CACHE_WRITE = 0x0400_0000;
/** Request flag: use TLS (HTTPS). */
export const INTERNET_FLAG_SECURE = 0x0080_0000;
/** Request flag: keep the connection alive. */
export const INTERNET_FLAG_KEEP_CONNECTION = 0x0040_0000;
/** Request flag: do not follow redirects. */
export const INTERNET_FLAG_NO_AUTO_REDIRECT = 0x0020_0000;
/** Request flag: no UI. */
export const INTERNET_FLAG_NO_UI = 0x0000_0200;
/** Request flag: no cookies. */
export const INTERNET_FLAG_NO_COOKIES = 0x0008_0000;
/** Option: connect timeout (ms). */
export const INTERNET_OPTION_CONNECT_TIMEOUT = 2;
/** Option: send timeout (ms). */
export const INTERNET_OPTION_SEND_TIMEOUT = 5;
/** Option: receive timeout (ms). */
export const INTERNET_OPTION_RECEIVE_TIMEOUT = 6;
/** Option: the request's URL (after redirects). */
export const INTERNET_OPTION_URL = 34;
/** Option: a request's security flags (`SECURITY_FLAG_*`). */
export const INTERNET_OPTION_SECURITY_FLAGS = 31;
/** Security flag: accept a certificate from an unknown authority. */
export const SECURITY_FLAG_IGNORE_UNKNOWN_CA = 0x0000_0100;
/** Security flag: accept a certificate for another name. */
export const SECURITY_FLAG_IGNORE_CERT_CN_INVALID = 0x0000_1000;
/** Security flag: accept an expired or not yet valid certificate. */
export const SECURITY_FLAG_IGNORE_CERT_DATE_INVALID = 0x0000_2000;
/** Security flag: do not check revocation. */
export const SECURITY_FLAG_IGNORE_REVOCATION = 0x0000_0080;
/** Query: the status code. */
export const HTTP_QUERY_STATUS_CODE = 19;
/** Query: the status text. */
export const HTTP_QUERY_STATUS_TEXT = 20;
/** Query: Content-Length. */
export const HTTP_QUERY_CONTENT_LENGTH = 5;
/** Query: every response header, CRLF separated. */
export const HTTP_QUERY_RAW_HEADERS_CRLF = 22;
/** Query modifier: return a DWORD. */
export const HTTP_QUERY_FLAG_NUMBER = 0x2000_0000;
/** `HttpQueryInfoW`: the header is absent. */
export const ERROR_HTTP_HEADER_NOT_FOUND = 12150;
/** The server's response text explains the error (`InternetGetLastResponseInfoW`). */
export const ERROR_INTERNET_EXTENDED_ERROR = 12003;
/** `ERROR_INSUFFICIENT_BUFFER`. */
export const ERROR_INSUFFICIENT_BUFFER = 122;
