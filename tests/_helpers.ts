/**
 * Test helpers: Windows-only tests, unique object names, fixture processes and the CLI.
 *
 * @module
 */
import assert from "node:assert/strict";
import { kernel32 } from "../ffi/kernel32.ts";

/** Whether this process can call Win32 (Windows, or deno.exe under Wine). */
export const onWindows: boolean = Deno.build.os === "windows";

/**
 * Declares a test that needs Win32; on other hosts it is reported as ignored.
 *
 * @param name The test's name.
 * @param fn The test.
 */
export function winTest(name: string, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  Deno.test({ name, ignore: !onWindows, fn });
}

let wine: boolean | undefined;
/**
 * Whether this is deno.exe under Wine (ntdll exports `wine_get_version`), for the tests that
 * assert a documented Wine difference. False away from Windows.
 */
export function underWine(): boolean {
  if (wine !== undefined) return wine;
  if (!onWindows) return wine = false;
  try {
    const lib = Deno.dlopen("ntdll.dll", {
      wine_get_version: { parameters: [], result: "pointer" },
    });
    lib.close();
    wine = true;
  } catch {
    wine = false;
  }
  return wine;
}

let counter = 0;
/**
 * A name no other test (in this or a parallel process) uses.
 *
 * @param prefix What the name is for.
 * @returns `winipc-test-<prefix>-<pid>-<n>-<random>`.
 */
export function uniqueName(prefix: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `winipc-test-${prefix}-${Deno.pid}-${++counter}-${random}`;
}

const root = new URL("../", import.meta.url);

/** A path inside the repository. */
export function repoPath(relative: string): string {
  const url = new URL(relative, root);
  return decodeURIComponent(Deno.build.os === "windows" ? url.pathname.slice(1) : url.pathname);
}

