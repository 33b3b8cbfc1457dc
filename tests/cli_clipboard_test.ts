// The clipboard is one per Wine prefix (session). The suite runs test files one after the other,
// and the tests of a file in sequence, so this file's tests do not race clipboard_test.ts.
import assert from "node:assert/strict";
import { runCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

winTest("cli: clipboard set --json, then other processes read the text", async () => {
  const text = `héllo ✓ 𝄞 日本語 ${uniqueName("cli-clip")}\tline two`;
  const set = await runCli(["clipboard", "set", text, "--json"]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stderr, "");
  assert.equal(set.stdout.split("\n").length, 2, `one JSON line: ${set.stdout}`);
  assert.deepEqual(JSON.parse(set.stdout), { text });

  // the setting process has exited: its text stays on the clipboard for the next ones
  const get = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(get, { code: 0, stdout: `${JSON.stringify({ text })}\n`, stderr: "" });
  await using reader = spawnFixture("clipboard_peer.ts", ["get-text"]);
  assert.deepEqual(JSON.parse(await reader.line()), { text });
  assert.equal((await reader.finish()).code, 0);

  // a second set replaces it, and without --json prints nothing
  const second = `second ${uniqueName("cli-clip")}`;
  assert.deepEqual(await runCli(["clipboard", "set", second]), {
    code: 0,
    stdout: "",
    stderr: "",
  });
  assert.deepEqual(await runCli(["clipboard", "get"]), {
    code: 0,
    stdout: `${second}\n`,
    stderr: "",
  });
});

winTest("cli: clipboard set --json of an empty text, and bad usage", async () => {
  const empty = await runCli(["clipboard", "set", "", "--json"]);
  assert.deepEqual(empty, { code: 0, stdout: '{"text":""}\n', stderr: "" });
  const got = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(got.stdout), { text: "" });

  const extra = await runCli(["clipboard", "set", "a", "b", "--json"]);
  assert.equal(extra.code, 2);
  assert.equal(extra.stdout, "");
  assert.match(extra.stderr, /^error: too many arguments for 'set'\. Expected 1 argument/);
});
