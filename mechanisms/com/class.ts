/**
 * An activatable class: {@linkcode registerClass} registers a class object
 * (`CoRegisterClassObject`) and, if asked, its ProgID and CLSID for the current user.
 *
 * @module
 */
import { z } from "zod";
import {
  advapi32,
  HKEY_CURRENT_USER,
  KEY_ALL_ACCESS,
  REG_CREATED_NEW_KEY,
  REG_SZ,
} from "../../ffi/advapi32.ts";
import { guid, IID_IUnknown, vcall } from "../../ffi/ole32.ts";
import { wide } from "../../ffi/strings.ts";
import { inCallback, releaseAfterCallbacks } from "../_pump.ts";
import { parseArg } from "../_validate.ts";
import {
  addDescriber,
  FACET,
  holdProcess,
  registerClassObject,
  revokeClassObject,
} from "./_com_thread.ts";
import { initCom } from "./apartment.ts";
import { ComError, E_FAIL, E_NOINTERFACE, E_POINTER, S_OK } from "./errors.ts";
import {
  buildVtable,
  callbacks,
  checkEvents,
  eventsSchema,
  exposeDispatch,
  facetMemory,
  guidEquals,
  keyOf,
  pointerOf,
  queryServed,
  releaseServed,
  stateOf,
  writePointer,
} from "./server.ts";

/**
 * Options of {@linkcode registerClass}.
 *
 * @example A class other processes create by ProgID
 * ```ts
 * import { type ClassOptions } from "./mod.ts";
 * const options: ClassOptions = {
 *   progId: "Demo.Calculator",
 *   clsid: "{8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}",
 *   create: () => ({ add: (a: number, b: number) => a + b }),
 *   register: true,
 * };
 * ```
 */
export interface ClassOptions {
  /** The ProgID (`Vendor.Name` or `Vendor.Name.1`; letters, digits, `_`, dots; at most 39). */
  progId: string;
  /** The CLSID in registry form, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`. */
  clsid: string;
  /** Makes the TypeScript object for each `CoCreateInstance` (synchronous). */
  create: () => object;
  /** The events each object raises with {@linkcode raiseEvent} (as in {@linkcode ServeOptions}). */
  events?: readonly string[];
  /**
   * Also write the per-user registration under `HKCU\Software\Classes` (ProgID → CLSID, and
   * `CLSID\{...}\LocalServer32` naming this program), so `CreateObject("<ProgID>")` finds the
   * class; `unregister()` deletes the keys it created. Default `false`.
   */
  register?: boolean;
}

const classOptionsSchema = z.object({
  progId: z.string({ error: "must be a string" }).max(39, {
    error: "must be at most 39 characters",
  })
    .regex(/^[A-Za-z_]\w*(\.\w+)+$/, {
      error: 'must be a ProgID like "Vendor.Name" (letters, digits, _ and dots)',
    }),
  clsid: z.string({ error: "must be a string" }).regex(
    /^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$/,
    { error: "must be a CLSID like {8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}" },
  ),
  create: z.custom<() => object>((v) => typeof v === "function", { error: "must be a function" }),
  events: z.array(z.string()).optional(),
  register: z.boolean({ error: "must be a boolean" }).optional(),
}, { error: "must be an object" }).strict();

const IID_IClassFactory = guid("00000001-0000-0000-C000-000000000046");
const CLASS_E_NOAGGREGATION = 0x8004_0110 | 0;

interface Factory {
  create: () => object;
  events: string[];
  refs: number;
  memory: Uint8Array<ArrayBuffer>;
  /** Unregistered: forgotten (with its memory) when the last reference goes. */
  retired: boolean;
}

const factories = new Map<bigint, Factory>();

// How the COM thread's wrappers know a class factory (see `_com_thread.ts`).
addDescriber((pointer) =>
  factories.has(pointer)
    ? {
      main: Deno.UnsafePointer.create(pointer)!,
      container: null,
      point: null,
      sinkIid: null,
      factory: true,
      facet: FACET.factory,
    }
    : undefined
);

let factoryVtable: BigUint64Array<ArrayBuffer> | undefined;

