import assert from "node:assert/strict";
import {
  Event,
  listServices,
  PeerGoneError,
  Publisher,
  PubSubError,
  SharedMemory,
  Subscriber,
} from "../mod.ts";
import { type Fixture, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

/** Publishes samples whose first 4 bytes are 1, 2, 3, ... up to `count`. */
async function publishCounting(pub: Publisher, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const sample = pub.tryLoan() ?? await pub.loan({ timeout: 60_000 });
    new DataView(sample.data.buffer, sample.data.byteOffset, 4).setUint32(0, i, true);
    await sample.publish(64, { timeout: 60_000 });
  }
}

async function startAll(fixtures: Fixture[]): Promise<void> {
  for (const f of fixtures) assert.equal(await f.line(60_000), "ready");
}

// 4 subscriber processes x 100,000 samples: 2 cores under Wine, each sleeping subscriber's wake-up
// costs a worker-thread round trip; the history of 256 lets them take samples in batches.
const SAMPLES = 100_000;

winTest(
  `4 subscriber processes x ${SAMPLES} samples under "block": none lost or duplicated`,
  async () => {
    const name = uniqueName("ps-4x");
    using pub = await Publisher.create(name, {
      sampleSize: 64,
      history: 256,
      overflow: "block",
      maxSubscribers: 4,
    });
    const subs = [0, 1, 2, 3].map(() =>
      spawnFixture("pubsub_peer.ts", ["subscribe", name, String(SAMPLES)])
    );
    try {
      await startAll(subs);
      await pub.waitForSubscribers(4, { timeout: 60_000 });
      const start = performance.now();
      await publishCounting(pub, SAMPLES);
      for (const s of subs) assert.equal(await s.line(120_000), `ok ${SAMPLES}`);
      const seconds = (performance.now() - start) / 1000;
      console.log(`  4 x ${SAMPLES} samples in ${seconds.toFixed(2)} s`);
      for (const s of subs) assert.equal((await s.finish()).code, 0);
    } finally {
      for (const s of subs) await s[Symbol.asyncDispose]();
    }
  },
);

winTest(
  "a subscriber that exits mid-run without closing: the publisher keeps going, its samples come back",
  async () => {
    const name = uniqueName("ps-kill");
    using pub = await Publisher.create(name, {
      sampleSize: 64,
      history: 8,
      maxHeld: 1,
      maxSubscribers: 2,
      overflow: "block",
      spinMicros: 20,
    });
    const total = 2_000; // far more than the pool's 8 + 2 * 1 + 2 = 12 samples
    await using steady = spawnFixture("pubsub_peer.ts", ["subscribe", name, String(total)]);
    await using dying = spawnFixture("pubsub_peer.ts", ["subscribe-and-die", name, "20"]);
    await startAll([steady, dying]);
    await pub.waitForSubscribers(2, { timeout: 60_000 });
    await publishCounting(pub, total);
    assert.equal(await dying.line(), "dying");
    assert.equal((await dying.finish()).code, 0);
    assert.equal(await steady.line(60_000), `ok ${total}`);
    assert.equal((await steady.finish()).code, 0);
    assert.equal(pub.subscribers, 0, "the dead subscriber was cut off, the other closed");
    // the steady one closed: its bits go once the publisher sweeps (at the next publish)
    await pub.send(new Uint8Array([1]));
    assert.ok(pub.settled, "every sample is back in the pool");
  },
);

winTest(
  "a subscriber process killed while the publisher waits for it: publishing resumes",
  async () => {
    const name = uniqueName("ps-killed");
    using pub = await Publisher.create(name, {
      sampleSize: 64,
      history: 8,
      maxHeld: 1,
      maxSubscribers: 2,
      overflow: "block",
    });
    const total = 1_000;
    await using steady = spawnFixture("pubsub_peer.ts", ["subscribe", name, String(total)]);
    await using stalled = spawnFixture("pubsub_peer.ts", ["subscribe-and-stall", name, "50"]);
    await startAll([steady, stalled]);
    await pub.waitForSubscribers(2, { timeout: 60_000 });
    let finished = false;
    const publishing = publishCounting(pub, total).then(() => finished = true);
    assert.equal(await stalled.line(), "stalled");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(finished, false, '"block": the publisher waits for the stalled subscriber');
    assert.equal(pub.subscribers, 2);
    stalled.child.kill("SIGKILL"); // TerminateProcess
    assert.notEqual((await stalled.child.status).code, 0);
    await publishing;
    assert.equal(await steady.line(60_000), `ok ${total}`);
    assert.equal((await steady.finish()).code, 0);
    await pub.send(new Uint8Array([1]));
    assert.equal(pub.subscribers, 0);
    assert.ok(pub.settled, "the killed subscriber's samples came back");
  },
);

winTest(
  "a publisher process that ends without closing is a PeerGoneError for its subscriber",
  async () => {
    const name = uniqueName("ps-pubdies");
    using sub = await Subscriber.open(name, { create: true });
    await using publisher = spawnFixture("pubsub_peer.ts", ["publish-and-die", name]);
    using first = await sub.receive({ timeout: 60_000 });
    assert.deepEqual([...first!.data], [1]);
    first!.release();
    await assert.rejects(
      sub.receive({ timeout: 60_000 }),
      (e) => e instanceof PeerGoneError && /the publisher \d+ ended/.test(e.message),
    );
    assert.equal((await publisher.finish()).code, 0);
  },
);

