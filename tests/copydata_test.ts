import assert from "node:assert/strict";
import {
  BROADCAST_QUERY_DENY,
  broadcastMessage,
  findWindow,
  findWindows,
  MessageWindow,
  postMessage,
  queryBroadcast,
  registerWindowMessage,
  sendCopyData,
  sendMessage,
  windowOwner,
  windowTitle,
} from "../mechanisms/copydata.ts";
import { Win32Error } from "../ffi/error.ts";
import { Event } from "../mechanisms/sync.ts";
import {
  Fixture,
  repoPath,
  runCli,
  spawnCli,
  spawnFixture,
  underWine,
  uniqueName,
  winTest,
} from "./_helpers.ts";

const MiB = 1 << 20;
const NON_ASCII = "héllo wörld ✓ 𝄞 日本語";

function pattern(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i + seed) % 251;
  return out;
}

async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A fixture whose V8 stack limit is raised: under Wine a sent message's data is copied onto the
 * receiving thread's stack, and a 1 MiB payload exceeds V8's default limit of 984 KiB (see
 * mechanisms/_pump.ts). The test runner itself runs with the default, so 1 MiB payloads are
 * received by fixtures started with this flag.
 */
function spawnBigStack(args: string[]): Fixture {
  return new Fixture(
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        "--v8-flags=--stack-size=4096",
        repoPath("tests/fixtures/copydata_peer.ts"),
        ...args,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn(),
  );
}

winTest(
  "WM_COPYDATA to another process: 1 MiB, non-ASCII text and empty payloads, replies",
  async () => {
    const title = uniqueName("cd-recv");
    await using peer = spawnBigStack(["listen", title, "3"]);
    const ready = await peer.line();
    assert.match(ready, /^ready \d+$/);
    const big = pattern(MiB, 3);
    const replies = [
      await sendCopyData(title, big, { dwData: 1, timeout: 20_000 }),
      await sendCopyData(title, NON_ASCII, { dwData: 2n, timeout: 20_000 }),
      await sendCopyData(BigInt(ready.split(" ")[1]), new Uint8Array(0), { timeout: 20_000 }),
    ];
    const utf8 = new TextEncoder().encode(NON_ASCII);
    // the receiver replies with length + dwData
    assert.deepEqual(replies, [MiB + 1, utf8.length + 2, 0]);
    const lines = [await peer.line(), await peer.line(), await peer.line()].map((l) =>
      JSON.parse(l)
    );
    assert.equal(lines[0].length, MiB);
    assert.equal(lines[0].dwData, 1);
    assert.equal(lines[0].sha256, await digest(big));
    assert.equal(lines[1].text, NON_ASCII);
    assert.equal(lines[1].dwData, 2);
    assert.equal(lines[2].length, 0);
    assert.equal(lines[2].sender, "0");
    assert.equal((await peer.finish()).code, 0);
  },
);

winTest(
  "WM_COPYDATA from another process: 512 KiB payloads in order, reply values seen",
  async () => {
    // 512 KiB, not 1 MiB: this process runs with V8's default stack limit (see spawnBigStack)
    const size = 512 * 1024;
    const title = uniqueName("cd-here");
    const received: { dwData: bigint; sha: string }[] = [];
    using win = new MessageWindow({
      title,
      onCopyData: (m) => BigInt(m.data.length) + m.dwData,
    });
    await using sender = spawnFixture("copydata_peer.ts", ["send", title, "4", String(size)]);
    let n = 0;
    for await (const m of win) {
      received.push({ dwData: m.dwData, sha: await digest(m.data) });
      assert.equal(m.data.length, size);
      if (++n === 4) break;
    }
    for (let i = 0; i < 4; i++) {
      const line = JSON.parse(await sender.line());
      assert.equal(line.i, i);
      assert.equal(line.reply, size + i);
      assert.equal(received[i].dwData, BigInt(i));
      assert.equal(received[i].sha, line.sha256);
      assert.equal(received[i].sha, await digest(pattern(size, i)));
    }
    assert.equal((await sender.finish()).code, 0);
  },
);

