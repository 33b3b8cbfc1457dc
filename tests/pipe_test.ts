import assert from "node:assert/strict";
import {
  advapi32,
  DACL_SECURITY_INFORMATION,
  SDDL_REVISION_1,
  SE_KERNEL_OBJECT,
} from "../ffi/advapi32.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { currentUserSid } from "../ffi/security.ts";
import { readWide } from "../ffi/strings.ts";
import { wide } from "../ffi/strings.ts";
import { Win32Error } from "../ffi/error.ts";
import {
  callNamedPipe,
  listPipes,
  NamedPipeClient,
  NamedPipeServer,
  type PipeConnection,
  pipePath,
  type PipeUser,
} from "../mechanisms/pipe.ts";
import {
  impersonatedUser,
  parseDirectoryEntries,
  processUser,
} from "../mechanisms/_pipe_native.ts";
import { runCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

const text = new TextDecoder();
const pattern = (size: number) => new Uint8Array(size).map((_, i) => i % 251);
const checksum = (bytes: Uint8Array) => bytes.reduce((a, b) => (a + b) % 1_000_000_007, 0);

// ---- names and options (validated before any Win32 call: these run on every platform) ----

Deno.test("pipePath() resolves bare names and keeps full paths", () => {
  assert.equal(pipePath("jobs"), "\\\\.\\pipe\\jobs");
  assert.equal(pipePath("\\\\.\\pipe\\jobs"), "\\\\.\\pipe\\jobs");
  assert.equal(pipePath("\\\\server\\PIPE\\jobs"), "\\\\server\\PIPE\\jobs");
  assert.equal(pipePath("naïve ✓"), "\\\\.\\pipe\\naïve ✓");
});

Deno.test("bad pipe names are refused with errors that name the argument", () => {
  assert.throws(() => pipePath(""), { name: "RangeError", message: /"name".*empty/ });
  assert.throws(() => pipePath("a\\b"), { name: "TypeError", message: /"name".*must not contain/ });
  assert.throws(() => pipePath("\\\\.\\mailslot\\x"), { name: "TypeError", message: /pipe/ });
  assert.throws(() => pipePath("\\\\.\\pipe\\"), TypeError);
  assert.throws(() => pipePath("a\0b"), { name: "TypeError", message: /NUL/ });
  assert.throws(() => pipePath("x".repeat(300)), { name: "RangeError", message: /256/ });
  assert.throws(() => pipePath(42 as unknown as string), { name: "TypeError", message: /string/ });
  // A server can only create a pipe on this machine.
  assert.throws(() => NamedPipeServer.listen("\\\\other\\pipe\\x"), {
    name: "TypeError",
    message: /this machine/,
  });
});

Deno.test("bad server and client options are refused before any Win32 call", async () => {
  assert.throws(() => NamedPipeServer.listen("x", { mode: "stream" as "byte" }), {
    name: "TypeError",
    message: /"options\.mode"/,
  });
  assert.throws(() => NamedPipeServer.listen("x", { maxInstances: 0 }), {
    name: "RangeError",
    message: /"options\.maxInstances"/,
  });
  assert.throws(() => NamedPipeServer.listen("x", { maxInstances: 256 }), RangeError);
  assert.throws(
    () => NamedPipeServer.listen("x", { bogus: 1 } as unknown as Record<string, never>),
    TypeError,
  );
  await assert.rejects(NamedPipeClient.connect("x", { timeout: -1 }), {
    name: "RangeError",
    message: /"options\.timeout"/,
  });
  await assert.rejects(NamedPipeClient.connect("a\\b"), TypeError);
  await assert.rejects(callNamedPipe("x", 5 as unknown as string), {
    name: "TypeError",
    message: /"request"/,
  });
});

// ---- across processes, under Win32 ----

winTest("8 client processes x 100 messages against one server: every echo checked", async () => {
  const name = uniqueName("pipe-many");
  using server = NamedPipeServer.listen(name, { mode: "message" });
  const perClient = new Map<string, number[]>();
  const clientPids = new Set<number>();
  const serve = async (conn: PipeConnection) => {
    using c = conn;
    clientPids.add(c.clientProcessId);
    for (let m; (m = await c.readMessage()) !== null;) {
      const message = text.decode(m);
      const [id, i] = message.split(":");
      perClient.set(id, [...(perClient.get(id) ?? []), Number(i)]);
      await c.write(`echo:${message}`);
    }
  };
  const errors: unknown[] = [];
  const accepting = (async () => {
    const tasks: Promise<void>[] = [];
    for await (const conn of server) tasks.push(serve(conn).catch((e) => void errors.push(e)));
    await Promise.all(tasks);
  })();
  const clients = Array.from(
    { length: 8 },
    (_, id) => spawnFixture("pipe_client.ts", [name, "echo", `c${id}`, "100"]),
  );
  try {
    const results = await Promise.all(clients.map((c) => c.finish()));
    for (const [id, result] of results.entries()) {
      assert.equal(result.code, 0, `client ${id}: ${result.rest.join("\n")} ${result.stderr}`);
      assert.deepEqual(result.rest, [`ok c${id} 100`]);
    }
  } finally {
    server.close();
    await accepting;
  }
  // The server saw every message once, in order per client, from 8 distinct processes.
  assert.deepEqual(errors, []);
  assert.equal(perClient.size, 8);
  for (const [id, seq] of perClient) {
    assert.deepEqual(seq, Array.from({ length: 100 }, (_, i) => i), `client ${id}`);
  }
  assert.deepEqual(clientPids, new Set(clients.map((c) => c.child.pid)));
});

winTest(
  "message mode: a message larger than the read buffer is reassembled both ways",
  async () => {
    const name = uniqueName("pipe-big");
    await using server = spawnFixture("pipe_server.ts", [name, "echo-big"]);
    await server.expect("ready");
    using client = await NamedPipeClient.connect(name, { timeout: 30_000, readBufferSize: 1000 });
    assert.equal(client.mode, "message");
    const message = pattern(300_000); // 300 reads of 1000 bytes on each side, more than the pipe buffer
    await client.write(message);
    const reply = await client.readMessage({ timeout: 30_000 });
    assert.ok(reply);
    assert.equal(reply.length, message.length);
    assert.deepEqual(reply, message);
    // Two messages back to back keep their boundaries.
    await client.write("first");
    await client.write("second");
    assert.equal(text.decode((await client.readMessage())!), "first");
    assert.equal(text.decode((await client.readMessage())!), "second");
  },
);

winTest("TransactNamedPipe, callNamedPipe and raw CallNamedPipeW round trips", async () => {
  const name = uniqueName("pipe-transact");
  await using server = spawnFixture("pipe_server.ts", [name, "echo", "3"]);
  await server.expect("ready");
  {
    using client = await NamedPipeClient.connect(name, { timeout: 30_000 });
    assert.equal(text.decode(await client.transact("ping")), "echo:ping");
    // A reply longer than the reply buffer (ERROR_MORE_DATA) is reassembled.
    const long = "x".repeat(5000);
    assert.equal(text.decode(await client.transact(long, { replyBufferSize: 10 })), `echo:${long}`);
    assert.equal(client.serverProcessId, server.child.pid);
  }
  assert.equal(
    text.decode(await callNamedPipe(name, "héllo ✓", { timeout: 30_000 })),
    "echo:héllo ✓",
  );
  // The server also answers a plain CallNamedPipeW client (run on a worker thread here).
  const request = new TextEncoder().encode("raw");
  const reply = new Uint8Array(64);
  const read = new Uint32Array(1);
  const ok = await kernel32().CallNamedPipeWAsync(
    wide(pipePath(name)),
    request,
    request.length,
    reply,
    reply.length,
    read,
    30_000,
  );
  assert.equal(ok, 1);
  assert.equal(text.decode(reply.subarray(0, read[0])), "echo:raw");
  const done = await server.finish();
  assert.deepEqual(done.rest, ["served 4"]);
});

winTest(
  "a server that closes while the client reads: the read returns null (end of stream)",
  async () => {
    const name = uniqueName("pipe-close");
    await using server = spawnFixture("pipe_server.ts", [name, "close-soon", "500"]);
    await server.expect("ready");
    using client = await NamedPipeClient.connect(name, { timeout: 30_000 });
    const reading = client.read(new Uint8Array(100));
    assert.equal(await server.line(), `connected ${Deno.pid}`);
    assert.equal(await reading, null);
    assert.equal(await server.line(), "closed");
    await assert.rejects(client.write("late"), Deno.errors.BrokenPipe);
  },
);

winTest(
  "the client end closing: the server's read returns null and the client sees EOF too",
  async () => {
    const name = uniqueName("pipe-client-close");
    using server = NamedPipeServer.listen(name);
    await using client = spawnFixture("pipe_client.ts", [name, "read"]);
    using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
    await client.expect("connected");
    conn.close(); // the client's pending read ends
    assert.equal(await client.line(), "eof");
    assert.equal((await client.finish()).code, 0);
  },
);

winTest("a client that connects before the server exists waits for it", async () => {
  const name = uniqueName("pipe-early");
  await using client = spawnFixture("pipe_client.ts", [name, "connect-timeout", "30000"]);
  await new Promise((r) => setTimeout(r, 1500)); // the client is polling for the pipe by now
  using server = NamedPipeServer.listen(name);
  using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
  assert.equal(conn.clientProcessId, client.child.pid);
  assert.equal(await client.line(), "connected");
});

winTest("connecting to a pipe that never comes fails with a clear timeout error", async () => {
  const name = uniqueName("pipe-never");
  const start = performance.now();
  await assert.rejects(NamedPipeClient.connect(name, { timeout: 400 }), (e: Error) => {
    assert.ok(e instanceof Deno.errors.TimedOut);
    assert.match(
      e.message,
      /Cannot connect to pipe ".*pipe-never.*": no such pipe after waiting 400 ms/,
    );
    return true;
  });
  assert.ok(performance.now() - start >= 390);
  // Also from another process, through the fixture.
  await using client = spawnFixture("pipe_client.ts", [name, "connect-timeout", "300"]);
  assert.match(await client.line(), /^error TimedOut: Cannot connect to pipe .*no such pipe/);
  // An AbortSignal stops the wait too.
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("gave up")), 200);
  await assert.rejects(
    NamedPipeClient.connect(name, { timeout: 30_000, signal: controller.signal }),
    { message: "gave up" },
  );
});

