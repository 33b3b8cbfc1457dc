/**
 * `Win32Error`, and the single place where a failed Win32 result becomes an error.
 *
 * Nothing outside this module constructs a `Win32Error` (`tests/convention_test.ts` fails on a
 * `new Win32Error(` anywhere else). A call site picks the helper for what the call returns:
 *
 * | the call returns                                         | helper                         |
 * | -------------------------------------------------------- | ------------------------------ |
 * | a `BOOL`                                                 | {@linkcode checkBool}          |
 * | a handle (NULL or `INVALID_HANDLE_VALUE` on failure)     | {@linkcode checkHandle}        |
 * | a pointer or window handle (NULL on failure)             | {@linkcode checkPointer}       |
 * | a number that is 0 on failure (an atom, an id, a length) | {@linkcode checkNonZero}       |
 * | its Win32 error code (registry, Winsock start, RPC)      | {@linkcode checkCode}          |
 * | an `NTSTATUS`                                            | {@linkcode checkNtStatus}      |
 * | anything else, with the code known already               | {@linkcode win32Error}         |
 * | an `NTSTATUS` known already                              | {@linkcode ntStatusError}      |
 *
 * The last two only make the error: the site decides when to throw it, and they are how a code
 * read with {@linkcode withLastError}, taken from an I/O result, or chosen by winipc (a refusal it
 * makes itself, in the system's terms) becomes an error.
 *
 * The arguments after a call's result are evaluated before a `check*` reads `GetLastError`, so a
 * context given to one of the last-error checks is a literal or a value computed before the call:
 * a template string or a method call there would run JavaScript (and allocate) in between. Where
 * the context has to be built, test the result and read `lastError()` first, as the first
 * argument evaluated after the name: `if (!ok) throw win32Error("F", lastError(), { context })`.
 *
 * `GetLastError` must be read synchronously, right after the call that failed, on the same
 * thread. The `check*` helpers here do exactly that; call them on the result of a synchronous
 * FFI call and nothing else. A `nonblocking` call runs on a worker thread whose last error is not
 * ours: take its status from its own result instead.
 *
 * Even on the same thread the last error is not safe for long. The runtime shares the thread: a
 * garbage collection, an interrupt V8 handles when a JavaScript function is entered, or a turn of
 * the event loop can make system calls of its own that overwrite it. Measured with deno.exe 2.9.6
 * under Wine 10 (`SetLastError(7)`, then JavaScript only, then `GetLastError`): after allocating
 * 300,000 objects it read 487 (`ERROR_INVALID_ADDRESS`, from the collector's memory calls), after
 * an `await` of a timer 258 (`WAIT_TIMEOUT`, from the event loop's wait), and the runtime was seen
 * calling `VerifyVersionInfoW` on the main thread, whose failure leaves 1150
 * (`ERROR_OLD_WIN_VERSION`), the code that once made the I/O core misread a normal outcome. So:
 * read it in the same expression or statement as the failing call when a wrong code would do harm
 * (bind `kernel32().GetLastError` beforehand; calling it enters no JavaScript function), or use
 * the native call that returns its status (`ffi/ntdll.ts`). These helpers are fine where a wrong
 * code only makes an error message less exact.
 *
 * @module
 */
import { WinipcError } from "./base_error.ts";

export { WinipcError };
import { kernel32 } from "./kernel32.ts";
import { ntdll } from "./ntdll.ts";
import { fromWide } from "./strings.ts";

