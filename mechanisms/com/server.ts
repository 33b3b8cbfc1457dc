/**
 * The server side: a TypeScript object as an `IDispatch` (with connection points for its events),
 * registered in the Running Object Table by {@linkcode serveObject}; {@linkcode raiseEvent}.
 *
 * @module
 */
import { z } from "zod";
import { guid, IID_IDispatch, IID_IUnknown } from "../../ffi/ole32.ts";
import {
  DISPATCH_METHOD,
  DISPATCH_PROPERTYGET,
  DISPATCH_PROPERTYPUT,
  DISPATCH_PROPERTYPUTREF,
  DISPID_UNKNOWN,
  DISPPARAMS,
  EXCEPINFO,
  LOCALE_USER_DEFAULT,
  oleaut32,
  VARIANT_SIZE,
  VT_VARIANT,
} from "../../ffi/oleaut32.ts";
import { wide } from "../../ffi/strings.ts";
import { inCallback, releaseAfterCallbacks } from "../_pump.ts";
import { parseArg } from "../_validate.ts";
import { addRef, allocBstr, queryInterface, release } from "./_base.ts";
import { addDescriber, FACET, holdProcess, registerInRot, revokeFromRot } from "./_com_thread.ts";
import { initCom } from "./apartment.ts";
import { adoptDispatch, type Dispatch, invokeById, rotNameSchema } from "./client.ts";
import {
  checkHr,
  CO_E_OBJNOTCONNECTED,
  CONNECT_E_CANNOTCONNECT,
  CONNECT_E_NOCONNECTION,
  DISP_E_BADINDEX,
  DISP_E_BADPARAMCOUNT,
  DISP_E_EXCEPTION,
  DISP_E_MEMBERNOTFOUND,
  DISP_E_UNKNOWNNAME,
  E_FAIL,
  E_NOINTERFACE,
  E_NOTIMPL,
  E_POINTER,
  RPC_E_DISCONNECTED,
  RPC_S_SERVER_UNAVAILABLE,
  S_OK,
} from "./errors.ts";
import { type ComValue, readVariant, viewOf, writeVariant } from "./variant.ts";

let registration: (
  name: string,
  cookie: number,
  object: Deno.PointerObject,
  unhold: () => void,
) => ComRegistration;

interface ServedObject {
  target: object;
  refs: number;
  memory: Uint8Array<ArrayBuffer>; // the COM object: its first 8 bytes point at the vtable
  names: string[]; // dispid - 1 → member name; the events follow the members
  events: number; // how many of `names`, at the end, are events
  closed: boolean; // its registration was closed: calls answer CO_E_OBJNOTCONNECTED
  /** The IConnectionPointContainer and IConnectionPoint facets, when it has events. */
  container?: Uint8Array<ArrayBuffer>;
  point?: Uint8Array<ArrayBuffer>;
  sinks: Map<number, Dispatch>; // Advise cookie → the client's sink
  nextCookie: number;
  /** A client-side event sink: dispid → handler, and the outgoing interface it also answers. */
  handlers?: Map<number, (...args: ComValue[]) => void>;
  sinkIid?: Uint8Array<ArrayBuffer>;
  /** Its ITypeInfo (CreateDispTypeInfo), made at the first GetTypeInfo. */
  typeInfo?: Deno.PointerObject;
}

/**
 * The outgoing (event) interface of every object winipc serves. Its DISPIDs are those the
 * object's own `GetIDsOfNames` gives for the event names, so a late-bound client learns them
 * there.
 *
 * @example Find a served object's connection point by hand
 * ```ts
 * import { IID_WINIPC_EVENTS } from "./mod.ts";
 * // IConnectionPointContainer::FindConnectionPoint(IID_WINIPC_EVENTS, &point)
 * console.log(IID_WINIPC_EVENTS.length); // 16
 * ```
 */
