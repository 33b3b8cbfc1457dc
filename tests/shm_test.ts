import assert from "node:assert/strict";
import { Event, Mutex, SharedMemory, Win32Error } from "../mod.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

const TEXT = "héllo ✓ 𝄞 from the other side";

/**
 * An opened mapping's size is what the kernel reports for the section. Wine rounds it up to a
 * whole 4 KiB page (Windows may report it exactly): accept those two and nothing else.
 */
function assertOpenedSize(actual: bigint, created: bigint): void {
  const pageRounded = (created + 4095n) / 4096n * 4096n;
  assert.ok(
    actual === created || actual === pageRounded,
    `opened size ${actual} is neither ${created} nor ${pageRounded}`,
  );
}

winTest(
  "a fixture creates, writes under the mutex and signals; this process opens and reads",
  async () => {
    const base = uniqueName("shm-xproc");
    using written = Event.createOrOpen(`${base}.written`);
    using done = Event.createOrOpen(`${base}.done`);
    await using fixture = spawnFixture("shm_writer.ts", [base, TEXT]);
    assert.equal(await written.wait({ timeout: 30_000 }), true, "the writer signalled");
    using shm = SharedMemory.open(`${base}.map`, { access: "read-only" });
    using mutex = Mutex.open(`${base}.lock`);
    assert.equal(shm.created, false);
    assertOpenedSize(shm.size, 1n << 16n);
    await mutex.withLock((guard) => {
      assert.equal(guard.abandoned, false);
      assert.equal(shm.view.readText(0), TEXT);
      assert.equal(shm.view.getUint32(1000), fixture.child.pid, "written by the fixture process");
    });
    assert.notEqual(fixture.child.pid, Deno.pid);
    done.set();
    assert.equal(await fixture.line(), "written");
    const { code } = await fixture.finish();
    assert.equal(code, 0);
  },
);

winTest(
  "peer to peer: two processes race createOrOpen 20 times, one initialises each time",
  async () => {
    const base = uniqueName("shm-race");
    const rounds = 20;
    using finish = Event.createOrOpen(`${base}.finish`, { manualReset: true });
    await using a = spawnFixture("shm_peer.ts", [base, String(rounds)]);
    await using b = spawnFixture("shm_peer.ts", [base, String(rounds)]);
    const creators = new Set<string>();
    for (let i = 0; i < rounds; i++) {
      assert.equal(await a.line(), `waiting ${i}`);
      assert.equal(await b.line(), `waiting ${i}`);
      using go = Event.createOrOpen(`${base}.go${i}`, { manualReset: true });
      go.set(); // both peers call createOrOpen now
      const ra = JSON.parse(await a.line());
      const rb = JSON.parse(await b.line());
      assert.equal(ra.round, i);
      assert.equal(rb.round, i);
      assert.equal(
        Number(ra.created) + Number(rb.created),
        1,
        `round ${i}: exactly one creator (a: ${ra.created}, b: ${rb.created})`,
      );
      assert.match(ra.text, /^init by \d+$/, `round ${i}: peer a saw the initialised data`);
      assert.equal(ra.text, rb.text, `round ${i}: both peers see the same data`);
      creators.add(ra.text);
    }
    finish.set();
    assert.equal((await a.finish()).code, 0);
    assert.equal((await b.finish()).code, 0);
    assert.ok(creators.size >= 1);
  },
);

