import assert from "node:assert/strict";
import { z } from "zod";
import { defineProcedures, RpcClient, RpcError, RpcErrorCode, RpcServer } from "../mod.ts";
import { testApi } from "./fixtures/rpc_api.ts";
import { repoPath, spawnFixture, winTest } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads newline-delimited lines from a raw connection (the "other language" client). */
async function* rawLines(conn: Deno.Conn): AsyncGenerator<string> {
  let text = "";
  const buffer = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    let nl: number;
    while ((nl = text.indexOf("\n")) >= 0) {
      yield text.slice(0, nl);
      text = text.slice(nl + 1);
    }
  }
}

winTest(
  "1,000 concurrent calls from 4 client processes over TCP with a token, every result checked",
  async () => {
    await using server = spawnFixture("rpc_peer.ts", ["serve", "-", "tcp", "s3cret"]);
    const port = (await server.line()).match(/^ready (\d+)$/)?.[1];
    assert.ok(port, "the server printed its port");
    const clients = [0, 1, 2, 3].map(() =>
      spawnFixture("rpc_peer.ts", ["calls", port, "250", "tcp", "s3cret"])
    );
    for (const client of clients) {
      assert.equal(await client.line(60_000), "ok 250");
      assert.equal((await client.finish()).code, 0);
    }
  },
);

winTest("TCP: schemas, errors, timeouts and cancellation as over pipes", async () => {
  await using server = spawnFixture("rpc_peer.ts", ["serve", "-", "tcp"]);
  const port = Number((await server.line()).split(" ")[1]);
  await using client = await RpcClient.connect({ transport: "tcp", port }, testApi);
  assert.equal(await client.call("add", { a: 2, b: 40 }), 42);
  assert.equal(await client.call("upper", ["grüße ✓"]), "GRÜSSE ✓");
  await assert.rejects(
    client.callUnchecked("add", { a: "2" }),
    (e: unknown) => e instanceof RpcError && e.code === RpcErrorCode.InvalidParams,
  );
  await assert.rejects(
    client.callUnchecked("nope", []),
    (e: unknown) => e instanceof RpcError && e.code === RpcErrorCode.MethodNotFound,
  );
  await assert.rejects(client.call("fail", []), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 4711);
    assert.deepEqual(e.data, { sku: "A-1" });
    return true;
  });
  await assert.rejects(client.call("slow", { ms: 20_000 }, { timeout: 200 }), Deno.errors.TimedOut);
  const controller = new AbortController();
  const call = client.call("slow", { ms: 20_000 }, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("user gave up")), 100);
  await assert.rejects(call, /user gave up/);
  let cancelled = 0;
  for (let i = 0; i < 50 && cancelled < 2; i++) {
    cancelled = await client.call("cancelled", []);
    if (cancelled < 2) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(cancelled, 2, "both handlers saw their signal abort");
});

winTest("TCP: a server killed mid-call, its client's calls reject with a clear error", async () => {
  const server = spawnFixture("rpc_peer.ts", ["serve", "-", "tcp"]);
  const port = Number((await server.line()).split(" ")[1]);
  await using client = await RpcClient.connect({ transport: "tcp", port }, testApi);
  assert.equal(await client.call("add", { a: 1, b: 2 }), 3);
  const calls = [1, 2, 3].map(() => client.call("slow", { ms: 20_000 }));
  await new Promise((r) => setTimeout(r, 200));
  server.child.kill("SIGKILL");
  for (const call of calls) {
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof Deno.errors.ConnectionReset, String(e));
      assert.match((e as Error).message, /RPC (server closed|connection failed)/);
      return true;
    });
  }
  await assert.rejects(client.call("add", { a: 1, b: 1 }), Deno.errors.ConnectionReset);
  await server.finish();
  // nothing listens there any more
  await assert.rejects(
    RpcClient.connect({ transport: "tcp", port }, testApi, { timeout: 5000 }),
    (e: unknown) => e instanceof Error && e.message.includes(`127.0.0.1:${port}`),
  );
});

winTest("TCP: a wrong or missing token is refused with a clear error", async () => {
  await using server = spawnFixture("rpc_peer.ts", ["serve", "-", "tcp", "right token"]);
  const port = Number((await server.line()).split(" ")[1]);
  await assert.rejects(
    RpcClient.connect({ transport: "tcp", port, token: "wrong token" }, testApi),
    (e: unknown) =>
      e instanceof RpcError && e.code === RpcErrorCode.Unauthorized &&
      e.message === "The RPC server refused the token: Unauthorized: wrong token",
  );
  // no token: the first call is refused and the connection ends
  await using anonymous = await RpcClient.connect({ transport: "tcp", port }, testApi);
  await assert.rejects(
    anonymous.call("add", { a: 1, b: 2 }),
    (e: unknown) =>
      e instanceof RpcError && e.code === RpcErrorCode.Unauthorized &&
      /requires a token/.test(e.message),
  );
  await assert.rejects(anonymous.call("add", { a: 1, b: 2 }), Deno.errors.ConnectionReset);
  // the right one is let in
  await using client = await RpcClient.connect(
    { transport: "tcp", port, token: "right token" },
    testApi,
  );
  assert.equal(await client.call("add", { a: 1, b: 2 }), 3);
});

