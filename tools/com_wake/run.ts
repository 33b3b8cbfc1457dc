/**
 * How fast a served COM object wakes from idle, per way of serving it, and what each way
 * breaks; run under Wine (or on Windows) with the Windows deno:
 *
 * ```sh
 * deno run -A tools/wine_run.ts tools/com_wake/run.ts [rounds] [modes]
 * ```
 *
 * The modes (`server.ts`), all serving the same `exposeDispatch` object `{ ping, nest }`:
 *
 * - `blocked`: the floor, not a design: the main thread is the STA and blocks in
 *   `MsgWaitForMultipleObjectsEx`, so COM's window procedure and the vtable run on it directly
 *   (its event loop never runs again);
 * - `pump`: `serveObject` as winipc did before the COM thread: the main thread's STA, its window
 *   pumped by the polling pump (`mechanisms/_pump.ts`; its idle wait was a nonblocking `Sleep(1)` when these
 *   figures were taken, and is now a 1 ms high-resolution timer, 1.4 ms under Wine either way);
 * - `mta`: the main thread in the multithreaded apartment and no pump: a call runs on an RPC
 *   thread, which calls the vtable's `Deno.UnsafeCallback` and so waits while Deno runs it on
 *   the main thread's event loop;
 * - `sta-worker`: a Worker's thread is the STA that registers the object and blocks in
 *   `MsgWaitForMultipleObjectsEx`; the vtable is still the main isolate's callbacks, so the
 *   Worker's thread waits while Deno runs each call on the main thread;
 * - `com-thread`: a Worker's thread is the STA, and the object it registers is a wrapper whose
 *   vtable is the Worker's own callbacks (`_com_thread.ts`): each call is handed to the main
 *   thread by `SendNotifyMessageW` to a main-thread window plus `Atomics.notify` (the main thread
 *   waits in `Atomics.waitAsync` when idle, `_com_thread_main.ts`), while the Worker waits in
 *   `CoWaitForMultipleHandles`, which keeps its STA pumped; interface arguments are marshalled
 *   into the main thread's apartment (`CoMarshalInterThreadInterfaceInStream`);
 * - `library`: `serveObject` as winipc does now, the `com-thread` design built into the library
 *   (`mechanisms/com/_com_thread.ts`: IUnknown answered on the COM thread, a posted message in
 *   the DDE range instead of `SendNotifyMessageW`, so a handler may call out from a modal loop).
 *
 * A mode with `+busy` appended (`blocked+busy`) runs a Worker beside it that keeps the process
 * as busy as the idle pump does (a nonblocking `Sleep(1)` in a loop, `_busy_worker.ts`) without
 * touching any queue: it separates what waking a sleeping process costs from the wake-up path.
 *
 * In one run: every server goes idle and reports the CPU time its process used over 5 s
 * (`_cpu_worker.ts`, `GetProcessTimes` on itself); one client then calls each object's `ping`
 * `rounds` times (default 40), each call after an idle 150 to 200 ms, and the p50, p90 and max
 * of the round trips are printed per mode. Then, each against a fresh server, the two things a
 * mode must survive: `self` (the serving process calls its own object through the Running
 * Object Table) and `nest` (the server's method calls back into the client, whose callback
 * calls the server while the server's outgoing call waits; events raised during a call have this
 * shape). A check that gets no answer in time is reported as a hang, and its processes killed.
 *
 * Measured 2026-12-02 under Wine 10 with deno.exe 2.9.6, on a 2-core VM that other test runs
 * loaded (load average 2 to 5), so every round trip carries several ms of scheduling delay; p50
 * of each mode in the same run, in µs, and CPU ms over 5 s idle:
 *
 * | mode | run A | run B | run C | idle CPU / 5 s | self | nest |
 * |---|---|---|---|---|---|---|
 * | blocked | 6,866 | 9,400 | 12,944 | 0–20 | – | – |
 * | blocked+busy | | | 8,796 | 600 | – | – |
 * | pump | 5,916 | 7,064 | 10,315 | 730–1,110 | ok | ok |
 * | mta | 7,054 | 8,510 | 11,571 | 0–10 | ok | hangs |
 * | mta+busy | | | 7,913 | 760 | – | – |
 * | sta-worker | 7,686 | | | 0 | hangs | RPC_E_WRONG_THREAD |
 * | com-thread | 9,138 | 11,200 | 16,567 | 0–10 | ok | ok |
 * | com-thread+busy | | | 12,267 | 520 | – | – |
 *
 * The idle pump costs 15–22 % of a core. It also answers faster than the blocked floor here, and
 * the `+busy` rows say why: a process kept busy answers 3.7–4.1 ms sooner than the same process
 * asleep, because every thread that must wake (RPC thread, apartment thread, main thread) waits
 * for a CPU of this loaded VM. The COM thread wakes two threads more than `blocked` (its own, and
 * the main thread through `Atomics.waitAsync`), 1.8–3.6 ms here.
 *
 * The `library` mode, once the COM thread was built into `serveObject`, measured 2026-12-02 on the
 * same kind of VM, three runs (D: load average about 5.5, three modes; E: about 3, two modes;
 * F: about 2, four modes), p50 in µs and CPU ms over 5 s idle:
 *
 * | mode | run D | run E | run F | idle CPU / 5 s | self | nest |
 * |---|---|---|---|---|---|---|
 * | blocked | | | 4,662 | 10 | – | – |
 * | pump (before) | 12,762 | 4,993 | 5,053 | 930–1,050 | ok | ok |
 * | library (now) | 22,335 | 5,985 | 6,252 | 10 | ok | ok |
 * | com-thread | 19,583 | | 6,204 | 10–20 | ok | ok |
 *
 * So serving costs no CPU while idle (the pump cost 19–21% of a core in these runs), and an idle
 * call takes about 1–1.2 ms longer than with the polling pump on a quieter machine (the two more
 * thread wake-ups above), level with the prototype.
 *
 * @module
 */
