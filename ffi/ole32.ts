/**
 * Raw bindings to ole32.dll (COM: apartments, class objects, monikers, the Running Object Table)
 * and the vtable-call helper for COM interfaces.
 *
 * A COM interface pointer points at an object whose first field is a pointer to its vtable, an
 * array of function pointers; method `n` is called with the interface pointer as its first
 * argument. {@linkcode vcall} does that through `Deno.UnsafeFnPointer`.
 *
 * @module
 */
import { lazyLibrary, type ReentrantLibraryInterface } from "./library.ts";

const symbols = {
  /** HRESULT CoInitializeEx(LPVOID pvReserved, DWORD dwCoInit) */
  CoInitializeEx: { parameters: ["pointer", "u32"], result: "i32" },
  /** void CoUninitialize(void) */
  CoUninitialize: { parameters: [], result: "void", callback: true },
  /** HRESULT CLSIDFromProgID(LPCOLESTR lpszProgID, LPCLSID lpclsid) */
  CLSIDFromProgID: { parameters: ["buffer", "buffer"], result: "i32" },
  /** HRESULT CLSIDFromString(LPCOLESTR lpsz, LPCLSID pclsid) */
  CLSIDFromString: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int StringFromGUID2(REFGUID rguid, LPOLESTR lpsz, int cchMax) */
  StringFromGUID2: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  /** HRESULT CoCreateInstance(REFCLSID rclsid, LPUNKNOWN pUnkOuter, DWORD dwClsContext, REFIID riid, LPVOID *ppv) */
  CoCreateInstance: {
    parameters: ["buffer", "pointer", "u32", "buffer", "buffer"],
    result: "i32",
    callback: true,
  },
  /** HRESULT CoCreateInstanceEx(REFCLSID Clsid, IUnknown *punkOuter, DWORD dwClsCtx, COSERVERINFO *pServerInfo, DWORD dwCount, MULTI_QI *pResults) */
  CoCreateInstanceEx: {
    parameters: ["buffer", "pointer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
    callback: true,
  },
  /** void CoTaskMemFree(LPVOID pv) */
  CoTaskMemFree: { parameters: ["pointer"], result: "void" },
  /** HRESULT GetRunningObjectTable(DWORD reserved, LPRUNNINGOBJECTTABLE *pprot) */
  GetRunningObjectTable: { parameters: ["u32", "buffer"], result: "i32", callback: true },
  /** HRESULT CreateItemMoniker(LPCOLESTR lpszDelim, LPCOLESTR lpszItem, LPMONIKER *ppmk) */
  CreateItemMoniker: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  /** HRESULT CreateFileMoniker(LPCOLESTR lpszPathName, LPMONIKER *ppmk) */
  CreateFileMoniker: { parameters: ["buffer", "buffer"], result: "i32" },
  /** HRESULT CoRegisterClassObject(REFCLSID rclsid, LPUNKNOWN pUnk, DWORD dwClsContext, DWORD flags, LPDWORD lpdwRegister) */
  CoRegisterClassObject: {
    parameters: ["buffer", "pointer", "u32", "u32", "buffer"],
    result: "i32",
    callback: true,
  },
  /** HRESULT CoRevokeClassObject(DWORD dwRegister) */
  CoRevokeClassObject: { parameters: ["u32"], result: "i32", callback: true },
  /** HRESULT CoSetProxyBlanket(IUnknown *pProxy, DWORD dwAuthnSvc, DWORD dwAuthzSvc, OLECHAR *pServerPrincName, DWORD dwAuthnLevel, DWORD dwImpLevel, RPC_AUTH_IDENTITY_HANDLE pAuthInfo, DWORD dwCapabilities) */
  CoSetProxyBlanket: {
    parameters: ["pointer", "u32", "u32", "pointer", "u32", "u32", "pointer", "u32"],
    result: "i32",
    callback: true,
  },
  /** HRESULT CreateBindCtx(DWORD reserved, LPBC *ppbc) */
  CreateBindCtx: { parameters: ["u32", "buffer"], result: "i32" },
  /**
   * HRESULT CoWaitForMultipleHandles(DWORD dwFlags, DWORD dwTimeout, ULONG cHandles,
   * LPHANDLE pHandles, LPDWORD lpdwindex); in a single-threaded apartment it dispatches the calls
   * that arrive while it waits, so it runs served objects' callbacks.
   */
  CoWaitForMultipleHandles: {
    parameters: ["u32", "u32", "u32", "buffer", "buffer"],
    result: "i32",
    callback: true,
  },
  /**
   * HRESULT CoMarshalInterThreadInterfaceInStream(REFIID riid, LPUNKNOWN pUnk, LPSTREAM *ppStm);
   * asks the object for its marshalling interfaces (QueryInterface), so it can call a served
   * object's callbacks.
   */
  CoMarshalInterThreadInterfaceInStream: {
    parameters: ["buffer", "pointer", "buffer"],
    result: "i32",
    callback: true,
  },
  /**
   * HRESULT CoGetInterfaceAndReleaseStream(LPSTREAM pStm, REFIID iid, LPVOID *ppv); unmarshalling
   * an object of this process's own apartment reaches its callbacks.
   */
  CoGetInterfaceAndReleaseStream: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
    callback: true,
  },
} as const satisfies ReentrantLibraryInterface;

/**
 * The ole32.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Lazily opened
 * ```ts
 * import { ole32 } from "./ole32.ts";
 * if (Deno.build.os === "windows") console.log(typeof ole32().CoInitializeEx);
 * ```
 */
export const ole32: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "ole32.dll",
  symbols,
);