export const IID_WINIPC_EVENTS: Uint8Array<ArrayBuffer> = guid(
  "6F1D0E3A-5C2B-4B8E-9A7D-3E2F1C0B9A84",
);
export const IID_IConnectionPointContainer = guid("B196B284-BAB4-101A-B69C-00AA00341D07");
const IID_IConnectionPoint = guid("B196B286-BAB4-101A-B69C-00AA00341D07");

const served = new Map<bigint, ServedObject>();
/** The container and connection point facets: their pointer → the object's main pointer. */
const facets = new Map<bigint, { main: Deno.PointerObject; kind: "container" | "point" }>();
let vtable: BigUint64Array<ArrayBuffer> | undefined;
let containerVtable: BigUint64Array<ArrayBuffer> | undefined;
let pointVtable: BigUint64Array<ArrayBuffer> | undefined;
// deno-lint-ignore no-explicit-any
export const callbacks: Deno.UnsafeCallback<any>[] = [];

export function guidEquals(p: Deno.PointerValue, iid: Uint8Array): boolean {
  if (!p) return false;
  const bytes = viewOf(p, 16);
  return bytes.every((b, i) => b === iid[i]);
}

export function writePointer(out: Deno.PointerValue, value: Deno.PointerValue): void {
  if (!out) return;
  new DataView(Deno.UnsafePointerView.getArrayBuffer(out, 8)).setBigUint64(
    0,
    BigInt(Deno.UnsafePointer.value(value)),
    true,
  );
}

function memberNames(target: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key !== "constructor" && !key.startsWith("#")) names.add(key);
    }
  }
  return [...names];
}

export function keyOf(p: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(p));
}

export function stateOf(self: Deno.PointerValue): ServedObject | undefined {
  return self ? served.get(keyOf(self)) : undefined;
}

// How the COM thread's wrappers know a served object or facet (see `_com_thread.ts`).
addDescriber((pointer) => {
  let main = pointer;
  let facet: number = FACET.dispatch;
  let state = served.get(pointer);
  if (!state) {
    const found = facets.get(pointer);
    if (!found) return undefined;
    main = keyOf(found.main);
    state = served.get(main);
    facet = found.kind === "container" ? FACET.container : FACET.point;
  }
  if (!state) return undefined;
  return {
    main: pointerOf(state.memory),
    container: state.container ? pointerOf(state.container) : null,
    point: state.point ? pointerOf(state.point) : null,
    sinkIid: state.sinkIid ?? null,
    factory: false,
    facet,
  };
});

/** The main pointer and state behind a container or connection point facet. */
function facetOf(self: Deno.PointerValue) {
  const facet = self ? facets.get(keyOf(self)) : undefined;
  const state = facet ? served.get(keyOf(facet.main)) : undefined;
  return facet && state ? { ...facet, state } : undefined;
}

export function pointerOf(memory: Uint8Array<ArrayBuffer>): Deno.PointerObject {
  return Deno.UnsafePointer.of(memory)!;
}

function fillException(excep: Deno.PointerValue, error: unknown): number {
  if (excep) {
    const message = error instanceof Error ? error.message : String(error);
    const bytes = viewOf(excep, EXCEPINFO.size);
    EXCEPINFO.write(bytes, {
      wCode: 0,
      bstrSource: allocBstr(error instanceof Error ? error.name : "Error"),
      bstrDescription: allocBstr(message),
      scode: E_FAIL,
    });
  }
  return DISP_E_EXCEPTION;
}

/** QueryInterface of a served object (any facet answers for the object's identity). */
export function queryServed(
  self: Deno.PointerObject,
  state: ServedObject,
  riid: Deno.PointerValue,
  out: Deno.PointerValue,
): number {
  let answer: Deno.PointerObject | null = null;
  if (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IDispatch)) answer = self;
  else if (state.sinkIid && guidEquals(riid, state.sinkIid)) answer = self;
  else if (state.container && guidEquals(riid, IID_IConnectionPointContainer)) {
    answer = pointerOf(state.container);
  }
  if (!answer) {
    writePointer(out, null);
    return E_NOINTERFACE;
  }
  state.refs++;
  writePointer(out, answer);
  return S_OK;
}

