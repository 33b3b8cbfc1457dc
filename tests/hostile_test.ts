// Hostile and crashed peers (issue 16, findings 1-10, 12, 13 and 17's mailslot part): each test runs the attack from a
// second process (tests/fixtures/hostile_peer.ts) through the real mechanism.
import assert from "node:assert/strict";
import {
  connectShm,
  listenShm,
  MessageTooLargeError,
  NamedPipeClient,
  NamedPipeServer,
  ProtocolError,
  RpcClient,
  RpcServer,
  SharedMemory,
  ShmChannel,
  type ShmListener,
} from "../mod.ts";
import { MailslotReader, MsRpcClient, NdrReader, NdrWriter, Win32Error } from "../mod.ts";
import { hostileApi } from "./fixtures/hostile_api.ts";
import { testApi } from "./fixtures/rpc_api.ts";
import { currentUserSid } from "../ffi/security.ts";
import { checkServerOwner, processUserSid, serverOwnerError } from "../mechanisms/_pipe_native.ts";
import { SAMPLE_INTERFACE } from "./fixtures/msrpc_api.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

/** The hostile API's procedures, for servers that do not watch concurrency. */
const handlers = { check: ({ n }: { n: number }) => n * 2, hold: () => 0 };

winTest("1: a frame length past the ring ends the channel with a ProtocolError", async () => {
  const name = uniqueName("hostile-length");
  await using channel = await ShmChannel.create(name, { capacity: 4096 });
  await using peer = spawnFixture("hostile_peer.ts", ["bad-length", name]);
  assert.equal(await peer.line(), "sent");
  await assert.rejects(
    channel.receive({ timeout: 10_000 }),
    (e: unknown) => e instanceof ProtocolError && /length/.test(e.message),
  );
  // The channel stays ended: it does not read on past the bad frame.
  await assert.rejects(channel.receive({ timeout: 1000 }), ProtocolError);
});

winTest("2: padding words rewritten in a loop: a receive still settles", async () => {
  const name = uniqueName("hostile-padding");
  await using channel = await ShmChannel.create(name, { capacity: 1 << 16 });
  await using peer = spawnFixture("hostile_peer.ts", ["padding-loop", name, "8000"]);
  assert.equal(await peer.line(), "rewriting");
  await assert.rejects(
    channel.receive({ timeout: 2000 }),
    (e: unknown) => e instanceof ProtocolError && /padding/.test(e.message),
  );
  // It settled while the peer was still rewriting: the peer's next line comes when it stops.
  const next = await Promise.race([
    peer.line(10_000).then(() => "stopped"),
    new Promise((resolve) => setTimeout(() => resolve("rewriting"), 0)),
  ]);
  assert.equal(next, "rewriting");
});

winTest("3: a channel header whose capacity is not a power of two is refused", async () => {
  const name = uniqueName("hostile-capacity");
  await using peer = spawnFixture("hostile_peer.ts", ["bad-capacity", name]);
  assert.equal(await peer.line(), "ready");
  await assert.rejects(
    ShmChannel.open(name, { timeout: 10_000 }),
    (e: unknown) => e instanceof ProtocolError && /capacity -4096/.test(e.message),
  );
});

winTest(
  "4: a client that claims a rendezvous frame and is killed does not stop the shm RpcServer",
  async () => {
    const name = uniqueName("hostile-claim");
    await using server = await RpcServer.listen(name, hostileApi, handlers, {
      transport: "shm",
    });
    const peer = spawnFixture("hostile_peer.ts", ["claim", name, "1024"]);
    assert.equal(await peer.line(), "claimed");
    peer.child.kill(); // TerminateProcess, with the frame claimed and never published
    await peer.finish();
    // An honest client is still served (in another process: the RPC fixture's calls).
    const { RpcClient } = await import("../mod.ts");
    await using client = await RpcClient.connect(name, hostileApi, {
      transport: "shm",
      timeout: 20_000,
    });
    assert.equal(await client.call("check", { n: 21 }), 42);
    assert.equal(server.acceptError, undefined);
  },
);

