import assert from "node:assert/strict";
import { Win32Error } from "../ffi/error.ts";
import { ProtocolError } from "../mechanisms/channel.ts";
import {
  DEFAULT_MAILSLOT_MAX_MESSAGE,
  mailslotPath,
  MailslotReader,
  MailslotWriter,
  sendMailslot,
} from "../mechanisms/mailslot.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

Deno.test("mailslotPath() resolves names and keeps full paths, the broadcast form included", () => {
  assert.equal(mailslotPath("events"), "\\\\.\\mailslot\\events");
  assert.equal(mailslotPath("app\\events"), "\\\\.\\mailslot\\app\\events");
  assert.equal(mailslotPath("\\\\*\\mailslot\\events"), "\\\\*\\mailslot\\events");
  assert.equal(mailslotPath("\\\\HOST\\MAILSLOT\\x"), "\\\\HOST\\MAILSLOT\\x");
});

Deno.test("bad mailslot names and options are refused before any Win32 call", () => {
  assert.throws(() => mailslotPath(""), { name: "RangeError", message: /"name".*empty/ });
  assert.throws(() => mailslotPath("\\\\.\\pipe\\x"), { name: "TypeError", message: /mailslot/ });
  assert.throws(() => mailslotPath("a\\\\b"), TypeError);
  assert.throws(() => mailslotPath("trailing\\"), TypeError);
  assert.throws(() => mailslotPath("x\0"), { name: "TypeError", message: /NUL/ });
  assert.throws(() => mailslotPath("x".repeat(300)), RangeError);
  // A reader's slot is on this machine; a broadcast path is for writers only.
  assert.throws(() => MailslotReader.create("\\\\*\\mailslot\\x"), {
    name: "TypeError",
    message: /this machine/,
  });
  assert.throws(() => MailslotReader.create("x", { maxMessageSize: -1 }), RangeError);
  assert.throws(() => MailslotReader.create("x", { maxMessageBytes: 0 }), {
    name: "RangeError",
    message: /options.maxMessageBytes": must be at least 1 byte/,
  });
  assert.throws(
    () => MailslotReader.create("x", { maxMessageBytes: 10, maxMessageSize: 20 }),
    /maxMessageBytes and maxMessageSize \(its former name\) differ/,
  );
  assert.throws(() => MailslotReader.create("x", { readTimeout: 1.5 }), TypeError);
  assert.throws(() => sendMailslot("x", 3 as unknown as string), {
    name: "TypeError",
    message: /"data"/,
  });
});

winTest("4 writer processes x 100 messages: all 400 read exactly once", async () => {
  const name = uniqueName("slot-many");
  using slot = MailslotReader.create(name, { maxMessageSize: 256 });
  const writers = Array.from(
    { length: 4 },
    (_, id) => spawnFixture("mailslot_writer.ts", [name, "many", `w${id}`, "100"]),
  );
  const seen = new Map<string, number>();
  const reading = (async () => {
    for await (const message of slot.messages({ signal: AbortSignal.timeout(60_000) })) {
      const text = new TextDecoder().decode(message);
      seen.set(text, (seen.get(text) ?? 0) + 1);
      if (seen.size === 400) return;
    }
  })();
  const results = await Promise.all(writers.map((w) => w.finish()));
  for (const [id, result] of results.entries()) {
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.rest, [`sent w${id} 100`]);
  }
  await reading;
  assert.equal(seen.size, 400);
  for (let id = 0; id < 4; id++) {
    for (let i = 0; i < 100; i++) assert.equal(seen.get(`w${id}:${i}`), 1, `w${id}:${i}`);
  }
  assert.equal(slot.info().messageCount, 0);
});

winTest("a read timeout: the reader's own (setReadTimeout) and one per read", async () => {
  const name = uniqueName("slot-timeout");
  using slot = MailslotReader.create(name, { readTimeout: 300 });
  assert.equal(slot.info().readTimeout, 300);
  let start = performance.now();
  await assert.rejects(slot.read(), (e: Error) => {
    assert.ok(e instanceof Deno.errors.TimedOut);
    assert.match(e.message, /No message in mailslot ".*slot-timeout.*" within 300 ms/);
    return true;
  });
  assert.ok(performance.now() - start >= 290);
  slot.setReadTimeout(0);
  assert.equal(slot.info().readTimeout, 0);
  await assert.rejects(slot.read(), Deno.errors.TimedOut);
  slot.setReadTimeout(Infinity);
  assert.equal(slot.info().readTimeout, Infinity);
  start = performance.now();
  await assert.rejects(slot.read({ timeout: 200 }), Deno.errors.TimedOut);
  // An AbortSignal ends a wait too.
  const reason = new Error("enough");
  await assert.rejects(
    slot.read({ signal: AbortSignal.timeout(10_000), timeout: 200 }),
    Deno.errors.TimedOut,
  );
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 100);
  await assert.rejects(slot.read({ signal: controller.signal }), (e) => e === reason);
  // A message from another process arrives within a timed read.
  await using writer = spawnFixture("mailslot_writer.ts", [name, "one", "late"]);
  assert.equal(await slot.readText({ timeout: 30_000 }), "late");
  assert.equal(await writer.line(), "sent 4");
});

winTest(
  "messages of 0, 1 and 2 bytes from another process are each read whole, in order",
  async () => {
    // The reader waits with a one-byte ReadFile on a worker thread: a message that fits is read
    // by that wait itself, a longer one stays in the slot for the next read.
    const name = uniqueName("slot-tiny");
    using slot = MailslotReader.create(name);
    const reading = (async () => {
      const got: number[][] = [];
      for await (const m of slot.messages({ signal: AbortSignal.timeout(30_000) })) {
        got.push([...m]);
        if (got.length === 4) break;
      }
      return got;
    })();
    await using writer = spawnFixture("mailslot_writer.ts", [name, "tiny"]);
    assert.equal(await writer.line(), "sent 4");
    assert.deepEqual(await reading, [[], [7], [8, 9], []]);
  },
);

