import assert from "node:assert/strict";
import { MsRpcClient, NdrReader, NdrWriter } from "../mechanisms/msrpc.ts";
import { Win32Error } from "../mod.ts";
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
  assert.throws(() => r.long(), /NDR ends early/);
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
