/**
 * The client side of COM automation: {@linkcode ComUnknown}, {@linkcode Dispatch} and the
 * {@linkcode ComObject} proxy, and how they are made: {@linkcode createObject}, {@linkcode getObject},
 * {@linkcode setProxyBlanket}.
 *
 * @module
 */
import { z } from "zod";
import {
  CLSCTX_ALL,
  CLSCTX_INPROC_SERVER,
  CLSCTX_LOCAL_SERVER,
  CLSCTX_REMOTE_SERVER,
  formatGuid,
  IID_IDispatch,
  IID_IEnumVARIANT,
  IID_NULL,
  ole32,
  vcall,
} from "../../ffi/ole32.ts";
import {
  DISPATCH_METHOD,
  DISPATCH_PROPERTYGET,
  DISPATCH_PROPERTYPUT,
  DISPATCH_PROPERTYPUTREF,
  DISPID_NEWENUM,
  DISPID_PROPERTYPUT,
  DISPPARAMS,
  EXCEPINFO,
  LOCALE_USER_DEFAULT,
  oleaut32,
  VARIANT_SIZE,
  VT_DISPATCH,
  VT_UNKNOWN,
} from "../../ffi/oleaut32.ts";
import { wide } from "../../ffi/strings.ts";
import { parseArg } from "../_validate.ts";
import { isProxy, OwnedReference, queryInterface, readBstr, release } from "./_base.ts";
import { initCom } from "./apartment.ts";
import {
  checkHr,
  ComError,
  DISP_E_BADPARAMCOUNT,
  DISP_E_EXCEPTION,
  DISP_E_MEMBERNOTFOUND,
  DISP_E_PARAMNOTFOUND,
  DISP_E_PARAMNOTOPTIONAL,
  DISP_E_TYPEMISMATCH,
  E_NOTIMPL,
  failed,
  S_FALSE,
  VB_ERRORS,
} from "./errors.ts";
import { type EventConnection, onEvent } from "./events.ts";
import { type ComValue, readVariant, writeVariant } from "./variant.ts";

// The classes below take raw interface pointers, so their constructors are private: the module
// makes them through these.
export let adoptUnknown: (ptr: Deno.PointerObject) => ComUnknown;
export let adoptDispatch: (ptr: Deno.PointerObject, label?: string) => Dispatch;
export let invokeById: (
  d: Dispatch,
  dispid: number,
  args: unknown[],
) => ComError | undefined;

/**
 * An `IUnknown` that has no `IDispatch`: it can be passed back to COM, queried, and released.
 *
 * @example Pass back and release an object that has no IDispatch
 * ```ts
 * import { ComUnknown, createObject } from "./mod.ts";
 * using server = createObject("Example.Server");
 * const handle = server.Handle; // an object without IDispatch reads as a ComUnknown
 * if (handle instanceof ComUnknown) {
 *   server.Adopt(handle); // passed back to COM as VT_UNKNOWN
 *   handle.release();
 * }
 * ```
 */
export class ComUnknown implements Disposable {
  readonly #ref: OwnedReference;

  static {
    adoptUnknown = (ptr) => new ComUnknown(ptr);
  }

  /** Takes ownership of one reference. */
  private constructor(ptr: Deno.PointerObject) {
    this.#ref = new OwnedReference(this, ptr);
  }

  /**
   * The raw interface pointer.
   *
   * @throws {Deno.errors.BadResource} After `release()`.
   */
  get unsafePointer(): Deno.PointerObject {
    const ptr = this.#ref.pointer;
    if (!ptr) throw new Deno.errors.BadResource("COM object is released");
    return ptr;
  }

  /** Releases the reference; a second call does nothing. */
  release(): void {
    this.#ref.release();
  }

  /** Releases the reference. */
  [Symbol.dispose](): void {
    this.release();
  }
}

type MemberKind = "property" | "method";

export const TKIND_COCLASS = 5;

/** TYPEATTR's type kind and function count (then ReleaseTypeAttr). */
function typeAttr(info: Deno.PointerObject): { typekind: number; funcs: number } {
  const out = new BigUint64Array(1);
  checkHr(vcall(info, 3, ["buffer"], "i32", out) as number, "ITypeInfo::GetTypeAttr", "");
  const attr = Deno.UnsafePointer.create(out[0])!;
  try {
    const view = new Deno.UnsafePointerView(attr);
    return { typekind: view.getUint32(44), funcs: view.getUint16(48) };
  } finally {
    vcall(info, 19, ["pointer"], "void", attr);
  }
}

/**
 * A member as an object's type information describes it ({@linkcode Dispatch.members}).
 *
 * @example List what an object offers
 * ```ts
 * import { getObject, type MemberInfo } from "./mod.ts";
 * using calc = getObject("my-calculator");
 * const members: MemberInfo[] = calc.$dispatch.members();
 * console.log(members.map((m) => `${m.kind} ${m.name}(${m.params})`));
 * ```
 */
