/**
 * What both sides of the clipboard latency tool use: one clock for the machine, and a hidden
 * message-only window.
 *
 * @module
 */
import { wide } from "../../ffi/strings.ts";
import { HWND_MESSAGE, user32 } from "../../ffi/user32.ts";

const qpc = Deno.dlopen("kernel32.dll", {
  QueryPerformanceCounter: { parameters: ["buffer"], result: "i32" },
  QueryPerformanceFrequency: { parameters: ["buffer"], result: "i32" },
}).symbols;
const frequency = new BigInt64Array(1);
qpc.QueryPerformanceFrequency(frequency);
const counter = new BigInt64Array(1);

/** `QueryPerformanceCounter` in µs: one clock for every process of the machine. */
export function micros(): number {
  qpc.QueryPerformanceCounter(counter);
  return Number(counter[0] * 1_000_000n / frequency[0]);
}

/** A message-only `STATIC` window of this thread, or null when it cannot be made. */
export function messageOnlyWindow(): Deno.PointerValue {
  return user32().CreateWindowExW(
    0,
    wide("STATIC"),
    null,
    0,
    0,
    0,
    0,
    0,
    HWND_MESSAGE,
    null,
    null,
    null,
  );
}
