/**
 * The base of winipc's error family, in a module of its own (no imports) so that every other
 * module, `library.ts` included, can extend it without an import cycle.
 *
 * @module
 */

/**
 * The base class of every error winipc throws when the system, a peer or a protocol fails (bad
 * arguments are a `TypeError` or `RangeError`, thrown before any system call). Each carries a
 * `code` and its symbolic `codeName`: the system's number where there is one (a Win32 error, an
 * HRESULT, a DDEML error, a JSON-RPC code, an HTTP status), else a fixed string such as
 * `"ERR_PROTOCOL"`.
 *
 * @example Handle any winipc failure in one place
 * ```ts
 * import { WinipcError } from "./base_error.ts";
 * try {
 *   // ... any winipc call
 * } catch (e) {
 *   if (e instanceof WinipcError) console.error(`${e.codeName}: ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export class WinipcError extends Error {
  /** The code: a system's number, or a fixed string for winipc's own failures. */
  readonly code: number | string;
  /** The code's symbolic name, e.g. `ERROR_FILE_NOT_FOUND`, `E_NOINTERFACE`, `ERR_PROTOCOL`. */
  readonly codeName: string;

  /**
   * Makes the error.
   *
   * @param message The message.
   * @param code The code.
   * @param codeName Its symbolic name (the code itself when it is a string and this is omitted).
   * @param options The cause, if any.
   */
  constructor(message: string, code: number | string, codeName?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WinipcError";
    this.code = code;
    this.codeName = codeName ?? String(code);
  }
}