export interface MemberInfo {
  /** Its name. */
  name: string;
  /** Its DISPID. */
  dispid: number;
  /** A method, or a property's get, put or putref. */
  kind: "method" | "get" | "put" | "putref";
  /** How many parameters it takes. */
  params: number;
}

/**
 * A late-bound `IDispatch` client. {@linkcode ComObject} (the `Proxy`) is the usual way in;
 * `Dispatch` gives explicit `call`/`get`/`set`.
 *
 * @example Explicit calls
 * ```ts
 * import { createObject } from "./mod.ts";
 * using fso = createObject("Scripting.FileSystemObject");
 * const d = fso.$dispatch;
 * d.call("BuildPath", "C:\\a", "b"); // "C:\\a\\b"
 * ```
 */
export class Dispatch implements Disposable {
  readonly #ref: OwnedReference;
  readonly #ids = new Map<string, number>();
  readonly #kinds = new Map<number, MemberKind>();
  readonly #label: string;
  #proxy?: ComObject;
  #isRemote?: boolean;

  static {
    adoptDispatch = (ptr, label) => new Dispatch(ptr, label);
    invokeById = (d, dispid, args) => {
      const { result, error } = d.#invokeRaw(dispid, DISPATCH_METHOD, args, "event");
      oleaut32().VariantClear(result);
      return error;
    };
  }

  /** Takes ownership of one reference to an IDispatch. */
  private constructor(ptr: Deno.PointerObject, label = "COM object") {
    this.#label = label;
    this.#ref = new OwnedReference(this, ptr);
  }

