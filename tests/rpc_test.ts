import assert from "node:assert/strict";
import { RpcClient, RpcError, RpcErrorCode, RpcServer } from "../mod.ts";
import { testApi } from "./fixtures/rpc_api.ts";
import { runCli, spawnCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

for (const transport of ["pipe", "shm"] as const) {
  winTest(
    `1,000 concurrent calls from 4 client processes over ${transport}, every result checked`,
    async () => {
      const name = uniqueName(`rpc-load-${transport}`);
      await using server = spawnFixture("rpc_peer.ts", ["serve", name, transport]);
      assert.equal(await server.line(), "ready");
      const clients = [0, 1, 2, 3].map(() =>
        spawnFixture("rpc_peer.ts", ["calls", name, "250", transport])
      );
      for (const client of clients) {
        assert.equal(await client.line(60_000), "ok 250");
        assert.equal((await client.finish()).code, 0);
      }
    },
  );
}

winTest("schemas are checked on both sides, errors carry their codes across", async () => {
  const name = uniqueName("rpc-errors");
  await using server = spawnFixture("rpc_peer.ts", ["serve", name]);
  assert.equal(await server.line(), "ready");
  await using client = await RpcClient.connect(name, testApi);
  assert.equal(await client.call("add", { a: 2, b: 40 }), 42);
  // the caller's side refuses bad params before sending
  await assert.rejects(
    client.call("add", { a: 2, b: "x" } as unknown as { a: number; b: number }),
    (e: unknown) =>
      e instanceof RpcError && e.code === RpcErrorCode.InvalidParams &&
      /^Invalid params for add: b: /.test(e.message),
  );
  // the server's side refuses them too (sent without a schema)
  await assert.rejects(
    client.callUnchecked("add", { a: "2" }),
    (e: unknown) => e instanceof RpcError && e.code === RpcErrorCode.InvalidParams,
  );
  await assert.rejects(
    client.callUnchecked("nope", []),
    (e: unknown) =>
      e instanceof RpcError && e.code === RpcErrorCode.MethodNotFound && /nope/.test(e.message),
  );
  await assert.rejects(client.call("fail", []), (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, 4711);
    assert.equal(e.message, "Out of stock");
    assert.deepEqual(e.data, { sku: "A-1" });
    return true;
  });
  await assert.rejects(
    client.call("wrongResult", []),
    (e: unknown) => e instanceof RpcError && e.code === RpcErrorCode.InvalidResult,
  );
});

winTest("timeouts and cancellation reach the server's handler", async () => {
  const name = uniqueName("rpc-cancel");
  await using server = spawnFixture("rpc_peer.ts", ["serve", name]);
  assert.equal(await server.line(), "ready");
  await using client = await RpcClient.connect(name, testApi);
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
  assert.equal(await client.call("slow", { ms: 10 }), "done");
});

winTest("a server that dies mid-call: the caller gets an error, not a hang", async () => {
  const name = uniqueName("rpc-die");
  const server = spawnFixture("rpc_peer.ts", ["serve", name]);
  assert.equal(await server.line(), "ready");
  await using client = await RpcClient.connect(name, testApi);
  const slow = client.call("slow", { ms: 20_000 });
  await assert.rejects(client.call("die", []), Deno.errors.ConnectionReset);
  await assert.rejects(slow, Deno.errors.ConnectionReset);
  assert.equal((await server.finish()).code, 3);
  await assert.rejects(client.call("add", { a: 1, b: 1 }), Deno.errors.ConnectionReset);
});

winTest("winipc rpc serve|call, as a user runs them", async () => {
  const name = uniqueName("rpc-cli");
  await using server = spawnCli(["rpc", "serve", name, "--timeout", "60"]);
  assert.equal(await server.errorLine(), `serving rpc "${name}" (echo, add, sha256)`);
  const add = await runCli(["rpc", "call", name, "add", "[2, 3]"]);
  assert.deepEqual(add, { code: 0, stdout: "5\n", stderr: "" });
  assert.equal(await server.line(), "add [2,3]");
  const sha = await runCli(["rpc", "call", name, "sha256", '{"text":"abc"}', "--json"]);
  assert.deepEqual(JSON.parse(sha.stdout), {
    method: "sha256",
    result: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  });
  const echo = await runCli(["rpc", "call", name, "echo", '{"ü":[1,null]}']);
  assert.equal(echo.stdout, '{"ü":[1,null]}\n');
  const bad = await runCli(["rpc", "call", name, "add", '["x", 1]']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: Invalid params for add: /);
  const usage = await runCli(["rpc", "call", name, "add", "{not json"]);
  assert.equal(usage.code, 2);
  assert.equal(usage.stderr, "error: Invalid [json-params]: must be JSON\n");
  const scalar = await runCli(["rpc", "call", name, "add", "5"]);
  assert.equal(scalar.code, 2);
  assert.match(scalar.stderr, /must be a JSON array or object/);
  const missing = await runCli([
    "rpc",
    "call",
    uniqueName("nobody"),
    "add",
    "[1,2]",
    "--timeout",
    "1",
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*pipe/i);
  const shmServer = spawnCli([
    "rpc",
    "serve",
    `${name}-shm`,
    "--transport",
    "shm",
    "--timeout",
    "60",
  ]);
  assert.equal(await shmServer.errorLine(), `serving rpc "${name}-shm" (echo, add, sha256)`);
  const overShm = await runCli([
    "rpc",
    "call",
    `${name}-shm`,
    "add",
    "[20, 22]",
    "--transport",
    "shm",
  ]);
  assert.deepEqual(overShm, { code: 0, stdout: "42\n", stderr: "" });
  await shmServer[Symbol.asyncDispose]();
  const badTransport = await runCli(["rpc", "call", name, "add", "[1,2]", "--transport", "tcp"]);
  assert.equal(badTransport.code, 2);
});

winTest(
  "rejectRemoteClients: false serves pipe clients; it is refused with another transport",
  async () => {
    const name = uniqueName("rpc-remote");
    await using _server = await RpcServer.listen(name, testApi, {
      add: ({ a, b }: { a: number; b: number }) => a + b,
      upper: ([s]: [string]) => s.toUpperCase(),
    } as never, { rejectRemoteClients: false });
    await using client = spawnFixture("rpc_peer.ts", ["calls", name, "20", "pipe"]);
    assert.equal(await client.line(60_000), "ok 20");
    await assert.rejects(
      RpcServer.listen(uniqueName("rpc-remote-shm"), testApi, {} as never, {
        transport: "shm",
        rejectRemoteClients: false,
      }),
      { name: "TypeError", message: /rejectRemoteClients/ },
    );
    await assert.rejects(
      RpcServer.listen({ transport: "tcp", port: 0 }, testApi, {} as never, {
        rejectRemoteClients: true,
      }),
      { name: "TypeError", message: /rejectRemoteClients/ },
    );
  },
);

winTest("RpcClient.connect gives up on its signal, over a pipe that is not there yet", async () => {
  const stop = new AbortController();
  const connecting = RpcClient.connect(uniqueName("rpc-none"), testApi, {
    timeout: 30_000,
    signal: stop.signal,
  });
  setTimeout(() => stop.abort(new Error("gave up")), 100);
  await assert.rejects(connecting, (e) => e instanceof Error && e.message === "gave up");
  await assert.rejects(
    RpcClient.connect(uniqueName("rpc-none"), testApi, { signal: AbortSignal.abort() }),
    (e) => e instanceof DOMException && e.name === "AbortError",
  );
});
