/**
 * Windows Sockets: winipc (ws2_32) against Deno's native sockets (Rust/tokio, real independent
 * peers on 127.0.0.1 / ::1), and against another process through the CLI.
 */
import assert from "node:assert/strict";
import { Win32Error } from "../ffi/error.ts";
import { ADDRINFOW, SOCKADDR_IN, SOCKADDR_IN6, WSAPOLLFD } from "../ffi/ws2_32.ts";
import { connect, listen, listenDatagram, type TcpConn } from "../mechanisms/socket.ts";
import { pollerIdle } from "../mechanisms/_socket_idle.ts";
import { runCli, spawnCli, winTest } from "./_helpers.ts";
import {
  assertRejects,
  nativeReadAll,
  nativeWriteThenEnd,
  randomBytes,
  readAll,
  sha256,
} from "./_net_helpers.ts";

const MB10 = 10 * 1000 * 1000;

/** Writes `data` in 256 KiB pieces, then closes the writing side. */
async function writeAllThenEnd(writable: WritableStream<Uint8Array>, data: Uint8Array) {
  const w = writable.getWriter();
  for (let i = 0; i < data.length; i += 256 * 1024) await w.write(data.subarray(i, i + 256 * 1024));
  await w.close();
}

Deno.test("socket structs have the sizes Winsock documents", () => {
  assert.deepEqual(SOCKADDR_IN.size, 16);
  assert.deepEqual(SOCKADDR_IN6.size, 28);
  assert.deepEqual(ADDRINFOW.size, 48);
  assert.deepEqual(ADDRINFOW.offsetOf("ai_addr"), 32);
  assert.deepEqual(WSAPOLLFD.size, 16);
});

winTest("winipc TCP server echoes 10 MB to a native Deno.connect client", async () => {
  const listener = await listen({ port: 0, hostname: "127.0.0.1" });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.readable.pipeTo(conn.writable); // ends with closeWrite when the client ends
    conn.close();
  })();
  const data = randomBytes(MB10);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const [, echoed] = await Promise.all([
    nativeWriteThenEnd(client, data),
    nativeReadAll(client),
  ]);
  await served;
  listener.close();
  assert.deepEqual(echoed.length, data.length);
  assert.deepEqual(await sha256(echoed), await sha256(data));
  await pollerIdle();
});

winTest("winipc TCP client sends and receives 10 MB with a native Deno.listen server", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const reply = randomBytes(MB10);
  const served = (async () => {
    const conn = await server.accept();
    const [got] = await Promise.all([
      nativeReadAll(conn),
      nativeWriteThenEnd(conn, reply),
    ]);
    conn.close();
    return got;
  })();
  const data = randomBytes(MB10);
  const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port, noDelay: true });
  assert.deepEqual(conn.remoteAddr.port, server.addr.port);
  assert.deepEqual(conn.localAddr.hostname, "127.0.0.1");
  const [, received] = await Promise.all([
    writeAllThenEnd(conn.writable, data),
    readAll(conn.readable),
  ]);
  const got = await served;
  conn.close();
  server.close();
  assert.deepEqual(await sha256(got), await sha256(data));
  assert.deepEqual(await sha256(received), await sha256(reply));
  await pollerIdle();
});

winTest("100 concurrent native clients against one winipc server, every byte echoed", async () => {
  const listener = await listen({ port: 0, hostname: "127.0.0.1" });
  const conns: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn.readable.pipeTo(conn.writable).finally(() => conn.close()));
    }
  })();
  const CLIENTS = 100;
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const payload = randomBytes(20_000 + i * 997);
      const c = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const [, echoed] = await Promise.all([
        nativeWriteThenEnd(c, payload),
        nativeReadAll(c),
      ]);
      return (await sha256(echoed)) === (await sha256(payload)) &&
        echoed.length === payload.length;
    }),
  );
  listener.close();
  await accepting;
  await Promise.all(conns);
  assert.deepEqual(conns.length, CLIENTS);
  assert.deepEqual(results.filter((ok) => !ok).length, 0);
  await pollerIdle();
});

