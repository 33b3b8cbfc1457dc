import assert from "node:assert/strict";
import { DdeClient, DdeError, DdeServer } from "../mechanisms/dde.ts";
import { pump } from "../mechanisms/_pump.ts";
import { serviceAppears } from "./_dde_helpers.ts";
import { idleCpuShare, runCli, spawnCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

async function startServer(service: string, topic: string) {
  const server = spawnFixture("dde_peer.ts", ["serve", service, topic]);
  assert.equal(await server.line(), "ready");
  return server;
}

winTest(
  "DDE between two processes: request, poke then request (CF_TEXT and CF_UNICODETEXT), execute",
  async () => {
    const service = uniqueName("svc");
    await using server = await startServer(service, "Data");
    using conv = await DdeClient.connect(service, "Data", { timeout: 10_000 });
    assert.equal(conv.service, service);

    await assert.rejects(conv.request("missing"), (e) => {
      assert.ok(e instanceof DdeError);
      assert.equal(e.codeName, "DMLERR_NOTPROCESSED");
      assert.match(e.message, /Cannot request DDE item "missing"/);
      return true;
    });

    await conv.poke("greeting", "héllo wörld"); // Latin-1: goes as CF_TEXT
    const latin = await conv.requestData("greeting");
    assert.equal(latin.format, 1, "answered as CF_TEXT");
    assert.equal(latin.text(), "héllo wörld");

    await conv.poke("name", "日本語 ✓ 𝄞"); // not Latin-1: goes as CF_UNICODETEXT
    const uni = await conv.requestData("name");
    assert.equal(uni.format, 13, "the server refuses CF_TEXT for it, CF_UNICODETEXT answers");
    assert.equal(uni.text(), "日本語 ✓ 𝄞");
    assert.equal(await conv.request("name", { formats: ["CF_UNICODETEXT"] }), "日本語 ✓ 𝄞");

    // Latin-1 only: Wine's DDEML mangles other characters in execute commands (see execute())
    await conv.execute('[Run("ü ß")]');
    assert.deepEqual(JSON.parse(await server.line()), { execute: '[Run("ü ß")]' });
    assert.equal(await conv.request("lastCommand"), '[Run("ü ß")]');
  },
);

winTest("DDE advise loop: 100 hot updates delivered in order", async () => {
  const service = uniqueName("svc");
  await using server = await startServer(service, "Feed");
  using conv = await DdeClient.connect(service, "Feed", { timeout: 10_000 });
  const updates = conv.advise("counter");
  await conv.execute("advise counter 100");
  assert.deepEqual(JSON.parse(await server.line()), { execute: "advise counter 100" });
  const seen: string[] = [];
  const timer = setTimeout(() => updates.return?.(), 60_000);
  try {
    for await (const update of updates) {
      assert.equal(update.item, "counter");
      assert.equal(update.topic, "Feed");
      seen.push(update.data!.text());
      if (seen.length === 100) break;
    }
  } finally {
    clearTimeout(timer);
  }
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => `v${i}`));
  assert.deepEqual(JSON.parse(await server.line()), { advised: 100 });
});

winTest("DDE warm advise loop: updates without data", async () => {
  const service = uniqueName("svc");
  await using server = await startServer(service, "Feed");
  using conv = await DdeClient.connect(service, "Feed", { timeout: 10_000 });
  const updates = conv.advise("warm", { hot: false });
  await conv.execute("advise warm 3");
  const first = await updates.next();
  assert.equal(first.done, false);
  assert.equal(first.value!.item, "warm");
  assert.equal(first.value!.data, null);
  await updates.return?.();
  assert.match(await server.line(), /advise warm 3/);
});

winTest("DDE transaction timeout: a slow server gives DMLERR_EXECACKTIMEOUT", async () => {
  const service = uniqueName("svc");
  await using server = await startServer(service, "Slow");
  using conv = await DdeClient.connect(service, "Slow", { timeout: 10_000 });
  const started = performance.now();
  await assert.rejects(conv.execute("sleep 3000", { timeout: 500 }), (e) => {
    assert.ok(e instanceof DdeError);
    assert.equal(e.codeName, "DMLERR_EXECACKTIMEOUT");
    assert.match(e.message, /the server did not answer an execute in time/);
    return true;
  });
  assert.ok(performance.now() - started < 30_000);
  assert.deepEqual(JSON.parse(await server.line()), { execute: "sleep 3000" });
});

winTest("DDE bad input: a missing service or topic, bad arguments", async () => {
  const service = uniqueName("nosvc");
  await assert.rejects(DdeClient.connect(service, "Topic", { timeout: 2000 }), (e) => {
    assert.ok(e instanceof DdeError);
    assert.equal(e.codeName, "DMLERR_NO_CONV_ESTABLISHED");
    assert.equal(e.functionName, "DdeConnect");
    assert.match(e.message, new RegExp(`Cannot connect to DDE service "${service}" topic "Topic"`));
    return true;
  });
  const real = uniqueName("svc");
  await using _server = await startServer(real, "Data");
  await assert.rejects(
    DdeClient.connect(real, "OtherTopic"),
    (e) => e instanceof DdeError && e.codeName === "DMLERR_NO_CONV_ESTABLISHED",
  );
  await assert.rejects(
    DdeClient.connect("", "x"),
    /Invalid argument "service": must not be empty/,
  );
  await assert.rejects(DdeClient.connect("a", "b", { timeout: 0 }), RangeError);
  using conv = await DdeClient.connect(real, "Data");
  await assert.rejects(conv.execute(""), /Invalid argument "command"/);
  await assert.rejects(conv.request("x", { formats: [] }), /must name at least one format/);
});

