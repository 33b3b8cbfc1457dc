/**
 * VARIANT marshalling: JavaScript values to and from VARIANTs and SAFEARRAYs, and OLE dates.
 *
 * @module
 */
import { IID_IDispatch } from "../../ffi/ole32.ts";
import {
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
} from "../../ffi/oleaut32.ts";
import { addRef, allocBstr, queryInterface, readBstr, release } from "./_base.ts";
import { exportObject, goesThroughWrapper } from "./_com_thread.ts";
import { adoptUnknown, type ComObject, ComUnknown, dispatchOf, wrapDispatch } from "./client.ts";
import { checkHr, ComError, DISP_E_PARAMNOTFOUND, E_FAIL, failed } from "./errors.ts";
import { exposeDispatch } from "./server.ts";

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
 * import { type ComValue, createObject } from "./mod.ts";
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
 * import { toOleDate } from "./mod.ts";
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
 * import { fromOleDate } from "./mod.ts";
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
 * import { systemTimeToVariantTime } from "./mod.ts";
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
 * import { variantTimeToSystemTime } from "./mod.ts";
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

export function viewOf(p: Deno.PointerObject, size: number): Uint8Array {
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size));
}

/**
 * Writes a JS value into the VARIANT at `at` (24 bytes); allocations belong to the VARIANT.
 * With `exportServed` (an argument of a call to another apartment or process), an object this
 * process serves, or another object implemented on this thread (an in-process COM object), goes
 * as a proxy of the COM thread's wrapper of it (`_com_thread.ts`), so the callee's calls back to
 * it wake that thread, also after the call.
 */
export function writeVariant(
  bytes: Uint8Array,
  at: number,
  value: unknown,
  asArgument: boolean,
  exportServed = false,
): void {
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
        value.forEach((item, i) =>
          writeVariant(items, i * VARIANT_SIZE, item, false, exportServed)
        );
      } finally {
        oleaut32().SafeArrayUnaccessData(psa);
      }
    }
    v.setUint16(0, VT_ARRAY | VT_VARIANT, true);
    setPtr(psa);
  } else if (typeof value === "object" || typeof value === "function") {
    const dispatch = dispatchOf(value);
    if (dispatch) {
      v.setUint16(0, VT_DISPATCH, true);
      if (exportServed && goesThroughWrapper(dispatch)) setPtr(exportObject(dispatch));
      else {
        addRef(dispatch);
        setPtr(dispatch);
      }
    } else if (value instanceof ComUnknown) {
      const p = value.unsafePointer;
      addRef(p);
      v.setUint16(0, VT_UNKNOWN, true);
      setPtr(p);
    } else {
      // A plain object: expose it as an IDispatch of its own (one reference, owned by the VARIANT).
      v.setUint16(0, VT_DISPATCH, true);
      const object = exposeDispatch(value as object);
      if (!exportServed) setPtr(object);
      else {
        try {
          setPtr(exportObject(object));
        } finally {
          release(object); // the wrapper holds it now
        }
      }
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
export function readVariant(p: Deno.PointerObject): ComValue {
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
 * import { clearVariant, fromVariant, toVariant } from "./mod.ts";
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
 * import { clearVariant, fromVariant, toVariant } from "./mod.ts";
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
 * import { clearVariant, fromVariant, toVariant } from "./mod.ts";
 * const v = toVariant("a BSTR");
 * clearVariant(v);
 * fromVariant(v); // undefined (VT_EMPTY)
 * ```
 */
export function clearVariant(variant: Uint8Array): void {
  oleaut32().VariantClear(variant as Uint8Array<ArrayBuffer>);
}
