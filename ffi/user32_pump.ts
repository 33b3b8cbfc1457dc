/**
 * The few user32.dll symbols a COM single-threaded apartment needs to pump its messages (calls
 * from other processes arrive as window messages). A private table, separate from a full
 * user32 binding.
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  /** BOOL PeekMessageW(LPMSG lpMsg, HWND hWnd, UINT wMsgFilterMin, UINT wMsgFilterMax, UINT wRemoveMsg) */
  PeekMessageW: { parameters: ["buffer", "pointer", "u32", "u32", "u32"], result: "i32" },
  /** BOOL TranslateMessage(const MSG *lpMsg) */
  TranslateMessage: { parameters: ["buffer"], result: "i32" },
  /** LRESULT DispatchMessageW(const MSG *lpMsg) */
  DispatchMessageW: { parameters: ["buffer"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The message-pump symbols of user32.dll, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Lazily opened
 * ```ts
 * import { user32Pump } from "./user32_pump.ts";
 * if (Deno.build.os === "windows") console.log(typeof user32Pump().PeekMessageW);
 * ```
 */
export const user32Pump: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "user32.dll",
  symbols,
);

/** `PM_REMOVE`: PeekMessageW removes the message it returns. */
export const PM_REMOVE = 0x0001;
/** `sizeof(MSG)` on x64. */
export const MSG_SIZE = 48;