winTest("an AbortSignal cancels a pending read; the connection stays usable", async () => {
  const name = uniqueName("pipe-abort");
  await using server = spawnFixture("pipe_server.ts", [name, "echo"]);
  await server.expect("ready");
  using client = await NamedPipeClient.connect(name, { timeout: 30_000 });
  const controller = new AbortController();
  const reason = new Error("stop reading");
  setTimeout(() => controller.abort(reason), 300);
  await assert.rejects(client.readMessage({ signal: controller.signal }), (e) => e === reason);
  // A timeout cancels the same way.
  await assert.rejects(client.read(new Uint8Array(10), { timeout: 200 }), Deno.errors.TimedOut);
  // Nothing was lost or left half-done: the next exchange works.
  assert.equal(text.decode(await client.transact("after", { timeout: 30_000 })), "echo:after");
  // An already aborted signal rejects at once.
  await assert.rejects(
    client.readMessage({ signal: AbortSignal.abort(reason) }),
    (e) => e === reason,
  );
});

winTest(
  "close() wakes a pending accept and ends the iteration; close() twice is harmless",
  async () => {
    const name = uniqueName("pipe-shutdown");
    const server = NamedPipeServer.listen(name, { backlog: 3 });
    assert.equal(server.listening, 3);
    const pending = server.accept();
    const iterating = (async () => {
      const seen: PipeConnection[] = [];
      for await (const conn of server) seen.push(conn);
      return seen.length;
    })();
    setTimeout(() => server.close(), 200);
    await assert.rejects(pending, Deno.errors.BadResource);
    assert.equal(await iterating, 0);
    server.close();
    assert.ok(server.closed);
    // The name is free again once the listening instances are gone.
    await new Promise((r) => setTimeout(r, 100));
    using again = NamedPipeServer.listen(name);
    assert.equal(again.listening, 2);
  },
);

