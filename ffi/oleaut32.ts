/**
 * Raw bindings to oleaut32.dll (Automation: BSTRs, VARIANTs, SAFEARRAYs, dates) and the layouts
 * of `VARIANT`, `DISPPARAMS` and `EXCEPINFO` on x64.
 *
 * @module
 */
import { lazyLibrary, type ReentrantLibraryInterface } from "./library.ts";
import { StructLayout } from "./struct.ts";

const symbols = {
  /** BSTR SysAllocString(const OLECHAR *psz) */
  SysAllocString: { parameters: ["buffer"], result: "pointer" },
  /** BSTR SysAllocStringLen(const OLECHAR *strIn, UINT ui) */
  SysAllocStringLen: { parameters: ["buffer", "u32"], result: "pointer" },
  /** void SysFreeString(BSTR bstrString) */
  SysFreeString: { parameters: ["pointer"], result: "void" },
  /** HRESULT CreateDispTypeInfo(INTERFACEDATA *pidata, LCID lcid, ITypeInfo **pptinfo) */
  CreateDispTypeInfo: { parameters: ["buffer", "u32", "buffer"], result: "i32" },
  /** UINT SysStringLen(BSTR pbstr) */
  SysStringLen: { parameters: ["pointer"], result: "u32" },
  /** void VariantInit(VARIANTARG *pvarg) */
  VariantInit: { parameters: ["buffer"], result: "void" },
  /** HRESULT VariantClear(VARIANTARG *pvarg) */
  VariantClear: { parameters: ["buffer"], result: "i32", callback: true },
  /** HRESULT VariantClear on a VARIANT in foreign memory. */
  VariantClearPtr: { name: "VariantClear", parameters: ["pointer"], result: "i32", callback: true },
  /** HRESULT VariantCopy(VARIANTARG *pvargDest, const VARIANTARG *pvargSrc) */
  VariantCopy: { parameters: ["buffer", "pointer"], result: "i32", callback: true },
  /** HRESULT VariantChangeType(VARIANTARG *pvargDest, const VARIANTARG *pvarSrc, USHORT wFlags, VARTYPE vt) */
  VariantChangeType: {
    parameters: ["buffer", "buffer", "u16", "u16"],
    result: "i32",
    callback: true,
  },
  /** SAFEARRAY *SafeArrayCreateVector(VARTYPE vt, LONG lLbound, ULONG cElements) */
  SafeArrayCreateVector: { parameters: ["u16", "i32", "u32"], result: "pointer" },
  /** HRESULT SafeArrayAccessData(SAFEARRAY *psa, void **ppvData) */
  SafeArrayAccessData: { parameters: ["pointer", "buffer"], result: "i32" },
  /** HRESULT SafeArrayUnaccessData(SAFEARRAY *psa) */
  SafeArrayUnaccessData: { parameters: ["pointer"], result: "i32" },
  /** HRESULT SafeArrayDestroy(SAFEARRAY *psa) */
  SafeArrayDestroy: { parameters: ["pointer"], result: "i32", callback: true },
  /** UINT SafeArrayGetDim(SAFEARRAY *psa) */
  SafeArrayGetDim: { parameters: ["pointer"], result: "u32" },
  /** HRESULT SafeArrayGetLBound(SAFEARRAY *psa, UINT nDim, LONG *plLbound) */
  SafeArrayGetLBound: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  /** HRESULT SafeArrayGetUBound(SAFEARRAY *psa, UINT nDim, LONG *plUbound) */
  SafeArrayGetUBound: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  /** HRESULT SafeArrayGetVartype(SAFEARRAY *psa, VARTYPE *pvt) */
  SafeArrayGetVartype: { parameters: ["pointer", "buffer"], result: "i32" },
  /** INT SystemTimeToVariantTime(LPSYSTEMTIME lpSystemTime, DOUBLE *pvtime) */
  SystemTimeToVariantTime: { parameters: ["buffer", "buffer"], result: "i32" },
  /** INT VariantTimeToSystemTime(DOUBLE vtime, LPSYSTEMTIME lpSystemTime) */
  VariantTimeToSystemTime: { parameters: ["f64", "buffer"], result: "i32" },
} as const satisfies ReentrantLibraryInterface;

/**
 * The oleaut32.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Lazily opened
 * ```ts
 * import { oleaut32 } from "./oleaut32.ts";
 * if (Deno.build.os === "windows") console.log(typeof oleaut32().SysAllocString);
 * ```
 */
export const oleaut32: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "oleaut32.dll",
  symbols,
);

/** `sizeof(VARIANT)` on x64: `vt` at 0, the value (a 16-byte union) at 8. */
export const VARIANT_SIZE = 24;