const api = defineProcedures({
  add: { params: z.tuple([z.number(), z.number()]), result: z.number() },
  echo: { params: z.tuple([z.string()]), result: z.string() },
});
const handlers = { add: ([a, b]: [number, number]) => a + b, echo: ([s]: [string]) => s };

winTest("TCP with TLS: the self-signed certificate trusted by the client", async () => {
  const cert = await Deno.readTextFile(repoPath("tests/fixtures/rpc_tls_cert.pem"));
  const key = await Deno.readTextFile(repoPath("tests/fixtures/rpc_tls_key.pem"));
  await using server = await RpcServer.listen(
    { transport: "tcp", port: 0, cert, key, token: "t" },
    api,
    handlers,
  );
  assert.equal(server.transport, "tcp");
  assert.equal(server.name, `127.0.0.1:${server.port}`);
  const port = server.port!;
  await using client = await RpcClient.connect(
    { transport: "tcp", port, caCerts: [cert], token: "t" },
    api,
  );
  const big = "ü".repeat(100_000);
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => client.call("add", [i, 1])),
  );
  assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(await client.call("echo", [big]), big);
  // a client that does not trust the certificate fails at connect
  await assert.rejects(
    RpcClient.connect({ transport: "tcp", port, tls: true, token: "t" }, api),
    (e: unknown) =>
      e instanceof Deno.errors.InvalidData && /^TLS with the RPC server/.test(e.message),
  );
  // a plain-TCP client gets no answer it can read as JSON-RPC
  await using plain = await RpcClient.connect({ transport: "tcp", port }, api);
  await assert.rejects(plain.call("add", [1, 2], { timeout: 5000 }));
});

winTest("TCP: a raw socket speaking newline-delimited JSON is a client", async () => {
  await using server = await RpcServer.listen(
    { transport: "tcp", port: 0, maxLineBytes: 1024 },
    api,
    handlers,
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port! });
  const lines = rawLines(conn);
  // two requests in one write, the second ending in CRLF, then a batch, then a notification
  await conn.write(encoder.encode(
    '{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}\n' +
      '{"jsonrpc":"2.0","id":"b","method":"echo","params":["日本語"]}\r\n',
  ));
  const got = [JSON.parse((await lines.next()).value!), JSON.parse((await lines.next()).value!)];
  got.sort((x, y) => String(x.id).localeCompare(String(y.id)));
  assert.deepEqual(got, [
    { jsonrpc: "2.0", id: 1, result: 5 },
    { jsonrpc: "2.0", id: "b", result: "日本語" },
  ]);
  await conn.write(encoder.encode(
    '[{"jsonrpc":"2.0","id":3,"method":"add","params":[1,1]},{"jsonrpc":"2.0","method":"add","params":[0,0]}]\n',
  ));
  assert.deepEqual(JSON.parse((await lines.next()).value!), [{ jsonrpc: "2.0", id: 3, result: 2 }]);
  await conn.write(encoder.encode("not json\n"));
  assert.deepEqual(JSON.parse((await lines.next()).value!), {
    jsonrpc: "2.0",
    id: null,
    error: { code: RpcErrorCode.ParseError, message: "Parse error" },
  });
  // a line over the server's limit ends this connection, not the server
  await conn.write(encoder.encode("[" + "1,".repeat(1000)));
  assert.equal((await lines.next()).done, true);
  conn.close();
  await using client = await RpcClient.connect({ transport: "tcp", port: server.port! }, api);
  assert.equal(await client.call("add", [40, 2]), 42);
});

winTest("TCP: bad addresses and options get clear errors", async () => {
  await assert.rejects(
    RpcClient.connect({ transport: "tcp", port: 0 }, api),
    /Invalid argument "address.port": must be at least 1/,
  );
  await assert.rejects(
    RpcServer.listen({ transport: "tcp", port: 0, cert: "x" }, api, handlers),
    /cert and key must be given together/,
  );
  await assert.rejects(
    RpcClient.connect("name", api, { transport: "tcp" }),
    /A TCP server is given by its address/,
  );
  await assert.rejects(
    RpcClient.connect({ transport: "tcp", hostname: "no-such-host.invalid", port: 7 }, api),
    /Cannot connect to the RPC server at no-such-host\.invalid:7/,
  );
});

winTest(
  "TCP: RpcClient.connect gives up on its signal while the server sits on the token",
  async () => {
    // a server that takes the connection and never answers
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const taken = silent.accept();
    const stop = new AbortController();
    const connecting = RpcClient.connect(
      { transport: "tcp", port: silent.addr.port, token: "t" },
      testApi,
      { timeout: 30_000, signal: stop.signal },
    );
    const conn = await taken;
    stop.abort(new Error("gave up"));
    await assert.rejects(connecting, (e) => e instanceof Error && e.message === "gave up");
    // the client's connection is closed once its attempt ends: the server reads the end
    const buf = new Uint8Array(256);
    while ((await conn.read(buf)) !== null);
    conn.close();
    silent.close();
  },
);
