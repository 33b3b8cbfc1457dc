/**
 * `IUnknown` reference counting and BSTR strings, which every part of the COM module uses.
 *
 * @module
 */
import { vcall } from "../../ffi/ole32.ts";
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

export const releaser = new FinalizationRegistry<{ ptr: Deno.PointerObject }>((held) => {
  try {
    release(held.ptr);
  } catch {
    // a finalizer has nobody to report to
  }
});

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
