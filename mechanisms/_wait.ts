/**
 * Waiting on kernel objects without blocking the event loop, and without one worker thread per
 * wait.
 *
 * A wait ({@linkcode waitObject}) first polls the object on this thread
 * (`WaitForSingleObject(h, 0)`). When it is not yet signalled, it joins a *group*: up to 63
 * objects and the group's wake-up event, waited on by one `nonblocking` `WaitForMultipleObjects`
 * call on one of Deno's worker threads. Adding a waiter, an abort or a timeout sets the wake-up
 * event, so the call returns and is re-armed with the new set. When the call returns, the one
 * object it reports was consumed by it (an auto-reset event's or a semaphore's count) and that
 * waiter is settled as signalled, even if it was aborted meanwhile; every other waiter of the
 * group is then polled on this thread, so all signalled ones complete together. Until the call
 * returned, nothing on this thread touches the objects in it, so no signal is taken twice or
 * lost. New waits go first to an idle group, then to new groups up to 3, then to a group with
 * room: 63 pending waits cost one worker thread, 189 cost three. With nothing pending, no call
 * is in flight. (Deno's pool has 8 threads, which it also uses for child-process output and every
 * other `nonblocking` call: one thread per wait, as before, ran it dry with 8 pending waits.)
 *
 * Why not the thread pool's waits: `RegisterWaitForSingleObject` (63 objects per wait thread of
 * Windows' own pool) needs a thread-safe JS callback, which hops to the main thread just as a
 * returning `nonblocking` call does, and must be unregistered without waiting from the main
 * thread; Wine 10's ntdll has no `NtAssociateWaitCompletionPacket` (which would let the I/O core
 * of `_io.ts` receive object signals as completion packets). Measured under Wine 10 (deno.exe
 * 2.9.6, 2026-12-02, 300 wakes each, two rounds, while other tests loaded the 2-core machine):
 * from `SetEvent` on the main thread to the wait's continuation, the grouped wait took 96–132 µs
 * p50, and `RegisterWaitForSingleObject` with a `Deno.UnsafeCallback.threadSafe` callback
 * 95–118 µs p50 (p90 0.6–2.7 ms for both, the load). With no difference to gain, the group wins
 * on simplicity: no callback to keep alive, ref and unref, and no unregistration to order.
 *
 * A worker thread must never wait on a *mutex*: Windows gives ownership to the thread that
 * acquired it, and only that thread may release it. Mutexes are acquired on the main thread
 * instead ({@linkcode pollUntil}).
 *
 * @module
 */
import type { IoOptions } from "./_validate.ts";
import { checkHandle, lastError, win32Error } from "../ffi/error.ts";
import {
  INFINITE,
  kernel32,
  WAIT_ABANDONED,
  WAIT_FAILED,
  WAIT_OBJECT_0,
  WAIT_TIMEOUT,
} from "../ffi/kernel32.ts";

/** The outcome of a wait. */
export type WaitResult = "signaled" | "abandoned" | "timeout";

/**
 * Options of a wait.
 *
 * @example Wait at most a second, or until aborted
 * ```ts
 * import { Event } from "./sync.ts";
 * using ready = Event.createOrOpen("Local\\ready");
 * const signaled = await ready.wait({ timeout: 1000, signal: AbortSignal.timeout(5000) });
 * ```
 */
