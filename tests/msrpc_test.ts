import assert from "node:assert/strict";
import { MsRpcClient, MsRpcServer, NdrReader, NdrWriter } from "../mechanisms/msrpc.ts";
import { isLocalCaller, isLoopback } from "../mechanisms/_rpc_caller.ts";
import { ProtocolError, Win32Error } from "../mod.ts";
import { SAMPLE_INTERFACE } from "./fixtures/msrpc_api.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

Deno.test("NDR: longs, hypers, strings and byte arrays round-trip with their alignment", () => {
  const bytes = new NdrWriter().long(-7).wstring("hé 𝄞").hyper(1n << 40n).byteArray(
    new Uint8Array([1, 2, 3]),
  ).bytes();
  // long 4 + (max, offset, count) 12 + 6 units * 2 = 28, then the hyper aligned to 32
  assert.equal(new DataView(bytes.buffer).getBigInt64(32, true), 1n << 40n);
  const r = new NdrReader(bytes);
  assert.equal(r.long(), -7);
  assert.equal(r.wstring(), "hé 𝄞");
  assert.equal(r.hyper(), 1n << 40n);
  assert.deepEqual([...r.byteArray()], [1, 2, 3]);
  assert.throws(
    () => r.long(),
    (e: unknown) => e instanceof ProtocolError && /NDR ends early/.test(e.message),
  );
});

Deno.test("NDR: a string's counts and offset and an array's count are checked before use", () => {
  const units = (...u: number[]) => {
    const w = new NdrWriter();
    for (const unit of u) w.long(unit);
    return w;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["offset", units(3, 1, 2, 0x0041_0041).bytes(), /offset 1: must be 0/],
    [
      "count over max",
      units(1, 0, 2, 0x0000_0041).bytes(),
      /actual count 2: must be 1 to its maximum 1/,
    ],
    ["count 0", units(0, 0, 0).bytes(), /actual count 0/],
    ["negative count", units(-1, 0, -1).bytes(), /NDR ends early: 8589934590 bytes/],
    ["count past the end", units(1000, 0, 1000, 0).bytes(), /NDR ends early: 2000 bytes/],
    ["no NUL", units(2, 0, 2, 0x0042_0041).bytes(), /no terminating NUL/],
    ["NUL inside", units(3, 0, 3, 0x0041_0000, 0).bytes(), /a NUL at unit 0/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(
      () => new NdrReader(bytes).wstring(),
      (e: unknown) => e instanceof ProtocolError && message.test(e.message),
      what,
    );
  }
  assert.throws(
    () => new NdrReader(units(-8, 1, 2).bytes()).byteArray(),
    (e: unknown) => e instanceof ProtocolError && /4294967288 bytes wanted/.test(e.message),
  );
  assert.equal(new NdrReader(units(1, 0, 1, 0).bytes()).wstring(), "");
});

Deno.test("MS-RPC: who counts as local, from what the runtime reports", () => {
  const host = "buildbox";
  assert.equal(isLocalCaller({ transport: "lrpc", protseq: "ncalrpc", address: "x" }, host), true);
  for (const address of ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1", "[::1]"]) {
    assert.equal(isLoopback(address), true, address);
    assert.equal(isLocalCaller({ transport: "cn", protseq: "ncacn_ip_tcp", address }, host), true);
  }
  for (const address of ["10.0.0.7", "128.0.0.1", "::2", "fe80::1", "1127.0.0.1"]) {
    assert.equal(isLocalCaller({ transport: "cn", protseq: "ncacn_ip_tcp", address }, host), false);
  }
  // Wine answers "lrpc" for every transport: the protocol sequence decides when it is known
  assert.equal(
    isLocalCaller({ transport: "lrpc", protseq: "ncacn_ip_tcp", address: "10.0.0.7" }, host),
    false,
  );
  assert.equal(isLocalCaller({ transport: "lrpc", protseq: "ncacn_ip_tcp" }, host), false);
  assert.equal(
    isLocalCaller({ transport: "cn", protseq: "ncacn_np", address: "BUILDBOX" }, host),
    true,
  );
  assert.equal(
    isLocalCaller({ transport: "cn", protseq: "ncacn_np", address: "\\\\other" }, host),
    false,
  );
  assert.equal(isLocalCaller({ transport: "cn", protseq: "ncacn_np" }, host), true);
  assert.equal(isLocalCaller({ transport: "lrpc" }, host), true);
  assert.equal(isLocalCaller({ transport: "cn" }, host), false);
  assert.equal(
    isLocalCaller({ transport: "dg", protseq: "ncadg_ip_udp", address: "127.0.0.1" }, host),
    false,
  );
});

async function exercise(client: MsRpcClient): Promise<void> {
  const add = await client.call(0, new NdrWriter().long(2).long(40).bytes());
  assert.equal(new NdrReader(add).long(), 42);
  const text = "héllo ✓ 𝄞";
  const reversed = await client.call(1, new NdrWriter().wstring(text).bytes());
  assert.equal(new NdrReader(reversed).wstring(), [...text].reverse().join(""));
  const data = crypto.getRandomValues(new Uint8Array(60_000));
  const sum = await client.call(2, new NdrWriter().byteArray(data).bytes());
  assert.equal(new NdrReader(sum).hyper(), data.reduce((a, b) => a + BigInt(b), 0n));
  // concurrent calls, each checked
  const calls = Array.from({ length: 100 }, async (_, i) => {
    const out = await client.call(0, new NdrWriter().long(i).long(i * 1000).bytes());
    assert.equal(new NdrReader(out).long(), i * 1001);
  });
  await Promise.all(calls);
  await assert.rejects(client.call(3, new Uint8Array(0)), /the procedure failed on the server/);
}

winTest(
  "Microsoft RPC over ncalrpc: a winipc client calls a winipc server in another process",
  async () => {
    const endpoint = uniqueName("msrpc");
    await using server = spawnFixture("msrpc_peer.ts", [endpoint]);
    assert.equal(await server.line(), "ready");
    using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
    await exercise(client);
  },
);

winTest("Microsoft RPC over ncacn_np (named pipes)", async () => {
  const endpoint = `\\pipe\\${uniqueName("msrpc-np")}`;
  await using server = spawnFixture("msrpc_peer.ts", [endpoint, "ncacn_np"]);
  assert.equal(await server.line(), "ready");
  using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, protseq: "ncacn_np", endpoint });
  await exercise(client);
});