function buildFactoryVtable(): BigUint64Array<ArrayBuffer> {
  if (factoryVtable) return factoryVtable;
  buildVtable();
  const queryCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const factory = self ? factories.get(keyOf(self)) : undefined;
      if (factory && (guidEquals(riid, IID_IUnknown) || guidEquals(riid, IID_IClassFactory))) {
        factory.refs++;
        writePointer(out, self);
        return S_OK;
      }
      writePointer(out, null);
      return E_NOINTERFACE;
    },
  );
  const addRefCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const factory = self ? factories.get(keyOf(self)) : undefined;
      return factory ? ++factory.refs : 0;
    },
  );
  // The registration holds one reference; the COM thread's wrapper another while it lives. The
  // factory (and its memory) is forgotten once it is unregistered and the last one goes.
  const releaseCb = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const factory = self ? factories.get(keyOf(self)) : undefined;
      if (!factory) return 0;
      const left = Math.max(0, --factory.refs);
      if (left === 0 && factory.retired) factories.delete(keyOf(self));
      return left;
    },
  );
  const createInstanceCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, outer, riid, out) =>
      inCallback(() => {
        if (!out) return E_POINTER;
        writePointer(out, null);
        if (outer) return CLASS_E_NOAGGREGATION;
        const factory = self ? factories.get(keyOf(self)) : undefined;
        if (!factory) return E_FAIL;
        let target: unknown;
        try {
          target = factory.create();
        } catch {
          return E_FAIL;
        }
        if ((typeof target !== "object" && typeof target !== "function") || target === null) {
          return E_FAIL;
        }
        try {
          checkEvents(target, factory.events); // an event may not share a member's name
        } catch {
          return E_FAIL;
        }
        const object = exposeDispatch(target, { events: factory.events });
        const hr = queryServed(object, stateOf(object)!, riid, out);
        releaseServed(object);
        return hr;
      }),
  );
  const lockServerCb = new Deno.UnsafeCallback(
    { parameters: ["pointer", "i32"], result: "i32" } as const,
    () => S_OK,
  );
  const table = [queryCb, addRefCb, releaseCb, createInstanceCb, lockServerCb];
  callbacks.push(...table);
  factoryVtable = new BigUint64Array(
    table.map((cb) => BigInt(Deno.UnsafePointer.value(cb.pointer))),
  );
  return factoryVtable;
}

/** Writes a REG_SZ value (`name` null: the key's default value). */
function setRegistryString(key: Deno.PointerObject, name: string | null, value: string): void {
  const data = wide(value);
  const status = advapi32().RegSetValueExW(
    key,
    name === null ? null : wide(name),
    0,
    REG_SZ,
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    data.byteLength,
  );
  if (status !== 0) {
    throw new ComError("RegSetValueExW", 0x8007_0000 | status, {
      context: "Cannot write the class registration",
    });
  }
}

/** Creates (or opens) HKCU\<path>, sets its values; returns whether it was created. */
function writeKey(path: string, values: Record<string, string>): boolean {
  const out = new BigUint64Array(1);
  const disposition = new Uint32Array(1);
  const status = advapi32().RegCreateKeyExW(
    HKEY_CURRENT_USER,
    wide(path),
    0,
    null,
    0,
    KEY_ALL_ACCESS,
    null,
    out,
    disposition,
  );
  if (status !== 0) {
    throw new ComError("RegCreateKeyExW", 0x8007_0000 | status, {
      context: `Cannot create HKCU\\${path}`,
    });
  }
  const key = Deno.UnsafePointer.create(out[0])!;
  try {
    for (const [name, value] of Object.entries(values)) {
      setRegistryString(key, name === "" ? null : name, value);
    }
  } finally {
    advapi32().RegCloseKey(key);
  }
  return disposition[0] === REG_CREATED_NEW_KEY;
}

/** The command line that starts this program again (`LocalServer32`). */
function selfCommandLine(): string {
  const exe = Deno.execPath();
  const main = Deno.mainModule.startsWith("file:")
    ? decodeURI(new URL(Deno.mainModule).pathname)
      .replace(/^\/([A-Za-z]:)/, "$1").replaceAll("/", "\\")
    : "";
  const isDeno = /(^|[\\/])deno(\.exe)?$/i.test(exe);
  return isDeno && main ? `"${exe}" run -A "${main}"` : `"${exe}"`;
}

let classRegistration: (
  progId: string,
  clsid: string,
  cookie: number,
  factory: Uint8Array<ArrayBuffer>,
  keys: string[],
  unhold: () => void,
) => ClassRegistration;

/**
 * A class registered with {@linkcode registerClass}. `unregister()` (or `using`) revokes the class
 * object and deletes the registry keys it created.
 *
 * @example Serve a class until disposed
 * ```ts
 * import { registerClass } from "./mod.ts";
 * using reg = registerClass({
 *   progId: "Demo.Echo",
 *   clsid: "{0D6C4B1A-7E2F-4A3B-8C9D-1E2F3A4B5C6D}",
 *   create: () => ({ echo: (x: unknown) => x }),
 * });
 * console.log(reg.progId, reg.clsid);
 * ```
 */
export class ClassRegistration implements Disposable {
  readonly #progId: string;
  readonly #clsid: string;
  #cookie: number | null;
  readonly #factory: Uint8Array<ArrayBuffer>;
  readonly #keys: string[];
  readonly #unhold: () => void;

  static {
    classRegistration = (progId, clsid, cookie, factory, keys, unhold) =>
      new ClassRegistration(progId, clsid, cookie, factory, keys, unhold);
  }

  /** Holds what {@linkcode registerClass} made. */
  private constructor(
    progId: string,
    clsid: string,
    cookie: number,
    factory: Uint8Array<ArrayBuffer>,
    keys: string[],
    unhold: () => void,
  ) {
    this.#progId = progId;
    this.#clsid = clsid;
    this.#cookie = cookie;
    this.#factory = factory;
    this.#keys = keys;
    this.#unhold = unhold;
  }

