import assert from "node:assert/strict";
import { DdeClient } from "../mechanisms/dde.ts";
import { serviceAppears } from "./_dde_helpers.ts";
import { runCli, spawnCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

winTest(
  "cli: dde poke --json and execute --json against dde serve in another process",
  async () => {
    const service = uniqueName("cli-dde-json");
    await using server = spawnCli(["dde", "serve", service, "Quotes", "--json", "--timeout", "60"]);
    await serviceAppears(service, "Quotes");

    const poke = await runCli(["dde", "poke", service, "Quotes", "EURUSD", "1.0832 £", "--json"]);
    assert.equal(poke.code, 0, poke.stderr);
    assert.equal(poke.stderr, "");
    assert.equal(poke.stdout.split("\n").length, 2, `one JSON line: ${poke.stdout}`);
    assert.deepEqual(JSON.parse(poke.stdout), {
      service,
      topic: "Quotes",
      item: "EURUSD",
      value: "1.0832 £",
    });
    assert.deepEqual(JSON.parse(await server.line()), {
      event: "poke",
      topic: "Quotes",
      item: "EURUSD",
      text: "1.0832 £",
    });
    // the poked value is what a third process reads back
    const request = await runCli(["dde", "request", service, "Quotes", "EURUSD", "--json"]);
    assert.deepEqual(JSON.parse(request.stdout), {
      service,
      topic: "Quotes",
      item: "EURUSD",
      format: "CF_TEXT",
      text: "1.0832 £",
    });

    const exec = await runCli(["dde", "execute", service, "Quotes", '[Refresh("all")]', "--json"]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stderr, "");
    assert.deepEqual(JSON.parse(exec.stdout), {
      service,
      topic: "Quotes",
      command: '[Refresh("all")]',
    });
    assert.deepEqual(JSON.parse(await server.line()), {
      event: "execute",
      topic: "Quotes",
      command: '[Refresh("all")]',
    });

    // without --json both verbs print nothing
    assert.deepEqual(await runCli(["dde", "execute", service, "Quotes", "[Quiet]"]), {
      code: 0,
      stdout: "",
      stderr: "",
    });
    assert.deepEqual(JSON.parse(await server.line()), {
      event: "execute",
      topic: "Quotes",
      command: "[Quiet]",
    });
  },
);

winTest("cli: dde poke|execute --json failures print one error: line and no JSON", async () => {
  const service = uniqueName("cli-dde-none");
  const [poke, exec] = await Promise.all([
    runCli(["dde", "poke", service, "T", "item", "v", "--json"]),
    runCli(["dde", "execute", service, "T", "[Go]", "--json"]),
  ]);
  for (const result of [poke, exec]) {
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      new RegExp(
        `^error: Cannot connect to DDE service "${service}" topic "T": DdeConnect failed with DMLERR_NO_CONV_ESTABLISHED[^\\n]*\\n$`,
      ),
    );
  }
  const usage = await runCli(["dde", "execute", service, "T", "", "--json"]);
  assert.deepEqual(usage, {
    code: 2,
    stdout: "",
    stderr: "error: Invalid <command>: must not be empty\n",
  });
});

