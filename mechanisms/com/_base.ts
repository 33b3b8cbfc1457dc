/**
 * `IUnknown` reference counting and BSTR strings, which every part of the COM module uses.
 *
 * @module
 */
import { guid, vcall } from "../../ffi/ole32.ts";
import { oleaut32 } from "../../ffi/oleaut32.ts";
import { wide } from "../../ffi/strings.ts";
import { ComError, failed } from "./errors.ts";

export function addRef(p: Deno.PointerObject): number {
  return vcall(p, 1, [], "u32") as number;
}

export function release(p: Deno.PointerObject): number {
  return vcall(p, 2, [], "u32") as number;
}

/** QueryInterface; returns the new (owned) pointer, or null with the HRESULT. */
export function queryInterface(
  p: Deno.PointerObject,
  iid: Uint8Array<ArrayBuffer>,
): [Deno.PointerObject | null, number] {
  const out = new BigUint64Array(1);
  const hr = vcall(p, 0, ["buffer", "buffer"], "i32", iid, out) as number;
  return [failed(hr) ? null : Deno.UnsafePointer.create(out[0]), hr];
}

const IID_IClientSecurity = guid("0000013D-0000-0000-C000-000000000046");

/**
 * Whether an interface pointer is a proxy (of another apartment or process): COM's proxies
 * answer for `IClientSecurity`, objects of this apartment do not.
 */
export function isProxy(p: Deno.PointerObject): boolean {
  const [security] = queryInterface(p, IID_IClientSecurity);
  if (!security) return false;
  release(security);
  return true;
}

const releaser = new FinalizationRegistry<{ ptr: Deno.PointerObject }>((held) => {
  try {
    release(held.ptr);
  } catch {
    // a finalizer has nobody to report to
  }
});

/**
 * One owned `IUnknown` reference, as the client's objects hold it: `release()` releases it once
 * (a second call does nothing), and an owner collected without calling it has the reference
 * released by the collector, as a backstop.
 */
export class OwnedReference {
  #ptr: Deno.PointerObject | null;

  /**
   * Takes ownership of one reference.
   *
   * @param owner The object whose collection releases the reference if `release()` was not called.
   * @param ptr The reference.
   */
  constructor(owner: object, ptr: Deno.PointerObject) {
    this.#ptr = ptr;
    releaser.register(owner, { ptr }, this);
  }

  /** The interface pointer, or `null` once released. */
  get pointer(): Deno.PointerObject | null {
    return this.#ptr;
  }

  /** Releases the reference; a second call does nothing. */
  release(): void {
    const p = this.#ptr;
    if (!p) return;
    this.#ptr = null;
    releaser.unregister(this);
    release(p);
  }
}

// ---------------------------------------------------------------------------------------------
// BSTR

export function allocBstr(text: string): Deno.PointerObject {
  const units = wide(text);
  const p = oleaut32().SysAllocStringLen(units, text.length);
  if (!p) throw new ComError("SysAllocStringLen", 0x8007_000e, { context: "Cannot make a BSTR" });
  return p;
}

export function readBstr(p: Deno.PointerValue): string {
  if (!p) return "";
  const length = oleaut32().SysStringLen(p);
  if (length === 0) return "";
  const units = new Uint16Array(new Deno.UnsafePointerView(p).getArrayBuffer(length * 2));
  let out = "";
  for (let i = 0; i < units.length; i += 8192) {
    out += String.fromCharCode(...units.subarray(i, i + 8192));
  }
  return out;
}
