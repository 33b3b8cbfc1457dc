import assert from "node:assert/strict";
import { MailslotWriter } from "../mechanisms/mailslot.ts";
import { runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

/** Waits until a mailslot exists (the listening CLI has created it). */
async function slotReady(name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      MailslotWriter.open(name).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`Mailslot "${name}" never appeared`);
}

winTest("cli: pipe serve --echo --count 2 --json answers two pipe send --reply", async () => {
  const name = uniqueName("cli-pipe");
  await using server = spawnCli(["pipe", "serve", name, "--echo", "--count", "2", "--json"]);
  const first = await runCli(["pipe", "send", name, "héllo ✓", "--reply"]);
  assert.deepEqual(first, { code: 0, stdout: "echo:héllo ✓\n", stderr: "" });
  const second = await runCli(["pipe", "send", `\\\\.\\pipe\\${name}`, "two", "--reply", "--json"]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(JSON.parse(second.stdout), {
    name: `\\\\.\\pipe\\${name}`,
    sent: 3,
    reply: "echo:two",
  });
  const lines = [JSON.parse(await server.line()), JSON.parse(await server.line())];
  assert.deepEqual(lines.map((l) => l.text), ["héllo ✓", "two"]);
  for (const l of lines) {
    assert.equal(l.name, `\\\\.\\pipe\\${name}`);
    assert.ok(Number.isInteger(l.pid) && l.pid > 0);
  }
  assert.notEqual(lines[0].pid, lines[1].pid); // two sender processes
  const done = await server.finish();
  assert.deepEqual(done, { code: 0, stderr: "", rest: [] });
});

winTest(
  "cli: pipe serve without --echo prints; send --reply then fails after 10 s; a missing pipe fails",
  async () => {
    const name = uniqueName("cli-pipe-quiet");
    await using server = spawnCli(["pipe", "serve", name, "--count", "3", "--timeout", "60"]);
    assert.deepEqual(await runCli(["pipe", "send", name, "plain"]), {
      code: 0,
      stdout: "",
      stderr: "",
    });
    assert.equal(await server.line(), "plain");
    const [noReply, missing] = await Promise.all([
      runCli(["pipe", "send", name, "anyone?", "--reply"]),
      runCli(["pipe", "send", uniqueName("cli-pipe-missing"), "x"]),
    ]);
    assert.equal(noReply.code, 1);
    assert.equal(noReply.stdout, "");
    assert.match(
      noReply.stderr,
      /^error: Cannot transact on pipe ".*": no completion within 10000 ms\n$/,
    );
    assert.equal(await server.line(), "anyone?");
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^error: Cannot connect to pipe ".*cli-pipe-missing.*": no such pipe after waiting 10000 ms/,
    );
    // The third message reaches --count: the server exits 0.
    assert.equal((await runCli(["pipe", "send", name, "last"])).code, 0);
    assert.equal(await server.line(), "last");
    assert.deepEqual(await server.finish(), { code: 0, stderr: "", rest: [] });
  },
);

winTest("cli: pipe serve --remote accepts clients as before (remote ones too)", async () => {
  const name = uniqueName("cli-pipe-remote");
  await using server = spawnCli(["pipe", "serve", name, "--remote", "--echo", "--count", "1"]);
  assert.deepEqual(await runCli(["pipe", "send", name, "far", "--reply"]), {
    code: 0,
    stdout: "echo:far\n",
    stderr: "",
  });
  assert.equal(await server.line(), "far");
  assert.deepEqual(await server.finish(), { code: 0, stderr: "", rest: [] });
});

winTest("cli: pipe serve --timeout exits 0 with no output", async () => {
  const result = await runCli(["pipe", "serve", uniqueName("cli-pipe-idle"), "--timeout", "1"]);
  assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
});

