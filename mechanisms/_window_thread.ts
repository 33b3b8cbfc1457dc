/**
 * The window thread: `MessageWindow`s, the clipboard watcher's window and DDE servers' DDEML
 * instances live on a worker thread of their own that blocks in `MsgWaitForMultipleObjectsEx`
 * (and runs what came with `PeekMessageW`), so a message from another process wakes it at once,
 * with no sleep on the path and no CPU spent while idle. A window made with `clipboardListener`
 * is put on the clipboard format listener list by this thread, which owns it (`clipboard.ts`
 * `watch`). A DDE server's callback reads each transaction on this thread and hands it to the
 * main thread like a message ({@linkcode ThreadDdeServer}).
 *
 * Why: the main thread cannot wait on its own message queue without stopping the event loop, so
 * windows it owns must be polled (`_pump.ts` sleeps 1 ms between polls when idle: about 1.5 ms
 * under Wine, up to 15.6 ms on a stock Windows timer, and about 9% of a core for ten idle windows
 * under Wine). A worker thread can block on its own queue. The reply to a message still comes from
 * the main thread (a `MessageWindow`'s `onCopyData` is user code there), so the window procedure
 * on the window thread copies the message into shared memory, wakes the main thread with
 * `Atomics.notify` (the main thread waits with `Atomics.waitAsync`, which does not keep the
 * process alive) and waits in `Atomics.wait` for the reply.
 *
 * Measured 2026-12-02 with deno.exe 2.9.6 under Wine 10 on a 2-core machine loaded by other test
 * runs (load average 2–4), so noisy:
 *
 * - Idle cost: ten open `MessageWindow`s used 0.0 ms of CPU in 5 s here, against 470 ms (9.4% of
 *   a core) when the main thread's pump polled them.
 * - Idle wake-up (`tools/pump_latency/run.ts`: one C sender, 60 WM_COPYDATA messages 150–200 ms
 *   apart), p50 in four runs: C receiver 164–199 µs; this `MessageWindow` 739–835 µs (3.7–4.8×
 *   C); the bare Atomics prototype of the same hand-off 486–686 µs; a Deno thread that answers by
 *   itself, with no hand-off, 317–400 µs (1.9–2.2×). The polling pump measured 817–1,007 µs in
 *   the same session. On the quiet machine afterwards (two runs): C 347–367 µs, this
 *   `MessageWindow` 849–883 µs (2.4× C), a Deno thread answering by itself 453–484 µs (1.3×). So
 *   the hand-off to the main thread costs about as much again as Wine's own wake-up; a window whose
 *   reply needs no JavaScript could answer on this thread (not done). On another, quiet VM (2-core
 *   Intel Xeon) a later session measured, two runs: C 316–331 µs, this `MessageWindow` 914–955 µs
 *   (2.8–3.0×), a Deno thread answering by itself 484 µs (1.5×).
 * - A message whose reply needs no JavaScript (`ThreadWindowOptions.immediate`: a
 *   `MessageWindow` without `onCopyData`, the clipboard watcher) is answered by this thread at
 *   once and posted on to the main thread after the reply went out. Same VM, two runs of
 *   `tools/pump_latency/run.ts` (60 messages each): C 320–336 µs; such a window 476–616 µs
 *   (1.4–1.9× C), level with a Worker that owns a window and answers by itself in `GetMessageW`
 *   (537–557 µs); a window whose `onCopyData` answers from the main thread 916–936 µs (2.7–2.9×).
 *   Posting to the main thread from inside the window procedure instead cost the sender about
 *   360 µs more (p50 999 against 636 µs without the post, one run each).
 * - Tried and left out (2026-12-03, another 2-core VM): a window procedure that watches for the
 *   main thread's reply for up to 1 ms (yielding with `SwitchToThread` between looks, or not)
 *   before it sleeps in `Atomics.wait`, to save its own wake-up. `tools/pump_latency`, 60
 *   messages each, alternated: without the watch 976–1,118 µs p50, with it 1,485–2,361 µs. The
 *   main thread's wake-up goes through Wine's server, and a spinning thread holds one of the two
 *   processors that it and the main thread need.
 *
 * Commands (create or destroy a window, start, advise or end a DDE server) go the other way: the
 * main thread writes them into shared memory, wakes the window thread (`PostThreadMessageW` when it
 * waits on its queue, the wake word when it is waiting for a reply) and waits for them with
 * `Atomics.wait`. A window procedure that waits for its reply keeps running commands, so the main
 * thread may create or close windows from inside a handler (a window that closes itself) without
 * a deadlock; and the main thread, while it waits for a command, answers the requests the command
 * causes (a DDE advise asks for the value of each linked item). So requests and commands nest, and
 * each is numbered: each side waits for the answer to its own number.
 *
 * The worker is a `node:worker_threads` Worker, unref'd: it never keeps the process alive by
 * itself. A timer does that while a ref'd window is open (`ref()`/`unref()`).
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { win32Error, withLastError } from "../ffi/error.ts";
import { user32, WM_QUIT } from "../ffi/user32.ts";
import {
  BIG_COUNT,
  type CreateCommand,
  CTL,
  CTL_INTS,
  DDE_ANSWER,
  type DdeAdviseCommand,
  type DdeHeader,
  type DdeStartCommand,
  type DdeThreadError,
  MAX_PAYLOAD,
  type PostedMessage,
  type Shared,
  WM_WINDOW_THREAD_COMMAND,
} from "./_window_thread_layout.ts";
import { StackLimitError } from "./_pump.ts";

/** A WM_COPYDATA message as the window thread hands it over. */
export interface HandedCopyData {
  /** `COPYDATASTRUCT.dwData`. */
  dwData: bigint;
  /** A copy of the payload. */
  data: Uint8Array<ArrayBuffer>;
}

