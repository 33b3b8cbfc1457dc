import assert from "node:assert/strict";
import { repoPath, runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

for (const transport of ["pipe", "shm"] as const) {
  winTest(
    `cli: rpc serve --json (${transport}) prints a ready line and one line per call, exits 0 at --timeout`,
    async () => {
      const name = uniqueName(`cli-rpc-${transport}`);
      const server = spawnCli([
        "rpc",
        "serve",
        name,
        "--transport",
        transport,
        "--json",
        // five CLI calls follow, each a deno.exe start (about 3 s under Wine, more on a loaded
        // machine), before the server's own end at its timeout
        "--timeout",
        "40",
      ]);
      try {
        assert.deepEqual(JSON.parse(await server.line()), {
          event: "ready",
          name,
          methods: ["echo", "add", "sha256"],
        });
        const call = (method: string, params: string) =>
          runCli(["rpc", "call", name, method, params, "--transport", transport]);

        assert.deepEqual(await call("add", "[2, 3]"), { code: 0, stdout: "5\n", stderr: "" });
        assert.deepEqual(JSON.parse(await server.line()), {
          event: "call",
          method: "add",
          params: [2, 3],
        });
        const echo = await call("echo", '{"ü":[1,null],"s":"日本語"}');
        assert.deepEqual(JSON.parse(echo.stdout), { "ü": [1, null], s: "日本語" });
        assert.deepEqual(JSON.parse(await server.line()), {
          event: "call",
          method: "echo",
          params: { "ü": [1, null], s: "日本語" },
        });
        const sha = await call("sha256", '{"text":"abc"}');
        assert.equal(
          sha.stdout,
          '"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"\n',
        );
        assert.deepEqual(JSON.parse(await server.line()), {
          event: "call",
          method: "sha256",
          params: { text: "abc" },
        });
        // a call its schema refuses never reaches the handler: no line for it
        const bad = await call("add", '["x", 1]');
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /^error: Invalid params for add: /);
        assert.deepEqual(await call("add", "[40, 2]"), { code: 0, stdout: "42\n", stderr: "" });
        assert.deepEqual(JSON.parse(await server.line()), {
          event: "call",
          method: "add",
          params: [40, 2],
        });
        // every stdout line is one JSON object; the server exits 0 at --timeout
        const end = await server.finish();
        assert.deepEqual(end, { code: 0, stderr: "", rest: [] });
      } finally {
        await server[Symbol.asyncDispose]();
      }
    },
  );
}

winTest("cli: rpc serve --json fails with one error: line and no JSON", async () => {
  const name = uniqueName("cli-rpc-taken");
  await using first = spawnCli(["rpc", "serve", name, "--transport", "shm", "--timeout", "60"]);
  assert.equal(await first.errorLine(), `serving rpc "${name}" (echo, add, sha256)`);
  const taken = await runCli([
    "rpc",
    "serve",
    name,
    "--transport",
    "shm",
    "--json",
    "--timeout",
    "5",
  ]);
  assert.equal(taken.code, 1, taken.stderr);
  assert.equal(taken.stdout, "");
  assert.equal(taken.stderr.split("\n").length, 2, `one line: ${taken.stderr}`);
  assert.match(taken.stderr, /^error: /);

  const usage = await runCli(["rpc", "serve", "a\\b", "--json"]);
  assert.deepEqual(usage, {
    code: 2,
    stdout: "",
    stderr:
      'error: Invalid <name>: must not contain "\\" except after a "Global\\" or "Local\\" prefix\n',
  });
  const transport = await runCli(["rpc", "serve", name, "--transport", "tcp", "--json"]);
  assert.equal(transport.code, 2);
  assert.equal(transport.stdout, "");
  assert.equal(transport.stderr, "error: --transport tcp needs --port <n>\n");
  const unknown = await runCli(["rpc", "serve", name, "--transport", "udp", "--json"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error: .*--transport.*must be "pipe", "shm" or "tcp"/);
});

winTest(
  "cli: rpc serve --transport tcp with TLS and a token; rpc call <host:port> --transport tcp",
  async () => {
    const server = spawnCli([
      "rpc",
      "serve",
      "calc",
      "--transport",
      "tcp",
      "--port",
      "0",
      "--token",
      "s3cret",
      "--cert",
      repoPath("tests/fixtures/rpc_tls_cert.pem"),
      "--key",
      repoPath("tests/fixtures/rpc_tls_key.pem"),
      "--json",
      "--timeout",
      "30",
    ]);
    try {
      const ready = JSON.parse(await server.line());
      assert.equal(typeof ready.port, "number");
      assert.deepEqual(ready, {
        event: "ready",
        name: "calc",
        methods: ["echo", "add", "sha256"],
        address: `127.0.0.1:${ready.port}`,
        port: ready.port,
        tls: true,
      });
      const at = `127.0.0.1:${ready.port}`;
      const ca = repoPath("tests/fixtures/rpc_tls_cert.pem");
      const call = (method: string, params: string, ...more: string[]) =>
        runCli(["rpc", "call", at, method, params, "--transport", "tcp", ...more]);
      assert.deepEqual(await call("add", "[2, 3]", "--ca", ca, "--token", "s3cret"), {
        code: 0,
        stdout: "5\n",
        stderr: "",
      });
      assert.deepEqual(JSON.parse(await server.line()), {
        event: "call",
        method: "add",
        params: [2, 3],
      });
      const sha = await call("sha256", '{"text":"abc"}', "--ca", ca, "--token", "s3cret", "--json");
      assert.deepEqual(JSON.parse(sha.stdout), {
        method: "sha256",
        result: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      });
      assert.equal(JSON.parse(await server.line()).method, "sha256");
      const wrong = await call("add", "[1, 1]", "--ca", ca, "--token", "guess");
      assert.deepEqual(wrong, {
        code: 1,
        stdout: "",
        stderr: "error: The RPC server refused the token: Unauthorized: wrong token\n",
      });
      const untrusted = await call("add", "[1, 1]", "--tls", "--token", "s3cret");
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /^error: TLS with the RPC server at 127\.0\.0\.1:\d+ failed/);
    } finally {
      await server[Symbol.asyncDispose]();
    }
    const badAddress = await runCli(["rpc", "call", "calc", "add", "[1,2]", "--transport", "tcp"]);
    assert.equal(badAddress.code, 2);
    assert.match(badAddress.stderr, /^error: Invalid <name>: must be host:port/);
    const stray = await runCli(["rpc", "call", "calc", "add", "[1,2]", "--token", "x"]);
    assert.deepEqual(stray, {
      code: 2,
      stdout: "",
      stderr: "error: --token, --tls and --ca go with --transport tcp\n",
    });
  },
);

winTest(
  "cli: rpc serve --remote (pipe) serves; --remote with another transport is bad usage",
  async () => {
    const name = uniqueName("cli-rpc-remote");
    await using server = spawnCli(["rpc", "serve", name, "--remote", "--json", "--timeout", "30"]);
    assert.deepEqual(JSON.parse(await server.line()), {
      event: "ready",
      name,
      methods: ["echo", "add", "sha256"],
    });
    assert.deepEqual(await runCli(["rpc", "call", name, "add", "[20, 22]"]), {
      code: 0,
      stdout: "42\n",
      stderr: "",
    });
    for (const transport of ["shm", "tcp"]) {
      const usage = await runCli(["rpc", "serve", name, "--remote", "--transport", transport]);
      assert.equal(usage.code, 2, usage.stderr);
      assert.match(usage.stderr, /^error: .*--remote goes with --transport pipe/);
    }
  },
);