  /** Whether the object is a proxy of another apartment or process (asked once). */
  #remote(): boolean {
    return this.#isRemote ??= isProxy(this.unsafePointer);
  }

  /** What the object is, for messages (its ProgID or ROT name when known). */
  get label(): string {
    return this.#label;
  }

  /**
   * The raw `IDispatch` pointer.
   *
   * @throws {Deno.errors.BadResource} After `release()`.
   */
  get unsafePointer(): Deno.PointerObject {
    const ptr = this.#ref.pointer;
    if (!ptr) throw new Deno.errors.BadResource(`${this.#label} is released`);
    return ptr;
  }

  /** The `Proxy` over this object. */
  get proxy(): ComObject {
    return this.#proxy ??= makeProxy(this);
  }

  /**
   * The DISPID of a member (`GetIDsOfNames`), cached.
   *
   * @param name The member's name.
   * @returns Its DISPID.
   * @throws {ComError} `DISP_E_UNKNOWNNAME` when the object has no such member.
   */
  dispid(name: string): number {
    const key = name.toLowerCase();
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const keep = wide(name);
    const names = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(keep))),
    ]);
    const out = new Int32Array(1);
    const hr = vcall(
      this.unsafePointer,
      5,
      ["buffer", "buffer", "u32", "u32", "buffer"],
      "i32",
      IID_NULL,
      names,
      1,
      LOCALE_USER_DEFAULT,
      out,
    ) as number;
    void keep;
    if (failed(hr)) {
      throw new ComError("IDispatch::GetIDsOfNames", hr, {
        context: `${this.#label} has no member "${name}"`,
      });
    }
    this.#ids.set(key, out[0]);
    return out[0];
  }

  /**
   * `IDispatch::Invoke`, returning the HRESULT and the raw result VARIANT (the caller clears it).
   */
  #invokeRaw(
    dispid: number,
    flags: number,
    args: unknown[],
    what: string,
  ): { hr: number; result: Uint8Array<ArrayBuffer>; error?: ComError } {
    const isPut = (flags & (DISPATCH_PROPERTYPUT | DISPATCH_PROPERTYPUTREF)) !== 0;
    const argv = new Uint8Array(Math.max(1, args.length) * VARIANT_SIZE);
    const written: number[] = [];
    try {
      // DISPPARAMS holds the arguments last to first.
      args.forEach((arg, i) => {
        writeVariant(argv, (args.length - 1 - i) * VARIANT_SIZE, arg, true, this.#remote());
        written.push(args.length - 1 - i);
      });
      const named = new Int32Array([DISPID_PROPERTYPUT]);
      const params = DISPPARAMS.alloc({
        rgvarg: args.length ? Deno.UnsafePointer.of(argv) : null,
        rgdispidNamedArgs: isPut ? Deno.UnsafePointer.of(named) : null,
        cArgs: args.length,
        cNamedArgs: isPut ? 1 : 0,
      });
      const result = new Uint8Array(VARIANT_SIZE);
      const excep = EXCEPINFO.alloc();
      const argErr = new Uint32Array(1);
      const hr = vcall(
        this.unsafePointer,
        6,
        ["i32", "buffer", "u32", "u16", "buffer", "buffer", "buffer", "buffer"],
        "i32",
        dispid,
        IID_NULL,
        LOCALE_USER_DEFAULT,
        flags,
        params,
        isPut ? null : result,
        excep,
        argErr,
      ) as number;
      let error: ComError | undefined;
      if (failed(hr)) {
        let source: string | undefined;
        let description: string | undefined;
        let code = hr;
        if (hr === DISP_E_EXCEPTION) {
          const e = EXCEPINFO.read(excep);
          if (e.pfnDeferredFillIn) {
            new Deno.UnsafeFnPointer(
              e.pfnDeferredFillIn as Deno.PointerObject<
                { parameters: ["buffer"]; result: "i32" }
              >,
              { parameters: ["buffer"], result: "i32" },
            ).call(excep);
          }
          const filled = EXCEPINFO.read(excep);
          source = readBstr(filled.bstrSource) || undefined;
          description = readBstr(filled.bstrDescription) || undefined;
          for (const p of [filled.bstrSource, filled.bstrDescription, filled.bstrHelpFile]) {
            if (p) oleaut32().SysFreeString(p);
          }
          if (filled.scode) code = filled.scode;
          else if (filled.wCode) code = 0x800a_0000 | filled.wCode;
        }
        // Servers that fail with a VB run-time error HRESULT and no EXCEPINFO (Wine's scrrun
        // does) still get a readable description.
        description ??= VB_ERRORS[(code >>> 0) - 0x800a_0000];
        error = new ComError("IDispatch::Invoke", code, {
          context: `${what} failed on ${this.#label}`,
          source,
          description,
        });
      }
      return { hr, result, error };
    } finally {
      for (const i of written) oleaut32().VariantClear(argv.subarray(i * VARIANT_SIZE));
    }
  }

  #invoke(name: string, flags: number, args: unknown[]): ComValue {
    const dispid = this.dispid(name);
    const { result, error } = this.#invokeRaw(dispid, flags, args, `"${name}"`);
    if (error) throw error;
    try {
      return readVariant(Deno.UnsafePointer.of(result)!);
    } finally {
      oleaut32().VariantClear(result);
    }
  }

  /**
   * Calls a method (`DISPATCH_METHOD | DISPATCH_PROPERTYGET`, as VBScript does).
   *
   * @param name The method's name (case-insensitive).
   * @param args The arguments; `undefined` leaves an optional argument out.
   * @returns The result.
   * @throws {ComError} When the call fails (`DISP_E_UNKNOWNNAME`, `DISP_E_EXCEPTION`, ...).
   */
  call(name: string, ...args: unknown[]): ComValue {
    return this.#invoke(name, DISPATCH_METHOD | DISPATCH_PROPERTYGET, args);
  }

  /**
   * Reads a property (`DISPATCH_PROPERTYGET`), with index arguments if it takes any.
   *
   * @param name The property's name.
   * @param args Index arguments (e.g. the key of `Dictionary.Item`).
   * @returns The value.
   * @throws {ComError} When the read fails.
   */
  get(name: string, ...args: unknown[]): ComValue {
    return this.#invoke(name, DISPATCH_PROPERTYGET, args);
  }

  /**
   * Writes a property (`DISPATCH_PROPERTYPUT`; `DISPATCH_PROPERTYPUTREF` for an object value).
   *
   * @param name The property's name.
   * @param args Index arguments, then the value (e.g. `set("Item", "key", 5)`).
   * @throws {ComError} When the write fails.
   */
  set(name: string, ...args: unknown[]): void {
    if (args.length === 0) throw new TypeError(`Invalid arguments: set("${name}") needs a value`);
    const value = args.at(-1);
    const byRef = typeof value === "object" && value !== null && !(value instanceof Date) &&
      !Array.isArray(value) && !(value instanceof Uint8Array);
    const result = this.#invoke(name, byRef ? DISPATCH_PROPERTYPUTREF : DISPATCH_PROPERTYPUT, args);
    void result;
  }

  /**
   * Reads a member through the proxy: a property's value, or a function for a method (a member
   * that refuses a plain property get).
   */
  access(name: string): ComValue | ((...args: unknown[]) => ComValue) {
    const dispid = this.dispid(name);
    const call = (...args: unknown[]) => this.call(name, ...args);
    if (this.#kinds.get(dispid) === "method") return call;
    const { hr, result, error } = this.#invokeRaw(dispid, DISPATCH_PROPERTYGET, [], `"${name}"`);
    try {
      if (
        hr === DISP_E_MEMBERNOTFOUND || hr === DISP_E_BADPARAMCOUNT ||
        hr === DISP_E_PARAMNOTOPTIONAL || hr === DISP_E_PARAMNOTFOUND ||
        hr === DISP_E_TYPEMISMATCH
      ) {
        this.#kinds.set(dispid, "method");
        return call;
      }
      if (error) throw error;
      this.#kinds.set(dispid, "property");
      return readVariant(Deno.UnsafePointer.of(result)!);
    } finally {
      oleaut32().VariantClear(result);
    }
  }

  /**
   * Walks the collection through `_NewEnum` (`DISPID_NEWENUM`) and `IEnumVARIANT::Next`.
   *
   * @throws {ComError} When the object is not a collection.
   */
  *[Symbol.iterator](): IterableIterator<ComValue> {
    const { result, error } = this.#invokeRaw(
      DISPID_NEWENUM,
      DISPATCH_METHOD | DISPATCH_PROPERTYGET,
      [],
      "_NewEnum",
    );
    if (error) throw error;
    let enumerator: Deno.PointerObject | null = null;
    try {
      const view = new DataView(result.buffer);
      const vt = view.getUint16(0, true);
      const unknown = Deno.UnsafePointer.create(view.getBigUint64(8, true));
      if ((vt !== VT_UNKNOWN && vt !== VT_DISPATCH) || !unknown) {
        throw new ComError("IDispatch::Invoke", DISP_E_TYPEMISMATCH, {
          context: `_NewEnum of ${this.#label} returned VARTYPE ${vt}, not an enumerator`,
        });
      }
      const [e, hr] = queryInterface(unknown, IID_IEnumVARIANT);
      if (!e) {
        throw new ComError("IUnknown::QueryInterface(IEnumVARIANT)", hr, {
          context: `Cannot enumerate ${this.#label}`,
        });
      }
      enumerator = e;
    } finally {
      oleaut32().VariantClear(result);
    }
    try {
      const item = new Uint8Array(VARIANT_SIZE);
      const fetched = new Uint32Array(1);
      for (;;) {
        const hr = vcall(enumerator, 3, ["u32", "buffer", "buffer"], "i32", 1, item, fetched);
        checkHr(hr as number, "IEnumVARIANT::Next", `Cannot enumerate ${this.#label}`);
        if (hr === S_FALSE || fetched[0] === 0) return;
        try {
          yield readVariant(Deno.UnsafePointer.of(item)!);
        } finally {
          oleaut32().VariantClear(item);
        }
      }
    } finally {
      release(enumerator);
    }
  }

  /**
   * The object's members as its type information describes them (`IDispatch::GetTypeInfo`,
   * following a coclass to its interface): one entry per function, property get and put.
   *
   * @returns The members, in the type information's order.
   * @throws {ComError} When the object gives no type information (`E_NOTIMPL`, or a count of 0).
   */
  members(): MemberInfo[] {
    const context = `Cannot read the type information of ${this.#label}`;
    const count = new Uint32Array(1);
    checkHr(
      vcall(this.unsafePointer, 3, ["buffer"], "i32", count) as number,
      "IDispatch::GetTypeInfoCount",
      context,
    );
    if (count[0] === 0) {
      throw new ComError("IDispatch::GetTypeInfoCount", E_NOTIMPL, {
        context: `${context}: it has none`,
      });
    }
    const out = new BigUint64Array(1);
    checkHr(
      vcall(
        this.unsafePointer,
        4,
        ["u32", "u32", "buffer"],
        "i32",
        0,
        LOCALE_USER_DEFAULT,
        out,
      ) as number,
      "IDispatch::GetTypeInfo",
      context,
    );
    let info = Deno.UnsafePointer.create(out[0])!;
    try {
      if (typeAttr(info).typekind === TKIND_COCLASS) {
        const href = new Uint32Array(1);
        checkHr(
          vcall(info, 8, ["u32", "buffer"], "i32", 0, href) as number,
          "ITypeInfo::GetRefTypeOfImplType",
          context,
        );
        checkHr(
          vcall(info, 14, ["u32", "buffer"], "i32", href[0], out) as number,
          "ITypeInfo::GetRefTypeInfo",
          context,
        );
        release(info);
        info = Deno.UnsafePointer.create(out[0])!;
      }
      const { funcs } = typeAttr(info);
      const members: MemberInfo[] = [];
      for (let i = 0; i < funcs; i++) {
        checkHr(
          vcall(info, 5, ["u32", "buffer"], "i32", i, out) as number,
          "ITypeInfo::GetFuncDesc",
          context,
        );
        const desc = Deno.UnsafePointer.create(out[0])!;
        try {
          // FUNCDESC: memid @0, invkind @28, cParams @36
          const view = new Deno.UnsafePointerView(desc);
          const dispid = view.getInt32(0);
          const invkind = view.getUint32(28);
          const params = view.getInt16(36);
          const name = new BigUint64Array(1);
          vcall(
            info,
            12,
            ["i32", "buffer", "pointer", "pointer", "pointer"],
            "i32",
            dispid,
            name,
            null,
            null,
            null,
          );
          const namePtr = Deno.UnsafePointer.create(name[0]);
          const text = readBstr(namePtr);
          if (namePtr) oleaut32().SysFreeString(namePtr);
          const kind: MemberInfo["kind"] = invkind === 2
            ? "get"
            : invkind === 4
            ? "put"
            : invkind === 8
            ? "putref"
            : "method";
          members.push({ name: text, dispid, kind, params });
        } finally {
          vcall(info, 20, ["pointer"], "void", desc);
        }
      }
      return members;
    } finally {
      release(info);
    }
  }

  /** Whether `release()` has run. */
  get released(): boolean {
    return this.#ref.pointer === null;
  }

  /** Releases the reference; a second call does nothing. */
  release(): void {
    this.#ref.release();
  }

  /** Releases the reference. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A late-bound automation object: any member name reads a property or returns a callable
 * method; assigning to a member writes a property. Members starting with `$` are winipc's:
 * `$call(name, ...args)`, `$get(name, ...args)`, `$set(name, ...args, value)`, `$release()`,
 * `$dispatch` (the {@linkcode Dispatch}). It is iterable (`_NewEnum`) and disposable.
 *
 * @example Properties, methods, indexed properties and iteration
 * ```ts
 * import { type ComObject, createObject } from "./mod.ts";
 * using dict: ComObject = createObject("Scripting.Dictionary");
 * dict.Add("a", 1);
 * dict.$set("Item", "b", 2); // dict.Item("b") = 2
 * console.log(dict.Count, dict.$get("Item", "a")); // 2 1
 * for (const key of dict) console.log(key);
 * ```
 */