/** Options of a {@linkcode ThreadWindow}. */
export interface ThreadWindowOptions {
  /** The window's title. */
  title?: string;
  /** The class name; a unique one is made when absent. */
  className?: string;
  /** A message-only window (child of `HWND_MESSAGE`). */
  messageOnly?: boolean;
  /** Messages besides WM_COPYDATA that `procedure` answers. */
  messages?: number[];
  /**
   * Put the window on the clipboard format listener list, so that it gets `WM_CLIPBOARDUPDATE`
   * (list that message in `messages`). The window thread calls `AddClipboardFormatListener` when
   * it creates the window and `RemoveClipboardFormatListener` when it destroys it.
   */
  clipboardListener?: boolean;
  /**
   * Replies the window thread gives at once, with no JavaScript: `copyData`, the reply to every
   * WM_COPYDATA; `messages`, answer every listed message with 0. Such a message is answered
   * after the window thread's wake-up alone (the sender does not wait for the main thread, even
   * a busy one) and reaches `procedure` afterwards, through the event loop, in the order the
   * messages came; its return value is then ignored. Default: none, `procedure` answers.
   */
  immediate?: { copyData?: bigint; messages?: boolean };
  /**
   * Answers WM_COPYDATA (`copy` set) and the listed messages, on the main thread; `undefined`
   * lets the default window procedure answer.
   */
  procedure: (
    message: number,
    wParam: bigint,
    lParam: bigint,
    copy: HandedCopyData | null,
  ) => bigint | number | undefined;
  /** Receives what `procedure` throws and errors of the window thread. */
  onError: (error: unknown) => void;
}

interface Thread {
  ctl: Int32Array<SharedArrayBuffer>;
  big: BigInt64Array<SharedArrayBuffer>;
  shared: Shared;
  data: Uint8Array<SharedArrayBuffer>;
  command: Uint8Array<SharedArrayBuffer>;
  windows: Map<number, ThreadWindow>;
  dde: Map<number, ThreadDdeServer>;
}

/** How long the main thread waits for the window thread to start or run a command, in ms. */
const COMMAND_TIMEOUT_MS = 60_000;

let thread: Thread | null = null;
let nextId = 1;
let refs = 0;
let keepAlive: ReturnType<typeof setInterval> | undefined;
const encoder = new TextEncoder();

