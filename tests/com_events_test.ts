import assert from "node:assert/strict";
import {
  ComError,
  type ComValue,
  createObject,
  events,
  getObject,
  IID_WINIPC_EVENTS,
  onEvent,
  raiseEvent,
  serveObject,
} from "../mechanisms/com.ts";
import { formatGuid } from "../ffi/ole32.ts";
import { pump } from "../mechanisms/_pump.ts";
import { idleCpuShare, spawnFixture, underWine, uniqueName, winTest } from "./_helpers.ts";

// ---- platform-independent ----

Deno.test("serveObject() and raiseEvent() reject bad event declarations first", () => {
  const target = { add: (a: number, b: number) => a + b };
  assert.throws(
    () => serveObject("x", target, { events: ["add"] }),
    /"add" is declared twice or is also a member/,
  );
  assert.throws(
    () => serveObject("x", target, { events: ["Tick", "tick"] }),
    /"tick" is declared twice/,
  );
  assert.throws(() => serveObject("x", target, { events: ["no spaces"] }), /events/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => serveObject("x", target, { events: "Tick" } as any),
    /Invalid argument "options.events"/,
  );
  assert.throws(() => raiseEvent(target, "Tick"), /the object is not served over COM/);
  assert.throws(() => raiseEvent(target, ""), /Invalid argument "event"/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => onEvent({} as any, "Tick", () => {}), /must be a COM object/);
});

// ---- across processes ----

/** Waits until `predicate` holds, failing after `ms`. */
async function until(predicate: () => boolean, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error("timed out waiting for events");
    await new Promise((r) => setTimeout(r, 5));
  }
}

winTest("events from a served object reach a client in another process", async () => {
  const name = uniqueName("rot-events");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  using service = getObject(name);

  const seen: ComValue[][] = [];
  const connection = onEvent(service, "tick", (...args) => seen.push(args));
  assert.equal(connection.event, "tick");
  assert.equal(connection.interfaceId, formatGuid(IID_WINIPC_EVENTS));
  // Raised inside the call: the handler runs here while this process waits for the reply.
  assert.equal(service.tickNow(7), 1, "one sink connected");
  assert.deepEqual(seen, [[7, "now"]]);
  // Raised later, from the server's event loop.
  service.startTicks(3);
  await until(() => seen.length === 4);
  assert.deepEqual(seen.slice(1), [[1, "tick 1"], [2, "tick 2"], [3, "tick 3"]]);

  // The async-iterator form, next to a second handler: both sinks receive each event.
  const second: ComValue[][] = [];
  using _second = service.$on("Tick", (...args: ComValue[]) => second.push(args));
  const got: ComValue[][] = [];
  const ticks = events(service, "Tick"); // connected before the ticks start
  service.startTicks(2);
  for await (const args of ticks) {
    got.push(args);
    if (got.length === 2) break;
  }
  assert.deepEqual(got.map((a) => a[0]), [1, 2]);
  await until(() => second.length === 2);
  connection.close();
  connection.close(); // a second close does nothing
  assert.equal(service.tickNow(9), 1, "after close, only $on's sink is left");
  assert.equal(seen.length, 6, "the closed handler got nothing more");
  assert.deepEqual(second.at(-1), [9, "now"]);

  // Bad inputs: clear errors, and the server stays up.
  assert.throws(() => onEvent(service, "Nope", () => {}), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "DISP_E_UNKNOWNNAME");
    assert.match(e.message, /has no event "Nope"/);
    return true;
  });
  assert.throws(() => events(service, "Nope"), /has no event "Nope"/, "the iterator form too");
  assert.throws(() => service.raiseUnknown(), /declares no such event/);
  assert.throws(() => service.Tick(), /DISP_E_MEMBERNOTFOUND/, "an event is not callable");
  assert.equal(service.add(1, 2), 3);
  _second.close();
  assert.equal(service.tickNow(1), 0, "no sink left");
  service.stop();
  assert.match(await server.expect("stopped *"), /^stopped \d+$/);
});

