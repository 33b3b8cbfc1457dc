/**
 * The window thread (see `_window_thread.ts`): a worker that owns winipc's message windows and
 * blocks in `MsgWaitForMultipleObjectsEx` until a message arrives. A message the main thread must answer is handed over through shared
 * memory; the window procedure waits in `Atomics.wait` for the reply while it keeps running the
 * main thread's commands (create and destroy a window), so neither side can wait for the other.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { INFINITE, kernel32 } from "../ffi/kernel32.ts";
import { wide } from "../ffi/strings.ts";
import {
  COPYDATASTRUCT,
  HWND_MESSAGE,
  MWMO_INPUTAVAILABLE,
  PM_NOREMOVE,
  PM_REMOVE,
  QS_ALLINPUT,
  user32,
  WM_COPYDATA,
  WM_QUIT,
  WNDCLASSEXW,
  WNDPROC,
  WS_EX_TOOLWINDOW,
  WS_POPUP,
} from "../ffi/user32.ts";
import {
  type CreateCommand,
  CTL,
  CTL_INTS,
  type PostedMessage,
  type Shared,
  WM_WINDOW_THREAD_COMMAND,
} from "./_window_thread_layout.ts";

interface Hosted {
  id: number;
  className: Uint16Array<ArrayBuffer>;
  wanted: Set<number>;
  clipboardListener: boolean;
  /** WM_COPYDATA's reply when this thread answers it at once, else null (see `CreateCommand`). */
  immediateCopyData: bigint | null;
  immediateMessages: boolean;
}

parentPort!.once("message", (shared: Shared) => run(shared));