function theThread(): Thread {
  if (thread) return thread;
  const shared: Shared = {
    control: new SharedArrayBuffer(CTL_INTS * 4 + BIG_COUNT * 8),
    data: new SharedArrayBuffer(64 * 1024, { maxByteLength: MAX_PAYLOAD }),
    command: new SharedArrayBuffer(4096, { maxByteLength: 1 << 20 }),
  };
  const ctl = new Int32Array(shared.control, 0, CTL_INTS);
  const worker = new Worker(new URL("./_window_thread_worker.ts", import.meta.url));
  worker.unref();
  worker.postMessage(shared);
  if (Atomics.wait(ctl, CTL.ready, 0, COMMAND_TIMEOUT_MS) === "timed-out") {
    void worker.terminate();
    throw new Error(`The window thread did not start within ${COMMAND_TIMEOUT_MS} ms`);
  }
  const t: Thread = {
    ctl,
    big: new BigInt64Array(shared.control, CTL_INTS * 4, BIG_COUNT),
    shared,
    data: new Uint8Array(shared.data),
    command: new Uint8Array(shared.command),
    windows: new Map(),
    dde: new Map(),
  };
  worker.on("error", (error: unknown) => {
    for (const w of t.windows.values()) w.fail(error);
    for (const d of t.dde.values()) d.fail(error);
  });
  // Messages the window thread answered at once (`ThreadWindowOptions.immediate`); a window
  // closed meanwhile gets none. And faults of the window thread in a DDE server's callback.
  worker.on("message", (posted: PostedMessage | DdeThreadError) => {
    if ("ddeError" in posted) {
      t.dde.get(posted.ddeError)?.fail(new Error(`The window thread failed: ${posted.message}`));
      return;
    }
    t.windows.get(posted.id)?.dispatch(posted.message, posted.wParam, posted.lParam, posted.copy);
  });
  thread = t;
  void serve(t);
  globalThis.addEventListener("unload", () => stopThread(t));
  return t;
}

/** How long the process's unload waits for the window thread to leave its loop, in ms. */
const STOP_TIMEOUT_MS = 1_000;

/**
 * Ends the window thread's message loop when the process unloads: it ends its DDE instances and
 * destroys its windows on its own thread, instead of being cut off by the process's exit while
 * it waits in `MsgWaitForMultipleObjectsEx` with DDEML instances and windows alive. Bounded, and
 * skipped when the thread waits for an answer the main thread is in the middle of.
 */
function stopThread(t: Thread): void {
  // A handler that exits the process (`Deno.exit` in an `onCopyData`, say) leaves the window
  // thread waiting for its reply: it cannot see WM_QUIT, and waiting for it would only delay exit.
  if (answering > 0) return;
  if (!user32().PostThreadMessageW(t.ctl[CTL.threadId], WM_QUIT, 0n, 0n)) return;
  Atomics.wait(t.ctl, CTL.stopped, 0, STOP_TIMEOUT_MS);
}

/** Answers the window thread's requests, one at a time, for the life of the process. */
async function serve(t: Thread): Promise<void> {
  for (;;) {
    const wait = Atomics.waitAsync(t.ctl, CTL.request, 0);
    if (wait.async) await wait.value;
    if (Atomics.load(t.ctl, CTL.request) !== 1) continue;
    answer(t);
  }
}

/** How many requests the main thread is answering now (they nest; see `stopThread`). */
let answering = 0;

function answer(t: Thread): void {
  answering++;
  try {
    answerRequest(t);
  } finally {
    answering--;
  }
}

function answerRequest(t: Thread): void {
  const { ctl, big } = t;
  Atomics.store(ctl, CTL.request, 0);
  const seq = ctl[CTL.requestSeq];
  let handled = 0;
  let reply = 0n;
  const id = ctl[CTL.requestWindow];
  if (ctl[CTL.requestKind] === 1) {
    answerDde(t, id, seq);
    return;
  }
  if (id === 0 && ctl[CTL.stackError] === 1) {
    ctl[CTL.stackError] = 0;
    const error = new StackLimitError(
      new RangeError("Maximum call stack size exceeded (on the window thread)"),
    );
    for (const w of t.windows.values()) w.fail(error);
  } else {
    const w = t.windows.get(id);
    if (w) {
      const length = big[5];
      const copy = length < 0n ? null : {
        dwData: BigInt.asUintN(64, big[4]),
        data: new Uint8Array(t.data.subarray(0, Number(length))), // a copy of its own
      };
      const r = w.dispatch(Number(big[1]), BigInt.asUintN(64, big[2]), big[3], copy);
      if (r !== undefined) {
        handled = 1;
        reply = BigInt.asIntN(64, BigInt(r));
      }
    }
  }
  ctl[CTL.handled] = handled;
  big[6] = reply;
  sendReply(t, seq);
}