winTest(
  "5: a sender pid out of range in a frame ends the channel with a ProtocolError",
  async () => {
    const name = uniqueName("hostile-slot");
    await using channel = await ShmChannel.create(name, { capacity: 4096 });
    await using peer = spawnFixture("hostile_peer.ts", ["bad-pid", name]);
    assert.equal(await peer.line(), "claimed");
    await assert.rejects(
      channel.receive({ timeout: 3000 }),
      (e: unknown) => e instanceof ProtocolError && /sender pid -12345/.test(e.message),
    );
  },
);

winTest("6: a peer-written producerWaiting does not make receive throw", async () => {
  const name = uniqueName("hostile-waiting");
  await using channel = await ShmChannel.create(name, { capacity: 4096 });
  await using _peer = spawnFixture("hostile_peer.ts", ["waiting-flag", name]);
  for (const word of ["hello", "world"]) {
    const message = await channel.receive({ timeout: 10_000 });
    assert.equal(new TextDecoder().decode(message!), word);
  }
});

winTest("7: the listener does not open a channel name outside its own prefix", async () => {
  const name = uniqueName("hostile-deputy");
  const victimName = uniqueName("hostile-victim");
  await using victim = await ShmChannel.create(victimName, { capacity: 4096 });
  const refused: Error[] = [];
  await using listener: ShmListener = await listenShm(name, {
    onError: (e) => refused.push(e),
  });
  await using peer = spawnFixture("hostile_peer.ts", ["hello", name, victimName]);
  assert.equal(await peer.line(), "sent");
  const honest = connectShm(name, { timeout: 20_000 });
  const conn = await listener.accept();
  assert.ok(conn);
  assert.ok(conn.name.startsWith(`${name}#c`), `accepted ${conn.name}`);
  await conn[Symbol.asyncDispose]();
  await (await honest)[Symbol.asyncDispose]();
  assert.equal(refused.length, 1);
  assert.ok(refused[0] instanceof ProtocolError);
  assert.equal(victim.connected, false, "nobody opened the victim channel");
});

winTest("8: bad spinMicros fails at listenShm; connectShm's hello send times out", async () => {
  await assert.rejects(
    listenShm(uniqueName("hostile-spin"), { spinMicros: 2_000_000 }),
    /spinMicros/,
  );
  const name = uniqueName("hostile-full");
  await using _listener = await listenShm(name);
  // A peer claims the whole rendezvous ring and stays: no hello can be sent.
  await using peer = spawnFixture("hostile_peer.ts", ["claim", name, String(1 << 16)]);
  assert.equal(await peer.line(), "claimed");
  await assert.rejects(connectShm(name, { timeout: 1500 }), Deno.errors.TimedOut);
});

winTest("9: a SEC_RESERVE section is refused before it is mapped", async () => {
  const name = uniqueName("hostile-reserve");
  await using peer = spawnFixture("hostile_peer.ts", ["reserve-section", name]);
  assert.equal(await peer.line(), "ready");
  assert.throws(() => SharedMemory.open(name), /SEC_RESERVE|not committed/);
});

winTest("9: a file-backed section is refused before it is mapped", async () => {
  const name = uniqueName("hostile-file");
  const peer = spawnFixture("hostile_peer.ts", ["file-section", name]);
  const ready = await peer.line();
  try {
    assert.match(ready, /^ready /);
    assert.throws(() => SharedMemory.open(name), /file-backed/);
    await assert.rejects(ShmChannel.open(name, { timeout: 5000 }), /file-backed/);
  } finally {
    await peer[Symbol.asyncDispose]();
    await Deno.remove(ready.slice("ready ".length)).catch(() => undefined);
  }
});

