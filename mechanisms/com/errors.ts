/**
 * The error of the COM module: {@linkcode ComError} with its HRESULT, the names of the HRESULTs
 * winipc meets, and the HRESULT checks the other files use.
 *
 * @module
 */
import { ERROR_NAMES, WinipcError } from "../../ffi/error.ts";

/**
 * Symbolic names of the HRESULTs winipc meets, by unsigned value.
 *
 * @example Look up a name (hresultName also decodes the rest)
 * ```ts
 * import { HRESULT_NAMES } from "./mod.ts";
 * HRESULT_NAMES[0x8002_0009]; // "DISP_E_EXCEPTION"
 * ```
 */
export const HRESULT_NAMES: Readonly<Record<number, string>> = {
  0x0000_0000: "S_OK",
  0x0000_0001: "S_FALSE",
  0x8000_4001: "E_NOTIMPL",
  0x8000_4002: "E_NOINTERFACE",
  0x8000_4003: "E_POINTER",
  0x8000_4004: "E_ABORT",
  0x8000_4005: "E_FAIL",
  0x8000_ffff: "E_UNEXPECTED",
  0x8007_0005: "E_ACCESSDENIED",
  0x8007_000e: "E_OUTOFMEMORY",
  0x8007_0057: "E_INVALIDARG",
  0x8001_0001: "RPC_E_CALL_REJECTED",
  0x8001_0105: "RPC_E_SERVERFAULT",
  0x8001_0106: "RPC_E_CHANGED_MODE",
  0x8001_0108: "RPC_E_DISCONNECTED",
  0x8001_010e: "RPC_E_WRONG_THREAD",
  0x8002_0001: "DISP_E_UNKNOWNINTERFACE",
  0x8002_0003: "DISP_E_MEMBERNOTFOUND",
  0x8002_0004: "DISP_E_PARAMNOTFOUND",
  0x8002_0005: "DISP_E_TYPEMISMATCH",
  0x8002_0006: "DISP_E_UNKNOWNNAME",
  0x8002_0007: "DISP_E_NONAMEDARGS",
  0x8002_0008: "DISP_E_BADVARTYPE",
  0x8002_0009: "DISP_E_EXCEPTION",
  0x8002_000a: "DISP_E_OVERFLOW",
  0x8002_000b: "DISP_E_BADINDEX",
  0x8002_000e: "DISP_E_BADPARAMCOUNT",
  0x8002_000f: "DISP_E_PARAMNOTOPTIONAL",
  0x8004_0154: "REGDB_E_CLASSNOTREG",
  0x8004_0200: "CONNECT_E_NOCONNECTION",
  0x8004_0202: "CONNECT_E_CANNOTCONNECT",
  0x8004_0110: "CLASS_E_NOAGGREGATION",
  0x8004_01e3: "MK_E_UNAVAILABLE",
  0x8004_01e4: "MK_E_SYNTAX",
  0x8004_01f0: "CO_E_NOTINITIALIZED",
  0x8004_01f3: "CO_E_CLASSSTRING",
  0x8004_01fd: "CO_E_OBJNOTCONNECTED",
  0x8008_0005: "CO_E_SERVER_EXEC_FAILURE",
  0x800a_0035: "CTL_E_FILENOTFOUND",
  0x800a_01b6: "CTL_E_OBJECTDOESNOTSUPPORTPROPERTYORMETHOD",
};

/**
 * The symbolic name of an HRESULT. `HRESULT_FROM_WIN32` codes (`0x8007xxxx`) are named after
 * their Win32 error.
 *
 * @param hr The HRESULT, signed or unsigned.
 * @returns Its name, or `HRESULT_0x...` when it has none here.
 *
 * @example Name an HRESULT
 * ```ts
 * import { hresultName } from "./mod.ts";
 * hresultName(0x800401f3); // "CO_E_CLASSSTRING"
 * ```
 */
export function hresultName(hr: number): string {
  const u = hr >>> 0;
  const known = HRESULT_NAMES[u];
  if (known) return known;
  if (((u & 0xffff_0000) >>> 0) === 0x8007_0000 && ERROR_NAMES[u & 0xffff]) {
    return `HRESULT_FROM_WIN32(${ERROR_NAMES[u & 0xffff]})`;
  }
  return `HRESULT_0x${u.toString(16).toUpperCase().padStart(8, "0")}`;
}

/**
 * Options of a {@linkcode ComError}.
 *
 * @example An error for an HRESULT of your own call
 * ```ts
 * import { ComError } from "./mod.ts";
 * throw new ComError("IStream::Read", 0x8003_0001 | 0, { context: "Cannot read the report" });
 * ```
 */
