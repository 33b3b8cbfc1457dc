/**
 * The client side of events: {@linkcode onEvent} and {@linkcode events} connect a sink to an
 * object's connection point (`IConnectionPointContainer` / `IConnectionPoint`).
 *
 * @module
 */
import { formatGuid, vcall } from "../../ffi/ole32.ts";
import { LOCALE_USER_DEFAULT } from "../../ffi/oleaut32.ts";
import { wide } from "../../ffi/strings.ts";
import { pump, releaseAfterCallbacks } from "../_pump.ts";
import { parseArg } from "../_validate.ts";
import { addRef, isProxy, queryInterface, release } from "./_base.ts";
import { exportObject, holdProcess } from "./_com_thread.ts";
import { initCom } from "./apartment.ts";
import { type ComObject, Dispatch, proxies, TKIND_COCLASS } from "./client.ts";
import { checkHr, ComError, CONNECT_E_NOCONNECTION, DISP_E_UNKNOWNNAME, failed } from "./errors.ts";
import {
  eventNameSchema,
  exposeDispatch,
  IID_IConnectionPointContainer,
  IID_WINIPC_EVENTS,
} from "./server.ts";
import type { ComValue } from "./variant.ts";

/**
 * A connection to an object's events (`IConnectionPoint::Advise`). While it is open, this
 * process stays alive, and events from another process wake the COM thread (`_com_thread.ts`),
 * which hands them to the handler on this thread; an in-process object made on this thread
 * raises them on this thread, which then pumps messages. `close()` (or `using`) calls
 * `Unadvise`.
 *
 * @example Listen until disposed
 * ```ts
 * import { createObject, onEvent } from "./mod.ts";
 * using clock = createObject("Demo.Clock");
 * using _connection = onEvent(clock, "Tick", (n) => console.log("tick", n));
 * clock.startTicks(3);
 * ```
 */
export interface EventConnection extends Disposable {
  /** The event's name. */
  readonly event: string;
  /**
   * The outgoing interface the sink was advised on, in registry form (`{...}`): winipc's own
   * for objects winipc serves, else the one the object's type library declares with the event.
   */
  readonly interfaceId: string;
  /** The event's DISPID in that interface. */
  readonly dispid: number;
  /** Unadvises; a second call does nothing. */
  close(): void;
}

/** An event found: the owned connection point, the event's DISPID, the sink's IID. */
interface FoundEvent {
  point: Deno.PointerObject;
  dispid: number;
  iid: Uint8Array<ArrayBuffer>;
}

/**
 * Finds the object's connection point and the event's DISPID. A winipc-served object has one
 * point, {@linkcode IID_WINIPC_EVENTS}, whose DISPIDs its `GetIDsOfNames` gives; any other object
 * is asked for its points (`EnumConnectionPoints`), and each point's interface is looked up in
 * the type library that holds the object's type information, whose names give the DISPID.
 */
function findEvent(d: Dispatch, event: string): FoundEvent {
  const context = `Cannot connect to event "${event}" of ${d.label}`;
  const [container, hr] = queryInterface(d.unsafePointer, IID_IConnectionPointContainer);
  if (!container) {
    throw new ComError("IUnknown::QueryInterface(IConnectionPointContainer)", hr, {
      context: `${context}: the object has no events`,
    });
  }
  let point: Deno.PointerObject;
  try {
    const out = new BigUint64Array(1);
    const found = vcall(
      container,
      4,
      ["buffer", "buffer"],
      "i32",
      IID_WINIPC_EVENTS,
      out,
    ) as number;
    if (found === CONNECT_E_NOCONNECTION) {
      const typed = findTypedEvent(d, container, event);
      if (typed.found) return typed.found;
      throw typed.described
        ? new ComError("ITypeInfo::GetIDsOfNames", DISP_E_UNKNOWNNAME, {
          context: `${d.label} has no event "${event}" (none of its outgoing interfaces has it)`,
        })
        : new ComError("IConnectionPointContainer::FindConnectionPoint", found, {
          context: `${context}: no type library describes its outgoing interfaces`,
        });
    }
    checkHr(found, "IConnectionPointContainer::FindConnectionPoint", context);
    point = Deno.UnsafePointer.create(out[0])!;
  } finally {
    release(container);
  }
  let dispid: number;
  try {
    dispid = d.dispid(event);
  } catch (e) {
    release(point);
    if (e instanceof ComError && e.hresultName === "DISP_E_UNKNOWNNAME") {
      throw new ComError("IDispatch::GetIDsOfNames", e.hresult, {
        context: `${d.label} has no event "${event}"`,
      });
    }
    throw e;
  }
  return { point, dispid, iid: IID_WINIPC_EVENTS };
}

