/**
 * Lazy loading of the Windows system DLLs.
 *
 * Nothing is opened when a module is imported: a library is opened on the first call that needs
 * it. On a host that is not Windows (and not the Windows build of Deno under Wine) that first
 * call throws {@linkcode UnsupportedPlatformError}, so `mod.ts` can be imported anywhere.
 *
 * @module
 */
import { WinipcError } from "./base_error.ts";

/**
 * The error thrown when a Win32 mechanism is used on a host that is not Windows.
 *
 * @example Fall back when Win32 is not there
 * ```ts
 * import { UnsupportedPlatformError } from "./library.ts";
 * import { clipboard } from "../mod.ts";
 * try {
 *   await clipboard.writeText("hello");
 * } catch (e) {
 *   if (!(e instanceof UnsupportedPlatformError)) throw e;
 *   console.log("no clipboard here: not Windows");
 * }
 * ```
 */
export class UnsupportedPlatformError extends WinipcError {
  /**
   * Makes the error.
   *
   * @param os The operating system Deno reports (`Deno.build.os`).
   */
  constructor(os: string = Deno.build.os) {
    super(
      `winipc needs Windows (or the Windows build of Deno under Wine): this is Deno for ${os}`,
      "ERR_UNSUPPORTED_PLATFORM",
    );
    this.name = "UnsupportedPlatformError";
  }
}

/**
 * Whether this process can call the Win32 API (Deno for Windows, natively or under Wine).
 *
 * @returns `true` when `Deno.build.os` is `"windows"`.
 *
 * @example Skip a test away from Windows
 * ```ts
 * import { isWindows } from "./library.ts";
 * Deno.test({ name: "shared memory", ignore: !isWindows(), fn: () => {} });
 * ```
 */
export function isWindows(): boolean {
  return Deno.build.os === "windows";
}

const pathOverrides = new Map<string, string>();
const loadHooks: { except: string; hook: () => void }[] = [];

/**
 * Runs `hook` before any other library is opened. kernel32 registers itself here: opening a
 * library (LoadLibraryW) sets the thread's last error, so if kernel32 were first opened by the
 * `GetLastError` call after another library's failed call (as on a fresh Worker thread), the
 * error would read as 0.
 *
 * @param except The DLL the hook loads itself (it does not run before that one).
 * @param hook What to run.
 */
export function beforeLibraryLoad(except: string, hook: () => void): void {
  loadHooks.push({ except: except.toLowerCase(), hook });
}

/**
 * Loads a system DLL from another path, for every library opened after this call.
 *
 * winipc opens system DLLs by name (`kernel32.dll`), which Windows resolves from the system
 * directory. Tests or unusual installations may point a name elsewhere.
 *
 * @param name The DLL's file name, e.g. `"wininet.dll"`.
 * @param path The path to open instead.
 *
 * @example Use a DLL from a private folder
 * ```ts
 * import { setLibraryPath } from "./library.ts";
 * setLibraryPath("wininet.dll", "C:\\private\\wininet.dll");
 * ```
 */
export function setLibraryPath(name: string, path: string): void {
  pathOverrides.set(name.toLowerCase(), path);
}

/**
 * Makes a lazy accessor for a DLL's symbols.
 *
 * @param name The DLL's file name.
 * @param symbols The symbol table, `as const satisfies Deno.ForeignLibraryInterface`.
 * @returns A function that opens the library on its first call and returns its symbols.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 * @throws {Error} When the library cannot be opened (the loader's error is the `cause`).
 *
 * @example A lazily opened library
 * ```ts
 * import { lazyLibrary } from "./library.ts";
 * const user32 = lazyLibrary("user32.dll", {
 *   GetDesktopWindow: { parameters: [], result: "pointer" },
 * } as const);
 * // nothing is opened until user32() is called
 * ```
 */
export function lazyLibrary<S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
): () => Deno.DynamicLibrary<S>["symbols"] {
  let lib: Deno.DynamicLibrary<S> | undefined;
  return () => {
    if (lib) return lib.symbols;
    if (!isWindows()) throw new UnsupportedPlatformError();
    for (const { except, hook } of loadHooks) if (except !== name.toLowerCase()) hook();
    const path = pathOverrides.get(name.toLowerCase()) ?? name;
    try {
      lib = Deno.dlopen(path, symbols);
    } catch (cause) {
      throw new Error(`Cannot load ${name} from "${path}"`, { cause });
    }
    return lib.symbols;
  };
}

/**
 * A symbol table whose functions may carry `callback: true`: the declaration that a foreign
 * function can call back into JavaScript on this thread (a window procedure run by
 * `DispatchMessageW`, a DDEML callback, a served COM object's method). Deno 1.x read the flag
 * (such a function is never compiled to a fast call, so a callback and a garbage collection
 * inside it are safe); the Deno 2.9 runtime ignores fields it does not know, and its typings
 * no longer list it. winipc declares it on every such function all the same, so the table says
 * which calls re-enter, and a runtime that reads the flag again gets it.
 */
export type ReentrantLibraryInterface = Record<
  string,
  (Deno.ForeignFunction & { callback?: boolean }) | Deno.ForeignStatic
>;