function run(shared: Shared): void {
  const ctl = new Int32Array(shared.control, 0, CTL_INTS);
  const big = new BigInt64Array(shared.control, CTL_INTS * 4);
  const data = new Uint8Array(shared.data);
  const command = new Uint8Array(shared.command);
  const u = user32();
  const k = kernel32();
  const hInstance = k.GetModuleHandleW(null);
  const windows = new Map<bigint, Hosted>();
  /** Messages answered at once, waiting to be posted to the main thread (see `flushPosted`). */
  const toPost: [PostedMessage, ArrayBuffer[]][] = [];
  const decoder = new TextDecoder();

  /**
   * Hands a request to the main thread (`windowId` 0: no window, see `CTL.stackError`) and waits
   * for its reply.
   */
  function askMainThread(windowId: number): void {
    flushPosted();
    ctl[CTL.requestWindow] = windowId;
    Atomics.store(ctl, CTL.reply, 0);
    Atomics.store(ctl, CTL.request, 1);
    Atomics.notify(ctl, CTL.request);
    awaitReply();
  }

  /** Waits for the main thread's reply, running its commands meanwhile. */
  function awaitReply(): void {
    for (;;) {
      const seen = Atomics.load(ctl, CTL.wake);
      if (Atomics.load(ctl, CTL.reply) === 1) return;
      if (Atomics.load(ctl, CTL.command) === 1) {
        runCommand();
        continue;
      }
      Atomics.wait(ctl, CTL.wake, seen);
    }
  }

  const procedure = new Deno.UnsafeCallback(WNDPROC, (hwnd, message, wParam, lParam) => {
    const hosted = windows.get(Deno.UnsafePointer.value(hwnd) as bigint);
    if (!hosted || (message !== WM_COPYDATA && !hosted.wanted.has(message))) {
      return u.DefWindowProcW(hwnd, message, wParam, lParam);
    }
    if (message === WM_COPYDATA ? hosted.immediateCopyData !== null : hosted.immediateMessages) {
      return answerAtOnce(hosted, message, wParam, lParam);
    }
    let length = -1n;
    if (message === WM_COPYDATA) {
      const cds = Deno.UnsafePointer.create(BigInt(lParam));
      length = 0n;
      big[4] = 0n;
      if (cds) {
        const { dwData, cbData, lpData } = COPYDATASTRUCT.read(
          new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(cds, COPYDATASTRUCT.size)),
        );
        big[4] = BigInt.asIntN(64, BigInt(dwData));
        if (cbData > 0 && lpData) {
          // Larger than the hand-over area can grow (MAX_PAYLOAD): refused, the sender gets 0.
          if (cbData > shared.data.maxByteLength) return 0n;
          if (shared.data.byteLength < cbData) shared.data.grow(cbData);
          data.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(lpData, cbData)));
          length = BigInt(cbData);
        }
      }
    }
    big[0] = Deno.UnsafePointer.value(hwnd) as bigint;
    big[1] = BigInt(message);
    big[2] = BigInt.asIntN(64, BigInt(wParam));
    big[3] = BigInt(lParam);
    big[5] = length;
    askMainThread(hosted.id);
    if (ctl[CTL.handled] === 1) return big[6];
    return u.DefWindowProcW(hwnd, message, wParam, lParam);
  });

  /**
   * Answers a message whose reply needs no JavaScript (the window has no handler for it), and
   * posts it to the main thread for the window's iterators: the sender is answered after this
   * thread's wake-up alone, and does not wait for the main thread.
   */
  function answerAtOnce(
    hosted: Hosted,
    message: number,
    wParam: number | bigint,
    lParam: number | bigint,
  ): bigint {
    let copy: PostedMessage["copy"] = null;
    if (message === WM_COPYDATA) {
      const cds = Deno.UnsafePointer.create(BigInt(lParam));
      let dwData = 0n;
      let bytes = new Uint8Array(0);
      if (cds) {
        const { dwData: tag, cbData, lpData } = COPYDATASTRUCT.read(
          new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(cds, COPYDATASTRUCT.size)),
        );
        dwData = BigInt.asUintN(64, BigInt(tag));
        if (cbData > 0 && lpData) {
          // As for a handed-over payload: one larger than MAX_PAYLOAD is refused with 0.
          if (cbData > shared.data.maxByteLength) return 0n;
          bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(lpData, cbData)).slice();
        }
      }
      copy = { dwData, data: bytes };
    }
    const posted: PostedMessage = {
      id: hosted.id,
      message,
      wParam: BigInt.asUintN(64, BigInt(wParam)),
      lParam: BigInt.asIntN(64, BigInt(lParam)),
      copy,
    };
    toPost.push([posted, copy ? [copy.data.buffer] : []]);
    return message === WM_COPYDATA ? hosted.immediateCopyData! : 0n;
  }

  /**
   * Posts the messages answered at once to the main thread. Called once the window procedure
   * has returned (its reply is on its way), not from inside it: a `postMessage` wakes the main
   * thread, which on two cores then competes with this thread's reply and the sender's wake-up
   * (measured under Wine 10: 360 µs more on the sender's p50 when posted from the procedure). And
   * before anything is handed over with `askMainThread`, so that the main thread gets messages
   * in the order they came.
   */
  function flushPosted(): void {
    for (const [posted, transfer] of toPost.splice(0)) parentPort!.postMessage(posted, transfer);
  }

  function runCommand(): void {
    if (Atomics.load(ctl, CTL.command) !== 1) return;
    const kind = ctl[CTL.commandKind];
    ctl[CTL.commandError] = 0;
    if (kind === 1) create();
    else if (kind === 2) destroy(big[7]);
    Atomics.store(ctl, CTL.command, 0);
    Atomics.store(ctl, CTL.done, 1);
    Atomics.notify(ctl, CTL.done);
  }

  function create(): void {
    const args: CreateCommand = JSON.parse(
      decoder.decode(command.slice(0, ctl[CTL.commandLength])),
    );
    const className = wide(args.className);
    const cls = WNDCLASSEXW.alloc({
      cbSize: WNDCLASSEXW.size,
      lpfnWndProc: procedure.pointer,
      hInstance,
      lpszClassName: Deno.UnsafePointer.of(className),
    });
    const getLastError = k.GetLastError;
    if (u.RegisterClassExW(cls) === 0) {
      ctl[CTL.commandError] = getLastError();
      ctl[CTL.commandFailed] = 1;
      return;
    }
    const title = args.title === null ? null : wide(args.title);
    const hwnd = u.CreateWindowExW(
      args.messageOnly ? 0 : WS_EX_TOOLWINDOW,
      className,
      title,
      args.messageOnly ? 0 : WS_POPUP,
      0,
      0,
      0,
      0,
      args.messageOnly ? HWND_MESSAGE : null,
      null,
      hInstance,
      null,
    );
    if (hwnd === null) {
      ctl[CTL.commandError] = getLastError();
      ctl[CTL.commandFailed] = 2;
      u.UnregisterClassW(className, hInstance);
      return;
    }
    if (args.clipboardListener && !u.AddClipboardFormatListener(hwnd)) {
      ctl[CTL.commandError] = getLastError();
      ctl[CTL.commandFailed] = 3;
      u.DestroyWindow(hwnd);
      u.UnregisterClassW(className, hInstance);
      return;
    }
    ctl[CTL.commandFailed] = 0;
    const value = Deno.UnsafePointer.value(hwnd) as bigint;
    windows.set(value, {
      id: args.id,
      className,
      wanted: new Set(args.messages),
      clipboardListener: args.clipboardListener,
      immediateCopyData: args.immediateCopyData === null ? null : BigInt(args.immediateCopyData),
      immediateMessages: args.immediateMessages,
    });
    big[7] = value;
  }

  function destroy(value: bigint): void {
    const hosted = windows.get(value);
    if (!hosted) return;
    windows.delete(value);
    const hwnd = Deno.UnsafePointer.create(value);
    if (hosted.clipboardListener) u.RemoveClipboardFormatListener(hwnd);
    u.DestroyWindow(hwnd);
    u.UnregisterClassW(hosted.className, hInstance);
  }

  const msg = new Uint8Array(48);
  const view = new DataView(msg.buffer);
  // The thread's message queue first (a thread gets one at its first user32 call that needs
  // it), then "ready": a PostThreadMessageW to a thread without a queue fails (measured under
  // Wine 10: ERROR_INVALID_THREAD_ID, and the message is gone), so the main thread's first
  // command, posted as soon as it sees "ready", could be lost when it won that race, leaving it
  // to wait out its timeout (seen once in a full run: a fixture's first window never came).
  u.PeekMessageW(msg, null, 0, 0, PM_NOREMOVE);
  ctl[CTL.threadId] = k.GetCurrentThreadId();
  Atomics.store(ctl, CTL.ready, 1);
  Atomics.notify(ctl, CTL.ready);
  // Not GetMessageW: it runs the window procedures of sent messages inside its own wait, and an
  // exception left pending by a procedure that could not run (V8's stack limit, see `_pump.ts`)
  // would surface only when a posted message ends that wait. MsgWaitForMultipleObjectsEx returns
  // when a message arrives and runs none; PeekMessageW then runs them and returns at once.
  for (;;) {
    try {
      while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
        flushPosted();
        const message = view.getUint32(8, true);
        if (message === WM_QUIT) return;
        if (view.getBigUint64(0, true) === 0n && message === WM_WINDOW_THREAD_COMMAND) {
          runCommand();
          continue;
        }
        u.TranslateMessage(msg);
        u.DispatchMessageW(msg);
      }
    } catch (error) {
      // The main thread turns this into a StackLimitError for every window.
      ctl[CTL.stackError] = 1;
      askMainThread(0);
      if (!(error instanceof RangeError)) throw error;
    }
    flushPosted();
    u.MsgWaitForMultipleObjectsEx(0, null, INFINITE, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
  }
}