winTest("WM_COPYDATA both ways between two processes with 1 MiB payloads", async () => {
  const echoTitle = uniqueName("cd-echo");
  const pingTitle = uniqueName("cd-ping");
  await using echo = spawnBigStack(["echo", echoTitle, pingTitle, "3"]);
  assert.match(await echo.line(), /^ready /);
  await using ping = spawnBigStack(["ping", pingTitle, echoTitle, "3", String(MiB)]);
  // each payload went ping -> echo (reply: length + dwData) and came back echo -> ping intact
  assert.deepEqual(JSON.parse(await ping.line(60_000)), {
    replies: [MiB, MiB + 1, MiB + 2],
    matched: 3,
    size: MiB,
  });
  assert.deepEqual(JSON.parse(await echo.line(60_000)), { echoed: 3 });
});

winTest(
  "a payload beyond V8's stack limit gives the receiver a clear error and the sender 0",
  async () => {
    const title = uniqueName("cd-deep");
    await using peer = spawnFixture("copydata_peer.ts", ["listen", title, "1"], {
      stderr: "piped",
    });
    assert.match(await peer.line(), /^ready /);
    assert.equal(await sendCopyData(title, pattern(MiB, 0), { timeout: 20_000 }), 0);
    const { code, stderr } = await peer.finish();
    assert.equal(code, 1);
    assert.match(stderr, /StackLimitError: .*--v8-flags=--stack-size=4096/);
  },
);

// Four senders: their stdout/stderr pipes keep threads of this process's blocking pool busy, which
// stalled a pump that slept only with nonblocking FFI calls (see FALLBACK_MS in _pump.ts).
winTest("WM_COPYDATA from 4 processes at once: nothing lost", async () => {
  const title = uniqueName("cd-many");
  const counts = new Map<bigint, number>();
  using win = new MessageWindow({ title, onCopyData: (m) => m.data.length });
  const senders = Array.from(
    { length: 4 },
    () => spawnFixture("copydata_peer.ts", ["send", title, "50", "64"]),
  );
  try {
    let n = 0;
    for await (const m of win) {
      assert.equal(m.data.length, 64);
      counts.set(m.dwData, (counts.get(m.dwData) ?? 0) + 1);
      if (++n === 200) break;
    }
    for (const sender of senders) {
      const { code, rest } = await sender.finish();
      assert.equal(code, 0);
      assert.equal(rest.length, 50);
      assert.ok(rest.every((line) => JSON.parse(line).reply === 64));
    }
  } finally {
    for (const sender of senders) await sender[Symbol.asyncDispose]();
  }
  assert.equal(counts.size, 50);
  assert.ok([...counts.values()].every((c) => c === 4), JSON.stringify([...counts.values()]));
});

winTest("WM_COPYDATA from another process: non-ASCII text, reply set by the handler", async () => {
  const title = uniqueName("cd-text");
  using win = new MessageWindow({ title, onCopyData: (m) => (m.text() === NON_ASCII ? 4242 : -1) });
  await using sender = spawnFixture("copydata_peer.ts", ["text", title, NON_ASCII]);
  const it = win.copyData();
  const first = await it.next();
  assert.equal(first.done, false);
  assert.equal(first.value!.text(), NON_ASCII);
  assert.equal(first.value!.dwData, 5n);
  assert.deepEqual(JSON.parse(await sender.line()), { reply: 4242 });
});

winTest(
  "a window without onCopyData answers senders while its main thread is blocked, then yields each in order",
  async () => {
    // The window thread answers (with `reply`) and queues the payload: the sender needs nothing
    // of the main thread, which here waits synchronously for the sender to have all its replies.
    const title = uniqueName("cd-immediate");
    const eventName = uniqueName("cd-immediate-done");
    using done = Event.create(eventName);
    using win = new MessageWindow({ title, reply: 77 });
    await using sender = spawnFixture("copydata_peer.ts", ["send", title, "3", "40", eventName]);
    assert.equal(
      done.waitSync(60_000),
      true,
      "the sender had its 3 replies while this thread waited",
    );
    for (let i = 0; i < 3; i++) {
      const line = JSON.parse(await sender.line());
      assert.equal(line.i, i);
      assert.equal(line.reply, 77);
    }
    const it = win.copyData();
    for (let i = 0; i < 3; i++) {
      const { value } = await it.next();
      assert.equal(value!.dwData, BigInt(i));
      assert.deepEqual(value!.data, pattern(40, i));
    }
    assert.equal((await sender.finish()).code, 0);
  },
);

