/**
 * Raw bindings to kernelbase.dll: the few calls Windows exports there and not from kernel32.
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  /**
   * BOOL CompareObjectHandles(HANDLE hFirstObjectHandle, HANDLE hSecondObjectHandle)
   *
   * Whether two handles refer to the same kernel object (Windows 10 and later; Wine).
   */
  CompareObjectHandles: { parameters: ["pointer", "pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * kernelbase.dll's symbols, opened on first use.
 *
 * @example Whether two handles are one object
 * ```ts
 * import { kernelbase } from "./kernelbase.ts";
 * declare const a: Deno.PointerObject, b: Deno.PointerObject;
 * const same = kernelbase().CompareObjectHandles(a, b) !== 0;
 * ```
 */
export const kernelbase: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "kernelbase.dll",
  symbols,
);