winTest(
  "byte mode streams: a client process pipes 1 MB into writable, the server reads readable",
  async () => {
    const name = uniqueName("pipe-stream");
    using server = NamedPipeServer.listen(name);
    const size = 1_000_000;
    await using client = spawnFixture("pipe_client.ts", [name, "stream", String(size)]);
    using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
    assert.equal(conn.mode, "byte");
    // peek() sees data without consuming it.
    let peeked = conn.peek(5);
    for (let i = 0; peeked.available === 0 && i < 300; i++) {
      await new Promise((r) => setTimeout(r, 50));
      peeked = conn.peek(5);
    }
    assert.ok(peeked.available > 0);
    assert.deepEqual(peeked.data, pattern(5));
    let total = 0;
    let sum = 0;
    for await (const chunk of conn.readable) {
      for (const b of chunk) {
        if (b !== (total % 251)) throw new Error(`Byte ${total} is ${b}, expected ${total % 251}`);
        total++;
      }
      sum = (sum + checksum(chunk)) % 1_000_000_007;
    }
    assert.equal(total, size);
    assert.equal(sum, checksum(pattern(size)));
    assert.equal(await client.line(), `sent ${size}`);
  },
);

winTest("a pipe name that exists already (with other settings) is refused", async () => {
  const name = uniqueName("pipe-taken");
  await using holder = spawnFixture("pipe_server.ts", [name, "hold", "30000"]);
  await holder.expect("ready");
  assert.throws(() => NamedPipeServer.listen(name, { mode: "message", maxInstances: 3 }), (e) => {
    assert.ok(e instanceof Win32Error);
    assert.equal(e.functionName, "CreateNamedPipeW");
    assert.match(
      e.message,
      /Cannot create named pipe ".*pipe-taken.*": a pipe of that name exists already/,
    );
    // Windows answers ERROR_ACCESS_DENIED; Wine creates the instance but reports
    // ERROR_ALREADY_EXISTS, which winipc turns into the same refusal.
    assert.ok(["ERROR_ACCESS_DENIED", "ERROR_ALREADY_EXISTS"].includes(e.codeName));
    return true;
  });
});

