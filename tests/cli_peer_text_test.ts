import assert from "node:assert/strict";
import { peerText } from "../cli/_common.ts";
import { runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

Deno.test("peerText escapes control characters unless raw", () => {
  assert.equal(peerText("plain ✓ C:\\path", false), "plain ✓ C:\\path");
  assert.equal(peerText("a\nb\rc\td", false), "a\\nb\\rc\\td");
  assert.equal(peerText("\x1b]0;owned\x07\x1b[2J", false), "\\x1b]0;owned\\x07\\x1b[2J");
  assert.equal(peerText("\x00\x7f\u009b", false), "\\x00\\x7f\\x9b");
  assert.equal(peerText("\x1b[31mred\n", true), "\x1b[31mred\n");
});

winTest("cli listeners print a peer's control characters escaped, or raw with --raw", async () => {
  for (const raw of [false, true]) {
    const name = uniqueName("cli-raw");
    const args = ["mailslot", "listen", name, "--count", "1", "--timeout", "60"];
    await using listener = spawnCli(raw ? [...args, "--raw"] : args);
    // the slot exists once the listener runs: retry the send until it does
    const message = "\x1b[31mred\x1b[0m\nsecond line";
    for (let i = 0;; i++) {
      const sent = await runCli(["mailslot", "send", name, message]);
      if (sent.code === 0) break;
      if (i === 60) assert.fail(`mailslot send kept failing: ${sent.stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const end = await listener.finish();
    assert.equal(end.code, 0, end.stderr);
    const printed = end.rest.join("\n");
    assert.equal(printed, raw ? message : "\\x1b[31mred\\x1b[0m\\nsecond line");
  }
});