function sendReply(t: Thread, seq: number): void {
  Atomics.store(t.ctl, CTL.reply, seq);
  Atomics.add(t.ctl, CTL.wake, 1);
  Atomics.notify(t.ctl, CTL.wake);
}

const decoder = new TextDecoder();

/** Answers a DDE transaction of the server `id` (see `DdeHeader` and `DDE_ANSWER`). */
function answerDde(t: Thread, id: number, seq: number): void {
  const { ctl, big } = t;
  const headerLength = ctl[CTL.ddeHeaderLength];
  const header: DdeHeader = JSON.parse(decoder.decode(t.data.slice(0, headerLength)));
  const data = t.data.slice(headerLength, headerLength + Number(big[5]));
  let answer: DdeAnswer = null;
  const server = t.dde.get(id);
  if (server) answer = server.transact({ ...header, data });
  if (answer && typeof answer === "object" && "bytes" in answer) {
    if (answer.bytes.length > t.shared.data.maxByteLength) {
      server!.fail(
        new RangeError(
          `A DDE answer of ${answer.bytes.length} bytes is over the limit of ` +
            `${t.shared.data.maxByteLength} bytes; the client was answered "not processed"`,
        ),
      );
      answer = null;
    }
  }
  let kind: number = DDE_ANSWER.none;
  let value = 0n;
  if (typeof answer === "number") {
    kind = DDE_ANSWER.number;
    value = BigInt(answer);
  } else if (answer && "bytes" in answer) {
    kind = DDE_ANSWER.data;
    if (t.shared.data.byteLength < answer.bytes.length) t.shared.data.grow(answer.bytes.length);
    t.data.set(answer.bytes);
    value = BigInt(answer.bytes.length);
    ctl[CTL.ddeFormat] = answer.format;
  } else if (answer) {
    kind = DDE_ANSWER.topics;
    const bytes = encoder.encode(JSON.stringify(answer.topics));
    if (t.shared.data.byteLength < bytes.length) t.shared.data.grow(bytes.length);
    t.data.set(bytes);
    value = BigInt(bytes.length);
  }
  ctl[CTL.handled] = kind;
  big[6] = value;
  sendReply(t, seq);
}

/** The number of the last command (see `CTL.done`). */
let lastCommand = 0;

type CommandArgs = CreateCommand | DdeStartCommand | DdeAdviseCommand;

/**
 * Runs one command on the window thread and waits for it, answering meanwhile the requests the
 * command causes (a DDE advise asks for each linked item's value).
 */
function command(t: Thread, kind: 1 | 2 | 3 | 4 | 5, args?: CommandArgs, target = 0n): void {
  const { ctl, big } = t;
  if (args) {
    const bytes = encoder.encode(JSON.stringify(args));
    if (t.shared.command.byteLength < bytes.length) t.shared.command.grow(bytes.length);
    t.command.set(bytes);
    ctl[CTL.commandLength] = bytes.length;
  }
  big[7] = target;
  ctl[CTL.commandKind] = kind;
  const seq = ++lastCommand;
  ctl[CTL.commandSeq] = seq;
  Atomics.store(ctl, CTL.command, 1);
  Atomics.add(ctl, CTL.wake, 1);
  Atomics.notify(ctl, CTL.wake);
  const [posted, code] = withLastError(() =>
    user32().PostThreadMessageW(ctl[CTL.threadId], WM_WINDOW_THREAD_COMMAND, 0n, 0n)
  );
  // A command the window thread never sees would be waited for until the timeout: fail now.
  // (It made its queue before it said it was ready, so this is not expected.)
  if (!posted) {
    Atomics.store(ctl, CTL.command, 0);
    throw win32Error("PostThreadMessageW", code, {
      context: "Cannot hand a command to the window thread",
    });
  }
  const deadline = performance.now() + COMMAND_TIMEOUT_MS;
  for (;;) {
    const seen = Atomics.load(ctl, CTL.mainWake);
    if (Atomics.load(ctl, CTL.done) === seq) return;
    if (Atomics.load(ctl, CTL.request) === 1) {
      answer(t);
      continue;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new Error(`The window thread did not answer within ${COMMAND_TIMEOUT_MS} ms`);
    }
    Atomics.wait(ctl, CTL.mainWake, seen, left);
  }
}