winTest('"drop-oldest" keeps the newest samples and counts what it dropped', async () => {
  const name = uniqueName("ps-drop");
  const pub = await Publisher.create(name, { sampleSize: 16, history: 8 });
  await using late = spawnFixture("pubsub_peer.ts", ["late", name]);
  assert.equal(await late.line(), "ready");
  await pub.waitForSubscribers(1, { timeout: 30_000 });
  for (let i = 1; i <= 100; i++) await pub.send(new Uint8Array([i]));
  pub.close();
  using go = Event.createOrOpen(`${name}-go`);
  go.set();
  assert.equal(await late.line(), "got 8 first 93 dropped 92");
  assert.equal((await late.finish()).code, 0);
});

winTest(
  "listServices shows a service with its publisher, subscribers and sample size",
  async () => {
    const name = uniqueName("ps-list");
    using pub = await Publisher.create(name, { sampleSize: 128 });
    using sub = await Subscriber.open(name);
    const found = listServices().find((s) => s.name === name);
    assert.deepEqual(found, {
      kind: "pubsub",
      name,
      publisherPid: Deno.pid,
      subscribers: 1,
      sampleSize: 128,
      history: 16,
      overflow: "drop-oldest",
    });
    sub.close();
    pub.close();
    assert.equal(listServices().find((s) => s.name === name), undefined, "gone once closed");
  },
);

winTest(
  "a subscriber may start first and create the service; samples are zero-copy views",
  async () => {
    const name = uniqueName("ps-first");
    using sub = await Subscriber.open(name, { create: true, sampleSize: 32 });
    using pub = await Publisher.create(name);
    assert.equal(pub.sampleSize, 32);
    const loan = await pub.loan();
    loan.data.set([1, 2, 3]);
    const sequence = await loan.publish(3);
    using got = await sub.receive({ timeout: 5000 });
    assert.ok(got);
    assert.deepEqual([...got.data], [1, 2, 3]);
    assert.equal(got.sequence, sequence);
    // the same bytes: the publisher's loan and the subscriber's view see one memory
    loan.data[0] = 9;
    assert.equal(got.data[0], 9);
    assert.equal(sub.held, 1);
    got.release();
    assert.equal(sub.held, 0);
    assert.ok(pub.settled);
  },
);

winTest("bad input gets clear errors", async () => {
  await assert.rejects(
    Subscriber.open(uniqueName("ps-missing")),
    (e) => e instanceof Deno.errors.NotFound && /No pub\/sub service named/.test(e.message),
  );
  await assert.rejects(Publisher.create("a\\b"), /Invalid argument "name": must not contain/);
  await assert.rejects(Publisher.create(""), /Invalid argument "name": must not be empty/);
  await assert.rejects(
    Publisher.create(uniqueName("ps"), { sampleSize: 0 }),
    (e) => e instanceof RangeError && /"options.sampleSize": must be at least 1/.test(e.message),
  );
  await assert.rejects(
    Publisher.create(uniqueName("ps"), { overflow: "wait" as "block" }),
    /"options.overflow": must be "drop-oldest" or "block"/,
  );
  await assert.rejects(
    Publisher.create(uniqueName("ps"), { maxSubscribers: 33 }),
    /"options.maxSubscribers": must be at most 32/,
  );
  const name = uniqueName("ps-bad");
  using pub = await Publisher.create(name, { sampleSize: 64 });
  await assert.rejects(
    pub.send(new Uint8Array(65)),
    (e) => e instanceof RangeError && /larger than the service's sample size of 64/.test(e.message),
  );
  // a string is sent as UTF-8: 33 "é" are 66 bytes
  await assert.rejects(pub.send("é".repeat(33)), /66 bytes is larger than the service's sample/);
  await assert.rejects(
    pub.send(42 as unknown as Uint8Array),
    /Invalid argument "data": must be a Uint8Array or a string/,
  );
  const loan = await pub.loan();
  await assert.rejects(loan.publish(65), /Invalid argument "length"/);
  await assert.rejects(
    Publisher.create(name),
    (e) => e instanceof Deno.errors.Busy && /publishes on it already/.test(e.message),
  );
  await assert.rejects(
    Publisher.create(name, { sampleSize: 128 }),
    (e) => e instanceof PubSubError && /exists with sampleSize 64, not 128/.test(e.message),
  );
  // a mapping of that name that is not a service
  const other = uniqueName("ps-notours");
  using _plain = SharedMemory.create(other, { size: 65536 });
  await assert.rejects(Subscriber.open(other), /not a winipc pub\/sub service/);
});

winTest("a damaged header or queue is a PubSubError, not a crash or a hang", async () => {
  const name = uniqueName("ps-damage");
  using pub = await Publisher.create(name, { sampleSize: 64, history: 4 });
  using sub = await Subscriber.open(name);
  using raw = SharedMemory.open(name);
  const i32 = raw.view.int32Array(0, 8192 / 4 + 32);
  // the subscriber's slot is slot 0: its head word (offset 16) claims 1000 queued samples
  Atomics.store(i32, 4096 / 4 + 16, Atomics.load(i32, 4096 / 4 + 24) + 1000);
  assert.throws(
    () => sub.tryReceive(),
    (e) => e instanceof PubSubError && /queue is damaged/.test(e.message),
  );
  Atomics.store(i32, 4096 / 4 + 16, Atomics.load(i32, 4096 / 4 + 24) + 1);
  Atomics.store(i32, 8192 / 4, 999_999); // the queued sample index
  assert.throws(() => sub.tryReceive(), /sample index 999999 out of range/);
  Atomics.store(i32, 5, 0x7fff_ffff); // maxSubscribers
  await assert.rejects(Subscriber.open(name), /its header is damaged/);
  assert.equal(pub.sampleSize, 64);
});
