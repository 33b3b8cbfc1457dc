/**
 * The message pump of the Deno main thread.
 *
 * Windows that winipc creates on the main thread (the DDEML windows of a blocking
 * `DdeConversation` and the window that lists DDE services) belong to it, because their window procedures
 * are plain `Deno.UnsafeCallback`s that must run on the thread that owns the isolate. Messages
 * sent to them from other processes are delivered only while that thread is inside a message
 * function (`PeekMessageW`, `GetMessageW`, ...), so the main thread has to pump, and it must never
 * block.
 *
 * Why polling: a thread can only wait on its *own* queue (`MsgWaitForMultipleObjects` and
 * `GetMessageW` look at the calling thread's queue), and a `nonblocking` FFI call runs on a worker
 * thread, so no worker can sleep until the main thread's queue has something. Windows offers no
 * waitable handle for another thread's queue. So the pump polls: `PeekMessageW(PM_REMOVE)` in a
 * loop (which also runs the window procedures of messages *sent* from other threads and
 * processes) between short sleeps that leave the event loop free.
 *
 * Measured under Wine 10 with deno.exe 2.9.6 (see the test report): an empty `PeekMessageW` costs
 * about 3 µs and `GetQueueStatus` about 0.6 µs; `setTimeout(fn, 1)` fires after about 2.3 ms while
 * a `nonblocking` `Sleep(1)` returns after about 1.3 ms and `Sleep(0)` after about 0.2 ms. The pump
 * therefore sleeps with a nonblocking `Sleep`: `Sleep(0)` while messages keep coming ("hot", for
 * {@linkcode HOT_MS} ms after the last one), and about 1 ms when idle (a high-resolution waitable
 * timer where Windows has one, so not a 15.6 ms tick of a stock Windows timer; else `Sleep(1)`), so a message from another
 * process is handled within about 1.5 ms when idle and a few hundred microseconds in a burst.
 * A nonblocking call needs a free thread of Deno's blocking pool; when other work holds them all
 * (pipes of several child processes did), a {@linkcode FALLBACK_MS} ms timer wakes the pump.
 *
 * Why not a window thread, measured (`tools/pump_latency/run.ts`, 2026-12-02, deno.exe 2.9.6
 * under Wine 10, on a 2-core machine shared with other test runs, so noisy): one C sender, 60
 * WM_COPYDATA messages 150 to 200 ms apart, p50 of each receiver in the same run, two runs:
 *
 * | receiver | run 1 p50 | run 2 p50 | vs C |
 * |---|---|---|---|
 * | C, thread blocked in `GetMessageW` | 206 µs | 252 µs | 1× |
 * | a Deno thread blocked in `GetMessageW`, answering by itself | 378 µs | 473 µs | 1.8–1.9× |
 * | a Worker owns the window, blocks in `GetMessageW`, the main thread computes the reply | 852 µs | 1,007 µs | 4.0–4.1× |
 * | this pump (main thread, idle, nonblocking `Sleep(1)`) | 917 µs | 925 µs | 3.7–4.5× |
 *
 * A Worker-owned window that asks the main thread for its reply through an event-loop message
 * wakes no faster than this pump (a `MessageWindow`'s `onCopyData`, a DDE server's callbacks, a
 * served COM object all need the main thread): the hop there and back costs what the sleep costs.
 * With the hop made of `Atomics.notify` to a main thread waiting in `Atomics.waitAsync` (and
 * `Atomics.wait` for the reply, `tools/pump_latency/atomics_receiver.ts`), measured 2026-12-02 in
 * two runs on the same machine under the load of five other test runs: C 214 / 147 µs, this pump
 * 817 / 1,007 µs (3.8× / 6.9×), the Atomics hand-off 523 / 713 µs (2.4× / 4.9×), a Deno thread
 * answering by itself 361 µs (1.7×, first run). So the Atomics hand-off is about 1.5× faster than
 * the pump and has no sleep on the path (on stock Windows the pump's idle `Sleep(1)` can cost
 * 15.6 ms); it is the way forward, but it moves every window, DDEML instance and COM apartment to
 * that thread and needs an answer for a main thread that sends to its own window (it would wait
 * for the window thread, which waits for it). `MessageWindow`s have moved there
 * (`_window_thread.ts`: winipc sends with `SendMessageTimeoutW` on a worker thread, so the main
 * thread never waits for its own window), and so has the clipboard watcher (`clipboard.ts`
 * `watch`: the window thread adds the listener and hands each `WM_CLIPBOARDUPDATE` over), so a
 * process that only watches the clipboard attaches no pump at all (`pump.attached` stays 0).
 * A DDE server's DDEML instance has moved there too (`dde.ts` `DdeServer`: the window thread
 * hands each transaction to the handlers on the main thread; idle CPU under Wine went from about
 * 20% of a core to 0). So have served COM objects, class registrations and event sinks
 * (`com/_com_thread.ts`: a COM thread, a worker in a single-threaded apartment, holds a wrapper of
 * each and hands every call to the main thread; idle CPU went from about 20% of a core to 0).
 * What still uses this pump: DDE's client side (`DdeConversation` and the service listing, which
 * `DdeClient` runs on a Worker of its own, pumped by that Worker's own pump), and an event sink
 * advised on an in-process COM object made on the main thread (it raises its events there). The
 * owner window that `clipboard.ts` makes for each `OpenClipboard` is on the main thread too, but
 * lives only for that call and needs no pumping. A window thread that answers by itself is bounded
 * by the second row, 1.8–1.9× C here, so even it misses issue 17's 1.4× in these runs.
 *
 * Deep stacks: a message sent from another process reaches the window procedure through a
 * user-mode callback, and Wine copies its data (a `WM_COPYDATA` payload) onto the receiving
 * thread's stack below the current frame. V8 refuses to run JavaScript past its own stack limit
 * (984 KiB by default), so a payload of about 900 KiB or more makes the window procedure fail
 * before its first line with "Maximum call stack size exceeded"; the sender gets 0 as the reply.
 * The pump turns that into a {@linkcode StackLimitError} for the windows' iterators. A receiver
 * of large payloads raises the limit: `deno run --v8-flags=--stack-size=4096 ...` (the thread's
 * real stack is larger) received 4 MB payloads in tests.
 *
 * Lifetime: the pump runs while something is attached (a window, a DDE instance), and for
 * {@linkcode LINGER_MS} after the last one left. A pending nonblocking call keeps the process
 * alive, so when every attached user has `unref()`ed (and while lingering), the pump sleeps with
 * an unref'd `setTimeout` instead, and the process may exit. Then the loop ends.
 *
 * @module
 */
