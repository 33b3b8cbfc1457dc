import assert from "node:assert/strict";
import { runCli } from "./_helpers.ts";

const GROUPS = [
  "shm",
  "pipe",
  "mailslot",
  "copydata",
  "clipboard",
  "dde",
  "socket",
  "http",
  "serial",
  "com",
  "rpc",
];

// Help and usage errors come from the command tree alone (no Win32 call), so these run on every
// platform.
Deno.test("every group's --help shows its verbs and examples; an unknown verb exits 2", async () => {
  // One process at a time: Deno for Windows reads child pipes on a small thread pool.
  for (const group of GROUPS) {
    const help = await runCli([group, "--help"]);
    const bad = await runCli([group, "frobnicate"]);
    assert.equal(help.code, 0, `${group} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^Usage: winipc ${group} `), group);
    assert.match(help.stdout, /\nCommands:\n/, `${group} lists its verbs`);
    assert.match(
      help.stdout,
      new RegExp(`\nExamples:\n  winipc ${group} `),
      `${group} has examples`,
    );
    assert.equal(bad.code, 2, `${group} frobnicate`);
    assert.equal(bad.stdout, "");
    assert.equal(bad.stderr, "error: unknown command 'frobnicate'\n", group);
  }
  const root = await runCli(["--help"]);
  for (const group of [...GROUPS, "bench", "demo", "completions"]) {
    assert.match(root.stdout, new RegExp(`\n  ${group} `), `the root help lists ${group}`);
  }
  const missing = await runCli([]);
  assert.equal(missing.code, 2, "no arguments is bad usage");
});