export interface ComObject extends Disposable, Iterable<ComValue> {
  /** Calls a method explicitly. */
  $call(name: string, ...args: unknown[]): ComValue;
  /** Reads a property explicitly (with index arguments). */
  $get(name: string, ...args: unknown[]): ComValue;
  /** Writes a property explicitly: index arguments, then the value. */
  $set(name: string, ...args: unknown[]): void;
  /** Releases the reference. */
  $release(): void;
  /** The underlying client. */
  readonly $dispatch: Dispatch;
  /** Connects a handler to an event ({@linkcode onEvent}). */
  $on(event: string, handler: (...args: ComValue[]) => void): EventConnection;
  /** Any member of the automation object. */
  // deno-lint-ignore no-explicit-any
  [member: string]: any;
}

export const proxies = new WeakMap<object, Dispatch>();

function makeProxy(d: Dispatch): ComObject {
  const target = Object.create(null);
  const proxy = new Proxy(target, {
    get(_t, prop) {
      if (typeof prop === "symbol") {
        if (prop === Symbol.dispose) return () => d.release();
        if (prop === Symbol.iterator) return () => d[Symbol.iterator]();
        if (prop === Symbol.for("Deno.customInspect")) {
          return () => `ComObject <${d.label}>${d.released ? " (released)" : ""}`;
        }
        return undefined;
      }
      switch (prop) {
        case "then":
        case "toJSON":
        case "constructor":
          return undefined;
        case "$call":
          return (name: string, ...args: unknown[]) => d.call(name, ...args);
        case "$get":
          return (name: string, ...args: unknown[]) => d.get(name, ...args);
        case "$set":
          return (name: string, ...args: unknown[]) => d.set(name, ...args);
        case "$release":
          return () => d.release();
        case "$dispatch":
          return d;
        case "$on":
          return (event: string, handler: (...args: ComValue[]) => void) =>
            onEvent(d, event, handler);
      }
      return d.access(prop);
    },
    set(_t, prop, value) {
      if (typeof prop === "symbol") return false;
      d.set(prop, value);
      return true;
    },
    has(_t, prop) {
      if (typeof prop === "symbol") return prop === Symbol.iterator || prop === Symbol.dispose;
      try {
        d.dispid(prop);
        return true;
      } catch {
        return false;
      }
    },
  }) as ComObject;
  proxies.set(proxy, d);
  return proxy;
}