winTest("CLI: dde serve with poke, request and execute from other processes", async () => {
  const service = uniqueName("cli-svc");
  await using server = spawnCli(["dde", "serve", service, "Topic", "--json", "--timeout", "60"]);
  await serviceAppears(service, "Topic");

  const poke = await runCli(["dde", "poke", service, "Topic", "price", "1.08 €"]);
  assert.deepEqual(poke, { code: 0, stdout: "", stderr: "" });
  const poked = JSON.parse(await server.line());
  // DDE names are atoms, case-insensitive: the server sees the item in whatever spelling the
  // session's atom table holds (the first one registered), so compare without case
  assert.deepEqual({ ...poked, item: poked.item.toLowerCase() }, {
    event: "poke",
    topic: "Topic",
    item: "price",
    text: "1.08 €",
  });
  const request = await runCli(["dde", "request", service, "Topic", "price"]);
  assert.deepEqual(request, { code: 0, stdout: "1.08 €\n", stderr: "" });
  const uni = await runCli(["dde", "poke", service, "Topic", "name", "日本語"]);
  assert.equal(uni.code, 0);
  await server.line();
  const json = await runCli(["dde", "request", service, "Topic", "name", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout), {
    service,
    topic: "Topic",
    item: "name",
    format: "CF_UNICODETEXT",
    text: "日本語",
  });
  const exec = await runCli(["dde", "execute", service, "Topic", "[Recalc]"]);
  assert.equal(exec.code, 0);
  assert.deepEqual(JSON.parse(await server.line()), {
    event: "execute",
    topic: "Topic",
    command: "[Recalc]",
  });

  const noItem = await runCli(["dde", "request", service, "Topic", "nothing"]);
  assert.equal(noItem.code, 1);
  assert.match(noItem.stderr, /^error: Cannot request DDE item "nothing".*DMLERR_NOTPROCESSED/);
});

winTest("CLI: dde errors: a missing service (exit 1) and bad usage (exit 2)", async () => {
  const service = uniqueName("cli-none");
  const missing = await runCli(["dde", "request", service, "T", "i"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.match(
    missing.stderr,
    new RegExp(
      `^error: Cannot connect to DDE service "${service}" topic "T": DdeConnect failed with DMLERR_NO_CONV_ESTABLISHED`,
    ),
  );
  const empty = await runCli(["dde", "request", "", "T", "i"]);
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /^error: Invalid <service>: must not be empty/);
  const extra = await runCli(["dde", "poke", "s", "t", "i"]);
  assert.equal(extra.code, 2);
  assert.match(extra.stderr, /^error: missing required argument 'value'/);
  const quiet = await runCli(["dde", "serve", uniqueName("cli-quiet"), "T", "--timeout", "1"]);
  assert.deepEqual(quiet, { code: 0, stdout: "", stderr: "" });
});

winTest("re-entry: 1,000 DDE pokes with gc() inside the server's callback", async () => {
  const service = uniqueName("svc-gc");
  await using server = spawnFixture("dde_peer.ts", ["serve", service, "Data"], {
    denoFlags: ["--v8-flags=--expose-gc"],
  });
  assert.equal(await server.line(), "ready");
  using conv = await DdeClient.connect(service, "Data", { timeout: 10_000 });
  for (let i = 0; i < 1000; i++) await conv.poke(`item${i % 7}`, `value ${i}`);
  assert.equal(await conv.request("item5"), "value 999");
});

winTest(
  "a DDE server closed inside its own poke callback: no crash, the next poke is refused",
  async () => {
    const service = uniqueName("svc-close");
    const pokes: string[] = [];
    const server = new DdeServer(service, {
      topics: ["Data"],
      poke: (_topic, item, data) => {
        pokes.push(data.text());
        if (item === "close") server.close();
      },
    });
    try {
      await serviceAppears(service, "Data");
      await using client = spawnFixture("dde_client.ts", [service, "Data", "close", "a", "b"]);
      const { code, rest } = await client.finish();
      assert.equal(code, 0);
      assert.equal(rest[0], "ok", "connected");
      assert.equal(rest[1], "ok", "the poke that closed the server was answered");
      assert.match(rest[2], /^error (DMLERR_|closed)/, "the next poke is refused");
      assert.deepEqual(pokes, ["a"]);
      assert.throws(() => server.advise("Data", "close"), Deno.errors.BadResource);
    } finally {
      server.close();
    }
  },
);

winTest(
  "a hung top-level window: connect and transactions reject on time, the event loop keeps ticking",
  async () => {
    const service = uniqueName("svc-hung");
    await using _server = await startServer(service, "Data");
    // two conversations made before the hang: one that a timed-out transaction ends (its
    // thread is abandoned), one for the next transaction
    using pokes = await DdeClient.connect(service, "Data", { timeout: 10_000 });
    using requests = await DdeClient.connect(service, "Data", { timeout: 10_000 });
    await pokes.poke("before", "ok");
    // From now on every DdeConnect of the session waits for this window (its thread sleeps 30 s).
    await using hung = spawnFixture("hung_window.ts", [uniqueName("hung"), "30"]);
    assert.equal(await hung.line(), "ready");
    let ticks = 0;
    const interval = setInterval(() => ticks++, 20);
    try {
      const timeout = 1500;
      // All three at once: a window whose thread has asked for no message for 5 s counts as hung
      // (IsHungAppWindow), and DdeConnect's broadcast (SMTO_ABORTIFHUNG) then skips it, so an
      // attempt that started later would connect. One after the other they took 4.5 s and more,
      // past that mark on a loaded machine.
      const t0 = performance.now();
      const ticks0 = ticks;
      const attempts = [
        ["connect", () => DdeClient.connect(uniqueName("nobody"), "Data", { timeout })],
        ["poke", () => pokes.poke("during", "x", { timeout })],
        ["request", () => requests.request("before", { timeout, formats: ["CF_TEXT"] })],
      ] as const;
      const took = await Promise.all(attempts.map(async ([what, attempt]) => {
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(
            e instanceof DdeError || e instanceof Deno.errors.BadResource,
            `${what}: ${e}`,
          );
          return true;
        }, `${what} did not reject: the hung window did not hold it up`);
        return [what, performance.now() - t0] as const;
      }));
      for (const [what, elapsed] of took) {
        // well before the window wakes up (30 s); a loaded machine may be slower than 1.5 s
        assert.ok(elapsed < 15_000, `${what} took ${elapsed.toFixed(0)} ms`);
      }
      // the event loop ran meanwhile: at least a third of the ticks a 20 ms interval makes
      const elapsed = performance.now() - t0;
      const expected = elapsed / 20;
      assert.ok(
        ticks - ticks0 >= expected / 3,
        `${ticks - ticks0} ticks in ${elapsed.toFixed(0)} ms`,
      );
    } finally {
      clearInterval(interval);
    }
  },
);