winTest("client/server in one process: create, open by name, views share memory", () => {
  const name = uniqueName("shm-basic");
  using server = SharedMemory.create(name, { size: 100_000 });
  assert.equal(server.created, true);
  assert.equal(server.size, 100_000n);
  using client = SharedMemory.open(name);
  assertOpenedSize(client.size, 100_000n);
  server.view.writeText(10, TEXT);
  assert.equal(client.view.readText(10), TEXT);
  client.view.setBigUint64(99_992, 0x1122_3344_5566_7788n);
  assert.equal(server.view.getBigUint64(99_992), 0x1122_3344_5566_7788n);
  server.view.setFloat64(200, Math.PI);
  assert.equal(client.view.getFloat64(200), Math.PI);
  server.view.setInt32(300, -42);
  assert.equal(client.view.getInt32(300), -42);
  server.view.setUint8(400, 255);
  assert.equal(client.view.getUint8(400), 255);
  // UTF-16 text and raw bytes
  server.view.writeText(1000, TEXT, { encoding: "utf-16le" });
  assert.equal(client.view.readText(1000, { encoding: "utf-16le" }), TEXT);
  client.view.write(2000, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...server.view.read(2000, 3)], [1, 2, 3]);
  // a view at an unaligned offset sees the same bytes
  using offsetView = client.map({ offset: 70_001, length: 16 });
  offsetView.bytes[0] = 0x5a;
  assert.equal(server.view.bytes[70_001], 0x5a);
  // Atomics over the mapping
  const counters = server.view.int32Array(4096, 2);
  Atomics.add(counters, 1, 5);
  assert.equal(client.view.getInt32(4100), 5);
});

winTest("Local\\ and Global\\ names, and security attributes from SDDL", () => {
  const local = `Local\\${uniqueName("shm-local")}`;
  using a = SharedMemory.create(local, { size: 4096, security: { sddl: "D:P(A;;GA;;;WD)" } });
  using b = SharedMemory.open(local);
  a.view.writeText(0, "local");
  assert.equal(b.view.readText(0), "local");
  const global = `Global\\${uniqueName("shm-global")}`;
  using c = SharedMemory.create(global, { size: 4096 });
  using d = SharedMemory.open(global, { access: "read-only" });
  c.view.writeText(0, "global");
  assert.equal(d.view.readText(0), "global");
  assert.throws(
    () => SharedMemory.create(uniqueName("shm-sddl"), { size: 10, security: { sddl: "nonsense" } }),
    /Invalid security descriptor "nonsense"/,
  );
});

winTest("sizes beyond 4 GiB: high and low DWORDs, a view past 4 GiB", () => {
  const name = uniqueName("shm-big");
  const size = 5n * 1024n ** 3n + 12_345n;
  using shm = SharedMemory.create(name, { size });
  using opened = SharedMemory.open(name);
  assertOpenedSize(opened.size, size); // 5 GiB + 12,345 bytes, not the size mod 2^32
  const offset = 4n * 1024n ** 3n + 100n;
  using high = shm.map({ offset, length: 4096 });
  high.writeText(0, "past 4 GiB");
  using again = opened.map({ offset: offset - 100n, length: 4096 });
  assert.equal(again.readText(100), "past 4 GiB");
  using tail = shm.map({ offset: size - 5n });
  assert.equal(tail.length, 5);
  assert.throws(() => shm.map({ offset: size - 5n, length: 6 }), RangeError);
});

winTest("read-only access: the write helpers refuse, a read-write view is refused", () => {
  const name = uniqueName("shm-ro");
  using shm = SharedMemory.create(name, { size: 4096 });
  using ro = SharedMemory.open(name, { access: "read-only" });
  assert.equal(ro.access, "read-only");
  assert.throws(() => ro.view.writeText(0, "x"), /Cannot write: the view is read-only/);
  assert.throws(() => ro.view.setUint32(0, 1), TypeError);
  assert.throws(() => ro.map({ access: "read-write" }), /opened read-only/);
  using roView = shm.map({ access: "read-only" });
  assert.throws(() => roView.write(0, new Uint8Array(1)), TypeError);
});

winTest("closing detaches every array over a view, and closing twice is harmless", () => {
  const shm = SharedMemory.create(null, { size: 4096 });
  const view = shm.view;
  const bytes = view.bytes;
  const ints = view.int32Array(0, 4);
  assert.equal(bytes.length, 4096);
  shm.close();
  assert.equal(view.closed, true);
  assert.equal(bytes.length, 0, "a stale Uint8Array cannot reach unmapped memory");
  assert.equal(ints.length, 0);
  assert.equal(bytes[0], undefined);
  assert.throws(() => view.read(0, 1), /View is closed/);
  shm.close();
  view.close();
  assert.equal(shm.closed, true);
});