winTest("WM_COPYDATA to a hung receiver fails with ERROR_TIMEOUT, not a hang", async () => {
  const title = uniqueName("cd-hung");
  await using peer = spawnFixture("copydata_peer.ts", ["hung", title]);
  assert.match(await peer.line(), /^ready /);
  const started = performance.now();
  await assert.rejects(
    sendCopyData(title, "anyone there?", { timeout: 1500 }),
    (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_TIMEOUT");
      assert.match(e.message, /No reply from window ".*" within 1500 ms/);
      return true;
    },
  );
  // generous: the point is that it returned at all (the receiver sleeps for 60 s)
  assert.ok(performance.now() - started < 30_000);
});

winTest("a missing window and bad arguments give clear errors", async () => {
  const title = uniqueName("cd-missing");
  await assert.rejects(sendCopyData(title, "x"), (e) => {
    assert.ok(e instanceof Deno.errors.NotFound);
    assert.equal((e as Error).message, `No window "${title}" was found`);
    return true;
  });
  await assert.rejects(sendCopyData(0x7ff0_0000n, "x"), Deno.errors.NotFound);
  await assert.rejects(
    sendCopyData(title, 42 as unknown as string),
    /Invalid argument "data": must be a Uint8Array or a string/,
  );
  await assert.rejects(sendCopyData(title, "x", { timeout: 0 }), RangeError);
  await assert.rejects(sendCopyData(title, "x", { dwData: -1 }), /options\.dwData/);
  assert.throws(() => postMessage(title, 0xc100), Deno.errors.NotFound);
  assert.throws(() => broadcastMessage(0x0400), /only registered messages/);
  assert.throws(() => new MessageWindow({ title: "a\0b" }), /options\.title.*NUL/);
  assert.throws(() => findWindow({}), /needs a title or a className/);
  assert.throws(() => registerWindowMessage(""), /must not be empty/);
});

winTest("find windows by title and class, message-only windows, owner process", async () => {
  const title = uniqueName("cd-find");
  const className = uniqueName("cls");
  await using peer = spawnFixture("copydata_peer.ts", ["quiet", title, className]);
  const hwnd = BigInt((await peer.line()).split(" ")[1]);
  assert.equal(findWindow({ title }), hwnd);
  assert.equal(findWindow({ className }), hwnd);
  assert.equal(findWindow({ title, className }), hwnd);
  assert.deepEqual(findWindows({ className }), [hwnd]);
  assert.equal(findWindow({ title: uniqueName("nobody") }), null);
  assert.equal(windowTitle(hwnd), title);
  assert.equal(windowOwner(hwnd).processId !== Deno.pid, true);
  assert.equal(await sendCopyData({ title, className }, "x"), 7);

  const hidden = uniqueName("cd-msgonly");
  using own = new MessageWindow({ title: hidden, messageOnly: true });
  // Windows' FindWindowW skips message-only windows; Wine 10's lists them too, so only the
  // HWND_MESSAGE search is asserted here.
  assert.equal(findWindow({ title: hidden, messageOnly: true }), own.handle);
  assert.equal(findWindow({ title: uniqueName("none"), messageOnly: true }), null);
  assert.equal(windowOwner(own.handle).processId, Deno.pid);
});

