/**
 * COM automation: drive automation servers late-bound through `IDispatch`, and expose a
 * TypeScript object to other processes as an `IDispatch` registered in the Running Object Table.
 *
 * Client: {@linkcode createObject} (`CLSIDFromProgID` + `CoCreateInstance`, or
 * `CoCreateInstanceEx` with a host name for DCOM) and {@linkcode getObject} (a Running Object
 * Table lookup by item moniker, like VB's `GetObject`) return a {@linkcode ComObject}: a `Proxy`
 * on which `obj.Method(args)` calls a method and `obj.Property` reads a property (tried first as a
 * property get; a member that is not a property becomes a function). VARIANTs are converted both
 * ways (see {@linkcode ComValue}); `for (const item of obj)` walks `_NewEnum`; a failed call throws
 * {@linkcode ComError} with the HRESULT's name and, for `DISP_E_EXCEPTION`, the server's own
 * source and description. `using obj = ...` releases the reference.
 *
 * Server: {@linkcode serveObject} wraps a TypeScript object in an `IDispatch` (a vtable of
 * `Deno.UnsafeCallback`s) and registers it in the Running Object Table under a name; another
 * process finds it with {@linkcode getObject} and calls its methods through the standard
 * oleaut32 `IDispatch` marshalling. The thread is a single-threaded apartment: calls from other
 * processes arrive as window messages, which a message pump (a timer that yields between rounds)
 * dispatches while anything is registered.
 *
 * @example Drive Scripting.Dictionary
 * ```ts
 * import { createObject } from "./com.ts";
 * using dict = createObject("Scripting.Dictionary");
 * dict.Add("a", 1);
 * dict.Add("b", "two");
 * console.log(dict.Count, dict.Item("b"), dict.Keys()); // 2 "two" ["a", "b"]
 * ```
 *
 * @module
 */
import { z } from "zod";
import {
  advapi32,
  HKEY_CURRENT_USER,
  KEY_ALL_ACCESS,
  REG_CREATED_NEW_KEY,
  REG_SZ,
} from "../ffi/advapi32.ts";
import { ERROR_NAMES, WinipcError } from "../ffi/error.ts";
import {
  CLSCTX_ALL,
  CLSCTX_INPROC_SERVER,
  CLSCTX_LOCAL_SERVER,
  CLSCTX_REMOTE_SERVER,
  COINIT_APARTMENTTHREADED,
  COINIT_MULTITHREADED,
  formatGuid,
  guid,
  IID_IDispatch,
  IID_IEnumVARIANT,
  IID_IUnknown,
  IID_NULL,
  ole32,
  REGCLS_MULTIPLEUSE,
  ROTFLAGS_REGISTRATIONKEEPSALIVE,
  vcall,
} from "../ffi/ole32.ts";
import {
  DISPATCH_METHOD,
  DISPATCH_PROPERTYGET,
  DISPATCH_PROPERTYPUT,
  DISPATCH_PROPERTYPUTREF,
  DISPID_NEWENUM,
  DISPID_PROPERTYPUT,
  DISPID_UNKNOWN,
  DISPPARAMS,
  EXCEPINFO,
  LOCALE_USER_DEFAULT,
  oleaut32,
  SYSTEMTIME,
  VARIANT_SIZE,
  VT_ARRAY,
  VT_BOOL,
  VT_BSTR,
  VT_BYREF,
  VT_CY,
  VT_DATE,
  VT_DECIMAL,
  VT_DISPATCH,
  VT_EMPTY,
  VT_ERROR,
  VT_I1,
  VT_I2,
  VT_I4,
  VT_I8,
  VT_INT,
  VT_NULL,
  VT_R4,
  VT_R8,
  VT_UI1,
  VT_UI2,
  VT_UI4,
  VT_UI8,
  VT_UINT,
  VT_UNKNOWN,
  VT_VARIANT,
} from "../ffi/oleaut32.ts";
import { wide } from "../ffi/strings.ts";
import { inCallback, pump, type PumpLease, releaseAfterCallbacks } from "./_pump.ts";
import { parseArg } from "./_validate.ts";

// ---------------------------------------------------------------------------------------------
// HRESULTs and ComError

/**
 * Symbolic names of the HRESULTs winipc meets, by unsigned value.
 *
 * @example Look up a name (hresultName also decodes the rest)
 * ```ts
 * import { HRESULT_NAMES } from "./com.ts";
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
 * import { hresultName } from "./com.ts";
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
 * import { ComError } from "./com.ts";
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
 * import { ComError, createObject } from "./com.ts";
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
const VB_ERRORS: Readonly<Record<number, string>> = {
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

function failed(hr: number): boolean {
  return hr < 0;
}

function checkHr(hr: number, functionName: string, context: string): void {
  if (failed(hr)) throw new ComError(functionName, hr, { context });
}

const S_OK = 0;
const S_FALSE = 1;
const E_NOINTERFACE = 0x8000_4002 | 0;
const E_NOTIMPL = 0x8000_4001 | 0;
const E_POINTER = 0x8000_4003 | 0;
const E_FAIL = 0x8000_4005 | 0;
/** `CO_E_OBJNOTCONNECTED`: what a served object answers once its registration is closed. */
const CO_E_OBJNOTCONNECTED = 0x8004_01fd | 0;
const RPC_E_CHANGED_MODE = 0x8001_0106 | 0;
const DISP_E_MEMBERNOTFOUND = 0x8002_0003 | 0;
const DISP_E_PARAMNOTFOUND = 0x8002_0004 | 0;
const DISP_E_TYPEMISMATCH = 0x8002_0005 | 0;
const DISP_E_UNKNOWNNAME = 0x8002_0006 | 0;
const DISP_E_EXCEPTION = 0x8002_0009 | 0;
const DISP_E_BADPARAMCOUNT = 0x8002_000e | 0;
const DISP_E_BADINDEX = 0x8002_000b | 0;
const DISP_E_PARAMNOTOPTIONAL = 0x8002_000f | 0;
const CONNECT_E_NOCONNECTION = 0x8004_0200 | 0;
const CONNECT_E_CANNOTCONNECT = 0x8004_0202 | 0;
const RPC_E_DISCONNECTED = 0x8001_0108 | 0;
const RPC_S_SERVER_UNAVAILABLE = 0x8007_06ba | 0;

// ---------------------------------------------------------------------------------------------
// Apartment

/**
 * The COM apartment of a thread: single-threaded (`"sta"`) or the multithreaded one (`"mta"`).
 *
 * @example Join the multithreaded apartment before any other COM call
 * ```ts
 * import { type Apartment, initCom } from "./com.ts";
 * const joined: Apartment = initCom("mta");
 * if (joined !== "mta") console.log("COM was already initialised as an STA");
 * ```
 */
export type Apartment = "sta" | "mta";

let apartment: Apartment | undefined;

/**
 * Joins COM on this thread (`CoInitializeEx`), once; later calls return the apartment already
 * joined. Every winipc COM function calls it, so an explicit call is only needed to choose the
 * multithreaded apartment. The default, `"sta"`, is what automation servers and the Running
 * Object Table server here expect.
 *
 * @param mode `"sta"` (default) or `"mta"`.
 * @returns The apartment this thread is in (the existing one if COM was already initialised in
 * the other mode, `RPC_E_CHANGED_MODE`).
 * @throws {ComError} When `CoInitializeEx` fails.
 *
 * @example Initialise COM on this thread
 * ```ts
 * import { initCom } from "./com.ts";
 * initCom("sta");
 * ```
 */
export function initCom(mode: Apartment = "sta"): Apartment {
  if (apartment) return apartment;
  parseArg(z.enum(["sta", "mta"]), mode, "mode");
  const hr = ole32().CoInitializeEx(
    null,
    mode === "sta" ? COINIT_APARTMENTTHREADED : COINIT_MULTITHREADED,
  );
  if (hr === RPC_E_CHANGED_MODE) apartment = mode === "sta" ? "mta" : "sta";
  else {
    checkHr(hr, "CoInitializeEx", "Cannot initialise COM");
    apartment = mode;
  }
  return apartment;
}

// ---------------------------------------------------------------------------------------------
// IUnknown helpers

function addRef(p: Deno.PointerObject): number {
  return vcall(p, 1, [], "u32") as number;
}

function release(p: Deno.PointerObject): number {
  return vcall(p, 2, [], "u32") as number;
}

/** QueryInterface; returns the new (owned) pointer, or null with the HRESULT. */
function queryInterface(
  p: Deno.PointerObject,
  iid: Uint8Array<ArrayBuffer>,
): [Deno.PointerObject | null, number] {
  const out = new BigUint64Array(1);
  const hr = vcall(p, 0, ["buffer", "buffer"], "i32", iid, out) as number;
  return [failed(hr) ? null : Deno.UnsafePointer.create(out[0]), hr];
}

const releaser = new FinalizationRegistry<{ ptr: Deno.PointerObject }>((held) => {
  try {
    release(held.ptr);
  } catch {
    // a finalizer has nobody to report to
  }
});

// ---------------------------------------------------------------------------------------------
// BSTR

function allocBstr(text: string): Deno.PointerObject {
  const units = wide(text);
  const p = oleaut32().SysAllocStringLen(units, text.length);
  if (!p) throw new ComError("SysAllocStringLen", 0x8007_000e, { context: "Cannot make a BSTR" });
  return p;
}

function readBstr(p: Deno.PointerValue): string {
  if (!p) return "";
  const length = oleaut32().SysStringLen(p);
  if (length === 0) return "";
  const units = new Uint16Array(new Deno.UnsafePointerView(p).getArrayBuffer(length * 2));
  let out = "";
  for (let i = 0; i < units.length; i += 8192) {
    out += String.fromCharCode(...units.subarray(i, i + 8192));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// VARIANT <-> JavaScript

/**
 * A value that crosses `IDispatch`: `undefined` (VT_EMPTY), `null` (VT_NULL), booleans
 * (VT_BOOL), numbers (VT_I4 when a 32-bit integer, else VT_R8; VT_I2, VT_UI*, VT_R4, VT_CY read as
 * numbers), bigints (VT_I8), strings (VT_BSTR), `Date`s (VT_DATE, read and written as UTC, as COM
 * dates carry no zone), arrays (a SAFEARRAY of VARIANT; a SAFEARRAY of VT_UI1 reads as a
 * `Uint8Array`), COM objects (VT_DISPATCH), {@linkcode ComUnknown}s (VT_UNKNOWN without
 * IDispatch). A plain object or class instance passed to a server is exposed to it as an
 * `IDispatch` of its own.
 *
 * @example Values in and out of a Scripting.Dictionary
 * ```ts
 * import { type ComValue, createObject } from "./com.ts";
 * using dict = createObject("Scripting.Dictionary");
 * dict.Add("when", new Date(Date.UTC(2024, 0, 1)));
 * dict.Add("big", 2n ** 40n);
 * const when: ComValue = dict.Item("when"); // a Date
 * ```
 */
export type ComValue =
  | undefined
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | ComValue[]
  | ComObject
  | ComUnknown
  | object;

/** The OLE date of 1970-01-01 (days since 1899-12-30). */
const OLE_EPOCH_DAYS = 25569;
const DAY_MS = 86_400_000;

/**
 * Converts a JavaScript time (ms since 1970, UTC) to an OLE automation date.
 *
 * @param ms Milliseconds since the Unix epoch.
 * @returns Days since 1899-12-30 (for earlier dates: negative whole days, positive fraction).
 *
 * @example A JavaScript time as an OLE date
 * ```ts
 * import { toOleDate } from "./com.ts";
 * toOleDate(Date.UTC(2000, 0, 1, 12)); // 36526.5
 * ```
 */
export function toOleDate(ms: number): number {
  const days = Math.floor(ms / DAY_MS);
  const fraction = (ms - days * DAY_MS) / DAY_MS;
  const whole = days + OLE_EPOCH_DAYS;
  return whole >= 0 ? whole + fraction : whole - fraction;
}

/**
 * Converts an OLE automation date to a JavaScript time (ms since 1970, UTC).
 *
 * @param date Days since 1899-12-30.
 * @returns Milliseconds since the Unix epoch, rounded to the millisecond.
 *
 * @example An OLE date as a JavaScript time
 * ```ts
 * import { fromOleDate } from "./com.ts";
 * new Date(fromOleDate(36526.5)).toISOString(); // "2000-01-01T12:00:00.000Z"
 * ```
 */
export function fromOleDate(date: number): number {
  const whole = date >= 0 ? Math.floor(date) : Math.ceil(date);
  const fraction = Math.abs(date - whole);
  return Math.round((whole - OLE_EPOCH_DAYS + fraction) * DAY_MS);
}

/**
 * Converts a `Date` to an OLE date with oleaut32's `SystemTimeToVariantTime` (which keeps whole
 * seconds only). {@linkcode toOleDate} does the same in JavaScript, to the millisecond.
 *
 * @param date The date (its UTC fields are used).
 * @returns The OLE date.
 * @throws {ComError} When oleaut32 rejects the date.
 *
 * @example Noon on 1 January 2000
 * ```ts
 * import { systemTimeToVariantTime } from "./com.ts";
 * systemTimeToVariantTime(new Date(Date.UTC(2000, 0, 1, 12))); // 36526.5
 * ```
 */
export function systemTimeToVariantTime(date: Date): number {
  const st = SYSTEMTIME.alloc({
    wYear: date.getUTCFullYear(),
    wMonth: date.getUTCMonth() + 1,
    wDayOfWeek: date.getUTCDay(),
    wDay: date.getUTCDate(),
    wHour: date.getUTCHours(),
    wMinute: date.getUTCMinutes(),
    wSecond: date.getUTCSeconds(),
    wMilliseconds: date.getUTCMilliseconds(),
  });
  const out = new Float64Array(1);
  if (!oleaut32().SystemTimeToVariantTime(st, out)) {
    throw new ComError("SystemTimeToVariantTime", E_FAIL, {
      context: `Cannot convert ${date.toISOString()}`,
    });
  }
  return out[0];
}

/**
 * Converts an OLE date to a `Date` with oleaut32's `VariantTimeToSystemTime`.
 *
 * @param value The OLE date.
 * @returns The date, read as UTC.
 * @throws {ComError} When oleaut32 rejects the value.
 *
 * @example An OLE date as a Date
 * ```ts
 * import { variantTimeToSystemTime } from "./com.ts";
 * variantTimeToSystemTime(36526.5).toISOString(); // "2000-01-01T12:00:00.000Z"
 * ```
 */
export function variantTimeToSystemTime(value: number): Date {
  const st = SYSTEMTIME.alloc();
  if (!oleaut32().VariantTimeToSystemTime(value, st)) {
    throw new ComError("VariantTimeToSystemTime", E_FAIL, { context: `Cannot convert ${value}` });
  }
  const s = SYSTEMTIME.read(st);
  return new Date(
    Date.UTC(s.wYear, s.wMonth - 1, s.wDay, s.wHour, s.wMinute, s.wSecond, s.wMilliseconds),
  );
}

function viewOf(p: Deno.PointerObject, size: number): Uint8Array {
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size));
}

