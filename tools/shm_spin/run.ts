/**
 * The shm channel against its native floor, measured in one run: a C ping-pong of two processes
 * spinning on two counters in one named mapping (`spin.c`, `size` bytes copied each way, one
 * `QueryPerformanceCounter` reading per round trip), then `winipc bench --mechanism shm --floor`
 * (the channel, and the same two counters spun from Deno), then C again.
 *
 * Build the C program first (Debian: `apt-get install gcc-mingw-w64-x86-64`), then run it under
 * Wine (or natively on Windows):
 *
 * ```sh
 * x86_64-w64-mingw32-gcc -O2 -municode -o .scratch/spin.exe tools/shm_spin/spin.c
 * deno run -A tools/wine_run.ts tools/shm_spin/run.ts .scratch [size] [seconds]
 * ```
 *
 * Prints each p50 in µs and the channel's p50 as a multiple of C's (the mean of the two C runs).
 * Both clocks tick in 0.1 µs steps under Wine (`QueryPerformanceFrequency` is 10 MHz there), so
 * at these sizes a p50 is a multiple of 0.1 µs and a ratio moves in coarse steps.
 * Spinning needs both processes on a processor of their own: run it on a quiet machine.
 *
 * @module
 */
const [bin = ".scratch", sizeText = "64", secondsText = "2"] = Deno.args;
const here = new URL(".", import.meta.url);
const path = (u: URL) => decodeURIComponent(u.pathname.replace(/^\/([A-Za-z]:)/, "$1"));

/** One C ping-pong: the server and the client, each in its own process. */
async function native(run: number): Promise<number> {
  const name = `Local\\winipc-shm-spin-${Deno.pid}-${run}`;
  const exe = `${bin}/spin.exe`;
  const server = new Deno.Command(exe, {
    args: ["serve", name, sizeText],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  if (!value?.startsWith("ready")) throw new Error("spin.exe serve did not start");
  reader.releaseLock();
  const client = await new Deno.Command(exe, {
    args: ["ping", name, sizeText, secondsText],
    stdin: "null",
  }).output();
  await server.status;
  const result = JSON.parse(new TextDecoder().decode(client.stdout));
  return result.p50_us;
}

/** `winipc bench --mechanism shm --floor --json` at the size: the channel's and the floor's p50. */
async function bench(): Promise<{ channel: number; floor: number }> {
  const main = path(new URL("../../cli/main.ts", here));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      main,
      "bench",
      "--mechanism",
      "shm",
      "--size",
      sizeText,
      "--floor",
      "--seconds",
      secondsText,
      "--json",
    ],
    stdin: "null",
    stderr: "inherit",
  }).output();
  // One JSON object a line.
  const rows = new TextDecoder().decode(out.stdout).trim().split("\n").map((line) =>
    JSON.parse(line) as { impl?: string; rtt_us_p50: number }
  );
  const of = (impl?: string) => rows.find((r) => r.impl === impl)!.rtt_us_p50;
  return { channel: of(undefined), floor: of("floor") };
}

const c1 = await native(1);
const { channel, floor } = await bench();
const c2 = await native(2);
const c = (c1 + c2) / 2;
const fmt = (n: number) => n.toFixed(3);
console.log(`C spin (two runs)       p50 ${fmt(c1)} / ${fmt(c2)} µs`);
console.log(`Deno spin (bench floor) p50 ${fmt(floor)} µs  ${(floor / c).toFixed(2)}x C`);
console.log(`shm channel             p50 ${fmt(channel)} µs  ${(channel / c).toFixed(2)}x C`);