winTest("security: an explicit SDDL works, an invalid one is a clear error", async () => {
  const name = uniqueName("pipe-sddl");
  using server = NamedPipeServer.listen(name, { sddl: "D:P(A;;GA;;;WD)", mode: "message" });
  await using client = spawnFixture("pipe_client.ts", [name, "read"]);
  using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
  await client.expect("connected");
  await conn.write("hi");
  assert.equal(await client.line(), "data 2");
  assert.throws(() => NamedPipeServer.listen(uniqueName("pipe-bad-sddl"), { sddl: "nonsense" }), {
    name: "Win32Error",
    message: /Invalid security descriptor "nonsense"/,
  });
});

winTest("closed connections refuse further I/O", async () => {
  const name = uniqueName("pipe-closed");
  using server = NamedPipeServer.listen(name);
  const accepting = server.accept();
  const client = await NamedPipeClient.connect(name, { timeout: 10_000 });
  using conn = await accepting;
  const pending = conn.read(new Uint8Array(8));
  await new Promise((r) => setTimeout(r, 50)); // the read is in flight now
  conn.close();
  await assert.rejects(pending, Deno.errors.Interrupted);
  await assert.rejects(conn.write("x"), Deno.errors.BadResource);
  assert.throws(() => conn.peek(), Deno.errors.BadResource);
  conn.close();
  assert.equal(await client.read(new Uint8Array(8)), null);
  client.close();
  await assert.rejects(client.read(new Uint8Array(8)), Deno.errors.BadResource);
  await assert.rejects(conn.write(7 as unknown as string), TypeError);
});

winTest(
  "maxInstances: a client waits while every instance is busy, and gets the freed one",
  async () => {
    const name = uniqueName("pipe-busy");
    using server = NamedPipeServer.listen(name, { maxInstances: 1 });
    assert.equal(server.listening, 1);
    const first = await NamedPipeClient.connect(name, { timeout: 10_000 });
    const conn1 = await server.accept({ signal: AbortSignal.timeout(10_000) });
    assert.equal(server.listening, 0); // the only instance is taken
    // Another process finds the pipe busy (ERROR_PIPE_BUSY) and waits with WaitNamedPipeW.
    await using second = spawnFixture("pipe_client.ts", [name, "connect-timeout", "30000"]);
    await assert.rejects(NamedPipeClient.connect(name, { timeout: 300 }), (e: Error) => {
      assert.ok(e instanceof Deno.errors.TimedOut);
      assert.match(e.message, /all instances busy after waiting 300 ms \(ERROR_PIPE_BUSY\)/);
      return true;
    });
    // The wait for a free instance (FSCTL_PIPE_WAIT through the I/O core) ends on an abort.
    const controller = new AbortController();
    const waiting = NamedPipeClient.connect(name, {
      timeout: 30_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error("stop waiting")), 200);
    await assert.rejects(waiting, { message: "stop waiting" });
    await new Promise((r) => setTimeout(r, 1000));
    conn1.close(); // frees the instance: the server creates a new one at once
    first.close();
    using conn2 = await server.accept({ signal: AbortSignal.timeout(30_000) });
    assert.equal(conn2.clientProcessId, second.child.pid);
    assert.equal(await second.line(), "connected");
    // An AbortSignal stops a pending accept without closing the server.
    await assert.rejects(server.accept({ signal: AbortSignal.timeout(100) }), {
      name: "TimeoutError",
    });
    assert.equal(server.closed, false);
  },
);