/** Writes a JS value into the VARIANT at `at` (24 bytes); allocations belong to the VARIANT. */
function writeVariant(bytes: Uint8Array, at: number, value: unknown, asArgument: boolean): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, VARIANT_SIZE);
  for (let i = 0; i < VARIANT_SIZE; i++) v.setUint8(i, 0);
  const setPtr = (p: Deno.PointerValue) =>
    v.setBigUint64(8, BigInt(Deno.UnsafePointer.value(p)), true);
  if (value === undefined) {
    if (asArgument) {
      v.setUint16(0, VT_ERROR, true); // a missing optional argument
      v.setInt32(8, DISP_E_PARAMNOTFOUND, true);
    } else v.setUint16(0, VT_EMPTY, true);
  } else if (value === null) v.setUint16(0, VT_NULL, true);
  else if (typeof value === "boolean") {
    v.setUint16(0, VT_BOOL, true);
    v.setInt16(8, value ? -1 : 0, true);
  } else if (typeof value === "number") {
    if (Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
      v.setUint16(0, VT_I4, true);
      v.setInt32(8, value, true);
    } else {
      v.setUint16(0, VT_R8, true);
      v.setFloat64(8, value, true);
    }
  } else if (typeof value === "bigint") {
    if (value < -(2n ** 63n) || value >= 2n ** 63n) {
      throw new RangeError(`A bigint passed to COM must fit in 64 bits: got ${value}`);
    }
    v.setUint16(0, VT_I8, true);
    v.setBigInt64(8, value, true);
  } else if (typeof value === "string") {
    v.setUint16(0, VT_BSTR, true);
    setPtr(allocBstr(value));
  } else if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError("An invalid Date cannot cross COM");
    v.setUint16(0, VT_DATE, true);
    v.setFloat64(8, toOleDate(value.getTime()), true);
  } else if (value instanceof Uint8Array) {
    const psa = oleaut32().SafeArrayCreateVector(VT_UI1, 0, value.length);
    if (!psa) throw new ComError("SafeArrayCreateVector", 0x8007_000e);
    if (value.length) {
      const data = new BigUint64Array(1);
      checkHr(oleaut32().SafeArrayAccessData(psa, data), "SafeArrayAccessData", "Cannot fill");
      viewOf(Deno.UnsafePointer.create(data[0])!, value.length).set(value);
      oleaut32().SafeArrayUnaccessData(psa);
    }
    v.setUint16(0, VT_ARRAY | VT_UI1, true);
    setPtr(psa);
  } else if (Array.isArray(value)) {
    const psa = oleaut32().SafeArrayCreateVector(VT_VARIANT, 0, value.length);
    if (!psa) throw new ComError("SafeArrayCreateVector", 0x8007_000e);
    if (value.length) {
      const data = new BigUint64Array(1);
      checkHr(oleaut32().SafeArrayAccessData(psa, data), "SafeArrayAccessData", "Cannot fill");
      const items = viewOf(Deno.UnsafePointer.create(data[0])!, value.length * VARIANT_SIZE);
      try {
        value.forEach((item, i) => writeVariant(items, i * VARIANT_SIZE, item, false));
      } finally {
        oleaut32().SafeArrayUnaccessData(psa);
      }
    }
    v.setUint16(0, VT_ARRAY | VT_VARIANT, true);
    setPtr(psa);
  } else if (typeof value === "object" || typeof value === "function") {
    const dispatch = dispatchOf(value);
    if (dispatch) {
      addRef(dispatch);
      v.setUint16(0, VT_DISPATCH, true);
      setPtr(dispatch);
    } else if (value instanceof ComUnknown) {
      const p = value.unsafePointer;
      addRef(p);
      v.setUint16(0, VT_UNKNOWN, true);
      setPtr(p);
    } else {
      // A plain object: expose it as an IDispatch of its own (one reference, owned by the VARIANT).
      v.setUint16(0, VT_DISPATCH, true);
      setPtr(exposeDispatch(value as object));
    }
  } else {
    throw new TypeError(`Cannot pass a ${typeof value} to COM`);
  }
}

const ELEMENT_SIZE: Record<number, number> = {
  [VT_I1]: 1,
  [VT_UI1]: 1,
  [VT_I2]: 2,
  [VT_UI2]: 2,
  [VT_BOOL]: 2,
  [VT_I4]: 4,
  [VT_UI4]: 4,
  [VT_INT]: 4,
  [VT_UINT]: 4,
  [VT_R4]: 4,
  [VT_ERROR]: 4,
  [VT_R8]: 8,
  [VT_CY]: 8,
  [VT_DATE]: 8,
  [VT_I8]: 8,
  [VT_UI8]: 8,
  [VT_BSTR]: 8,
  [VT_DISPATCH]: 8,
  [VT_UNKNOWN]: 8,
  [VT_VARIANT]: VARIANT_SIZE,
};

function readSafeArray(psa: Deno.PointerValue): ComValue {
  if (!psa) return [];
  const oa = oleaut32();
  const vtOut = new Uint16Array(1);
  checkHr(oa.SafeArrayGetVartype(psa, vtOut), "SafeArrayGetVartype", "Cannot read a SAFEARRAY");
  const vt = vtOut[0];
  const size = ELEMENT_SIZE[vt];
  if (size === undefined) {
    throw new ComError("SafeArrayGetVartype", 0x8002_0008, {
      context: `Cannot read a SAFEARRAY of VARTYPE ${vt}`,
    });
  }
  const dims = oa.SafeArrayGetDim(psa);
  let count = 1;
  for (let d = 1; d <= dims; d++) {
    const lo = new Int32Array(1);
    const hi = new Int32Array(1);
    oa.SafeArrayGetLBound(psa, d, lo);
    oa.SafeArrayGetUBound(psa, d, hi);
    count *= Math.max(0, hi[0] - lo[0] + 1);
  }
  if (count === 0) return vt === VT_UI1 ? new Uint8Array(0) : [];
  const data = new BigUint64Array(1);
  checkHr(oa.SafeArrayAccessData(psa, data), "SafeArrayAccessData", "Cannot read a SAFEARRAY");
  try {
    const base = data[0];
    if (vt === VT_UI1) return viewOf(Deno.UnsafePointer.create(base)!, count).slice();
    const out: ComValue[] = [];
    // Each element is read through a VT_BYREF VARIANT that points at it.
    const ref = new Uint8Array(VARIANT_SIZE);
    const refView = new DataView(ref.buffer);
    for (let i = 0; i < count; i++) {
      refView.setUint16(0, vt === VT_VARIANT ? VT_BYREF | VT_VARIANT : VT_BYREF | vt, true);
      refView.setBigUint64(8, base + BigInt(i * size), true);
      out.push(readVariant(Deno.UnsafePointer.of(ref)!));
    }
    return out;
  } finally {
    oa.SafeArrayUnaccessData(psa);
  }
}

/** Reads a VARIANT into a JS value. Interfaces are AddRef'd: the VARIANT keeps its own refs. */
function readVariant(p: Deno.PointerObject): ComValue {
  const head = new Deno.UnsafePointerView(p);
  let vt = head.getUint16(0);
  let data: Deno.PointerObject = Deno.UnsafePointer.offset(p, 8)!;
  const byRef = (vt & VT_BYREF) !== 0;
  if (byRef) {
    vt &= ~VT_BYREF;
    const target = head.getPointer(8);
    if (!target) return null;
    if (vt === VT_VARIANT) return readVariant(target);
    data = target;
  }
  const d = new Deno.UnsafePointerView(data);
  if (vt & VT_ARRAY) return readSafeArray(d.getPointer(0));
  switch (vt) {
    case VT_EMPTY:
      return undefined;
    case VT_NULL:
      return null;
    case VT_BOOL:
      return d.getInt16(0) !== 0;
    case VT_I1:
      return d.getInt8(0);
    case VT_UI1:
      return d.getUint8(0);
    case VT_I2:
      return d.getInt16(0);
    case VT_UI2:
      return d.getUint16(0);
    case VT_ERROR: {
      // DISP_E_PARAMNOTFOUND marks a left-out optional argument.
      const code = d.getInt32(0);
      return code === DISP_E_PARAMNOTFOUND ? undefined : code;
    }
    case VT_I4:
    case VT_INT:
      return d.getInt32(0);
    case VT_UI4:
    case VT_UINT:
      return d.getUint32(0);
    case VT_R4:
      return d.getFloat32(0);
    case VT_R8:
      return d.getFloat64(0);
    case VT_CY:
      return Number(d.getBigInt64(0)) / 10_000;
    case VT_I8:
      return d.getBigInt64(0);
    case VT_UI8:
      return d.getBigUint64(0);
    case VT_DATE:
      return new Date(fromOleDate(d.getFloat64(0)));
    case VT_BSTR:
      return readBstr(d.getPointer(0));
    case VT_DISPATCH: {
      const ptr = d.getPointer(0);
      if (!ptr) return null;
      addRef(ptr);
      return wrapDispatch(ptr);
    }
    case VT_UNKNOWN: {
      const ptr = d.getPointer(0);
      if (!ptr) return null;
      const [dispatch] = queryInterface(ptr, IID_IDispatch);
      if (dispatch) return wrapDispatch(dispatch);
      addRef(ptr);
      return adoptUnknown(ptr);
    }
    default: {
      // Anything else (VT_DECIMAL, ...): let oleaut32 convert it, to a double for DECIMAL, else
      // to a string.
      const source = new Uint8Array(VARIANT_SIZE);
      const sv = new DataView(source.buffer);
      sv.setUint16(0, vt, true);
      if (vt === VT_DECIMAL) {
        // A DECIMAL fills the whole VARIANT (its wReserved field overlays vt).
        source.set(byRef ? viewOf(data, 16) : viewOf(p, VARIANT_SIZE));
        sv.setUint16(0, vt, true);
      } else source.set(viewOf(data, 16), 8);
      const target = new Uint8Array(VARIANT_SIZE);
      const to = vt === VT_DECIMAL ? VT_R8 : VT_BSTR;
      const hr = oleaut32().VariantChangeType(target, source, 0, to);
      if (failed(hr)) {
        throw new ComError("VariantChangeType", hr, {
          context: `Cannot read a VARIANT of VARTYPE ${vt}`,
        });
      }
      try {
        return readVariant(Deno.UnsafePointer.of(target)!);
      } finally {
        oleaut32().VariantClear(target);
      }
    }
  }
}

/**
 * Converts a JavaScript value to a VARIANT, as arguments are converted (see
 * {@linkcode ComValue}). The VARIANT owns what it points to (a BSTR, a SAFEARRAY, a reference):
 * pass it to {@linkcode clearVariant} when done.
 *
 * @param value The value.
 * @returns The 24 bytes of the VARIANT.
 * @throws {TypeError} For a value that cannot cross COM (a symbol, an invalid Date).
 *
 * @example Round-trip a value through a VARIANT
 * ```ts
 * import { clearVariant, fromVariant, toVariant } from "./com.ts";
 * const v = toVariant("text"); // VT_BSTR
 * fromVariant(v); // "text"
 * clearVariant(v);
 * ```
 */
export function toVariant(value: unknown): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(VARIANT_SIZE);
  writeVariant(bytes, 0, value, false);
  return bytes;
}

/**
 * Converts a VARIANT to a JavaScript value (see {@linkcode ComValue}); types without a
 * JavaScript twin are converted by oleaut32's `VariantChangeType` (`VT_DECIMAL` to a number,
 * others to a string). The VARIANT keeps its own contents.
 *
 * @param variant The 24 bytes of a VARIANT.
 * @returns The value.
 * @throws {ComError} For a VARIANT oleaut32 cannot convert.
 *
 * @example Read back a VARIANT
 * ```ts
 * import { clearVariant, fromVariant, toVariant } from "./com.ts";
 * const v = toVariant(42);
 * fromVariant(v); // 42
 * clearVariant(v);
 * ```
 */
export function fromVariant(variant: Uint8Array): ComValue {
  if (variant.byteLength < VARIANT_SIZE) {
    throw new RangeError(`Invalid argument "variant": must be at least ${VARIANT_SIZE} bytes`);
  }
  return readVariant(Deno.UnsafePointer.of(variant as Uint8Array<ArrayBuffer>)!);
}

/**
 * Frees what a VARIANT owns (`VariantClear`) and sets it to VT_EMPTY.
 *
 * @param variant The 24 bytes of a VARIANT.
 *
 * @example Free the BSTR a VARIANT holds
 * ```ts
 * import { clearVariant, fromVariant, toVariant } from "./com.ts";
 * const v = toVariant("a BSTR");
 * clearVariant(v);
 * fromVariant(v); // undefined (VT_EMPTY)
 * ```
 */
export function clearVariant(variant: Uint8Array): void {
  oleaut32().VariantClear(variant as Uint8Array<ArrayBuffer>);
}

// ---------------------------------------------------------------------------------------------
// Client objects

// The classes below take raw interface pointers, so their constructors are private: the module
// makes them through these.
let adoptUnknown: (ptr: Deno.PointerObject) => ComUnknown;
let adoptDispatch: (ptr: Deno.PointerObject, label?: string) => Dispatch;
let invokeById: (
  d: Dispatch,
  dispid: number,
  args: unknown[],
) => ComError | undefined;
let registration: (
  name: string,
  cookie: number,
  object: Deno.PointerObject,
  lease: PumpLease,
) => ComRegistration;

/**
 * An `IUnknown` that has no `IDispatch`: it can be passed back to COM, queried, and released.
 *
 * @example Pass back and release an object that has no IDispatch
 * ```ts
 * import { ComUnknown, createObject } from "./com.ts";
 * using server = createObject("Example.Server");
 * const handle = server.Handle; // an object without IDispatch reads as a ComUnknown
 * if (handle instanceof ComUnknown) {
 *   server.Adopt(handle); // passed back to COM as VT_UNKNOWN
 *   handle.release();
 * }
 * ```
 */
export class ComUnknown implements Disposable {
  #ptr: Deno.PointerObject | null;
  #token = {};

  static {
    adoptUnknown = (ptr) => new ComUnknown(ptr);
  }

  /** Takes ownership of one reference. */
  private constructor(ptr: Deno.PointerObject) {
    this.#ptr = ptr;
    releaser.register(this, { ptr }, this.#token);
  }

  /**
   * The raw interface pointer.
   *
   * @throws {Deno.errors.BadResource} After `release()`.
   */
  get unsafePointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Deno.errors.BadResource("COM object is released");
    return this.#ptr;
  }