/** A running fixture process whose stdout is read line by line. */
export class Fixture implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #errorLines: AsyncIterator<string> | undefined;
  #stderr: Promise<string>;
  readonly output: string[] = [];

  constructor(child: Deno.ChildProcess, stderrPiped = true) {
    this.child = child;
    this.#lines = lines(child.stdout);
    if (stderrPiped) {
      // one branch for the whole text (finish(), error messages), one read line by line
      const [whole, byLine] = child.stderr.tee();
      this.#stderr = new Response(whole).text();
      this.#errorLines = lines(byLine);
    } else {
      this.#stderr = Promise.resolve("");
    }
  }

  /**
   * The next line the fixture prints on stdout.
   *
   * @param timeout Milliseconds to wait.
   */
  line(timeout = 30_000): Promise<string> {
    return this.#next(this.#lines, "stdout", timeout);
  }

  /**
   * The next line the fixture prints on stderr (a listening verb's status goes there).
   *
   * @param timeout Milliseconds to wait.
   */
  errorLine(timeout = 30_000): Promise<string> {
    if (!this.#errorLines) throw new Error("The fixture's stderr is not piped");
    return this.#next(this.#errorLines, "stderr", timeout);
  }

  async #next(from: AsyncIterator<string>, stream: string, timeout: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Fixture printed no line on ${stream} within ${timeout} ms`)),
        timeout,
      );
    });
    try {
      const next = await Promise.race([from.next(), timedOut]);
      if (next.done) {
        const status = await this.child.status;
        throw new Error(
          `Fixture ended (code ${status.code}) before printing a line on ${stream}; stderr:\n${await this
            .#stderr}`,
        );
      }
      if (from === this.#lines) this.output.push(next.value);
      return next.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Reads lines until one equals `expected` (or starts with it, when it ends with `*`).
   */
  async expect(expected: string, timeout = 30_000): Promise<string> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const line = await this.line(Math.max(1, deadline - Date.now()));
      if (expected.endsWith("*") ? line.startsWith(expected.slice(0, -1)) : line === expected) {
        return line;
      }
    }
  }

  /**
   * Waits for the process to end; returns its status and stderr, draining stdout. A fixture
   * that has not ended within `timeout` is killed, and the wait rejects: a hang becomes a
   * failure that names it, instead of a test that never ends.
   *
   * @param timeout Milliseconds to wait.
   */
  async finish(timeout = 120_000): Promise<{ code: number; stderr: string; rest: string[] }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let hung = false;
    const rest: string[] = [];
    const ended = (async () => {
      for (;;) {
        const next = await this.#lines.next();
        if (next.done) break;
        rest.push(next.value);
      }
      return await this.child.status;
    })();
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        hung = true;
        try {
          this.child.kill();
        } catch {
          // it ended meanwhile
        }
        reject(new Error(`Fixture did not end within ${timeout} ms (killed)`));
      }, timeout);
    });
    try {
      const status = await Promise.race([ended, deadline]);
      return { code: status.code, stderr: await this.#stderr, rest };
    } catch (e) {
      if (!hung) throw e;
      await ended.catch(() => undefined);
      const stderr = await this.#stderr;
      throw new Error(
        `${(e as Error).message}; its output after the last line read: ${JSON.stringify(rest)}; ` +
          `stderr:\n${stderr}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill();
    } catch {
      // already ended
    }
    await this.finish().catch(() => undefined);
  }
}

/** The lines of a byte stream, as an iterator. */
function lines(stream: ReadableStream<Uint8Array>): AsyncIterator<string> {
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(new LineSplitter())
    [Symbol.asyncIterator]();
}

class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let buffer = "";
    super({
      transform(chunk, controller) {
        buffer += chunk;
        const lines = buffer.split(/\r?\n/);
        buffer = lines.pop()!;
        for (const line of lines) controller.enqueue(line);
      },
      flush(controller) {
        if (buffer) controller.enqueue(buffer);
      },
    });
  }
}

/**
 * Starts `deno run -A tests/fixtures/<name>` with arguments, reading its stdout by line. Its
 * stderr goes to the test's own stderr. `denoFlags` go before the script (e.g.
 * `--v8-flags=--expose-gc`).
 *
 * Only stdout is piped unless `stderr: "piped"` is asked for: Deno for Windows reads a child's pipes on its blocking thread pool, the
 * same small pool that runs `nonblocking` FFI calls. With eight or more child pipes being read,
 * the pool is full and winipc's waits queue behind the reads (measured under Wine: a
 * nonblocking Sleep(10) took 360 ms with 8 readers, 13 ms with 7).
 */
export function spawnFixture(
  name: string,
  args: string[] = [],
  options: { stderr?: "inherit" | "piped"; denoFlags?: string[] } = {},
): Fixture {
  const stderr = options.stderr ?? "inherit";
  const flags = options.denoFlags ?? [];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ...flags, repoPath(`tests/fixtures/${name}`), ...args],
    stdin: "null",
    stdout: "piped",
    stderr,
  }).spawn();
  return new Fixture(child, stderr === "piped");
}

/** The result of a CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the winipc CLI (`deno run -A cli/main.ts ...args`) to completion, as a user would.
 */
export async function runCli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", repoPath("cli/main.ts"), ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Starts the CLI and reads its stdout by line (for listening verbs).
 */
export function spawnCli(args: string[]): Fixture {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", repoPath("cli/main.ts"), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  return new Fixture(child);
}

/**
 * The share of one core this process uses while the test idles for `windowMs`: the lowest of up
 * to `tries` windows (stopping at the first under `enough`), so that a burst of unrelated work in
 * the process (a collection, an earlier test's cleanup) does not count as polling, which costs
 * every window.
 */
export async function idleCpuShare(windowMs = 1500, tries = 3, enough = 0.05): Promise<number> {
  let lowest = Infinity;
  for (let i = 0; i < tries && lowest >= enough; i++) {
    const cpu0 = cpuMs();
    const wall0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    lowest = Math.min(lowest, (cpuMs() - cpu0) / (performance.now() - wall0));
  }
  return lowest;
}

/** This process's user + kernel CPU time in milliseconds (GetProcessTimes). */
export function cpuMs(): number {
  const [creation, exit, kernel, user] = [0, 0, 0, 0].map(() => new BigUint64Array(1));
  assert.ok(
    kernel32().GetProcessTimes(kernel32().GetCurrentProcess(), creation, exit, kernel, user),
  );
  return Number(kernel[0] + user[0]) / 10_000;
}
