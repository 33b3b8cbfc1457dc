import assert from "node:assert/strict";
import { formatGuid, guid, IID_IDispatch, vcall } from "../ffi/ole32.ts";
import {
  DISPPARAMS,
  EXCEPINFO,
  oleaut32,
  SYSTEMTIME,
  VT_BSTR,
  VT_CY,
  VT_DECIMAL,
} from "../ffi/oleaut32.ts";
import {
  clearVariant,
  ComError,
  type ComObject,
  createObject,
  fromOleDate,
  fromVariant,
  getObject,
  hresultName,
  serveObject,
  setProxyBlanket,
  systemTimeToVariantTime,
  toOleDate,
  toVariant,
  variantTimeToSystemTime,
} from "../mechanisms/com.ts";
import { pump } from "../mechanisms/_pump.ts";
import { idleCpuShare, runCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

// ---- platform-independent ----

Deno.test("guid() and formatGuid() round-trip the registry form", () => {
  const bytes = guid("{00020400-0000-0000-C000-000000000046}");
  assert.deepEqual([...bytes], [0, 4, 2, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]);
  assert.deepEqual(bytes, IID_IDispatch);
  assert.equal(
    formatGuid(guid("ee09b103-97e0-11cf-978f-00a02463e06f")),
    "{EE09B103-97E0-11CF-978F-00A02463E06F}",
  );
  assert.throws(() => guid("not-a-guid"), TypeError);
});

Deno.test("hresultName() names COM, dispatch and HRESULT_FROM_WIN32 codes", () => {
  assert.equal(hresultName(0x800401f3), "CO_E_CLASSSTRING");
  assert.equal(hresultName(0x80020006 | 0), "DISP_E_UNKNOWNNAME");
  assert.equal(hresultName(0x80070002), "HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)");
  assert.equal(hresultName(0x8badf00d), "HRESULT_0x8BADF00D");
  const e = new ComError("IDispatch::Invoke", 0x80020009 | 0, {
    context: '"x" failed on y',
    source: "RangeError",
    description: "bad",
  });
  assert.equal(
    e.message,
    '"x" failed on y: IDispatch::Invoke failed with DISP_E_EXCEPTION (0x80020009): RangeError: bad',
  );
  assert.equal(e.hresult, 0x80020009);
});

Deno.test("OLE dates convert both ways, before and after 1899-12-30", () => {
  assert.equal(toOleDate(Date.UTC(2000, 0, 1, 12)), 36526.5);
  assert.equal(toOleDate(Date.UTC(1899, 11, 30)), 0);
  // Before the epoch the whole part counts back and the fraction still counts forward.
  assert.equal(toOleDate(Date.UTC(1899, 11, 29, 6)), -1.25);
  assert.equal(fromOleDate(-1.25), Date.UTC(1899, 11, 29, 6));
  for (const ms of [0, 1, 1_600_000_000_123, -2_300_000_000_000, Date.UTC(1800, 5, 6, 7, 8, 9)]) {
    assert.equal(fromOleDate(toOleDate(ms)), ms, new Date(ms).toISOString());
  }
});

Deno.test("DISPPARAMS, EXCEPINFO and SYSTEMTIME have their x64 sizes", () => {
  assert.equal(DISPPARAMS.size, 24);
  assert.equal(EXCEPINFO.size, 64);
  assert.equal(EXCEPINFO.offsetOf("bstrDescription"), 16);
  assert.equal(EXCEPINFO.offsetOf("scode"), 56);
  assert.equal(SYSTEMTIME.size, 16);
});

Deno.test("createObject(), getObject() and serveObject() reject bad arguments first", () => {
  assert.throws(() => createObject(""), RangeError);
  assert.throws(() => createObject(42 as unknown as string), TypeError);
  assert.throws(() => createObject("A.B", { context: "far" as "any" }), /options\.context/);
  assert.throws(() => createObject("A.B", { host: "" }), RangeError);
  assert.throws(() => getObject("a!b"), /Invalid argument "name"/);
  assert.throws(() => serveObject("x", null as unknown as object), /Invalid argument "target"/);
});

// ---- under Wine: Wine's own automation servers ----

winTest("Scripting.Dictionary: Add, Item, Count, Exists, Keys, Items, _NewEnum, Remove", () => {
  using dict = createObject("Scripting.Dictionary");
  assert.equal(dict.Count, 0);
  dict.Add("a", 1);
  dict.Add("b", "two");
  dict.Add("ü✓", 3.5);
  assert.equal(dict.Count, 3);
  assert.equal(dict.Item("b"), "two");
  assert.equal(dict.Item("ü✓"), 3.5);
  assert.equal(dict.Exists("a"), true);
  assert.equal(dict.Exists("zz"), false);
  assert.deepEqual(dict.Keys(), ["a", "b", "ü✓"], "Keys() is a SAFEARRAY of VARIANT");
  assert.deepEqual(dict.Items(), [1, "two", 3.5]);
  assert.deepEqual([...dict], ["a", "b", "ü✓"], "_NewEnum through IEnumVARIANT");
  dict.$set("Item", "a", 42);
  assert.equal(dict.$get("Item", "a"), 42);
  dict.Remove("b");
  assert.deepEqual(dict.Keys(), ["a", "ü✓"]);
  dict.RemoveAll();
  assert.equal(dict.Count, 0);
  dict.CompareMode = 1; // a property put (TextCompare); allowed only while empty
  assert.equal(dict.CompareMode, 1);
  dict.Add("KEY", 1);
  assert.equal(dict.Exists("key"), true, "text compare ignores case");
});

winTest("VARIANTs of every kind round-trip through a Dictionary", () => {
  using dict = createObject("Scripting.Dictionary");
  using inner = createObject("Scripting.Dictionary");
  inner.Add("x", 1);
  const when = new Date(Date.UTC(2020, 1, 29, 13, 14, 15, 500));
  const values: [string, unknown][] = [
    ["null", null],
    ["true", true],
    ["false", false],
    ["i4", -123456],
    ["r8", 2.5e-300],
    ["i8", 2n ** 40n + 1n],
    ["bstr", "héllo ✓ 𝄞"],
    ["empty-string", ""],
    ["date", when],
    ["array", [1, "x", [true, null], 2.5]],
    ["bytes", new Uint8Array([0, 1, 255])],
  ];
  for (const [key, value] of values) dict.Add(key, value);
  for (const [key, value] of values) assert.deepEqual(dict.Item(key), value, key);
  dict.Add("object", inner);
  const back: ComObject = dict.Item("object");
  assert.equal(back.Count, 1, "VT_DISPATCH comes back as a live object");
  assert.equal(back.Item("x"), 1);
  back.$release();
  assert.equal(dict.Item("missing"), undefined, "a missing key reads as VT_EMPTY");
});

winTest("references are counted: marshalled objects are released, nothing leaks", () => {
  using inner = createObject("Scripting.Dictionary");
  const p = inner.$dispatch.unsafePointer;
  // AddRef/Release return the new count: read it without changing it.
  const count = () => {
    vcall(p, 1, [], "u32");
    return vcall(p, 2, [], "u32") as number;
  };
  const base = count();
  using dict = createObject("Scripting.Dictionary");
  dict.Add("object", inner);
  assert.equal(count(), base + 1, "the dictionary holds one reference");
  for (let i = 0; i < 5; i++) {
    const back: ComObject = dict.Item("object");
    assert.equal(count(), base + 2, "the returned proxy holds one");
    back.$release();
    assert.equal(count(), base + 1, "released on dispose");
  }
  dict.Add("list", [inner, inner]);
  assert.equal(count(), base + 3, "a SAFEARRAY of two VT_DISPATCH holds two");
  const list = dict.Item("list") as ComObject[];
  assert.equal(count(), base + 5);
  for (const item of list) item.$release();
  dict.RemoveAll();
  assert.equal(count(), base, "the arguments' VARIANTs were cleared");
});

winTest("VARIANT helpers: VT_DECIMAL and VT_CY through VariantChangeType", () => {
  const source = toVariant(1234.5);
  const decimal = new Uint8Array(24);
  assert.equal(oleaut32().VariantChangeType(decimal, source, 0, VT_DECIMAL), 0);
  assert.equal(new DataView(decimal.buffer).getUint16(0, true), VT_DECIMAL);
  assert.equal(fromVariant(decimal), 1234.5);
  const currency = new Uint8Array(24);
  assert.equal(oleaut32().VariantChangeType(currency, source, 0, VT_CY), 0);
  assert.equal(fromVariant(currency), 1234.5);
  const text = toVariant("ü✓");
  assert.equal(new DataView(text.buffer).getUint16(0, true), VT_BSTR);
  assert.equal(fromVariant(text), "ü✓");
  clearVariant(text);
  assert.equal(fromVariant(text), undefined, "cleared to VT_EMPTY");
  assert.throws(() => toVariant(Symbol("x")), /Cannot pass a symbol to COM/);
  assert.throws(() => toVariant(new Date(NaN)), /invalid Date/);
  assert.throws(() => fromVariant(new Uint8Array(8)), RangeError);
});

winTest("Scripting.FileSystemObject: BuildPath, GetTempName, FolderExists, GetFolder", () => {
  using fso = createObject("Scripting.FileSystemObject");
  assert.equal(fso.BuildPath("C:\\a", "b"), "C:\\a\\b");
  assert.match(fso.GetTempName(), /^rad[0-9A-F]+\.tmp$/i);
  assert.equal(fso.FolderExists("C:\\windows"), true);
  assert.equal(fso.FolderExists("C:\\no\\such\\folder"), false);
  using folder = fso.GetFolder("C:\\windows");
  assert.equal(folder.Path.toLowerCase(), "c:\\windows");
  assert.ok([...folder.SubFolders].length > 0, "SubFolders enumerates");
});

winTest("errors: unknown ProgID, unknown member, a failing call, a released object", () => {
  assert.throws(() => createObject("No.Such.ProgId"), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "CO_E_CLASSSTRING");
    assert.equal(e.functionName, "CLSIDFromProgID");
    assert.match(e.message, /^Cannot find COM class "No\.Such\.ProgId": CLSIDFromProgID failed/);
    return true;
  });
  const dict = createObject("Scripting.Dictionary");
  assert.throws(() => dict.NoSuchMember(1), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "DISP_E_UNKNOWNNAME");
    assert.match(e.message, /Scripting\.Dictionary has no member "NoSuchMember"/);
    return true;
  });
  dict.Add("a", 1);
  assert.throws(() => dict.Add("a", 2), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresult, 0x800a01c9);
    assert.match(e.message, /"Add" failed on Scripting\.Dictionary: .*already associated/);
    return true;
  });
  dict.$release();
  dict.$release(); // twice is harmless
  assert.throws(() => dict.Count, Deno.errors.BadResource);
});

