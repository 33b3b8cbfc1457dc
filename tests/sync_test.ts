import assert from "node:assert/strict";
import { Event, Mutex, Semaphore, Win32Error } from "../mod.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

winTest(
  "an abandoned mutex: the owner exits holding it, the next lock reports it and recovers",
  async () => {
    const name = uniqueName("mutex-abandon");
    using mutex = Mutex.createOrOpen(name);
    const fixture = spawnFixture("mutex_abandon.ts", [name]);
    assert.equal(await fixture.line(), "locked");
    assert.equal((await fixture.finish()).code, 0);
    {
      using guard = await mutex.lock({ timeout: 30_000 });
      assert.equal(guard.abandoned, true, "WAIT_ABANDONED is reported");
    }
    using again = await mutex.lock({ timeout: 1000 });
    assert.equal(again.abandoned, false, "after a release it is an ordinary mutex again");
  },
);

winTest(
  "a mutex held by another process: lock waits, tryLock fails, a timeout throws",
  async () => {
    const name = uniqueName("mutex-held");
    using mutex = Mutex.createOrOpen(name);
    await using holder = spawnFixture("sync_peer.ts", ["hold-mutex", name, "1500"]);
    assert.equal(await holder.line(), "locked");
    assert.equal(mutex.tryLock(), undefined);
    await assert.rejects(mutex.lock({ timeout: 100 }), Deno.errors.TimedOut);
    const ticks = { n: 0 };
    const interval = setInterval(() => ticks.n++, 10);
    const start = performance.now();
    const guard = await mutex.lock({ timeout: 30_000 });
    clearInterval(interval);
    assert.ok(performance.now() - start > 200, "it waited for the holder");
    // A blocked event loop would run the interval at most once, when it unblocks; any count of 3
    // or more shows it ran during the wait, however slow the machine (about 140 are expected).
    assert.ok(ticks.n >= 3, `the event loop ran while waiting (${ticks.n} ticks)`);
    assert.equal(guard.abandoned, false);
    guard.release();
    guard.release(); // harmless
    assert.equal(await holder.line(), "released");
  },
);

winTest(
  "tasks of one process exclude each other (a Windows mutex alone is recursive)",
  async () => {
    const name = uniqueName("mutex-tasks");
    using m1 = Mutex.createOrOpen(name);
    using m2 = Mutex.open(name); // another handle to the same mutex
    const order: string[] = [];
    let inside = 0;
    const worker = async (id: string, mutex: Mutex) => {
      for (let i = 0; i < 20; i++) {
        await mutex.withLock(async () => {
          inside++;
          assert.equal(inside, 1, "never two tasks inside");
          order.push(id);
          await new Promise((r) => setTimeout(r, 1));
          inside--;
        });
      }
    };
    await Promise.all([worker("a", m1), worker("b", m2), worker("c", m1)]);
    assert.equal(order.length, 60);
    const held = m1.tryLock();
    assert.ok(held);
    assert.equal(m2.tryLock(), undefined, "a second handle in this process is excluded too");
    assert.throws(() => m2.lockSync({ timeout: 10 }), Deno.errors.Busy);
    held.release();
    using sync = m2.lockSync({ timeout: 1000 });
    assert.equal(sync.abandoned, false);
  },
);

winTest("a lock waiting in line can be aborted", async () => {
  using mutex = Mutex.create();
  const held = await mutex.lock();
  const controller = new AbortController();
  const waiting = mutex.lock({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("gave up")), 50);
  await assert.rejects(waiting, /gave up/);
  held.release();
  using after = mutex.tryLock();
  assert.ok(after, "an aborted waiter does not keep the lock");
});

winTest("events across processes: auto-reset wakes once, manual-reset stays set", async () => {
  const name = uniqueName("event-xproc");
  using event = Event.create(name);
  assert.equal(event.created, true);
  const woke = event.wait({ timeout: 30_000 });
  const setter = spawnFixture("sync_peer.ts", ["set-event", name]);
  assert.equal(await woke, true, "woken by the other process");
  assert.equal((await setter.finish()).code, 0);
  assert.equal(await event.wait({ timeout: 50 }), false, "auto-reset: consumed by the wait");

  using manual = Event.create(null, { manualReset: true });
  manual.set();
  assert.equal(await manual.wait({ timeout: 0 }), true);
  assert.equal(manual.waitSync(0), true, "manual-reset: still set");
  manual.reset();
  assert.equal(manual.waitSync(10), false);
  assert.equal(manual.waitSync({ timeout: 10 }), false, "the options form, as lockSync takes it");
  using initially = Event.create(null, { initialState: true });
  assert.equal(initially.waitSync(0), true);
});

winTest("waits leave the event loop free, time out, and abort at once", async () => {
  using event = Event.create();
  let ticks = 0;
  const interval = setInterval(() => ticks++, 10);
  const start = performance.now();
  assert.equal(await event.wait({ timeout: 300 }), false);
  clearInterval(interval);
  assert.ok(performance.now() - start >= 250);
  // a blocked loop runs the interval at most once; about 25 are expected
  assert.ok(ticks >= 3, `timers ran during the wait (${ticks})`);
  const controller = new AbortController();
  const pending = event.wait({ signal: controller.signal });
  const abortedAt = performance.now();
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
  assert.ok(performance.now() - abortedAt < 5000, "the abort returned promptly");
  const already = AbortSignal.abort(new Error("already"));
  await assert.rejects(event.wait({ signal: already }), /already/);
});

winTest("semaphores across processes: counts, timeouts, the maximum", async () => {
  const name = uniqueName("semaphore");
  using semaphore = Semaphore.create(name, { initial: 0, maximum: 3 });
  assert.equal(semaphore.tryAcquire(), false);
  await assert.rejects(semaphore.acquire({ timeout: 50 }), Deno.errors.TimedOut);
  const releaser = spawnFixture("sync_peer.ts", ["release-semaphore", name, "3"]);
  for (let i = 0; i < 3; i++) await semaphore.acquire({ timeout: 30_000 });
  assert.equal((await releaser.finish()).code, 0);
  assert.equal(semaphore.tryAcquire(), false);
  assert.equal(semaphore.release(2), 0);
  assert.throws(
    () => semaphore.release(2),
    (e: unknown) => e instanceof Win32Error && e.codeName === "ERROR_TOO_MANY_POSTS",
  );
});

winTest("bad input to sync objects: clear errors", async () => {
  const name = uniqueName("sync-bad");
  assert.throws(
    () => Mutex.open(name),
    (e: unknown) =>
      e instanceof Win32Error && e.codeName === "ERROR_FILE_NOT_FOUND" &&
      e.message.startsWith(`Cannot open mutex "${name}"`),
  );
  using m = Mutex.create(name);
  assert.throws(() => Mutex.create(name), /ERROR_ALREADY_EXISTS/);
  // Kernel objects share one namespace: an event cannot take a mutex's name.
  assert.throws(() => Event.createOrOpen(name), Win32Error);
  assert.throws(
    () => Semaphore.create(null, { initial: 5, maximum: 2 }),
    /initial must not exceed/,
  );
  assert.throws(() => Semaphore.create(null, { maximum: 0 }), RangeError);
  assert.throws(() => Event.create(null, { manualReset: "yes" as unknown as boolean }), TypeError);
  await assert.rejects(m.lock({ timeout: -1 }), /options.timeout.*must not be negative/);
  assert.throws(() => m.lockSync({ timeout: 1.5 }), /whole number of milliseconds/);
  assert.throws(() => Event.create(null, { bogus: 1 } as never), /options/);
});
