/**
 * Waiting on kernel objects without blocking the event loop.
 *
 * A wait first polls the object on this thread (`WaitForSingleObject(h, 0)`); when it is not yet
 * signalled, the wait goes to a worker thread through a `nonblocking` FFI call, together with a
 * private cancel event that an AbortSignal sets, so an abort returns at once.
 *
 * A worker thread must never wait on a *mutex*: Windows gives ownership to the thread that
 * acquired it, and only that thread may release it. Mutexes are acquired on the main thread
 * instead ({@linkcode pollUntil}).
 *
 * @module
 */
import { checkHandle, lastError, Win32Error } from "../ffi/error.ts";
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
export interface WaitOptions {
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
  if (code === WAIT_FAILED) throw new Win32Error(functionName, lastError(), { context });
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
 * Waits for an object (not a mutex) on a worker thread, so the event loop stays free.
 *
 * @param handle The object: an event, semaphore, process or thread.
 * @param options Timeout and AbortSignal.
 * @param context What is being waited for, for error messages.
 * @returns The outcome.
 * @throws The signal's reason when aborted.
 */
export async function waitObject(
  handle: Deno.PointerObject,
  options: WaitOptions,
  context: string,
): Promise<WaitResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const now = pollObject(handle, context);
  if (now !== "timeout" || options.timeout === 0) return now;
  const k = kernel32();
  const ms = toMs(options.timeout);
  if (!signal) {
    const code = await k.WaitForSingleObjectAsync(handle, ms);
    // A failed wait on the worker thread leaves its error there: repeat it here to learn why.
    return code === WAIT_FAILED ? pollObject(handle, context) : classify(code, "", context);
  }
  const cancel = checkHandle(k.CreateEventW(null, 1, 0, null), "CreateEventW", context);
  const onAbort = () => k.SetEvent(cancel);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const handles = new BigUint64Array([
      Deno.UnsafePointer.value(handle) as bigint,
      Deno.UnsafePointer.value(cancel) as bigint,
    ]);
    const code = await k.WaitForMultipleObjectsAsync(2, handles, 0, ms);
    // The object was signalled (and, for auto-reset objects, consumed): that wins over an abort
    // that came at the same time, so no wake-up is lost.
    if (code === WAIT_OBJECT_0) return "signaled";
    if (code === WAIT_ABANDONED) return "abandoned";
    if (code === WAIT_OBJECT_0 + 1 || signal.aborted) throw signal.reason;
    return code === WAIT_FAILED ? pollObject(handle, context) : classify(code, "", context);
  } finally {
    signal.removeEventListener("abort", onAbort);
    k.CloseHandle(cancel);
  }
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
