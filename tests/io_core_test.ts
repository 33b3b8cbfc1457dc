/**
 * The I/O core (`mechanisms/_io.ts`) and the grouped object waits (`mechanisms/_wait.ts`): many
 * pending operations at once hold no worker thread each, and an idle process with pending reads
 * costs little CPU.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Win32Error } from "../ffi/error.ts";
import { FILE_FLAG_OVERLAPPED, kernel32, PIPE_ACCESS_DUPLEX } from "../ffi/kernel32.ts";
import { wide } from "../ffi/strings.ts";
import { associate } from "../mechanisms/_io.ts";
import { spawnChild } from "../mechanisms/anonymous_pipe.ts";
import { NamedPipeClient, NamedPipeServer, type PipeConnection } from "../mechanisms/pipe.ts";
import { Event, Semaphore } from "../mechanisms/sync.ts";
import { cpuMs, repoPath, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

/** Connects `count` clients to a fresh server; returns both sides. */
async function connectPipes(count: number) {
  const name = uniqueName("io-core");
  const server = NamedPipeServer.listen(name, { maxInstances: count + 1 });
  const accepted: PipeConnection[] = [];
  const accepting = (async () => {
    for await (const conn of server) {
      accepted.push(conn);
      if (accepted.length === count) break;
    }
  })();
  const clients: NamedPipeClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await NamedPipeClient.connect(name));
  await accepting;
  return { server, accepted, clients };
}

/**
 * How many of `count` nonblocking FFI calls run at the same time: each releases one unit of a
 * semaphore when it starts on a worker thread of Deno's pool, then waits for a go event
 * (`SignalObjectAndWait`). Units are counted here until all `count` calls have started or
 * `deadlineMs` passed; then all are let go and awaited. A call that finds no free thread waits
 * for one, so the count is the number of free threads, up to `count`.
 */
async function callsAtOnce(count: number, deadlineMs: number): Promise<number> {
  // Only this probe needs SignalObjectAndWait (it measures Deno's pool, not a mechanism).
  const probe = Deno.dlopen("kernel32.dll", {
    SignalObjectAndWait: {
      parameters: ["pointer", "pointer", "u32", "i32"],
      result: "u32",
      nonblocking: true,
    },
  });
  const k = kernel32();
  const started = k.CreateSemaphoreW(null, 0, count, null)!;
  const go = k.CreateEventW(null, 1, 0, null)!;
  try {
    const calls = Array.from(
      { length: count },
      () => probe.symbols.SignalObjectAndWait(started, go, 60_000, 0),
    );
    let running = 0;
    const deadline = performance.now() + deadlineMs;
    while (running < count && performance.now() < deadline) {
      while (running < count && k.WaitForSingleObject(started, 0) === 0) running++;
      if (running < count) await new Promise((r) => setTimeout(r, 10));
    }
    k.SetEvent(go);
    assert.deepEqual(await Promise.all(calls), calls.map(() => 0), "each call saw the go event");
    return running;
  } finally {
    k.CloseHandle(started);
    k.CloseHandle(go);
    probe.close();
  }
}

winTest(
  "64 Event.wait() + 64 pending pipe reads + a child's stdout: all complete, none waits on the pool",
  async () => {
    const events = Array.from({ length: 64 }, () => Event.create());
    const { server, accepted, clients } = await connectPipes(64);
    try {
      const waits = events.map((e) => e.wait({ timeout: 30_000 }));
      const reads = clients.map((c) => c.read(new Uint8Array(16), { timeout: 30_000 }));
      await using child = spawnChild(
        Deno.execPath(),
        ["run", "-A", "--quiet", repoPath("tests/fixtures/copy_stdin.ts")],
        { stdin: "piped", stdout: "piped", stderr: "null" },
      );
      const output = new Response(child.stdout!.readable).text();
      // 128 waits pending: a nonblocking call still gets a worker thread at once. With one
      // thread per wait (Deno has 8), it would queue behind waits that never end here.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const slept = await Promise.race([
        kernel32().SleepAsync(0).then(() => "slept"),
        new Promise((r) => timer = setTimeout(() => r("stuck behind the waits"), 10_000)),
      ]);
      clearTimeout(timer);
      assert.equal(slept, "slept");
      // Stronger: half of Deno's 8 worker threads are still free, four calls run at once. The
      // pending operations hold one thread (the completion port's wait), the 64 event waits at
      // most three (wait groups of 63); one thread per wait or per read would leave none.
      assert.equal(await callsAtOnce(4, 10_000), 4, "calls that ran at once beside the waits");
      await child.stdin!.write("through the child\n");
      child.stdin!.close();
      for (const e of events) e.set();
      for (const [i, conn] of accepted.entries()) await conn.write(`m${i}`);
      assert.deepEqual(await Promise.all(waits), events.map(() => true));
      const counts = await Promise.all(reads);
      assert.ok(counts.every((n) => n !== null && n >= 2), `reads: ${counts}`);
      assert.equal(await output, "through the child\n");
      assert.equal((await child.wait())?.code, 0);
    } finally {
      for (const e of events) e.close();
      for (const c of clients) c.close();
      for (const c of accepted) c.close();
      server.close();
    }
  },
);