/** `DISPPARAMS` (24 bytes): the arguments of `IDispatch::Invoke`, in reverse order. */
export const DISPPARAMS: StructLayout<{
  rgvarg: "pointer";
  rgdispidNamedArgs: "pointer";
  cArgs: "u32";
  cNamedArgs: "u32";
}> = new StructLayout(
  { rgvarg: "pointer", rgdispidNamedArgs: "pointer", cArgs: "u32", cNamedArgs: "u32" } as const,
);

/** `EXCEPINFO` (64 bytes): what an automation server reports with `DISP_E_EXCEPTION`. */
export const EXCEPINFO: StructLayout<{
  wCode: "u16";
  wReserved: "u16";
  bstrSource: "pointer";
  bstrDescription: "pointer";
  bstrHelpFile: "pointer";
  dwHelpContext: "u32";
  pvReserved: "pointer";
  pfnDeferredFillIn: "pointer";
  scode: "i32";
}> = new StructLayout(
  {
    wCode: "u16",
    wReserved: "u16",
    bstrSource: "pointer",
    bstrDescription: "pointer",
    bstrHelpFile: "pointer",
    dwHelpContext: "u32",
    pvReserved: "pointer",
    pfnDeferredFillIn: "pointer",
    scode: "i32",
  } as const,
);

/** `SYSTEMTIME` (16 bytes). */
export const SYSTEMTIME: StructLayout<{
  wYear: "u16";
  wMonth: "u16";
  wDayOfWeek: "u16";
  wDay: "u16";
  wHour: "u16";
  wMinute: "u16";
  wSecond: "u16";
  wMilliseconds: "u16";
}> = new StructLayout(
  {
    wYear: "u16",
    wMonth: "u16",
    wDayOfWeek: "u16",
    wDay: "u16",
    wHour: "u16",
    wMinute: "u16",
    wSecond: "u16",
    wMilliseconds: "u16",
  } as const,
);

// VARTYPEs
/** Nothing. */
export const VT_EMPTY = 0;
/** SQL-style NULL. */
export const VT_NULL = 1;
/** 16-bit signed integer. */
export const VT_I2 = 2;
/** 32-bit signed integer. */
export const VT_I4 = 3;
/** 32-bit float. */
export const VT_R4 = 4;
/** 64-bit float. */
export const VT_R8 = 5;
/** Currency (an int64 scaled by 10,000). */
export const VT_CY = 6;
/** A date: days since 1899-12-30 as a double. */
export const VT_DATE = 7;
/** A BSTR. */
export const VT_BSTR = 8;
/** An IDispatch pointer. */
export const VT_DISPATCH = 9;
/** An SCODE. */
export const VT_ERROR = 10;
/** VARIANT_BOOL: -1 true, 0 false. */
export const VT_BOOL = 11;
/** A VARIANT (in arrays and by reference). */
export const VT_VARIANT = 12;
/** An IUnknown pointer. */
export const VT_UNKNOWN = 13;
/** A DECIMAL. */
export const VT_DECIMAL = 14;
/** 8-bit signed integer. */
export const VT_I1 = 16;
/** 8-bit unsigned integer. */
export const VT_UI1 = 17;
/** 16-bit unsigned integer. */
export const VT_UI2 = 18;
/** 32-bit unsigned integer. */
export const VT_UI4 = 19;
/** 64-bit signed integer. */
export const VT_I8 = 20;
/** 64-bit unsigned integer. */
export const VT_UI8 = 21;
/** Machine int. */
export const VT_INT = 22;
/** Machine unsigned int. */
export const VT_UINT = 23;
/** Flag: a SAFEARRAY of the base type. */
export const VT_ARRAY = 0x2000;
/** Flag: a pointer to the base type. */
export const VT_BYREF = 0x4000;

/** `DISPATCH_METHOD`. */
export const DISPATCH_METHOD = 1;
/** `DISPATCH_PROPERTYGET`. */
export const DISPATCH_PROPERTYGET = 2;
/** `DISPATCH_PROPERTYPUT`. */
export const DISPATCH_PROPERTYPUT = 4;
/** `DISPATCH_PROPERTYPUTREF`. */
export const DISPATCH_PROPERTYPUTREF = 8;
/** `DISPID_PROPERTYPUT`: the named argument of a property put. */
export const DISPID_PROPERTYPUT: number = -3;
/** `DISPID_NEWENUM`: the `_NewEnum` member. */
export const DISPID_NEWENUM: number = -4;
/** `DISPID_VALUE`: the default member. */
export const DISPID_VALUE = 0;
/** `DISPID_UNKNOWN`. */
export const DISPID_UNKNOWN: number = -1;
/** `LOCALE_USER_DEFAULT`. */
export const LOCALE_USER_DEFAULT = 0x400;
