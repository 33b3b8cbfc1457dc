// The main thread's side of the `com-thread` mode: a message-only window whose procedure runs
// each call the COM thread (`_com_thread.ts`) hands over, against an object of
// `exposeDispatch`, and a wait in Atomics.waitAsync that wakes the idle event loop to peek.
import { IID_IDispatch, vcall } from "../../ffi/ole32.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { wide } from "../../ffi/strings.ts";
import { HWND_MESSAGE, PM_REMOVE, user32, WNDCLASSEXW, WNDPROC } from "../../ffi/user32.ts";
import { extraOle32, REQ, SLOT_PARAMETERS, WM_COM_CALL } from "./_native.ts";

/** Serves `object` (an `exposeDispatch` pointer) under `name` through a COM thread. */
export async function serveThroughComThread(
  name: string,
  object: Deno.PointerObject,
): Promise<void> {
  const u = user32();
  const k = kernel32();
  const ole = extraOle32();
  const vtable = new Deno.UnsafePointerView(
    Deno.UnsafePointer.create(new Deno.UnsafePointerView(object).getBigUint64(0))!,
  );
  const methods = new Map<number, (...args: unknown[]) => number>();
  for (const slot of [3, 4, 5, 6]) {
    const definition = {
      parameters: ["pointer", ...SLOT_PARAMETERS[slot]],
      result: "i32",
      callback: true,
    } as Deno.ForeignFunction;
    const fn = new Deno.UnsafeFnPointer(
      vtable.getPointer(slot * 8) as Deno.PointerObject<Deno.ForeignFunction>,
      definition,
    );
    methods.set(slot, fn.call.bind(fn) as (...args: unknown[]) => number);
  }
  const typed = (t: Deno.NativeType, v: bigint): unknown =>
    t === "pointer"
      ? Deno.UnsafePointer.create(v)
      : t === "i32"
      ? Number(BigInt.asIntN(32, v))
      : Number(v);

  const run = (at: bigint) => {
    const request = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(at)!, REQ.size * 8),
    );
    const slot = Number(request[REQ.slot]);
    const types = SLOT_PARAMETERS[slot];
    const args = types.map((t, i) => typed(t, request[REQ.args + i]));
    // Interface arguments: swap in proxies of this apartment for the call's duration.
    const swapped: { at: DataView; original: bigint; proxy: Deno.PointerObject }[] = [];
    const streams = Number(request[REQ.streams]);
    if (slot === 6 && streams) {
      const params = new Deno.UnsafePointerView(args[4] as Deno.PointerObject);
      const rgvarg = params.getPointer(0)!;
      for (let n = 0; n < streams; n++) {
        const index = Number(request[REQ.streams + 1 + 2 * n]);
        const stream = Deno.UnsafePointer.create(request[REQ.streams + 2 + 2 * n]);
        const out = new BigUint64Array(1);
        if (ole.CoGetInterfaceAndReleaseStream(stream, IID_IDispatch, out) !== 0) continue;
        const at = new DataView(
          Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.offset(rgvarg, index * 24)!, 16),
        );
        swapped.push({
          at,
          original: at.getBigUint64(8, true),
          proxy: Deno.UnsafePointer.create(out[0])!,
        });
        at.setBigUint64(8, out[0], true);
      }
    }
    let hr: number;
    try {
      hr = methods.get(slot)!(object, ...args);
    } finally {
      for (const s of swapped) {
        s.at.setBigUint64(8, s.original, true);
        vcall(s.proxy, 2, [], "u32");
      }
    }
    request[REQ.result] = BigInt.asUintN(64, BigInt(hr));
    k.SetEvent(Deno.UnsafePointer.create(request[REQ.event]));
  };

  const procedure = new Deno.UnsafeCallback(WNDPROC, (hwnd, message, wParam, lParam) => {
    if (message === WM_COM_CALL) {
      run(BigInt(wParam));
      return 0n;
    }
    return u.DefWindowProcW(hwnd, message, wParam, lParam);
  });
  const className = wide(`winipc-com-wake-${Deno.pid}`);
  const instance = k.GetModuleHandleW(null);
  u.RegisterClassExW(WNDCLASSEXW.alloc({
    cbSize: WNDCLASSEXW.size,
    lpfnWndProc: procedure.pointer,
    hInstance: instance,
    lpszClassName: Deno.UnsafePointer.of(className),
  }));
  const hwnd = u.CreateWindowExW(
    0,
    className,
    null,
    0,
    0,
    0,
    0,
    0,
    HWND_MESSAGE,
    null,
    instance,
    null,
  );
  if (!hwnd) throw new Error("CreateWindowExW failed");

  const wake = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL("./_com_thread.ts", import.meta.url), { type: "module" });
  await new Promise<void>((resolve) => {
    worker.onmessage = () => resolve();
    worker.postMessage({
      name,
      hwnd: BigInt(Deno.UnsafePointer.value(hwnd)),
      shared: wake.buffer,
    });
  });
  const msg = new Uint8Array(48);
  (async () => {
    for (;;) {
      const waiting = Atomics.waitAsync(wake, 0, 0);
      if (waiting.async) await waiting.value;
      Atomics.store(wake, 0, 0);
      while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
        u.TranslateMessage(msg);
        u.DispatchMessageW(msg);
      }
    }
  })();
}