export interface WaitOptions extends IoOptions {
  /** Milliseconds to wait; `Infinity` (the default) waits until signalled. */
  timeout?: number;
  /** Aborts the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

function toMs(timeout: number | undefined): number {
  return timeout === undefined || timeout === Infinity ? INFINITE : timeout;
}

function classify(code: number, functionName: string, context: string): WaitResult {
  if (code === WAIT_OBJECT_0) return "signaled";
  if (code === WAIT_ABANDONED) return "abandoned";
  if (code === WAIT_TIMEOUT) return "timeout";
  if (code === WAIT_FAILED) throw win32Error(functionName, lastError(), { context });
  throw new Error(`${context}: ${functionName} returned an unexpected value ${code}`);
}

/**
 * Polls an object once on this thread: `WaitForSingleObject(handle, 0)`.
 *
 * @param handle The object.
 * @param context What is being waited for, for error messages.
 * @returns The outcome.
 */
export function pollObject(handle: Deno.PointerObject, context: string): WaitResult {
  return classify(kernel32().WaitForSingleObject(handle, 0), "WaitForSingleObject", context);
}

/**
 * Waits on this thread, blocking it. For short waits and synchronous APIs only.
 *
 * @param handle The object.
 * @param timeout Milliseconds, or `Infinity`.
 * @param context What is being waited for, for error messages.
 * @returns The outcome.
 */
export function waitObjectSync(
  handle: Deno.PointerObject,
  timeout: number | undefined,
  context: string,
): WaitResult {
  return classify(
    kernel32().WaitForSingleObject(handle, toMs(timeout)),
    "WaitForSingleObject",
    context,
  );
}

/**
 * Waits for an object (not a mutex) without blocking the event loop and without a worker thread
 * of its own: all pending waits of the process share one nonblocking `WaitForMultipleObjects`
 * call per 63 objects (see the module documentation).
 *
 * @param handle The object: an event, semaphore, process or thread. It must stay open until the
 *   promise settles.
 * @param options Timeout and AbortSignal.
 * @param context What is being waited for, for error messages.
 * @returns The outcome. A signal that arrives together with an abort or the timeout wins: an
 *   auto-reset event's or a semaphore's count is never consumed without being reported.
 * @throws The signal's reason when aborted.
 * @throws {Win32Error} When the object cannot be waited on.
 *
 * @example Wait for a process to end, at most 5 s
 * ```ts
 * import { waitObject } from "./_wait.ts";
 * declare const process: Deno.PointerObject;
 * if (await waitObject(process, { timeout: 5000 }, "Cannot wait") === "timeout") {
 *   console.log("still running");
 * }
 * ```
 */
export function waitObject(
  handle: Deno.PointerObject,
  options: WaitOptions,
  context: string,
): Promise<WaitResult> {
  const { signal, timeout } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  let now: WaitResult;
  try {
    now = pollObject(handle, context);
  } catch (error) {
    return Promise.reject(error);
  }
  if (now !== "timeout" || timeout === 0) return Promise.resolve(now);
  return new Promise<WaitResult>((resolve, reject) => {
    const group = pickGroup();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waiter: Waiter = {
      handle,
      context,
      cancelled: undefined,
      settle: (outcome) => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (outcome === "aborted") reject(signal!.reason);
        else if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      },
    };
    const onAbort = () => group.cancel(waiter, "aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout !== undefined && timeout !== Infinity) {
      timer = setTimeout(() => group.cancel(waiter, "timeout"), timeout);
    }
    group.add(waiter);
  });
}

// ---------------------------------------------------------------------------------------------
// grouped waits

/** `MAXIMUM_WAIT_OBJECTS` (64) less the group's wake-up event. */
const GROUP_CAPACITY = 63;
/** At most this many groups (worker threads) wait at once while a group has room. */
const MAX_IDLE_SPREAD = 3;

interface Waiter {
  handle: Deno.PointerObject;
  context: string;
  /** Set when an abort or the timeout asked to end the wait; applied after the call returns. */
  cancelled: "aborted" | "timeout" | undefined;
  settle: (outcome: WaitResult | "aborted" | Error) => void;
}

/** Up to 63 objects waited on by one nonblocking WaitForMultipleObjects call at a time. */
class WaitGroup {
  readonly waiters: Waiter[] = [];
  readonly #wake: Deno.PointerObject;
  #armed = false;

