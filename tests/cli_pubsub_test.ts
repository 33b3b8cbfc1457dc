import assert from "node:assert/strict";
import { runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

winTest("winipc shm subscribe, then publish --count: every sample on its own line", async () => {
  const name = uniqueName("cli-ps-sub-first");
  await using sub = spawnCli(["shm", "subscribe", name, "--count", "3", "--timeout", "60"]);
  assert.equal(await sub.errorLine(), `subscribed to "${name}"`);
  const pub = await runCli(["shm", "publish", name, "tick", "--count", "3"]);
  assert.deepEqual(pub, { code: 0, stdout: "", stderr: "" });
  assert.equal(await sub.line(), "tick 1");
  assert.equal(await sub.line(), "tick 2");
  assert.equal(await sub.line(), "tick 3");
  const end = await sub.finish();
  assert.equal(end.code, 0);
  assert.deepEqual(end.rest, []);
});

winTest(
  "winipc shm publish --subscribers waits for them; subscribe --json; list shows the service",
  async () => {
    const name = uniqueName("cli-ps-pub-first");
    await using pub = spawnCli([
      "shm",
      "publish",
      name,
      "héllo ✓",
      "--count",
      "2",
      "--subscribers",
      "2",
      "--timeout",
      "60",
      "--json",
    ]);
    await using text = spawnCli(["shm", "subscribe", name, "--timeout", "60"]);
    assert.equal(await text.errorLine(), `subscribed to "${name}"`);
    // the publisher waits for a second subscriber: list shows it with one
    const listed = await runCli(["shm", "list"]);
    assert.equal(listed.code, 0);
    const line = listed.stdout.split("\n").find((l) => l.startsWith(`${name}\t`));
    assert.ok(line, `list shows the service: ${listed.stdout}`);
    assert.match(line, /\tpublisher [1-9]\d*\tsubscribers 1\tsample 4096 B\tblock$/);
    const json = await runCli(["shm", "list", "--json"]);
    const record = json.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((r) =>
      r.name === name
    );
    assert.equal(record.subscribers, 1);
    assert.equal(record.sampleSize, 4096);

    await using js = spawnCli(["shm", "subscribe", name, "--json", "--timeout", "60"]);
    assert.deepEqual(JSON.parse(await js.line()), { event: "ready", name });
    assert.deepEqual(JSON.parse(await js.line()), { name, sequence: 1, text: "héllo ✓ 1" });
    assert.deepEqual(JSON.parse(await js.line()), { name, sequence: 2, text: "héllo ✓ 2" });
    assert.equal(await text.line(), "héllo ✓ 1");
    assert.equal(await text.line(), "héllo ✓ 2");
    assert.deepEqual(JSON.parse(await pub.line()), { name, published: 2, subscribers: 2 });
    // the publisher closed: both subscribers end with exit 0
    assert.equal((await pub.finish()).code, 0);
    assert.equal((await text.finish()).code, 0);
    assert.equal((await js.finish()).code, 0);
  },
);

winTest("winipc shm publish|subscribe|list: bad usage exits 2, failures exit 1", async () => {
  const cases: [string[], number, RegExp][] = [
    [["shm", "publish", "a\\b", "x"], 2, /^error: Invalid <name>: must not contain "\\"/],
    [["shm", "publish", "x", "y", "--count", "0"], 2, /^error: .*--count.*must be at least 1/],
    [["shm", "publish", "x", "y", "--subscribers", "33"], 2, /^error: .*must be at most 32/],
    [["shm", "subscribe", "x", "--timeout", "soon"], 2, /^error: .*--timeout.*number of seconds/],
    [["shm", "subscribe"], 2, /^error: missing required argument 'name'$/],
    [
      ["shm", "publish", uniqueName("cli-ps-big"), "x".repeat(5000)],
      1,
      /^error: Cannot publish on ".*": a message of 5000 bytes is larger than its samples of 4096 bytes$/,
    ],
    [
      ["shm", "publish", uniqueName("cli-ps-wait"), "x", "--subscribers", "1", "--timeout", "1"],
      1,
      /^error: --timeout of 1 s reached$/,
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
  const quiet = await runCli(["shm", "subscribe", uniqueName("cli-ps-quiet"), "--timeout", "1"]);
  assert.equal(quiet.code, 0, "a subscriber with nothing to receive exits 0 at --timeout");
  assert.equal(quiet.stdout, "");
});