export function wrapDispatch(ptr: Deno.PointerObject, label?: string): ComObject {
  return adoptDispatch(ptr, label).proxy;
}

/** The IDispatch pointer behind a ComObject proxy or Dispatch, if `value` is one. */
export function dispatchOf(value: unknown): Deno.PointerObject | null {
  if (value instanceof Dispatch) return value.unsafePointer;
  const d = typeof value === "object" && value !== null ? proxies.get(value) : undefined;
  return d ? d.unsafePointer : null;
}

// ---------------------------------------------------------------------------------------------
// Creating and finding objects

/**
 * Where `createObject` may run the server.
 *
 * @example Insist on an out-of-process server
 * ```ts
 * import { createObject } from "./mod.ts";
 * using excel = createObject("Excel.Application", { context: "local" });
 * ```
 */
export type ServerContext = "any" | "inproc" | "local" | "remote";

/**
 * Options of {@linkcode createObject}.
 *
 * @example Create an object on another machine (DCOM)
 * ```ts
 * import { createObject } from "./mod.ts";
 * using fso = createObject("Scripting.FileSystemObject", { host: "buildserver", context: "remote" });
 * ```
 */
export interface CreateObjectOptions {
  /**
   * Which kind of server to use (`CLSCTX_*`): `"any"` (default, `CLSCTX_ALL`), `"inproc"`,
   * `"local"` (an out-of-process server) or `"remote"`.
   */
  context?: ServerContext;
  /**
   * DCOM: the host to create the object on (`CoCreateInstanceEx` with a `COSERVERINFO`). The
   * host must allow remote activation for the class (DCOMCNFG). Wine ignores the host and creates
   * the object locally.
   */
  host?: string;
  /**
   * DCOM security: sent as the `COAUTHINFO` of `CoCreateInstanceEx` (with `host`), and set on the
   * returned proxy with `CoSetProxyBlanket` (see {@linkcode setProxyBlanket}).
   */
  auth?: ComAuth;
}

