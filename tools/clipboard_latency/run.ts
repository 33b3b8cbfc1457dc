/**
 * A clipboard watcher's wake-up and idle cost, measured: this process writes `CF_UNICODETEXT`
 * `<changes>` times, 100 to 200 ms apart, with plain synchronous calls (`OpenClipboard`,
 * `EmptyClipboard`, `SetClipboardData`, `CloseClipboard`); a second process (`watcher.ts`)
 * watches with winipc's `watch()`. The latency of a change is from just before
 * `SetClipboardData` here to the watcher's iterator yielding it (both read
 * `QueryPerformanceCounter`, which is one clock for the machine). Before the changes the watcher
 * idles and reports its CPU time.
 *
 * Each `<clipboard.ts>` given (or `bare`: a Deno main thread blocked on a listener window of its
 * own, with no event loop and no hand-off, the floor) is measured in turn, `<rounds>` times over, so that two trees (say,
 * the branch's `mechanisms/clipboard.ts` and an extracted copy of main's) are compared in one run:
 *
 * ```sh
 * mkdir -p .scratch/base && git archive main ffi mechanisms | tar -x -C .scratch/base
 * deno run -A tools/wine_run.ts tools/clipboard_latency/run.ts 30 2 \
 *   .scratch/base/mechanisms/clipboard.ts mechanisms/clipboard.ts bare
 * ```
 *
 * Prints one line per tree and round: p50, p90 and max in µs, idle CPU, and whether the watcher's
 * main-thread pump was running.
 *
 * @module
 */
import { kernel32 } from "../../ffi/kernel32.ts";
import { wide } from "../../ffi/strings.ts";
import { CF_UNICODETEXT, user32 } from "../../ffi/user32.ts";
import { GMEM_MOVEABLE } from "../../ffi/kernel32.ts";
import { messageOnlyWindow, micros } from "./_common.ts";
import { lines } from "../wine.ts";

const [countText = "30", roundsText = "1", ...modules] = Deno.args;
if (modules.length === 0) modules.push("mechanisms/clipboard.ts");
const count = Number(countText);
const here = new URL(".", import.meta.url);
const path = (u: URL) => decodeURIComponent(u.pathname.replace(/^\/([A-Za-z]:)/, "$1"));

const u = user32();
const k = kernel32();
const owner = messageOnlyWindow();
if (owner === null) throw new Error("cannot create the clipboard owner window");

/** Puts `text` on the clipboard; returns the time just before SetClipboardData. */
function setText(text: string): number {
  const bytes = wide(text);
  const memory = k.GlobalAlloc(GMEM_MOVEABLE, BigInt(bytes.byteLength))!;
  const p = k.GlobalLock(memory)!;
  new Uint16Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.byteLength)).set(bytes);
  k.GlobalUnlock(memory);
  while (!u.OpenClipboard(owner)) k.Sleep(1);
  u.EmptyClipboard();
  const t0 = micros();
  if (u.SetClipboardData(CF_UNICODETEXT, memory) === null) {
    throw new Error("SetClipboardData failed");
  }
  u.CloseClipboard();
  return t0;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

for (let round = 1; round <= Number(roundsText); round++) {
  for (const module of modules) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", path(new URL("watcher.ts", here)), module, countText, "5000"],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const out = lines(child.stdout);
    const next = async () => {
      const r = await out.next();
      if (r.done) throw new Error(`${module}: the watcher ended early`);
      return r.value;
    };
    const idle = JSON.parse(await next());
    if (await next() !== "ready") throw new Error(`${module}: the watcher is not ready`);
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 100));
      const t0 = setText(`clipboard latency ${round}.${i} ${Date.now()}`);
      latencies.push(Number(await next()) - t0);
    }
    await child.status;
    latencies.sort((a, b) => a - b);
    const idleText = module === "bare"
      ? ""
      : `  idle ${idle.cpuMs.toFixed(1)} ms CPU in ${idle.wallMs} ms` +
        ` (${(idle.cpuMs / idle.wallMs * 100).toFixed(2)}%)  pump running: ${idle.pumpRunning}`;
    console.log(
      `round ${round} ${module}: p50 ${quantile(latencies, 0.5)} µs  p90 ${
        quantile(latencies, 0.9)
      } µs  max ${latencies.at(-1)} µs${idleText}`,
    );
  }
}
u.DestroyWindow(owner);