winTest(
  "cli: dde advise --count [--json] prints a ready line, then one line per hot update, in order",
  async () => {
    const service = uniqueName("cli-dde-advise");
    await using server = spawnFixture("dde_peer.ts", ["serve", service, "Feed"]);
    assert.equal(await server.line(), "ready");
    await serviceAppears(service, "Feed");
    // One advising client at a time: under Wine, with two hot links on one item, updates posted
    // back to back were lost (3 posted: one client got 2, the other 1).
    await using json = spawnCli([
      "dde",
      "advise",
      service,
      "Feed",
      "Price",
      "--count",
      "5",
      "--json",
      "--timeout",
      "60",
    ]);
    assert.deepEqual(JSON.parse(await json.line()), {
      event: "ready",
      service,
      topic: "Feed",
      item: "Price",
    });
    const exec = await runCli(["dde", "execute", service, "Feed", "advise Price 5"]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.deepEqual(JSON.parse(await server.line()), { execute: "advise Price 5" });
    const jsonEnd = await json.finish();
    assert.equal(jsonEnd.code, 0, jsonEnd.stderr);
    assert.deepEqual(
      // DDE names are atoms, case-insensitive: an update names its item in whatever spelling the
      // session's atom table holds (the first one registered), so compare without case
      jsonEnd.rest.map((line) => JSON.parse(line)).map((l) => ({
        ...l,
        item: l.item.toLowerCase(),
      })),
      Array.from({ length: 5 }, (_, i) => ({
        event: "update",
        topic: "Feed",
        item: "price",
        text: `v${i}`,
      })),
    );
    assert.deepEqual(JSON.parse(await server.line()), { advised: 5 });

    // The first advise process has ended: the server must go on advising the next client even
    // if a post to the first one's window fails (DMLERR_POSTMSG_FAILED).
    await using text = spawnCli([
      "dde",
      "advise",
      service,
      "Feed",
      "Price",
      "--count",
      "3",
      "--timeout",
      "60",
    ]);
    assert.equal(await text.errorLine(), `advising ${service}|Feed!Price`);
    const again = await runCli(["dde", "execute", service, "Feed", "advise Price 3"]);
    assert.equal(again.code, 0, again.stderr);
    const textEnd = await text.finish();
    assert.equal(textEnd.code, 0, textEnd.stderr);
    assert.deepEqual(textEnd.rest, ["v0", "v1", "v2"]);
  },
);

winTest("cli: dde advise usage errors exit 2; --timeout with no updates exits 0", async () => {
  const usage = await runCli(["dde", "advise", "svc", "Feed", "Price", "--count", "0"]);
  assert.equal(usage.code, 2);
  assert.equal(usage.stdout, "");
  assert.match(usage.stderr, /^error: .*--count/);
  const empty = await runCli(["dde", "advise", "svc", "Feed", "", "--json"]);
  assert.deepEqual(empty, {
    code: 2,
    stdout: "",
    stderr: "error: Invalid <item>: must not be empty\n",
  });
  const service = uniqueName("cli-dde-quiet");
  await using server = spawnFixture("dde_peer.ts", ["serve", service, "Feed"]);
  assert.equal(await server.line(), "ready");
  await serviceAppears(service, "Feed");
  // --timeout counts from the start, connecting included; the ready line comes only if the loop
  // started before it (a fresh run on a busy machine took over 2 s to get there)
  const quiet = await runCli([
    "dde",
    "advise",
    service,
    "Feed",
    "Price",
    "--timeout",
    "8",
    "--json",
  ]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.deepEqual(quiet.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
    { event: "ready", service, topic: "Feed", item: "Price" },
  ]);
});

winTest(
  "dde services: a server in another process is listed with its topics and System; its System topic answers Topics",
  async () => {
    const service = uniqueName("cli-dde-list");
    await using server = spawnFixture("dde_peer.ts", ["serve", service, "Feed"]);
    assert.equal(await server.line(), "ready");
    await serviceAppears(service, "Feed");
    const json = await runCli(["dde", "services", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const pairs = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const ours = pairs.filter((p) => p.service === service).map((p) => p.topic).sort();
    assert.deepEqual(ours, ["Feed", "System"]);
    const text = await runCli(["dde", "services"]);
    assert.equal(text.code, 0, text.stderr);
    assert.ok(text.stdout.split("\n").includes(`${service}|Feed`), text.stdout);
    // the library call, on a thread of its own
    const listed = await DdeClient.services({ timeout: 5000 });
    assert.ok(listed.some((p) => p.service === service && p.topic === "Feed"));
    const topics = await runCli(["dde", "request", service, "System", "Topics"]);
    assert.deepEqual(topics, { code: 0, stdout: "Feed\tSystem\n", stderr: "" });
    const bad = await runCli(["dde", "services", "--timeout", "0"]);
    assert.equal(bad.code, 2);
  },
);
