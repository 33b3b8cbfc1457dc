// The STA of candidate (b): this Worker's thread joins a single-threaded apartment, registers
// the main thread's object (its vtable is the main isolate's callbacks) in the Running Object
// Table, and then blocks in MsgWaitForMultipleObjectsEx for good, dispatching what arrives.
import { initCom } from "../../mechanisms/com/apartment.ts";
import { MWMO_INPUTAVAILABLE, PM_REMOVE, QS_ALLINPUT, user32 } from "../../ffi/user32.ts";
import { registerInRot } from "./_rot.ts";

const INFINITE = 0xffffffff;

declare const self: {
  onmessage: ((e: MessageEvent<{ name: string; object: bigint }>) => void) | null;
  postMessage(message: unknown): void;
};

self.onmessage = (e) => {
  initCom("sta");
  registerInRot(e.data.name, Deno.UnsafePointer.create(e.data.object)!);
  self.postMessage("ready");
  const u = user32();
  const msg = new Uint8Array(48);
  for (;;) {
    while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
      u.TranslateMessage(msg);
      u.DispatchMessageW(msg);
    }
    u.MsgWaitForMultipleObjectsEx(0, null, INFINITE, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
  }
};