/** TYPEATTR's GUID, type kind and implemented-interface count (then ReleaseTypeAttr). */
function typeIdentity(
  info: Deno.PointerObject,
): { guid: Uint8Array<ArrayBuffer>; typekind: number; implTypes: number } | null {
  const out = new BigUint64Array(1);
  if (failed(vcall(info, 3, ["buffer"], "i32", out) as number) || !out[0]) return null;
  const attr = Deno.UnsafePointer.create(out[0])!;
  try {
    const view = new Deno.UnsafePointerView(attr);
    const guid = new Uint8Array(16);
    view.copyInto(guid, 0);
    // TYPEATTR: guid @0, typekind @44, cImplTypes @52
    return { guid, typekind: view.getUint32(44), implTypes: view.getUint16(52) };
  } finally {
    vcall(info, 19, ["pointer"], "void", attr);
  }
}

/** The object's type information (owned) and the library that holds it (owned), or null. */
function typeInfoAndLib(
  d: Dispatch,
): { info: Deno.PointerObject; lib: Deno.PointerObject } | null {
  const count = new Uint32Array(1);
  if (failed(vcall(d.unsafePointer, 3, ["buffer"], "i32", count) as number) || !count[0]) {
    return null;
  }
  const out = new BigUint64Array(1);
  const hr = vcall(
    d.unsafePointer,
    4,
    ["u32", "u32", "buffer"],
    "i32",
    0,
    LOCALE_USER_DEFAULT,
    out,
  ) as number;
  if (failed(hr) || !out[0]) return null;
  const info = Deno.UnsafePointer.create(out[0])!;
  const index = new Uint32Array(1);
  // ITypeInfo::GetContainingTypeLib
  if (failed(vcall(info, 18, ["buffer", "buffer"], "i32", out, index) as number) || !out[0]) {
    release(info);
    return null;
  }
  return { info, lib: Deno.UnsafePointer.create(out[0])! };
}

function sameGuid(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === 16 && a.every((byte, i) => byte === b[i]);
}

const IMPLTYPEFLAG_FDEFAULT = 1;
const IMPLTYPEFLAG_FSOURCE = 2;
/** Limits on what a type library is walked for (a library is data another program wrote). */
const MAX_LIB_TYPES = 20_000;

/** The referenced type information of a coclass's `index`th implemented interface (owned). */
function implType(coclass: Deno.PointerObject, index: number): Deno.PointerObject | null {
  const href = new Uint32Array(1);
  if (failed(vcall(coclass, 8, ["u32", "buffer"], "i32", index, href) as number)) return null;
  const out = new BigUint64Array(1);
  if (failed(vcall(coclass, 14, ["u32", "buffer"], "i32", href[0], out) as number) || !out[0]) {
    return null;
  }
  return Deno.UnsafePointer.create(out[0]);
}

/**
 * The outgoing (`[source]`) interfaces of the coclass that implements the object's interface
 * `iface`, as its type library declares them, the default one first: type information (owned)
 * and IID of each.
 */