  /** Releases the reference; a second call does nothing. */
  release(): void {
    const p = this.#ptr;
    if (!p) return;
    this.#ptr = null;
    releaser.unregister(this.#token);
    release(p);
  }

  /** Releases the reference. */
  [Symbol.dispose](): void {
    this.release();
  }
}

type MemberKind = "property" | "method";

const TKIND_COCLASS = 5;

/** TYPEATTR's type kind and function count (then ReleaseTypeAttr). */
function typeAttr(info: Deno.PointerObject): { typekind: number; funcs: number } {
  const out = new BigUint64Array(1);
  checkHr(vcall(info, 3, ["buffer"], "i32", out) as number, "ITypeInfo::GetTypeAttr", "");
  const attr = Deno.UnsafePointer.create(out[0])!;
  try {
    const view = new Deno.UnsafePointerView(attr);
    return { typekind: view.getUint32(44), funcs: view.getUint16(48) };
  } finally {
    vcall(info, 19, ["pointer"], "void", attr);
  }
}

/**
 * A member as an object's type information describes it ({@linkcode Dispatch.members}).
 *
 * @example List what an object offers
 * ```ts
 * import { getObject, type MemberInfo } from "./com.ts";
 * using calc = getObject("my-calculator");
 * const members: MemberInfo[] = calc.$dispatch.members();
 * console.log(members.map((m) => `${m.kind} ${m.name}(${m.params})`));
 * ```
 */
export interface MemberInfo {
  /** Its name. */
  name: string;
  /** Its DISPID. */
  dispid: number;
  /** A method, or a property's get, put or putref. */
  kind: "method" | "get" | "put" | "putref";
  /** How many parameters it takes. */
  params: number;
}

/**
 * A late-bound `IDispatch` client. {@linkcode ComObject} (the `Proxy`) is the usual way in;
 * `Dispatch` gives explicit `call`/`get`/`set`.
 *
 * @example Explicit calls
 * ```ts
 * import { createObject } from "./com.ts";
 * using fso = createObject("Scripting.FileSystemObject");
 * const d = fso.$dispatch;
 * d.call("BuildPath", "C:\\a", "b"); // "C:\\a\\b"
 * ```
 */
export class Dispatch implements Disposable {
  #ptr: Deno.PointerObject | null;
  #token = {};
  readonly #ids = new Map<string, number>();
  readonly #kinds = new Map<number, MemberKind>();
  readonly #label: string;
  #proxy?: ComObject;

  static {
    adoptDispatch = (ptr, label) => new Dispatch(ptr, label);
    invokeById = (d, dispid, args) => {
      const { result, error } = d.#invokeRaw(dispid, DISPATCH_METHOD, args, "event");
      oleaut32().VariantClear(result);
      return error;
    };
  }

  /** Takes ownership of one reference to an IDispatch. */
  private constructor(ptr: Deno.PointerObject, label = "COM object") {
    this.#ptr = ptr;
    this.#label = label;
    releaser.register(this, { ptr }, this.#token);
  }

  /** What the object is, for messages (its ProgID or ROT name when known). */
  get label(): string {
    return this.#label;
  }

  /**
   * The raw `IDispatch` pointer.
   *
   * @throws {Deno.errors.BadResource} After `release()`.
   */
  get unsafePointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Deno.errors.BadResource(`${this.#label} is released`);
    return this.#ptr;
  }

  /** The `Proxy` over this object. */
  get proxy(): ComObject {
    return this.#proxy ??= makeProxy(this);
  }

  /**
   * The DISPID of a member (`GetIDsOfNames`), cached.
   *
   * @param name The member's name.
   * @returns Its DISPID.
   * @throws {ComError} `DISP_E_UNKNOWNNAME` when the object has no such member.
   */
  dispid(name: string): number {
    const key = name.toLowerCase();
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const keep = wide(name);
    const names = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(keep))),
    ]);
    const out = new Int32Array(1);
    const hr = vcall(
      this.unsafePointer,
      5,
      ["buffer", "buffer", "u32", "u32", "buffer"],
      "i32",
      IID_NULL,
      names,
      1,
      LOCALE_USER_DEFAULT,
      out,
    ) as number;
    void keep;
    if (failed(hr)) {
      throw new ComError("IDispatch::GetIDsOfNames", hr, {
        context: `${this.#label} has no member "${name}"`,
      });
    }
    this.#ids.set(key, out[0]);
    return out[0];
  }

  /**
   * `IDispatch::Invoke`, returning the HRESULT and the raw result VARIANT (the caller clears it).
   */
  #invokeRaw(
    dispid: number,
    flags: number,
    args: unknown[],
    what: string,
  ): { hr: number; result: Uint8Array<ArrayBuffer>; error?: ComError } {
    const isPut = (flags & (DISPATCH_PROPERTYPUT | DISPATCH_PROPERTYPUTREF)) !== 0;
    const argv = new Uint8Array(Math.max(1, args.length) * VARIANT_SIZE);
    const written: number[] = [];
    try {
      // DISPPARAMS holds the arguments last to first.
      args.forEach((arg, i) => {
        writeVariant(argv, (args.length - 1 - i) * VARIANT_SIZE, arg, true);
        written.push(args.length - 1 - i);
      });
      const named = new Int32Array([DISPID_PROPERTYPUT]);
      const params = DISPPARAMS.alloc({
        rgvarg: args.length ? Deno.UnsafePointer.of(argv) : null,
        rgdispidNamedArgs: isPut ? Deno.UnsafePointer.of(named) : null,
        cArgs: args.length,
        cNamedArgs: isPut ? 1 : 0,
      });
      const result = new Uint8Array(VARIANT_SIZE);
      const excep = EXCEPINFO.alloc();
      const argErr = new Uint32Array(1);
      const hr = vcall(
        this.unsafePointer,
        6,
        ["i32", "buffer", "u32", "u16", "buffer", "buffer", "buffer", "buffer"],
        "i32",
        dispid,
        IID_NULL,
        LOCALE_USER_DEFAULT,
        flags,
        params,
        isPut ? null : result,
        excep,
        argErr,
      ) as number;
      let error: ComError | undefined;
      if (failed(hr)) {
        let source: string | undefined;
        let description: string | undefined;
        let code = hr;
        if (hr === DISP_E_EXCEPTION) {
          const e = EXCEPINFO.read(excep);
          if (e.pfnDeferredFillIn) {
            new Deno.UnsafeFnPointer(
              e.pfnDeferredFillIn as Deno.PointerObject<
                { parameters: ["buffer"]; result: "i32" }
              >,
              { parameters: ["buffer"], result: "i32" },
            ).call(excep);
          }
          const filled = EXCEPINFO.read(excep);
          source = readBstr(filled.bstrSource) || undefined;
          description = readBstr(filled.bstrDescription) || undefined;
          for (const p of [filled.bstrSource, filled.bstrDescription, filled.bstrHelpFile]) {
            if (p) oleaut32().SysFreeString(p);
          }
          if (filled.scode) code = filled.scode;
          else if (filled.wCode) code = 0x800a_0000 | filled.wCode;
        }
        // Servers that fail with a VB run-time error HRESULT and no EXCEPINFO (Wine's scrrun
        // does) still get a readable description.
        description ??= VB_ERRORS[(code >>> 0) - 0x800a_0000];
        error = new ComError("IDispatch::Invoke", code, {
          context: `${what} failed on ${this.#label}`,
          source,
          description,
        });
      }
      return { hr, result, error };
    } finally {
      for (const i of written) oleaut32().VariantClear(argv.subarray(i * VARIANT_SIZE));
    }
  }

  #invoke(name: string, flags: number, args: unknown[]): ComValue {
    const dispid = this.dispid(name);
    const { result, error } = this.#invokeRaw(dispid, flags, args, `"${name}"`);
    if (error) throw error;
    try {
      return readVariant(Deno.UnsafePointer.of(result)!);
    } finally {
      oleaut32().VariantClear(result);
    }
  }

  /**
   * Calls a method (`DISPATCH_METHOD | DISPATCH_PROPERTYGET`, as VBScript does).
   *
   * @param name The method's name (case-insensitive).
   * @param args The arguments; `undefined` leaves an optional argument out.
   * @returns The result.
   * @throws {ComError} When the call fails (`DISP_E_UNKNOWNNAME`, `DISP_E_EXCEPTION`, ...).
   */
  call(name: string, ...args: unknown[]): ComValue {
    return this.#invoke(name, DISPATCH_METHOD | DISPATCH_PROPERTYGET, args);
  }

  /**
   * Reads a property (`DISPATCH_PROPERTYGET`), with index arguments if it takes any.
   *
   * @param name The property's name.
   * @param args Index arguments (e.g. the key of `Dictionary.Item`).
   * @returns The value.
   * @throws {ComError} When the read fails.
   */
  get(name: string, ...args: unknown[]): ComValue {
    return this.#invoke(name, DISPATCH_PROPERTYGET, args);
  }

  /**
   * Writes a property (`DISPATCH_PROPERTYPUT`; `DISPATCH_PROPERTYPUTREF` for an object value).
   *
   * @param name The property's name.
   * @param args Index arguments, then the value (e.g. `set("Item", "key", 5)`).
   * @throws {ComError} When the write fails.
   */
  set(name: string, ...args: unknown[]): void {
    if (args.length === 0) throw new TypeError(`Invalid arguments: set("${name}") needs a value`);
    const value = args.at(-1);
    const byRef = typeof value === "object" && value !== null && !(value instanceof Date) &&
      !Array.isArray(value) && !(value instanceof Uint8Array);
    const result = this.#invoke(name, byRef ? DISPATCH_PROPERTYPUTREF : DISPATCH_PROPERTYPUT, args);
    void result;
  }

  /**
   * Reads a member through the proxy: a property's value, or a function for a method (a member
   * that refuses a plain property get).
   */
  access(name: string): ComValue | ((...args: unknown[]) => ComValue) {
    const dispid = this.dispid(name);
    const call = (...args: unknown[]) => this.call(name, ...args);
    if (this.#kinds.get(dispid) === "method") return call;
    const { hr, result, error } = this.#invokeRaw(dispid, DISPATCH_PROPERTYGET, [], `"${name}"`);
    try {
      if (
        hr === DISP_E_MEMBERNOTFOUND || hr === DISP_E_BADPARAMCOUNT ||
        hr === DISP_E_PARAMNOTOPTIONAL || hr === DISP_E_PARAMNOTFOUND ||
        hr === DISP_E_TYPEMISMATCH
      ) {
        this.#kinds.set(dispid, "method");
        return call;
      }
      if (error) throw error;
      this.#kinds.set(dispid, "property");
      return readVariant(Deno.UnsafePointer.of(result)!);
    } finally {
      oleaut32().VariantClear(result);
    }
  }

  /**
   * Walks the collection through `_NewEnum` (`DISPID_NEWENUM`) and `IEnumVARIANT::Next`.
   *
   * @throws {ComError} When the object is not a collection.
   */
  *[Symbol.iterator](): IterableIterator<ComValue> {
    const { result, error } = this.#invokeRaw(
      DISPID_NEWENUM,
      DISPATCH_METHOD | DISPATCH_PROPERTYGET,
      [],
      "_NewEnum",
    );
    if (error) throw error;
    let enumerator: Deno.PointerObject | null = null;
    try {
      const view = new DataView(result.buffer);
      const vt = view.getUint16(0, true);
      const unknown = Deno.UnsafePointer.create(view.getBigUint64(8, true));
      if ((vt !== VT_UNKNOWN && vt !== VT_DISPATCH) || !unknown) {
        throw new ComError("IDispatch::Invoke", DISP_E_TYPEMISMATCH, {
          context: `_NewEnum of ${this.#label} returned VARTYPE ${vt}, not an enumerator`,
        });
      }
      const [e, hr] = queryInterface(unknown, IID_IEnumVARIANT);
      if (!e) {
        throw new ComError("IUnknown::QueryInterface(IEnumVARIANT)", hr, {
          context: `Cannot enumerate ${this.#label}`,
        });
      }
      enumerator = e;
    } finally {
      oleaut32().VariantClear(result);
    }
    try {
      const item = new Uint8Array(VARIANT_SIZE);
      const fetched = new Uint32Array(1);
      for (;;) {
        const hr = vcall(enumerator, 3, ["u32", "buffer", "buffer"], "i32", 1, item, fetched);
        checkHr(hr as number, "IEnumVARIANT::Next", `Cannot enumerate ${this.#label}`);
        if (hr === S_FALSE || fetched[0] === 0) return;
        try {
          yield readVariant(Deno.UnsafePointer.of(item)!);
        } finally {
          oleaut32().VariantClear(item);
        }
      }
    } finally {
      release(enumerator);
    }
  }

  /**
   * The object's members as its type information describes them (`IDispatch::GetTypeInfo`,
   * following a coclass to its interface): one entry per function, property get and put.
   *
   * @returns The members, in the type information's order.
   * @throws {ComError} When the object gives no type information (`E_NOTIMPL`, or a count of 0).
   */
  members(): MemberInfo[] {
    const context = `Cannot read the type information of ${this.#label}`;
    const count = new Uint32Array(1);
    checkHr(
      vcall(this.unsafePointer, 3, ["buffer"], "i32", count) as number,
      "IDispatch::GetTypeInfoCount",
      context,
    );
    if (count[0] === 0) {
      throw new ComError("IDispatch::GetTypeInfoCount", E_NOTIMPL, {
        context: `${context}: it has none`,
      });
    }
    const out = new BigUint64Array(1);
    checkHr(
      vcall(
        this.unsafePointer,
        4,
        ["u32", "u32", "buffer"],
        "i32",
        0,
        LOCALE_USER_DEFAULT,
        out,
      ) as number,
      "IDispatch::GetTypeInfo",
      context,
    );
    let info = Deno.UnsafePointer.create(out[0])!;
    try {
      if (typeAttr(info).typekind === TKIND_COCLASS) {
        const href = new Uint32Array(1);
        checkHr(
          vcall(info, 8, ["u32", "buffer"], "i32", 0, href) as number,
          "ITypeInfo::GetRefTypeOfImplType",
          context,
        );
        checkHr(
          vcall(info, 14, ["u32", "buffer"], "i32", href[0], out) as number,
          "ITypeInfo::GetRefTypeInfo",
          context,
        );
        release(info);
        info = Deno.UnsafePointer.create(out[0])!;
      }
      const { funcs } = typeAttr(info);
      const members: MemberInfo[] = [];
      for (let i = 0; i < funcs; i++) {
        checkHr(
          vcall(info, 5, ["u32", "buffer"], "i32", i, out) as number,
          "ITypeInfo::GetFuncDesc",
          context,
        );
        const desc = Deno.UnsafePointer.create(out[0])!;
        try {
          // FUNCDESC: memid @0, invkind @28, cParams @36
          const view = new Deno.UnsafePointerView(desc);
          const dispid = view.getInt32(0);
          const invkind = view.getUint32(28);
          const params = view.getInt16(36);
          const name = new BigUint64Array(1);
          vcall(
            info,
            12,
            ["i32", "buffer", "pointer", "pointer", "pointer"],
            "i32",
            dispid,
            name,
            null,
            null,
            null,
          );
          const namePtr = Deno.UnsafePointer.create(name[0]);
          const text = readBstr(namePtr);
          if (namePtr) oleaut32().SysFreeString(namePtr);
          const kind: MemberInfo["kind"] = invkind === 2
            ? "get"
            : invkind === 4
            ? "put"
            : invkind === 8
            ? "putref"
            : "method";
          members.push({ name: text, dispid, kind, params });
        } finally {
          vcall(info, 20, ["pointer"], "void", desc);
        }
      }
      return members;
    } finally {
      release(info);
    }
  }

  /** Whether `release()` has run. */
  get released(): boolean {
    return this.#ptr === null;
  }

  /** Releases the reference; a second call does nothing. */
  release(): void {
    const p = this.#ptr;
    if (!p) return;
    this.#ptr = null;
    releaser.unregister(this.#token);
    release(p);
  }

  /** Releases the reference. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A late-bound automation object: any member name reads a property or returns a callable
 * method; assigning to a member writes a property. Members starting with `$` are winipc's:
 * `$call(name, ...args)`, `$get(name, ...args)`, `$set(name, ...args, value)`, `$release()`,
 * `$dispatch` (the {@linkcode Dispatch}). It is iterable (`_NewEnum`) and disposable.
 *
 * @example Properties, methods, indexed properties and iteration
 * ```ts
 * import { type ComObject, createObject } from "./com.ts";
 * using dict: ComObject = createObject("Scripting.Dictionary");
 * dict.Add("a", 1);
 * dict.$set("Item", "b", 2); // dict.Item("b") = 2
 * console.log(dict.Count, dict.$get("Item", "a")); // 2 1
 * for (const key of dict) console.log(key);
 * ```
 */
export interface ComObject extends Disposable, Iterable<ComValue> {
  /** Calls a method explicitly. */
  $call(name: string, ...args: unknown[]): ComValue;
  /** Reads a property explicitly (with index arguments). */
  $get(name: string, ...args: unknown[]): ComValue;
  /** Writes a property explicitly: index arguments, then the value. */
  $set(name: string, ...args: unknown[]): void;
  /** Releases the reference. */
  $release(): void;
  /** The underlying client. */
  readonly $dispatch: Dispatch;
  /** Connects a handler to an event ({@linkcode onEvent}). */
  $on(event: string, handler: (...args: ComValue[]) => void): EventConnection;
  /** Any member of the automation object. */
  // deno-lint-ignore no-explicit-any
  [member: string]: any;
}

const proxies = new WeakMap<object, Dispatch>();

function makeProxy(d: Dispatch): ComObject {
  const target = Object.create(null);
  const proxy = new Proxy(target, {
    get(_t, prop) {
      if (typeof prop === "symbol") {
        if (prop === Symbol.dispose) return () => d.release();
        if (prop === Symbol.iterator) return () => d[Symbol.iterator]();
        if (prop === Symbol.for("Deno.customInspect")) {
          return () => `ComObject <${d.label}>${d.released ? " (released)" : ""}`;
        }
        return undefined;
      }
      switch (prop) {
        case "then":
        case "toJSON":
        case "constructor":
          return undefined;
        case "$call":
          return (name: string, ...args: unknown[]) => d.call(name, ...args);
        case "$get":
          return (name: string, ...args: unknown[]) => d.get(name, ...args);
        case "$set":
          return (name: string, ...args: unknown[]) => d.set(name, ...args);
        case "$release":
          return () => d.release();
        case "$dispatch":
          return d;
        case "$on":
          return (event: string, handler: (...args: ComValue[]) => void) =>
            onEvent(d, event, handler);
      }
      return d.access(prop);
    },
    set(_t, prop, value) {
      if (typeof prop === "symbol") return false;
      d.set(prop, value);
      return true;
    },
    has(_t, prop) {
      if (typeof prop === "symbol") return prop === Symbol.iterator || prop === Symbol.dispose;
      try {
        d.dispid(prop);
        return true;
      } catch {
        return false;
      }
    },
  }) as ComObject;
  proxies.set(proxy, d);
  return proxy;
}

function wrapDispatch(ptr: Deno.PointerObject, label?: string): ComObject {
  return adoptDispatch(ptr, label).proxy;
}

/** The IDispatch pointer behind a ComObject proxy or Dispatch, if `value` is one. */
function dispatchOf(value: unknown): Deno.PointerObject | null {
  if (value instanceof Dispatch) return value.unsafePointer;
  const d = typeof value === "object" && value !== null ? proxies.get(value) : undefined;
  return d ? d.unsafePointer : null;
}

// ---------------------------------------------------------------------------------------------
// Creating and finding objects

/**
 * Where `createObject` may run the server.
 *
 * @example Insist on an out-of-process server
 * ```ts
 * import { createObject } from "./com.ts";
 * using excel = createObject("Excel.Application", { context: "local" });
 * ```
 */
export type ServerContext = "any" | "inproc" | "local" | "remote";

/**
 * Options of {@linkcode createObject}.
 *
 * @example Create an object on another machine (DCOM)
 * ```ts
 * import { createObject } from "./com.ts";
 * using fso = createObject("Scripting.FileSystemObject", { host: "buildserver", context: "remote" });
 * ```
 */
export interface CreateObjectOptions {
  /**
   * Which kind of server to use (`CLSCTX_*`): `"any"` (default, `CLSCTX_ALL`), `"inproc"`,
   * `"local"` (an out-of-process server) or `"remote"`.
   */
  context?: ServerContext;
  /**
   * DCOM: the host to create the object on (`CoCreateInstanceEx` with a `COSERVERINFO`). The
   * host must allow remote activation for the class (DCOMCNFG). Wine ignores the host and creates
   * the object locally.
   */
  host?: string;
  /**
   * DCOM security: sent as the `COAUTHINFO` of `CoCreateInstanceEx` (with `host`), and set on the
   * returned proxy with `CoSetProxyBlanket` (see {@linkcode setProxyBlanket}).
   */
  auth?: ComAuth;
}

/**
 * DCOM authentication for {@linkcode createObject} and {@linkcode setProxyBlanket}: the
 * authentication service, level, impersonation level, and an explicit identity (else the
 * process's own).
 *
 * @example Connect as another user, with packet privacy
 * ```ts
 * import { type ComAuth } from "./com.ts";
 * const auth: ComAuth = { user: "svc", domain: "CORP", password: "secret", level: "privacy" };
 * ```
 */
export interface ComAuth {
  /** `RPC_C_AUTHN_*`: "default" (default), "winnt" (NTLM), "kerberos", "negotiate". */
  service?: "default" | "winnt" | "kerberos" | "negotiate";
  /** `RPC_C_AUTHN_LEVEL_*` (default "default"). */
  level?: "default" | "none" | "connect" | "call" | "packet" | "integrity" | "privacy";
  /** `RPC_C_IMP_LEVEL_*` (default "impersonate"). */
  impersonation?: "default" | "anonymous" | "identify" | "impersonate" | "delegate";
  /** An explicit identity (`COAUTHIDENTITY`); with `domain` and `password`. */
  user?: string;
  /** The identity's domain. */
  domain?: string;
  /** The identity's password. */
  password?: string;
}

const authSchema = z.object({
  service: z.enum(["default", "winnt", "kerberos", "negotiate"]).optional(),
  level: z.enum(["default", "none", "connect", "call", "packet", "integrity", "privacy"])
    .optional(),
  impersonation: z.enum(["default", "anonymous", "identify", "impersonate", "delegate"])
    .optional(),
  user: z.string().max(256).optional(),
  domain: z.string().max(256).optional(),
  password: z.string().max(256).optional(),
}, { error: "must be an object" }).strict();

const AUTHN_SERVICES = { default: 0xffff_ffff, winnt: 10, kerberos: 16, negotiate: 9 };
const AUTHN_LEVELS = {
  default: 0,
  none: 1,
  connect: 2,
  call: 3,
  packet: 4,
  integrity: 5,
  privacy: 6,
};
const IMP_LEVELS = { default: 0, anonymous: 1, identify: 2, impersonate: 3, delegate: 4 };

/** The native COAUTHIDENTITY (or null) and the buffers it points into. */
function authIdentity(auth: ComAuth): { ptr: Deno.PointerObject | null; keep: unknown[] } {
  if (auth.user === undefined) return { ptr: null, keep: [] };
  const user = wide(auth.user);
  const domain = wide(auth.domain ?? "");
  const password = wide(auth.password ?? "");
  // COAUTHIDENTITY { USHORT *User; ULONG UserLength; USHORT *Domain; ULONG DomainLength;
  //                  USHORT *Password; ULONG PasswordLength; ULONG Flags } = 48 bytes
  const id = new DataView(new ArrayBuffer(48));
  const at = (b: Uint16Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  id.setBigUint64(0, at(user), true);
  id.setUint32(8, auth.user.length, true);
  id.setBigUint64(16, at(domain), true);
  id.setUint32(24, (auth.domain ?? "").length, true);
  id.setBigUint64(32, at(password), true);
  id.setUint32(40, (auth.password ?? "").length, true);
  id.setUint32(44, 2, true); // SEC_WINNT_AUTH_IDENTITY_UNICODE
  return { ptr: Deno.UnsafePointer.of(id.buffer), keep: [user, domain, password, id] };
}

/**
 * Sets the security of calls through a proxy (`CoSetProxyBlanket`): authentication service and
 * level, impersonation level and identity. Only proxies (objects in another process or machine)
 * have a blanket; an in-process object gives `E_NOINTERFACE`.
 *
 * @param object The object.
 * @param auth The settings.
 * @throws {ComError} When `CoSetProxyBlanket` fails.
 *
 * @example Raise the authentication level of an object from another process
 * ```ts
 * import { getObject, setProxyBlanket } from "./com.ts";
 * using remote = getObject("my-service");
 * setProxyBlanket(remote, { level: "privacy", impersonation: "identify" });
 * ```
 */
export function setProxyBlanket(object: ComObject | Dispatch, auth: ComAuth): void {
  const opts = parseArg(authSchema, auth, "auth");
  const d = object instanceof Dispatch ? object : proxies.get(object as object);
  if (!d) throw new TypeError('Invalid argument "object": must be a COM object');
  applyBlanket(d.unsafePointer, opts, d.label);
}

function applyBlanket(ptr: Deno.PointerObject, auth: ComAuth, label: string): void {
  const identity = authIdentity(auth);
  const hr = ole32().CoSetProxyBlanket(
    ptr,
    AUTHN_SERVICES[auth.service ?? "default"],
    0xffff_ffff, // RPC_C_AUTHZ_DEFAULT
    null,
    AUTHN_LEVELS[auth.level ?? "default"],
    IMP_LEVELS[auth.impersonation ?? "impersonate"],
    identity.ptr,
    0, // EOAC_NONE
  );
  void identity.keep;
  checkHr(hr, "CoSetProxyBlanket", `Cannot set the security of ${label}`);
}

const createOptionsSchema = z.object({
  context: z.enum(["any", "inproc", "local", "remote"], {
    error: "must be any, inproc, local or remote",
  }).optional(),
  host: z.string().min(1, { error: "must not be empty" }).max(255).optional(),
  auth: authSchema.optional(),
}).strict().optional();

const progIdSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });

const CONTEXTS: Record<ServerContext, number> = {
  any: CLSCTX_ALL,
  inproc: CLSCTX_INPROC_SERVER,
  local: CLSCTX_LOCAL_SERVER,
  remote: CLSCTX_REMOTE_SERVER,
};

/**
 * Looks up a class: a ProgID (`Scripting.Dictionary`) through `CLSIDFromProgID`, or a CLSID in
 * braces as is.
 *
 * @param progId The ProgID or `{CLSID}`.
 * @returns The CLSID's 16 bytes and its string form.
 * @throws {ComError} `CO_E_CLASSSTRING` when no such class is registered.
 *
 * @example The CLSID of a ProgID
 * ```ts
 * import { classId } from "./com.ts";
 * classId("Scripting.Dictionary").text; // "{EE09B103-97E0-11CF-978F-00A02463E06F}"
 * ```
 */
export function classId(progId: string): { clsid: Uint8Array<ArrayBuffer>; text: string } {
  const name = parseArg(progIdSchema, progId, "progId");
  initCom();
  const clsid = new Uint8Array(16);
  const fn = name.startsWith("{") ? "CLSIDFromString" : "CLSIDFromProgID";
  const hr = name.startsWith("{")
    ? ole32().CLSIDFromString(wide(name), clsid)
    : ole32().CLSIDFromProgID(wide(name), clsid);
  checkHr(hr, fn, `Cannot find COM class "${name}"`);
  return { clsid, text: formatGuid(clsid) };
}

/**
 * Creates an automation object and returns it late-bound.
 *
 * @param progId A ProgID (`Scripting.Dictionary`) or a `{CLSID}`.
 * @param options Server context, DCOM host and authentication.
 * @returns The object; `using` releases it.
 * @throws {TypeError} For a bad argument.
 * @throws {ComError} `CO_E_CLASSSTRING` for an unknown ProgID, `REGDB_E_CLASSNOTREG`,
 * `E_NOINTERFACE` when the object has no IDispatch, or the error of `CoCreateInstance(Ex)`.
 *
 * @example Create an automation object
 * ```ts
 * import { createObject } from "./com.ts";
 * using fso = createObject("Scripting.FileSystemObject");
 * console.log(fso.BuildPath("C:\\a", "b"), fso.FolderExists("C:\\windows"));
 * ```
 */
export function createObject(progId: string, options?: CreateObjectOptions): ComObject {
  const opts = parseArg(createOptionsSchema, options, "options") ?? {};
  const { clsid } = classId(progId);
  const context = `Cannot create "${progId}"`;
  const ctx = CONTEXTS[opts.context ?? "any"];
  const out = new BigUint64Array(1);
  if (opts.host === undefined) {
    checkHr(
      ole32().CoCreateInstance(clsid, null, ctx, IID_IDispatch, out),
      "CoCreateInstance",
      context,
    );
    const object = wrapDispatch(Deno.UnsafePointer.create(out[0])!, progId);
    if (opts.auth) applyAuthToProxy(object, opts.auth);
    return object;
  }
  // COSERVERINFO { DWORD dwReserved1; LPWSTR pwszName; COAUTHINFO *pAuthInfo; DWORD dwReserved2 }
  const host = wide(opts.host);
  const serverInfo = new BigUint64Array(4);
  serverInfo[1] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(host)));
  // COAUTHINFO { DWORD dwAuthnSvc; DWORD dwAuthzSvc; LPWSTR pwszServerPrincName;
  //              DWORD dwAuthnLevel; DWORD dwImpersonationLevel; COAUTHIDENTITY *pAuthIdentityData;
  //              DWORD dwCapabilities } = 40 bytes
  const identity = opts.auth ? authIdentity(opts.auth) : { ptr: null, keep: [] };
  const authInfo = new DataView(new ArrayBuffer(40));
  if (opts.auth) {
    authInfo.setUint32(0, AUTHN_SERVICES[opts.auth.service ?? "default"], true);
    authInfo.setUint32(4, 0xffff_ffff, true);
    authInfo.setUint32(16, AUTHN_LEVELS[opts.auth.level ?? "default"], true);
    authInfo.setUint32(20, IMP_LEVELS[opts.auth.impersonation ?? "impersonate"], true);
    authInfo.setBigUint64(24, BigInt(Deno.UnsafePointer.value(identity.ptr)), true);
    serverInfo[2] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(authInfo.buffer)));
  }
  // MULTI_QI { const IID *pIID; IUnknown *pItf; HRESULT hr }
  const qi = new BigUint64Array(3);
  qi[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(IID_IDispatch)));
  const hr = ole32().CoCreateInstanceEx(
    clsid,
    null,
    opts.context ? ctx : CLSCTX_LOCAL_SERVER | CLSCTX_REMOTE_SERVER | CLSCTX_INPROC_SERVER,
    new Uint8Array(serverInfo.buffer),
    1,
    new Uint8Array(qi.buffer),
  );
  void host;
  void identity.keep;
  checkHr(hr, "CoCreateInstanceEx", `${context} on host "${opts.host}"`);
  const qiHr = new Int32Array(qi.buffer)[4];
  checkHr(qiHr, "CoCreateInstanceEx", `${context} on host "${opts.host}" (IDispatch)`);
  const object = wrapDispatch(Deno.UnsafePointer.create(qi[1])!, `${progId} on ${opts.host}`);
  if (opts.auth) applyAuthToProxy(object, opts.auth);
  return object;
}

