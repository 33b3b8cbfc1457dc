/**
 * `deno task test`: the whole test suite.
 *
 * On Windows: `deno test` natively. On Linux: provisions Wine 10, deno.exe and a Wine prefix
 * (idempotent), runs the suite on Linux Deno (the platform-independent tests; Win32 tests are
 * ignored there), then on deno.exe under Wine (everything). Ends with one line
 * `N passed, N failed, N skipped` summing both runs, and exits non-zero when anything failed.
 *
 * Usage: deno task test [--only linux|windows] [deno test arguments, e.g. test files]
 *
 * @module
 */
import { provision, repoRoot, startTempCleaner, windowsDeno, wineEnv } from "./wine.ts";

interface Tally {
  passed: number;
  failed: number;
  ignored: number;
  /** The failing tests, as `file: name`, in the order they failed. */
  failures: string[];
}

const RUNNING = /^running \d+ tests? from (\S+)/;
const FAILED_TEST = /^(\s*)(.+?) \.\.\. FAILED\b/;

const SUMMARY =
  /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \(\d+ steps?\))?)?/m;

/** Deno's notice for a test that runs long: `'<name>' has been running for over (8m0s)`. */
const SLOW = /'(.*)' has been running for over \((\d+)m/;
/**
 * Minutes after which a single test counts as hung: its run is ended and the test named as a
 * failure, so a hang makes the suite fail with a reason instead of stopping it forever. The
 * longest test takes about two minutes under Wine on a loaded 2-core machine; Deno prints the
 * notice at 1, 2, 4, 8, ... minutes, so the default ends a hang after 16.
 */
const HANG_MINUTES = Number(Deno.env.get("WINIPC_TEST_HANG_MINUTES") ?? 16);

/** Runs a `deno test` command, passing its output through, and reads its summary line. */
async function run(label: string, command: Deno.Command): Promise<Tally> {
  console.log(`\n=== ${label} ===`);
  const child = command.spawn();
  let tail = "";
  let partial = "";
  let file = "";
  const failures: string[] = [];
  // Reads the test names that failed, a whole line at a time, while the output passes through.
  const scan = (text: string) => {
    const lines = (partial + text).replaceAll("\r", "").split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const running = line.match(RUNNING);
      if (running) file = running[1];
      const slow = line.match(SLOW);
      if (slow && Number(slow[2]) >= HANG_MINUTES) {
        failures.push(`${file}: ${slow[1]} (hung: its run was ended after ${slow[2]} min)`);
        console.log(`\n${label}: "${slow[1]}" has run for ${slow[2]} min; ending the run`);
        try {
          child.kill("SIGKILL");
        } catch {
          // it ended meanwhile
        }
      }
      const failed = line.match(FAILED_TEST);
      // a failed step also fails its test: name the test (no indentation), not each step
      if (failed && failed[1] === "") failures.push(`${file}: ${failed[2]}`);
    }
  };
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      await sink.write(chunk);
      if (sink === Deno.stdout) {
        const text = decoder.decode(chunk, { stream: true });
        tail = (tail + text).slice(-4096);
        scan(text);
      }
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  scan("\n");
  const status = await child.status;
  const match = tail.replaceAll("\r", "").match(SUMMARY);
  if (!match) {
    const why = `${label}: no summary line (exit code ${status.code}); counted as one failure`;
    console.log(why);
    return { passed: 0, failed: 1, ignored: 0, failures: [...failures, why] };
  }
  const tally = { passed: +match[1], failed: +match[2], ignored: +(match[3] ?? 0), failures };
  if (!status.success && tally.failed === 0) {
    tally.failed = 1;
    failures.push(`${label}: deno test exited with code ${status.code}`);
  }
  return tally;
}

/**
 * Serial ports for the Wine run, made on the Linux side (deno.exe under Wine cannot start Linux
 * programs): a socat null-modem pty pair mapped into the prefix as two COM ports, and a third
 * port whose far end is a Linux `cat` (socat EXEC), so bytes written to it come back. The port
 * names go to the tests as WINIPC_TEST_COM_A, WINIPC_TEST_COM_B and WINIPC_TEST_COM_ECHO. A fourth
 * pty, also echoing through `cat`, is mapped as a parallel port (`lptN`), WINIPC_TEST_LPT_ECHO:
 * Wine has no parallel-port driver, so this is a port that opens and carries bytes but answers no
 * parallel-port request. Without socat nothing is set and the serial tests report themselves
 * ignored.
 */
