// The compiled binary: cli/_self.ts starts the right program inside and outside one, and the
// compile task embeds every module the CLI loads at run time (the Workers), which `deno compile`
// does not find by itself. The compile step runs here with DENORT_BIN pointed at the Windows
// deno.exe in .tools/ (the real runtime stub, denort, is a download these machines cannot make),
// so the binary it writes is not runnable; what it embeds is what its listing shows.
import assert from "node:assert/strict";
import { selfInvocation } from "../cli/_self.ts";
import { provision, repoRoot } from "../tools/wine.ts";

Deno.test("selfInvocation() re-runs a script with deno run and a compiled binary as itself", () => {
  const script = selfInvocation(["bench", "--peer", "x"], ["--stack-size=4096"], {
    standalone: false,
    execPath: "C:\\deno\\deno.exe",
    mainModule: Deno.build.os === "windows"
      ? "file:///C:/src/winipc/cli/main.ts"
      : "file:///src/winipc/cli/main.ts",
  });
  assert.equal(script.command, "C:\\deno\\deno.exe");
  assert.deepEqual(script.args, [
    "run",
    "-A",
    "--quiet",
    "--v8-flags=--stack-size=4096",
    Deno.build.os === "windows" ? "C:\\src\\winipc\\cli\\main.ts" : "/src/winipc/cli/main.ts",
    "bench",
    "--peer",
    "x",
  ]);
  assert.deepEqual(script.env, {});

  // Inside a compiled binary the main module still ends in .ts: only `standalone` tells.
  const compiled = selfInvocation(["demo", "--peer", "s"], ["--stack-size=4096"], {
    standalone: true,
    execPath: "C:\\bin\\winipc.exe",
    mainModule: "file:///C:/Users/me/AppData/Local/Temp/deno-compile-winipc/cli/main.ts",
    envV8Flags: "--max-old-space-size=512",
  });
  assert.equal(compiled.command, "C:\\bin\\winipc.exe");
  assert.deepEqual(compiled.args, ["demo", "--peer", "s"]);
  assert.deepEqual(compiled.env, { DENO_V8_FLAGS: "--max-old-space-size=512,--stack-size=4096" });
  const plain = selfInvocation(["demo"], [], {
    standalone: true,
    execPath: "C:\\bin\\winipc.exe",
    mainModule: "file:///x/cli/main.ts",
  });
  assert.deepEqual(plain, { command: "C:\\bin\\winipc.exe", args: ["demo"], env: {} });

  // A remote main module is run again by its URL.
  const remote = selfInvocation(["demo"], [], {
    standalone: false,
    execPath: "deno",
    mainModule: "https://example.test/winipc/cli/main.ts",
  });
  assert.deepEqual(remote.args, [
    "run",
    "-A",
    "--quiet",
    "https://example.test/winipc/cli/main.ts",
    "demo",
  ]);
});

/** The local modules of a module's graph (`deno info --json`), as file URLs. */
async function localGraph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  return info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"));
}