/** `COINIT_APARTMENTTHREADED`: a single-threaded apartment (calls arrive through messages). */
export const COINIT_APARTMENTTHREADED = 0x2;
/** `COINIT_MULTITHREADED`: the multithreaded apartment (calls arrive on RPC threads). */
export const COINIT_MULTITHREADED = 0x0;
/** `CLSCTX_INPROC_SERVER`. */
export const CLSCTX_INPROC_SERVER = 0x1;
/** `CLSCTX_LOCAL_SERVER`. */
export const CLSCTX_LOCAL_SERVER = 0x4;
/** `CLSCTX_REMOTE_SERVER`. */
export const CLSCTX_REMOTE_SERVER = 0x10;
/** `CLSCTX_ALL` (in-process, handler, local and remote). */
export const CLSCTX_ALL = 0x17;
/** `ROTFLAGS_REGISTRATIONKEEPSALIVE`: the ROT holds a strong reference. */
export const ROTFLAGS_REGISTRATIONKEEPSALIVE = 0x1;
/** CoRegisterClassObject: many clients share the one class object. */
export const REGCLS_MULTIPLEUSE = 1;
/** `ROTFLAGS_ALLOWANYCLIENT`: clients of any security context may find the object. */
export const ROTFLAGS_ALLOWANYCLIENT = 0x2;

/** A C type of a vtable method's parameter or result. */
export type VType = Deno.NativeType | "void";

/**
 * Calls method `index` of a COM interface: reads the vtable pointer at `*iface`, the method
 * pointer at `vtable[index]`, and calls it with `iface` as the first argument.
 *
 * @param iface The interface pointer.
 * @param index The method's index in the vtable (IUnknown's three come first).
 * @param parameters The C types of the method's parameters after `this`.
 * @param result The C type of its result (`"i32"` for an HRESULT).
 * @param args The arguments after `this`.
 * @returns The method's result.
 *
 * @example IUnknown::AddRef
 * ```ts
 * import { vcall } from "./ole32.ts";
 * declare const unknown: Deno.PointerObject;
 * vcall(unknown, 1, [], "u32"); // the new reference count
 * ```
 */
export function vcall(
  iface: Deno.PointerObject,
  index: number,
  parameters: readonly Deno.NativeType[],
  result: Deno.NativeResultType,
  ...args: unknown[]
): unknown {
  const vtable = Deno.UnsafePointer.create(new Deno.UnsafePointerView(iface).getBigUint64(0));
  if (!vtable) throw new Error("COM object has a NULL vtable");
  const method = Deno.UnsafePointer.create(
    new Deno.UnsafePointerView(vtable).getBigUint64(index * 8),
  );
  if (!method) throw new Error(`COM vtable slot ${index} is NULL`);
  // Any method may call back into JavaScript: an object served from this process, or, in a
  // single-threaded apartment, the modal loop that pumps messages while a call to another
  // process waits.
  const definition = {
    parameters: ["pointer", ...parameters],
    result,
    callback: true,
  } as Deno.ForeignFunction;
  const fn = new Deno.UnsafeFnPointer(
    method as Deno.PointerObject<Deno.ForeignFunction>,
    definition,
  );
  return (fn.call as (...a: unknown[]) => unknown)(iface, ...args);
}

/**
 * Parses a GUID string (`{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`, braces optional) into its 16
 * bytes in memory order.
 *
 * @param text The GUID.
 * @returns The `GUID` struct's bytes.
 * @throws {TypeError} When the text is not a GUID.
 *
 * @example IID_IDispatch
 * ```ts
 * import { guid } from "./ole32.ts";
 * const IID_IDispatch = guid("{00020400-0000-0000-C000-000000000046}");
 * ```
 */
export function guid(text: string): Uint8Array<ArrayBuffer> {
  const m = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i
    .exec(text);
  if (!m) throw new TypeError(`Not a GUID: "${text}"`);
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setUint32(0, parseInt(m[1], 16), true);
  view.setUint16(4, parseInt(m[2], 16), true);
  view.setUint16(6, parseInt(m[3], 16), true);
  const tail = m[4] + m[5];
  for (let i = 0; i < 8; i++) out[8 + i] = parseInt(tail.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Formats a GUID's 16 bytes as `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
 *
 * @param bytes The `GUID` struct's bytes.
 * @returns The registry form.
 *
 * @example
 * ```ts
 * import { formatGuid, guid } from "./ole32.ts";
 * formatGuid(guid("00020400-0000-0000-c000-000000000046")); // "{00020400-0000-0000-C000-000000000046}"
 * ```
 */
export function formatGuid(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");
  const tail = [...bytes.subarray(8, 16)].map((b) => hex(b, 2)).join("");
  return `{${hex(view.getUint32(0, true), 8)}-${hex(view.getUint16(4, true), 4)}-${
    hex(view.getUint16(6, true), 4)
  }-${tail.slice(0, 4)}-${tail.slice(4)}}`.toUpperCase();
}

/** `IID_IUnknown`. */
export const IID_IUnknown: Uint8Array<ArrayBuffer> = guid("00000000-0000-0000-C000-000000000046");
/** `IID_IDispatch`. */
export const IID_IDispatch: Uint8Array<ArrayBuffer> = guid("00020400-0000-0000-C000-000000000046");
/** `IID_IEnumVARIANT`. */
export const IID_IEnumVARIANT: Uint8Array<ArrayBuffer> = guid(
  "00020404-0000-0000-C000-000000000046",
);
/** `IID_NULL` (all zero). */
export const IID_NULL: Uint8Array<ArrayBuffer> = new Uint8Array(16);