winTest("9: a squatted init mutex fails fast with a clear error", async () => {
  const name = uniqueName("hostile-init");
  await using peer = spawnFixture("hostile_peer.ts", ["hold-init", name]);
  assert.equal(await peer.line(), "held");
  await assert.rejects(
    ShmChannel.create(name),
    (e: unknown) => e instanceof Error && /#winipc-init.*held/.test(e.message),
  );
});

winTest("10: a channel's events get the security option", async () => {
  const name = uniqueName("hostile-security");
  await using _channel = await ShmChannel.create(name, {
    capacity: 4096,
    security: { sddl: "D:P(A;;GA;;;WD)" },
  });
  const peer = spawnFixture("hostile_peer.ts", ["dacl", `${name}#0d`]);
  const dacl = await peer.line();
  await peer.finish();
  // Windows may print the generic right GA as its specific rights.
  assert.match(dacl, /^D:P\(A;;[A-Z0-9x]+;;;WD\)$/);
});

winTest(
  "12: a throwing params refine, then a huge batch, leave the RPC server serving",
  async () => {
    const name = uniqueName("hostile-rpc");
    await using _server = await RpcServer.listen(name, hostileApi, handlers, {
      transport: "shm",
      maxBatch: 100,
    });
    await using peer = spawnFixture("hostile_peer.ts", ["rpc", name]);
    assert.deepEqual(JSON.parse(await peer.line()), { error: -32602 });
    assert.deepEqual(JSON.parse(await peer.line()), { value: 4 });
    const batch = JSON.parse(await peer.line());
    assert.equal(batch.error?.code, -32600, JSON.stringify(batch));
    assert.match(batch.error.message, /batch of 1000 /i);
  },
);

winTest(
  "12: a client's calls run at most maxConcurrent at a time, and all are answered",
  async () => {
    const name = uniqueName("hostile-flood");
    let running = 0;
    let most = 0;
    await using _server = await RpcServer.listen(name, hostileApi, {
      check: ({ n }) => n,
      hold: async ({ ms }) => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, ms));
        return running--;
      },
    }, { transport: "shm", maxConcurrent: 3 });
    await using peer = spawnFixture("hostile_peer.ts", ["flood", name, "40"]);
    assert.equal(await peer.line(60_000), "answered 40");
    assert.equal(most, 3);
  },
);

const MiB = 1024 * 1024;

winTest(
  "11: an oversized pipe message is refused before it is read; that peer ends, the server goes on",
  async () => {
    const name = uniqueName("hostile-pipe-big");
    using server = NamedPipeServer.listen(name, { mode: "message", maxMessageBytes: MiB });
    await using peer = spawnFixture("hostile_pipe_peer.ts", [
      "oversize",
      name,
      String(MiB),
      String(8 * MiB),
    ]);
    const conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
    // A message of exactly the limit is accepted.
    assert.equal((await conn.readMessage({ timeout: 30_000 }))?.length, MiB);
    assert.equal(await peer.line(), `sent ${MiB}`);
    // The next is refused with its full size, learned before its bytes were read.
    await assert.rejects(
      conn.readMessage({ timeout: 30_000 }),
      (e: unknown) =>
        e instanceof MessageTooLargeError && e instanceof ProtocolError &&
        e.size === 8 * MiB && e.limit === MiB && /of 8388608 bytes/.test(e.message),
    );
    assert.equal(conn.closed, true);
    // The peer's connection ended: its write failed and its read sees the end.
    assert.match(await peer.line(), /^write (BrokenPipe|ok)$/);
    assert.equal(await peer.line(), "eof");
    // The server goes on serving the next client.
    await using honest = spawnFixture("pipe_client.ts", [name, "hello"]);
    using next = await server.accept({ signal: AbortSignal.timeout(30_000) });
    assert.equal(new TextDecoder().decode((await next.readMessage({ timeout: 30_000 }))!), "hello");
    next.close();
    assert.equal(await honest.expect("eof"), "eof");
  },
);

