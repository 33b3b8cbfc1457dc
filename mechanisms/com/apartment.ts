/**
 * The COM apartment of the thread: {@linkcode initCom}, which every COM function calls first.
 *
 * @module
 */
import { z } from "zod";
import { COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED, ole32 } from "../../ffi/ole32.ts";
import { parseArg } from "../_validate.ts";
import { checkHr, RPC_E_CHANGED_MODE } from "./errors.ts";

/**
 * The COM apartment of a thread: single-threaded (`"sta"`) or the multithreaded one (`"mta"`).
 *
 * @example Join the multithreaded apartment before any other COM call
 * ```ts
 * import { type Apartment, initCom } from "./mod.ts";
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
 * import { initCom } from "./mod.ts";
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