  /** The ProgID. */
  get progId(): string {
    return this.#progId;
  }

  /** The CLSID, `{...}` in upper case. */
  get clsid(): string {
    return this.#clsid;
  }

  /** The registry keys (under HKCU) this registration created and will delete. */
  get keys(): readonly string[] {
    return [...this.#keys];
  }

  /**
   * Revokes the class object (`CoRevokeClassObject`) and deletes the keys it created, deepest
   * first; a second call does nothing. Objects already created stay alive for their clients.
   */
  unregister(): void {
    const cookie = this.#cookie;
    if (cookie === null) return;
    this.#cookie = null;
    releaseAfterCallbacks(() => {
      try {
        revokeClassObject(cookie); // on the COM thread, which registered it
        for (const key of [...this.#keys].reverse()) {
          advapi32().RegDeleteKeyW(HKEY_CURRENT_USER, wide(key));
        }
      } finally {
        const self = pointerOf(this.#factory);
        const factory = factories.get(keyOf(self));
        if (factory) {
          factory.retired = true;
          vcall(self, 2, [], "u32"); // the registration's reference
        }
        this.#unhold();
      }
    });
  }

  /** The same as {@linkcode ClassRegistration.unregister}, the name every winipc class shares. */
  close(): void {
    this.unregister();
  }

  /** Whether the class was unregistered. */
  get closed(): boolean {
    return this.#cookie === null;
  }

  /** Unregisters. */
  [Symbol.dispose](): void {
    this.unregister();
  }
}

/**
 * Makes a TypeScript class activatable by other processes: registers a class factory with
 * `CoRegisterClassObject` (`CLSCTX_LOCAL_SERVER`, `REGCLS_MULTIPLEUSE`), whose `CreateInstance`
 * calls `create()` and serves the object it returns (as {@linkcode serveObject} does, events
 * included). With `register: true` it also writes the per-user registration under
 * `HKCU\Software\Classes`, so that `CreateObject("<ProgID>")` (VBScript, winipc's
 * {@linkcode createObject}, `CoCreateInstance` after `CLSIDFromProgID`) reaches this process. The
 * COM thread (`_com_thread.ts`) receives the activations and calls and hands them to this thread;
 * while registered, the process stays alive.
 *
 * @param options The ProgID, CLSID, factory function, events and whether to write the registry.
 * @returns The registration; `unregister()` undoes it.
 * @throws {TypeError} For a bad ProgID, CLSID or option.
 * @throws {ComError} When the class object or a registry key cannot be registered.
 *
 * @example Serve a calculator to CreateObject("Demo.Calculator")
 * ```ts
 * import { registerClass } from "./mod.ts";
 * using reg = registerClass({
 *   progId: "Demo.Calculator",
 *   clsid: "{8F0B6C1E-2D3A-4E5F-9A1B-C2D3E4F5A6B7}",
 *   create: () => ({ add: (a: number, b: number) => a + b }),
 *   register: true,
 * });
 * ```
 */
export function registerClass(options: ClassOptions): ClassRegistration {
  const opts = parseArg(classOptionsSchema, options, "options");
  const events = parseArg(eventsSchema, opts.events, "events") ?? [];
  const clsidText = opts.clsid.toUpperCase();
  initCom();
  const table = buildFactoryVtable();
  const memory = facetMemory(table);
  const factory = pointerOf(memory);
  factories.set(keyOf(factory), {
    create: opts.create,
    events,
    refs: 1,
    memory,
    retired: false,
  });
  const keys: string[] = [];
  try {
    if (opts.register) {
      const classes = "Software\\Classes";
      const clsidKey = `${classes}\\CLSID\\${clsidText}`;
      const entries: [string, Record<string, string>][] = [
        [`${classes}\\${opts.progId}`, { "": opts.progId }],
        [`${classes}\\${opts.progId}\\CLSID`, { "": clsidText }],
        [clsidKey, { "": opts.progId }],
        [`${clsidKey}\\ProgID`, { "": opts.progId }],
        [`${clsidKey}\\LocalServer32`, { "": selfCommandLine() }],
      ];
      for (const [path, values] of entries) if (writeKey(path, values)) keys.push(path);
    }
    // The COM thread registers its wrapper of the factory, so activations wake that thread.
    const cookie = registerClassObject(
      factory,
      guid(clsidText),
      `Cannot register the class "${opts.progId}"`,
    );
    return classRegistration(opts.progId, clsidText, cookie, memory, keys, holdProcess());
  } catch (e) {
    for (const key of keys.reverse()) advapi32().RegDeleteKeyW(HKEY_CURRENT_USER, wide(key));
    // The COM thread may still give back a reference of its own: forgotten after that one.
    factories.get(keyOf(factory))!.retired = true;
    vcall(factory, 2, [], "u32");
    throw e;
  }
}