winTest(
  "close() during a read ends it with BadResource; the slot is gone for writers",
  async () => {
    const name = uniqueName("slot-close");
    const slot = MailslotReader.create(name);
    const read = slot.read();
    await new Promise((r) => setTimeout(r, 50));
    slot.close();
    assert.equal(slot.closed, true);
    await assert.rejects(read, Deno.errors.BadResource);
    await assert.rejects(slot.read(), Deno.errors.BadResource);
    // The handle is closed once the wait returned: a writer then finds no slot.
    assert.throws(() => MailslotWriter.open(name), (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_FILE_NOT_FOUND");
      return true;
    });
  },
);

winTest("non-ASCII text, GetMailslotInfo sizes and counts", async () => {
  const name = uniqueName("slot-text");
  using slot = MailslotReader.create(name, { maxMessageSize: 1000 });
  const text = "héllo ✓ 𝄞 日本語";
  await using writer = spawnFixture("mailslot_writer.ts", [name, "one", text]);
  const bytes = new TextEncoder().encode(text).length;
  assert.equal(await writer.line(), `sent ${bytes}`);
  sendMailslot(name, "second");
  const info = slot.info();
  assert.deepEqual(info, {
    maxMessageSize: 1000,
    nextSize: bytes,
    messageCount: 2,
    readTimeout: Infinity,
  });
  assert.equal(await slot.readText(), text);
  assert.equal(await slot.readText(), "second");
  assert.equal(slot.info().nextSize, null);
});

winTest("a message over maxMessageBytes is refused, and the next one read", async () => {
  const name = uniqueName("slot-max");
  using slot = MailslotReader.create(name, { maxMessageBytes: 16 });
  assert.equal(slot.maxMessageBytes, 16);
  assert.equal(slot.info().maxMessageSize, 16);
  await using writer = spawnFixture("mailslot_writer.ts", [name, "one", "x".repeat(100)]);
  const line = await writer.line();
  if (line.startsWith("error")) {
    // Windows: the write itself fails.
    assert.match(line, /^error Win32Error: Cannot write to mailslot/);
  } else {
    // Wine accepts the write; the reader checks the size before it reads, and drops it.
    assert.equal(line, "sent 100");
    await assert.rejects(slot.read({ timeout: 10_000 }), (e: Error) => {
      assert.ok(e instanceof ProtocolError, String(e));
      assert.match(e.message, /Message of 100 bytes .* is over maxMessageBytes \(16\): discarded/);
      return true;
    });
  }
  // Messages within the maximum still flow.
  sendMailslot(name, "fits");
  assert.equal(await slot.readText({ timeout: 10_000 }), "fits");
});

winTest(
  "by default a reader takes 64 KiB; messages() skips a larger one with onError",
  async () => {
    const name = uniqueName("slot-default");
    using slot = MailslotReader.create(name);
    assert.equal(slot.maxMessageBytes, DEFAULT_MAILSLOT_MAX_MESSAGE);
    assert.equal(slot.info().maxMessageSize, 65_536);
    // A real writer process: a message of 64 KiB + 1 between two honest ones.
    await using writer = spawnFixture("mailslot_writer.ts", [name, "oversized", "65537"]);
    const line = await writer.line();
    const skipped: Error[] = [];
    const got: string[] = [];
    for await (const m of slot.messages({ onError: (e) => skipped.push(e) })) {
      got.push(new TextDecoder().decode(m));
      if (got.length === 2) break;
    }
    assert.deepEqual(got, ["before", "after"]);
    if (line.includes("refused")) {
      // Windows refused the big write at the writer
      assert.equal(skipped.length, 0);
    } else {
      assert.equal(line, "sent 3");
      assert.equal(skipped.length, 1);
      assert.ok(skipped[0] instanceof ProtocolError);
      assert.match(skipped[0].message, /Message of 65537 bytes .* over maxMessageBytes \(65536\)/);
    }
    // 64 KiB exactly is taken
    const full = new Uint8Array(65_536).fill(7);
    sendMailslot(name, full);
    assert.deepEqual(await slot.read({ timeout: 10_000 }), full);
  },
);

winTest(
  "bad input at runtime: a taken name, a missing slot, a broadcast over 424 bytes",
  async () => {
    const name = uniqueName("slot-taken");
    using slot = MailslotReader.create(name);
    assert.throws(() => MailslotReader.create(name), (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.functionName, "CreateMailslotW");
      assert.equal(e.codeName, "ERROR_ALREADY_EXISTS");
      return true;
    });
    assert.throws(() => MailslotWriter.open(uniqueName("slot-missing")), (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_FILE_NOT_FOUND");
      assert.match(e.message, /no reader has created it/);
      return true;
    });
    // The broadcast form is accepted as a name. Wine has no domain broadcast, so opening it fails
    // there with a Win32Error (on Windows it opens, and a message over 424 bytes is refused).
    let broadcast: MailslotWriter | undefined;
    try {
      broadcast = MailslotWriter.open(`\\\\*\\mailslot\\${name}`);
    } catch (e) {
      assert.ok(e instanceof Win32Error, String(e));
      assert.equal(e.functionName, "CreateFileW");
    }
    if (broadcast) {
      using b = broadcast;
      assert.throws(() => b.write("x".repeat(425)), RangeError);
    }
    slot.close();
    slot.close();
    await assert.rejects(slot.read(), Deno.errors.BadResource);
  },
);