/**
 * Sets the blanket on a newly created object when it is a proxy (an in-process object has none:
 * E_NOINTERFACE is not an error there); releases the object when it fails otherwise.
 */
function applyAuthToProxy(object: ComObject, auth: ComAuth): void {
  const d = object.$dispatch;
  try {
    applyBlanket(d.unsafePointer, auth, d.label);
  } catch (e) {
    if (e instanceof ComError && e.hresultName === "E_NOINTERFACE") return;
    d.release();
    throw e;
  }
}

function withRot<T>(context: string, fn: (rot: Deno.PointerObject) => T): T {
  initCom();
  const out = new BigUint64Array(1);
  checkHr(ole32().GetRunningObjectTable(0, out), "GetRunningObjectTable", context);
  const rot = Deno.UnsafePointer.create(out[0])!;
  try {
    return fn(rot);
  } finally {
    release(rot);
  }
}

function itemMoniker(name: string, context: string): Deno.PointerObject {
  const out = new BigUint64Array(1);
  checkHr(ole32().CreateItemMoniker(wide("!"), wide(name), out), "CreateItemMoniker", context);
  return Deno.UnsafePointer.create(out[0])!;
}

const rotNameSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0") && !s.includes("!"), { error: 'must not contain NUL or "!"' });

/**
 * Finds an object registered in the Running Object Table under an item moniker `!name` (by
 * {@linkcode serveObject} in this or another process), like VB's `GetObject`.
 *
 * @param name The name it was registered under.
 * @returns The object, late-bound; calls on it go to the serving process.
 * @throws {ComError} `MK_E_UNAVAILABLE` when nothing is registered under the name.
 *
 * @example Call an object another process serves
 * ```ts
 * import { getObject } from "./com.ts";
 * using calc = getObject("my-calculator");
 * console.log(calc.add(2, 3));
 * ```
 */
export function getObject(name: string): ComObject {
  const item = parseArg(rotNameSchema, name, "name");
  const context = `Cannot find "${item}" in the Running Object Table`;
  return withRot(context, (rot) => {
    const moniker = itemMoniker(item, context);
    try {
      const out = new BigUint64Array(1);
      const hr = vcall(rot, 6, ["pointer", "buffer"], "i32", moniker, out) as number;
      checkHr(hr, "IRunningObjectTable::GetObject", context);
      const unknown = Deno.UnsafePointer.create(out[0])!;
      const [dispatch, qiHr] = queryInterface(unknown, IID_IDispatch);
      release(unknown);
      if (!dispatch) {
        throw new ComError("IUnknown::QueryInterface(IDispatch)", qiHr, { context });
      }
      return wrapDispatch(dispatch, `"${item}"`);
    } finally {
      release(moniker);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Server: a TypeScript object as an IDispatch

interface ServedObject {
  target: object;
  refs: number;
  memory: Uint8Array<ArrayBuffer>; // the COM object: its first 8 bytes point at the vtable
  names: string[]; // dispid - 1 → member name; the events follow the members
  events: number; // how many of `names`, at the end, are events
  closed: boolean; // its registration was closed: calls answer CO_E_OBJNOTCONNECTED
  /** The IConnectionPointContainer and IConnectionPoint facets, when it has events. */
  container?: Uint8Array<ArrayBuffer>;
  point?: Uint8Array<ArrayBuffer>;
  sinks: Map<number, Dispatch>; // Advise cookie → the client's sink
  nextCookie: number;
  /** A client-side event sink: dispid → handler, and the outgoing interface it also answers. */
  handlers?: Map<number, (...args: ComValue[]) => void>;
  sinkIid?: Uint8Array<ArrayBuffer>;
  /** Its ITypeInfo (CreateDispTypeInfo), made at the first GetTypeInfo. */
  typeInfo?: Deno.PointerObject;
}

/**
 * The outgoing (event) interface of every object winipc serves. Its DISPIDs are those the
 * object's own `GetIDsOfNames` gives for the event names, so a late-bound client learns them
 * there.
 *
 * @example Find a served object's connection point by hand
 * ```ts
 * import { IID_WINIPC_EVENTS } from "./com.ts";
 * // IConnectionPointContainer::FindConnectionPoint(IID_WINIPC_EVENTS, &point)
 * console.log(IID_WINIPC_EVENTS.length); // 16
 * ```
 */
export const IID_WINIPC_EVENTS: Uint8Array<ArrayBuffer> = guid(
  "6F1D0E3A-5C2B-4B8E-9A7D-3E2F1C0B9A84",
);
const IID_IConnectionPointContainer = guid("B196B284-BAB4-101A-B69C-00AA00341D07");
const IID_IConnectionPoint = guid("B196B286-BAB4-101A-B69C-00AA00341D07");

const served = new Map<bigint, ServedObject>();
/** The container and connection point facets: their pointer → the object's main pointer. */
const facets = new Map<bigint, { main: Deno.PointerObject; kind: "container" | "point" }>();
let vtable: BigUint64Array<ArrayBuffer> | undefined;
let containerVtable: BigUint64Array<ArrayBuffer> | undefined;
let pointVtable: BigUint64Array<ArrayBuffer> | undefined;
// deno-lint-ignore no-explicit-any
const callbacks: Deno.UnsafeCallback<any>[] = [];

function guidEquals(p: Deno.PointerValue, iid: Uint8Array): boolean {
  if (!p) return false;
  const bytes = viewOf(p, 16);
  return bytes.every((b, i) => b === iid[i]);
}

function writePointer(out: Deno.PointerValue, value: Deno.PointerValue): void {
  if (!out) return;
  new DataView(Deno.UnsafePointerView.getArrayBuffer(out, 8)).setBigUint64(
    0,
    BigInt(Deno.UnsafePointer.value(value)),
    true,
  );
}

function memberNames(target: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key !== "constructor" && !key.startsWith("#")) names.add(key);
    }
  }
  return [...names];
}

function keyOf(p: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(p));
}

function stateOf(self: Deno.PointerValue): ServedObject | undefined {
  return self ? served.get(keyOf(self)) : undefined;
}

/** The main pointer and state behind a container or connection point facet. */
function facetOf(self: Deno.PointerValue) {
  const facet = self ? facets.get(keyOf(self)) : undefined;
  const state = facet ? served.get(keyOf(facet.main)) : undefined;
  return facet && state ? { ...facet, state } : undefined;
}

function pointerOf(memory: Uint8Array<ArrayBuffer>): Deno.PointerObject {
  return Deno.UnsafePointer.of(memory)!;
}

function fillException(excep: Deno.PointerValue, error: unknown): number {
  if (excep) {
    const message = error instanceof Error ? error.message : String(error);
    const bytes = viewOf(excep, EXCEPINFO.size);
    EXCEPINFO.write(bytes, {
      wCode: 0,
      bstrSource: allocBstr(error instanceof Error ? error.name : "Error"),
      bstrDescription: allocBstr(message),
      scode: E_FAIL,
    });
  }
  return DISP_E_EXCEPTION;
}

/** QueryInterface of a served object (any facet answers for the object's identity). */
function queryServed(
  self: Deno.PointerObject,
  state: ServedObject,
  riid: Deno.PointerValue,
  out: Deno.PointerValue,
): number {
  let answer: Deno.PointerObject | null = null;
  if (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IDispatch)) answer = self;
  else if (state.sinkIid && guidEquals(riid, state.sinkIid)) answer = self;
  else if (state.container && guidEquals(riid, IID_IConnectionPointContainer)) {
    answer = pointerOf(state.container);
  }
  if (!answer) {
    writePointer(out, null);
    return E_NOINTERFACE;
  }
  state.refs++;
  writePointer(out, answer);
  return S_OK;
}

function releaseServed(self: Deno.PointerValue): number {
  const state = stateOf(self);
  if (!state) return 0;
  const left = --state.refs;
  if (left <= 0) {
    served.delete(keyOf(self));
    const typeInfo = state.typeInfo;
    if (typeInfo) releaseAfterCallbacks(() => release(typeInfo));
    if (state.container) facets.delete(keyOf(pointerOf(state.container)));
    if (state.point) facets.delete(keyOf(pointerOf(state.point)));
    dropSinks(state);
  }
  return Math.max(0, left);
}

/** Releases every sink of an object (after the current callback, as releasing may re-enter). */
function dropSinks(state: ServedObject): void {
  const sinks = [...state.sinks.values()];
  state.sinks.clear();
  if (sinks.length) releaseAfterCallbacks(() => sinks.forEach((s) => s.release()));
}

function buildVtable(): BigUint64Array<ArrayBuffer> {
  if (vtable) return vtable;
  const queryInterfaceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const state = stateOf(self);
      if (!state) {
        writePointer(out, null);
        return E_NOINTERFACE;
      }
      return queryServed(self!, state, riid, out);
    },
  );
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const state = stateOf(self);
      return state ? ++state.refs : 0;
    },
  );
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => releaseServed(self),
  );
  const getTypeInfoCountCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (self, out) => {
      if (!out) return E_POINTER;
      const state = stateOf(self);
      const count = state && !state.handlers ? 1 : 0;
      new DataView(Deno.UnsafePointerView.getArrayBuffer(out, 4)).setUint32(0, count, true);
      return S_OK;
    },
  );
  const getTypeInfoCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "u32", "u32", "pointer"], result: "i32" } as const,
    (self, index, _lcid, out) => {
      if (!out) return E_POINTER;
      writePointer(out, null);
      const state = stateOf(self);
      if (!state || state.handlers) return E_NOTIMPL;
      if (state.closed) return CO_E_OBJNOTCONNECTED;
      if (index !== 0) return DISP_E_BADINDEX;
      try {
        state.typeInfo ??= buildTypeInfo(state);
      } catch {
        return E_FAIL;
      }
      addRef(state.typeInfo);
      writePointer(out, state.typeInfo);
      return S_OK;
    },
  );
  const getIDsOfNamesCb = new Deno.UnsafeCallback(
    {
      parameters: ["pointer", "pointer", "pointer", "u32", "u32", "pointer"],
      result: "i32",
    } as const,
    (self, _riid, names, count, _lcid, ids) => {
      const state = stateOf(self);
      if (state?.closed) return CO_E_OBJNOTCONNECTED;
      if (!state || !names || !ids) return E_POINTER;
      const nameView = new Deno.UnsafePointerView(names);
      const idView = new DataView(Deno.UnsafePointerView.getArrayBuffer(ids, count * 4));
      let hr = S_OK;
      for (let i = 0; i < count; i++) {
        const text = readWideZ(nameView.getPointer(i * 8));
        const index = i === 0
          ? state.names.findIndex((n) => n.toLowerCase() === text.toLowerCase())
          : -1;
        idView.setInt32(i * 4, index >= 0 ? index + 1 : DISPID_UNKNOWN, true);
        if (index < 0) hr = DISP_E_UNKNOWNNAME;
      }
      return hr;
    },
  );
  const invokeCb = new Deno.UnsafeCallback(
    {
      parameters: [
        "pointer",
        "i32",
        "pointer",
        "u32",
        "u16",
        "pointer",
        "pointer",
        "pointer",
        "pointer",
      ],
      result: "i32",
    } as const,
    (self, dispid, _riid, _lcid, flags, params, result, excep, _argErr) =>
      inCallback(() => invokeServed(self, dispid, flags, params, result, excep)),
  );
  const table = [
    queryInterfaceCb,
    addRefCb,
    releaseCb,
    getTypeInfoCountCb,
    getTypeInfoCb,
    getIDsOfNamesCb,
    invokeCb,
  ];
  callbacks.push(...table);
  vtable = new BigUint64Array(table.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))));
  buildEventVtables();
  return vtable;
}

/**
 * An ITypeInfo describing a served object's members (`CreateDispTypeInfo`): each method with as
 * many VARIANT parameters as the function declares (`p1`, `p2`, ...) returning a VARIANT; each
 * other property as a VARIANT property get and put. The DISPIDs are those of `GetIDsOfNames`.
 */
function buildTypeInfo(state: ServedObject): Deno.PointerObject {
  const target = state.target as Record<string, unknown>;
  const keep: Uint8Array[] = [];
  const text = (s: string) => {
    const w = wide(s);
    keep.push(new Uint8Array(w.buffer));
    return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(w)));
  };
  // METHODDATA { OLECHAR *szName; PARAMDATA *ppdata; DISPID dispid; UINT iMeth; CALLCONV cc;
  //              UINT cArgs; WORD wFlags; VARTYPE vtReturn } = 40 bytes on x64
  const entries: { name: string; dispid: number; flags: number; params: number }[] = [];
  const members = state.names.length - state.events;
  for (let i = 0; i < members; i++) {
    const name = state.names[i];
    const value = target[name];
    if (typeof value === "function") {
      entries.push({ name, dispid: i + 1, flags: DISPATCH_METHOD, params: value.length });
    } else {
      entries.push({ name, dispid: i + 1, flags: DISPATCH_PROPERTYGET, params: 0 });
      entries.push({ name, dispid: i + 1, flags: DISPATCH_PROPERTYPUT, params: 1 });
    }
  }
  const methods = new DataView(new ArrayBuffer(Math.max(1, entries.length) * 40));
  entries.forEach((e, index) => {
    const at = index * 40;
    const count = Math.min(e.params, MAX_ARGS);
    // PARAMDATA { OLECHAR *szName; VARTYPE vt } = 16 bytes
    const params = new DataView(new ArrayBuffer(Math.max(1, count) * 16));
    keep.push(new Uint8Array(params.buffer));
    for (let p = 0; p < count; p++) {
      params.setBigUint64(p * 16, text(`p${p + 1}`), true);
      params.setUint16(p * 16 + 8, VT_VARIANT, true);
    }
    methods.setBigUint64(at, text(e.name), true);
    methods.setBigUint64(
      at + 8,
      count ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(params.buffer))) : 0n,
      true,
    );
    methods.setInt32(at + 16, e.dispid, true);
    methods.setUint32(at + 20, 7 + index, true); // after IDispatch's seven slots
    methods.setUint32(at + 24, 4, true); // CC_STDCALL
    methods.setUint32(at + 28, count, true);
    methods.setUint16(at + 32, e.flags, true);
    methods.setUint16(at + 34, e.flags === DISPATCH_PROPERTYPUT ? VT_VOID : VT_VARIANT, true);
  });
  // INTERFACEDATA { METHODDATA *pmethdata; UINT cMembers }
  const data = new BigUint64Array(2);
  data[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(methods.buffer)));
  data[1] = BigInt(entries.length);
  const out = new BigUint64Array(1);
  const hr = oleaut32().CreateDispTypeInfo(
    new Uint8Array(data.buffer),
    LOCALE_USER_DEFAULT,
    new Uint8Array(out.buffer),
  );
  void keep;
  checkHr(hr, "CreateDispTypeInfo", "Cannot describe the served object");
  return Deno.UnsafePointer.create(out[0])!;
}

