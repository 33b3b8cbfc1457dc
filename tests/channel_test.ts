import assert from "node:assert/strict";
import { PeerGoneError, SharedMemory, ShmChannel } from "../mod.ts";
import { readMessage } from "./fixtures/channel_messages.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

/**
 * Receives `producers * count` messages, checking that each producer's sequence is 0..count-1,
 * then that the stream ends once every producer has closed.
 */
async function drain(channel: ShmChannel, producers: number, count: number): Promise<number> {
  const next = new Array(producers).fill(0);
  const total = producers * count;
  for (let received = 0; received < total; received++) {
    const message = await channel.receive({ timeout: 60_000 });
    assert.ok(message, `the stream ended after ${received} of ${total} messages`);
    const { producer, seq } = readMessage(message);
    assert.equal(
      seq,
      next[producer],
      `producer ${producer}: expected ${next[producer]}, got ${seq}`,
    );
    next[producer]++;
  }
  assert.deepEqual(next, new Array(producers).fill(count), "every message arrived once");
  assert.equal(await channel.receive({ timeout: 60_000 }), null, "no extra message, then the end");
  return total;
}

winTest(
  "1,000,000 messages of random sizes from another process: none lost, reordered or duplicated",
  async () => {
    const name = uniqueName("chan-1m");
    await using channel = await ShmChannel.create(name, { capacity: 1 << 20 });
    await using producer = spawnFixture("channel_peer.ts", ["produce", name, "1000000", "0"]);
    const start = performance.now();
    assert.equal(await drain(channel, 1, 1_000_000), 1_000_000);
    const seconds = (performance.now() - start) / 1000;
    console.log(`  1,000,000 messages in ${seconds.toFixed(2)} s (${Math.round(1e6 / seconds)}/s)`);
    assert.equal(await producer.line(), "done");
    assert.equal((await producer.finish()).code, 0);
  },
);

winTest(
  "4 producer processes x 250,000 messages: all 1,000,000 arrive, in order per producer",
  async () => {
    const name = uniqueName("chan-4p");
    await using channel = await ShmChannel.create(name, { capacity: 1 << 20 });
    const producers = [0, 1, 2, 3].map((id) =>
      spawnFixture("channel_peer.ts", ["produce", name, "250000", String(id)])
    );
    try {
      assert.equal(await drain(channel, 4, 250_000), 1_000_000);
      for (const p of producers) assert.equal((await p.finish()).code, 0);
    } finally {
      for (const p of producers) await p[Symbol.asyncDispose]();
    }
  },
);