winTest("read returns null at the peer's end; a closed listener ends its iteration", async () => {
  const listener = await listen({ port: 0 });
  const iter = listener[Symbol.asyncIterator]();
  const next = iter.next();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = (await next).value as TcpConn;
  await client.write(new TextEncoder().encode("abc"));
  client.close();
  const buf = new Uint8Array(10);
  let text = "";
  for (let n; (n = await conn.read(buf)) !== null;) {
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  assert.deepEqual(text, "abc");
  conn.close();
  conn.close(); // idempotent
  await assertRejects(() => conn.read(buf), Deno.errors.BadResource);
  const pending = iter.next();
  listener.close();
  assert.deepEqual((await pending).done, true);
  await pollerIdle();
});

winTest(
  "UDP round trip between two winipc sockets and with the CLI in another process",
  async () => {
    using a = await listenDatagram({ port: 0 });
    using b = await listenDatagram({ port: 0, hostname: "127.0.0.1" });
    await a.send("ping ✓", b.addr); // a string goes as its UTF-8 bytes
    const [data, from] = await b.receive();
    assert.deepEqual(new TextDecoder().decode(data), "ping ✓");
    assert.deepEqual(from.port, a.addr.port);
    await b.send(data, from);
    const [back] = await a.receive();
    assert.deepEqual(new TextDecoder().decode(back), "ping ✓");

    await using server = spawnCli([
      "socket",
      "serve",
      "--port",
      "0",
      "--udp",
      "--echo",
      "--count",
      "1",
      "--json",
    ]);
    const ready = JSON.parse(await server.line());
    assert.deepEqual(ready.event, "listening");
    await a.send(new TextEncoder().encode("hello udp"), {
      hostname: "127.0.0.1",
      port: ready.port,
    });
    const [echo] = await a.receive();
    assert.deepEqual(new TextDecoder().decode(echo), "echo:hello udp");
    const line = JSON.parse(await server.line());
    assert.deepEqual(line.text, "hello udp");
    assert.deepEqual((await server.finish()).code, 0);
    a.close();
    b.close();
    await pollerIdle();
  },
);

winTest(
  "closeWrite() half-closes: the peer reads what was sent, then the end; this side still reads",
  async () => {
    const listener = await listen({ port: 0, hostname: "127.0.0.1" });
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = await listener.accept();
    await conn.write("before");
    await conn.closeWrite();
    await conn.closeWrite(); // a second call does nothing
    assert.equal(new TextDecoder().decode(await nativeReadAll(client)), "before");
    await client.write(new TextEncoder().encode("reply"));
    client.close();
    assert.equal(new TextDecoder().decode(await readAll(conn.readable)), "reply");
    conn.close();
    await assertRejects(() => conn.closeWrite(), Deno.errors.BadResource);
    listener.close();
    await pollerIdle();
  },
);

winTest("IPv6 loopback: winipc server, native client on ::1", async (t) => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
  } catch (e) {
    console.log(`skipped: this machine has no IPv6 loopback (${(e as Error).message})`);
    return;
  }
  const listener = await listen({ port: 0, hostname: "::1" });
  assert.deepEqual(listener.addr.family, 6);
  assert.deepEqual(listener.addr.hostname, "::1");
  const served = (async () => {
    const conn = await listener.accept();
    assert.deepEqual(conn.remoteAddr.hostname, "::1");
    await conn.readable.pipeTo(conn.writable);
    conn.close();
  })();
  const client = await Deno.connect({ hostname: "::1", port: listener.addr.port });
  const data = randomBytes(100_000);
  const [, echoed] = await Promise.all([
    nativeWriteThenEnd(client, data),
    nativeReadAll(client),
  ]);
  await served;
  listener.close();
  assert.deepEqual(await sha256(echoed), await sha256(data));
  await t.step("winipc client to a native ::1 server", async () => {
    const server = Deno.listen({ hostname: "::1", port: 0 });
    const accepted = server.accept();
    using conn = await connect({ hostname: "::1", port: server.addr.port });
    const peer = await accepted;
    assert.deepEqual(conn.remoteAddr.family, 6);
    assert.equal(await conn.write("ü"), 2, "a string is written as its UTF-8 bytes");
    const got = new Uint8Array(2);
    for (let n = 0; n < 2;) n += (await peer.read(got.subarray(n)))!;
    assert.deepEqual([...got], [0xc3, 0xbc]);
    await peer.write(new TextEncoder().encode("v6"));
    peer.close();
    assert.deepEqual(new TextDecoder().decode(await readAll(conn.readable)), "v6");
    server.close();
  });
  await t.step("UDP over ::1, and the CLI in another process on ::1", async () => {
    using a = await listenDatagram({ port: 0, hostname: "::1" });
    assert.equal(a.addr.family, 6);
    await using server = spawnCli([
      "socket",
      "serve",
      "--port",
      "0",
      "--host",
      "::1",
      "--udp",
      "--echo",
      "--count",
      "2",
      "--json",
    ]);
    const ready = JSON.parse(await server.line());
    assert.equal(ready.hostname, "::1");
    await a.send(new TextEncoder().encode("six"), { hostname: "::1", port: ready.port });
    const [echo, from] = await a.receive();
    assert.equal(new TextDecoder().decode(echo), "echo:six");
    assert.equal(from.hostname, "::1");
    const cli = await runCli([
      "socket",
      "send",
      `[::1]:${ready.port}`,
      "cli six",
      "--udp",
      "--reply",
    ]);
    assert.deepEqual(cli, { code: 0, stdout: "echo:cli six\n", stderr: "" });
    assert.equal(JSON.parse(await server.line()).text, "six");
    assert.equal(JSON.parse(await server.line()).text, "cli six");
    assert.equal((await server.finish()).code, 0);
  });
  await pollerIdle();
});