winTest("DCOM: CoCreateInstanceEx with a COSERVERINFO host name", () => {
  // This machine has no second host: the local host name is used. (Wine ignores the host.)
  using dict = createObject("Scripting.Dictionary", { host: Deno.hostname() });
  dict.Add("k", "v");
  assert.equal(dict.Item("k"), "v");
});

winTest("DCOM: COAUTHINFO on CoCreateInstanceEx, CoSetProxyBlanket on a proxy", async () => {
  // With an explicit identity and level. Wine ignores the host (it creates locally) and the
  // COAUTHINFO with it; on Windows these reach the remote activation.
  using dict = createObject("Scripting.Dictionary", {
    host: Deno.hostname(),
    auth: { service: "winnt", level: "connect", impersonation: "identify" },
  });
  dict.Add("a", 1);
  assert.equal(dict.Count, 1);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => createObject("Scripting.Dictionary", { auth: { level: "loud" } as any }),
    /Invalid argument "options.auth.level"/,
  );
  // An in-process object has no proxy blanket.
  assert.throws(() => setProxyBlanket(dict, { level: "privacy" }), /E_NOINTERFACE/);
  // A proxy to another process has one.
  const name = uniqueName("rot-blanket");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  using service = getObject(name);
  // Wine's proxies do not implement IClientSecurity::SetBlanket (E_NOTIMPL); Windows' do.
  const underWine = Deno.build.os === "windows" &&
    new Deno.Command("reg", {
        args: ["query", "HKCU\\Software\\Wine"],
        stdout: "null",
        stderr: "null",
      })
        .outputSync().code === 0;
  if (underWine) {
    assert.throws(
      () => setProxyBlanket(service, { level: "privacy", impersonation: "impersonate" }),
      /CoSetProxyBlanket failed with E_NOTIMPL/,
    );
  } else {
    setProxyBlanket(service, { level: "privacy", impersonation: "impersonate" });
  }
  assert.equal(service.add(20, 22), 42, "calls go on after the blanket call");
  service.stop();
  assert.match(await server.expect("stopped *"), /^stopped 0$/);
});