winTest("an idle process with 100 pending pipe reads uses little CPU", async () => {
  const { server, accepted, clients } = await connectPipes(100);
  try {
    const reads = clients.map((c) => c.read(new Uint8Array(16)).catch(() => null));
    await new Promise((r) => setTimeout(r, 200)); // let everything settle into its wait
    const cpu0 = cpuMs();
    const wall0 = performance.now();
    await new Promise((r) => setTimeout(r, 2_000));
    const share = (cpuMs() - cpu0) / (performance.now() - wall0);
    // A generous bound (a quarter of one core): a busy poll would use a whole core.
    assert.ok(share < 0.25, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);
    for (const c of clients) c.close();
    await Promise.all(reads);
  } finally {
    for (const c of clients) c.close();
    for (const c of accepted) c.close();
    server.close();
  }
});

winTest(
  "grouped waits lose no unit: aborted semaphore waits leave every release to the others",
  async () => {
    // 100 waits on one semaphore (two groups of worker-thread waits); half are aborted while the
    // group calls are in flight. Each of the 50 releases must reach one remaining waiter: a unit
    // that a group call took for an aborted waiter would be lost, and one waiter would hang.
    using semaphore = Semaphore.create(null, { initial: 0, maximum: 100 });
    const controllers = Array.from({ length: 100 }, () => new AbortController());
    const waits = controllers.map((c) =>
      semaphore.acquire({ timeout: 30_000, signal: c.signal }).then(
        () => "acquired",
        (e) => (e as Error).message === "aborted" ? "aborted" : `failed: ${e}`,
      )
    );
    await new Promise((r) => setTimeout(r, 100));
    for (const c of controllers.slice(0, 50)) c.abort(new Error("aborted"));
    for (let i = 0; i < 50; i++) semaphore.release();
    const outcomes = await Promise.all(waits);
    const acquired = outcomes.filter((o) => o === "acquired").length;
    const aborted = outcomes.filter((o) => o === "aborted").length;
    // A group call may take a unit for an aborted waiter before it sees the abort (that waiter
    // then reports it acquired): either way each unit reached exactly one waiter.
    assert.equal(acquired + aborted, 100, `outcomes: ${outcomes.filter((o) => o !== "acquired")}`);
    assert.equal(acquired, 50, "every released unit reached exactly one waiter");
    assert.equal(semaphore.tryAcquire(), false, "no unit left over");
  },
);

winTest("an auto-reset event set ten times wakes ten waiters, one each", async () => {
  using event = Event.create(null, { manualReset: false });
  const waits = Array.from({ length: 10 }, () => event.wait({ timeout: 30_000 }));
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 10; i++) {
    event.set();
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(await Promise.all(waits), Array(10).fill(true));
  assert.equal(await event.wait({ timeout: 0 }), false);
});

winTest("associate() takes its status from the native call, not from GetLastError", () => {
  const k = kernel32();
  const path = wide(`\\\\.\\pipe\\${uniqueName("io-assoc")}`);
  const pipe = k.CreateNamedPipeW(
    path,
    PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
    0,
    1,
    4096,
    4096,
    0,
    null,
  );
  assert.ok(pipe, "CreateNamedPipeW");
  try {
    associate(pipe);
    // A second association is refused by the system and accepted here as "associated already",
    // whatever the thread's last error says.
    k.SetLastError(1150);
    associate(pipe);
  } finally {
    k.CloseHandle(pipe);
  }
  // An event is no file: a real failure, reported with the call's own status.
  const event = k.CreateEventW(null, 1, 0, null);
  assert.ok(event, "CreateEventW");
  try {
    k.SetLastError(0);
    assert.throws(
      () => associate(event, "Cannot start test I/O"),
      (e: unknown) =>
        e instanceof Win32Error && e.functionName === "NtSetInformationFile" && e.code !== 0 &&
        e.message.startsWith("Cannot start test I/O (associating the handle"),
    );
  } finally {
    k.CloseHandle(event);
  }
});

winTest(
  "an idle process with 10 message windows, a clipboard watcher and 100 pending pipe reads uses ~no CPU",
  async () => {
    // In a process of its own: this test process may run a DDE pump left by earlier test files.
    await using child = spawnFixture("idle_cost.ts", ["10", "100", "3000", "1"]);
    const { share, cpuMs } = JSON.parse(await child.line(60_000));
    console.log(
      `idle: ${cpuMs.toFixed(1)} ms of CPU in 3 s, ${(share * 100).toFixed(2)}% of one core`,
    );
    // Polling the ten windows (or the clipboard watcher's one) from the main thread cost 8–9% of
    // a core under Wine; blocked threads cost nothing, whatever the machine's speed.
    assert.ok(share < 0.05, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);
    assert.equal((await child.finish()).code, 0);
  },
);

winTest(
  "a completion port that stops working ends its pending reads with an error, and a new one takes over",
  async () => {
    // In a process of its own: the port is the process's, and this one closes it.
    await using child = spawnFixture("io_port_failure.ts", [], { stderr: "piped" });
    const ended = await child.line(60_000);
    assert.match(
      ended,
      /^rejected Win32Error: The I\/O completion port failed; pending I\/O cannot complete: NtRemoveIoCompletionEx failed with ERROR_INVALID_HANDLE/,
    );
    assert.equal(await child.line(60_000), "new port works");
    const { code, stderr } = await child.finish();
    assert.equal(code, 0, stderr);
  },
);