winTest(
  "registered messages: posted to a window and broadcast to every top-level window",
  async () => {
    const name = uniqueName("msg");
    const id = registerWindowMessage(name);
    assert.ok(id >= 0xc000 && id <= 0xffff);
    assert.equal(registerWindowMessage(name.toUpperCase()), id, "names are case-insensitive");

    const t1 = uniqueName("cd-reg");
    await using a = spawnFixture("copydata_peer.ts", ["registered", t1, name]);
    assert.match(await a.line(), /^ready /);
    broadcastMessage(id, { wParam: 77 });
    assert.deepEqual(JSON.parse(await a.line()), { message: id, wParam: 77 });

    const t2 = uniqueName("cd-reg");
    await using b = spawnFixture("copydata_peer.ts", ["registered", t2, name]);
    assert.match(await b.line(), /^ready /);
    postMessage(t2, id, { wParam: 5 });
    assert.deepEqual(JSON.parse(await b.line()), { message: id, wParam: 5 });
  },
);

winTest(
  "sendMessage with a registered message is answered by onMessage in this process's pump",
  async () => {
    const id = registerWindowMessage(uniqueName("ask"));
    const title = uniqueName("cd-ask");
    using win = new MessageWindow({
      title,
      messages: [id],
      onMessage: (m) => m.wParam * 2n + m.lParam,
    });
    // sent from a worker thread to this thread's window: the pump answers while we await
    assert.equal(await sendMessage(title, id, { wParam: 20, lParam: 2 }), 42n);
    const got = await win.messages().next();
    assert.equal(got.value?.message, id);
  },
);

winTest("the pump lets the process exit when no window keeps it alive", async () => {
  await using peer = spawnFixture("copydata_peer.ts", ["exit"]);
  assert.equal(await peer.line(), "done");
  const { code } = await peer.finish();
  assert.equal(code, 0);
});

winTest("pump latency: 1,000 WM_COPYDATA round trips from another process", async () => {
  const title = uniqueName("cd-bench");
  await using peer = spawnFixture("copydata_peer.ts", ["quiet", title]);
  assert.match(await peer.line(), /^ready /);
  await using bench = spawnFixture("copydata_peer.ts", ["bench", title, "1000"]);
  const result = JSON.parse(await bench.line(120_000));
  assert.equal(result.n, 1000);
  assert.ok(Number.isFinite(result.p50_us) && result.p50_us > 0);
  console.log(`WM_COPYDATA round trip: p50 ${result.p50_us} µs, p99 ${result.p99_us} µs`);
});

