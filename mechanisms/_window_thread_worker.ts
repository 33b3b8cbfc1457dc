/**
 * The window thread (see `_window_thread.ts`): a worker that owns winipc's message windows and
 * DDE servers' DDEML instances, and blocks in `MsgWaitForMultipleObjectsEx` until a message
 * arrives. A message or DDE transaction the main thread must answer is handed over through shared
 * memory; the window procedure or DDEML callback waits in `Atomics.wait` for the reply while it
 * keeps running the main thread's commands (create and destroy a window, start, advise and end a
 * DDE server), so neither side can wait for the other.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { INFINITE, kernel32 } from "../ffi/kernel32.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import {
  APPCLASS_STANDARD,
  COPYDATASTRUCT,
  CP_WINUNICODE,
  DMLERR_NO_ERROR,
  DNS_REGISTER,
  DNS_UNREGISTER,
  HWND_MESSAGE,
  MWMO_INPUTAVAILABLE,
  PFNCALLBACK,
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
  XTYP_ADVREQ,
  XTYP_ADVSTART,
  XTYP_CONNECT,
  XTYP_EXECUTE,
  XTYP_POKE,
  XTYP_REQUEST,
  XTYP_WILDCONNECT,
} from "../ffi/user32.ts";
import {
  type CreateCommand,
  CTL,
  CTL_INTS,
  DDE_ANSWER,
  type DdeAdviseCommand,
  type DdeHeader,
  type DdeStartCommand,
  type DdeThreadError,
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

/** A DDE server's DDEML instance on this thread. */
interface Served {
  id: number;
  /** The DDEML instance id. */
  inst: number;
  callback: Deno.UnsafeCallback<typeof PFNCALLBACK>;
  /** The service name's string handle. */
  service: Deno.PointerObject;
  /** String handles of topic names (for wildcard connects), made once. */
  topics: Map<string, Deno.PointerObject>;
  /** Ended by the main thread: every transaction is refused until the instance is ended. */
  closed: boolean;
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

  /** The number of the last request handed to the main thread (see `CTL.reply`). */
  let lastSeq = 0;

  /**
   * Hands a request to the main thread (`id` 0: no window, see `CTL.stackError`; `kind` 1: a DDE
   * transaction of the server `id`) and waits for its reply.
   */
  function askMainThread(id: number, kind = 0): void {
    flushPosted();
    const seq = ++lastSeq;
    ctl[CTL.requestWindow] = id;
    ctl[CTL.requestKind] = kind;
    ctl[CTL.requestSeq] = seq;
    Atomics.store(ctl, CTL.request, 1);
    Atomics.notify(ctl, CTL.request);
    Atomics.add(ctl, CTL.mainWake, 1);
    Atomics.notify(ctl, CTL.mainWake);
    awaitReply(seq);
  }