winTest("11: transact refuses an oversized reply before reading it", async () => {
  const name = uniqueName("hostile-pipe-reply");
  await using peer = spawnFixture("hostile_pipe_peer.ts", [
    "oversize-reply",
    name,
    String(8 * MiB),
  ]);
  assert.equal(await peer.line(), "ready");
  using client = await NamedPipeClient.connect(name, { timeout: 30_000, maxMessageBytes: MiB });
  await assert.rejects(
    client.transact("question", { timeout: 30_000 }),
    (e: unknown) => e instanceof MessageTooLargeError && e.size === 8 * MiB,
  );
  assert.equal(client.closed, true);
  assert.match(await peer.line(), /^(replied|reply BrokenPipe)$/);
});

winTest(
  "11: the JSON-RPC server over a pipe refuses an oversized request, serves others",
  async () => {
    const name = uniqueName("hostile-rpc-big");
    await using _server = await RpcServer.listen(name, hostileApi, handlers, {
      maxMessageBytes: MiB,
    });
    await using peer = spawnFixture("hostile_pipe_peer.ts", [
      "oversize",
      name,
      "0",
      String(8 * MiB),
    ]);
    assert.equal(await peer.line(), "sent 0");
    assert.match(await peer.line(), /^write (BrokenPipe|ok)$/);
    assert.equal(await peer.line(), "eof");
    await using client = await RpcClient.connect(name, hostileApi);
    assert.equal(await client.call("check", { n: 21 }), 42);
  },
);

winTest(
  "14: currentUserOnly refuses a server of another user, accepts the current user's",
  async () => {
    const mine = currentUserSid();
    const path = "\\\\.\\pipe\\squatted";
    // The decision, with a server that runs as SYSTEM (what Wine, one user for all, cannot stage).
    const refused = serverOwnerError(path, 1234, { sid: "S-1-5-18" }, mine);
    assert.ok(refused instanceof Deno.errors.PermissionDenied);
    assert.match(refused.message, /process 1234\) runs as S-1-5-18, not as the current user/);
    // A server whose token this user may not read (another user's process) does not pass either.
    const unreadable = serverOwnerError(path, 1234, {
      error: new Error("OpenProcessToken failed with ERROR_ACCESS_DENIED (5)"),
    }, mine);
    assert.match(unreadable!.message, /cannot read .*ERROR_ACCESS_DENIED/);
    // The same through the real lookup: a process that cannot be opened does not pass.
    const gone = processUserSid(0x7fff_fffc);
    assert.ok("error" in gone);
    assert.ok(
      serverOwnerError(path, 0x7fff_fffc, gone, mine) instanceof Deno.errors.PermissionDenied,
    );
    // SIDs compare without case; the current user passes.
    assert.equal(serverOwnerError(path, 1234, { sid: mine.toLowerCase() }, mine), undefined);

    // The real check against a server in another process of this user: connected.
    const name = uniqueName("hostile-owner");
    await using server = spawnFixture("pipe_server.ts", [name, "echo"]);
    assert.equal(await server.line(), "ready");
    using client = await NamedPipeClient.connect(name, { timeout: 30_000, currentUserOnly: true });
    assert.equal(checkServerOwner(client.path, client.unsafeHandle), undefined);
    assert.equal(
      new TextDecoder().decode(await client.transact("hi", { timeout: 30_000 })),
      "echo:hi",
    );
    client.close();
    assert.equal(await server.line(), "served 1");
  },
);