import { WinipcError } from "../ffi/base_error.ts";
import {
  CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
  kernel32,
  TIMER_ALL_ACCESS,
} from "../ffi/kernel32.ts";
import { PM_REMOVE, QS_ALLINPUT, user32, WM_NULL, WM_QUIT } from "../ffi/user32.ts";

/** How long the pump stays hot (polling with `Sleep(0)`) after it last saw a message, in ms. */
export const HOT_MS = 100;
/**
 * How long the pump keeps running (unref'd) after the last user left, in ms. Closing a DDE
 * conversation or instance leaves DDEML windows that finish a termination handshake with the
 * partner; a top-level window whose thread stops pumping makes every broadcast `SendMessage` in
 * the session (such as the `WM_DDE_INITIATE` of another process's `DdeConnect`) wait for it.
 */
const LINGER_MS = 3000;
/** The polling interval of a pump with nothing attached that serves on ({@linkcode Pump.serveForever}). */
const BACKGROUND_MS = 50;
/** The timer that backs up the nonblocking Sleep, in ms. */
const FALLBACK_MS = 3;
/** The longest the pump goes without calling PeekMessageW, in ms. */
const STALE_MS = 1000;
/** At most this many messages are dispatched before the event loop gets a turn. */
const BATCH = 256;

/**
 * A window procedure could not run because the payload on the stack exceeded V8's stack limit.
 *
 * @example Tell the user how to receive large payloads
 * ```ts
 * import { MessageWindow, StackLimitError } from "./copydata.ts";
 * using inbox = new MessageWindow({ title: "uploads" });
 * try {
 *   for await (const message of inbox) console.log(message.data.length);
 * } catch (e) {
 *   if (e instanceof StackLimitError) console.error("run with --v8-flags=--stack-size=4096");
 *   else throw e;
 * }
 * ```
 */
export class StackLimitError extends WinipcError {
  /**
   * Makes the error, with the engine's own as its cause.
   *
   * @param cause The engine's error.
   */
  constructor(cause: unknown) {
    super(
      "A message from another process could not be handled: its data (e.g. a large WM_COPYDATA " +
        "payload) is placed on this thread's stack and V8's stack limit was exceeded; run deno " +
        "with --v8-flags=--stack-size=4096 to receive payloads of about 900 KiB and more",
      "ERR_STACK_LIMIT",
      undefined,
      { cause },
    );
    this.name = "StackLimitError";
  }
}