  /** Waits for the main thread's reply to request `seq`, running its commands meanwhile. */
  function awaitReply(seq: number): void {
    for (;;) {
      const seen = Atomics.load(ctl, CTL.wake);
      if (Atomics.load(ctl, CTL.reply) === seq) return;
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

  /**
   * Runs the command that waits, if one does. Commands nest: one that runs while this thread
   * waits for the main thread inside another command (a DDE advise asks for the items' values,
   * and the main thread's handler may close a window meanwhile) is taken here too, so the word
   * is taken before the command runs and every result is written only at its end.
   */
  function runCommand(): void {
    if (Atomics.compareExchange(ctl, CTL.command, 1, 0) !== 1) return;
    const seq = ctl[CTL.commandSeq];
    const kind = ctl[CTL.commandKind];
    const target = big[7];
    let result: CommandResult = [0, 0];
    if (kind === 1) result = create(commandArgs<CreateCommand>());
    else if (kind === 2) destroy(target);
    else if (kind === 3) result = ddeStart(commandArgs<DdeStartCommand>());
    else if (kind === 4) result = ddeAdvise(commandArgs<DdeAdviseCommand>());
    else if (kind === 5) ddeClose(Number(target));
    ctl[CTL.commandFailed] = result[0];
    ctl[CTL.commandError] = result[1];
    if (result[2] !== undefined) big[7] = result[2];
    Atomics.store(ctl, CTL.done, seq);
    Atomics.notify(ctl, CTL.done);
    Atomics.add(ctl, CTL.mainWake, 1);
    Atomics.notify(ctl, CTL.mainWake);
  }

  /** Which call failed (0: none), its error code, and a window handle made. */
  type CommandResult = [failed: number, error: number, value?: bigint];

  function commandArgs<T>(): T {
    return JSON.parse(decoder.decode(command.slice(0, ctl[CTL.commandLength])));
  }

  // DDE servers. DDEML calls an instance's callback on the thread that called DdeInitializeW,
  // while that thread handles messages: here. The callback reads the transaction (names, data)
  // on this thread, hands it to the main thread, whose handlers compute the answer, and turns the
  // answer into DDEML's (a number, a data handle). Instances end only at the top of the message
  // loop, never inside a callback (DDEML forbids DdeUninitialize there) or inside a window
  // procedure waiting for the main thread.
  const servers = new Map<number, Served>();
  /** Servers the main thread closed, ended at the top of the message loop (`endClosed`). */
  const closing: Served[] = [];
  const encoder = new TextEncoder();
  const nameBuffer = new Uint16Array(256);

  function ddeName(inst: number, hsz: Deno.PointerValue): string | null {
    if (hsz === null) return null;
    const n = u.DdeQueryStringW(inst, hsz, nameBuffer, nameBuffer.length, CP_WINUNICODE);
    return fromWide(nameBuffer, Math.min(n, nameBuffer.length - 1));
  }

  function ddeStart(args: DdeStartCommand): CommandResult {
    /** Set once the service is registered; until then DDEML gets no answer. */
    const made: { served?: Served } = {};
    const callback = new Deno.UnsafeCallback(
      PFNCALLBACK,
      (type, format, _hconv, hsz1, hsz2, hdata) => {
        try {
          return made.served ? transaction(made.served, type, format, hsz1, hsz2, hdata) : null;
        } catch (error) {
          // a fault of this thread, not of the handlers (those run on the main thread)
          const posted: DdeThreadError = { ddeError: args.id, message: String(error) };
          parentPort!.postMessage(posted);
          return null;
        }
      },
    );
    const id = new Uint32Array(1);
    const code = u.DdeInitializeW(id, callback.pointer, APPCLASS_STANDARD, 0);
    if (code !== DMLERR_NO_ERROR) {
      callback.close();
      return [1, code];
    }
    const inst = id[0];
    const service = u.DdeCreateStringHandleW(inst, wide(args.service), CP_WINUNICODE);
    if (service === null || u.DdeNameService(inst, service, null, DNS_REGISTER) === null) {
      const result: CommandResult = [service === null ? 2 : 3, u.DdeGetLastError(inst)];
      if (service !== null) u.DdeFreeStringHandle(inst, service);
      u.DdeUninitialize(inst);
      callback.close();
      return result;
    }
    made.served = { id: args.id, inst, callback, service, topics: new Map(), closed: false };
    servers.set(args.id, made.served);
    return [0, 0];
  }

  function transaction(
    s: Served,
    type: number,
    format: number,
    hsz1: Deno.PointerValue,
    hsz2: Deno.PointerValue,
    hdata: Deno.PointerValue,
  ): Deno.PointerValue {
    if (s.closed) return null; // closed from a handler: refused until the instance ends
    switch (type) {
      case XTYP_ADVSTART:
        return Deno.UnsafePointer.create(1n);
      case XTYP_WILDCONNECT:
        // a wildcard connect for another service
        if (hsz2 !== null && u.DdeCmpStringHandles(hsz2, s.service) !== 0) return null;
        break;
      case XTYP_CONNECT:
      case XTYP_REQUEST:
      case XTYP_ADVREQ:
      case XTYP_POKE:
      case XTYP_EXECUTE:
        break;
      default:
        return null;
    }
    const header: DdeHeader = {
      type,
      format,
      topic: ddeName(s.inst, hsz1),
      item: type === XTYP_REQUEST || type === XTYP_ADVREQ || type === XTYP_POKE
        ? ddeName(s.inst, hsz2) ?? ""
        : null,
    };
    const head = encoder.encode(JSON.stringify(header));
    const size = type === XTYP_POKE || type === XTYP_EXECUTE ? u.DdeGetData(hdata, null, 0, 0) : 0;
    if (head.length + size > shared.data.maxByteLength) return null; // refused: "not processed"
    if (shared.data.byteLength < head.length + size) shared.data.grow(head.length + size);
    data.set(head);
    if (size > 0) {
      const bytes = new Uint8Array(size);
      u.DdeGetData(hdata, bytes, size, 0);
      data.set(bytes, head.length);
    }
    ctl[CTL.ddeHeaderLength] = head.length;
    big[5] = BigInt(size);
    askMainThread(s.id, 1);
    const kind = ctl[CTL.handled];
    if (kind === DDE_ANSWER.number) return Deno.UnsafePointer.create(BigInt.asUintN(64, big[6]));
    if (kind === DDE_ANSWER.data) {
      const bytes = data.slice(0, Number(big[6]));
      return u.DdeCreateDataHandle(s.inst, bytes, bytes.length, 0, hsz2, ctl[CTL.ddeFormat], 0);
    }
    if (kind === DDE_ANSWER.topics) {
      const topics: string[] = JSON.parse(decoder.decode(data.slice(0, Number(big[6]))));
      // HSZPAIRs (service, topic), ending with a null pair
      const pairs = new BigUint64Array(2 * topics.length + 2);
      const serviceValue = BigInt(Deno.UnsafePointer.value(s.service));
      for (const [i, topic] of topics.entries()) {
        let hsz = s.topics.get(topic);
        if (!hsz) {
          hsz = u.DdeCreateStringHandleW(s.inst, wide(topic), CP_WINUNICODE) ?? undefined;
          if (!hsz) return null;
          s.topics.set(topic, hsz);
        }
        pairs[2 * i] = serviceValue;
        pairs[2 * i + 1] = BigInt(Deno.UnsafePointer.value(hsz));
      }
      const bytes = new Uint8Array(pairs.buffer);
      return u.DdeCreateDataHandle(s.inst, bytes, bytes.length, 0, null, 0, 0);
    }
    return null;
  }

  /** `DdePostAdvise` for a fresh topic and item handle (cached item handles fail under Wine). */
  function ddeAdvise(args: DdeAdviseCommand): CommandResult {
    const s = servers.get(args.id);
    if (!s || s.closed) return [1, 0];
    const topic = u.DdeCreateStringHandleW(s.inst, wide(args.topic), CP_WINUNICODE);
    const item = u.DdeCreateStringHandleW(s.inst, wide(args.item), CP_WINUNICODE);
    try {
      if (topic === null || item === null) return [2, u.DdeGetLastError(s.inst)];
      if (!u.DdePostAdvise(s.inst, topic, item)) return [3, u.DdeGetLastError(s.inst)];
      return [0, 0];
    } finally {
      if (topic !== null) u.DdeFreeStringHandle(s.inst, topic);
      if (item !== null) u.DdeFreeStringHandle(s.inst, item);
    }
  }

  function ddeClose(id: number): void {
    const s = servers.get(id);
    if (!s || s.closed) return;
    s.closed = true;
    closing.push(s);
  }

  /** Ends the closed servers' instances; only at the top of the message loop. */
  function endClosed(): void {
    for (const s of closing.splice(0)) {
      servers.delete(s.id);
      u.DdeNameService(s.inst, s.service, null, DNS_UNREGISTER);
      u.DdeFreeStringHandle(s.inst, s.service);
      for (const hsz of s.topics.values()) u.DdeFreeStringHandle(s.inst, hsz);
      u.DdeUninitialize(s.inst);
      s.callback.close();
    }
  }

  function create(args: CreateCommand): CommandResult {
    const className = wide(args.className);
    const cls = WNDCLASSEXW.alloc({
      cbSize: WNDCLASSEXW.size,
      lpfnWndProc: procedure.pointer,
      hInstance,
      lpszClassName: Deno.UnsafePointer.of(className),
    });
    const getLastError = k.GetLastError;
    if (u.RegisterClassExW(cls) === 0) return [1, getLastError()];
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
      const code = getLastError();
      u.UnregisterClassW(className, hInstance);
      return [2, code];
    }
    if (args.clipboardListener && !u.AddClipboardFormatListener(hwnd)) {
      const code = getLastError();
      u.DestroyWindow(hwnd);
      u.UnregisterClassW(className, hInstance);
      return [3, code];
    }
    const value = Deno.UnsafePointer.value(hwnd) as bigint;
    windows.set(value, {
      id: args.id,
      className,
      wanted: new Set(args.messages),
      clipboardListener: args.clipboardListener,
      immediateCopyData: args.immediateCopyData === null ? null : BigInt(args.immediateCopyData),
      immediateMessages: args.immediateMessages,
    });
    return [0, 0, value];
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

  /**
   * Leaves the message loop at the process's unload (the main thread posts WM_QUIT): every DDE
   * instance ended and every window destroyed here, on their own thread, rather than left to the
   * process's exit while this thread is blocked in a wait. Nothing asks the main thread any more:
   * a closed server refuses its transactions, and a window is forgotten before it is destroyed.
   */
  function stop(): void {
    for (const id of servers.keys()) ddeClose(id);
    endClosed();
    for (const value of [...windows.keys()]) destroy(value);
    Atomics.store(ctl, CTL.stopped, 1);
    Atomics.notify(ctl, CTL.stopped);
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
        if (message === WM_QUIT) return stop();
        if (view.getBigUint64(0, true) === 0n && message === WM_WINDOW_THREAD_COMMAND) {
          runCommand();
          endClosed();
          continue;
        }
        u.TranslateMessage(msg);
        u.DispatchMessageW(msg);
        endClosed();
      }
      // A modal loop of this thread (DdeUninitialize's, say) takes thread messages too, and
      // drops a command's: the command word still says one waits.
      if (Atomics.load(ctl, CTL.command) === 1) {
        runCommand();
        endClosed();
        continue;
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