/** Symbolic names of the Win32 error codes winipc meets, by code. */
export const ERROR_NAMES: Readonly<Record<number, string>> = {
  0: "ERROR_SUCCESS",
  1: "ERROR_INVALID_FUNCTION",
  2: "ERROR_FILE_NOT_FOUND",
  3: "ERROR_PATH_NOT_FOUND",
  4: "ERROR_TOO_MANY_OPEN_FILES",
  5: "ERROR_ACCESS_DENIED",
  6: "ERROR_INVALID_HANDLE",
  8: "ERROR_NOT_ENOUGH_MEMORY",
  14: "ERROR_OUTOFMEMORY",
  21: "ERROR_NOT_READY",
  31: "ERROR_GEN_FAILURE",
  32: "ERROR_SHARING_VIOLATION",
  33: "ERROR_LOCK_VIOLATION",
  38: "ERROR_HANDLE_EOF",
  50: "ERROR_NOT_SUPPORTED",
  53: "ERROR_BAD_NETPATH",
  64: "ERROR_NETNAME_DELETED",
  80: "ERROR_FILE_EXISTS",
  87: "ERROR_INVALID_PARAMETER",
  109: "ERROR_BROKEN_PIPE",
  111: "ERROR_BUFFER_OVERFLOW",
  112: "ERROR_DISK_FULL",
  120: "ERROR_CALL_NOT_IMPLEMENTED",
  121: "ERROR_SEM_TIMEOUT",
  122: "ERROR_INSUFFICIENT_BUFFER",
  123: "ERROR_INVALID_NAME",
  126: "ERROR_MOD_NOT_FOUND",
  127: "ERROR_PROC_NOT_FOUND",
  161: "ERROR_BAD_PATHNAME",
  170: "ERROR_BUSY",
  183: "ERROR_ALREADY_EXISTS",
  206: "ERROR_FILENAME_EXCED_RANGE",
  230: "ERROR_BAD_PIPE",
  231: "ERROR_PIPE_BUSY",
  232: "ERROR_NO_DATA",
  233: "ERROR_PIPE_NOT_CONNECTED",
  234: "ERROR_MORE_DATA",
  258: "WAIT_TIMEOUT",
  259: "ERROR_NO_MORE_ITEMS",
  288: "ERROR_NOT_OWNER",
  298: "ERROR_TOO_MANY_POSTS",
  487: "ERROR_INVALID_ADDRESS",
  535: "ERROR_PIPE_CONNECTED",
  536: "ERROR_PIPE_LISTENING",
  995: "ERROR_OPERATION_ABORTED",
  996: "ERROR_IO_INCOMPLETE",
  997: "ERROR_IO_PENDING",
  1004: "ERROR_INVALID_FLAGS",
  1167: "ERROR_DEVICE_NOT_CONNECTED",
  1168: "ERROR_NOT_FOUND",
  1223: "ERROR_CANCELLED",
  1235: "ERROR_REQUEST_ABORTED",
  1305: "ERROR_UNKNOWN_REVISION",
  1336: "ERROR_INVALID_ACL",
  1337: "ERROR_INVALID_SID",
  1338: "ERROR_INVALID_SECURITY_DESCR",
  1400: "ERROR_INVALID_WINDOW_HANDLE",
  1401: "ERROR_INVALID_MENU_HANDLE",
  1407: "ERROR_CANNOT_FIND_WND_CLASS",
  1410: "ERROR_CLASS_ALREADY_EXISTS",
  1411: "ERROR_CLASS_DOES_NOT_EXIST",
  1418: "ERROR_CLIPBOARD_NOT_OPEN",
  1460: "ERROR_TIMEOUT",
  1702: "RPC_S_INVALID_BINDING",
  1714: "RPC_S_NOT_LISTENING",
  1716: "RPC_S_UNKNOWN_IF",
  1722: "RPC_S_SERVER_UNAVAILABLE",
  1740: "RPC_S_DUPLICATE_ENDPOINT",
  1745: "RPC_S_PROCNUM_OUT_OF_RANGE",
  1726: "RPC_S_CALL_FAILED",
  1727: "RPC_S_CALL_FAILED_DNE",
  1737: "RPC_S_SERVER_TOO_BUSY",
  10004: "WSAEINTR",
  10009: "WSAEBADF",
  10013: "WSAEACCES",
  10014: "WSAEFAULT",
  10022: "WSAEINVAL",
  10024: "WSAEMFILE",
  10035: "WSAEWOULDBLOCK",
  10036: "WSAEINPROGRESS",
  10037: "WSAEALREADY",
  10038: "WSAENOTSOCK",
  10039: "WSAEDESTADDRREQ",
  10040: "WSAEMSGSIZE",
  10041: "WSAEPROTOTYPE",
  10042: "WSAENOPROTOOPT",
  10043: "WSAEPROTONOSUPPORT",
  10044: "WSAESOCKTNOSUPPORT",
  10045: "WSAEOPNOTSUPP",
  10046: "WSAEPFNOSUPPORT",
  10047: "WSAEAFNOSUPPORT",
  10048: "WSAEADDRINUSE",
  10049: "WSAEADDRNOTAVAIL",
  10050: "WSAENETDOWN",
  10051: "WSAENETUNREACH",
  10052: "WSAENETRESET",
  10053: "WSAECONNABORTED",
  10054: "WSAECONNRESET",
  10055: "WSAENOBUFS",
  10056: "WSAEISCONN",
  10057: "WSAENOTCONN",
  10058: "WSAESHUTDOWN",
  10059: "WSAETOOMANYREFS",
  10060: "WSAETIMEDOUT",
  10061: "WSAECONNREFUSED",
  10062: "WSAELOOP",
  10063: "WSAENAMETOOLONG",
  10064: "WSAEHOSTDOWN",
  10065: "WSAEHOSTUNREACH",
  10091: "WSASYSNOTREADY",
  10092: "WSAVERNOTSUPPORTED",
  10093: "WSANOTINITIALISED",
  10101: "WSAEDISCON",
  10109: "WSATYPE_NOT_FOUND",
  11001: "WSAHOST_NOT_FOUND",
  11002: "WSATRY_AGAIN",
  11003: "WSANO_RECOVERY",
  11004: "WSANO_DATA",
  12001: "ERROR_INTERNET_OUT_OF_HANDLES",
  12002: "ERROR_INTERNET_TIMEOUT",
  12003: "ERROR_INTERNET_EXTENDED_ERROR",
  12004: "ERROR_INTERNET_INTERNAL_ERROR",
  12005: "ERROR_INTERNET_INVALID_URL",
  12006: "ERROR_INTERNET_UNRECOGNIZED_SCHEME",
  12007: "ERROR_INTERNET_NAME_NOT_RESOLVED",
  12009: "ERROR_INTERNET_INVALID_OPTION",
  12017: "ERROR_INTERNET_OPERATION_CANCELLED",
  12018: "ERROR_INTERNET_INCORRECT_HANDLE_TYPE",
  12019: "ERROR_INTERNET_INCORRECT_HANDLE_STATE",
  12029: "ERROR_INTERNET_CANNOT_CONNECT",
  12030: "ERROR_INTERNET_CONNECTION_ABORTED",
  12031: "ERROR_INTERNET_CONNECTION_RESET",
  12037: "ERROR_INTERNET_SEC_CERT_DATE_INVALID",
  12038: "ERROR_INTERNET_SEC_CERT_CN_INVALID",
  12044: "ERROR_INTERNET_CLIENT_AUTH_CERT_NEEDED",
  12045: "ERROR_INTERNET_INVALID_CA",
  12150: "ERROR_HTTP_HEADER_NOT_FOUND",
  12152: "ERROR_HTTP_INVALID_SERVER_RESPONSE",
  12153: "ERROR_HTTP_INVALID_HEADER",
  12156: "ERROR_HTTP_REDIRECT_FAILED",
  12157: "ERROR_INTERNET_SECURITY_CHANNEL_ERROR",
};