winTest("connect to a name tries each address it resolves to", async () => {
  // "localhost" may resolve to ::1 first; the native server listens on 127.0.0.1 only
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = server.accept();
  using conn = await connect({ hostname: "localhost", port: server.addr.port });
  const peer = await accepted;
  assert.equal(conn.remoteAddr.hostname, "127.0.0.1");
  assert.equal(conn.remoteAddr.family, 4);
  peer.close();
  server.close();
  conn.close();
  await pollerIdle();
});

winTest("socket errors carry WSA names; bad input fails before any call", async () => {
  await assertRejects(() => connect({ port: 70000 }), RangeError, "options.port");
  await assertRejects(() => listen({ port: -1 }), RangeError, "options.port");
  await assertRejects(() => connect({ port: 80.5 }), TypeError, "options.port");
  await assertRejects(() => connect({ port: 80, hostname: "" }), RangeError, "options.hostname");
  await assertRejects(() => connect({ port: 0 }), TypeError, "must not be 0");
  const e = await assertRejects(
    () => connect({ hostname: "no-such-host.invalid", port: 80 }),
    Win32Error,
  );
  assert.deepEqual(e.codeName, "WSAHOST_NOT_FOUND");
  assert(e.message.includes("no-such-host.invalid"));
  // a port nobody listens on: take a free one and release it
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const refused = await assertRejects(() => connect({ hostname: "127.0.0.1", port }), Win32Error);
  assert.deepEqual(refused.codeName, "WSAECONNREFUSED");
  assert.deepEqual(refused.code, 10061);
  // an address in use
  const first = await listen({ port: 0, exclusiveAddressUse: true });
  const inUse = await assertRejects(() => listen({ port: first.addr.port }), Win32Error);
  assert.deepEqual(inUse.codeName, "WSAEADDRINUSE");
  first.close();
  await assertRejects(
    () => listen({ port: 0, reuseAddress: true, exclusiveAddressUse: true }),
    TypeError,
    "exclude each other",
  );
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assertRejects(() => connect({ port, signal: controller.signal }), Error, "stop");
  await pollerIdle();
});

