/**
 * The global atom table (kernel32): raw DDE's `WM_DDE_INITIATE` and `WM_DDE_ACK` carry service
 * and topic names as global atoms.
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  /** UINT GlobalGetAtomNameW(ATOM nAtom, LPWSTR lpBuffer, int nSize) */
  GlobalGetAtomNameW: { parameters: ["u16", "buffer", "i32"], result: "u32" },
  /** ATOM GlobalDeleteAtom(ATOM nAtom) */
  GlobalDeleteAtom: { parameters: ["u16"], result: "u16" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The global atom functions of kernel32.dll, loaded on first use.
 *
 * @example The name of an atom
 * ```ts
 * import { atoms } from "./atoms.ts";
 * const buf = new Uint16Array(256);
 * if (Deno.build.os === "windows") atoms().GlobalGetAtomNameW(0xc000, buf, buf.length);
 * ```
 */
export const atoms: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "kernel32.dll",
  symbols,
);