/** The DACL of a kernel object's handle, as SDDL (GetSecurityInfo). */
function daclOf(handle: Deno.PointerObject): string {
  const sd = new BigUint64Array(1);
  const code = advapi32().GetSecurityInfo(
    handle,
    SE_KERNEL_OBJECT,
    DACL_SECURITY_INFORMATION,
    null,
    null,
    null,
    null,
    sd,
  );
  assert.equal(code, 0, `GetSecurityInfo failed with ${code}`);
  const descriptor = Deno.UnsafePointer.create(sd[0]);
  const text = new BigUint64Array(1);
  try {
    assert.ok(
      advapi32().ConvertSecurityDescriptorToStringSecurityDescriptorW(
        descriptor,
        SDDL_REVISION_1,
        DACL_SECURITY_INFORMATION,
        text,
        null,
      ),
    );
    const sddl = readWide(Deno.UnsafePointer.create(text[0]));
    kernel32().LocalFree(Deno.UnsafePointer.create(text[0]));
    return sddl;
  } finally {
    kernel32().LocalFree(descriptor);
  }
}

winTest("security: by default the pipe's DACL lets only the current user in", async () => {
  const name = uniqueName("pipe-dacl");
  using server = NamedPipeServer.listen(name);
  await using client = spawnFixture("pipe_client.ts", [name, "read"]);
  using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
  await client.expect("connected");
  const sid = currentUserSid();
  assert.match(sid, /^S-1-5-/);
  // Read back from the kernel object. (Windows may print the generic right GA as FA.)
  assert.match(daclOf(conn.unsafeHandle), new RegExp(`^D:P\\(A;;(GA|FA);;;${sid}\\)$`));
  // Wine stores this DACL but does not enforce named-pipe DACLs when a client opens the pipe, so
  // a refused connection cannot be shown here; on Windows another user gets ERROR_ACCESS_DENIED.
  using open = NamedPipeServer.listen(uniqueName("pipe-dacl-open"), { sddl: "D:P(A;;GA;;;WD)" });
  const other = await NamedPipeClient.connect(open.path, { timeout: 10_000 });
  using conn2 = await open.accept({ signal: AbortSignal.timeout(10_000) });
  assert.match(daclOf(conn2.unsafeHandle), /^D:P\(A;;(GA|FA);;;WD\)$/);
  other.close();
});

winTest(
  "message mode streams: readable yields whole messages, writable writes one per chunk",
  async () => {
    const name = uniqueName("pipe-msg-stream");
    using server = NamedPipeServer.listen(name, { mode: "message", readBufferSize: 8 });
    const serving = (async () => {
      using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
      const writer = conn.writable.getWriter();
      const seen: string[] = [];
      // Each chunk of readable is one whole message, even one longer than the 8-byte read buffer.
      for await (const message of conn.readable) {
        const text = new TextDecoder().decode(message);
        seen.push(text);
        await writer.write(new TextEncoder().encode(`echo:${text}`));
      }
      return seen;
    })();
    // The CLI client (another process) sends one message and reads one reply (TransactNamedPipe).
    const long = "a message longer than eight bytes ✓";
    const result = await runCli(["pipe", "send", name, long, "--reply"]);
    assert.deepEqual(result, { code: 0, stdout: `echo:${long}\n`, stderr: "" });
    assert.deepEqual(await serving, [long]);
  },
);

// ---- client identity and impersonation (issue 14) ----

winTest("the server reads the client's user (name and SID) across processes", async () => {
  const name = uniqueName("pipe-identity");
  using server = NamedPipeServer.listen(name, { mode: "message" });
  await using client = spawnFixture("pipe_client.ts", [name, "hello"]);
  using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
  assert.equal(text.decode((await conn.readMessage({ timeout: 30_000 }))!), "hello");
  await client.expect("sent");
  const user = conn.clientUser();
  const me = processUser();
  assert.equal(user.sid, currentUserSid());
  assert.deepEqual(user, me);
  assert.ok(user.name && user.name.length > 0, "the account has a name");
  // Reading the user impersonated for a moment only: the thread has no token afterwards.
  assert.equal(impersonatedUser(), null);
  assert.equal(conn.clientProcessId, client.child.pid);
  // The client side has no client to ask about.
  using other = await NamedPipeClient.connect(name, { timeout: 10_000 });
  assert.throws(() => other.clientUser(), { name: "TypeError", message: /client end/ });
  assert.throws(() => other.impersonate(() => 1), { name: "TypeError", message: /client end/ });
  conn.close();
  await client.expect("eof");
});

