/**
 * Window messages between processes under their former name: the module is
 * `window_messages.ts` (`MessageWindow`, `sendCopyData`, `sendMessage`, `postMessage`,
 * `broadcastMessage`, `findWindow`...); this file re-exports it so the import path
 * `mechanisms/copydata.ts` and the `./copydata` export keep working.
 *
 * @example Send a payload to a window found by its title
 * ```ts
 * import { sendCopyData } from "./copydata.ts";
 * const reply = await sendCopyData("my-app", "hello", { dwData: 7, timeout: 2000 });
 * ```
 *
 * @module
 */
export * from "./window_messages.ts";