/**
 * The symbolic name of a Win32 error code.
 *
 * @param code The code.
 * @returns Its name (`ERROR_FILE_NOT_FOUND`), or `ERROR_<code>` for a code not in the table.
 *
 * @example Name an error code
 * ```ts
 * import { errorName } from "./error.ts";
 * errorName(2); // "ERROR_FILE_NOT_FOUND"
 * ```
 */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `ERROR_${code}`;
}

const FORMAT_MESSAGE_IGNORE_INSERTS = 0x0000_0200;
const FORMAT_MESSAGE_FROM_HMODULE = 0x0000_0800;
const FORMAT_MESSAGE_FROM_SYSTEM = 0x0000_1000;

/**
 * The system's text for an error code (`FormatMessageW`), without a trailing period or newline.
 *
 * @param code The code.
 * @param module A module handle whose message table to search too (e.g. wininet.dll's).
 * @returns The text, or `""` when the system has none (or this is not Windows).
 *
 * @example The system's message for a code
 * ```ts
 * import { systemMessage } from "./error.ts";
 * if (Deno.build.os === "windows") systemMessage(5); // "Access denied" (wording varies)
 * ```
 */
export function systemMessage(code: number, module: Deno.PointerValue = null): string {
  if (Deno.build.os !== "windows") return "";
  const buffer = new Uint16Array(1024);
  const flags = FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS |
    (module ? FORMAT_MESSAGE_FROM_HMODULE : 0);
  const n = kernel32().FormatMessageW(flags, module, code, 0, buffer, buffer.length, null);
  return fromWide(buffer, n).trim().replace(/\.$/, "");
}