function sourceInterfaces(
  lib: Deno.PointerObject,
  self: { guid: Uint8Array<ArrayBuffer>; typekind: number },
  selfInfo: Deno.PointerObject,
): { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer> }[] {
  const out = new BigUint64Array(1);
  const kind = new Uint32Array(1);
  const coclasses: Deno.PointerObject[] = [];
  if (self.typekind === TKIND_COCLASS) {
    addRef(selfInfo);
    coclasses.push(selfInfo);
  } else {
    // ITypeLib::GetTypeInfoCount
    const count = Math.min(vcall(lib, 3, [], "u32") as number, MAX_LIB_TYPES);
    for (let i = 0; i < count; i++) {
      // ITypeLib::GetTypeInfoType, then GetTypeInfo for the coclasses
      if (failed(vcall(lib, 5, ["u32", "buffer"], "i32", i, kind) as number)) continue;
      if (kind[0] !== TKIND_COCLASS) continue;
      if (failed(vcall(lib, 4, ["u32", "buffer"], "i32", i, out) as number) || !out[0]) continue;
      const coclass = Deno.UnsafePointer.create(out[0])!;
      const attr = typeIdentity(coclass);
      let implements_ = false;
      for (let j = 0; attr && j < attr.implTypes && !implements_; j++) {
        const flags = new Int32Array(1);
        if (failed(vcall(coclass, 9, ["u32", "buffer"], "i32", j, flags) as number)) continue;
        if (flags[0] & IMPLTYPEFLAG_FSOURCE) continue;
        const ref = implType(coclass, j);
        if (!ref) continue;
        implements_ = sameGuid(typeIdentity(ref)?.guid, self.guid);
        release(ref);
      }
      if (implements_) coclasses.push(coclass);
      else release(coclass);
    }
  }
  const found: { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer>; first: boolean }[] = [];
  for (const coclass of coclasses) {
    const attr = typeIdentity(coclass);
    for (let j = 0; attr && j < attr.implTypes; j++) {
      const flags = new Int32Array(1);
      if (failed(vcall(coclass, 9, ["u32", "buffer"], "i32", j, flags) as number)) continue;
      if (!(flags[0] & IMPLTYPEFLAG_FSOURCE)) continue;
      const ref = implType(coclass, j);
      const iid = ref && typeIdentity(ref)?.guid;
      if (!ref || !iid) {
        if (ref) release(ref);
        continue;
      }
      if (found.some((f) => sameGuid(f.iid, iid))) release(ref);
      else found.push({ info: ref, iid, first: (flags[0] & IMPLTYPEFLAG_FDEFAULT) !== 0 });
    }
    release(coclass);
  }
  found.sort((a, b) => Number(b.first) - Number(a.first));
  return found.map(({ info, iid }) => ({ info, iid }));
}

/**
 * Looks for `event` among the outgoing interfaces that the object's type library declares for
 * its coclass (Office, Internet Explorer, MSXML, ADO, the script control and other automation
 * objects describe their events so): the event's DISPID there (`ITypeInfo::GetIDsOfNames`) and
 * that interface's connection point. `described` says whether any outgoing interface was found.
 */
function findTypedEvent(
  d: Dispatch,
  container: Deno.PointerObject,
  event: string,
): { found?: FoundEvent; described: boolean } {
  const typed = typeInfoAndLib(d);
  if (!typed) return { described: false };
  let sources: { info: Deno.PointerObject; iid: Uint8Array<ArrayBuffer> }[] = [];
  try {
    const self = typeIdentity(typed.info);
    if (self) sources = sourceInterfaces(typed.lib, self, typed.info);
  } finally {
    release(typed.info);
    release(typed.lib);
  }
  const name = wide(event);
  const names = new BigUint64Array([BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name)))]);
  const memid = new Int32Array(1);
  const out = new BigUint64Array(1);
  let found: FoundEvent | undefined;
  for (const { info, iid } of sources) {
    if (!found) {
      // ITypeInfo::GetIDsOfNames: case-insensitive, as IDispatch's
      const hr = vcall(info, 10, ["buffer", "u32", "buffer"], "i32", names, 1, memid) as number;
      if (!failed(hr)) {
        const at = vcall(container, 4, ["buffer", "buffer"], "i32", iid, out) as number;
        checkHr(
          at,
          "IConnectionPointContainer::FindConnectionPoint",
          `Cannot connect to event "${event}" of ${d.label}`,
        );
        found = { point: Deno.UnsafePointer.create(out[0])!, dispid: memid[0], iid };
      }
    }
    release(info);
  }
  void name;
  return { found, described: sources.length > 0 };
}