/** The vtables of IConnectionPointContainer and IConnectionPoint. */
function buildEventVtables(): void {
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const facet = facetOf(self);
      return facet ? ++facet.state.refs : 0;
    },
  );
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const facet = facetOf(self);
      return facet ? releaseServed(facet.main) : 0;
    },
  );
  const containerQueryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (!facet) {
        writePointer(out, null);
        return E_NOINTERFACE;
      }
      return queryServed(facet.main, facet.state, riid, out);
    },
  );
  const enumPointsCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      writePointer(out, null);
      return E_NOTIMPL;
    },
  );
  const findPointCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      writePointer(out, null);
      const facet = facetOf(self);
      if (!facet?.state.point) return E_FAIL;
      if (facet.state.closed) return CO_E_OBJNOTCONNECTED;
      if (!guidEquals(riid, IID_WINIPC_EVENTS) && !guidEquals(riid, IID_IDispatch)) {
        return CONNECT_E_NOCONNECTION;
      }
      facet.state.refs++;
      writePointer(out, pointerOf(facet.state.point));
      return S_OK;
    },
  );
  const pointQueryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (facet && (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IConnectionPoint))) {
        facet.state.refs++;
        writePointer(out, self);
        return S_OK;
      }
      writePointer(out, null);
      return E_NOINTERFACE;
    },
  );
  const getInterfaceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      if (!out) return E_POINTER;
      viewOf(out, 16).set(IID_WINIPC_EVENTS);
      return S_OK;
    },
  );
  const getContainerCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (self, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (!facet?.state.container) return E_FAIL;
      facet.state.refs++;
      writePointer(out, pointerOf(facet.state.container));
      return S_OK;
    },
  );
  const adviseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, sink, cookieOut) =>
      inCallback(() => {
        if (!sink || !cookieOut) return E_POINTER;
        const facet = facetOf(self);
        if (!facet) return E_FAIL;
        if (facet.state.closed) return CO_E_OBJNOTCONNECTED;
        if (facet.state.sinks.size >= MAX_SINKS) return CONNECT_E_CANNOTCONNECT;
        const [dispatch] = queryInterface(sink, IID_IDispatch);
        if (!dispatch) return CONNECT_E_CANNOTCONNECT;
        const cookie = facet.state.nextCookie++;
        facet.state.sinks.set(cookie, adoptDispatch(dispatch, "event sink"));
        new DataView(Deno.UnsafePointerView.getArrayBuffer(cookieOut, 4)).setUint32(
          0,
          cookie,
          true,
        );
        return S_OK;
      }),
  );
  const unadviseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "u32"], result: "i32" } as const,
    (self, cookie) =>
      inCallback(() => {
        const facet = facetOf(self);
        const sink = facet?.state.sinks.get(cookie);
        if (!facet || !sink) return CONNECT_E_NOCONNECTION;
        facet.state.sinks.delete(cookie);
        releaseAfterCallbacks(() => sink.release());
        return S_OK;
      }),
  );
  const enumConnectionsCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      writePointer(out, null);
      return E_NOTIMPL;
    },
  );
  const container = [containerQueryCb, addRefCb, releaseCb, enumPointsCb, findPointCb];
  const point = [
    pointQueryCb,
    addRefCb,
    releaseCb,
    getInterfaceCb,
    getContainerCb,
    adviseCb,
    unadviseCb,
    enumConnectionsCb,
  ];
  callbacks.push(containerQueryCb, addRefCb, releaseCb, enumPointsCb, findPointCb);
  callbacks.push(pointQueryCb, getInterfaceCb, getContainerCb, adviseCb, unadviseCb);
  callbacks.push(enumConnectionsCb);
  const table = (cbs: Deno.UnsafeCallback[]) =>
    new BigUint64Array(cbs.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))));
  // deno-lint-ignore no-explicit-any
  containerVtable = table(container as any);
  // deno-lint-ignore no-explicit-any
  pointVtable = table(point as any);
}

/** The most sinks one served object accepts (each is a reference into another process). */
const MAX_SINKS = 256;

function readWideZ(p: Deno.PointerValue): string {
  if (!p) return "";
  const view = new Deno.UnsafePointerView(p);
  let out = "";
  for (let i = 0; i < 4096; i++) {
    const unit = view.getUint16(i * 2);
    if (unit === 0) break;
    out += String.fromCharCode(unit);
  }
  return out;
}

function invokeServed(
  self: Deno.PointerValue,
  dispid: number,
  flags: number,
  params: Deno.PointerValue,
  resultPtr: Deno.PointerValue,
  excep: Deno.PointerValue,
): number {
  const state = stateOf(self);
  if (!state) return E_FAIL;
  if (state.closed) return CO_E_OBJNOTCONNECTED;
  const handler = state.handlers ? state.handlers.get(dispid) : undefined;
  const name = state.names[dispid - 1];
  if (state.handlers) {
    // An event sink: events it does not listen to are answered and ignored.
    if (!handler) return S_OK;
  } else if (name === undefined || dispid > state.names.length - state.events) {
    return DISP_E_MEMBERNOTFOUND;
  }
  try {
    const p = params ? DISPPARAMS.read(viewOf(params, DISPPARAMS.size)) : null;
    const count = p?.cArgs ?? 0;
    if (count > MAX_ARGS || (count > 0 && !p?.rgvarg)) return DISP_E_BADPARAMCOUNT;
    const args: ComValue[] = [];
    for (let i = count - 1; i >= 0; i--) {
      args.push(readVariant(Deno.UnsafePointer.offset(p!.rgvarg!, i * VARIANT_SIZE)!));
    }
    if (handler) {
      handler(...args);
      return S_OK;
    }
    const target = state.target as Record<string, unknown>;
    let value: unknown;
    if (flags & (DISPATCH_PROPERTYPUT | DISPATCH_PROPERTYPUTREF)) {
      if (typeof target[name] === "function") return DISP_E_MEMBERNOTFOUND;
      target[name] = args.at(-1);
      return S_OK;
    }
    const member = target[name];
    if (typeof member === "function") {
      if (!(flags & DISPATCH_METHOD)) return DISP_E_MEMBERNOTFOUND;
      value = member.apply(target, args);
      if (value instanceof Promise) {
        value.catch(() => undefined);
        throw new TypeError(
          `"${name}" returned a Promise: COM calls are synchronous, serve synchronous methods`,
        );
      }
    } else {
      if (count > 0) return DISP_E_BADPARAMCOUNT;
      value = member;
    }
    if (resultPtr) writeVariant(viewOf(resultPtr, VARIANT_SIZE), 0, value, false);
    return S_OK;
  } catch (e) {
    return fillException(excep, e);
  }
}

const VT_VOID = 24;

/** The most arguments a served method or event handler accepts. */
const MAX_ARGS = 64;

interface ExposeOptions {
  events?: readonly string[];
  handlers?: Map<number, (...args: ComValue[]) => void>;
  sinkIid?: Uint8Array<ArrayBuffer>;
}

function facetMemory(table: BigUint64Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const memory = new Uint8Array(16);
  new DataView(memory.buffer).setBigUint64(
    0,
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(table))),
    true,
  );
  return memory;
}

/** Makes a new COM object for `target` and returns its IDispatch with one reference. */
function exposeDispatch(target: object, options: ExposeOptions = {}): Deno.PointerObject {
  const table = buildVtable();
  const memory = facetMemory(table);
  const self = pointerOf(memory);
  const members = options.handlers ? [] : memberNames(target);
  const events = [...(options.events ?? [])];
  const state: ServedObject = {
    target,
    refs: 1,
    memory,
    names: [...members, ...events],
    events: events.length,
    closed: false,
    sinks: new Map(),
    nextCookie: 1,
    handlers: options.handlers,
    sinkIid: options.sinkIid,
  };
  if (events.length) {
    state.container = facetMemory(containerVtable!);
    state.point = facetMemory(pointVtable!);
    facets.set(keyOf(pointerOf(state.container)), { main: self, kind: "container" });
    facets.set(keyOf(pointerOf(state.point)), { main: self, kind: "point" });
  }
  served.set(keyOf(self), state);
  return self;
}

const eventNameSchema = z.string({ error: "must be a string" })
  .regex(/^[A-Za-z_]\w{0,254}$/, { error: "must be a name (letters, digits, _)" });
const eventsSchema = z.array(eventNameSchema, { error: "must be an array of event names" })
  .max(1024, { error: "must have at most 1024 events" })
  .optional();

/** Checks the declared events against each other and the target's members. */
function checkEvents(target: object, events: readonly string[] | undefined): string[] {
  const list = parseArg(eventsSchema, events, "events") ?? [];
  const seen = new Set(memberNames(target).map((n) => n.toLowerCase()));
  for (const event of list) {
    if (seen.has(event.toLowerCase())) {
      throw new TypeError(
        `Invalid argument "events": "${event}" is declared twice or is also a member`,
      );
    }
    seen.add(event.toLowerCase());
  }
  return list;
}

/**
 * Raises an event of a served object: every client connected to it (through
 * `IConnectionPoint::Advise`, as {@linkcode events} does) receives it, in its own process. The
 * event must be declared in the `events` option of {@linkcode serveObject} or
 * {@linkcode registerClass}. The calls are synchronous: each sink runs its handler before the
 * next is called. A sink that has gone away (its process ended) is dropped.
 *
 * @param target The served TypeScript object (the one passed to `serveObject`, or made by a
 * class's `create`).
 * @param event The event's name, as declared.
 * @param args The event's arguments.
 * @returns How many sinks received it.
 * @throws {TypeError} When `target` is not served or has no such event.
 *
 * @example Raise an event from a served object
 * ```ts
 * import { raiseEvent, serveObject } from "./com.ts";
 * const clock = {
 *   tick(n: number) {
 *     raiseEvent(clock, "Tick", n);
 *   },
 * };
 * using reg = serveObject("my-clock", clock, { events: ["Tick"] });
 * ```
 */
export function raiseEvent(target: object, event: string, ...args: unknown[]): number {
  const name = parseArg(eventNameSchema, event, "event");
  let found = false;
  let delivered = 0;
  for (const state of [...served.values()]) {
    if (state.target !== target || state.handlers) continue;
    const index = state.names.findIndex((n, i) =>
      i >= state.names.length - state.events && n.toLowerCase() === name.toLowerCase()
    );
    if (index < 0) continue;
    found = true;
    if (state.closed) continue;
    for (const [cookie, sink] of [...state.sinks]) {
      if (sink.released) continue;
      const error = invokeById(sink, index + 1, args);
      if (!error) delivered++;
      else if (
        [RPC_E_DISCONNECTED, RPC_S_SERVER_UNAVAILABLE, CO_E_OBJNOTCONNECTED].some((hr) =>
          error.hresult === hr >>> 0
        )
      ) {
        state.sinks.delete(cookie);
        releaseAfterCallbacks(() => sink.release());
      }
    }
  }
  if (!found) {
    const declared = [...served.values()].some((s) => s.target === target && !s.handlers);
    throw new TypeError(
      declared
        ? `Cannot raise "${name}": the served object declares no such event`
        : `Cannot raise "${name}": the object is not served over COM`,
    );
  }
  return delivered;
}

/**
 * A TypeScript object served over COM and registered in the Running Object Table. Close it to
 * revoke the registration.
 *
 * @example Serve until told to stop
 * ```ts
 * import { serveObject } from "./com.ts";
 * const stopped = Promise.withResolvers<void>();
 * using registration = serveObject("my-service", { stop: () => stopped.resolve() });
 * console.log(`serving as ${registration.name}`);
 * await stopped.promise;
 * ```
 */
export class ComRegistration implements Disposable {
  readonly #name: string;
  #cookie: number | null;
  readonly #object: Deno.PointerObject;
  readonly #lease: PumpLease;

  static {
    registration = (name, cookie, object, lease) =>
      new ComRegistration(name, cookie, object, lease);
  }

  /** Holds a registration that {@linkcode serveObject} made. */
  private constructor(
    name: string,
    cookie: number,
    object: Deno.PointerObject,
    lease: PumpLease,
  ) {
    this.#name = name;
    this.#cookie = cookie;
    this.#object = object;
    this.#lease = lease;
  }

  /** The name clients pass to {@linkcode getObject}. */
  get name(): string {
    return this.#name;
  }

  /** The object's `IDispatch` pointer in this process. */
  get unsafePointer(): Deno.PointerObject {
    return this.#object;
  }

