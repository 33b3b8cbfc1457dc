/**
 * A window owned by the main thread with a TypeScript window procedure: the building block of
 * message windows, the clipboard watcher and anything else that receives messages.
 *
 * Each window gets its own window class (`winipc.<pid>.<n>` unless a class name is given) whose
 * window procedure is a plain `Deno.UnsafeCallback`: window procedures are called on the thread
 * that owns the window, which is the main thread, during `PeekMessageW`/`DispatchMessageW` of the
 * pump ({@linkcode pump}) or during a synchronous call of ours. On close the window is destroyed,
 * its class unregistered and the callback closed, in that order.
 *
 * @module
 */
import { checkHandle, lastError, win32Error } from "../ffi/error.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import { wide } from "../ffi/strings.ts";
import {
  HWND_MESSAGE,
  user32,
  WNDCLASSEXW,
  WNDPROC,
  WS_EX_TOOLWINDOW,
  WS_POPUP,
} from "../ffi/user32.ts";
import { inCallback, pump, type PumpLease, releaseAfterCallbacks } from "./_pump.ts";

/** A window procedure in TypeScript: return a value to answer, `undefined` for the default. */
export type WindowProcedure = (
  hwnd: Deno.PointerObject,
  message: number,
  wParam: bigint,
  lParam: bigint,
) => bigint | number | undefined;

/** Options of {@linkcode NativeWindow}. */
export interface NativeWindowOptions {
  /** The window's title (`lpWindowName`). */
  title?: string;
  /** The class name; a unique one is made when absent. */
  className?: string;
  /** A message-only window (child of `HWND_MESSAGE`): no broadcasts, not found by FindWindowW. */
  messageOnly?: boolean;
  /** Called for every message; exceptions go to `onError`. */
  procedure: WindowProcedure;
  /**
   * Receives exceptions thrown by `procedure` (they cannot cross the FFI boundary) and errors the
   * pump met while dispatching (such as a `StackLimitError`).
   */
  onError: (error: unknown) => void;
}

let classCounter = 0;

/** A main-thread window with a TypeScript window procedure. */
export class NativeWindow {
  #hwnd: Deno.PointerObject | null;
  #className: Uint16Array<ArrayBuffer>;
  #callback: Deno.UnsafeCallback<typeof WNDPROC>;
  #lease: PumpLease;
  #hInstance: Deno.PointerValue;
  #creating = true;

  /**
   * Creates the window (hidden) and attaches it to the pump.
   *
   * @param options Title, class, kind and procedure.
   * @throws {Win32Error} When the class or window cannot be created.
   */
  constructor(options: NativeWindowOptions) {
    const u = user32();
    this.#hInstance = kernel32().GetModuleHandleW(null);
    const name = options.className ?? `winipc.${Deno.pid}.${++classCounter}.${Date.now()}`;
    this.#className = wide(name);
    const { procedure, onError } = options;
    this.#callback = new Deno.UnsafeCallback(
      WNDPROC,
      (hwnd, message, wParam, lParam) =>
        inCallback(() => {
          // Messages a destroyed window still gets (WM_DESTROY, WM_NCDESTROY) go to the default.
          if (this.#hwnd !== null || this.#creating) {
            try {
              const r = procedure(hwnd!, message, BigInt(wParam), BigInt(lParam));
              if (r !== undefined) return BigInt(r);
            } catch (error) {
              onError(error);
            }
          }
          return u.DefWindowProcW(hwnd, message, wParam, lParam);
        }),
    );
    const cls = WNDCLASSEXW.alloc({
      cbSize: WNDCLASSEXW.size,
      lpfnWndProc: this.#callback.pointer,
      hInstance: this.#hInstance,
      lpszClassName: Deno.UnsafePointer.of(this.#className),
    });
    if (u.RegisterClassExW(cls) === 0) {
      const code = lastError();
      this.#callback.close();
      throw win32Error("RegisterClassExW", code, {
        context: `Cannot register window class "${name}"`,
      });
    }
    const hwnd = u.CreateWindowExW(
      options.messageOnly ? 0 : WS_EX_TOOLWINDOW,
      this.#className,
      options.title === undefined ? null : wide(options.title),
      options.messageOnly ? 0 : WS_POPUP,
      0,
      0,
      0,
      0,
      options.messageOnly ? HWND_MESSAGE : null,
      null,
      this.#hInstance,
      null,
    );
    if (hwnd === null) {
      const code = lastError();
      u.UnregisterClassW(this.#className, this.#hInstance);
      this.#callback.close();
      throw win32Error("CreateWindowExW", code, {
        context: options.title === undefined
          ? "Cannot create window"
          : `Cannot create window "${options.title}"`,
      });
    }
    this.#hwnd = checkHandle(hwnd, "CreateWindowExW");
    this.#creating = false;
    this.#lease = pump.attach(onError);
  }

  /** The window handle; throws once closed. */
  get hwnd(): Deno.PointerObject {
    if (!this.#hwnd) throw new Deno.errors.BadResource("Window is closed");
    return this.#hwnd;
  }

  /** Whether the window is closed. */
  get closed(): boolean {
    return this.#hwnd === null;
  }

  /** Keeps the process alive while the window is open (the default). */
  ref(): void {
    this.#lease.ref();
  }

  /** Lets the process exit while the window is open. */
  unref(): void {
    this.#lease.unref();
  }

  /**
   * Destroys the window, unregisters its class and releases the callback. Idempotent.
   *
   * Closed from inside its own window procedure (or any callback on the stack), the window is
   * destroyed at once (senders from then on get `ERROR_INVALID_WINDOW_HANDLE`), and the class and
   * the callback are released once the callback has returned.
   */
  close(): void {
    const hwnd = this.#hwnd;
    if (!hwnd) return;
    this.#hwnd = null;
    const u = user32();
    u.DestroyWindow(hwnd);
    releaseAfterCallbacks(() => {
      u.UnregisterClassW(this.#className, this.#hInstance);
      this.#callback.close();
      this.#lease.release();
    });
  }
}

/**
 * The numeric value of a window handle.
 *
 * @param hwnd The handle.
 * @returns Its value (0n for NULL).
 */
export function hwndValue(hwnd: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(hwnd));
}

/**
 * A window handle from its numeric value.
 *
 * @param value The value.
 * @returns The handle (null for 0).
 */
export function hwndFrom(value: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(value);
}