/**
 * Connects a handler to an event of a COM object: a sink implemented here as an `IDispatch` is
 * passed to the object's connection point (`IConnectionPointContainer::FindConnectionPoint`,
 * `IConnectionPoint::Advise`). Works with objects winipc serves ({@linkcode serveObject},
 * {@linkcode raiseEvent}), whose event DISPIDs their `GetIDsOfNames` gives, and with objects whose
 * type library declares their outgoing interfaces (a coclass's `[source]` dispinterfaces, as
 * Office, Internet Explorer, MSXML and ADO describe theirs): the coclass that implements the
 * object's interface is found in the library that holds its type information, the event's
 * DISPID read from the outgoing interface that has it, and the sink advised on that interface.
 *
 * Under Wine, MSXML's `DOMDocument` accepts such a sink but never raises its events, the script
 * control's connection points refuse `Advise` (`E_NOTIMPL`), and ADO's refuse a dispatch sink
 * (`E_FAIL`).
 *
 * @param object The object (from {@linkcode createObject} or {@linkcode getObject}).
 * @param event The event's name (case-insensitive).
 * @param handler Called with the event's arguments, on this thread, as each event arrives.
 * @returns The connection; close it to stop.
 * @throws {TypeError} For a bad argument.
 * @throws {ComError} When the object has no events (`E_NOINTERFACE`), no such event
 * (`DISP_E_UNKNOWNNAME`), or refuses the connection.
 *
 * @example Print each Tick of an object another process serves
 * ```ts
 * import { getObject, onEvent } from "./mod.ts";
 * using clock = getObject("my-clock");
 * using _ticks = onEvent(clock, "Tick", (n) => console.log("tick", n));
 * ```
 */
export function onEvent(
  object: ComObject | Dispatch,
  event: string,
  handler: (...args: ComValue[]) => void,
): EventConnection {
  const name = parseArg(eventNameSchema, event, "event");
  if (typeof handler !== "function") {
    throw new TypeError('Invalid argument "handler": must be a function');
  }
  const d = object instanceof Dispatch ? object : proxies.get(object as object);
  if (!d) throw new TypeError('Invalid argument "object": must be a COM object');
  initCom();
  const { point, dispid, iid } = findEvent(d, name);
  const sink = exposeDispatch({}, {
    handlers: new Map([[dispid, handler]]),
    sinkIid: iid,
  });
  // A connection point of another apartment or process gets a proxy of the COM thread's wrapper
  // of the sink, so events wake that thread. One in this apartment (an in-process object made
  // on this thread) calls the sink directly, from this thread, and may raise events from
  // messages posted to this thread: the pump runs for it.
  let given: Deno.PointerObject;
  let cookie: number;
  try {
    given = isProxy(point) ? exportObject(sink) : sink;
    if (given === sink) addRef(sink);
    try {
      const out = new Uint32Array(1);
      const hr = vcall(point, 5, ["pointer", "buffer"], "i32", given, out) as number;
      checkHr(hr, "IConnectionPoint::Advise", `Cannot connect to event "${name}" of ${d.label}`);
      cookie = out[0];
    } catch (e) {
      release(given);
      throw e;
    }
  } catch (e) {
    release(sink);
    release(point);
    throw e;
  }
  const local = given === sink;
  const unhold = local ? pump.attach().release : holdProcess();
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    releaseAfterCallbacks(() => {
      try {
        vcall(point, 6, ["u32"], "i32", cookie);
      } finally {
        release(point);
        release(given);
        release(sink);
        unhold();
      }
    });
  };
  return {
    event: name,
    interfaceId: formatGuid(iid),
    dispid,
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * The events of one name as an async iterable: each item is the event's arguments. Ending the
 * loop (`break`, `return`, an exception) disconnects. Up to 10,000 events wait for the loop; later
 * ones are dropped until it catches up.
 *
 * @param object The object.
 * @param event The event's name.
 * @returns The events; also disposable.
 * @throws {ComError} As {@linkcode onEvent}, at once.
 *
 * @example Take three ticks
 * ```ts
 * import { events, getObject } from "./mod.ts";
 * using clock = getObject("my-clock");
 * let seen = 0;
 * for await (const [n] of events(clock, "Tick")) {
 *   console.log("tick", n);
 *   if (++seen === 3) break;
 * }
 * ```
 */
export function events(
  object: ComObject | Dispatch,
  event: string,
): AsyncIterableIterator<ComValue[]> & Disposable {
  const queue: ComValue[][] = [];
  let wake: (() => void) | undefined;
  const connection = onEvent(object, event, (...args) => {
    if (queue.length < 10_000) queue.push(args);
    wake?.();
  });
  let done = false;
  const finish = () => {
    done = true;
    connection.close();
    wake?.();
  };
  const iterator: AsyncIterableIterator<ComValue[]> & Disposable = {
    async next(): Promise<IteratorResult<ComValue[]>> {
      while (!queue.length && !done) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      if (queue.length) return { value: queue.shift()!, done: false };
      return { value: undefined, done: true };
    },
    return(): Promise<IteratorResult<ComValue[]>> {
      finish();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
    [Symbol.dispose]: finish,
  };
  return iterator;
}