winTest("CLI: socket serve --echo and socket send --reply between two processes", async () => {
  await using server = spawnCli(["socket", "serve", "--port", "0", "--echo", "--count", "2"]);
  const ready = await server.errorLine();
  const match = ready.match(/^listening on tcp 127\.0\.0\.1:(\d+)$/);
  assert.ok(match, ready);
  const target = `127.0.0.1:${match[1]}`;
  const first = await runCli(["socket", "send", target, "héllo ✓", "--reply"]);
  assert.deepEqual(first, { code: 0, stdout: "echo:héllo ✓\n", stderr: "" });
  assert.deepEqual(await server.line(), "héllo ✓");
  const second = await runCli(["socket", "send", target, "two", "--reply", "--json"]);
  assert.deepEqual(first.code, 0);
  assert.deepEqual(JSON.parse(second.stdout), { to: target, bytes: 4, reply: "echo:two" });
  assert.deepEqual(await server.line(), "two");
  const end = await server.finish();
  assert.deepEqual(end.code, 0, end.stderr);
});

winTest("CLI: socket serve exits 0 at --timeout; bad usage exits 2; failures exit 1", async () => {
  const timed = await runCli(["socket", "serve", "--port", "0", "--timeout", "0.5", "--json"]);
  assert.deepEqual(timed.code, 0, timed.stderr);
  assert.deepEqual(JSON.parse(timed.stdout.trim()).event, "listening");
  // without --json, stdout carries only messages: the address goes to stderr
  const quiet = await runCli(["socket", "serve", "--port", "0", "--timeout", "0.5"]);
  assert.deepEqual(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, "");
  assert.match(quiet.stderr, /^listening on tcp 127\.0\.0\.1:\d+\n$/);

  const badPort = await runCli(["socket", "serve", "--port", "70000"]);
  assert.deepEqual(badPort.code, 2);
  assert.match(badPort.stderr, /^error: .*--port.*at most 65535/m);
  const badTarget = await runCli(["socket", "send", "127.0.0.1:99999", "x"]);
  assert.deepEqual(badTarget.code, 2);
  assert.match(badTarget.stderr, /^error: Invalid <host:port>: port must be at most 65535/m);
  const noPort = await runCli(["socket", "send", "localhost", "x"]);
  assert.deepEqual(noPort.code, 2);

  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const refused = await runCli(["socket", "send", `127.0.0.1:${port}`, "x"]);
  assert.deepEqual(refused.code, 1);
  assert.match(refused.stderr, /^error: Cannot connect to 127\.0\.0\.1:\d+: .*WSAECONNREFUSED/m);
  const unknown = await runCli(["socket", "send", "nobody.invalid:80", "x", "--udp"]);
  assert.deepEqual(unknown.code, 1);
  assert.match(unknown.stderr, /^error: .*"nobody\.invalid".*WSAHOST_NOT_FOUND/m);
});

winTest("a write that must wait is woken while a read on the same socket waits too", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = server.accept();
  const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port });
  const peer = await accepted;
  // A read that stays pending (the peer sends nothing until the end) ...
  const reading = conn.read(new Uint8Array(16));
  // ... then a write far larger than the socket buffers, so it has to wait for room.
  const data = randomBytes(16 * 1024 * 1024);
  const [written, got] = await Promise.all([
    (async () => {
      await new Promise((r) => setTimeout(r, 200)); // the read waits first
      // 1 MiB at a time: the socket buffers fill after a few MiB and a write has to wait
      let n = 0;
      for (let i = 0; i < data.length; i += 1 << 20) {
        n += await conn.write(data.subarray(i, i + (1 << 20)));
      }
      return n;
    })(),
    (async () => {
      await new Promise((r) => setTimeout(r, 400));
      const buf = new Uint8Array(data.length);
      let n = 0;
      while (n < data.length) n += (await peer.read(buf.subarray(n)))!;
      return buf;
    })(),
  ]);
  assert.equal(written, data.length);
  assert.equal(await sha256(got), await sha256(data));
  await peer.write(new TextEncoder().encode("x"));
  assert.equal(await reading, 1);
  peer.close();
  server.close();
  conn.close();
  await pollerIdle();
});

