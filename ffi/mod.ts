/**
 * The ffi core of winipc: lazy system DLLs, UTF-16 strings, struct layouts, `Win32Error` and the
 * checks that raise it, owned handles and security attributes. Mechanisms are built on these; most
 * users want `mod.ts` instead.
 *
 * @example Check a raw call
 * ```ts
 * import { checkHandle, kernel32, wide } from "@winipc/winipc/ffi";
 * if (Deno.build.os === "windows") {
 *   try {
 *     checkHandle(kernel32().OpenFileMappingW(4, 0, wide("missing")), "OpenFileMappingW");
 *   } catch (e) {
 *     console.log((e as Error).message); // ... ERROR_FILE_NOT_FOUND (2) ...
 *   }
 * }
 * ```
 *
 * @module
 */
export * from "./library.ts";
export * from "./strings.ts";
export * from "./struct.ts";
export * from "./error.ts";
export * from "./handle.ts";
export * from "./security.ts";
export { kernel32, kernel32Symbols } from "./kernel32.ts";
