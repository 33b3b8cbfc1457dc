/**
 * Idle wake-up of a window, measured: the same C sender (`sender.exe`, 60 WM_COPYDATA messages
 * of 64 bytes, 150 to 200 ms apart, plain SendMessageTimeoutW) against each receiver in turn, in
 * one run:
 *
 * - `c`: `receiver.exe`, a C thread blocked in GetMessageW (the floor: Wine's own wake-up);
 * - `deno-blocked`: a Deno main thread blocked in GetMessageW (its event loop stops);
 * - `worker`: a Worker owns the window and blocks in GetMessageW, the reply comes from the main
 *   thread (postMessage there, Atomics.wait for the answer);
 * - `atomics`: as `worker`, but the main thread waits in `Atomics.waitAsync` instead of getting an
 *   event-loop message (`atomics_receiver.ts`);
 * - `winipc`: a `MessageWindow` (on winipc's window thread) whose `onCopyData` computes the reply
 *   on the main thread;
 * - `winipc-at-once`: a `MessageWindow` without a handler, which the window thread answers at
 *   once (the payload goes on to the main thread afterwards);
 * - `worker-self`: a Worker owns the window, blocks in GetMessageW and answers by itself.
 *
 * Build the C programs first (Debian: `apt-get install gcc-mingw-w64-x86-64`):
 *
 * ```sh
 * x86_64-w64-mingw32-gcc -O2 -municode -o .scratch/receiver.exe tools/pump_latency/receiver.c -luser32
 * x86_64-w64-mingw32-gcc -O2 -municode -o .scratch/sender.exe tools/pump_latency/sender.c -luser32
 * deno run -A tools/wine_run.ts tools/pump_latency/run.ts .scratch [count] [receivers]
 * ```
 *
 * Prints one line per receiver: p50, p90 and max in µs, and p50 as a multiple of C's. With
 * `PUMP_LATENCY_MSGWAIT=1` in the environment, the bare and worker receivers wait as winipc's window
 * thread does (`MsgWaitForMultipleObjectsEx`, then `PeekMessageW`) instead of in `GetMessageW`
 * (measured under Wine 10: `worker-self` 574 µs that way, 532–557 µs with `GetMessageW`).
 *
 * @module
 */
const [bin = ".scratch", countText = "60", only = "c,winipc,deno-blocked,worker,atomics"] =
  Deno.args;
const here = new URL(".", import.meta.url);
const path = (u: URL) => decodeURIComponent(u.pathname.replace(/^\/([A-Za-z]:)/, "$1"));
const script = (name: string) => path(new URL(name, here));

function receiver(kind: string, title: string): Deno.ChildProcess {
  const deno = (file: string) => ["run", "-A", "--quiet", script(file), title];
  if (kind === "winipc-at-once") {
    return new Deno.Command(Deno.execPath(), {
      args: [...deno("winipc_receiver.ts"), "at-once"],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
  }
  const [cmd, args] = kind === "c" ? [`${bin}/receiver.exe`, [title]] : [
    Deno.execPath(),
    deno(
      kind === "winipc"
        ? "winipc_receiver.ts"
        : kind === "worker"
        ? "worker_receiver.ts"
        : kind === "atomics"
        ? "atomics_receiver.ts"
        : kind === "worker-self"
        ? "worker_self_receiver.ts"
        : "bare_receiver.ts",
    ),
  ];
  return new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit", stdin: "null" }).spawn();
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("receiver ended before it was ready");
    text += value;
  }
  reader.releaseLock();
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const results = new Map<string, number[]>();
for (const kind of only.split(",")) {
  const title = `winipc-pump-latency-${kind}-${Deno.pid}`;
  const child = receiver(kind, title);
  try {
    await firstLine(child.stdout);
    await new Promise((r) => setTimeout(r, 500)); // let it go idle
    const out = await new Deno.Command(`${bin}/sender.exe`, {
      args: [title, countText],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split(/\r?\n/);
    if (lines.at(-1) !== "done") throw new Error(`${kind}: sender failed: ${lines.at(-1)}`);
    results.set(kind, lines.slice(0, -1).map(Number).sort((a, b) => a - b));
  } finally {
    child.kill();
    await child.status;
  }
}
const floor = results.get("c") ? quantile(results.get("c")!, 0.5) : NaN;
for (const [kind, values] of results) {
  const p50 = quantile(values, 0.5);
  console.log(
    `${kind.padEnd(13)} p50 ${p50.toFixed(0).padStart(6)} µs  p90 ${
      quantile(values, 0.9).toFixed(0).padStart(6)
    } µs  max ${values.at(-1)!.toFixed(0).padStart(6)} µs  ${(p50 / floor).toFixed(2)}x C`,
  );
}