const [roundsText = "40", modesText = "blocked,pump,mta,sta-worker"] = Deno.args;
const modes = modesText.split(",");
const here = new URL(".", import.meta.url);
const path = (u: URL) => decodeURIComponent(u.pathname.replace(/^\/([A-Za-z]:)/, "$1"));
const script = (file: string) => path(new URL(file, here));

/** A child process whose stdout is read line by line, each read with a deadline. */
class Child {
  readonly process: Deno.ChildProcess;
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(file: string, args: string[]) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", script(file), ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#reader = this.process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#writer = this.process.stdin.getWriter();
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** The next line, or undefined when none came within `ms`. */
  async line(ms: number): Promise<string | undefined> {
    const deadline = performance.now() + ms;
    while (!this.#buffer.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<undefined>((r) =>
        timer = setTimeout(() => r(undefined), Math.max(0, deadline - performance.now()))
      );
      const read = await Promise.race([this.#reader.read(), timeout]);
      clearTimeout(timer);
      if (!read) return undefined;
      if (read.done) return undefined;
      this.#buffer += read.value;
    }
    const end = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, end).trim();
    this.#buffer = this.#buffer.slice(end + 1);
    return line;
  }

  async kill(): Promise<void> {
    try {
      this.process.kill();
    } catch { /* already gone */ }
    await this.process.status;
  }
}

async function server(mode: string, name: string, ...more: string[]): Promise<Child> {
  const child = new Child("server.ts", [mode, name, ...more]);
  const ready = await child.line(60_000);
  if (ready !== "ready") {
    await child.kill();
    throw new Error(`${mode}: the server did not start (${ready})`);
  }
  return child;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

// ---- idle CPU and latency, every mode in the same run ----
const names = modes.map((m) => `com-wake-${m}-${Deno.pid}`);
const servers: Child[] = [];
try {
  for (let i = 0; i < modes.length; i++) servers.push(await server(modes[i], names[i], "cpu"));
  const cpu = await Promise.all(servers.map((s) => s.line(30_000)));
  const client = new Child("client.ts", ["latency", roundsText, ...names]);
  const times = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let line; (line = await client.line(120_000)) !== undefined;) {
    const [name, us] = line.split(" ");
    times.get(name)?.push(Number(us));
  }
  const status = await client.process.status;
  if (!status.success) throw new Error("the latency client failed");
  for (let i = 0; i < modes.length; i++) {
    const values = times.get(names[i])!.sort((a, b) => a - b);
    console.log(
      `${modes[i].padEnd(11)} p50 ${quantile(values, 0.5).toFixed(0).padStart(6)} µs  p90 ${
        quantile(values, 0.9).toFixed(0).padStart(6)
      } µs  max ${values.at(-1)!.toFixed(0).padStart(6)} µs  (${values.length} calls)  ` +
        `idle CPU over 5 s: ${cpu[i]?.replace("cpu ", "")} ms`,
    );
  }
} finally {
  for (const s of servers) await s.kill();
}

// ---- what each mode must survive ----
for (const mode of modes.filter((m) => !m.startsWith("blocked") && !m.includes("+"))) {
  const name = `com-wake-check-${mode}-${Deno.pid}`;
  let s = await server(mode, name);
  try {
    await s.send("self");
    console.log(`${mode.padEnd(11)} self: ${(await s.line(8_000)) ?? "hang (no answer in 8 s)"}`);
  } finally {
    await s.kill();
  }
  s = await server(mode, name);
  const client = new Child("client.ts", ["nest", name]);
  try {
    console.log(
      `${mode.padEnd(11)} nest: ${(await client.line(10_000)) ?? "hang (no answer in 10 s)"}`,
    );
  } finally {
    await client.kill();
    await s.kill();
  }
}