winTest("oleaut32 SystemTimeToVariantTime agrees with toOleDate", () => {
  const when = new Date(Date.UTC(2024, 6, 14, 8, 30, 45));
  assert.equal(systemTimeToVariantTime(when), toOleDate(when.getTime()));
  assert.equal(variantTimeToSystemTime(toOleDate(when.getTime())).getTime(), when.getTime());
});

// ---- a winipc object in the Running Object Table, called from other processes ----

winTest("a served object is found by name and called from another process", async () => {
  const name = uniqueName("rot");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  using service = getObject(name);
  assert.equal(service.add(2, 3), 5);
  const started = performance.now();
  for (let i = 0; i < 50; i++) assert.equal(service.add(i, 1), i + 1);
  console.log(
    `  cross-process IDispatch call: ${((performance.now() - started) / 50).toFixed(2)} ms`,
  );
  assert.equal(service.greeting, "hello", "property get");
  service.greeting = "changed ✓";
  assert.equal(service.greeting, "changed ✓", "property put");
  const sample = [1, "two", null, true, 2.5, 2n ** 50n, new Date(Date.UTC(2001, 2, 3)), ["x"]];
  assert.deepEqual(service.echo(sample), sample, "VARIANTs cross both ways");
  assert.equal(service.describe(new Date(Date.UTC(2001, 2, 3))), "date 2001-03-03T00:00:00.000Z");
  assert.equal(service.describe(undefined), "undefined undefined", "a left-out argument");
  // A plain object returned by the server is a live object in the server's process.
  using counter = service.makeCounter(10);
  assert.equal(counter.inc(), 11);
  assert.equal(counter.inc(), 12);
  assert.equal(counter.value, 12);
  // The server calls back into an object that lives in this process.
  using dict = createObject("Scripting.Dictionary");
  dict.Add("a", 1);
  dict.Add("b", 2);
  assert.equal(service.countOf(dict), 2);
  assert.throws(() => service.fail("bad thing"), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "E_FAIL");
    assert.equal(e.source, "RangeError");
    assert.equal(e.description, "bad thing");
    return true;
  });
  assert.throws(() => service.later(), /returned a Promise: COM calls are synchronous/);
  assert.throws(() => service.nothing(), /has no member "nothing".*DISP_E_UNKNOWNNAME/);
  service.stop();
  assert.match(await server.expect("stopped *"), /^stopped 0$/);
});