export function releaseServed(self: Deno.PointerValue): number {
  const state = stateOf(self);
  if (!state) return 0;
  const left = --state.refs;
  if (left <= 0) {
    served.delete(keyOf(self));
    const typeInfo = state.typeInfo;
    if (typeInfo) releaseAfterCallbacks(() => release(typeInfo));
    if (state.container) facets.delete(keyOf(pointerOf(state.container)));
    if (state.point) facets.delete(keyOf(pointerOf(state.point)));
    dropSinks(state);
  }
  return Math.max(0, left);
}

/** Releases every sink of an object (after the current callback, as releasing may re-enter). */
function dropSinks(state: ServedObject): void {
  const sinks = [...state.sinks.values()];
  state.sinks.clear();
  if (sinks.length) releaseAfterCallbacks(() => sinks.forEach((s) => s.release()));
}

export function buildVtable(): BigUint64Array<ArrayBuffer> {
  if (vtable) return vtable;
  const queryInterfaceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const state = stateOf(self);
      if (!state) {
        writePointer(out, null);
        return E_NOINTERFACE;
      }
      return queryServed(self!, state, riid, out);
    },
  );
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const state = stateOf(self);
      return state ? ++state.refs : 0;
    },
  );
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => releaseServed(self),
  );
  const getTypeInfoCountCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (self, out) => {
      if (!out) return E_POINTER;
      const state = stateOf(self);
      const count = state && !state.handlers ? 1 : 0;
      new DataView(Deno.UnsafePointerView.getArrayBuffer(out, 4)).setUint32(0, count, true);
      return S_OK;
    },
  );
  const getTypeInfoCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "u32", "u32", "pointer"], result: "i32" } as const,
    (self, index, _lcid, out) => {
      if (!out) return E_POINTER;
      writePointer(out, null);
      const state = stateOf(self);
      if (!state || state.handlers) return E_NOTIMPL;
      if (state.closed) return CO_E_OBJNOTCONNECTED;
      if (index !== 0) return DISP_E_BADINDEX;
      try {
        state.typeInfo ??= buildTypeInfo(state);
      } catch {
        return E_FAIL;
      }
      addRef(state.typeInfo);
      writePointer(out, state.typeInfo);
      return S_OK;
    },
  );
  const getIDsOfNamesCb = new Deno.UnsafeCallback(
    {
      parameters: ["pointer", "pointer", "pointer", "u32", "u32", "pointer"],
      result: "i32",
    } as const,
    (self, _riid, names, count, _lcid, ids) => {
      const state = stateOf(self);
      if (state?.closed) return CO_E_OBJNOTCONNECTED;
      if (!state || !names || !ids) return E_POINTER;
      const nameView = new Deno.UnsafePointerView(names);
      const idView = new DataView(Deno.UnsafePointerView.getArrayBuffer(ids, count * 4));
      let hr = S_OK;
      for (let i = 0; i < count; i++) {
        const text = readWideZ(nameView.getPointer(i * 8));
        const index = i === 0
          ? state.names.findIndex((n) => n.toLowerCase() === text.toLowerCase())
          : -1;
        idView.setInt32(i * 4, index >= 0 ? index + 1 : DISPID_UNKNOWN, true);
        if (index < 0) hr = DISP_E_UNKNOWNNAME;
      }
      return hr;
    },
  );
  const invokeCb = new Deno.UnsafeCallback(
    {
      parameters: [
        "pointer",
        "i32",
        "pointer",
        "u32",
        "u16",
        "pointer",
        "pointer",
        "pointer",
        "pointer",
      ],
      result: "i32",
    } as const,
    (self, dispid, _riid, _lcid, flags, params, result, excep, _argErr) =>
      inCallback(() => invokeServed(self, dispid, flags, params, result, excep)),
  );
  const table = [
    queryInterfaceCb,
    addRefCb,
    releaseCb,
    getTypeInfoCountCb,
    getTypeInfoCb,
    getIDsOfNamesCb,
    invokeCb,
  ];
  callbacks.push(...table);
  vtable = new BigUint64Array(table.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))));
  buildEventVtables();
  return vtable;
}