winTest("Microsoft RPC over ncacn_ip_tcp (TCP, 127.0.0.1)", async () => {
  // a port that was free a moment ago
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const endpoint = String((probe.addr as Deno.NetAddr).port);
  probe.close();
  await using server = spawnFixture("msrpc_peer.ts", [endpoint, "ncacn_ip_tcp"]);
  assert.equal(await server.line(), "ready");
  using client = MsRpcClient.connect({
    ...SAMPLE_INTERFACE,
    protseq: "ncacn_ip_tcp",
    host: "127.0.0.1",
    endpoint,
  });
  await exercise(client);
  assert.throws(
    () => MsRpcClient.connect({ ...SAMPLE_INTERFACE, protseq: "ncacn_ip_tcp", endpoint: "calc" }),
    /options\.endpoint": an ncacn_ip_tcp endpoint must be a port number/,
  );
});

/** What the fixture's allow() saw on the last call (procedure 4). */
async function lastCaller(client: MsRpcClient) {
  return JSON.parse(new NdrReader(await client.call(4, new Uint8Array(0))).wstring());
}

winTest(
  "MS-RPC: allow() sees each caller, local by transport, with its pid over ncalrpc",
  async (t) => {
    await t.step("ncalrpc", async () => {
      const endpoint = uniqueName("msrpc-who");
      await using server = spawnFixture("msrpc_peer.ts", [endpoint]);
      assert.equal(await server.line(), "ready");
      using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
      const caller = await lastCaller(client);
      assert.equal(caller.local, true);
      assert.equal(caller.protseq, "ncalrpc");
      assert.equal(caller.pid, Deno.pid);
      // allow() ran at least once per call (twice where the runtime calls the security callback)
      const calls = new NdrReader(await client.call(5, new Uint8Array(0))).long();
      assert.ok(calls >= 2, `allow() ran ${calls} times for 2 calls`);
    });
    await t.step("ncacn_ip_tcp from 127.0.0.1", async () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const endpoint = String((probe.addr as Deno.NetAddr).port);
      probe.close();
      await using server = spawnFixture("msrpc_peer.ts", [endpoint, "ncacn_ip_tcp"]);
      assert.equal(await server.line(), "ready");
      using client = MsRpcClient.connect({
        ...SAMPLE_INTERFACE,
        protseq: "ncacn_ip_tcp",
        host: "127.0.0.1",
        endpoint,
      });
      const caller = await lastCaller(client);
      assert.equal(caller.protseq, "ncacn_ip_tcp");
      assert.equal(caller.address, "127.0.0.1");
      assert.equal(caller.local, true);
    });
  },
);