winTest(
  "a full ring: send waits for a slow consumer, trySend says no, nothing is lost",
  async () => {
    const name = uniqueName("chan-full");
    await using channel = await ShmChannel.create(name, { capacity: 4096 });
    await using echo = spawnFixture("channel_peer.ts", ["echo", name]);
    assert.equal(await echo.line(), "ready");
    // Fill the ring to the echo peer while not reading its replies: its sends back fill the other
    // ring, it stops reading, our ring fills, and trySend must say no.
    const payload = new Uint8Array(1000).fill(7);
    let sent = 0;
    let refusals = 0;
    const deadline = Date.now() + 30_000;
    while (refusals < 20 && Date.now() < deadline) {
      if (channel.trySend(payload)) {
        sent++;
        refusals = 0;
      } else {
        refusals++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    assert.equal(refusals, 20, "trySend kept returning false on a full ring");
    assert.ok(sent >= 4, `the rings held ${sent} messages`);
    // A slow consumer: read one reply at a time with pauses while a sender task pushes 300 more.
    const sender = (async () => {
      for (let i = 0; i < 300; i++) await channel.send(payload);
    })();
    let received = 0;
    while (received < sent + 300) {
      const reply = await channel.receive({ timeout: 30_000 });
      assert.ok(reply);
      assert.equal(reply.length, 1000);
      received++;
      if (received % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await sender;
    assert.equal(received, sent + 300);
  },
);

winTest(
  "the consumer's process dies: a sender facing a full ring gets an error, not a hang",
  async () => {
    const name = uniqueName("chan-consumer-dies");
    const creator = spawnFixture("channel_peer.ts", ["create-and-die", name, "4096"]);
    assert.equal(await creator.line(), "ready");
    await using channel = await ShmChannel.open(name);
    await channel.send(new Uint8Array(10)); // the creator reads this one, then exits
    assert.equal((await creator.finish()).code, 0);
    const payload = new Uint8Array(1500);
    await assert.rejects(
      (async () => {
        for (let i = 0; i < 100; i++) await channel.send(payload, { timeout: 30_000 });
      })(),
      (e: unknown) =>
        e instanceof PeerGoneError && /the receiving process \d+ ended/.test(e.message),
    );
  },
);

winTest("a producer dies in the middle of a message: the receiver gets an error", async () => {
  const name = uniqueName("chan-mid");
  await using channel = await ShmChannel.create(name, { capacity: 4096 });
  const producer = spawnFixture("channel_peer.ts", ["die-mid-message", name]);
  assert.equal(await producer.line(), "claimed");
  assert.equal((await producer.finish()).code, 0);
  await assert.rejects(
    channel.receive({ timeout: 30_000 }),
    (e: unknown) => e instanceof PeerGoneError && /in the middle of a message/.test(e.message),
  );
});

winTest(
  "a producer ends without closing: the receiver gets an error, a clean close ends the stream",
  async () => {
    const name = uniqueName("chan-unclosed");
    await using channel = await ShmChannel.create(name, { capacity: 4096 });
    await using echo = spawnFixture("channel_peer.ts", ["echo", name]);
    assert.equal(await echo.line(), "ready");
    await channel.send(new TextEncoder().encode("hi"));
    assert.equal(new TextDecoder().decode((await channel.receive())!), "hi");
    echo.child.kill(); // TerminateProcess: no close
    await echo.finish();
    await assert.rejects(
      channel.receive({ timeout: 30_000 }),
      (e: unknown) => e instanceof PeerGoneError && /without closing the channel/.test(e.message),
    );

    const name2 = uniqueName("chan-closed");
    await using second = await ShmChannel.create(name2);
    const producer = spawnFixture("channel_peer.ts", ["produce", name2, "3", "0"]);
    let n = 0;
    for await (const m of second) {
      readMessage(m);
      n++;
    }
    assert.equal(n, 3, "the iterator ended after the producer closed");
    assert.equal((await producer.finish()).code, 0);
  },
);

winTest("a mismatched header, a foreign mapping and bad arguments fail clearly", async () => {
  const foreign = uniqueName("chan-foreign");
  using plain = SharedMemory.create(foreign, { size: 1 << 16 });
  await assert.rejects(ShmChannel.open(foreign), /is not a winipc channel \(magic 0x0\)/);
  const versioned = uniqueName("chan-version");
  using other = SharedMemory.create(versioned, { size: 1 << 16 });
  const header = other.view.int32Array(0, 4);
  header[0] = 0x4350_4957; // the magic, with a layout version from the future
  header[1] = 99;
  await assert.rejects(
    ShmChannel.open(versioned),
    /its layout version is 99, this winipc speaks version 3/,
  );
  await assert.rejects(ShmChannel.open(uniqueName("chan-none")), /ERROR_FILE_NOT_FOUND/);
  await assert.rejects(ShmChannel.create(uniqueName("c"), { capacity: 5000 }), /power of two/);
  await assert.rejects(ShmChannel.create(uniqueName("c"), { capacity: 1024 }), RangeError);
  await assert.rejects(ShmChannel.create("z".repeat(249)), /at most 248 characters/);
  const name = uniqueName("chan-big");
  await using channel = await ShmChannel.create(name, { capacity: 4096 });
  await assert.rejects(ShmChannel.create(name), /ERROR_ALREADY_EXISTS/);
  assert.equal(channel.maxMessageSize, 2040);
  assert.throws(() => channel.trySend(new Uint8Array(2041)), {
    name: "RangeError",
    message:
      "Message of 2041 bytes is larger than the channel's maximum of 2040 bytes (half its capacity); create the channel with a larger capacity",
  });
  assert.throws(
    () => channel.trySend(42 as unknown as Uint8Array),
    /must be a Uint8Array or a string/,
  );
  plain.close();
});

winTest("an idle receiver uses no CPU while it waits", async () => {
  const name = uniqueName("chan-idle");
  await using channel = await ShmChannel.create(name);
  await using idle = spawnFixture("channel_peer.ts", ["idle", name]);
  const { startup, idle: used } = JSON.parse(await idle.line());
  console.log(`  idle receiver used ${used.toFixed(1)} ms of CPU in 2 s`);
  assert.ok(startup > 10, `the process clock works: start-up took ${startup} ms of CPU`);
  // A receiver that spun would use about 2,000 ms; a blocked one about 0 (the runtime's own
  // background work on a loaded machine has been seen to take up to ~120 ms).
  assert.ok(used < 250, `an idle receiver used ${used} ms of CPU in 2 s`);
  await channel.closeWrite(); // the idle receiver's receive() returns null, it exits
  assert.equal((await idle.finish()).code, 0);
});

winTest("streams and zero-copy receive carry messages between processes", async () => {
  const name = uniqueName("chan-streams");
  await using channel = await ShmChannel.create(name, { capacity: 1 << 16 });
  await using echo = spawnFixture("channel_peer.ts", ["echo", name]);
  assert.equal(await echo.line(), "ready");
  const texts = ["one", "twö", "𝄞 three"];
  const writer = channel.writable.getWriter();
  for (const t of texts) await writer.write(new TextEncoder().encode(t));
  const reader = channel.readable.getReader();
  for (const t of texts) {
    const { value } = await reader.read();
    assert.equal(new TextDecoder().decode(value), t);
  }
  reader.releaseLock();
  await channel.send("tëxt 𝄞"); // a string goes as its UTF-8 bytes
  const text = await channel.receive({ timeout: 30_000 });
  assert.equal(new TextDecoder().decode(text!), "tëxt 𝄞");
  await channel.send(new Uint8Array([1, 2, 3]));
  const view = await channel.receiveView({ timeout: 30_000 });
  assert.deepEqual([...view!], [1, 2, 3]);
  await channel.send(new Uint8Array([4]));
  const next = await channel.receive({ timeout: 30_000 });
  assert.deepEqual([...next!], [4]);
  assert.equal(view!.length, 3, "the lent view stays an array over the ring");
  await writer.close(); // closes the creator's sending side: the echo peer's stream ends
  assert.equal((await echo.finish()).code, 0);
});

winTest(
  "spinning on tryReceiveView: 100,000 checked round trips with another process",
  async () => {
    const name = uniqueName("chan-spin");
    await using channel = await ShmChannel.create(name, { capacity: 1 << 16 });
    await using echo = spawnFixture("channel_peer.ts", ["spin-echo", name]);
    assert.equal(await echo.line(), "ready");
    const message = new Uint8Array(64);
    const view = new DataView(message.buffer);
    for (let i = 0; i < 100_000; i++) {
      view.setUint32(0, i, true);
      message[4 + (i % 60)] = i & 0xff;
      assert.ok(channel.trySend(message), "a ring with one message in flight has room");
      let reply = channel.tryReceiveView();
      while (reply === undefined) reply = channel.tryReceiveView();
      if (
        reply.length !== 64 ||
        new DataView(reply.buffer, reply.byteOffset).getUint32(0, true) !== i ||
        reply[4 + (i % 60)] !== (i & 0xff)
      ) {
        assert.fail(`round trip ${i}: the reply is not what was sent`);
      }
    }
    await channel.closeWrite();
    assert.equal((await echo.finish()).code, 0);
  },
);

winTest(
  "a second receiving end in the same process is refused until the first closes",
  async () => {
    const name = uniqueName("chan-busy");
    await using creator = await ShmChannel.create(name, { capacity: 1 << 16 });
    const first = await ShmChannel.open(name);
    await using second = await ShmChannel.open(name);
    assert.equal(first.tryReceiveView(), undefined);
    assert.throws(() => second.tryReceiveView(), Deno.errors.Busy);
    await creator.send(new Uint8Array([5]));
    assert.deepEqual([...(await first.receive({ timeout: 30_000 }))!], [5]);
    await first[Symbol.asyncDispose]();
    await assert.rejects(creator.send(new Uint8Array([0])), Deno.errors.BrokenPipe);
    assert.equal(second.tryReceiveView(), undefined, "the second claims the receiving side");
    await creator.send(new Uint8Array([6]));
    assert.deepEqual(
      [...(await second.receive({ timeout: 30_000 }))!],
      [6],
      "the second takes over",
    );
  },
);

winTest("a receiver that takes over from one that died starts after what it consumed", async () => {
  const name = uniqueName("chan-takeover");
  await using channel = await ShmChannel.create(name, { capacity: 1 << 16 });
  for (let i = 0; i < 100; i++) assert.ok(channel.trySend(new Uint8Array(40).fill(i)));
  const first = spawnFixture("channel_peer.ts", ["receive-and-die", name, "60"]);
  assert.equal(await first.line(), "received 59");
  assert.equal((await first.finish()).code, 0);
  await using second = await ShmChannel.open(name);
  for (let i = 60; i < 100; i++) {
    const message = await second.receive({ timeout: 30_000 });
    assert.deepEqual(message, new Uint8Array(40).fill(i), `message ${i}`);
  }
  assert.equal(second.tryReceive(), undefined, "nothing is delivered twice");
  // The receiver gives room back in batches of an eighth of the ring: at least 7/8 is free.
  let sent = 0;
  while (channel.trySend(new Uint8Array(40).fill(sent & 0xff))) sent++;
  assert.ok(sent >= Math.floor(65536 * 7 / 8 / 48), `only ${sent} messages fit after the takeover`);
  // A sender that waits for room gets it as soon as the receiver takes a message.
  const waiting = channel.send(new Uint8Array(40).fill(0xee), { timeout: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(second.tryReceive(), new Uint8Array(40).fill(0));
  await waiting;
  for (let i = 1; i < sent; i++) {
    assert.deepEqual(second.tryReceive(), new Uint8Array(40).fill(i & 0xff), `message ${i}`);
  }
  assert.deepEqual(second.tryReceive(), new Uint8Array(40).fill(0xee), "the waiting sender's");
});

winTest(
  "closeWrite() half-closes: the peer reads what was sent, then the end; this end still receives",
  async () => {
    const name = uniqueName("chan-halfclose");
    await using creator = await ShmChannel.create(name, { capacity: 4096 });
    await using opener = await ShmChannel.open(name);
    await opener.send("before");
    const closing = opener.closeWrite();
    assert.ok(closing instanceof Promise, "closeWrite() returns a Promise, as TcpConn's does");
    assert.equal(await closing, undefined);
    await opener.closeWrite(); // a second call does nothing
    await assert.rejects(opener.send("after"), Deno.errors.BadResource);
    assert.equal(new TextDecoder().decode((await creator.receive({ timeout: 10_000 }))!), "before");
    assert.equal(await creator.receive({ timeout: 10_000 }), null, "then the end of the stream");
    await creator.send("reply"); // the half-closed end still receives
    assert.equal(new TextDecoder().decode((await opener.receive({ timeout: 10_000 }))!), "reply");
    opener.close();
    await assert.rejects(opener.closeWrite(), Deno.errors.BadResource);
  },
);