/** Waits until a window with the title exists (a CLI listener prints nothing before its first message). */
async function windowAppears(title: string, timeout = 30_000): Promise<bigint> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const hwnd = findWindow({ title });
    if (hwnd !== null) return hwnd;
    if (Date.now() > deadline) throw new Error(`No window "${title}" appeared`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

winTest("CLI: copydata listen prints payloads, copydata send prints the reply", async () => {
  const title = uniqueName("cli-cd");
  await using listener = spawnCli(["copydata", "listen", title, "--count", "3"]);
  await windowAppears(title);
  assert.equal(await sendCopyData(title, "first"), 1);
  const sent = await runCli(["copydata", "send", title, NON_ASCII, "--data", "7"]);
  assert.deepEqual(sent, { code: 0, stdout: "1\n", stderr: "" });
  // one trailing NUL (as C senders include it) is dropped
  assert.equal(await sendCopyData(title, new TextEncoder().encode("with nul\0")), 1);
  assert.equal(await listener.line(), "first");
  assert.equal(await listener.line(), NON_ASCII);
  assert.equal(await listener.line(), "with nul");
  assert.equal((await listener.finish()).code, 0);
});

winTest("CLI: copydata --json, --timeout, a missing window and bad usage", async () => {
  const title = uniqueName("cli-cdj");
  await using listener = spawnCli(["copydata", "listen", title, "--json", "--timeout", "20"]);
  await windowAppears(title);
  const sent = await runCli(["copydata", "send", title, "héllo", "--data", "3", "--json"]);
  assert.equal(sent.code, 0);
  assert.deepEqual(JSON.parse(sent.stdout), { title, dwData: 3, reply: 1 });
  const line = JSON.parse(await listener.line());
  assert.equal(line.event, "copydata");
  assert.equal(line.text, "héllo");
  assert.equal(line.dwData, 3);
  assert.equal(line.bytes, 6);

  const quiet = await runCli(["copydata", "listen", uniqueName("cli-idle"), "--timeout", "1"]);
  assert.deepEqual(quiet, { code: 0, stdout: "", stderr: "" });

  const missing = uniqueName("cli-none");
  const lost = await runCli(["copydata", "send", missing, "x"]);
  assert.equal(lost.code, 1);
  assert.equal(lost.stdout, "");
  assert.equal(lost.stderr, `error: No window "${missing}" was found\n`);

  const badData = await runCli(["copydata", "send", title, "x", "--data", "-1"]);
  assert.equal(badData.code, 2);
  assert.match(badData.stderr, /^error: /);
  const badTitle = await runCli(["copydata", "listen", ""]);
  assert.equal(badTitle.code, 2);
  assert.match(badTitle.stderr, /^error: Invalid <window-title>: must not be empty/);
});

winTest(
  "re-entry: 10,000 WM_COPYDATA from another process, gc() inside the window procedure",
  async () => {
    const title = uniqueName("gc");
    const count = 10_000;
    await using receiver = spawnFixture("copydata_gc.ts", [title, String(count)], {
      denoFlags: ["--v8-flags=--expose-gc"],
    });
    assert.equal(await receiver.line(), "ready");
    await using sender = spawnFixture("copydata_sender.ts", [title, String(count)]);
    assert.equal(await sender.line(300_000), `sent ${count} 0`);
    assert.equal(await receiver.line(), `received ${count}`);
    assert.equal((await receiver.finish()).code, 0);
  },
);

winTest(
  "a window closed inside its own window procedure: no crash, the next send gets a clear error",
  async () => {
    const window = new MessageWindow({
      messageOnly: true,
      onCopyData: (m) => {
        if (m.dwData === 1n) window.close();
        return 7;
      },
    });
    const handle = window.handle;
    assert.equal(await sendCopyData(handle, "close yourself", { dwData: 1n }), 7);
    assert.equal(window.closed, true);
    await assert.rejects(
      sendCopyData(handle, "anyone there?", { timeout: 2000 }),
      (e: unknown) => e instanceof Deno.errors.NotFound && /was closed/.test(e.message),
    );
    await new Promise((resolve) => setTimeout(resolve, 20)); // the deferred release has run
    // the pump and the process carry on: a new window answers
    using again = new MessageWindow({ messageOnly: true, onCopyData: () => 8 });
    assert.equal(await sendCopyData(again.handle, "hello"), 8);
  },
);

winTest(
  "allowLowerIntegrity: WM_COPYDATA and registered messages pass the window's filter, status read back",
  async () => {
    const WM_COPYDATA = 0x4a;
    const id = registerWindowMessage(uniqueName("uipi"));
    const title = uniqueName("cd-uipi");
    using win = new MessageWindow({
      title,
      messages: [id],
      allowLowerIntegrity: true,
      onCopyData: (m) => m.data.length,
    });
    // Windows reports the filter's change in CHANGEFILTERSTRUCT.ExtStatus; Wine (no integrity
    // levels, no UIPI) returns TRUE and leaves it unwritten.
    const wine = underWine();
    assert.deepEqual(win.messageFilter, [
      { message: WM_COPYDATA, status: wine ? "not-reported" : "allowed" },
      { message: id, status: wine ? "not-reported" : "allowed" },
    ]);
    assert.deepEqual(win.allowMessage(id), {
      message: id,
      status: wine ? "not-reported" : "already-allowed",
    });
    assert.equal(win.messageFilter.length, 3);
    // another process (of the same integrity level here) still reaches the window
    await using sender = spawnFixture("copydata_peer.ts", ["text", title, "über"]);
    assert.deepEqual(JSON.parse(await sender.line()), { reply: 5 });
    assert.equal((await win.copyData().next()).value?.text(), "über");

    using plain = new MessageWindow({ messageOnly: true });
    assert.deepEqual(plain.messageFilter, [], "no filter change without the option");
    assert.throws(
      () => new MessageWindow({ allowLowerIntegrity: "yes" as unknown as boolean }),
      /Invalid argument "options\.allowLowerIntegrity": must be a boolean/,
    );
    assert.throws(() => win.allowMessage(0x10000), RangeError);
    plain.close();
    assert.throws(() => plain.allowMessage(id), Deno.errors.BadResource);
  },
);

winTest(
  "sendMessage and postMessage carry 64-bit WPARAM, LPARAM and replies between two processes",
  async () => {
    const name = uniqueName("wide");
    const id = registerWindowMessage(name);
    const title = uniqueName("cd-wide");
    await using peer = spawnFixture("copydata_peer.ts", ["answer", title, name]);
    assert.match(await peer.line(), /^ready /);
    const seen = async () => JSON.parse(await peer.line());
    // the peer replies lParam + 1 (64 bits, wrapping) and prints what it got
    const min = -(1n << 63n);
    assert.equal(
      await sendMessage(title, id, { wParam: 0xffff_ffff_ffff_fffen, lParam: min }),
      min + 1n,
    );
    assert.deepEqual(await seen(), {
      message: id,
      wParam: "18446744073709551614",
      lParam: "-9223372036854775808",
    });
    // -1 as wParam is all ones; an lParam given as its unsigned bits is read signed
    assert.equal(await sendMessage(title, id, { wParam: -1, lParam: 0xffff_ffff_ffff_fffen }), -1n);
    assert.deepEqual(await seen(), { message: id, wParam: "18446744073709551615", lParam: "-2" });
    const big = (1n << 62n) + 12_345n; // beyond 2^53: a number would round it
    assert.equal(await sendMessage(title, id, { lParam: big }), big + 1n);
    assert.deepEqual(await seen(), { message: id, wParam: "0", lParam: big.toString() });
    postMessage(title, id, { wParam: 1n << 40n, lParam: -(2 ** 53 - 1) });
    assert.deepEqual(await seen(), {
      message: id,
      wParam: (1n << 40n).toString(),
      lParam: String(-(2 ** 53 - 1)),
    });

    // the other way: a window here gets the full values and its 64-bit reply reaches the peer
    const here = uniqueName("cd-wide-here");
    const got: bigint[][] = [];
    using win = new MessageWindow({
      title: here,
      messages: [id],
      onMessage: (m) => {
        got.push([m.wParam, m.lParam]);
        return m.wParam; // above 2^63: the reply is its two's complement
      },
    });
    await using asker = spawnFixture("copydata_peer.ts", [
      "ask",
      here,
      name,
      String(0xfedc_ba98_7654_3210n),
      String(min + 5n),
    ]);
    assert.deepEqual(JSON.parse(await asker.line()), {
      reply: BigInt.asIntN(64, 0xfedc_ba98_7654_3210n).toString(),
    });
    assert.deepEqual(got, [[0xfedc_ba98_7654_3210n, min + 5n]]);
    assert.equal(win.closed, false);
  },
);

winTest("64-bit message parameters are validated before any call", async () => {
  const id = registerWindowMessage(uniqueName("range"));
  const nobody = uniqueName("cd-nobody");
  await assert.rejects(
    sendMessage(nobody, id, { wParam: 1n << 64n }),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === 'Invalid argument "options.wParam": must fit in 64 bits (at most 2^64 - 1)',
  );
  await assert.rejects(
    sendMessage(nobody, id, { lParam: -(1n << 63n) - 1n }),
    /Invalid argument "options\.lParam": must fit in 64 bits \(at least -2\^63\)/,
  );
  await assert.rejects(
    sendMessage(nobody, id, { wParam: 2 ** 53 }),
    /options\.wParam": must be a safe integer \(pass a bigint beyond 2\^53\)/,
  );
  await assert.rejects(sendMessage(nobody, id, { wParam: 1.5 }), TypeError);
  await assert.rejects(sendMessage(nobody, id, { wParam: "1" as unknown as number }), TypeError);
  await assert.rejects(sendMessage(nobody, id, { timeout: 0 }), RangeError);
  // valid values reach the lookup, which finds no window
  await assert.rejects(sendMessage(nobody, id, { wParam: -1n }), Deno.errors.NotFound);
  assert.throws(
    () => postMessage(nobody, id, { wparam: 1 } as unknown as { wParam: number }),
    /Invalid argument "params": .*wparam/,
  );
  assert.throws(() => postMessage(nobody, id, { lParam: 1n << 64n }), RangeError);
  assert.throws(() => broadcastMessage(id, { wParam: -(1n << 64n) }), RangeError);
  assert.throws(
    () => broadcastMessage(id, { skipOwnProcess: 1 as unknown as boolean }),
    /options\.skipOwnProcess": must be a boolean/,
  );
  await assert.rejects(queryBroadcast(0x400), /only registered messages/);
  assert.throws(() => new MessageWindow({ reply: 1n << 64n }), RangeError);
  // a handler's reply that does not fit ends the iterators with a RangeError; the sender gets 0
  using win = new MessageWindow({ messageOnly: true, messages: [id], onMessage: () => 1n << 70n });
  assert.equal(await sendMessage(win.handle, id), 0n);
  const it = win.messages();
  assert.equal((await it.next()).value?.message, id, "the message itself came first");
  await assert.rejects(it.next(), /A window's reply must fit in 64 bits/);
});

winTest(
  "broadcasts (BroadcastSystemMessageW): posted with 64-bit params to other processes, own windows skipped on request, a query one window refuses",
  async () => {
    const name = uniqueName("bsm");
    const id = registerWindowMessage(name);
    await using a = spawnFixture("copydata_peer.ts", ["answer", uniqueName("cd-bsm"), name]);
    await using b = spawnFixture("copydata_peer.ts", [
      "answer",
      uniqueName("cd-bsm"),
      name,
      "deny",
    ]);
    assert.match(await a.line(), /^ready /);
    assert.match(await b.line(), /^ready /);
    const line = (wParam: bigint, lParam = 0n) =>
      JSON.stringify({ message: id, wParam: wParam.toString(), lParam: lParam.toString() });
    const own: bigint[] = [];
    using win = new MessageWindow({
      title: uniqueName("cd-bsm-own"),
      messages: [id],
      onMessage: (m) => {
        own.push(m.wParam);
        return 1; // TRUE: agrees to a query
      },
    });
    const ownMessages = win.messages();

    const min = -(1n << 63n);
    broadcastMessage(id, { wParam: 7, lParam: min, skipOwnProcess: true });
    broadcastMessage(id, { wParam: 1n << 63n });
    for (const peer of [a, b]) {
      assert.equal(await peer.line(), line(7n, min));
      assert.equal(await peer.line(), line(1n << 63n));
    }
    // posted messages arrive in order: the first one this window sees is the second broadcast
    assert.equal((await ownMessages.next()).value?.wParam, 1n << 63n);

    // b refuses wParam 1: the query stops there (a and this window are asked only if before it)
    assert.equal(await queryBroadcast(id, { wParam: 1 }), false);
    assert.equal(await b.expect(line(1n)), line(1n));
    own.length = 0;
    assert.equal(await queryBroadcast(id, { wParam: 2 }), true, "nobody refuses wParam 2");
    await a.expect(line(2n));
    await b.expect(line(2n));
    assert.deepEqual(own, [2n], "this process's window answered through the pump");
    own.length = 0;
    assert.equal(await queryBroadcast(id, { wParam: 3, skipOwnProcess: true }), true);
    await a.expect(line(3n));
    assert.deepEqual(own, [], "skipOwnProcess leaves this process's windows out of a query");
    assert.equal(BROADCAST_QUERY_DENY, 0x424d5144);

    // every desktop: Windows asks for SE_TCB_NAME; Wine (one desktop) takes it without
    if (underWine()) {
      broadcastMessage(id, { wParam: 4, allDesktops: true, skipOwnProcess: true });
      await a.expect(line(4n));
    } else {
      try {
        broadcastMessage(id, { wParam: 4, allDesktops: true, skipOwnProcess: true });
        await a.expect(line(4n));
      } catch (e) {
        assert.ok(e instanceof Win32Error, String(e));
      }
    }
  },
);
