/**
 * The watching side of `run.ts`: `watcher.ts <clipboard.ts path> <changes> <idle ms>`.
 *
 * Imports `watch` from the given `mechanisms/clipboard.ts` (so two trees can be compared in one
 * run; `bare` instead: the main thread blocks on a listener window of its own, the floor), starts watching, lets the process settle, prints its idle CPU over `<idle ms>` and whether
 * the main-thread pump runs as one JSON line, then `ready`, then the `QueryPerformanceCounter` time
 * in µs of each change as the iterator yields it, and exits after `<changes>` changes.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { INFINITE, kernel32 } from "../../ffi/kernel32.ts";
import { MWMO_INPUTAVAILABLE, PM_REMOVE, QS_ALLINPUT, user32 } from "../../ffi/user32.ts";

import { messageOnlyWindow, micros } from "./_common.ts";

const [modulePath, countText = "30", idleText = "5000"] = Deno.args;

function cpuMs(): number {
  const [creation, exit, kernel, user] = [0, 0, 0, 0].map(() => new BigUint64Array(1));
  kernel32().GetProcessTimes(kernel32().GetCurrentProcess(), creation, exit, kernel, user);
  return Number(kernel[0] + user[0]) / 10_000;
}

if (modulePath === "bare") {
  // The floor for a Deno thread: the main thread owns a listener window and blocks until its
  // queue has something (no event loop, no hand-off), then checks the sequence number.
  const u = user32();
  const hwnd = messageOnlyWindow();
  if (hwnd === null || !u.AddClipboardFormatListener(hwnd)) throw new Error("cannot listen");
  console.log(JSON.stringify({ cpuMs: NaN, wallMs: NaN, pumpRunning: false }));
  console.log("ready");
  const msg = new Uint8Array(48);
  let sequence = u.GetClipboardSequenceNumber();
  for (let seen = 0; seen < Number(countText);) {
    u.MsgWaitForMultipleObjectsEx(0, null, INFINITE, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
    while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) u.DispatchMessageW(msg);
    const now = u.GetClipboardSequenceNumber();
    if (now === sequence) continue;
    sequence = now;
    console.log(micros());
    seen++;
  }
  u.RemoveClipboardFormatListener(hwnd);
  u.DestroyWindow(hwnd);
  Deno.exit(0);
}
const clipboard = await import(pathToFileURL(resolve(modulePath)).href);
const { pump } = await import(pathToFileURL(resolve(modulePath, "../_pump.ts")).href);
const changes: AsyncIterableIterator<unknown> = clipboard.watch();
await new Promise((r) => setTimeout(r, 500)); // let everything settle into its wait
const cpu0 = cpuMs();
const wall0 = performance.now();
await new Promise((r) => setTimeout(r, Number(idleText)));
const cpu = cpuMs() - cpu0;
const wall = performance.now() - wall0;
console.log(JSON.stringify({ cpuMs: cpu, wallMs: Math.round(wall), pumpRunning: pump.running }));
console.log("ready");
let seen = 0;
for await (const _change of changes) {
  console.log(micros());
  if (++seen >= Number(countText)) break;
}