winTest("bad input: each a clear error, before any Win32 call where it can be", async () => {
  const missing = uniqueName("shm-missing");
  assert.throws(
    () => SharedMemory.open(missing),
    (e: unknown) =>
      e instanceof Win32Error && e.codeName === "ERROR_FILE_NOT_FOUND" &&
      e.message.startsWith(`Cannot open file mapping "${missing}": OpenFileMappingW failed`),
  );
  const name = uniqueName("shm-bad");
  assert.throws(() => SharedMemory.create(name, { size: 0 }), {
    name: "RangeError",
    message: 'Invalid argument "options.size": must be at least 1 byte',
  });
  assert.throws(() => SharedMemory.create(name, { size: -5 }), RangeError);
  assert.throws(() => SharedMemory.create(name, { size: 1.5 }), /options.size.*integer/);
  assert.throws(() => SharedMemory.create(name, { size: 2n ** 64n }), RangeError);
  assert.throws(
    () => SharedMemory.create(name, {} as { size: number }),
    /Invalid argument "options.size"/,
  );
  assert.throws(() => SharedMemory.create("x".repeat(261), { size: 1 }), {
    name: "RangeError",
    message: 'Invalid argument "name": must be at most 260 characters',
  });
  assert.throws(() => SharedMemory.create("a\\b", { size: 1 }), /must not contain "\\"/);
  assert.throws(() => SharedMemory.create("", { size: 1 }), /must not be empty/);
  assert.throws(() => SharedMemory.create("Local\\", { size: 1 }), /must have a name/);
  assert.throws(() => SharedMemory.open(42 as unknown as string), /Invalid argument "name"/);
  await assert.rejects(
    SharedMemory.createOrOpen("y".repeat(250), { size: 1 }),
    /must be at most 248 characters/,
  );
  using shm = SharedMemory.create(name, { size: 4096 });
  assert.throws(
    () => SharedMemory.create(name, { size: 4096 }),
    (e: unknown) => e instanceof Win32Error && e.codeName === "ERROR_ALREADY_EXISTS",
  );
  assert.throws(() => shm.map({ offset: 4096 }), /beyond the mapping's end/);
  assert.throws(() => shm.map({ offset: 4000, length: 200 }), /do not fit in the mapping/);
  assert.throws(() => shm.map({ length: 0 }), /must be at least 1 byte/);
  assert.throws(() => shm.view.read(4090, 10), /Out of bounds/);
  assert.throws(() => shm.view.writeText(4090, "123456"), /Out of bounds/);
  assert.throws(() => shm.view.getUint32(4093), /Out of bounds/);
  assert.throws(() => shm.view.readText(-1), /non-negative/);
  assert.throws(
    () => shm.view.readText(0, { encoding: "latin1" as "utf-8" }),
    /options.encoding.*"utf-8" or "utf-16le"/,
  );
  assert.throws(() => shm.view.int32Array(2, 1), /multiple of 4/);
});

winTest("createOrOpen: a failing init leaves no mapping, the next peer initialises", async () => {
  const name = uniqueName("shm-init-fail");
  await assert.rejects(
    SharedMemory.createOrOpen(name, {
      size: 64,
      init: () => {
        throw new Error("init failed");
      },
    }),
    /init failed/,
  );
  using shm = await SharedMemory.createOrOpen(name, {
    size: 64,
    init: (view) => void view.writeText(0, "second"),
  });
  assert.equal(shm.created, true);
  assert.equal(shm.view.readText(0), "second");
  using peer = await SharedMemory.createOrOpen(name, {
    size: 64,
    init: () => assert.fail("only the creator initialises"),
  });
  assert.equal(peer.created, false);
  assert.equal(peer.view.readText(0), "second");
});