winTest(
  "clientComputerName() is null for a local client, or says the system lacks it",
  async () => {
    const name = uniqueName("pipe-computer");
    using server = NamedPipeServer.listen(name, { mode: "message" });
    await using client = spawnFixture("pipe_client.ts", [name, "hello"]);
    using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
    await client.expect("sent");
    let computer: string | null | Error;
    try {
      computer = conn.clientComputerName();
    } catch (e) {
      computer = e as Error;
    }
    if (computer instanceof Error) {
      // Wine 10 exports no GetNamedPipeClientComputerNameW; Windows has it (and reports a local
      // client as ERROR_PIPE_LOCAL, which is null here).
      assert.match(computer.message, /no GetNamedPipeClientComputerNameW/);
    } else {
      assert.equal(computer, null);
    }
  },
);

winTest("impersonate() runs fn as the client and reverts, also after a throw", async () => {
  const name = uniqueName("pipe-impersonate");
  using server = NamedPipeServer.listen(name, { mode: "message" });
  await using client = spawnFixture("pipe_client.ts", [name, "hello", "impersonation"]);
  using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
  await conn.readMessage({ timeout: 30_000 });
  await client.expect("sent");
  assert.equal(impersonatedUser(), null);
  // Inside fn the thread carries the client's token.
  const inside = conn.impersonate(() => impersonatedUser());
  assert.equal(inside?.sid, currentUserSid());
  assert.equal(impersonatedUser(), null, "reverted after fn returned");
  // A throwing fn: its error comes out, and the thread's token is gone.
  let seen: PipeUser | null = null;
  assert.throws(
    () =>
      conn.impersonate(() => {
        seen = impersonatedUser();
        throw new Error("boom");
      }),
    { message: "boom" },
  );
  assert.ok(seen !== null, "fn ran while impersonating");
  assert.equal(impersonatedUser(), null, "reverted after fn threw");
  // An async fn is refused (after the revert); its own rejection does not go unhandled.
  assert.throws(
    () =>
      conn.impersonate(async () => {
        await Promise.resolve();
        throw new Error("late");
      }),
    { name: "TypeError", message: /synchronous/ },
  );
  assert.equal(impersonatedUser(), null, "reverted after an async fn");
  // Nesting is refused, and the outer call still reverts.
  assert.throws(
    () => conn.impersonate(() => conn.impersonate(() => 1)),
    { name: "TypeError", message: /already/ },
  );
  assert.equal(impersonatedUser(), null);
  assert.throws(() => conn.impersonate(42 as unknown as () => void), TypeError);
  conn.close();
  await client.expect("eof");
});

winTest("a bad impersonationLevel is refused before any Win32 call", async () => {
  await assert.rejects(
    NamedPipeClient.connect("x", { impersonationLevel: "root" as "anonymous" }),
    { name: "TypeError", message: /"options\.impersonationLevel"/ },
  );
});

winTest(
  "clients opened read-only and write-only: each way works, the other is refused",
  async () => {
    const name = uniqueName("pipe-access");
    using server = NamedPipeServer.listen(name, { mode: "message" });
    {
      await using reader = spawnFixture("pipe_client.ts", [name, "access-read"]);
      using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
      // A read-only client still gets message mode (FILE_WRITE_ATTRIBUTES lets it set the mode).
      assert.equal(await reader.line(), "connected read message");
      await conn.write("to reader");
      assert.equal(await reader.line(), "got to reader");
      assert.equal(await reader.line(), "write NotSupported");
      // The handle itself has no write right: the system refuses a raw WriteFile.
      assert.equal(await reader.line(), "raw 5");
      assert.equal((await reader.finish()).code, 0);
    }
    {
      await using writer = spawnFixture("pipe_client.ts", [name, "access-write"]);
      using conn = await server.accept({ signal: AbortSignal.timeout(30_000) });
      assert.equal(await writer.line(), "connected write message");
      assert.equal(text.decode((await conn.readMessage({ timeout: 30_000 }))!), "from writer");
      assert.equal(await writer.line(), "read NotSupported");
      assert.equal(await writer.line(), "raw 5");
      assert.equal((await writer.finish()).code, 0);
    }
    await assert.rejects(NamedPipeClient.connect(name, { access: "both" as "read" }), {
      name: "TypeError",
      message: /"options\.access"/,
    });
  },
);