winTest(
  "an event sink lives on the COM thread: no main-thread pump, idle without CPU, events arrive",
  async () => {
    const name = uniqueName("rot-sink-thread");
    await using server = spawnFixture("com_server.ts", [name]);
    await server.expect("ready");
    using service = getObject(name);
    const seen: ComValue[][] = [];
    const connection = onEvent(service, "Tick", (...args) => seen.push(args));
    try {
      assert.equal(pump.attached, 0, "a sink advised on another process attaches no pump");
      // idle: nothing polls
      await new Promise((r) => setTimeout(r, 300));
      const share = await idleCpuShare();
      assert.ok(share < 0.05, `CPU while idle: ${(share * 100).toFixed(1)}% of one core`);
      // Raised from the server's event loop while this process is idle: the COM thread wakes.
      service.startTicks(3);
      await until(() => seen.length === 3);
      // Raised inside a call: the handler runs here while this process waits for the reply,
      // and may call the server back.
      const inside: number[] = [];
      using _nested = onEvent(service, "Tick", (i) => inside.push(service.add(i as number, 1)));
      assert.equal(service.tickNow(41), 2);
      assert.deepEqual(inside, [42]);
      assert.deepEqual(seen.map((a) => a[0]), [1, 2, 3, 41]);
    } finally {
      connection.close();
    }
    service.stop();
    assert.match(await server.expect("stopped *"), /^stopped \d+$/);
  },
);

winTest(
  "a sink on an in-process object of this thread runs the pump, whose idle wait is a " +
    "high-resolution timer (not a tick of the system timer)",
  async () => {
    using doc = createObject("MSXML2.DOMDocument.6.0");
    const before = pump.attached;
    const connection = onEvent(doc, "onReadyStateChange", () => {});
    try {
      // The object lives in this thread's apartment and may raise events from messages posted
      // to this thread: the pump runs while the sink is connected.
      assert.equal(pump.attached, before + 1);
      // past the pump's hot phase (100 ms after the last message) into its idle waits
      await new Promise((resolve) => setTimeout(resolve, 400));
      // Windows 10 1803 and later, and Wine 10, have CREATE_WAITABLE_TIMER_HIGH_RESOLUTION: an
      // idle wait of 1 ms, where Sleep(1) lasts a tick (15.6 ms on a stock Windows timer)
      assert.equal(pump.idleWait, "high-resolution timer");
    } finally {
      connection.close();
    }
    assert.equal(pump.attached, before);
  },
);

winTest("an object without events: onEvent says so", () => {
  using dict = createObject("Scripting.Dictionary");
  assert.throws(() => onEvent(dict, "Changed", () => {}), (e: unknown) => {
    assert.ok(e instanceof ComError);
    assert.equal(e.hresultName, "E_NOINTERFACE");
    assert.match(e.message, /the object has no events/);
    return true;
  });
  assert.throws(() => events(dict, "Changed"), /the object has no events/);
});

winTest("events reach a sink written against the raw IConnectionPoint ABI", async () => {
  const name = uniqueName("rot-raw-sink");
  await using server = spawnFixture("com_server.ts", [name]);
  await server.expect("ready");
  await using sink = spawnFixture("com_event_sink_raw.ts", [name, "3"]);
  assert.equal(await sink.line(30_000), "advised");
  for (let i = 1; i <= 3; i++) assert.equal(await sink.line(30_000), `tick ${i} tick ${i}`);
  assert.equal(await sink.line(30_000), "done");
  using service = getObject(name);
  assert.equal(service.tickNow(1), 0, "the raw sink unadvised");
  service.stop();
  assert.match(await server.expect("stopped *"), /^stopped \d+$/);
});

winTest(
  "events an object's type library declares: MSXML's DOMDocument, found through its coclass",
  async () => {
    using doc = createObject("MSXML2.DOMDocument.6.0");
    const seen: string[] = [];
    // coclass DOMDocument60: [default, source] dispinterface XMLDOMDocumentEvents, whose
    // onreadystatechange is DISPID_XMLDOM_EVENT_ONREADYSTATECHANGE (-609) and ondataavailable 198
    using ready = onEvent(doc, "onReadyStateChange", () => seen.push("readystatechange"));
    assert.equal(ready.interfaceId, "{3EFAA427-272F-11D2-836F-0000F87A7782}");
    assert.equal(ready.dispid, -609);
    using data = events(doc, "ondataavailable");
    assert.throws(() => onEvent(doc, "Nope", () => {}), (e: unknown) => {
      assert.ok(e instanceof ComError);
      assert.equal(e.hresultName, "DISP_E_UNKNOWNNAME");
      assert.match(e.message, /has no event "Nope" \(none of its outgoing interfaces has it\)/);
      return true;
    });
    doc.async = false;
    assert.equal(doc.loadXML("<a><b>1</b></a>"), true);
    assert.equal(doc.readyState, 4);
    await new Promise((resolve) => setTimeout(resolve, 100)); // any event has been pumped
    if (underWine()) {
      // Wine's msxml3 takes the sink (Advise succeeds) but raises no events.
      assert.deepEqual(seen, []);
    }
    ready.close();
    data[Symbol.dispose]();
    assert.equal(doc.documentElement.text, "1", "the object works on after the sinks left");
  },
);