async function startSerialPorts(): Promise<AsyncDisposable> {
  const none = { [Symbol.asyncDispose]: () => Promise.resolve() };
  const hasSocat = await new Deno.Command("sh", {
    args: ["-c", "command -v socat"],
    stdout: "null",
  })
    .output().then((o) => o.success, () => false);
  if (!hasSocat) {
    console.log("socat not found: the serial-port tests will be ignored");
    return none;
  }
  const dir = `${repoRoot}/.tools/serial-${Deno.pid}`;
  Deno.mkdirSync(dir, { recursive: true });
  const dosdevices = `${wineEnv().WINEPREFIX}/dosdevices`;
  const first = 100 + (Deno.pid % 50) * 3; // COM100..COM249: unique per concurrent run
  const ports = { A: first, B: first + 1, ECHO: first + 2 };
  const lpt = 10 + (Deno.pid % 90); // LPT10..LPT99
  const pty = (link: string) => `pty,raw,echo=0,link=${dir}/${link}`;
  const children = [
    new Deno.Command("socat", { args: [pty("A"), pty("B")], stderr: "null" }).spawn(),
    new Deno.Command("socat", { args: [pty("ECHO"), "EXEC:cat"], stderr: "null" }).spawn(),
    new Deno.Command("socat", { args: [pty("LPT"), "EXEC:cat"], stderr: "null" }).spawn(),
  ];
  const links: string[] = [];
  const devices = [
    ...Object.entries(ports).map(([key, n]) => ({ key, device: `com${n}`, env: `COM_${key}` })),
    { key: "LPT", device: `lpt${lpt}`, env: "LPT_ECHO" },
  ];
  for (const { key, device, env } of devices) {
    for (let i = 0; i < 100; i++) {
      try {
        Deno.lstatSync(`${dir}/${key}`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const link = `${dosdevices}/${device}`;
    try {
      Deno.removeSync(link);
    } catch {
      // no stale link
    }
    Deno.symlinkSync(`${dir}/${key}`, link);
    links.push(link);
    Deno.env.set(`WINIPC_TEST_${env}`, device.toUpperCase());
  }
  console.log(
    `serial ports for the tests: COM${ports.A} <-> COM${ports.B}, COM${ports.ECHO} (echo), ` +
      `LPT${lpt} (echo, no parallel-port driver)`,
  );
  return {
    async [Symbol.asyncDispose]() {
      // Let the wineserver close its handles on the ptys first: it complains when they vanish.
      await new Deno.Command("wineserver", { args: ["-w"], env: wineEnv() }).output()
        .catch(() => undefined);
      for (const child of children) {
        try {
          child.kill();
        } catch {
          // already ended
        }
        await child.status;
      }
      for (const link of links) Deno.removeSync(link);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

const args = [...Deno.args];
let only: string | undefined;
const at = args.indexOf("--only");
if (at >= 0) [, only] = args.splice(at, 2);
const targets = args.length ? args : ["tests/"];
const testArgs = ["test", "-A", "--no-prompt", ...targets];

const tallies: Tally[] = [];
if (Deno.build.os === "windows") {
  tallies.push(
    await run("Deno for Windows", windowsDeno(testArgs, { stdout: "piped", stderr: "piped" })),
  );
} else {
  if (only !== "windows") {
    tallies.push(
      await run(
        `Deno for ${Deno.build.os} (platform-independent tests)`,
        new Deno.Command(Deno.execPath(), {
          args: testArgs,
          cwd: repoRoot,
          env: { NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }),
      ),
    );
  }
  if (only !== "linux") {
    await provision();
    await using _ports = await startSerialPorts();
    const stopCleaner = startTempCleaner();
    try {
      tallies.push(
        await run(
          "Deno for Windows under Wine (every test)",
          windowsDeno(testArgs, { stdout: "piped", stderr: "piped" }),
        ),
      );
    } finally {
      stopCleaner();
    }
  }
}

const passed = tallies.reduce((n, t) => n + t.passed, 0);
const failed = tallies.reduce((n, t) => n + t.failed, 0);
// Tests ignored on Linux run under Wine; only what the last (most complete) run skipped is skipped.
const skipped = tallies.at(-1)?.ignored ?? 0;
const failures = tallies.flatMap((t) => t.failures);
if (failures.length) {
  // Last, just above the closing line, so that a red run says why at a glance.
  console.log(`\nfailed (${failures.length}):`);
  for (const name of failures) console.log(`  ${name}`);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
Deno.exit(failed === 0 ? 0 : 1);