winTest("two processes call one served object concurrently: nothing lost", async () => {
  const name = uniqueName("rot-busy");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  const calls = 150;
  await using a = spawnFixture("com_client.ts", [name, String(calls)]);
  await using b = spawnFixture("com_client.ts", [name, String(calls)]);
  const [ra, rb] = await Promise.all([a.line(60_000), b.line(60_000)]);
  const all = [...JSON.parse(ra) as number[], ...JSON.parse(rb) as number[]].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 2 * calls }, (_, i) => i + 1));
  using service = getObject(name);
  assert.equal(service.stop(), 2 * calls);
  assert.equal(await server.expect("stopped *"), `stopped ${2 * calls}`);
});

winTest("getObject() of a name nobody registered gives MK_E_UNAVAILABLE", () => {
  assert.throws(() => getObject(uniqueName("absent")), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "MK_E_UNAVAILABLE");
    assert.match(e.message, /^Cannot find ".*" in the Running Object Table/);
    return true;
  });
});

winTest("a registration closes: the name is gone from the Running Object Table", () => {
  const name = uniqueName("rot-local");
  const registration = serveObject(name, { twice: (n: number) => 2 * n });
  {
    using self = getObject(name);
    assert.equal(self.twice(21), 42);
  }
  registration.close();
  registration.close();
  assert.throws(() => getObject(name), /MK_E_UNAVAILABLE/);
});

