// Shared by bare_receiver.ts and worker_window.ts: a hidden top-level window whose window
// procedure is `reply`, and a loop that blocks this thread in GetMessageW.
import { kernel32 } from "../../ffi/kernel32.ts";
import { wide } from "../../ffi/strings.ts";
import {
  COPYDATASTRUCT,
  user32,
  WM_COPYDATA,
  WNDCLASSEXW,
  WNDPROC,
  WS_EX_TOOLWINDOW,
  WS_POPUP,
} from "../../ffi/user32.ts";

/** Creates the window, calls `ready`, then pumps with GetMessageW until WM_QUIT. */
export function runWindow(
  title: string,
  reply: (data: Uint8Array) => bigint,
  ready: () => void,
): void {
  const u = user32();
  const hInstance = kernel32().GetModuleHandleW(null);
  const callback = new Deno.UnsafeCallback(WNDPROC, (hwnd, message, wParam, lParam) => {
    if (message === WM_COPYDATA) {
      const cds = Deno.UnsafePointer.create(BigInt(lParam))!;
      const { cbData, lpData } = COPYDATASTRUCT.read(
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(cds, COPYDATASTRUCT.size)),
      );
      const data = cbData && lpData
        ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(lpData, cbData)).slice()
        : new Uint8Array(0);
      return reply(data);
    }
    return BigInt(u.DefWindowProcW(hwnd, message, wParam, lParam));
  });
  const className = wide(`winipc.pump_latency.${Deno.pid}.${Math.random()}`);
  const cls = WNDCLASSEXW.alloc({
    cbSize: WNDCLASSEXW.size,
    lpfnWndProc: callback.pointer,
    hInstance,
    lpszClassName: Deno.UnsafePointer.of(className),
  });
  if (!u.RegisterClassExW(cls)) throw new Error("RegisterClassExW failed");
  const hwnd = u.CreateWindowExW(
    WS_EX_TOOLWINDOW,
    className,
    wide(title),
    WS_POPUP,
    0,
    0,
    0,
    0,
    null,
    null,
    hInstance,
    null,
  );
  if (!hwnd) throw new Error("CreateWindowExW failed");
  ready();
  const msg = new Uint8Array(48);
  if (Deno.env.get("PUMP_LATENCY_MSGWAIT") === "1") {
    // As winipc's window thread waits: MsgWaitForMultipleObjectsEx, then PeekMessageW.
    for (;;) {
      while (u.PeekMessageW(msg, null, 0, 0, 1)) {
        u.TranslateMessage(msg);
        u.DispatchMessageW(msg);
      }
      u.MsgWaitForMultipleObjectsEx(0, null, 0xffff_ffff, 0x04ff, 0x0004);
    }
  }
  while (u.GetMessageW(msg, null, 0, 0) > 0) {
    u.TranslateMessage(msg);
    u.DispatchMessageW(msg);
  }
}
