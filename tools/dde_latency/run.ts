/**
 * DDE request round trips, measured: one native client (`dde_latency.c` in client mode) sends
 * synchronous `XTYP_REQUEST` transactions for one item (`CF_TEXT`) to a server in another
 * process, and this prints p50 and p90 of the round trip in µs for each server kind, in one run:
 *
 * - `c`: `dde_latency.c` in server mode, a DDEML server whose thread blocks in `GetMessageW` and
 *   answers with `DdeCreateDataHandle` (the floor);
 * - `winipc`: a `DdeServer` of this tree's `mechanisms/dde.ts` in deno.exe
 *   (`winipc_server.ts`), whose request handler returns a short string;
 * - any other entry is taken as the path of a `dde.ts` to serve from instead, so that two trees
 *   are compared in one run (say, main's, extracted to `.scratch/base`).
 *
 * Only the server differs between kinds: the client, the item and the answer (the number of
 * requests served so far, which the client checks) are the same. Each server is measured in two
 * modes: `idle` (requests 150 to 200 ms apart, at random; the client pumps its messages in
 * between) and `hot` (back to back, after an untimed warm-up). A round trip is the
 * `DdeClientTransaction` call alone, timed with `QueryPerformanceCounter`. Before the client
 * connects, the server tells its own CPU time (`GetProcessTimes`; under Wine it reads 0 for
 * another process) at the start and the end of a few idle seconds.
 *
 * Wine's DDEML server posts a positive `WM_DDE_ACK` after the `WM_DDE_DATA` of every answered
 * request (Windows sends the data alone). Left in the client's queue it ends the next synchronous
 * transaction at once as a failure, and shifts every later answer by one; so the client takes it
 * after each transaction, outside the timing, and the `stray-ack` column counts them.
 *
 * On Linux this runs the Windows programs under Wine (provisioning it first, as
 * `tools/wine_run.ts` does) and builds the C program with mingw-w64 into `.scratch/` when it is
 * missing or older than its source (Debian: `apt-get install gcc-mingw-w64-x86-64`); on Windows
 * it runs them directly (give `--cc` a mingw-w64 `gcc`). From any folder of a checkout:
 *
 * ```sh
 * deno run -A tools/dde_latency/run.ts                    # c and winipc, 40 idle and 300 hot
 * deno run -A tools/dde_latency/run.ts --servers winipc --idle 20 --hot 100 --rounds 2
 * mkdir -p .scratch/base && git archive main ffi mechanisms | tar -x -C .scratch/base
 * deno run -A tools/dde_latency/run.ts --servers c,.scratch/base/mechanisms/dde.ts,winipc
 * ```
 *
 * Measured 2026-12-02 under Wine 10 with deno.exe 2.9.6, defaults, two runs, on a 2-core machine
 * with a load average of 4 to 5 from other work (the C `WM_COPYDATA` floor of
 * `tools/pump_latency`, about 200 µs on a quiet machine, measured 1,171 µs in between), so every
 * figure is inflated and the ratios matter more than the numbers:
 *
 * | server | idle p50 / p90 | hot p50 / p90 | idle CPU in 5 s |
 * |---|---|---|---|
 * | `c` | 1,486 / 7,316 µs; 2,048 / 3,398 µs | 1,245 / 3,149 µs; 1,366 / 2,698 µs | 0 ms; 0 ms |
 * | `winipc` | 2,615 / 3,640 µs; 2,437 / 5,074 µs | 1,687 / 3,325 µs; 1,877 / 5,450 µs | 1,110 ms; 1,090 ms |
 *
 * The `winipc` server's idle CPU (about 22% of a core) is its message pump polling with a
 * nonblocking `Sleep(1)`: a deno.exe that only waits used 20 ms in 5 s, the same with a
 * `DdeServer` open 1,020 ms. Wine counts CPU time in 10 ms steps.
 *
 * Options: `--servers <list>` (default `c,winipc`), `--idle <n>` requests (40), `--hot <n>`
 * requests (300), `--warmup <n>` (30), `--idle-cpu <ms>` (5000), `--rounds <n>` (1), `--cc
 * <compiler>` (`x86_64-w64-mingw32-gcc`), `--json` (one JSON object per server and round instead
 * of the table).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { lines, provision, repoRoot, startTempCleaner, windowsDeno, wineEnv } from "../wine.ts";

function parse() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        servers: { type: "string", default: "c,winipc" },
        idle: { type: "string", default: "40" },
        hot: { type: "string", default: "300" },
        warmup: { type: "string", default: "30" },
        "idle-cpu": { type: "string", default: "5000" },
        rounds: { type: "string", default: "1" },
        cc: { type: "string", default: "x86_64-w64-mingw32-gcc" },
        json: { type: "boolean", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
const options = parse();
const count = (name: keyof typeof options) => {
  const n = Number(options[name]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`error: --${name} must be a whole number, not "${options[name]}"`);
    Deno.exit(2);
  }
  return n;
};
const [idleCount, hotCount, warmUp, idleCpuMs, rounds] = (
  ["idle", "hot", "warmup", "idle-cpu", "rounds"] as const
).map(count);
/** Server kinds: `c`, `winipc`, or the path of a `dde.ts` (relative to the working folder). */
const kinds = options.servers.split(",").map((s) => s.trim()).filter((s) => s !== "");
for (const kind of kinds) {
  if (kind === "c" || kind === "winipc") continue;
  try {
    if (Deno.statSync(kind).isFile) continue;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  console.error(`error: --servers: "${kind}" is neither c, winipc nor a dde.ts file`);
  Deno.exit(2);
}
if (kinds.length === 0) {
  console.error("error: --servers names no server");
  Deno.exit(2);
}

const source = `${repoRoot}/tools/dde_latency/dde_latency.c`;
const exe = `${repoRoot}/.scratch/dde_latency.exe`;

/** Builds `.scratch/dde_latency.exe` when it is missing or older than its source. */
async function build(): Promise<void> {
  const mtime = (path: string) => {
    try {
      return Deno.statSync(path).mtime?.getTime() ?? 0;
    } catch {
      return -1; // missing
    }
  };
  if (mtime(exe) >= mtime(source)) return;
  Deno.mkdirSync(`${repoRoot}/.scratch`, { recursive: true });
  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command(options.cc, {
      args: ["-O2", "-municode", "-o", exe, source, "-luser32"],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error(
      `error: ${options.cc} is missing (Debian: apt-get install -y gcc-mingw-w64-x86-64)`,
    );
    Deno.exit(1);
  }
  if (!status.success) throw new Error(`Cannot build ${exe}: ${options.cc} failed`);
}

/** `dde_latency.exe` with `args`: directly on Windows, under Wine elsewhere. */
function native(args: string[], stdin: "piped" | "null"): Deno.ChildProcess {
  const io = { stdin, stdout: "piped", stderr: "inherit" } as const;
  return Deno.build.os === "windows"
    ? new Deno.Command(exe, { args, cwd: repoRoot, ...io }).spawn()
    : new Deno.Command("wine", { args: [exe, ...args], cwd: repoRoot, env: wineEnv(), ...io })
      .spawn();
}

function server(kind: string, service: string, topic: string, item: string): Deno.ChildProcess {
  if (kind === "c") return native(["server", service, topic, item], "piped");
  const dde = kind === "winipc" ? "mechanisms/dde.ts" : Deno.realPathSync(kind);
  return windowsDeno([
    "run",
    "-A",
    "--quiet",
    "tools/dde_latency/winipc_server.ts",
    dde,
    service,
    topic,
    item,
  ], { stdin: "piped", stdout: "piped", stderr: "inherit" }).spawn();
}

/** Waits for the server's `ready <pid>` line (at most a minute: deno.exe starts slowly). */
async function ready(out: AsyncGenerator<string>, kind: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${kind}: the server was not ready in 60 s`)),
      60_000,
    );
  });
  try {
    const first = await Promise.race([out.next(), timeout]);
    const match = !first.done && /^ready (\d+)$/.exec(first.value);
    if (!match) throw new Error(`${kind}: the server did not start: ${first.value ?? "no output"}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends a server: its stdin closes, and after 10 s it is killed. */
async function stop(child: Deno.ChildProcess): Promise<void> {
  await child.stdin.close().catch(() => {}); // it may have ended already, which is what we want
  const timer = setTimeout(() => child.kill(), 10_000);
  await child.status;
  clearTimeout(timer);
}

interface Result {
  server: string;
  round: number;
  idle: number[];
  hot: number[];
  idleCpuMs: number;
  idleWallMs: number;
  mismatches: number;
  strayAcks: number;
}

/** Asks the server for its CPU time so far (a line on its stdin, `cpu <ms>` back). */
async function serverCpuMs(
  child: Deno.ChildProcess,
  out: AsyncGenerator<string>,
  kind: string,
): Promise<number> {
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("cpu\n"));
  writer.releaseLock();
  const answer = await out.next();
  const match = !answer.done && /^cpu ([\d.]+)$/.exec(answer.value);
  if (!match) throw new Error(`${kind}: the server did not tell its CPU time: ${answer.value}`);
  return Number(match[1]);
}

async function measure(kind: string, round: number, index: number): Promise<Result> {
  const service = `winipc-dde-latency-${Deno.pid}-${round}-${index}`;
  const [topic, item] = ["latency", "value"];
  const child = server(kind, service, topic, item);
  const serverLines = lines(child.stdout);
  try {
    await ready(serverLines, kind);
    await new Promise((r) => setTimeout(r, 500)); // let it settle into its wait
    const cpu0 = await serverCpuMs(child, serverLines, kind);
    const wall0 = performance.now();
    await new Promise((r) => setTimeout(r, idleCpuMs));
    const cpu1 = await serverCpuMs(child, serverLines, kind);
    const result: Result = {
      server: kind,
      round,
      idle: [],
      hot: [],
      idleCpuMs: cpu1 - cpu0,
      idleWallMs: Math.round(performance.now() - wall0),
      mismatches: NaN,
      strayAcks: NaN,
    };
    const client = native([
      "client",
      service,
      topic,
      item,
      String(idleCount),
      String(warmUp),
      String(hotCount),
    ], "null");
    let done = false;
    for await (const line of lines(client.stdout)) {
      const [key, value] = line.split(" ");
      if (key === "idle") result.idle.push(Number(value));
      else if (key === "hot") result.hot.push(Number(value));
      else if (key === "mismatch") result.mismatches = Number(value);
      else if (key === "stray-ack") result.strayAcks = Number(value);
      else if (key === "done") done = true;
      else if (key === "error") throw new Error(`${kind}: the client failed: ${line}`);
    }
    await client.status;
    if (!done) throw new Error(`${kind}: the client ended early`);
    return result;
  } finally {
    await stop(child);
    for await (const _ of serverLines) {
      // drain what the server printed after ready
    }
  }
}

const quantile = (values: number[], q: number) => {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};
const us = (n: number) => n.toFixed(0).padStart(6);

await provision();
await build();
const stopCleaner = startTempCleaner();
try {
  for (let round = 1; round <= rounds; round++) {
    let floor = [NaN, NaN];
    for (const [index, kind] of kinds.entries()) {
      const r = await measure(kind, round, index);
      const [idle50, idle90, hot50, hot90] = [
        quantile(r.idle, 0.5),
        quantile(r.idle, 0.9),
        quantile(r.hot, 0.5),
        quantile(r.hot, 0.9),
      ];
      if (kind === "c") floor = [idle50, hot50];
      if (options.json) {
        console.log(JSON.stringify({
          server: kind,
          round,
          idle_us_p50: idle50,
          idle_us_p90: idle90,
          hot_us_p50: hot50,
          hot_us_p90: hot90,
          idle_cpu_ms: r.idleCpuMs,
          idle_wall_ms: r.idleWallMs,
          mismatches: r.mismatches,
          stray_acks: r.strayAcks,
        }));
        continue;
      }
      const cpu = `${r.idleCpuMs.toFixed(1)} ms in ${r.idleWallMs} ms (${
        (r.idleCpuMs / r.idleWallMs * 100).toFixed(2)
      }%)`;
      const vsC = Number.isNaN(floor[0])
        ? ""
        : `  p50 vs C: idle ${(idle50 / floor[0]).toFixed(2)}x hot ${
          (hot50 / floor[1]).toFixed(2)
        }x`;
      console.log(
        `round ${round} ${kind.padEnd(8)} idle p50 ${us(idle50)} µs p90 ${us(idle90)} µs` +
          `  hot p50 ${us(hot50)} µs p90 ${us(hot90)} µs  idle CPU ${cpu}` +
          `  mismatch ${r.mismatches} stray-ack ${r.strayAcks}${vsC}`,
      );
    }
  }
} finally {
  stopCleaner();
}