/**
 * DCOM authentication for {@linkcode createObject} and {@linkcode setProxyBlanket}: the
 * authentication service, level, impersonation level, and an explicit identity (else the
 * process's own).
 *
 * @example Connect as another user, with packet privacy
 * ```ts
 * import { type ComAuth } from "./mod.ts";
 * const auth: ComAuth = { user: "svc", domain: "CORP", password: "secret", level: "privacy" };
 * ```
 */
export interface ComAuth {
  /** `RPC_C_AUTHN_*`: "default" (default), "winnt" (NTLM), "kerberos", "negotiate". */
  service?: "default" | "winnt" | "kerberos" | "negotiate";
  /** `RPC_C_AUTHN_LEVEL_*` (default "default"). */
  level?: "default" | "none" | "connect" | "call" | "packet" | "integrity" | "privacy";
  /** `RPC_C_IMP_LEVEL_*` (default "impersonate"). */
  impersonation?: "default" | "anonymous" | "identify" | "impersonate" | "delegate";
  /** An explicit identity (`COAUTHIDENTITY`); with `domain` and `password`. */
  user?: string;
  /** The identity's domain. */
  domain?: string;
  /** The identity's password. */
  password?: string;
}

const authSchema = z.object({
  service: z.enum(["default", "winnt", "kerberos", "negotiate"]).optional(),
  level: z.enum(["default", "none", "connect", "call", "packet", "integrity", "privacy"])
    .optional(),
  impersonation: z.enum(["default", "anonymous", "identify", "impersonate", "delegate"])
    .optional(),
  user: z.string().max(256).optional(),
  domain: z.string().max(256).optional(),
  password: z.string().max(256).optional(),
}, { error: "must be an object" }).strict();

const AUTHN_SERVICES = { default: 0xffff_ffff, winnt: 10, kerberos: 16, negotiate: 9 };
const AUTHN_LEVELS = {
  default: 0,
  none: 1,
  connect: 2,
  call: 3,
  packet: 4,
  integrity: 5,
  privacy: 6,
};
const IMP_LEVELS = { default: 0, anonymous: 1, identify: 2, impersonate: 3, delegate: 4 };

/** The native COAUTHIDENTITY (or null) and the buffers it points into. */
function authIdentity(auth: ComAuth): { ptr: Deno.PointerObject | null; keep: unknown[] } {
  if (auth.user === undefined) return { ptr: null, keep: [] };
  const user = wide(auth.user);
  const domain = wide(auth.domain ?? "");
  const password = wide(auth.password ?? "");
  // COAUTHIDENTITY { USHORT *User; ULONG UserLength; USHORT *Domain; ULONG DomainLength;
  //                  USHORT *Password; ULONG PasswordLength; ULONG Flags } = 48 bytes
  const id = new DataView(new ArrayBuffer(48));
  const at = (b: Uint16Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  id.setBigUint64(0, at(user), true);
  id.setUint32(8, auth.user.length, true);
  id.setBigUint64(16, at(domain), true);
  id.setUint32(24, (auth.domain ?? "").length, true);
  id.setBigUint64(32, at(password), true);
  id.setUint32(40, (auth.password ?? "").length, true);
  id.setUint32(44, 2, true); // SEC_WINNT_AUTH_IDENTITY_UNICODE
  return { ptr: Deno.UnsafePointer.of(id.buffer), keep: [user, domain, password, id] };
}

/**
 * Sets the security of calls through a proxy (`CoSetProxyBlanket`): authentication service and
 * level, impersonation level and identity. Only proxies (objects in another process or machine)
 * have a blanket; an in-process object gives `E_NOINTERFACE`.
 *
 * @param object The object.
 * @param auth The settings.
 * @throws {ComError} When `CoSetProxyBlanket` fails.
 *
 * @example Raise the authentication level of an object from another process
 * ```ts
 * import { getObject, setProxyBlanket } from "./mod.ts";
 * using remote = getObject("my-service");
 * setProxyBlanket(remote, { level: "privacy", impersonation: "identify" });
 * ```
 */
export function setProxyBlanket(object: ComObject | Dispatch, auth: ComAuth): void {
  const opts = parseArg(authSchema, auth, "auth");
  const d = object instanceof Dispatch ? object : proxies.get(object as object);
  if (!d) throw new TypeError('Invalid argument "object": must be a COM object');
  applyBlanket(d.unsafePointer, opts, d.label);
}

function applyBlanket(ptr: Deno.PointerObject, auth: ComAuth, label: string): void {
  const identity = authIdentity(auth);
  const hr = ole32().CoSetProxyBlanket(
    ptr,
    AUTHN_SERVICES[auth.service ?? "default"],
    0xffff_ffff, // RPC_C_AUTHZ_DEFAULT
    null,
    AUTHN_LEVELS[auth.level ?? "default"],
    IMP_LEVELS[auth.impersonation ?? "impersonate"],
    identity.ptr,
    0, // EOAC_NONE
  );
  void identity.keep;
  checkHr(hr, "CoSetProxyBlanket", `Cannot set the security of ${label}`);
}

const createOptionsSchema = z.object({
  context: z.enum(["any", "inproc", "local", "remote"], {
    error: "must be any, inproc, local or remote",
  }).optional(),
  host: z.string().min(1, { error: "must not be empty" }).max(255).optional(),
  auth: authSchema.optional(),
}).strict().optional();

const progIdSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });

const CONTEXTS: Record<ServerContext, number> = {
  any: CLSCTX_ALL,
  inproc: CLSCTX_INPROC_SERVER,
  local: CLSCTX_LOCAL_SERVER,
  remote: CLSCTX_REMOTE_SERVER,
};

/**
 * Looks up a class: a ProgID (`Scripting.Dictionary`) through `CLSIDFromProgID`, or a CLSID in
 * braces as is.
 *
 * @param progId The ProgID or `{CLSID}`.
 * @returns The CLSID's 16 bytes and its string form.
 * @throws {ComError} `CO_E_CLASSSTRING` when no such class is registered.
 *
 * @example The CLSID of a ProgID
 * ```ts
 * import { classId } from "./mod.ts";
 * classId("Scripting.Dictionary").text; // "{EE09B103-97E0-11CF-978F-00A02463E06F}"
 * ```
 */
export function classId(progId: string): { clsid: Uint8Array<ArrayBuffer>; text: string } {
  const name = parseArg(progIdSchema, progId, "progId");
  initCom();
  const clsid = new Uint8Array(16);
  const fn = name.startsWith("{") ? "CLSIDFromString" : "CLSIDFromProgID";
  const hr = name.startsWith("{")
    ? ole32().CLSIDFromString(wide(name), clsid)
    : ole32().CLSIDFromProgID(wide(name), clsid);
  checkHr(hr, fn, `Cannot find COM class "${name}"`);
  return { clsid, text: formatGuid(clsid) };
}

/**
 * Creates an automation object and returns it late-bound.
 *
 * @param progId A ProgID (`Scripting.Dictionary`) or a `{CLSID}`.
 * @param options Server context, DCOM host and authentication.
 * @returns The object; `using` releases it.
 * @throws {TypeError} For a bad argument.
 * @throws {ComError} `CO_E_CLASSSTRING` for an unknown ProgID, `REGDB_E_CLASSNOTREG`,
 * `E_NOINTERFACE` when the object has no IDispatch, or the error of `CoCreateInstance(Ex)`.
 *
 * @example Create an automation object
 * ```ts
 * import { createObject } from "./mod.ts";
 * using fso = createObject("Scripting.FileSystemObject");
 * console.log(fso.BuildPath("C:\\a", "b"), fso.FolderExists("C:\\windows"));
 * ```
 */