winTest("cli: mailslot listen --count 2 prints each message; send writes one", async () => {
  const name = uniqueName("cli-slot");
  await using listener = spawnCli(["mailslot", "listen", name, "--count", "2"]);
  await slotReady(name);
  assert.deepEqual(await runCli(["mailslot", "send", name, "un été ✓"]), {
    code: 0,
    stdout: "",
    stderr: "",
  });
  const json = await runCli(["mailslot", "send", `\\\\.\\mailslot\\${name}`, "two", "--json"]);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), { name: `\\\\.\\mailslot\\${name}`, sent: 3 });
  assert.equal(await listener.line(), "un été ✓");
  assert.equal(await listener.line(), "two");
  assert.deepEqual(await listener.finish(), { code: 0, stderr: "", rest: [] });
});

winTest("cli: mailslot listen warns of a message over 64 KiB and keeps listening", async () => {
  const name = uniqueName("cli-slot-big");
  await using listener = spawnCli(["mailslot", "listen", name, "--count", "1"]);
  await slotReady(name);
  using writer = MailslotWriter.open(name);
  let refused = false;
  try {
    writer.write(new Uint8Array(65_537).fill(0x78));
  } catch {
    refused = true; // Windows holds the writer to the slot's 64 KiB
  }
  writer.write("after");
  assert.equal(await listener.line(), "after");
  const { code, stderr } = await listener.finish();
  assert.equal(code, 0);
  if (!refused) {
    // Wine delivers it; the listener drops it with a warning
    assert.match(stderr, /^warning: Message of 65537 bytes .* over maxMessageBytes \(65536\)/);
  }
});

winTest(
  "cli: mailslot listen --json and --timeout; send to a missing slot fails with exit 1",
  async () => {
    const name = uniqueName("cli-slot-json");
    await using listener = spawnCli(["mailslot", "listen", name, "--json", "--timeout", "20"]);
    await slotReady(name);
    assert.equal((await runCli(["mailslot", "send", name, "a"])).code, 0);
    assert.deepEqual(JSON.parse(await listener.line()), {
      name: `\\\\.\\mailslot\\${name}`,
      text: "a",
    });
    const missing = await runCli(["mailslot", "send", uniqueName("cli-slot-missing"), "x"]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^error: Cannot open mailslot ".*": no reader has created it: CreateFileW failed with ERROR_FILE_NOT_FOUND/,
    );
    const idle = await runCli([
      "mailslot",
      "listen",
      uniqueName("cli-slot-idle"),
      "--timeout",
      "1",
    ]);
    assert.deepEqual(idle, { code: 0, stdout: "", stderr: "" });
    listener.child.kill();
  },
);

winTest("cli: bad usage of pipe and mailslot verbs exits 2 with an error line", async () => {
  const cases: [string[], RegExp][] = [
    [["pipe", "serve", "a\\b"], /^error: Invalid <name>: must not contain "\\"/],
    [["pipe", "serve", "\\\\host\\pipe\\x"], /^error: Invalid <name>: must be on this machine/],
    [["pipe", "serve", "x", "--count", "0"], /^error: .*--count.*must be at least 1/],
    [["pipe", "serve", "x", "--timeout", "soon"], /^error: .*--timeout.*number of seconds/],
    [["pipe", "send", "x"], /^error: missing required argument 'message'/],
    [["pipe", "send", "", "m"], /^error: Invalid <name>: must not be empty/],
    [
      ["mailslot", "listen", "\\\\*\\mailslot\\x"],
      /^error: Invalid <name>: must be on this machine/,
    ],
    [
      ["mailslot", "send", "\\\\.\\pipe\\x", "m"],
      /^error: Invalid <name>: must be a mailslot name/,
    ],
    [["mailslot", "listen", "x", "--count", "-1"], /^error: /],
    [["pipe", "frobnicate"], /^error: /],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  for (const [i, result] of results.entries()) {
    assert.equal(result.code, 2, `${cases[i][0].join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, cases[i][1], cases[i][0].join(" "));
    assert.equal(result.stdout, "");
  }
});
