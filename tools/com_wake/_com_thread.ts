// The COM thread of the `com-thread` mode (see run.ts): this Worker's thread is an STA that
// registers a wrapper object in the Running Object Table. The wrapper's vtable is this Worker's
// own callbacks, so a call dispatched here runs them directly (no hop through Deno's queue). Each
// IDispatch call is handed to the main thread: Atomics.notify wakes its idle event loop, and a
// SendNotifyMessageW to its window reaches it too when it is inside a modal loop (a synchronous
// COM call of its own). Meanwhile this thread waits in CoWaitForMultipleHandles, which pumps
// this STA, so calls nested inside the handed-over one are dispatched as well.
import { IID_IDispatch, IID_IUnknown } from "../../ffi/ole32.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { MWMO_INPUTAVAILABLE, PM_REMOVE, QS_ALLINPUT, user32 } from "../../ffi/user32.ts";
import { initCom } from "../../mechanisms/com/apartment.ts";
import { extraOle32, extraUser32, REQ, SLOT_PARAMETERS, WM_COM_CALL } from "./_native.ts";
import { registerInRot } from "./_rot.ts";

declare const self: {
  onmessage:
    | ((e: MessageEvent<{ name: string; hwnd: bigint; shared: SharedArrayBuffer }>) => void)
    | null;
  postMessage(message: unknown): void;
};

const INFINITE = 0xffffffff;
const E_NOINTERFACE = 0x80004002 | 0;
const VT_DISPATCH = 9;

self.onmessage = (e) => {
  const { name, hwnd, shared } = e.data;
  const wake = new Int32Array(shared);
  initCom("sta");
  const k = kernel32();
  const ole = extraOle32();
  const user32x = extraUser32();
  const mainWindow = Deno.UnsafePointer.create(hwnd);
  const events: Deno.PointerValue[] = []; // one per nesting depth
  let depth = 0;

  const forward = (slot: number, values: bigint[]): number => {
    const request = new BigUint64Array(REQ.size);
    request[REQ.slot] = BigInt(slot);
    request.set(values, REQ.args);
    const event = events[depth] ??= k.CreateEventW(null, 0, 0, null);
    request[REQ.event] = BigInt(Deno.UnsafePointer.value(event));
    if (slot === 6) marshalInterfaces(request, values[4]);
    depth++;
    try {
      // The message first: the main thread, once woken, must find it in its queue.
      const at = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(request)));
      user32x.SendNotifyMessageW(mainWindow, WM_COM_CALL, at, 0n);
      Atomics.store(wake, 0, 1);
      Atomics.notify(wake, 0);
      const handles = new BigUint64Array([BigInt(Deno.UnsafePointer.value(event))]);
      ole.CoWaitForMultipleHandles(
        0,
        INFINITE,
        1,
        new Uint8Array(handles.buffer),
        new Uint32Array(1),
      );
    } finally {
      depth--;
    }
    return Number(BigInt.asIntN(32, request[REQ.result]));
  };

  /** Interface arguments belong to this apartment: marshal them for the main thread's. */
  const marshalInterfaces = (request: BigUint64Array, params: bigint) => {
    if (!params) return;
    const p = new Deno.UnsafePointerView(Deno.UnsafePointer.create(params)!);
    const args = p.getPointer(0);
    const count = p.getUint32(16);
    let n = 0;
    for (let i = 0; i < count && n < 8 && args; i++) {
      const v = new Deno.UnsafePointerView(Deno.UnsafePointer.offset(args, i * 24)!);
      if (v.getUint16(0) !== VT_DISPATCH || !v.getPointer(8)) continue;
      const stream = new BigUint64Array(1);
      if (ole.CoMarshalInterThreadInterfaceInStream(IID_IDispatch, v.getPointer(8), stream) !== 0) {
        continue;
      }
      request[REQ.streams + 1 + 2 * n] = BigInt(i);
      request[REQ.streams + 2 + 2 * n] = stream[0];
      n++;
    }
    request[REQ.streams] = BigInt(n);
  };

  const raw = (t: Deno.NativeType, v: unknown): bigint =>
    t === "pointer"
      ? BigInt(Deno.UnsafePointer.value(v as Deno.PointerValue))
      : BigInt.asUintN(64, BigInt(v as number));

  let refs = 1;
  const memory = new BigUint64Array(1); // the wrapper: its first 8 bytes point at the vtable
  const self_ = Deno.UnsafePointer.of(memory)!;
  const callbacks = [
    new Deno.UnsafeCallback(
      { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
      (_this, riid, out) => {
        const iid = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(riid!, 16));
        const ok = [IID_IUnknown, IID_IDispatch].some((g) => g.every((b, i) => b === iid[i]));
        new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(out!, 8))[0] = ok
          ? BigInt(Deno.UnsafePointer.value(self_))
          : 0n;
        if (ok) refs++;
        return ok ? 0 : E_NOINTERFACE;
      },
    ),
    new Deno.UnsafeCallback({ parameters: ["pointer"], result: "u32" } as const, () => ++refs),
    new Deno.UnsafeCallback({ parameters: ["pointer"], result: "u32" } as const, () => --refs),
    ...[3, 4, 5, 6].map((slot) =>
      new Deno.UnsafeCallback(
        { parameters: ["pointer", ...SLOT_PARAMETERS[slot]], result: "i32" },
        (_this: unknown, ...args: unknown[]) =>
          forward(slot, args.map((a, i) => raw(SLOT_PARAMETERS[slot][i], a))),
      )
    ),
  ];
  const vtable = new BigUint64Array(
    callbacks.map((c) => BigInt(Deno.UnsafePointer.value(c.pointer))),
  );
  memory[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(vtable)));

  registerInRot(name, self_);
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
