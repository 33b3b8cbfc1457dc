// Measures the CPU time (kernel and user, all threads) of its own process over an idle span,
// from a Worker, so that it works while the main thread is blocked too. Wine's GetProcessTimes
// is accurate for the calling process (checked against /proc/<pid>/stat: 1,000 ms against 970 ms
// over 5 s of the polling pump) but not for another one (it gave 20 ms for every server).
import { kernel32 } from "../../ffi/kernel32.ts";

declare const self: {
  onmessage: ((e: MessageEvent<{ settle: number; span: number }>) => void) | null;
  postMessage(message: unknown): void;
};

function cpuMs(): number {
  const k = kernel32();
  const t = new BigUint64Array(4);
  const at = (i: number) => new Uint8Array(t.buffer, i * 8, 8);
  if (!k.GetProcessTimes(k.GetCurrentProcess(), at(0), at(1), at(2), at(3))) {
    throw new Error("GetProcessTimes failed");
  }
  return Number(t[2] + t[3]) / 10_000;
}

self.onmessage = async (e) => {
  await new Promise((r) => setTimeout(r, e.data.settle));
  const before = cpuMs();
  await new Promise((r) => setTimeout(r, e.data.span));
  console.log(`cpu ${(cpuMs() - before).toFixed(0)}`);
  self.postMessage("done");
};