  /**
   * Revokes the registration (`IRunningObjectTable::Revoke`); a second call does nothing. From
   * then on the object answers every call, also from clients that still hold it, with
   * `CO_E_OBJNOTCONNECTED`. Called from inside one of the object's own methods, the revocation
   * and the release of the object run once that call has returned.
   */
  close(): void {
    const cookie = this.#cookie;
    if (cookie === null) return;
    this.#cookie = null;
    const state = stateOf(this.#object);
    if (state) {
      state.closed = true;
      dropSinks(state);
    }
    releaseAfterCallbacks(() => {
      try {
        withRot(`Cannot revoke "${this.#name}"`, (rot) => {
          vcall(rot, 4, ["u32"], "i32", cookie);
        });
        release(this.#object);
      } finally {
        this.#lease.release();
      }
    });
  }

  /** Revokes the registration. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Options of {@linkcode serveObject}.
 *
 * @example Declare the events a served object raises
 * ```ts
 * import { type ServeOptions } from "./com.ts";
 * const options: ServeOptions = { events: ["Tick", "Done"] };
 * ```
 */
export interface ServeOptions {
  /**
   * The events the object raises with {@linkcode raiseEvent}: names (letters, digits, `_`),
   * distinct from its members. Clients connect through `IConnectionPointContainer` (the object
   * then has one connection point, {@linkcode IID_WINIPC_EVENTS}, whose DISPIDs its
   * `GetIDsOfNames` gives for the event names).
   */
  events?: readonly string[];
}

const serveOptionsSchema = z.object({ events: z.array(z.string()).optional() }, {
  error: "must be an object",
}).strict();

/**
 * Serves a TypeScript object over COM: wraps it in an `IDispatch` and registers it in the Running
 * Object Table under the item moniker `!name`, so other processes find it with
 * {@linkcode getObject} and call it. Methods (own or inherited) are callable; other properties
 * can be read and written. Member names match case-insensitively, as in VB. A method that throws
 * reaches the caller as `DISP_E_EXCEPTION` with the error's name and message. Methods must be
 * synchronous (COM calls are). While registered, the process's message pump (`_pump.ts`) runs
 * on this thread and keeps the process alive until `close()`.
 *
 * @param name The name to register under (1 to 255 characters, no `!`).
 * @param target The object.
 * @param options Its events.
 * @returns The registration; `close()` revokes it.
 * @throws {TypeError} For a bad name or a target that is not an object.
 * @throws {ComError} When the Running Object Table refuses the registration.
 *
 * @example Serve an object to other processes
 * ```ts
 * import { serveObject } from "./com.ts";
 * using reg = serveObject("my-calculator", {
 *   add: (a: number, b: number) => a + b,
 *   version: "1.0",
 * });
 * ```
 */
export function serveObject(
  name: string,
  target: object,
  options: ServeOptions = {},
): ComRegistration {
  const item = parseArg(rotNameSchema, name, "name");
  if ((typeof target !== "object" && typeof target !== "function") || target === null) {
    throw new TypeError('Invalid argument "target": must be an object');
  }
  const opts = parseArg(serveOptionsSchema, options, "options");
  const events = checkEvents(target, opts.events);
  const context = `Cannot register "${item}" in the Running Object Table`;
  initCom();
  const object = exposeDispatch(target, { events });
  try {
    const cookie = withRot(context, (rot) => {
      const moniker = itemMoniker(item, context);
      try {
        const out = new Uint32Array(1);
        const hr = vcall(
          rot,
          3,
          ["u32", "pointer", "pointer", "buffer"],
          "i32",
          ROTFLAGS_REGISTRATIONKEEPSALIVE,
          object,
          moniker,
          out,
        ) as number;
        checkHr(hr, "IRunningObjectTable::Register", context);
        return out[0];
      } finally {
        release(moniker);
      }
    });
    return registration(item, cookie, object, pump.attach());
  } catch (e) {
    release(object);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Client: events through IConnectionPointContainer / IConnectionPoint

/**
 * A connection to an object's events (`IConnectionPoint::Advise`). While it is open, this
 * process pumps messages so events arrive, and stays alive; `close()` (or `using`) calls
 * `Unadvise`.
 *
 * @example Listen until disposed
 * ```ts
 * import { createObject, onEvent } from "./com.ts";
 * using clock = createObject("Demo.Clock");
 * using _connection = onEvent(clock, "Tick", (n) => console.log("tick", n));
 * clock.startTicks(3);
 * ```
 */
export interface EventConnection extends Disposable {
  /** The event's name. */
  readonly event: string;
  /**
   * The outgoing interface the sink was advised on, in registry form (`{...}`): winipc's own
   * for objects winipc serves, else the one the object's type library declares with the event.
   */
  readonly interfaceId: string;
  /** The event's DISPID in that interface. */
  readonly dispid: number;
  /** Unadvises; a second call does nothing. */
  close(): void;
}

/** An event found: the owned connection point, the event's DISPID, the sink's IID. */
interface FoundEvent {
  point: Deno.PointerObject;
  dispid: number;
  iid: Uint8Array<ArrayBuffer>;
}

/**
 * Finds the object's connection point and the event's DISPID. A winipc-served object has one
 * point, {@linkcode IID_WINIPC_EVENTS}, whose DISPIDs its `GetIDsOfNames` gives; any other object
 * is asked for its points (`EnumConnectionPoints`), and each point's interface is looked up in
 * the type library that holds the object's type information, whose names give the DISPID.
 */
function findEvent(d: Dispatch, event: string): FoundEvent {
  const context = `Cannot connect to event "${event}" of ${d.label}`;
  const [container, hr] = queryInterface(d.unsafePointer, IID_IConnectionPointContainer);
  if (!container) {
    throw new ComError("IUnknown::QueryInterface(IConnectionPointContainer)", hr, {
      context: `${context}: the object has no events`,
    });
  }
  let point: Deno.PointerObject;
  try {
    const out = new BigUint64Array(1);
    const found = vcall(
      container,
      4,
      ["buffer", "buffer"],
      "i32",
      IID_WINIPC_EVENTS,
      out,
    ) as number;
    if (found === CONNECT_E_NOCONNECTION) {
      const typed = findTypedEvent(d, container, event);
      if (typed.found) return typed.found;
      throw typed.described
        ? new ComError("ITypeInfo::GetIDsOfNames", DISP_E_UNKNOWNNAME, {
          context: `${d.label} has no event "${event}" (none of its outgoing interfaces has it)`,
        })
        : new ComError("IConnectionPointContainer::FindConnectionPoint", found, {
          context: `${context}: no type library describes its outgoing interfaces`,
        });
    }
    checkHr(found, "IConnectionPointContainer::FindConnectionPoint", context);
    point = Deno.UnsafePointer.create(out[0])!;
  } finally {
    release(container);
  }
  let dispid: number;
  try {
    dispid = d.dispid(event);
  } catch (e) {
    release(point);
    if (e instanceof ComError && e.hresultName === "DISP_E_UNKNOWNNAME") {
      throw new ComError("IDispatch::GetIDsOfNames", e.hresult, {
        context: `${d.label} has no event "${event}"`,
      });
    }
    throw e;
  }
  return { point, dispid, iid: IID_WINIPC_EVENTS };
}

/** TYPEATTR's GUID, type kind and implemented-interface count (then ReleaseTypeAttr). */
function typeIdentity(
  info: Deno.PointerObject,
): { guid: Uint8Array<ArrayBuffer>; typekind: number; implTypes: number } | null {
  const out = new BigUint64Array(1);
  if (failed(vcall(info, 3, ["buffer"], "i32", out) as number) || !out[0]) return null;
  const attr = Deno.UnsafePointer.create(out[0])!;
  try {
    const view = new Deno.UnsafePointerView(attr);
    const guid = new Uint8Array(16);
    view.copyInto(guid, 0);
    // TYPEATTR: guid @0, typekind @44, cImplTypes @52
    return { guid, typekind: view.getUint32(44), implTypes: view.getUint16(52) };
  } finally {
    vcall(info, 19, ["pointer"], "void", attr);
  }
}

/** The object's type information (owned) and the library that holds it (owned), or null. */
function typeInfoAndLib(
  d: Dispatch,
): { info: Deno.PointerObject; lib: Deno.PointerObject } | null {
  const count = new Uint32Array(1);
  if (failed(vcall(d.unsafePointer, 3, ["buffer"], "i32", count) as number) || !count[0]) {
    return null;
  }
  const out = new BigUint64Array(1);
  const hr = vcall(
    d.unsafePointer,
    4,
    ["u32", "u32", "buffer"],
    "i32",
    0,
    LOCALE_USER_DEFAULT,
    out,
  ) as number;
  if (failed(hr) || !out[0]) return null;
  const info = Deno.UnsafePointer.create(out[0])!;
  const index = new Uint32Array(1);
  // ITypeInfo::GetContainingTypeLib
  if (failed(vcall(info, 18, ["buffer", "buffer"], "i32", out, index) as number) || !out[0]) {
    release(info);
    return null;
  }
  return { info, lib: Deno.UnsafePointer.create(out[0])! };
}

function sameGuid(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === 16 && a.every((byte, i) => byte === b[i]);
}

const IMPLTYPEFLAG_FDEFAULT = 1;
const IMPLTYPEFLAG_FSOURCE = 2;
/** Limits on what a type library is walked for (a library is data another program wrote). */
const MAX_LIB_TYPES = 20_000;

/** The referenced type information of a coclass's `index`th implemented interface (owned). */
function implType(coclass: Deno.PointerObject, index: number): Deno.PointerObject | null {
  const href = new Uint32Array(1);
  if (failed(vcall(coclass, 8, ["u32", "buffer"], "i32", index, href) as number)) return null;
  const out = new BigUint64Array(1);
  if (failed(vcall(coclass, 14, ["u32", "buffer"], "i32", href[0], out) as number) || !out[0]) {
    return null;
  }
  return Deno.UnsafePointer.create(out[0]);
}

/**
 * The outgoing (`[source]`) interfaces of the coclass that implements the object's interface
 * `iface`, as its type library declares them, the default one first: type information (owned)
 * and IID of each.
 */
function sourceInterfaces(
  lib: Deno.PointerObject,
  self: { guid: Uint8Array<ArrayBuffer>; typekind: number },
  selfInfo: Deno.PointerObject,
): { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer> }[] {
  const out = new BigUint64Array(1);
  const kind = new Uint32Array(1);
  const coclasses: Deno.PointerObject[] = [];
  if (self.typekind === TKIND_COCLASS) {
    addRef(selfInfo);
    coclasses.push(selfInfo);
  } else {
    // ITypeLib::GetTypeInfoCount
    const count = Math.min(vcall(lib, 3, [], "u32") as number, MAX_LIB_TYPES);
    for (let i = 0; i < count; i++) {
      // ITypeLib::GetTypeInfoType, then GetTypeInfo for the coclasses
      if (failed(vcall(lib, 5, ["u32", "buffer"], "i32", i, kind) as number)) continue;
      if (kind[0] !== TKIND_COCLASS) continue;
      if (failed(vcall(lib, 4, ["u32", "buffer"], "i32", i, out) as number) || !out[0]) continue;
      const coclass = Deno.UnsafePointer.create(out[0])!;
      const attr = typeIdentity(coclass);
      let implements_ = false;
      for (let j = 0; attr && j < attr.implTypes && !implements_; j++) {
        const flags = new Int32Array(1);
        if (failed(vcall(coclass, 9, ["u32", "buffer"], "i32", j, flags) as number)) continue;
        if (flags[0] & IMPLTYPEFLAG_FSOURCE) continue;
        const ref = implType(coclass, j);
        if (!ref) continue;
        implements_ = sameGuid(typeIdentity(ref)?.guid, self.guid);
        release(ref);
      }
      if (implements_) coclasses.push(coclass);
      else release(coclass);
    }
  }
  const found: { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer>; first: boolean }[] = [];
  for (const coclass of coclasses) {
    const attr = typeIdentity(coclass);
    for (let j = 0; attr && j < attr.implTypes; j++) {
      const flags = new Int32Array(1);
      if (failed(vcall(coclass, 9, ["u32", "buffer"], "i32", j, flags) as number)) continue;
      if (!(flags[0] & IMPLTYPEFLAG_FSOURCE)) continue;
      const ref = implType(coclass, j);
      const iid = ref && typeIdentity(ref)?.guid;
      if (!ref || !iid) {
        if (ref) release(ref);
        continue;
      }
      if (found.some((f) => sameGuid(f.iid, iid))) release(ref);
      else found.push({ info: ref, iid, first: (flags[0] & IMPLTYPEFLAG_FDEFAULT) !== 0 });
    }
    release(coclass);
  }
  found.sort((a, b) => Number(b.first) - Number(a.first));
  return found.map(({ info, iid }) => ({ info, iid }));
}

/**
 * Looks for `event` among the outgoing interfaces that the object's type library declares for
 * its coclass (Office, Internet Explorer, MSXML, ADO, the script control and other automation
 * objects describe their events so): the event's DISPID there (`ITypeInfo::GetIDsOfNames`) and
 * that interface's connection point. `described` says whether any outgoing interface was found.
 */
function findTypedEvent(
  d: Dispatch,
  container: Deno.PointerObject,
  event: string,
): { found?: FoundEvent; described: boolean } {
  const typed = typeInfoAndLib(d);
  if (!typed) return { described: false };
  let sources: { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer> }[] = [];
  try {
    const self = typeIdentity(typed.info);
    if (self) sources = sourceInterfaces(typed.lib, self, typed.info);
  } finally {
    release(typed.info);
    release(typed.lib);
  }
  const name = wide(event);
  const names = new BigUint64Array([BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name)))]);
  const memid = new Int32Array(1);
  const out = new BigUint64Array(1);
  let found: FoundEvent | undefined;
  for (const { info, iid } of sources) {
    if (!found) {
      // ITypeInfo::GetIDsOfNames: case-insensitive, as IDispatch's
      const hr = vcall(info, 10, ["buffer", "u32", "buffer"], "i32", names, 1, memid) as number;
      if (!failed(hr)) {
        const at = vcall(container, 4, ["buffer", "buffer"], "i32", iid, out) as number;
        checkHr(
          at,
          "IConnectionPointContainer::FindConnectionPoint",
          `Cannot connect to event "${event}" of ${d.label}`,
        );
        found = { point: Deno.UnsafePointer.create(out[0])!, dispid: memid[0], iid };
      }
    }
    release(info);
  }
  void name;
  return { found, described: sources.length > 0 };
}

/**
 * Connects a handler to an event of a COM object: a sink implemented here as an `IDispatch` is
 * passed to the object's connection point (`IConnectionPointContainer::FindConnectionPoint`,
 * `IConnectionPoint::Advise`). Works with objects winipc serves ({@linkcode serveObject},
 * {@linkcode raiseEvent}), whose event DISPIDs their `GetIDsOfNames` gives, and with objects whose
 * type library declares their outgoing interfaces (a coclass's `[source]` dispinterfaces, as
 * Office, Internet Explorer, MSXML and ADO describe theirs): the coclass that implements the
 * object's interface is found in the library that holds its type information, the event's
 * DISPID read from the outgoing interface that has it, and the sink advised on that interface.
 *
 * Under Wine, MSXML's `DOMDocument` accepts such a sink but never raises its events, the script
 * control's connection points refuse `Advise` (`E_NOTIMPL`), and ADO's refuse a dispatch sink
 * (`E_FAIL`).
 *
 * @param object The object (from {@linkcode createObject} or {@linkcode getObject}).
 * @param event The event's name (case-insensitive).
 * @param handler Called with the event's arguments, on this thread, as each event arrives.
 * @returns The connection; close it to stop.
 * @throws {TypeError} For a bad argument.
 * @throws {ComError} When the object has no events (`E_NOINTERFACE`), no such event
 * (`DISP_E_UNKNOWNNAME`), or refuses the connection.
 *
 * @example Print each Tick of an object another process serves
 * ```ts
 * import { getObject, onEvent } from "./com.ts";
 * using clock = getObject("my-clock");
 * using _ticks = onEvent(clock, "Tick", (n) => console.log("tick", n));
 * ```
 */
export function onEvent(
  object: ComObject | Dispatch,
  event: string,
  handler: (...args: ComValue[]) => void,
): EventConnection {
  const name = parseArg(eventNameSchema, event, "event");
  if (typeof handler !== "function") {
    throw new TypeError('Invalid argument "handler": must be a function');
  }
  const d = object instanceof Dispatch ? object : proxies.get(object as object);
  if (!d) throw new TypeError('Invalid argument "object": must be a COM object');
  initCom();
  const { point, dispid, iid } = findEvent(d, name);
  const sink = exposeDispatch({}, {
    handlers: new Map([[dispid, handler]]),
    sinkIid: iid,
  });
  let cookie: number;
  try {
    const out = new Uint32Array(1);
    const hr = vcall(point, 5, ["pointer", "buffer"], "i32", sink, out) as number;
    checkHr(hr, "IConnectionPoint::Advise", `Cannot connect to event "${name}" of ${d.label}`);
    cookie = out[0];
  } catch (e) {
    release(sink);
    release(point);
    throw e;
  }
  const lease = pump.attach();
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    releaseAfterCallbacks(() => {
      try {
        vcall(point, 6, ["u32"], "i32", cookie);
      } finally {
        release(point);
        release(sink);
        lease.release();
      }
    });
  };
  return {
    event: name,
    interfaceId: formatGuid(iid),
    dispid,
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * The events of one name as an async iterable: each item is the event's arguments. Ending the
 * loop (`break`, `return`, an exception) disconnects. Up to 10,000 events wait for the loop; later
 * ones are dropped until it catches up.
 *
 * @param object The object.
 * @param event The event's name.
 * @returns The events; also disposable.
 * @throws {ComError} As {@linkcode onEvent}, at once.
 *
 * @example Take three ticks
 * ```ts
 * import { events, getObject } from "./com.ts";
 * using clock = getObject("my-clock");
 * let seen = 0;
 * for await (const [n] of events(clock, "Tick")) {
 *   console.log("tick", n);
 *   if (++seen === 3) break;
 * }
 * ```
 */
export function events(
  object: ComObject | Dispatch,
  event: string,
): AsyncIterableIterator<ComValue[]> & Disposable {
  const queue: ComValue[][] = [];
  let wake: (() => void) | undefined;
  const connection = onEvent(object, event, (...args) => {
    if (queue.length < 10_000) queue.push(args);
    wake?.();
  });
  let done = false;
  const finish = () => {
    done = true;
    connection.close();
    wake?.();
  };
  const iterator: AsyncIterableIterator<ComValue[]> & Disposable = {
    async next(): Promise<IteratorResult<ComValue[]>> {
      while (!queue.length && !done) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      if (queue.length) return { value: queue.shift()!, done: false };
      return { value: undefined, done: true };
    },
    return(): Promise<IteratorResult<ComValue[]>> {
      finish();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
    [Symbol.dispose]: finish,
  };
  return iterator;
}

// ---------------------------------------------------------------------------------------------
// Server: an activatable class (CoRegisterClassObject) with per-user registration

/**
 * Options of {@linkcode registerClass}.
 *
 * @example A class other processes create by ProgID
 * ```ts
 * import { type ClassOptions } from "./com.ts";
 * const options: ClassOptions = {
 *   progId: "Demo.Calculator",
 *   clsid: "{8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}",
 *   create: () => ({ add: (a: number, b: number) => a + b }),
 *   register: true,
 * };
 * ```
 */
export interface ClassOptions {
  /** The ProgID (`Vendor.Name` or `Vendor.Name.1`; letters, digits, `_`, dots; at most 39). */
  progId: string;
  /** The CLSID in registry form, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`. */
  clsid: string;
  /** Makes the TypeScript object for each `CoCreateInstance` (synchronous). */
  create: () => object;
  /** The events each object raises with {@linkcode raiseEvent} (as in {@linkcode ServeOptions}). */
  events?: readonly string[];
  /**
   * Also write the per-user registration under `HKCU\Software\Classes` (ProgID → CLSID, and
   * `CLSID\{...}\LocalServer32` naming this program), so `CreateObject("<ProgID>")` finds the
   * class; `unregister()` deletes the keys it created. Default `false`.
   */
  register?: boolean;
}

const classOptionsSchema = z.object({
  progId: z.string({ error: "must be a string" }).max(39, {
    error: "must be at most 39 characters",
  })
    .regex(/^[A-Za-z_]\w*(\.\w+)+$/, {
      error: 'must be a ProgID like "Vendor.Name" (letters, digits, _ and dots)',
    }),
  clsid: z.string({ error: "must be a string" }).regex(
    /^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$/,
    { error: "must be a CLSID like {8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}" },
  ),
  create: z.custom<() => object>((v) => typeof v === "function", { error: "must be a function" }),
  events: z.array(z.string()).optional(),
  register: z.boolean({ error: "must be a boolean" }).optional(),
}, { error: "must be an object" }).strict();

const IID_IClassFactory = guid("00000001-0000-0000-C000-000000000046");
const CLASS_E_NOAGGREGATION = 0x8004_0110 | 0;

interface Factory {
  create: () => object;
  events: string[];
  refs: number;
  memory: Uint8Array<ArrayBuffer>;
}

const factories = new Map<bigint, Factory>();
let factoryVtable: BigUint64Array<ArrayBuffer> | undefined;

function buildFactoryVtable(): BigUint64Array<ArrayBuffer> {
  if (factoryVtable) return factoryVtable;
  buildVtable();
  const queryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const factory = self ? factories.get(keyOf(self)) : undefined;
      if (factory && (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IClassFactory))) {
        factory.refs++;
        writePointer(out, self);
        return S_OK;
      }
      writePointer(out, null);
      return E_NOINTERFACE;
    },
  );
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const factory = self ? factories.get(keyOf(self)) : undefined;
      return factory ? ++factory.refs : 0;
    },
  );
  // The factory's memory is held by its ClassRegistration; the count is informational.
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const factory = self ? factories.get(keyOf(self)) : undefined;
      return factory ? Math.max(0, --factory.refs) : 0;
    },
  );
  const createInstanceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, outer, riid, out) =>
      inCallback(() => {
        if (!out) return E_POINTER;
        writePointer(out, null);
        if (outer) return CLASS_E_NOAGGREGATION;
        const factory = self ? factories.get(keyOf(self)) : undefined;
        if (!factory) return E_FAIL;
        let target: unknown;
        try {
          target = factory.create();
        } catch {
          return E_FAIL;
        }
        if ((typeof target !== "object" && typeof target !== "function") || target === null) {
          return E_FAIL;
        }
        try {
          checkEvents(target, factory.events); // an event may not share a member's name
        } catch {
          return E_FAIL;
        }
        const object = exposeDispatch(target, { events: factory.events });
        const hr = queryServed(object, stateOf(object)!, riid, out);
        releaseServed(object);
        return hr;
      }),
  );
  const lockServerCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "i32"], result: "i32" } as const,
    () => S_OK,
  );
  const table = [queryCb, addRefCb, releaseCb, createInstanceCb, lockServerCb];
  callbacks.push(...table);
  factoryVtable = new BigUint64Array(
    table.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))),
  );
  return factoryVtable;
}