winTest(
  "a served object lives on the COM thread: no main-thread pump, idle without CPU, self-calls",
  async () => {
    const name = uniqueName("rot-idle");
    let calls = 0;
    const registration = serveObject(name, {
      twice: (n: number) => 2 * n,
      bump: () => ++calls,
    });
    try {
      assert.equal(pump.attached, 0, "serving attaches no main-thread pump");
      // This process calls its own object through the Running Object Table: the call goes to
      // the COM thread, which hands it back to this thread while it waits in its modal loop.
      {
        using self = getObject(name);
        assert.equal(self.twice(21), 42);
      }
      // Another process calls it while this one is idle.
      await using client = spawnFixture("com_client.ts", [name, "20"]);
      assert.deepEqual(
        JSON.parse(await client.line(60_000)),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(pump.attached, 0);
      // idle: nothing polls
      await new Promise((r) => setTimeout(r, 300));
      const share = await idleCpuShare();
      // the polling pump used 15-22% of a core here under Wine 10
      assert.ok(share < 0.05, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);
    } finally {
      registration.close();
    }
    assert.throws(() => getObject(name), /MK_E_UNAVAILABLE/);
  },
);

winTest(
  "objects passed to another process are called back during the call (nested) and after it",
  async () => {
    const name = uniqueName("rot-nest");
    await using server = spawnFixture("com_server.ts", [name]);
    await server.expect("ready");
    using service = getObject(name);
    assert.equal(pump.attached, 0);
    // The server calls this object during the call; it calls the server back in turn, while
    // the server waits for it.
    assert.equal(service.nest({ twice: (n: number) => service.add(n, n) }, 21), 42);
    // A plain object with properties, read back during the call.
    assert.equal(service.countOf({ Count: 7 }), 7);
    // The server keeps the object and calls it from its own event loop after the call returned,
    // while this process is idle.
    const hits: number[] = [];
    service.callLater({ hit: (n: number) => hits.push(n) }, 5);
    service.callLater({ hit: (n: number) => hits.push(n) }, 6);
    const deadline = performance.now() + 15_000;
    while (hits.length < 2 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(hits.sort(), [5, 6]);
    // An in-process COM object of the server (made on its main thread), called while the server
    // is idle; and one of this process, kept by the server and called back later.
    using remoteDict = service.makeDictionary("k", "v");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(remoteDict.Item("k"), "v");
    assert.equal(remoteDict.Count, 1);
    using localDict = createObject("Scripting.Dictionary");
    localDict.Add("a", 1);
    service.callLater({ hit: (n: number) => hits.push(n + localDict.Count) }, 10);
    assert.equal(service.countOf(localDict), 1);
    const later = performance.now() + 15_000;
    while (hits.length < 3 && performance.now() < later) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(hits.sort((a, b) => a - b), [5, 6, 11]);
    assert.equal(pump.attached, 0, "nothing attached the pump");
    service.stop();
    assert.match(await server.expect("stopped *"), /^stopped 0$/);
  },
);

winTest(
  "a served object closed inside its own method, called from this process: clean",
  () => {
    const name = uniqueName("rot-self-close");
    let calls = 0;
    const registration = serveObject(name, {
      bump: () => ++calls,
      closeNow: () => {
        registration.close();
        return calls;
      },
    });
    using self = getObject(name);
    assert.equal(self.bump(), 1);
    assert.equal(self.closeNow(), 1);
    assert.equal(registration.closed, true);
    assert.throws(() => self.bump(), (e: unknown) => {
      assert.ok(e instanceof ComError, String(e));
      assert.equal(e.hresultName, "CO_E_OBJNOTCONNECTED");
      return true;
    });
  },
);

// ---- CLI ----

winTest("CLI: com call prints results; errors exit 1, bad usage exits 2", async () => {
  const path = await runCli([
    "com",
    "call",
    "Scripting.FileSystemObject",
    "BuildPath",
    "C:\\a",
    "b",
  ]);
  assert.equal(path.code, 0, path.stderr);
  assert.equal(path.stdout, "C:\\a\\b\n");
  const exists = await runCli([
    "com",
    "call",
    "Scripting.FileSystemObject",
    "FolderExists",
    "C:\\windows",
    "--json",
  ]);
  assert.equal(exists.code, 0, exists.stderr);
  assert.deepEqual(JSON.parse(exists.stdout), {
    progid: "Scripting.FileSystemObject",
    method: "FolderExists",
    result: true,
  });
  // JSON arguments: 42 and true arrive as VT_I4 and VT_BOOL, so the server sees numbers/booleans.
  const dict = await runCli(["com", "call", "Scripting.Dictionary", "Exists", "42"]);
  assert.equal(dict.code, 0, dict.stderr);
  assert.equal(dict.stdout, "false\n");
  const unknown = await runCli(["com", "call", "No.Such.ProgId", "Foo"]);
  assert.equal(unknown.code, 1);
  assert.match(
    unknown.stderr,
    /^error: Cannot find COM class "No\.Such\.ProgId": .*CO_E_CLASSSTRING/m,
  );
  const member = await runCli(["com", "call", "Scripting.Dictionary", "Nope"]);
  assert.equal(member.code, 1);
  assert.match(member.stderr, /^error: .*has no member "Nope".*DISP_E_UNKNOWNNAME/m);
  const usage = await runCli(["com", "call", "not a progid!", "Foo"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^error: Invalid <progid>/m);
  const missing = await runCli(["com", "call", "Scripting.Dictionary"]);
  assert.equal(missing.code, 2);
});

winTest("re-entry: 2,000 calls to a served object with gc() inside them", async () => {
  const name = uniqueName("rot-gc");
  await using server = spawnFixture("com_server.ts", [name], {
    denoFlags: ["--v8-flags=--expose-gc"],
  });
  await server.expect("ready");
  const calls = 2000;
  await using client = spawnFixture("com_client.ts", [name, String(calls)]);
  const results = JSON.parse(await client.line(120_000)) as number[];
  assert.deepEqual(results, Array.from({ length: calls }, (_, i) => i + 1));
  using service = getObject(name);
  assert.equal(service.stop(), calls);
  assert.equal(await server.expect("stopped *"), `stopped ${calls}`);
});

winTest(
  "a served object closed inside its own method: no crash, the next call gets CO_E_OBJNOTCONNECTED",
  async () => {
    const name = uniqueName("rot-close");
    await using server = spawnFixture("com_server.ts", [name]);
    await server.expect("ready");
    using service = getObject(name);
    assert.equal(service.bump(), 1);
    assert.equal(service.closeNow(), 1);
    assert.throws(() => service.bump(), (e: unknown) => {
      assert.ok(e instanceof ComError, String(e));
      assert.equal(e.hresultName, "CO_E_OBJNOTCONNECTED");
      return true;
    });
    // The revocation runs in the server once closeNow's call has returned (from a timer there),
    // so the name can still be found for a moment after the reply.
    const until = performance.now() + 5_000;
    for (;;) {
      try {
        getObject(name).$release();
      } catch (e) {
        assert.match(String(e), /MK_E_UNAVAILABLE/);
        break;
      }
      assert.ok(performance.now() < until, "the name is still registered after 5 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await server.expect("stopped *"), "stopped 1");
    assert.equal((await server.finish()).code, 0);
  },
);

winTest("GetTypeInfo: a served object describes its members to another process", async () => {
  const name = uniqueName("rot-typeinfo");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  using service = getObject(name);
  const members = service.$dispatch.members();
  const byName = (n: string) => members.filter((m) => m.name === n);
  assert.deepEqual(byName("add"), [{
    name: "add",
    dispid: service.$dispatch.dispid("add"),
    kind: "method",
    params: 2,
  }]);
  assert.deepEqual(byName("greeting").map((m) => m.kind), ["get", "put"]);
  assert.equal(byName("Tick").length, 0, "events are not members");
  assert.ok(members.every((m) => m.dispid === service.$dispatch.dispid(m.name)));
  // Windows' own automation objects describe themselves through the same call.
  using dict = createObject("Scripting.Dictionary");
  assert.ok(dict.$dispatch.members().some((m) => m.name === "Exists" && m.kind === "method"));
  service.stop();
  assert.match(await server.expect("stopped *"), /^stopped 0$/);
});