/**
 * An ITypeInfo describing a served object's members (`CreateDispTypeInfo`): each method with as
 * many VARIANT parameters as the function declares (`p1`, `p2`, ...) returning a VARIANT; each
 * other property as a VARIANT property get and put. The DISPIDs are those of `GetIDsOfNames`.
 */
function buildTypeInfo(state: ServedObject): Deno.PointerObject {
  const target = state.target as Record<string, unknown>;
  const keep: Uint8Array[] = [];
  const text = (s: string) => {
    const w = wide(s);
    keep.push(new Uint8Array(w.buffer));
    return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(w)));
  };
  // METHODDATA { OLECHAR *szName; PARAMDATA *ppdata; DISPID dispid; UINT iMeth; CALLCONV cc;
  //              UINT cArgs; WORD wFlags; VARTYPE vtReturn } = 40 bytes on x64
  const entries: { name: string; dispid: number; flags: number; params: number }[] = [];
  const members = state.names.length - state.events;
  for (let i = 0; i < members; i++) {
    const name = state.names[i];
    const value = target[name];
    if (typeof value === "function") {
      entries.push({ name, dispid: i + 1, flags: DISPATCH_METHOD, params: value.length });
    } else {
      entries.push({ name, dispid: i + 1, flags: DISPATCH_PROPERTYGET, params: 0 });
      entries.push({ name, dispid: i + 1, flags: DISPATCH_PROPERTYPUT, params: 1 });
    }
  }
  const methods = new DataView(new ArrayBuffer(Math.max(1, entries.length) * 40));
  entries.forEach((e, index) => {
    const at = index * 40;
    const count = Math.min(e.params, MAX_ARGS);
    // PARAMDATA { OLECHAR *szName; VARTYPE vt } = 16 bytes
    const params = new DataView(new ArrayBuffer(Math.max(1, count) * 16));
    keep.push(new Uint8Array(params.buffer));
    for (let p = 0; p < count; p++) {
      params.setBigUint64(p * 16, text(`p${p + 1}`), true);
      params.setUint16(p * 16 + 8, VT_VARIANT, true);
    }
    methods.setBigUint64(at, text(e.name), true);
    methods.setBigUint64(
      at + 8,
      count ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(params.buffer))) : 0n,
      true,
    );
    methods.setInt32(at + 16, e.dispid, true);
    methods.setUint32(at + 20, 7 + index, true); // after IDispatch's seven slots
    methods.setUint32(at + 24, 4, true); // CC_STDCALL
    methods.setUint32(at + 28, count, true);
    methods.setUint16(at + 32, e.flags, true);
    methods.setUint16(at + 34, e.flags === DISPATCH_PROPERTYPUT ? VT_VOID : VT_VARIANT, true);
  });
  // INTERFACEDATA { METHODDATA *pmethdata; UINT cMembers }
  const data = new BigUint64Array(2);
  data[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(methods.buffer)));
  data[1] = BigInt(entries.length);
  const out = new BigUint64Array(1);
  const hr = oleaut32().CreateDispTypeInfo(
    new Uint8Array(data.buffer),
    LOCALE_USER_DEFAULT,
    new Uint8Array(out.buffer),
  );
  void keep;
  checkHr(hr, "CreateDispTypeInfo", "Cannot describe the served object");
  return Deno.UnsafePointer.create(out[0])!;
}