winTest("14: RpcClient over a pipe checks the server's user by default", async () => {
  const name = uniqueName("hostile-owner-rpc");
  await using server = spawnFixture("rpc_peer.ts", ["serve", name]);
  assert.equal(await server.line(), "ready");
  // On by default (the check passes here: same user); refused with other transports.
  await using client = await RpcClient.connect(name, testApi);
  assert.equal(await client.call("add", { a: 2, b: 3 }), 5);
  await using allowed = await RpcClient.connect(name, testApi, { currentUserOnly: false });
  assert.equal(await allowed.call("add", { a: 3, b: 3 }), 6);
  await assert.rejects(
    RpcClient.connect(name, testApi, { transport: "shm", currentUserOnly: true }),
    { name: "TypeError", message: /currentUserOnly/ },
  );
});
winTest(
  "13: malformed NDR, huge counts and opnums past the table: typed errors, the MS-RPC server serves on",
  async () => {
    const endpoint = uniqueName("hostile-msrpc");
    await using server = spawnFixture("msrpc_peer.ts", [
      endpoint,
      "ncalrpc",
      "--max",
      "65536",
      "--report",
    ]);
    assert.equal(await server.line(), "ready");
    using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
    const words = (...w: number[]) => {
      const writer = new NdrWriter();
      for (const word of w) writer.long(word);
      return writer.bytes();
    };
    const attacks: [number, Uint8Array, RegExp][] = [
      [1, words(0x7fff_ffff, 0x4000_0000, 2, 0x41), /offset 1073741824/], // offset far past the body
      [1, words(-1, 0, -1), /NDR ends early: 8589934590 bytes/], // counts as huge unsigned
      [1, words(1000, 0, 1000, 0x41), /NDR ends early: 2000 bytes/], // count past the body
      [1, words(1, 0, 2, 0x0042_0041), /actual count 2: must be 1 to its maximum 1/],
      [1, words(2, 0, 2, 0x0042_0041), /no terminating NUL/],
      [2, words(-16), /NDR ends early: 4294967280 bytes/], // byte array count
      [0, words(1), /NDR ends early: 4 bytes wanted at 4 of 4/], // body cut short
      [2, new NdrWriter().byteArray(new Uint8Array(100_000)).bytes(), /over maxMessageBytes/],
    ];
    for (const [procedure, body, message] of attacks) {
      await assert.rejects(client.call(procedure, body), Error, String(message));
      const report = JSON.parse(await server.line());
      assert.equal(report.error, "ProtocolError", JSON.stringify(report));
      assert.match(report.message, message);
    }
    // opnums past the dispatch table: the runtime or our dispatch answers, nothing crashes
    for (const opnum of [6, 255, 65535]) {
      await assert.rejects(
        client.call(opnum, new Uint8Array(0)),
        (e: unknown) =>
          (e instanceof Win32Error && e.codeName === "RPC_S_PROCNUM_OUT_OF_RANGE") ||
          (e instanceof Error && /malformed/.test(e.message)),
      );
    }
    // and the server still serves an honest call, from this process and from another
    const sum = await client.call(0, new NdrWriter().long(40).long(2).bytes());
    assert.equal(new NdrReader(sum).long(), 42);
    await using other = spawnFixture("msrpc_call.ts", [endpoint, "add", "1", "2"]);
    assert.equal(await other.line(), "3");
  },
);

winTest(
  "17: a mailslot reader refuses a message over its default 64 KiB and reads on",
  async () => {
    const name = uniqueName("hostile-slot");
    using slot = MailslotReader.create(name);
    await using writer = spawnFixture("mailslot_writer.ts", [name, "oversized", String(1 << 20)]);
    const line = await writer.line();
    assert.equal(await slot.readText({ timeout: 10_000 }), "before");
    if (line === "sent 3") {
      // Wine delivers 1 MiB; the reader refuses it by its announced size
      await assert.rejects(
        slot.read({ timeout: 10_000 }),
        (e: unknown) =>
          e instanceof ProtocolError && /1048576 bytes .* over maxMessageBytes/.test(e.message),
      );
    } else {
      assert.equal(line, `sent 2, refused ${1 << 20}`); // Windows refused it at the writer
    }
    assert.equal(await slot.readText({ timeout: 10_000 }), "after");
  },
);
