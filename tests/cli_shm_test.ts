import assert from "node:assert/strict";
import { runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

winTest("winipc shm serve|read|write between processes, as a user runs them", async () => {
  const name = uniqueName("cli-shm");
  await using server = spawnCli([
    "shm",
    "serve",
    name,
    "--size",
    "4096",
    "--init",
    "héllo ✓",
    "--mutex",
    `${name}.lock`,
    "--timeout",
    "60",
  ]);
  assert.equal(await server.errorLine(), `serving shm "${name}" (4096 bytes)`);

  const read = await runCli(["shm", "read", name, "--mutex", `${name}.lock`]);
  assert.deepEqual(read, { code: 0, stdout: "héllo ✓\n", stderr: "" });

  const write = await runCli(["shm", "write", name, "second text", "--mutex", `${name}.lock`]);
  assert.deepEqual(write, { code: 0, stdout: "", stderr: "" });
  assert.equal(await server.line(), "second text", "serve prints the text after a change");

  const partial = await runCli(["shm", "read", name, "--offset", "7", "--length", "3"]);
  assert.equal(partial.stdout, "tex\n");

  const json = await runCli(["shm", "read", name, "--json"]);
  assert.deepEqual(JSON.parse(json.stdout), { name, offset: 0, text: "second text" });
  const jsonWrite = await runCli(["shm", "write", name, "x", "--offset", "100", "--json"]);
  assert.deepEqual(JSON.parse(jsonWrite.stdout), { name, offset: 100, bytes: 2 });
});

winTest("winipc shm serve exits 0 at --timeout and prints JSON lines with --json", async () => {
  const name = uniqueName("cli-shm-json");
  // long enough for the `shm write` below, a deno.exe start of its own (seconds under Wine)
  const server = spawnCli(["shm", "serve", name, "--size", "64", "--timeout", "15", "--json"]);
  assert.deepEqual(JSON.parse(await server.line()), { event: "ready", name, size: 64 });
  await runCli(["shm", "write", name, "changed"]);
  assert.deepEqual(JSON.parse(await server.line()), { event: "change", name, text: "changed" });
  const end = await server.finish();
  assert.equal(end.code, 0);
  assert.equal(end.stderr, "");
});

winTest(
  "winipc shm: bad usage exits 2, runtime failures exit 1, each one error: line",
  async () => {
    const cases: [string[], number, RegExp][] = [
      [["shm", "serve", "x"], 2, /^error: required option '--size <bytes>' not specified$/],
      [["shm", "serve", "x", "--size", "0"], 2, /^error: .*--size.*must be at least 1 byte/],
      [["shm", "serve", "x", "--size", "ten"], 2, /^error: .*--size.*whole number of bytes/],
      [["shm", "read"], 2, /^error: missing required argument 'name'$/],
      [["shm", "read", "a\\b"], 2, /^error: Invalid <name>: must not contain "\\"/],
      [["shm", "read", "x", "--offset", "-1"], 2, /^error: /],
      [["shm", "frobnicate"], 2, /^error: unknown command 'frobnicate'$/],
      [
        ["shm", "read", uniqueName("missing")],
        1,
        /^error: Cannot open file mapping ".*": OpenFileMappingW failed with ERROR_FILE_NOT_FOUND \(2\)/,
      ],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, code, `${args.join(" ")}: exit code (stderr: ${result.stderr})`);
      assert.equal(result.stdout, "", `${args.join(" ")}: nothing on stdout`);
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `${args.join(" ")}: one line: ${result.stderr}`);
      assert.match(lines[0], pattern, args.join(" "));
    }
    const name = uniqueName("cli-shm-small");
    await using server = spawnCli(["shm", "serve", name, "--size", "8", "--timeout", "60"]);
    await server.errorLine(); // the ready line
    // The opened view covers the section as the kernel reports it (a whole page under Wine).
    const tooLong = await runCli(["shm", "write", name, "x".repeat(5000)]);
    assert.equal(tooLong.code, 1);
    assert.match(
      tooLong.stderr,
      /^error: Out of bounds: 5001 bytes at offset 0 pass the view's end \((8|4096) bytes\)\n$/,
    );
    const taken = await runCli(["shm", "serve", name, "--size", "8", "--timeout", "1"]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /ERROR_ALREADY_EXISTS/);
  },
);

winTest("winipc --help and --version", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: winipc/);
  assert.match(help.stdout, /shm/);
  const serveHelp = await runCli(["shm", "serve", "--help"]);
  assert.equal(serveHelp.code, 0);
  assert.match(serveHelp.stdout, /--size <bytes>/);
  assert.match(serveHelp.stdout, /Examples:/);
  const version = await runCli(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});