export function createObject(progId: string, options?: CreateObjectOptions): ComObject {
  const opts = parseArg(createOptionsSchema, options, "options") ?? {};
  const { clsid } = classId(progId);
  const context = `Cannot create "${progId}"`;
  const ctx = CONTEXTS[opts.context ?? "any"];
  const out = new BigUint64Array(1);
  if (opts.host === undefined) {
    checkHr(
      ole32().CoCreateInstance(clsid, null, ctx, IID_IDispatch, out),
      "CoCreateInstance",
      context,
    );
    const object = wrapDispatch(Deno.UnsafePointer.create(out[0])!, progId);
    if (opts.auth) applyAuthToProxy(object, opts.auth);
    return object;
  }
  // COSERVERINFO { DWORD dwReserved1; LPWSTR pwszName; COAUTHINFO *pAuthInfo; DWORD dwReserved2 }
  const host = wide(opts.host);
  const serverInfo = new BigUint64Array(4);
  serverInfo[1] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(host)));
  // COAUTHINFO { DWORD dwAuthnSvc; DWORD dwAuthzSvc; LPWSTR pwszServerPrincName;
  //              DWORD dwAuthnLevel; DWORD dwImpersonationLevel; COAUTHIDENTITY *pAuthIdentityData;
  //              DWORD dwCapabilities } = 40 bytes
  const identity = opts.auth ? authIdentity(opts.auth) : { ptr: null, keep: [] };
  const authInfo = new DataView(new ArrayBuffer(40));
  if (opts.auth) {
    authInfo.setUint32(0, AUTHN_SERVICES[opts.auth.service ?? "default"], true);
    authInfo.setUint32(4, 0xffff_ffff, true);
    authInfo.setUint32(16, AUTHN_LEVELS[opts.auth.level ?? "default"], true);
    authInfo.setUint32(20, IMP_LEVELS[opts.auth.impersonation ?? "impersonate"], true);
    authInfo.setBigUint64(24, BigInt(Deno.UnsafePointer.value(identity.ptr)), true);
    serverInfo[2] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(authInfo.buffer)));
  }
  // MULTI_QI { const IID *pIID; IUnknown *pItf; HRESULT hr }
  const qi = new BigUint64Array(3);
  qi[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(IID_IDispatch)));
  const hr = ole32().CoCreateInstanceEx(
    clsid,
    null,
    opts.context ? ctx : CLSCTX_LOCAL_SERVER | CLSCTX_REMOTE_SERVER | CLSCTX_INPROC_SERVER,
    new Uint8Array(serverInfo.buffer),
    1,
    new Uint8Array(qi.buffer),
  );
  void host;
  void identity.keep;
  checkHr(hr, "CoCreateInstanceEx", `${context} on host "${opts.host}"`);
  const qiHr = new Int32Array(qi.buffer)[4];
  checkHr(qiHr, "CoCreateInstanceEx", `${context} on host "${opts.host}" (IDispatch)`);
  const object = wrapDispatch(Deno.UnsafePointer.create(qi[1])!, `${progId} on ${opts.host}`);
  if (opts.auth) applyAuthToProxy(object, opts.auth);
  return object;
}

/**
 * Sets the blanket on a newly created object when it is a proxy (an in-process object has none:
 * E_NOINTERFACE is not an error there); releases the object when it fails otherwise.
 */
function applyAuthToProxy(object: ComObject, auth: ComAuth): void {
  const d = object.$dispatch;
  try {
    applyBlanket(d.unsafePointer, auth, d.label);
  } catch (e) {
    if (e instanceof ComError && e.hresultName === "E_NOINTERFACE") return;
    d.release();
    throw e;
  }
}

export function withRot<T>(context: string, fn: (rot: Deno.PointerObject) => T): T {
  initCom();
  const out = new BigUint64Array(1);
  checkHr(ole32().GetRunningObjectTable(0, out), "GetRunningObjectTable", context);
  const rot = Deno.UnsafePointer.create(out[0])!;
  try {
    return fn(rot);
  } finally {
    release(rot);
  }
}

export function itemMoniker(name: string, context: string): Deno.PointerObject {
  const out = new BigUint64Array(1);
  checkHr(ole32().CreateItemMoniker(wide("!"), wide(name), out), "CreateItemMoniker", context);
  return Deno.UnsafePointer.create(out[0])!;
}

export const rotNameSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0") && !s.includes("!"), { error: 'must not contain NUL or "!"' });

/**
 * Finds an object registered in the Running Object Table under an item moniker `!name` (by
 * {@linkcode serveObject} in this or another process), like VB's `GetObject`.
 *
 * @param name The name it was registered under.
 * @returns The object, late-bound; calls on it go to the serving process.
 * @throws {ComError} `MK_E_UNAVAILABLE` when nothing is registered under the name.
 *
 * @example Call an object another process serves
 * ```ts
 * import { getObject } from "./mod.ts";
 * using calc = getObject("my-calculator");
 * console.log(calc.add(2, 3));
 * ```
 */
export function getObject(name: string): ComObject {
  const item = parseArg(rotNameSchema, name, "name");
  const context = `Cannot find "${item}" in the Running Object Table`;
  return withRot(context, (rot) => {
    const moniker = itemMoniker(item, context);
    try {
      const out = new BigUint64Array(1);
      const hr = vcall(rot, 6, ["pointer", "buffer"], "i32", moniker, out) as number;
      checkHr(hr, "IRunningObjectTable::GetObject", context);
      const unknown = Deno.UnsafePointer.create(out[0])!;
      const [dispatch, qiHr] = queryInterface(unknown, IID_IDispatch);
      release(unknown);
      if (!dispatch) {
        throw new ComError("IUnknown::QueryInterface(IDispatch)", qiHr, { context });
      }
      return wrapDispatch(dispatch, `"${item}"`);
    } finally {
      release(moniker);
    }
  });
}
