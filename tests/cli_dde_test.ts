import assert from "node:assert/strict";
import { serviceAppears } from "./_dde_helpers.ts";
import { runCli, spawnCli, uniqueName, winTest } from "./_helpers.ts";

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