function addRef(): void {
  if (refs++ === 0) keepAlive = setInterval(() => {}, 1 << 30);
}

function release(): void {
  if (--refs === 0) clearInterval(keepAlive);
}

let classCounter = 0;

/** A window owned by the window thread, answered by the main thread. */
export class ThreadWindow {
  readonly #id = nextId++;
  #hwnd: Deno.PointerObject | null;
  #ref = true;
  #procedure: ThreadWindowOptions["procedure"];
  #onError: ThreadWindowOptions["onError"];

  /**
   * Creates the window on the window thread (starting that thread first if needed).
   *
   * @param options Title, class, kind, messages and the procedure.
   * @throws {Win32Error} When the class or window cannot be created, or the window cannot be put
   *   on the clipboard format listener list.
   */
  constructor(options: ThreadWindowOptions) {
    const t = theThread();
    this.#procedure = options.procedure;
    this.#onError = options.onError;
    const className = options.className ??
      `winipc.${Deno.pid}.w${++classCounter}.${Date.now()}`;
    t.windows.set(this.#id, this);
    try {
      command(t, 1, {
        id: this.#id,
        className,
        title: options.title ?? null,
        messageOnly: options.messageOnly ?? false,
        messages: options.messages ?? [],
        clipboardListener: options.clipboardListener ?? false,
        immediateCopyData: options.immediate?.copyData === undefined
          ? null
          : String(options.immediate.copyData),
        immediateMessages: options.immediate?.messages ?? false,
      });
    } catch (error) {
      t.windows.delete(this.#id);
      throw error;
    }
    const failed = t.ctl[CTL.commandFailed];
    if (failed !== 0) {
      t.windows.delete(this.#id);
      const code = t.ctl[CTL.commandError];
      if (failed === 1) {
        throw win32Error("RegisterClassExW", code, {
          context: `Cannot register window class "${className}"`,
        });
      }
      if (failed === 3) {
        throw win32Error("AddClipboardFormatListener", code, {
          context: "Cannot watch the clipboard",
        });
      }
      throw win32Error("CreateWindowExW", code, {
        context: options.title === undefined
          ? "Cannot create window"
          : `Cannot create window "${options.title}"`,
      });
    }
    this.#hwnd = Deno.UnsafePointer.create(BigInt.asUintN(64, t.big[7]));
    addRef();
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
    if (this.#ref || !this.#hwnd) return;
    this.#ref = true;
    addRef();
  }

  /** Lets the process exit while the window is open. */
  unref(): void {
    if (!this.#ref || !this.#hwnd) return;
    this.#ref = false;
    release();
  }

  /** Destroys the window (on the window thread, waiting for it). Idempotent. */
  close(): void {
    const hwnd = this.#hwnd;
    if (!hwnd) return;
    this.#hwnd = null;
    const t = theThread();
    t.windows.delete(this.#id);
    if (this.#ref) release();
    this.#ref = false;
    command(t, 2, undefined, Deno.UnsafePointer.value(hwnd) as bigint);
  }

  /** @internal Runs the procedure for a message the window thread handed over. */
  dispatch(
    message: number,
    wParam: bigint,
    lParam: bigint,
    copy: HandedCopyData | null,
  ): bigint | number | undefined {
    try {
      return this.#procedure(message, wParam, lParam, copy);
    } catch (error) {
      this.#onError(error);
      return undefined;
    }
  }

  /** @internal Reports an error of the window thread. */
  fail(error: unknown): void {
    this.#onError(error);
  }
}

/** A DDE transaction as the window thread hands it over (see `DdeHeader`). */
export interface DdeTransaction extends DdeHeader {
  /** A poke's value or an execute's command, as sent; empty otherwise. */
  data: Uint8Array<ArrayBuffer>;
}

/**
 * The answer to a DDE transaction: `null` for none ("not processed"), a number (a connect's or a
 * poke's), data in a clipboard format, or the topics a wildcard connect lists.
 */
export type DdeAnswer =
  | null
  | number
  | { bytes: Uint8Array; format: number }
  | { topics: string[] };

/**
 * A DDE server whose DDEML instance lives on the window thread: a transaction from another
 * process wakes that thread at once, which hands it to `transact` on the main thread. Commands
 * (start, advise, close) wait for the window thread.
 */
export class ThreadDdeServer {
  readonly #id = nextId++;
  #open = true;
  #ref = true;
  #transact: (transaction: DdeTransaction) => DdeAnswer;
  #onError: (error: unknown) => void;

  /**
   * Starts DDEML on the window thread and registers the service.
   *
   * @param service The service name.
   * @param transact Answers each transaction, on the main thread.
   * @param onError Receives what `transact` throws and faults of the window thread.
   * @param error Makes the error thrown when the service cannot start, from the DDEML function
   *   and its `DdeGetLastError` code.
   */
  constructor(
    service: string,
    transact: (transaction: DdeTransaction) => DdeAnswer,
    onError: (error: unknown) => void,
    error: (failure: DdeFailure) => Error,
  ) {
    const t = theThread();
    this.#transact = transact;
    this.#onError = onError;
    t.dde.set(this.#id, this);
    try {
      command(t, 3, { id: this.#id, service });
    } catch (error) {
      t.dde.delete(this.#id);
      throw error;
    }
    const failed = t.ctl[CTL.commandFailed];
    if (failed !== 0) {
      t.dde.delete(this.#id);
      throw error({
        functionName: ["DdeInitializeW", "DdeCreateStringHandleW", "DdeNameService"][failed - 1],
        code: t.ctl[CTL.commandError],
      });
    }
    addRef();
  }

  /**
   * Tells the clients with an advise loop on the item that it changed (`DdePostAdvise`); the
   * value of each loop is asked from `transact` before this returns.
   *
   * @returns `null`, or the DDEML function and its `DdeGetLastError` code.
   * @throws {Deno.errors.BadResource} Once closed.
   */
  advise(topic: string, item: string): DdeFailure | null {
    if (!this.#open) throw new Deno.errors.BadResource("DDE server is closed");
    const t = theThread();
    command(t, 4, { id: this.#id, topic, item });
    const failed = t.ctl[CTL.commandFailed];
    if (failed === 0) return null;
    if (failed === 1) throw new Deno.errors.BadResource("DDE server is closed");
    return {
      functionName: failed === 2 ? "DdeCreateStringHandleW" : "DdePostAdvise",
      code: t.ctl[CTL.commandError],
    };
  }

  /** Keeps the process alive while serving (the default). */
  ref(): void {
    if (this.#ref || !this.#open) return;
    this.#ref = true;
    addRef();
  }

  /** Lets the process exit while serving. */
  unref(): void {
    if (!this.#ref || !this.#open) return;
    this.#ref = false;
    release();
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return !this.#open;
  }

  /**
   * Refuses every transaction from now on; the window thread unregisters the service and ends
   * the instance once it is back in its message loop (at once, unless this runs inside one of
   * the server's own transactions). Idempotent.
   */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#ref) release();
    this.#ref = false;
    const t = theThread();
    t.dde.delete(this.#id);
    command(t, 5, undefined, BigInt(this.#id));
  }

  /** @internal Answers a transaction the window thread handed over. */
  transact(transaction: DdeTransaction): DdeAnswer {
    try {
      return this.#transact(transaction);
    } catch (error) {
      this.#onError(error);
      return null;
    }
  }

  /** @internal Reports an error of the window thread. */
  fail(error: unknown): void {
    this.#onError(error);
  }
}

/** A DDEML call of the window thread failed: the function and its `DdeGetLastError` code. */
export interface DdeFailure {
  functionName: string;
  code: number;
}