/** Writes a REG_SZ value (`name` null: the key's default value). */
function setRegistryString(key: Deno.PointerObject, name: string | null, value: string): void {
  const data = wide(value);
  const status = advapi32().RegSetValueExW(
    key,
    name === null ? null : wide(name),
    0,
    REG_SZ,
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    data.byteLength,
  );
  if (status !== 0) {
    throw new ComError("RegSetValueExW", 0x8007_0000 | status, {
      context: "Cannot write the class registration",
    });
  }
}

/** Creates (or opens) HKCU\<path>, sets its values; returns whether it was created. */
function writeKey(path: string, values: Record<string, string>): boolean {
  const out = new BigUint64Array(1);
  const disposition = new Uint32Array(1);
  const status = advapi32().RegCreateKeyExW(
    HKEY_CURRENT_USER,
    wide(path),
    0,
    null,
    0,
    KEY_ALL_ACCESS,
    null,
    out,
    disposition,
  );
  if (status !== 0) {
    throw new ComError("RegCreateKeyExW", 0x8007_0000 | status, {
      context: `Cannot create HKCU\\${path}`,
    });
  }
  const key = Deno.UnsafePointer.create(out[0])!;
  try {
    for (const [name, value] of Object.entries(values)) {
      setRegistryString(key, name === "" ? null : name, value);
    }
  } finally {
    advapi32().RegCloseKey(key);
  }
  return disposition[0] === REG_CREATED_NEW_KEY;
}

/** The command line that starts this program again (`LocalServer32`). */
function selfCommandLine(): string {
  const exe = Deno.execPath();
  const main = Deno.mainModule.startsWith("file:")
    ? decodeURI(new URL(Deno.mainModule).pathname)
      .replace(/^\/([A-Za-z]:)/, "$1").replaceAll("/", "\\")
    : "";
  const isDeno = /(^|[\\/])deno(\.exe)?$/i.test(exe);
  return isDeno && main ? `"${exe}" run -A "${main}"` : `"${exe}"`;
}

let classRegistration: (
  progId: string,
  clsid: string,
  cookie: number,
  factory: Uint8Array<ArrayBuffer>,
  keys: string[],
  lease: PumpLease,
) => ClassRegistration;

/**
 * A class registered with {@linkcode registerClass}. `unregister()` (or `using`) revokes the class
 * object and deletes the registry keys it created.
 *
 * @example Serve a class until disposed
 * ```ts
 * import { registerClass } from "./com.ts";
 * using reg = registerClass({
 *   progId: "Demo.Echo",
 *   clsid: "{0D6C4B1A-7E2F-4A3B-8C9D-1E2F3A4B5C6D}",
 *   create: () => ({ echo: (x: unknown) => x }),
 * });
 * console.log(reg.progId, reg.clsid);
 * ```
 */
export class ClassRegistration implements Disposable {
  readonly #progId: string;
  readonly #clsid: string;
  #cookie: number | null;
  readonly #factory: Uint8Array<ArrayBuffer>;
  readonly #keys: string[];
  readonly #lease: PumpLease;

  static {
    classRegistration = (progId, clsid, cookie, factory, keys, lease) =>
      new ClassRegistration(progId, clsid, cookie, factory, keys, lease);
  }

  /** Holds what {@linkcode registerClass} made. */
  private constructor(
    progId: string,
    clsid: string,
    cookie: number,
    factory: Uint8Array<ArrayBuffer>,
    keys: string[],
    lease: PumpLease,
  ) {
    this.#progId = progId;
    this.#clsid = clsid;
    this.#cookie = cookie;
    this.#factory = factory;
    this.#keys = keys;
    this.#lease = lease;
  }

  /** The ProgID. */
  get progId(): string {
    return this.#progId;
  }

  /** The CLSID, `{...}` in upper case. */
  get clsid(): string {
    return this.#clsid;
  }

  /** The registry keys (under HKCU) this registration created and will delete. */
  get keys(): readonly string[] {
    return [...this.#keys];
  }

  /**
   * Revokes the class object (`CoRevokeClassObject`) and deletes the keys it created, deepest
   * first; a second call does nothing. Objects already created stay alive for their clients.
   */
  unregister(): void {
    const cookie = this.#cookie;
    if (cookie === null) return;
    this.#cookie = null;
    releaseAfterCallbacks(() => {
      try {
        ole32().CoRevokeClassObject(cookie);
        for (const key of [...this.#keys].reverse()) {
          advapi32().RegDeleteKeyW(HKEY_CURRENT_USER, wide(key));
        }
      } finally {
        factories.delete(keyOf(pointerOf(this.#factory)));
        this.#lease.release();
      }
    });
  }

  /** Unregisters. */
  [Symbol.dispose](): void {
    this.unregister();
  }
}

/**
 * Makes a TypeScript class activatable by other processes: registers a class factory with
 * `CoRegisterClassObject` (`CLSCTX_LOCAL_SERVER`, `REGCLS_MULTIPLEUSE`), whose `CreateInstance`
 * calls `create()` and serves the object it returns (as {@linkcode serveObject} does, events
 * included). With `register: true` it also writes the per-user registration under
 * `HKCU\Software\Classes`, so that `CreateObject("<ProgID>")` (VBScript, winipc's
 * {@linkcode createObject}, `CoCreateInstance` after `CLSIDFromProgID`) reaches this process. While
 * registered, the message pump runs and keeps the process alive.
 *
 * @param options The ProgID, CLSID, factory function, events and whether to write the registry.
 * @returns The registration; `unregister()` undoes it.
 * @throws {TypeError} For a bad ProgID, CLSID or option.
 * @throws {ComError} When the class object or a registry key cannot be registered.
 *
 * @example Serve a calculator to CreateObject("Demo.Calculator")
 * ```ts
 * import { registerClass } from "./com.ts";
 * using reg = registerClass({
 *   progId: "Demo.Calculator",
 *   clsid: "{8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}",
 *   create: () => ({ add: (a: number, b: number) => a + b }),
 *   register: true,
 * });
 * ```
 */
export function registerClass(options: ClassOptions): ClassRegistration {
  const opts = parseArg(classOptionsSchema, options, "options");
  const events = parseArg(eventsSchema, opts.events, "events") ?? [];
  const clsidText = opts.clsid.toUpperCase();
  initCom();
  const table = buildFactoryVtable();
  const memory = facetMemory(table);
  const factory = pointerOf(memory);
  factories.set(keyOf(factory), { create: opts.create, events, refs: 1, memory });
  const keys: string[] = [];
  try {
    if (opts.register) {
      const classes = "Software\\Classes";
      const clsidKey = `${classes}\\CLSID\\${clsidText}`;
      const entries: [string, Record<string, string>][] = [
        [`${classes}\\${opts.progId}`, { "": opts.progId }],
        [`${classes}\\${opts.progId}\\CLSID`, { "": clsidText }],
        [clsidKey, { "": opts.progId }],
        [`${clsidKey}\\ProgID`, { "": opts.progId }],
        [`${clsidKey}\\LocalServer32`, { "": selfCommandLine() }],
      ];
      for (const [path, values] of entries) if (writeKey(path, values)) keys.push(path);
    }
    const cookie = new Uint32Array(1);
    checkHr(
      ole32().CoRegisterClassObject(
        guid(clsidText),
        factory,
        CLSCTX_LOCAL_SERVER,
        REGCLS_MULTIPLEUSE,
        cookie,
      ),
      "CoRegisterClassObject",
      `Cannot register the class "${opts.progId}"`,
    );
    return classRegistration(opts.progId, clsidText, cookie[0], memory, keys, pump.attach());
  } catch (e) {
    for (const key of keys.reverse()) advapi32().RegDeleteKeyW(HKEY_CURRENT_USER, wide(key));
    factories.delete(keyOf(factory));
    throw e;
  }
}