winTest(
  "MS-RPC: a caller allow() refuses gets ERROR_ACCESS_DENIED; others are served",
  async () => {
    const endpoint = uniqueName("msrpc-refuse");
    await using server = spawnFixture("msrpc_peer.ts", [
      endpoint,
      "ncalrpc",
      "--refuse-pid",
      String(Deno.pid),
      "--report",
    ]);
    assert.equal(await server.line(), "ready");
    using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
    await assert.rejects(
      client.call(0, new NdrWriter().long(1).long(2).bytes()),
      (e: unknown) => e instanceof Win32Error && e.code === 5,
    );
    const report = JSON.parse(await server.line());
    assert.equal(report.error, "MsRpcRefusedError");
    assert.match(report.message, /refused by allow\(\)/);
    // another process is let in by the same server
    await using other = spawnFixture("msrpc_call.ts", [endpoint, "add", "20", "22"]);
    assert.equal(await other.line(), "42");
  },
);

winTest("MS-RPC: a request over maxMessageBytes is refused, the next one served", async () => {
  const endpoint = uniqueName("msrpc-max");
  await using server = spawnFixture("msrpc_peer.ts", [
    endpoint,
    "ncalrpc",
    "--max",
    "4096",
    "--report",
  ]);
  assert.equal(await server.line(), "ready");
  using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
  const big = new NdrWriter().byteArray(new Uint8Array(60_000)).bytes();
  // Under Wine the server's own check answers; Windows' runtime may refuse it before (MaxRpcSize).
  await assert.rejects(client.call(2, big), /maxMessageBytes|RPC_S_|ERROR_/);
  const small = new NdrWriter().byteArray(new Uint8Array([1, 2, 3])).bytes();
  assert.equal(new NdrReader(await client.call(2, small)).hyper(), 6n);
  assert.throws(
    () =>
      MsRpcServer.listen({
        ...SAMPLE_INTERFACE,
        endpoint: "x",
        procedures: [() => {}],
        maxMessageBytes: 0,
      }),
    (e: unknown) =>
      e instanceof RangeError && /options.maxMessageBytes": must be at least 1/.test(e.message),
  );
});

winTest("Microsoft RPC: a missing server and bad options give clear errors", async () => {
  using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint: uniqueName("nobody") });
  await assert.rejects(
    client.call(0, new NdrWriter().long(1).long(2).bytes()),
    (e: unknown) => e instanceof Win32Error && e.codeName === "RPC_S_SERVER_UNAVAILABLE",
  );
  assert.throws(
    () => MsRpcClient.connect({ uuid: "not-a-uuid", endpoint: "x" }),
    /Invalid argument "options.uuid": must be a UUID/,
  );
  assert.throws(
    () => MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint: "a b" }),
    /options.endpoint/,
  );
});

winTest(
  "MsRpcServer.close() inside a call, with slow calls in flight: they complete or fail cleanly",
  async () => {
    const endpoint = uniqueName("msrpc-close");
    await using server = spawnFixture("msrpc_close.ts", [endpoint]);
    assert.equal(await server.line(), "ready");
    using client = MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint });
    // proves the server is up before the slow calls
    assert.equal(new NdrReader(await client.call(0, new NdrWriter().long(5).bytes())).long(), 5);
    const slow = Array.from(
      { length: 4 },
      (_, i) => client.call(0, new NdrWriter().long(i).bytes()),
    );
    const closing = client.call(1, new Uint8Array(0));
    const outcomes = await Promise.allSettled([...slow, closing]);
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === "fulfilled") {
        assert.equal(new NdrReader(outcome.value).long(), i < 4 ? i : 1);
      } else {
        assert.ok(outcome.reason instanceof Win32Error, String(outcome.reason));
      }
    }
    assert.equal(await server.line(), "released");
    await assert.rejects(
      client.call(0, new NdrWriter().long(1).bytes()),
      (e: unknown) => e instanceof Win32Error,
    );
    const { code } = await server.finish();
    assert.equal(code, 0);
  },
);