winTest(
  "a DDE server lives on the window thread: no main-thread pump, idle without CPU, and a poke " +
    "handler that advises at once reaches another process's advise loop",
  async () => {
    const service = uniqueName("svc-thread");
    const items = new Map<string, string>();
    const dispatched = pump.dispatched;
    const server: DdeServer = new DdeServer(service, {
      topics: ["Data"],
      request: (_topic, item) => items.get(item.toLowerCase()),
      poke: (topic, item, data): void => {
        items.set(item.toLowerCase(), data.text());
        // From inside the poke: the advise runs on the window thread while it waits for this
        // handler, and asks this thread for the value, which it answers while it waits.
        assert.equal(server.advise(topic, item), true);
      },
    });
    try {
      assert.equal(pump.attached, 0, "the server attaches no main-thread pump");
      await serviceAppears(service, "Data");
      // idle: nothing polls (the lowest of up to three windows, so one burst of unrelated work
      // in the process does not read as polling)
      const share = await idleCpuShare();
      // a polling pump used 15-22% of a core here under Wine 10
      assert.ok(share < 0.05, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);

      await using loop = spawnCli([
        "dde",
        "advise",
        service,
        "Data",
        "price",
        "--count",
        "3",
        "--json",
        "--timeout",
        "60",
      ]);
      assert.equal(JSON.parse(await loop.line()).event, "ready");
      for (const value of ["1.08", "1.09", "1.10"]) {
        const poke = await runCli(["dde", "poke", service, "Data", "price", value]);
        assert.deepEqual(poke, { code: 0, stdout: "", stderr: "" });
      }
      const end = await loop.finish();
      assert.equal(end.code, 0, end.stderr);
      assert.deepEqual(end.rest.map((line) => JSON.parse(line).text), ["1.08", "1.09", "1.10"]);
      assert.equal(pump.attached, 0);
      assert.equal(pump.dispatched, dispatched, "the main thread dispatched no message");
    } finally {
      server.close();
    }
  },
);

winTest(
  "a process that ends with a window and a DDE server still open ends them on the window thread " +
    "first, and exits 0",
  async () => {
    // Three at once: an exit that crashes (Wine's process teardown with the thread still in
    // its wait was the suspect of a lone exit code 139) shows in any of them.
    const runs = [1, 2, 3].map(async () => {
      await using fixture = spawnFixture("exit_open.ts", [uniqueName("svc-exit")]);
      assert.equal(await fixture.line(), "ready");
      const atUnload = JSON.parse(await fixture.line());
      const { code } = await fixture.finish();
      return { atUnload, code };
    });
    for (const run of await Promise.all(runs)) {
      assert.deepEqual(run, { atUnload: { windowAlive: false }, code: 0 });
    }
  },
);