const WORKER = /new\s+Worker\s*\(/g;
const WORKER_URL =
  /new\s+Worker\s*\(\s*new\s+URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(["'])([^"']+)\1\s*\)/g;

/**
 * The modules that `entry`'s program loads at run time and `deno compile` does not see: Workers
 * and dynamic imports found in the source of every local module of its graph (and of theirs).
 * A `new Worker(` whose module is not a literal `new URL("...", import.meta.url)` fails the test:
 * it could not be checked.
 */
async function dynamicModules(entry: string): Promise<{ dynamic: string[]; all: string[] }> {
  const dynamic = new Set<string>();
  const all = new Set<string>();
  const queue = [entry];
  const scanned = new Set<string>();
  while (queue.length) {
    const next = queue.shift()!;
    for (const url of await localGraph(next)) {
      all.add(url);
      if (scanned.has(url)) continue;
      scanned.add(url);
      const source = await Deno.readTextFile(new URL(url));
      const plain = [...source.matchAll(WORKER)].length;
      const literal = [...source.matchAll(WORKER_URL)];
      assert.equal(
        literal.length,
        plain,
        `${url}: a Worker whose module is not new URL("<literal>", import.meta.url)`,
      );
      for (const m of [...literal, ...source.matchAll(DYNAMIC_IMPORT)]) {
        if (!m[2].startsWith(".")) continue; // npm:, jsr: and the like are resolved when compiling
        const target = new URL(m[2], url).href;
        if (!dynamic.has(target)) {
          dynamic.add(target);
          queue.push(target);
        }
      }
    }
  }
  return { dynamic: [...dynamic], all: [...all] };
}

/**
 * The files of `deno compile`'s "Embedded Files" tree, relative to the repository. A folder
 * embedded whole is shown as `name/*` and is returned as such.
 */
function embeddedFiles(listing: string): Set<string> {
  // deno-lint-ignore no-control-regex -- stripping colour codes is the point
  const lines = listing.replace(/\x1b\[[0-9;]*m/g, "").split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === "Embedded Files");
  assert.ok(start >= 0, `no "Embedded Files" section in:\n${listing}`);
  const files = new Set<string>();
  const stack: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = line.match(/^((?:│ | {2})*)[├└]─([─┬]) (.+?)(?: \([^()]*\))?$/);
    if (!m) {
      if (files.size && line.trim() === "") break; // the tree ends
      continue;
    }
    const depth = m[1].length / 2;
    stack.length = depth;
    if (m[2] === "┬") stack.push(m[3]);
    else files.add([...stack, m[3]].join("/"));
  }
  return files;
}

function isEmbedded(files: Set<string>, path: string): boolean {
  if (files.has(path)) return true;
  const parts = path.split("/");
  for (let i = parts.length - 1; i > 0; i--) {
    if (files.has(`${parts.slice(0, i).join("/")}/*`)) return true;
  }
  return false;
}

function relative(url: string): string {
  const path = decodeURIComponent(new URL(url).pathname).replace(/^\/([A-Za-z]:)/, "$1");
  assert.ok(path.startsWith(repoRoot + "/"), `${path} is outside the repository`);
  return path.slice(repoRoot.length + 1);
}

Deno.test({
  name: "the compile task embeds every module the CLI loads at run time (DENORT_BIN=deno.exe)",
  // The Linux build of Deno runs the compile step; under Wine the same step would take minutes.
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const denort = `${repoRoot}/.tools/deno-win/deno.exe`;
    if (!(await Deno.stat(denort).then(() => true, () => false))) await provision();

    const { dynamic, all } = await dynamicModules(`${repoRoot}/cli/main.ts`);
    const workers = dynamic.map(relative).sort();
    // What the CLI starts today; a new one is found by the scan above and checked below.
    for (
      const known of [
        "mechanisms/_dde_worker.ts",
        "mechanisms/_http_worker.ts",
        "mechanisms/_window_thread_worker.ts",
      ]
    ) {
      assert.ok(workers.includes(known), `${known} not found by the scan: ${workers}`);
    }

    // Both compile tasks name each of them.
    const config = JSON.parse(await Deno.readTextFile(`${repoRoot}/deno.json`));
    for (const task of ["compile:windows-x64", "compile:windows-arm64"]) {
      const line: string = config.tasks[task];
      for (const w of workers) assert.ok(line.includes(`--include ${w}`), `${task} lacks ${w}`);
    }

    const output = `${repoRoot}/dist/winipc-x64.exe`;
    await Deno.remove(output).catch(() => undefined);
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile:windows-x64"],
      cwd: repoRoot,
      env: { DENORT_BIN: denort, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    try {
      assert.ok(run.success, `the compile task failed:\n${text}`);
      assert.ok((await Deno.stat(output)).size > 1 << 20, "no binary written");
    } finally {
      await Deno.remove(output).catch(() => undefined);
    }
    const files = embeddedFiles(text);
    const missing = all.map(relative).filter((p) => !isEmbedded(files, p));
    assert.deepEqual(
      missing,
      [],
      `not embedded (every local module of the program and its workers)`,
    );
    for (const w of workers) assert.ok(isEmbedded(files, w), `${w} is not embedded`);
    // The check can fail: a module nothing includes is not in the listing.
    assert.equal(isEmbedded(files, "tests/fixtures/first_load_worker.ts"), false);
    assert.equal(isEmbedded(files, "mechanisms/not_a_module.ts"), false);
    console.log(`  embedded: ${workers.join(", ")} among ${all.length} local modules`);
  },
});
