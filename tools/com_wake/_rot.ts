// Registers a COM object in the Running Object Table under `!name`, as serveObject does, but
// without attaching the main thread's message pump. Shared by the server and its STA worker.
import { ROTFLAGS_REGISTRATIONKEEPSALIVE, vcall } from "../../ffi/ole32.ts";
import { checkHr } from "../../mechanisms/com/errors.ts";
import { itemMoniker, withRot } from "../../mechanisms/com/client.ts";
import { release } from "../../mechanisms/com/_base.ts";

/** Registers `object` as `!name` in the calling thread's apartment; returns the cookie. */
export function registerInRot(name: string, object: Deno.PointerObject): number {
  const context = `Cannot register "${name}"`;
  return withRot(context, (rot) => {
    const moniker = itemMoniker(name, context);
    try {
      const out = new Uint32Array(1);
      const hr = vcall(
        rot,
        3,
        ["u32", "pointer", "pointer", "buffer"],
        "i32",
        ROTFLAGS_REGISTRATIONKEEPSALIVE,
        object,
        moniker,
        out,
      ) as number;
      checkHr(hr, "IRunningObjectTable::Register", context);
      return out[0];
    } finally {
      release(moniker);
    }
  });
}
