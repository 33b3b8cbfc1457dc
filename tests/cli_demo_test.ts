import assert from "node:assert/strict";
import { runCli, winTest } from "./_helpers.ts";

// tools/test.ts provides a socat pty pair as two COM ports; the demo's serial row uses it.
const comA = Deno.env.get("WINIPC_TEST_COM_A");
const comB = Deno.env.get("WINIPC_TEST_COM_B");

winTest("winipc demo runs every mechanism against a second process", async () => {
  const env: Record<string, string> = comA && comB ? { WINIPC_DEMO_COM: `${comA},${comB}` } : {};
  const demo = await runCli(["demo", "--json"], { env });
  assert.equal(demo.code, 0, demo.stderr);
  const rows = demo.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const mechanisms = rows.map((r) => r.mechanism);
  const all = ["shm", "pipe", "mailslot", "copydata", "clipboard", "dde", "socket", "http"];
  for (const m of [...all, "serial", "com", "rpc", "msrpc"]) {
    assert.ok(mechanisms.includes(m), `${m} is in the demo`);
  }
  for (const row of rows) {
    if (row.result === "skipped") {
      assert.equal(row.mechanism, "serial", "only the serial row may be skipped (no port pair)");
      assert.ok(!(comA && comB), "the serial row runs when the tests have a port pair");
      continue;
    }
    assert.equal(row.result, "ok", `${row.mechanism}: ${row.received}`);
    assert.equal(row.received, `echo:${row.sent}`);
    assert.ok(row.ms > 0);
  }
});

winTest("winipc demo prints a table", async () => {
  const demo = await runCli(["demo"]);
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /mechanism.*sent.*came back.*first exchange.*result/);
  assert.match(demo.stdout, /For warm round trips: winipc bench\n$/);
  assert.match(
    demo.stdout,
    /│ shm +│ hello from \d+ over shm +│ echo:hello from \d+ over shm +│ [\d.]+ ms +│ ok +│/,
  );
});