/** The vtables of IConnectionPointContainer and IConnectionPoint. */
function buildEventVtables(): void {
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const facet = facetOf(self);
      return facet ? ++facet.state.refs : 0;
    },
  );
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const facet = facetOf(self);
      return facet ? releaseServed(facet.main) : 0;
    },
  );
  const containerQueryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (!facet) {
        writePointer(out, null);
        return E_NOINTERFACE;
      }
      return queryServed(facet.main, facet.state, riid, out);
    },
  );
  const enumPointsCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      writePointer(out, null);
      return E_NOTIMPL;
    },
  );
  const findPointCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      writePointer(out, null);
      const facet = facetOf(self);
      if (!facet?.state.point) return E_FAIL;
      if (facet.state.closed) return CO_E_OBJNOTCONNECTED;
      if (!guidEquals(riid, IID_WINIPC_EVENTS) && !guidEquals(riid, IID_IDispatch)) {
        return CONNECT_E_NOCONNECTION;
      }
      facet.state.refs++;
      writePointer(out, pointerOf(facet.state.point));
      return S_OK;
    },
  );
  const pointQueryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (facet && (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IConnectionPoint))) {
        facet.state.refs++;
        writePointer(out, self);
        return S_OK;
      }
      writePointer(out, null);
      return E_NOINTERFACE;
    },
  );
  const getInterfaceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      if (!out) return E_POINTER;
      viewOf(out, 16).set(IID_WINIPC_EVENTS);
      return S_OK;
    },
  );
  const getContainerCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (self, out) => {
      if (!out) return E_POINTER;
      const facet = facetOf(self);
      if (!facet?.state.container) return E_FAIL;
      facet.state.refs++;
      writePointer(out, pointerOf(facet.state.container));
      return S_OK;
    },
  );
  const adviseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, sink, cookieOut) =>
      inCallback(() => {
        if (!sink || !cookieOut) return E_POINTER;
        const facet = facetOf(self);
        if (!facet) return E_FAIL;
        if (facet.state.closed) return CO_E_OBJNOTCONNECTED;
        if (facet.state.sinks.size >= MAX_SINKS) return CONNECT_E_CANNOTCONNECT;
        const [dispatch] = queryInterface(sink, IID_IDispatch);
        if (!dispatch) return CONNECT_E_CANNOTCONNECT;
        const cookie = facet.state.nextCookie++;
        facet.state.sinks.set(cookie, adoptDispatch(dispatch, "event sink"));
        new DataView(Deno.UnsafePointerView.getArrayBuffer(cookieOut, 4)).setUint32(
          0,
          cookie,
          true,
        );
        return S_OK;
      }),
  );
  const unadviseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "u32"], result: "i32" } as const,
    (self, cookie) =>
      inCallback(() => {
        const facet = facetOf(self);
        const sink = facet?.state.sinks.get(cookie);
        if (!facet || !sink) return CONNECT_E_NOCONNECTION;
        facet.state.sinks.delete(cookie);
        releaseAfterCallbacks(() => sink.release());
        return S_OK;
      }),
  );
  const enumConnectionsCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      writePointer(out, null);
      return E_NOTIMPL;
    },
  );
  const container = [containerQueryCb, addRefCb, releaseCb, enumPointsCb, findPointCb];
  const point = [
    pointQueryCb,
    addRefCb,
    releaseCb,
    getInterfaceCb,
    getContainerCb,
    adviseCb,
    unadviseCb,
    enumConnectionsCb,
  ];
  callbacks.push(containerQueryCb, addRefCb, releaseCb, enumPointsCb, findPointCb);
  callbacks.push(pointQueryCb, getInterfaceCb, getContainerCb, adviseCb, unadviseCb);
  callbacks.push(enumConnectionsCb);
  const table = (cbs: Deno.UnsafeCallback[]) =>
    new BigUint64Array(cbs.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))));
  // deno-lint-ignore no-explicit-any
  containerVtable = table(container as any);
  // deno-lint-ignore no-explicit-any
  pointVtable = table(point as any);
}

/** The most sinks one served object accepts (each is a reference into another process). */
const MAX_SINKS = 256;

function readWideZ(p: Deno.PointerValue): string {
  if (!p) return "";
  const view = new Deno.UnsafePointerView(p);
  let out = "";
  for (let i = 0; i < 4096; i++) {
    const unit = view.getUint16(i * 2);
    if (unit === 0) break;
    out += String.fromCharCode(unit);
  }
  return out;
}