let callbackDepth = 0;
let deferred: (() => void)[] = [];
let deferTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * Runs the JavaScript body of a callback that Windows calls on the main thread (a window
 * procedure, a DDEML callback, a served COM object's method), counting how deep such calls are
 * nested, so that {@linkcode releaseAfterCallbacks} knows whether one is on the stack.
 *
 * @param body The callback's body.
 * @returns What the body returns.
 */
export function inCallback<T>(body: () => T): T {
  callbackDepth++;
  try {
    return body();
  } finally {
    callbackDepth--;
  }
}

/** Whether a callback counted by {@linkcode inCallback} is running now. */
export function insideCallback(): boolean {
  return callbackDepth > 0;
}

/**
 * Runs `release` now, or, when a callback is on the stack, once every native frame has returned.
 *
 * A `Deno.UnsafeCallback` closed while it runs frees the code its native caller returns into, so
 * a window, DDE instance or served object that its own callback closes keeps its callback (and
 * whatever the foreign code still uses) until the stack has unwound. The release then runs from a
 * timer of its own (ref'd, so the process does not end before it): a timer callback starts from
 * the event loop, with no foreign frame below it.
 *
 * @param release Frees the resources.
 */
export function releaseAfterCallbacks(release: () => void): void {
  if (callbackDepth === 0) {
    release();
    return;
  }
  deferred.push(release);
  deferTimer ??= setTimeout(runDeferred, 0);
}

function runDeferred(): void {
  deferTimer = undefined;
  const now = deferred;
  deferred = [];
  let failure: unknown;
  for (const release of now) {
    try {
      release();
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
}

/** A user of the pump: while attached, the main thread's queue is pumped. */
export interface PumpLease {
  /** Keep the process alive while this lease is attached (the default). */
  ref(): void;
  /** Let the process exit even though this lease is attached. */
  unref(): void;
  /** Detach; the pump stops when no lease is left. Idempotent. */
  release(): void;
}

class Pump {
  #leases = 0;
  #refs = 0;
  #running = false;
  #hotUntil = 0;
  #wakeTimer: (() => void) | undefined;
  #lastPeek = -Infinity;
  #lingerUntil = 0;
  #background = false;
  #sleeping: Promise<void> | undefined;
  #threadId: number | undefined;
  /** The idle wait's high-resolution timer; null where the system has none (see `#idle`). */
  #timer: Deno.PointerObject | null | undefined;
  readonly #due = new BigInt64Array([-10_000n]); // 1 ms from now, in 100 ns units
  readonly #msg = new Uint8Array(48);
  readonly #errorHandlers = new Set<(error: unknown) => void>();
  /** Messages dispatched so far (for tests and measurements). */
  dispatched = 0;

  /**
   * Attaches a user; the pump starts if it was not running.
   *
   * @param onError Receives errors raised while dispatching (they cannot be tied to one window).
   */
  attach(onError?: (error: unknown) => void): PumpLease {
    let attached = true;
    let refd = true;
    if (onError) this.#errorHandlers.add(onError);
    this.#leases++;
    this.#refs++;
    // A new window may be sent to at once: make sure the system does not see a "hung" thread.
    this.#lastPeek = -Infinity;
    this.drain();
    this.#start();
    return {
      ref: () => {
        if (!attached || refd) return;
        refd = true;
        this.#refs++;
        this.wake();
      },
      unref: () => {
        if (!attached || !refd) return;
        refd = false;
        this.#refs--;
      },
      release: () => {
        if (!attached) return;
        attached = false;
        if (onError) this.#errorHandlers.delete(onError);
        this.#leases--;
        if (this.#leases === 0) this.#lingerUntil = performance.now() + LINGER_MS;
        if (refd) this.#refs--;
        refd = false;
        this.wake();
      },
    };
  }

  /** Whether the loop is running (for tests). */
  get running(): boolean {
    return this.#running;
  }

  /**
   * How many users are attached now (for tests: a process that only watches the clipboard has
   * none).
   */
  get attached(): number {
    return this.#leases;
  }

  /** Polls again soon: after posting to our own queue, or when a lease was ref'd. */
  wake(): void {
    this.#hotUntil = performance.now() + HOT_MS;
    const wake = this.#wakeTimer;
    this.#wakeTimer = undefined;
    wake?.();
  }

  /**
   * Dispatches what is waiting in the main thread's queue now, synchronously. Messages sent from
   * other threads are handled inside `PeekMessageW` itself.
   *
   * @returns Whether anything was waiting.
   */
  drain(): boolean {
    const u = user32();
    const busy = (u.GetQueueStatus(QS_ALLINPUT) & 0xffff) !== 0;
    const now = performance.now();
    if (!busy && now - this.#lastPeek < STALE_MS) return false;
    if (!busy) this.#touchServer();
    this.#lastPeek = now;
    const msg = this.#msg;
    for (let i = 0; i < BATCH; i++) {
      if (!u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) break;
      // WM_QUIT is for GetMessage loops; nobody here runs one, so it is dropped.
      if (new DataView(msg.buffer).getUint32(8, true) === WM_QUIT) continue;
      u.TranslateMessage(msg);
      u.DispatchMessageW(msg);
      this.dispatched++;
    }
    return busy;
  }

  /**
   * Windows (and Wine) call a thread "hung" when it has not asked the system for a message for
   * 5 s, and `SendMessageTimeoutW(SMTO_ABORTIFHUNG)` to its windows then fails at once. Neither
   * `GetQueueStatus` nor, under Wine 10, a `PeekMessageW` on an empty queue count as asking (Wine
   * answers those from shared memory without asking the wineserver). So the pump posts itself a
   * `WM_NULL` before it peeks, when a window is created and then every {@linkcode STALE_MS} ms:
   * a queue with a message in it is always asked for by the server.
   */
  #touchServer(): void {
    user32().PostThreadMessageW(
      this.#threadId ??= kernel32().GetCurrentThreadId(),
      WM_NULL,
      0n,
      0n,
    );
  }

  #start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#hotUntil = performance.now() + HOT_MS;
    this.#loop().finally(() => {
      this.#running = false;
      // attached again while the last turn was ending
      if (this.#serving()) this.#start();
    });
  }

  #serving(): boolean {
    return this.#leases > 0 || this.#background || performance.now() < this.#lingerUntil;
  }

  /**
   * Keeps pumping for the rest of the process's life, unref'd and slowly (every
   * {@linkcode BACKGROUND_MS} ms) when nothing is attached. DDEML leaves hidden top-level windows
   * on the thread after `DdeUninitialize` (seen under Wine 10); a window whose thread never pumps
   * again makes every broadcast `SendMessage` of the session wait for it forever (another
   * process's `DdeConnect` hung), so a process that used DDEML answers them from then on.
   */
  serveForever(): void {
    this.#background = true;
    this.#start();
  }

  /**
   * The idle wait of about 1 ms, on a thread of Deno's blocking pool. A `Sleep(1)` lasts one tick
   * of the system timer: 15.6 ms on a stock Windows timer. A high-resolution waitable timer
   * (Windows 10 1803 and later) fires after 1 ms without changing the system's timer resolution,
   * so it is used where the system has one, and `Sleep(1)` elsewhere. Under Wine 10 both took
   * 1.4 ms p50 (200 waits each, 2026-12-02).
   */
  #idle(): Promise<unknown> {
    const k = kernel32();
    this.#timer ??= k.CreateWaitableTimerExW(
      null,
      null,
      CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
      TIMER_ALL_ACCESS,
    );
    if (this.#timer === null || !k.SetWaitableTimer(this.#timer, this.#due, 0, null, null, 0)) {
      return k.SleepAsync(1);
    }
    return k.WaitForSingleObjectAsync(this.#timer, 50); // 50 ms: a backstop, never reached
  }

  /** How the pump waits while idle: a high-resolution timer, or `Sleep(1)` (for tests). */
  get idleWait(): "high-resolution timer" | "Sleep(1)" | "not yet" {
    return this.#timer === undefined
      ? "not yet"
      : this.#timer === null
      ? "Sleep(1)"
      : "high-resolution timer";
  }

  async #loop(): Promise<void> {
    const k = kernel32();
    while (this.#serving()) {
      try {
        if (this.drain()) this.#hotUntil = performance.now() + HOT_MS;
      } catch (error) {
        // An exception left pending by a callback that could not run surfaces here.
        this.#hotUntil = performance.now() + HOT_MS;
        const reported = error instanceof RangeError && /call stack/i.test(error.message)
          ? new StackLimitError(error)
          : error;
        if (this.#errorHandlers.size === 0) console.error(reported);
        for (const handler of this.#errorHandlers) handler(reported);
      }
      if (!this.#serving()) break;
      const hot = performance.now() < this.#hotUntil;
      const background = this.#leases === 0 && performance.now() >= this.#lingerUntil;
      if (this.#refs > 0 && this.#leases > 0) {
        // The nonblocking Sleep needs a thread of Deno's blocking pool, which other work (child
        // process pipes, file I/O) can keep busy; a timer wakes the pump meanwhile, and no second
        // Sleep is queued while one is pending.
        this.#sleeping ??= (hot ? k.SleepAsync(0) : this.#idle()).then(() => {
          this.#sleeping = undefined;
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          this.#sleeping,
          new Promise<void>((resolve) => timer = setTimeout(resolve, FALLBACK_MS)),
        ]);
        clearTimeout(timer);
      } else {
        // Nothing keeps the process alive for our sake: an unref'd timer, woken early by wake().
        await new Promise<void>((resolve) => {
          const id = setTimeout(() => {
            this.#wakeTimer = undefined;
            resolve();
          }, background ? BACKGROUND_MS : hot ? 0 : 1);
          Deno.unrefTimer(id);
          this.#wakeTimer = () => {
            clearTimeout(id);
            resolve();
          };
        });
      }
    }
  }
}

/** The main thread's pump (one per process). */
export const pump: Pump = new Pump();