winTest("abort() resets the connection: the peer sees an error, not an orderly end", async () => {
  const listener = await listen({ port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await accepted;
  await client.write(new Uint8Array(10)); // unread data makes the reset certain
  await new Promise((r) => setTimeout(r, 100));
  conn.abort();
  conn.abort(); // harmless twice
  await assertRejects(() => client.read(new Uint8Array(10)), Deno.errors.ConnectionReset);
  client.close();
  listener.close();
  await pollerIdle();
});

winTest(
  "CLI: socket serve ends a client whose line passes 1 MiB and keeps serving others",
  async () => {
    await using server = spawnCli(["socket", "serve", "--port", "0", "--count", "1"]);
    const port = Number((await server.errorLine()).match(/:(\d+)$/)![1]);
    const flood = await Deno.connect({ hostname: "127.0.0.1", port });
    const chunk = new Uint8Array(64 * 1024).fill(0x78); // "x", and never a newline
    const closed = (async () => {
      try {
        for (let sent = 0; sent <= (1 << 20) + chunk.length; sent += chunk.length) {
          await flood.write(chunk);
        }
        return await flood.read(new Uint8Array(16)); // null: the server closed this client
      } catch (e) {
        return e instanceof Deno.errors.ConnectionReset ? null : e;
      }
    })();
    assert.equal(await closed, null);
    flood.close();
    assert.match(
      await server.errorLine(),
      /^warning: 127\.0\.0\.1:\d+: a line longer than 1048576 bytes/,
    );
    const honest = await Deno.connect({ hostname: "127.0.0.1", port });
    await honest.write(new TextEncoder().encode("still here\n"));
    assert.equal(await server.line(), "still here");
    honest.close();
    assert.equal((await server.finish()).code, 0);
  },
);

winTest(
  "a reset peer fails a pending read with WSARecv's WSAECONNRESET, not an end of stream",
  async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = server.accept();
    const conn = await connect({ hostname: "127.0.0.1", port: server.addr.port });
    const peer = await accepted;
    const reading = conn.read(new Uint8Array(16)); // pends: the peer sends nothing
    await new Promise((r) => setTimeout(r, 100));
    // The peer resets: winipc's own socket as the peer, aborted with unread data in it.
    const listener = await listen({ port: 0 });
    const acceptedByWinipc = listener.accept();
    const client = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const resetter = await acceptedByWinipc;
    const clientRead = client.read(new Uint8Array(16));
    await client.write(new Uint8Array(10)); // unread by resetter: its close becomes a reset
    await new Promise((r) => setTimeout(r, 100));
    resetter.abort();
    const e = await assertRejects(() => clientRead, Win32Error);
    assert.equal(e.functionName, "WSARecv");
    assert.equal(e.codeName, "WSAECONNRESET");
    assert.equal(e.code, 10054);
    // A write to the reset connection fails with WSASend's code.
    const w = await assertRejects(() => client.write(new Uint8Array(1)), Win32Error);
    assert.equal(w.functionName, "WSASend");
    client.close();
    listener.close();
    // The orderly end, for contrast, is null.
    peer.close();
    assert.equal(await reading, null);
    conn.close();
    server.close();
    await pollerIdle();
  },
);

winTest(
  "close() cancels a pending read and accept: BadResource, and the sockets are released",
  async () => {
    const listener = await listen({ port: 0 });
    const accepting = listener.accept();
    const client = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const conn = await accepting;
    const reading = conn.read(new Uint8Array(16));
    const nextAccept = listener.accept();
    await new Promise((r) => setTimeout(r, 100));
    conn.close();
    listener.close();
    await assertRejects(() => reading, Deno.errors.BadResource);
    await assertRejects(() => nextAccept, Deno.errors.BadResource);
    await pollerIdle(); // resolves only once both sockets were released after their completions
    // The client sees the orderly end the released socket sent.
    assert.equal(await client.read(new Uint8Array(16)), null);
    client.close();
    // A pending datagram receive, too; the socket's iteration then ends.
    const udp = await listenDatagram({ port: 0 });
    const receiving = udp.receive();
    const iterating = (async () => {
      for await (const _ of udp) return "a datagram";
      return "ended";
    })();
    await new Promise((r) => setTimeout(r, 100));
    udp.close();
    await assertRejects(() => receiving, Deno.errors.BadResource);
    assert.equal(await iterating, "ended");
    await pollerIdle();
  },
);

winTest("an AbortSignal cancels a pending connect (ConnectEx)", async () => {
  // A backlog of 1 that nobody accepts from. Linux (so Wine's host sockets) then drops further
  // SYNs, and the next connect stays pending until aborted; Windows refuses it instead, and
  // that refusal must then be ConnectEx's own WSAECONNREFUSED.
  const listener = await listen({ port: 0, backlog: 1 });
  const connected: TcpConn[] = [];
  let outcome = "";
  for (let i = 0; i < 8 && outcome === ""; i++) {
    const controller = new AbortController();
    const attempt = connect({ port: listener.addr.port, signal: controller.signal });
    const first = await Promise.race([
      attempt.then(() => "connected", () => "failed"),
      new Promise<string>((r) => setTimeout(() => r("pending"), 500)),
    ]);
    if (first === "connected") connected.push(await attempt);
    else if (first === "failed") {
      const e = await assertRejects(() => attempt, Win32Error);
      assert.equal(e.functionName, "ConnectEx");
      assert.equal(e.codeName, "WSAECONNREFUSED");
      outcome = "refused";
    } else {
      controller.abort(new Error("stop"));
      await assertRejects(() => attempt, Error, "stop");
      outcome = "aborted";
    }
  }
  assert.ok(outcome !== "", `every connect completed (${connected.length})`);
  if (outcome === "refused") console.log("this host refuses a full backlog: no pending connect");
  for (const c of connected) c.close();
  listener.close();
  await pollerIdle();
});

winTest("a read, an accept and a receive time out or abort, and lose nothing", async () => {
  using listener = await listen({ hostname: "127.0.0.1", port: 0 });
  await assert.rejects(listener.accept({ timeout: 50 }), Deno.errors.TimedOut);
  const stop = new AbortController();
  const waiting = listener.accept({ signal: stop.signal });
  stop.abort(new Error("stop"));
  await assert.rejects(waiting, (e) => e instanceof Error && e.message === "stop");
  // the listener still works after both
  const accepted = listener.accept({ timeout: 30_000 });
  using conn = await connect({ hostname: "127.0.0.1", port: listener.addr.port, timeout: 30_000 });
  using peer = await accepted;
  const buf = new Uint8Array(16);
  await assert.rejects(peer.read(buf, { timeout: 50 }), Deno.errors.TimedOut);
  // the bytes sent after the cancelled read all arrive
  await conn.write("after", { timeout: 30_000 });
  let got = 0;
  while (got < 5) got += (await peer.read(buf.subarray(got), { timeout: 30_000 }))!;
  assert.equal(new TextDecoder().decode(buf.subarray(0, got)), "after");

  using udp = await listenDatagram({ hostname: "127.0.0.1", port: 0 });
  await assert.rejects(udp.receive(undefined, { timeout: 50 }), Deno.errors.TimedOut);
  await udp.send("ping", udp.addr, { timeout: 30_000 });
  const [data] = await udp.receive(undefined, { timeout: 30_000 });
  assert.equal(new TextDecoder().decode(data), "ping");
  await assert.rejects(peer.read(buf, { timeout: -1 }), RangeError);
  conn.close();
  peer.close();
  udp.close();
  listener.close();
  await pollerIdle();
});