function invokeServed(
  self: Deno.PointerValue,
  dispid: number,
  flags: number,
  params: Deno.PointerValue,
  resultPtr: Deno.PointerValue,
  excep: Deno.PointerValue,
): number {
  const state = stateOf(self);
  if (!state) return E_FAIL;
  if (state.closed) return CO_E_OBJNOTCONNECTED;
  const handler = state.handlers ? state.handlers.get(dispid) : undefined;
  const name = state.names[dispid - 1];
  if (state.handlers) {
    // An event sink: events it does not listen to are answered and ignored.
    if (!handler) return S_OK;
  } else if (name === undefined || dispid > state.names.length - state.events) {
    return DISP_E_MEMBERNOTFOUND;
  }
  try {
    const p = params ? DISPPARAMS.read(viewOf(params, DISPPARAMS.size)) : null;
    const count = p?.cArgs ?? 0;
    if (count > MAX_ARGS || (count > 0 && !p?.rgvarg)) return DISP_E_BADPARAMCOUNT;
    const args: ComValue[] = [];
    for (let i = count - 1; i >= 0; i--) {
      args.push(readVariant(Deno.UnsafePointer.offset(p!.rgvarg!, i * VARIANT_SIZE)!));
    }
    if (handler) {
      handler(...args);
      return S_OK;
    }
    const target = state.target as Record<string, unknown>;
    let value: unknown;
    if (flags & (DISPATCH_PROPERTYPUT | DISPATCH_PROPERTYPUTREF)) {
      if (typeof target[name] === "function") return DISP_E_MEMBERNOTFOUND;
      target[name] = args.at(-1);
      return S_OK;
    }
    const member = target[name];
    if (typeof member === "function") {
      if (!(flags & DISPATCH_METHOD)) return DISP_E_MEMBERNOTFOUND;
      value = member.apply(target, args);
      if (value instanceof Promise) {
        value.catch(() => undefined);
        throw new TypeError(
          `"${name}" returned a Promise: COM calls are synchronous, serve synchronous methods`,
        );
      }
    } else {
      if (count > 0) return DISP_E_BADPARAMCOUNT;
      value = member;
    }
    if (resultPtr) writeVariant(viewOf(resultPtr, VARIANT_SIZE), 0, value, false);
    return S_OK;
  } catch (e) {
    return fillException(excep, e);
  }
}

const VT_VOID = 24;

/** The most arguments a served method or event handler accepts. */
const MAX_ARGS = 64;

interface ExposeOptions {
  events?: readonly string[];
  handlers?: Map<number, (...args: ComValue[]) => void>;
  sinkIid?: Uint8Array<ArrayBuffer>;
}

export function facetMemory(table: BigUint64Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const memory = new Uint8Array(16);
  new DataView(memory.buffer).setBigUint64(
    0,
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(table))),
    true,
  );
  return memory;
}

/** Makes a new COM object for `target` and returns its IDispatch with one reference. */
export function exposeDispatch(target: object, options: ExposeOptions = {}): Deno.PointerObject {
  const table = buildVtable();
  const memory = facetMemory(table);
  const self = pointerOf(memory);
  const members = options.handlers ? [] : memberNames(target);
  const events = [...(options.events ?? [])];
  const state: ServedObject = {
    target,
    refs: 1,
    memory,
    names: [...members, ...events],
    events: events.length,
    closed: false,
    sinks: new Map(),
    nextCookie: 1,
    handlers: options.handlers,
    sinkIid: options.sinkIid,
  };
  if (events.length) {
    state.container = facetMemory(containerVtable!);
    state.point = facetMemory(pointVtable!);
    facets.set(keyOf(pointerOf(state.container)), { main: self, kind: "container" });
    facets.set(keyOf(pointerOf(state.point)), { main: self, kind: "point" });
  }
  served.set(keyOf(self), state);
  return self;
}

export const eventNameSchema = z.string({ error: "must be a string" })
  .regex(/^[A-Za-z_]\w{0,254}$/, { error: "must be a name (letters, digits, _)" });