export interface ComErrorOptions {
  /** What winipc was doing; the message starts with it. */
  context?: string;
  /** The server's `EXCEPINFO.bstrSource`. */
  source?: string;
  /** The server's `EXCEPINFO.bstrDescription`. */
  description?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A COM call failed: carries the function (or interface method), the HRESULT and its name, and,
 * for `DISP_E_EXCEPTION`, the server's source and description (from `EXCEPINFO`).
 *
 * @example Catch an unknown ProgID
 * ```ts
 * import { ComError, createObject } from "./mod.ts";
 * try {
 *   createObject("No.Such.Thing");
 * } catch (e) {
 *   if (e instanceof ComError && e.hresultName === "CO_E_CLASSSTRING") console.log("not installed");
 * }
 * ```
 */
export class ComError extends WinipcError {
  /** The function or method that failed, e.g. `CLSIDFromProgID`, `IDispatch::Invoke`. */
  readonly functionName: string;
  /** The HRESULT, unsigned (`0x80020009`); the same as `code`. */
  declare readonly code: number;
  /** The HRESULT, unsigned (`0x80020009`). */
  readonly hresult: number;
  /** Its name, e.g. `DISP_E_EXCEPTION`. */
  readonly hresultName: string;
  /** The server's exception source, for `DISP_E_EXCEPTION`. */
  readonly source?: string;
  /** The server's exception description, for `DISP_E_EXCEPTION`. */
  readonly description?: string;

  /**
   * Makes the error; the message names the function, the HRESULT and the server's details.
   *
   * @param functionName The function or method that failed.
   * @param hr The HRESULT.
   * @param options Context and exception details.
   */
  constructor(functionName: string, hr: number, options: ComErrorOptions = {}) {
    const u = hr >>> 0;
    const name = hresultName(u);
    const head = options.context ? `${options.context}: ` : "";
    const detail = [options.source, options.description].filter(Boolean).join(": ");
    super(
      `${head}${functionName} failed with ${name} (0x${u.toString(16).toUpperCase()})${
        detail ? `: ${detail}` : ""
      }`,
      u,
      name,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ComError";
    this.functionName = functionName;
    this.hresult = u;
    this.hresultName = name;
    this.source = options.source;
    this.description = options.description;
  }
}

/** Descriptions of the VB run-time errors (`0x800A0000 | n`) automation servers return. */
export const VB_ERRORS: Readonly<Record<number, string>> = {
  5: "Invalid procedure call or argument",
  6: "Overflow",
  9: "Subscript out of range",
  13: "Type mismatch",
  52: "Bad file name or number",
  53: "File not found",
  58: "File already exists",
  70: "Permission denied",
  76: "Path not found",
  424: "Object required",
  438: "Object doesn't support this property or method",
  450: "Wrong number of arguments or invalid property assignment",
  457: "This key is already associated with an element of this collection",
};

export function failed(hr: number): boolean {
  return hr < 0;
}

export function checkHr(hr: number, functionName: string, context: string): void {
  if (failed(hr)) throw new ComError(functionName, hr, { context });
}

export const S_OK = 0;
export const S_FALSE = 1;
export const E_NOINTERFACE = 0x8000_4002 | 0;
export const E_NOTIMPL = 0x8000_4001 | 0;
export const E_POINTER = 0x8000_4003 | 0;
export const E_FAIL = 0x8000_4005 | 0;
/** `CO_E_OBJNOTCONNECTED`: what a served object answers once its registration is closed. */
export const CO_E_OBJNOTCONNECTED = 0x8004_01fd | 0;
export const RPC_E_CHANGED_MODE = 0x8001_0106 | 0;
export const DISP_E_MEMBERNOTFOUND = 0x8002_0003 | 0;
export const DISP_E_PARAMNOTFOUND = 0x8002_0004 | 0;
export const DISP_E_TYPEMISMATCH = 0x8002_0005 | 0;
export const DISP_E_UNKNOWNNAME = 0x8002_0006 | 0;
export const DISP_E_EXCEPTION = 0x8002_0009 | 0;
export const DISP_E_BADPARAMCOUNT = 0x8002_000e | 0;
export const DISP_E_BADINDEX = 0x8002_000b | 0;
export const DISP_E_PARAMNOTOPTIONAL = 0x8002_000f | 0;
export const CONNECT_E_NOCONNECTION = 0x8004_0200 | 0;
export const CONNECT_E_CANNOTCONNECT = 0x8004_0202 | 0;
export const RPC_E_DISCONNECTED = 0x8001_0108 | 0;
export const RPC_S_SERVER_UNAVAILABLE = 0x8007_06ba | 0;
