// The clipboard is one per Wine prefix (session): the clipboard tests live in this file,
// cli_clipboard_test.ts and examples_test.ts, and they run one after the other (Deno runs a
// file's tests sequentially, and the suite runs files one at a time: no --parallel).
import assert from "node:assert/strict";
import {
  clear,
  formatName,
  listFormats,
  read,
  readText,
  registerFormat,
  sequenceNumber,
  watch,
  write,
  writeText,
} from "../mechanisms/clipboard.ts";
import { Win32Error } from "../ffi/error.ts";
import { runCli, spawnCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

const NON_ASCII = "héllo wörld ✓ 𝄞 日本語 — clipboard";

winTest("clipboard: text set in another process is read here, and the other way", async () => {
  const text = `${NON_ASCII} ${uniqueName("a")}`;
  await using setter = spawnFixture("clipboard_peer.ts", ["set-text", text]);
  assert.equal(await setter.line(), "ok");
  assert.equal((await setter.finish()).code, 0);
  // the setter process has exited: its data stays on the clipboard
  assert.equal(await readText(), text);

  const back = `${NON_ASCII} ${uniqueName("b")}`;
  await writeText(back);
  await using getter = spawnFixture("clipboard_peer.ts", ["get-text"]);
  assert.deepEqual(JSON.parse(await getter.line()), { text: back });
});

winTest("clipboard: a custom format round trip with text in the same set", async () => {
  const name = uniqueName("fmt");
  const bytes = new Uint8Array([0, 1, 2, 254, 255, 0, 42]);
  const hex = "000102feff002a";
  await using setter = spawnFixture("clipboard_peer.ts", ["set-custom", name, hex]);
  assert.equal(await setter.line(), "ok");
  await setter.finish();
  const id = registerFormat(name);
  assert.ok(id >= 0xc000);
  assert.equal(formatName(id), name);
  const got = await read(name);
  assert.ok(got !== null);
  // GlobalSize may round a block up: the payload is a prefix, any rest is padding
  assert.deepEqual(got.subarray(0, bytes.length), bytes);
  assert.deepEqual(await read(id).then((b) => b?.subarray(0, bytes.length)), bytes);
  assert.equal(await readText(), "custom");
  const formats = await listFormats();
  assert.ok(formats.some((f) => f.id === id && f.name === name), JSON.stringify(formats));
  assert.ok(formats.some((f) => f.name === "CF_UNICODETEXT"));

  // and back: written here, read by the other process
  const mine = uniqueName("fmt2");
  await write([
    { format: mine, data: new Uint8Array([9, 8, 7]) },
    { format: "CF_UNICODETEXT", data: "two formats" },
  ]);
  await using getter = spawnFixture("clipboard_peer.ts", ["get-custom", mine]);
  assert.match(JSON.parse(await getter.line()).hex, /^090807/);
  assert.equal(await readText(), "two formats");
});

winTest("clipboard: watch sees a change made by another process", async () => {
  const changes = watch();
  const before = sequenceNumber();
  const text = `watched ${uniqueName("w")}`;
  await using setter = spawnFixture("clipboard_peer.ts", ["set-text", text]);
  assert.equal(await setter.line(), "ok");
  const timeout = setTimeout(() => changes.return?.(), 30_000);
  try {
    const change = await changes.next();
    assert.equal(change.done, false);
    assert.notEqual(change.value!.sequence, before);
    assert.equal(await readText(), text);
  } finally {
    clearTimeout(timeout);
    await changes.return?.();
  }
});

winTest("clipboard: another process's watch sees changes made here", async () => {
  await using watcher = spawnFixture("clipboard_peer.ts", ["watch", "2"]);
  assert.equal(await watcher.line(), "ready");
  await writeText("first ✓");
  assert.deepEqual(JSON.parse(await watcher.line()), { text: "first ✓" });
  await writeText("second ✓");
  assert.deepEqual(JSON.parse(await watcher.line()), { text: "second ✓" });
  assert.equal((await watcher.finish()).code, 0);
});

winTest(
  "clipboard: held open by another process, retried until free, else a clear error",
  async () => {
    await using holder = spawnFixture("clipboard_peer.ts", ["hold", "3000"]);
    assert.equal(await holder.line(), "holding");
    await assert.rejects(writeText("too soon", { timeout: 200 }), (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_ACCESS_DENIED");
      assert.match(
        e.message,
        /Cannot open the clipboard to write: .* holds it open \(retried for 200 ms\)/,
      );
      return true;
    });
    // retried with backoff until the holder lets go (after about 3 s)
    await writeText("after the holder", { timeout: 20_000 });
    assert.equal(await holder.line(), "released");
    assert.equal(await readText(), "after the holder");
  },
);

winTest("clipboard: bad input gives clear errors", async () => {
  await writeText("only text");
  const missing = uniqueName("never-registered");
  await assert.rejects(read(missing), (e) => {
    assert.ok(e instanceof Deno.errors.NotFound);
    assert.match((e as Error).message, new RegExp(`Unknown clipboard format "${missing}"`));
    assert.match((e as Error).message, /CF_UNICODETEXT/);
    return true;
  });
  assert.equal(await read("CF_DIB"), null, "a standard format that is absent reads as null");
  await assert.rejects(read(""), /Invalid argument "format"/);
  await assert.rejects(read(0x10000), RangeError);
  await assert.rejects(write([]), /must hold at least one format/);
  await assert.rejects(writeText(5 as unknown as string), /Invalid argument "text"/);
  await assert.rejects(readText({ timeout: -1 }), RangeError);
  assert.throws(() => registerFormat("a\0b"), /must not contain NUL/);
  await clear();
  assert.equal(await readText(), null);
  assert.deepEqual(await listFormats(), []);
});

winTest("CLI: clipboard set, get and watch (CF_UNICODETEXT)", async () => {
  const text = `${NON_ASCII} ${uniqueName("cli")}`;
  const set = await runCli(["clipboard", "set", text]);
  assert.deepEqual(set, { code: 0, stdout: "", stderr: "" });
  assert.equal(await readText(), text);
  const got = await runCli(["clipboard", "get"]);
  assert.deepEqual(got, { code: 0, stdout: `${text}\n`, stderr: "" });
  const json = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout), { text });

  await using watcher = spawnCli(["clipboard", "watch", "--count", "1", "--json"]);
  // the watcher prints nothing before the first change: keep changing until it reports one
  let stop = false;
  const changer = (async () => {
    for (let i = 0; i < 100 && !stop; i++) {
      await writeText(`change ${i}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  const first = JSON.parse(await watcher.line(30_000));
  stop = true;
  await changer;
  assert.equal(first.event, "change");
  assert.match(String(first.text), /^change \d+$/);
  assert.equal(typeof first.sequence, "number");
  assert.equal((await watcher.finish()).code, 0, "exits 0 after --count changes");

  await clear();
  const empty = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(empty.stdout), { text: null });
  const bad = await runCli(["clipboard", "set"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: missing required argument 'text'/);
});