/** The options of a {@linkcode Win32Error}. */
export interface Win32ErrorOptions {
  /** What winipc was doing, e.g. `Cannot open file mapping "x"`; the message starts with it. */
  context?: string;
  /** The system text; looked up with `FormatMessageW` when not given. */
  systemMessage?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A Win32 call failed. Carries the function's name, the numeric code, its symbolic name and the
 * system's text for it.
 *
 * @example Catch a missing object
 * ```ts
 * import { Win32Error } from "./error.ts";
 * try {
 *   // ... a winipc call
 * } catch (e) {
 *   if (e instanceof Win32Error && e.codeName === "ERROR_FILE_NOT_FOUND") {
 *     // not there yet
 *   }
 * }
 * ```
 */
export class Win32Error extends WinipcError {
  /** The Win32 function that failed, e.g. `OpenFileMappingW`. */
  readonly functionName: string;
  /** The error code (`GetLastError`, `WSAGetLastError`, ...). */
  declare readonly code: number;
  /** The system's text for the code (may be empty). */
  readonly systemMessage: string;

  /**
   * Makes the error, looking up the system text when none is given.
   *
   * @param functionName The Win32 function that failed.
   * @param code The error code.
   * @param options Context and system text.
   */
  constructor(functionName: string, code: number, options: Win32ErrorOptions = {}) {
    const text = options.systemMessage ?? systemMessage(code);
    const head = options.context ? `${options.context}: ` : "";
    super(
      `${head}${functionName} failed with ${errorName(code)} (${code})${text ? `: ${text}` : ""}`,
      code,
      errorName(code),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "Win32Error";
    this.functionName = functionName;
    this.systemMessage = text;
  }
}

/**
 * Makes the error for a failure whose code is known already: read with
 * {@linkcode withLastError} or {@linkcode lastError}, taken from an I/O result or a returned
 * status, or chosen by winipc to report a refusal in the system's terms
 * (`ERROR_ALREADY_EXISTS` for an object that must be new). It reads nothing itself, so it may be
 * called any time after the code was taken.
 *
 * @param functionName The Win32 function that failed (or whose failure winipc reports).
 * @param code The Win32 error code.
 * @param options What winipc was doing (`context`, the message's start), the system text when
 * it is not `FormatMessageW`'s (WinINet's, or one carried from a worker), and the cause.
 * @returns The error, to throw or to hand on.
 *
 * @example Report an object that exists already
 * ```ts
 * import { win32Error } from "./error.ts";
 * const e = win32Error("CreateMutexW", 183, { context: 'Cannot create mutex "m"' });
 * console.log(e.message.startsWith('Cannot create mutex "m": CreateMutexW failed')); // true
 * ```
 */
export function win32Error(
  functionName: string,
  code: number,
  options: Win32ErrorOptions = {},
): Win32Error {
  return new Win32Error(functionName, code, options);
}

/**
 * Makes the error for an `NTSTATUS` known already, with the Win32 code the system maps it to
 * (`RtlNtStatusToDosError`), so it reads like every other winipc error.
 *
 * @param functionName The function that failed (the native one, or the Win32 call it stands for).
 * @param status The `NTSTATUS`.
 * @param options What winipc was doing, and the cause.
 * @returns The error, to throw or to hand on.
 *
 * @example An NTSTATUS as a Win32 error
 * ```ts
 * import { ntStatusError } from "./error.ts";
 * if (Deno.build.os === "windows") {
 *   // STATUS_PIPE_BROKEN
 *   console.log(ntStatusError("NtReadFile", 0xc000014b).codeName); // "ERROR_BROKEN_PIPE"
 * }
 * ```
 */
export function ntStatusError(
  functionName: string,
  status: number,
  options: Win32ErrorOptions = {},
): Win32Error {
  return new Win32Error(functionName, ntdll().RtlNtStatusToDosError(status), options);
}

/**
 * Makes a synchronous call and reads `GetLastError` straight after it, with no JavaScript function
 * entered in between (see the module doc for why that matters). Use it where the code decides
 * what happens next (`ERROR_ALREADY_EXISTS` after a create, `ERROR_PIPE_BUSY`, ...), not only
 * what an error message says. A call that returns a pointer still allocates its result object
 * before the read, so a collection there can overwrite the code; that is rare, and only the
 * native calls that return their status avoid it.
 *
 * @param call The synchronous FFI call, e.g. `() => k.CreateMutexW(null, 0, name)`.
 * @returns The call's result and the last error read after it (meaningful where the function
 * documents it: on failure, or `ERROR_ALREADY_EXISTS` after a successful create).
 *
 * @example Tell a created object from an opened one
 * ```ts
 * import { withLastError } from "./error.ts";
 * import { kernel32 } from "./kernel32.ts";
 * if (Deno.build.os === "windows") {
 *   const [handle, code] = withLastError(() => kernel32().CreateEventW(null, 1, 0, null));
 *   console.log(handle !== null, code);
 * }
 * ```
 */
export function withLastError<T>(call: () => T): [T, number] {
  const getLastError = kernel32().GetLastError;
  const result = call();
  return [result, getLastError()];
}

/**
 * Reads `GetLastError` now. Call it right after the failing synchronous call, where a wrong code
 * would only make an error message less exact; see {@linkcode withLastError} otherwise.
 *
 * @returns The calling thread's last error code.
 */
export function lastError(): number {
  return kernel32().GetLastError();
}

/**
 * Throws the last error when a `BOOL` result is 0.
 *
 * @param result The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @throws {Win32Error} When `result` is 0.
 *
 * @example Check a BOOL result
 * ```ts
 * import { checkBool } from "./error.ts";
 * import { kernel32 } from "./kernel32.ts";
 * declare const h: Deno.PointerObject;
 * checkBool(kernel32().SetEvent(h), "SetEvent", "Cannot set event");
 * ```
 */
export function checkBool(result: number | boolean, functionName: string, context?: string): void {
  if (!result) {
    const code = lastError();
    throw new Win32Error(functionName, code, { context });
  }
}

/** `INVALID_HANDLE_VALUE`, `(HANDLE)-1`. */
export const INVALID_HANDLE_VALUE: Deno.PointerObject = Deno.UnsafePointer.create(
  0xffff_ffff_ffff_ffffn,
)!;

/**
 * Whether a handle is NULL or `INVALID_HANDLE_VALUE`.
 *
 * @param handle The handle.
 * @returns `true` for both failure values.
 */
export function isInvalidHandle(handle: Deno.PointerValue): handle is null {
  return handle === null || Deno.UnsafePointer.value(handle) === 0xffff_ffff_ffff_ffffn;
}

/**
 * Returns the handle, or throws the last error when it is NULL or `INVALID_HANDLE_VALUE`.
 *
 * @param handle The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @returns The handle, non-null.
 * @throws {Win32Error} When the handle is NULL or `INVALID_HANDLE_VALUE`.
 *
 * @example Check a returned handle
 * ```ts
 * import { checkHandle } from "./error.ts";
 * import { kernel32 } from "./kernel32.ts";
 * import { wide } from "./strings.ts";
 * const h = checkHandle(
 *   kernel32().OpenFileMappingW(4, 0, wide("x")),
 *   "OpenFileMappingW",
 *   'Cannot open file mapping "x"',
 * );
 * ```
 */
export function checkHandle(
  handle: Deno.PointerValue,
  functionName: string,
  context?: string,
): Deno.PointerObject {
  if (isInvalidHandle(handle)) {
    const code = lastError();
    throw new Win32Error(functionName, code, { context });
  }
  return handle;
}

/**
 * Returns the handle, or throws the last error when it is NULL. For the calls that fail with NULL
 * alone (`CreateWindowExW`, `GlobalAlloc`, `GlobalLock`, `OpenProcess`,
 * `CreateIoCompletionPort`); see {@linkcode checkHandle} for those that may return
 * `INVALID_HANDLE_VALUE`.
 *
 * @param pointer The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @returns The pointer, non-null.
 * @throws {Win32Error} When the pointer is NULL.
 *
 * @example Check a returned pointer
 * ```ts
 * import { checkPointer } from "./error.ts";
 * import { kernel32 } from "./kernel32.ts";
 * if (Deno.build.os === "windows") {
 *   const memory = checkPointer(kernel32().GlobalAlloc(2, 16n), "GlobalAlloc", "Cannot allocate");
 *   kernel32().GlobalFree(memory);
 * }
 * ```
 */
export function checkPointer(
  pointer: Deno.PointerValue,
  functionName: string,
  context?: string,
): Deno.PointerObject {
  if (pointer === null) {
    const code = lastError();
    throw new Win32Error(functionName, code, { context });
  }
  return pointer;
}

/**
 * Returns the result, or throws the last error when it is 0: for the calls that return a number
 * that is 0 only on failure (an atom from `RegisterClassExW`, a format or message id, a thread
 * id).
 *
 * @param result The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @returns The result, when it is not 0.
 * @throws {Win32Error} When `result` is 0.
 *
 * @example Check a registered message id
 * ```ts
 * import { checkNonZero } from "./error.ts";
 * import { user32 } from "./user32.ts";
 * import { wide } from "./strings.ts";
 * if (Deno.build.os === "windows") {
 *   const id = checkNonZero(
 *     user32().RegisterWindowMessageW(wide("example.message")),
 *     "RegisterWindowMessageW",
 *     'Cannot register window message "example.message"',
 *   );
 *   console.log(id >= 0xc000); // true
 * }
 * ```
 */
export function checkNonZero<T extends number | bigint>(
  result: T,
  functionName: string,
  context?: string,
): T {
  if (!result) {
    const code = lastError();
    throw new Win32Error(functionName, code, { context });
  }
  return result;
}

/**
 * Throws when a call that returns its Win32 error code (the registry's `Reg*`, `WSAStartup`,
 * `GetAddrInfoW`, the RPC runtime's `RPC_STATUS`) returned one that is not 0. The code is the
 * result itself: no `GetLastError` is read, so this is safe after a `nonblocking` call too.
 *
 * @param code The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @throws {Win32Error} When `code` is not 0 (`ERROR_SUCCESS`).
 *
 * @example Check a registry call
 * ```ts
 * import { checkCode } from "./error.ts";
 * checkCode(0, "RegCloseKey"); // ERROR_SUCCESS: returns
 * try {
 *   checkCode(2, "RegOpenKeyExW", "Cannot read a key");
 * } catch (e) {
 *   console.log((e as Error).message.startsWith("Cannot read a key: RegOpenKeyExW failed")); // true
 * }
 * ```
 */
export function checkCode(code: number, functionName: string, context?: string): void {
  if (code !== 0) throw new Win32Error(functionName, code, { context });
}

/**
 * Throws when a native call's `NTSTATUS` is not `STATUS_SUCCESS` (0), with the Win32 code the
 * system maps it to (see {@linkcode ntStatusError}). The status is the call's own result: this is
 * the check for the calls winipc makes where a last error could be overwritten or belongs to a
 * worker thread (`ffi/ntdll.ts`).
 *
 * @param status The call's result.
 * @param functionName The function that failed (the native one, or the Win32 call it stands for).
 * @param context What winipc was doing (the message's start).
 * @throws {Win32Error} When `status` is not 0.
 *
 * @example Check a native call
 * ```ts
 * import { checkNtStatus } from "./error.ts";
 * import { ntdll } from "./ntdll.ts";
 * declare const file: Deno.PointerObject;
 * const status = await ntdll().NtFlushBuffersFileAsync(file, new Uint8Array(16));
 * checkNtStatus(status, "FlushFileBuffers", "Cannot flush the file");
 * ```
 */
export function checkNtStatus(status: number, functionName: string, context?: string): void {
  if (status !== 0) throw ntStatusError(functionName, status, { context });
}
