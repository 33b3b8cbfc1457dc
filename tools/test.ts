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
import { provision, repoRoot, windowsDeno } from "./wine.ts";

interface Tally {
  passed: number;
  failed: number;
  ignored: number;
}

const SUMMARY =
  /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \(\d+ steps?\))?)?/m;

/** Runs a `deno test` command, passing its output through, and reads its summary line. */
async function run(label: string, command: Deno.Command): Promise<Tally> {
  console.log(`\n=== ${label} ===`);
  const child = command.spawn();
  let tail = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      await sink.write(chunk);
      if (sink === Deno.stdout) {
        tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
      }
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const status = await child.status;
  const match = tail.replaceAll("\r", "").match(SUMMARY);
  if (!match) {
    console.log(`${label}: no summary line (exit code ${status.code}); counted as one failure`);
    return { passed: 0, failed: 1, ignored: 0 };
  }
  const tally = { passed: +match[1], failed: +match[2], ignored: +(match[3] ?? 0) };
  if (!status.success && tally.failed === 0) tally.failed = 1;
  return tally;
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
    tallies.push(
      await run(
        "Deno for Windows under Wine (every test)",
        windowsDeno(testArgs, { stdout: "piped", stderr: "piped" }),
      ),
    );
  }
}

const total = tallies.reduce(
  (a, t) => ({ passed: a.passed + t.passed, failed: a.failed + t.failed, ignored: a.ignored }),
  { passed: 0, failed: 0, ignored: 0 },
);
// Tests ignored on Linux run under Wine; only what the last (most complete) run skipped is skipped.
total.ignored = tallies.at(-1)?.ignored ?? 0;
console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.ignored} skipped`);
Deno.exit(total.failed === 0 ? 0 : 1);