export const eventsSchema = z.array(eventNameSchema, { error: "must be an array of event names" })
  .max(1024, { error: "must have at most 1024 events" })
  .optional();

/** Checks the declared events against each other and the target's members. */
export function checkEvents(target: object, events: readonly string[] | undefined): string[] {
  const list = parseArg(eventsSchema, events, "events") ?? [];
  const seen = new Set(memberNames(target).map((n) => n.toLowerCase()));
  for (const event of list) {
    if (seen.has(event.toLowerCase())) {
      throw new TypeError(
        `Invalid argument "events": "${event}" is declared twice or is also a member`,
      );
    }
    seen.add(event.toLowerCase());
  }
  return list;
}

/**
 * Raises an event of a served object: every client connected to it (through
 * `IConnectionPoint::Advise`, as {@linkcode events} does) receives it, in its own process. The
 * event must be declared in the `events` option of {@linkcode serveObject} or
 * {@linkcode registerClass}. The calls are synchronous: each sink runs its handler before the
 * next is called. A sink that has gone away (its process ended) is dropped.
 *
 * @param target The served TypeScript object (the one passed to `serveObject`, or made by a
 * class's `create`).
 * @param event The event's name, as declared.
 * @param args The event's arguments.
 * @returns How many sinks received it.
 * @throws {TypeError} When `target` is not served or has no such event.
 *
 * @example Raise an event from a served object
 * ```ts
 * import { raiseEvent, serveObject } from "./mod.ts";
 * const clock = {
 *   tick(n: number) {
 *     raiseEvent(clock, "Tick", n);
 *   },
 * };
 * using reg = serveObject("my-clock", clock, { events: ["Tick"] });
 * ```
 */
export function raiseEvent(target: object, event: string, ...args: unknown[]): number {
  const name = parseArg(eventNameSchema, event, "event");
  let found = false;
  let delivered = 0;
  for (const state of [...served.values()]) {
    if (state.target !== target || state.handlers) continue;
    const index = state.names.findIndex((n, i) =>
      i >= state.names.length - state.events && n.toLowerCase() === name.toLowerCase()
    );
    if (index < 0) continue;
    found = true;
    if (state.closed) continue;
    for (const [cookie, sink] of [...state.sinks]) {
      if (sink.released) continue;
      const error = invokeById(sink, index + 1, args);
      if (!error) delivered++;
      else if (
        [RPC_E_DISCONNECTED, RPC_S_SERVER_UNAVAILABLE, CO_E_OBJNOTCONNECTED].some((hr) =>
          error.hresult === hr >>> 0
        )
      ) {
        state.sinks.delete(cookie);
        releaseAfterCallbacks(() => sink.release());
      }
    }
  }
  if (!found) {
    const declared = [...served.values()].some((s) => s.target === target && !s.handlers);
    throw new TypeError(
      declared
        ? `Cannot raise "${name}": the served object declares no such event`
        : `Cannot raise "${name}": the object is not served over COM`,
    );
  }
  return delivered;
}

/**
 * A TypeScript object served over COM and registered in the Running Object Table. Close it to
 * revoke the registration.
 *
 * @example Serve until told to stop
 * ```ts
 * import { serveObject } from "./mod.ts";
 * const stopped = Promise.withResolvers<void>();
 * using registration = serveObject("my-service", { stop: () => stopped.resolve() });
 * console.log(`serving as ${registration.name}`);
 * await stopped.promise;
 * ```
 */
export class ComRegistration implements Disposable {
  readonly #name: string;
  #cookie: number | null;
  readonly #object: Deno.PointerObject;
  readonly #unhold: () => void;

  static {
    registration = (name, cookie, object, unhold) =>
      new ComRegistration(name, cookie, object, unhold);
  }

  /** Holds a registration that {@linkcode serveObject} made. */
  private constructor(
    name: string,
    cookie: number,
    object: Deno.PointerObject,
    unhold: () => void,
  ) {
    this.#name = name;
    this.#cookie = cookie;
    this.#object = object;
    this.#unhold = unhold;
  }