  constructor() {
    // Auto-reset: one SetEvent makes the pending call return once.
    this.#wake = checkHandle(
      kernel32().CreateEventW(null, 0, 0, null),
      "CreateEventW",
      "Cannot create the wait group's wake-up event",
    );
  }

  /** Whether a worker-thread call is waiting for this group. */
  get armed(): boolean {
    return this.#armed;
  }

  add(waiter: Waiter): void {
    this.waiters.push(waiter);
    if (this.#armed) kernel32().SetEvent(this.#wake);
    else this.#run();
  }

  /**
   * Ends a wait early. While the call is in flight the waiter stays in its list (the call may be
   * consuming the object's signal right now); the call is woken and the waiter is settled when
   * it returns, as signalled if the call took its signal.
   */
  cancel(waiter: Waiter, why: "aborted" | "timeout"): void {
    if (!this.waiters.includes(waiter)) return;
    waiter.cancelled ??= why;
    kernel32().SetEvent(this.#wake);
  }

  #settle(waiter: Waiter, outcome: WaitResult | "aborted" | Error): void {
    const at = this.waiters.indexOf(waiter);
    if (at < 0) return;
    this.waiters.splice(at, 1);
    waiter.settle(outcome);
  }

  async #run(): Promise<void> {
    const k = kernel32();
    this.#armed = true;
    try {
      while (this.waiters.length > 0) {
        // While the call is in flight only it consumes these objects' signals; this thread
        // looks at them again only after it returned.
        const list = [...this.waiters];
        const handles = new BigUint64Array(list.length + 1);
        handles[0] = Deno.UnsafePointer.value(this.#wake) as bigint;
        for (let i = 0; i < list.length; i++) {
          handles[i + 1] = Deno.UnsafePointer.value(list[i].handle) as bigint;
        }
        const code = await k.WaitForMultipleObjectsAsync(handles.length, handles, 0, INFINITE);
        // The call consumed (at most) the signal of the one object it reports.
        if (code >= WAIT_OBJECT_0 + 1 && code < WAIT_OBJECT_0 + handles.length) {
          this.#settle(list[code - WAIT_OBJECT_0 - 1], "signaled");
        } else if (code >= WAIT_ABANDONED + 1 && code < WAIT_ABANDONED + handles.length) {
          this.#settle(list[code - WAIT_ABANDONED - 1], "abandoned");
        }
        // Every other waiter (also those added while the call ran) is polled here, no call being
        // in flight, so all that are signalled complete together (and a failed call shows which
        // handle is bad); cancelled ones end.
        for (const w of [...this.waiters]) {
          // A cancelled waiter ends without taking a signal (unless the call already took it
          // for this waiter, above): what it did not take stays for the others.
          if (w.cancelled) {
            this.#settle(w, w.cancelled);
            continue;
          }
          let outcome: WaitResult | Error;
          try {
            outcome = pollObject(w.handle, w.context);
          } catch (error) {
            outcome = error as Error;
          }
          if (outcome !== "timeout") this.#settle(w, outcome);
        }
      }
    } finally {
      this.#armed = false;
    }
  }
}

const groups: WaitGroup[] = [];

/**
 * Where a new wait goes: an idle group first (its call starts at once, one thread hop), else a
 * new group while few exist, else an armed group with room (woken to re-arm: two hops).
 * Spreading over up to 3 groups keeps long waits from making every short wait pay for a re-arm,
 * while 189 waits still use at most 3 worker threads.
 */
function pickGroup(): WaitGroup {
  const idle = groups.find((g) => !g.armed);
  if (idle) return idle;
  if (groups.length < MAX_IDLE_SPREAD) {
    const fresh = new WaitGroup();
    groups.push(fresh);
    return fresh;
  }
  const roomy = groups.find((g) => g.waiters.length < GROUP_CAPACITY);
  if (roomy) return roomy;
  const extra = new WaitGroup();
  groups.push(extra);
  return extra;
}

/**
 * Calls `attempt` until it returns a value, backing off with timers between tries so the event
 * loop runs: for objects that must be acquired on the main thread (mutexes).
 *
 * @param attempt Returns a value when done, `undefined` to try again.
 * @param options Timeout (milliseconds) and AbortSignal.
 * @returns The attempt's value, or `undefined` when the timeout elapsed.
 * @throws The signal's reason when aborted.
 */
export async function pollUntil<T>(
  attempt: () => T | undefined,
  options: WaitOptions,
): Promise<T | undefined> {
  const { signal } = options;
  const deadline = options.timeout === undefined || options.timeout === Infinity
    ? Infinity
    : performance.now() + options.timeout;
  for (let round = 0;; round++) {
    signal?.throwIfAborted();
    const value = attempt();
    if (value !== undefined) return value;
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    // 0, 0, 1, 1, 2, 4, 8, then 10 ms: quick while the holder is likely brief, cheap after.
    await sleep(Math.min(left, [0, 0, 1, 1, 2, 4, 8][round] ?? 10), signal);
  }
}

/**
 * A timer as a promise that an AbortSignal ends early (rejecting with the signal's reason).
 *
 * @param ms Milliseconds.
 * @param signal Aborts the sleep.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(id);
      reject(signal!.reason);
    };
    const id = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
