import assert from "node:assert/strict";
import {
  ComError,
  type ComValue,
  createObject,
  onEvent,
  registerClass,
} from "../mechanisms/com.ts";
import { pump } from "../mechanisms/_pump.ts";
import { idleCpuShare, runCli, spawnCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

// ---- platform-independent ----

Deno.test("registerClass() rejects a bad ProgID, CLSID or option first", () => {
  const create = () => ({});
  const clsid = "{8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}";
  assert.throws(() => registerClass({ progId: "NoDot", clsid, create }), /options.progId/);
  assert.throws(
    () => registerClass({ progId: "A.B", clsid: "8F0B6C1E", create }),
    /must be a CLSID/,
  );
  assert.throws(
    () => registerClass({ progId: "A.B", clsid: "{not-a-clsid-at-all-0000000000000000}", create }),
    /must be a CLSID/,
  );
  assert.throws(
    () => registerClass({ progId: "A.B", clsid, create: 1 as unknown as () => object }),
    /must be a function/,
  );
  assert.throws(
    () => registerClass({ progId: "A.B", clsid, create, events: ["bad name"] }),
    /Invalid argument "events/,
  );
});

// ---- across processes ----

function newClsid(): string {
  return `{${crypto.randomUUID().toUpperCase()}}`;
}

/** `reg.exe` (Wine's or Windows'), for checking and, under Wine, mapping a ProgID in HKLM. */
function reg(...args: string[]): { code: number; stdout: string } {
  const out = new Deno.Command("reg", { args, stdout: "piped", stderr: "null" }).outputSync();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

const isWine = (() => {
  try {
    return reg("query", "HKCU\\Software\\Wine").code === 0;
  } catch {
    return false;
  }
})();

/**
 * Wine resolves ProgIDs only under HKLM\Software\Classes (it does not merge
 * HKCU\Software\Classes into HKEY_CLASSES_ROOT, as Windows does), so under Wine the test maps
 * the ProgID there too; on Windows the per-user keys alone are found.
 */
function mapProgIdForWine(progId: string, clsid: string): () => void {
  if (!isWine) return () => {};
  const key = `HKLM\\Software\\Classes\\${progId}`;
  assert.equal(reg("add", `${key}\\CLSID`, "/ve", "/d", clsid, "/f").code, 0);
  return () => void reg("delete", key, "/f");
}

winTest("registerClass: another process creates the object by CLSID and ProgID", async () => {
  const progId = `Winipc.T${uniqueName("c").replace(/\W/g, "").slice(-20)}`;
  const clsid = newClsid();
  await using server = spawnFixture("com_class_server.ts", [progId, clsid, "register"]);
  await server.expect("ready");
  // The per-user registration is in place while the class is registered.
  const perUser = reg("query", `HKCU\\Software\\Classes\\CLSID\\${clsid}\\LocalServer32`);
  assert.equal(perUser.code, 0);
  assert.match(perUser.stdout, /deno/i, "LocalServer32 names the running program");
  assert.match(
    reg("query", `HKCU\\Software\\Classes\\${progId}\\CLSID`).stdout,
    new RegExp(clsid.slice(1, 9)),
  );

  using byClsid = createObject(clsid, { context: "local" });
  assert.equal(byClsid.add(2, 3), 5);
  const unmap = mapProgIdForWine(progId, clsid);
  try {
    using byProgId = createObject(progId);
    assert.equal(byProgId.echo("é ✓"), "é ✓");
    const ticks: ComValue[] = [];
    using _ticks = onEvent(byProgId, "Tick", (i) => ticks.push(i));
    byProgId.startTicks(3);
    const deadline = performance.now() + 15_000;
    while (ticks.length < 3 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(ticks, [1, 2, 3]);
    assert.throws(() => onEvent(byProgId, "Tock", () => {}), /has no event "Tock"/);
    assert.equal(byProgId.stop(), 2, "two objects were created");
  } finally {
    unmap();
  }
  assert.equal(await server.expect("stopped *"), "stopped 2");
  assert.equal((await server.finish()).code, 0);
  // unregister() removed every key it added.
  assert.notEqual(reg("query", `HKCU\\Software\\Classes\\CLSID\\${clsid}`).code, 0);
  assert.notEqual(reg("query", `HKCU\\Software\\Classes\\${progId}`).code, 0);
  // And the class is gone: a new CreateObject by CLSID fails (nothing registered to start).
  assert.throws(() => createObject(clsid, { context: "local" }), (e: unknown) => {
    assert.ok(e instanceof ComError);
    return true;
  });
});

winTest(
  "a registered class lives on the COM thread: no main-thread pump, idle without CPU",
  async () => {
    const progId = `Winipc.L${uniqueName("c").replace(/\W/g, "").slice(-20)}`;
    const clsid = newClsid();
    let created = 0;
    const registration = registerClass({
      progId,
      clsid,
      create: () => {
        created++;
        return { add: (a: number, b: number) => a + b };
      },
    });
    try {
      assert.equal(pump.attached, 0, "a class registration attaches no main-thread pump");
      // This process activates its own class (as another would: CLSCTX_LOCAL_SERVER).
      using local = createObject(clsid, { context: "local" });
      assert.equal(local.add(40, 2), 42);
      assert.equal(created, 1);
      await new Promise((r) => setTimeout(r, 300));
      const share = await idleCpuShare();
      assert.ok(share < 0.05, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);
      assert.equal(local.add(1, 2), 3, "calls go on after idling");
    } finally {
      registration.unregister();
    }
    assert.throws(() => createObject(clsid, { context: "local" }), ComError);
  },
);

winTest(
  "a COM client winipc did not write: cscript's CreateObject calls the TS server",
  async () => {
    const progId = `Winipc.V${uniqueName("s").replace(/\W/g, "").slice(-20)}`;
    const clsid = newClsid();
    await using server = spawnFixture("com_class_server.ts", [progId, clsid, "register"]);
    await server.expect("ready");
    const unmap = mapProgIdForWine(progId, clsid);
    const dir = await Deno.makeTempDir();
    try {
      const script = `${dir}\\client.vbs`;
      await Deno.writeTextFile(
        script,
        [
          `Set o = CreateObject("${progId}")`,
          `WScript.Echo o.add(40, 2)`,
          `WScript.Echo o.echo("from vbscript")`,
          `WScript.Echo o.stop()`,
        ].join("\r\n"),
      );
      const out = await new Deno.Command("cscript.exe", {
        args: ["//nologo", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const lines = new TextDecoder().decode(out.stdout).trim().split(/\r?\n/);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.deepEqual(lines, ["42", "from vbscript", "1"]);
    } finally {
      unmap();
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(await server.expect("stopped *"), "stopped 1");
  },
);

winTest(
  "CLI: com serve registers a demo class; com call and events reach it; exit unregisters",
  async () => {
    const progId = `Winipc.C${uniqueName("s").replace(/\W/g, "").slice(-20)}`;
    await using serve = spawnCli(["com", "serve", progId, "--json", "--timeout", "20"]);
    const ready = JSON.parse(await serve.line(60_000));
    assert.equal(ready.event, "ready");
    assert.equal(ready.progid, progId);
    assert.match(ready.clsid, /^\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}$/);
    assert.equal(reg("query", `HKCU\\Software\\Classes\\${progId}\\CLSID`).code, 0);
    const unmap = mapProgIdForWine(progId, ready.clsid);
    try {
      const add = await runCli(["com", "call", progId, "add", "2", "3"]);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(add.stdout, "5\n");
      assert.deepEqual(JSON.parse(await serve.line()), {
        event: "call",
        method: "add",
        args: [2, 3],
      });
      using demo = createObject(progId);
      assert.equal(demo.echo("hi"), "hi");
      assert.deepEqual(JSON.parse(await serve.line()), {
        event: "call",
        method: "echo",
        args: ["hi"],
      });
      const ticks: ComValue[] = [];
      using _ticks = demo.$on("Tick", (i: ComValue) => ticks.push(i));
      demo.startTicks(3);
      const deadline = performance.now() + 15_000;
      while (ticks.length < 3 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(ticks, [1, 2, 3]);
      assert.throws(() => demo.startTicks(-1), /n must be an integer/);
    } finally {
      unmap();
    }
    const end = await serve.finish();
    assert.equal(end.code, 0, end.stderr);
    assert.notEqual(reg("query", `HKCU\\Software\\Classes\\${progId}`).code, 0, "keys removed");
    assert.notEqual(reg("query", `HKCU\\Software\\Classes\\CLSID\\${ready.clsid}`).code, 0);
    const usage = await runCli(["com", "serve", "NoDot"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^error: Invalid <progid>/m);
    const unknown = await runCli(["com", "call", `${progId}.Gone`, "add", "1", "2"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: Cannot find COM class .*CO_E_CLASSSTRING/m);
  },
);