  /** The name clients pass to {@linkcode getObject}. */
  get name(): string {
    return this.#name;
  }

  /** The object's `IDispatch` pointer in this process. */
  get unsafePointer(): Deno.PointerObject {
    return this.#object;
  }

  /**
   * Revokes the registration (`IRunningObjectTable::Revoke`); a second call does nothing. From
   * then on the object answers every call, also from clients that still hold it, with
   * `CO_E_OBJNOTCONNECTED`. Called from inside one of the object's own methods, the revocation
   * and the release of the object run once that call has returned.
   */
  close(): void {
    const cookie = this.#cookie;
    if (cookie === null) return;
    this.#cookie = null;
    const state = stateOf(this.#object);
    if (state) {
      state.closed = true;
      dropSinks(state);
    }
    releaseAfterCallbacks(() => {
      try {
        revokeFromRot(cookie); // on the COM thread, which registered it
        release(this.#object);
      } finally {
        this.#unhold();
      }
    });
  }

  /** Whether the registration was revoked ({@linkcode ComRegistration.close}). */
  get closed(): boolean {
    return this.#cookie === null;
  }

  /** Revokes the registration. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Options of {@linkcode serveObject}.
 *
 * @example Declare the events a served object raises
 * ```ts
 * import { type ServeOptions } from "./mod.ts";
 * const options: ServeOptions = { events: ["Tick", "Done"] };
 * ```
 */
export interface ServeOptions {
  /**
   * The events the object raises with {@linkcode raiseEvent}: names (letters, digits, `_`),
   * distinct from its members. Clients connect through `IConnectionPointContainer` (the object
   * then has one connection point, {@linkcode IID_WINIPC_EVENTS}, whose DISPIDs its
   * `GetIDsOfNames` gives for the event names).
   */
  events?: readonly string[];
}

const serveOptionsSchema = z.object({ events: z.array(z.string()).optional() }, {
  error: "must be an object",
}).strict();

/**
 * Serves a TypeScript object over COM: wraps it in an `IDispatch` and registers it in the Running
 * Object Table under the item moniker `!name`, so other processes find it with
 * {@linkcode getObject} and call it. Methods (own or inherited) are callable; other properties
 * can be read and written. Member names match case-insensitively, as in VB. A method that throws
 * reaches the caller as `DISP_E_EXCEPTION` with the error's name and message. Methods must be
 * synchronous (COM calls are) and run on this thread: the COM thread (`_com_thread.ts`) receives
 * each call and hands it over, so nothing polls while idle. While registered, the process stays
 * alive until `close()`.
 *
 * @param name The name to register under (1 to 255 characters, no `!`).
 * @param target The object.
 * @param options Its events.
 * @returns The registration; `close()` revokes it.
 * @throws {TypeError} For a bad name or a target that is not an object.
 * @throws {ComError} When the Running Object Table refuses the registration.
 *
 * @example Serve an object to other processes
 * ```ts
 * import { serveObject } from "./mod.ts";
 * using reg = serveObject("my-calculator", {
 *   add: (a: number, b: number) => a + b,
 *   version: "1.0",
 * });
 * ```
 */
export function serveObject(
  name: string,
  target: object,
  options: ServeOptions = {},
): ComRegistration {
  const item = parseArg(rotNameSchema, name, "name");
  if ((typeof target !== "object" && typeof target !== "function") || target === null) {
    throw new TypeError('Invalid argument "target": must be an object');
  }
  const opts = parseArg(serveOptionsSchema, options, "options");
  const events = checkEvents(target, opts.events);
  const context = `Cannot register "${item}" in the Running Object Table`;
  initCom();
  const object = exposeDispatch(target, { events });
  try {
    // The COM thread registers its wrapper of the object, so calls wake that thread.
    const cookie = registerInRot(object, item, context);
    return registration(item, cookie, object, holdProcess());
  } catch (e) {
    release(object);
    throw e;
  }
}
