/**
 * WinINet transfers against a Deno.serve server in another process (tests/fixtures/http_server.ts,
 * a native Rust/tokio HTTP server on 127.0.0.1).
 */
import assert from "node:assert/strict";
import { Win32Error } from "../ffi/error.ts";
import { download, downloadFile, HttpStatusError, upload } from "../mechanisms/http.ts";
import { type Fixture, runCli, spawnFixture, winTest } from "./_helpers.ts";
import { assertRejects, randomBytes, sha256 } from "./_net_helpers.ts";

interface Server {
  fixture: Fixture;
  base: string;
  tlsBase: string;
  bigSize: number;
  bigSha256: string;
}

async function startServer(): Promise<Server> {
  const fixture = spawnFixture("http_server.ts");
  const ready = JSON.parse(await fixture.line());
  return {
    fixture,
    base: `http://127.0.0.1:${ready.port}`,
    tlsBase: `https://127.0.0.1:${ready.tlsPort}`,
    bigSize: ready.bigSize,
    bigSha256: ready.bigSha256,
  };
}

/** A port nobody listens on: take a free one and release it. */
function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

async function namesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

winTest("http: download 20 MiB to a file, sha256 identical, progress to the end", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const dir = await Deno.makeTempDir({ prefix: "winipc-http-" });
  try {
    const path = `${dir}/big.bin`;
    const seen: { loaded: number; total?: number }[] = [];
    const result = await downloadFile(`${server.base}/big`, path, {
      onProgress: (p) => seen.push(p),
    });
    assert.equal(result.status, 200);
    assert.equal(result.statusText, "OK");
    assert.equal(result.bytes, server.bigSize);
    assert.equal(result.contentLength, server.bigSize);
    assert.equal(result.headers.get("content-type"), "application/octet-stream");
    assert.equal(await sha256(await Deno.readFile(path)), server.bigSha256);
    assert.ok(seen.length > 1);
    assert.deepEqual(seen.at(-1), { loaded: server.bigSize, total: server.bigSize });
    assert.deepEqual(await namesIn(dir), ["big.bin"]); // no temporary file left
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest("http: a redirect is followed; status, headers and final URL exposed", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const r = await download(`${server.base}/redirect`);
  assert.equal(r.status, 200);
  assert.equal(r.url, `${server.base}/small`);
  assert.equal(r.headers.get("x-test"), "yes");
  assert.equal(r.contentLength, 5);
  assert.equal(await new Response(r.body).text(), "hello");
  await r.finished;
});

winTest("http: upload 20 MiB with PUT and POST, the server sees identical bytes", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const dir = await Deno.makeTempDir({ prefix: "winipc-http-" });
  try {
    const data = randomBytes(20 * 1024 * 1024);
    const path = `${dir}/up.bin`;
    await Deno.writeFile(path, data);
    let last: { loaded: number; total?: number } = { loaded: 0 };
    const put = await upload(`${server.base}/upload`, path, { onProgress: (p) => last = p });
    assert.equal(put.status, 200);
    assert.equal(put.bytes, data.length);
    const seen = JSON.parse(put.body);
    assert.equal(seen.method, "PUT");
    assert.equal(seen.bytes, data.length);
    assert.equal(seen.contentLength, String(data.length));
    assert.equal(seen.contentType, "application/octet-stream");
    assert.equal(seen.sha256, await sha256(data));
    assert.deepEqual(last, { loaded: data.length, total: data.length });

    const small = `${dir}/small.txt`;
    await Deno.writeTextFile(small, "posted ✓");
    const post = await upload(`${server.base}/upload`, small, {
      method: "POST",
      contentType: "text/plain; charset=utf-8",
    });
    const seenPost = JSON.parse(post.body);
    assert.equal(seenPost.method, "POST");
    assert.equal(seenPost.contentType, "text/plain; charset=utf-8");
    assert.equal(seenPost.sha256, await sha256(new TextEncoder().encode("posted ✓")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest("http: 404 and 500 are errors with the status, and no file is written", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const dir = await Deno.makeTempDir({ prefix: "winipc-http-" });
  try {
    const e404 = await assertRejects(
      () => downloadFile(`${server.base}/nothing-here`, `${dir}/x.bin`),
      HttpStatusError,
      "HTTP 404 Not Found",
    );
    assert.equal(e404.status, 404);
    assert.equal(e404.url, `${server.base}/nothing-here`);
    const e500 = await assertRejects(() => download(`${server.base}/status/500`), HttpStatusError);
    assert.equal(e500.status, 500);
    assert.deepEqual(await namesIn(dir), []);
    // allowErrorStatus returns the response instead
    const r = await download(`${server.base}/status/503`, { allowErrorStatus: true });
    assert.equal(r.status, 503);
    assert.equal(await new Response(r.body).text(), "status 503");
    // an upload answered with an error status
    await Deno.writeTextFile(`${dir}/a.txt`, "a");
    const eUp = await assertRejects(
      () => upload(`${server.base}/status/404`, `${dir}/a.txt`),
      HttpStatusError,
    );
    assert.equal(eUp.status, 404);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest("http: an aborted download leaves no file under the final name", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const dir = await Deno.makeTempDir({ prefix: "winipc-http-" });
  try {
    const controller = new AbortController();
    const reason = new Error("stopped by the test");
    await assertRejects(
      () =>
        downloadFile(`${server.base}/slow`, `${dir}/slow.bin`, {
          signal: controller.signal,
          onProgress: ({ loaded }) => {
            if (loaded >= 1024 * 1024) controller.abort(reason);
          },
        }),
      Error,
      "stopped by the test",
    );
    assert.deepEqual(await namesIn(dir), []);
    // an existing file under the final name is left as it was
    await Deno.writeTextFile(`${dir}/keep.bin`, "old");
    const again = new AbortController();
    setTimeout(() => again.abort(reason), 300);
    await assertRejects(
      () => downloadFile(`${server.base}/slow`, `${dir}/keep.bin`, { signal: again.signal }),
      Error,
      "stopped by the test",
    );
    assert.deepEqual(await namesIn(dir), ["keep.bin"]);
    assert.equal(await Deno.readTextFile(`${dir}/keep.bin`), "old");
    // an abort while WinINet waits for headers that never come rejects at once, not at the
    // (here 5 s) timeout; the transfer thread ends by itself at the timeout
    const hang = new AbortController();
    setTimeout(() => hang.abort(reason), 300);
    const started = performance.now();
    await assertRejects(
      () => download(`${server.base}/hang`, { signal: hang.signal, timeout: 5000 }),
      Error,
      "stopped by the test",
    );
    assert.ok(performance.now() - started < 4000, "the abort waited for the timeout");
    await new Promise((r) => setTimeout(r, 5500)); // let the transfer thread end
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest(
  "http: a refused port, an unknown host, a timeout and bad input give clear errors",
  async () => {
    const refused = await assertRejects(
      () => download(`http://127.0.0.1:${freePort()}/`),
      Win32Error,
      "Cannot GET http://127.0.0.1:",
    );
    assert.equal(refused.codeName, "ERROR_INTERNET_CANNOT_CONNECT");
    const unknown = await assertRejects(
      () => download("http://no-such-host.invalid/file"),
      Win32Error,
    );
    assert.equal(unknown.codeName, "ERROR_INTERNET_NAME_NOT_RESOLVED");

    await assertRejects(() => download("not a url"), TypeError, 'Invalid argument "url"');
    await assertRejects(() => download("ftp://127.0.0.1/x"), TypeError, "http or https");
    await assertRejects(() => downloadFile("http://127.0.0.1/x", ""), RangeError, '"path"');
    await assertRejects(
      () => download("http://127.0.0.1/x", { timeout: 0 }),
      RangeError,
      "options.timeout",
    );
    await assertRejects(
      () => download("http://127.0.0.1/x", { headers: { "bad name": "v" } }),
      TypeError,
      "options.headers",
    );
    await assertRejects(
      () => upload("http://127.0.0.1/x", "no/such/file.bin"),
      Deno.errors.NotFound,
      "no such file",
    );

    const server = await startServer();
    await using _ = server.fixture;
    const timedOut = await assertRejects(
      () => download(`${server.base}/hang`, { timeout: 1000 }),
      Win32Error,
    );
    // Windows reports ERROR_INTERNET_TIMEOUT; Wine 10's WinINet reports the receive timeout as
    // ERROR_INTERNET_CONNECTION_ABORTED. Either way the call ended long before /hang answers (120 s).
    assert.ok(
      ["ERROR_INTERNET_TIMEOUT", "ERROR_INTERNET_CONNECTION_ABORTED"].includes(timedOut.codeName),
      timedOut.message,
    );
  },
);

winTest("CLI: http get and put, --json, error lines and exit codes", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  const dir = await Deno.makeTempDir({ prefix: "winipc-http-" });
  try {
    const small = await runCli(["http", "get", `${server.base}/redirect`]);
    assert.deepEqual(small, { code: 0, stdout: "hello", stderr: "" });
    const tls = await runCli(["http", "get", `${server.tlsBase}/small`, "--insecure"]);
    assert.deepEqual(tls, { code: 0, stdout: "hello", stderr: "" });

    const out = `${dir}/big.bin`;
    const got = await runCli(["http", "get", `${server.base}/big`, "--output", out, "--json"]);
    assert.equal(got.code, 0, got.stderr);
    const line = JSON.parse(got.stdout);
    assert.equal(line.status, 200);
    assert.equal(line.bytes, server.bigSize);
    assert.equal(await sha256(await Deno.readFile(out)), server.bigSha256);

    const put = await runCli(["http", "put", `${server.base}/upload`, out, "--json"]);
    assert.equal(put.code, 0, put.stderr);
    const putLine = JSON.parse(put.stdout);
    assert.equal(putLine.status, 200);
    assert.equal(JSON.parse(putLine.body).sha256, server.bigSha256);

    const missing = await runCli(["http", "get", `${server.base}/nope`, "--output", `${dir}/n`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: GET .*\/nope failed with HTTP 404 Not Found$/m);
    assert.equal(missing.stdout, "");
    assert.deepEqual(await namesIn(dir), ["big.bin"]);

    const refused = await runCli(["http", "get", `http://127.0.0.1:${freePort()}/`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: .*ERROR_INTERNET_CANNOT_CONNECT/m);

    const bad = await runCli(["http", "get", "::not a url"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: Invalid <url>: must be an absolute URL/m);
    const noFile = await runCli(["http", "put", `${server.base}/upload`, `${dir}/absent.bin`]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /^error: Cannot upload .*absent\.bin": no such file/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

winTest("http: HTTPS through WinINet's TLS; an unknown CA is refused unless insecure", async () => {
  const server = await startServer();
  await using _ = server.fixture;
  // the fixture's certificate is self-signed, so WinINet refuses it by default
  const refused = await assertRejects(() => download(`${server.tlsBase}/small`), Win32Error);
  assert.equal(refused.codeName, "ERROR_INTERNET_INVALID_CA");
  const r = await download(`${server.tlsBase}/redirect`, { insecure: true });
  assert.equal(r.status, 200);
  assert.equal(r.url, `${server.tlsBase}/small`);
  assert.equal(await new Response(r.body).text(), "hello");
  const dir = await Deno.makeTempDir({ prefix: "winipc-https-" });
  try {
    const result = await downloadFile(`${server.tlsBase}/big`, `${dir}/big.bin`, {
      insecure: true,
    });
    assert.equal(result.bytes, server.bigSize);
    assert.equal(await sha256(await Deno.readFile(`${dir}/big.bin`)), server.bigSha256);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