// ---- listing (issue 14) ----

/** Two FILE_DIRECTORY_INFORMATION entries as the pipe file system writes them. */
function directoryBytes(entries: { name: string; instances: number; max: number }[]): Uint8Array {
  const sizes = entries.map((e) => (64 + e.name.length * 2 + 7) & ~7);
  const bytes = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  const view = new DataView(bytes.buffer);
  let at = 0;
  entries.forEach((e, i) => {
    view.setUint32(at, i === entries.length - 1 ? 0 : sizes[i], true);
    view.setBigInt64(at + 40, BigInt(e.instances), true);
    view.setBigInt64(at + 48, BigInt(e.max), true);
    view.setUint32(at + 60, e.name.length * 2, true);
    for (let j = 0; j < e.name.length; j++) {
      view.setUint16(at + 64 + 2 * j, e.name.charCodeAt(j), true);
    }
    at += sizes[i];
  });
  return bytes;
}

Deno.test("directory entries of the pipe file system are decoded and bounds-checked", () => {
  const bytes = directoryBytes([
    { name: "jobs", instances: 3, max: -1 },
    { name: "naïve ✓", instances: 1, max: 7 },
  ]);
  assert.deepEqual(parseDirectoryEntries(bytes, bytes.length), [
    { name: "jobs", path: "\\\\.\\pipe\\jobs", instances: 3, maxInstances: -1 },
    { name: "naïve ✓", path: "\\\\.\\pipe\\naïve ✓", instances: 1, maxInstances: 7 },
  ]);
  // The count of bytes the system wrote bounds every entry.
  assert.throws(() => parseDirectoryEntries(bytes, 70), RangeError);
  const badNext = bytes.slice();
  new DataView(badNext.buffer).setUint32(0, 12, true);
  assert.throws(() => parseDirectoryEntries(badNext, badNext.length), /next offset 12/);
  const longName = bytes.slice();
  new DataView(longName.buffer).setUint32(60, 4000, true);
  assert.throws(() => parseDirectoryEntries(longName, longName.length), /4000 bytes/);
});

winTest(
  "listPipes() and pipe list show a pipe with its instances, or say Wine cannot",
  async () => {
    const name = uniqueName("pipe-list");
    using _server = NamedPipeServer.listen(name, { maxInstances: 7 });
    let pipes: ReturnType<typeof listPipes> | Win32Error;
    try {
      pipes = listPipes();
    } catch (e) {
      if (!(e instanceof Win32Error)) throw e;
      pipes = e;
    }
    const cli = await runCli(["pipe", "list", "--json"]);
    if (pipes instanceof Win32Error) {
      // Wine 10: NtQueryDirectoryFile on \\.\pipe\ answers STATUS_BAD_DEVICE_TYPE.
      assert.equal(pipes.code, 66);
      assert.match(pipes.message, /cannot list .*Wine 10 cannot/);
      assert.equal(cli.code, 1);
      assert.equal(cli.stdout, "");
      assert.match(cli.stderr, /^error: Cannot list the named pipes: /);
      return;
    }
    // Windows: our pipe is listed with its two listening instances (the backlog) and its maximum.
    const ours = pipes.find((p) => p.name === name);
    assert.deepEqual(ours, { name, path: `\\\\.\\pipe\\${name}`, instances: 2, maxInstances: 7 });
    assert.equal(cli.code, 0, cli.stderr);
    const listed = cli.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(listed.find((p) => p.name === name), ours);
  },
);

Deno.test("maxMessageBytes is checked before any Win32 call", async () => {
  assert.throws(() => NamedPipeServer.listen("x", { maxMessageBytes: 0 }), {
    name: "RangeError",
    message: /"options\.maxMessageBytes"/,
  });
  await assert.rejects(NamedPipeClient.connect("x", { maxMessageBytes: 2 ** 32 }), RangeError);
  await assert.rejects(callNamedPipe("x", "q", { maxMessageBytes: 1.5 }), TypeError);
});
