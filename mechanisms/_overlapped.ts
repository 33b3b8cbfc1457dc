/**
 * Overlapped (asynchronous) I/O on Win32 handles without blocking Deno's event loop.
 *
 * Any handle opened with `FILE_FLAG_OVERLAPPED` (named pipes from `CreateNamedPipeW` and
 * `CreateFileW`, serial ports, mailslots, files) can run its I/O through an
 * {@linkcode OverlappedOp}: one `OVERLAPPED` structure and one manual-reset event, reused for
 * one operation at a time.
 *
 * How one operation runs ({@linkcode OverlappedOp.run}):
 *
 * 1. The `OVERLAPPED` is zeroed, its `hEvent` set to the op's event, and the event reset.
 * 2. The caller's `issue` function starts the operation on this thread (`ReadFile`, `WriteFile`,
 *    `ConnectNamedPipe`, `TransactNamedPipe`, ... with the `OVERLAPPED` as its last argument).
 *    Such a call returns at once. `GetLastError` is read right after it, synchronously.
 * 3. If it completed at once (`TRUE`, or a failure other than `ERROR_IO_PENDING`), the result
 *    is read with `GetOverlappedResult(bWait = FALSE)` and returned: no thread switch at all.
 * 4. On `ERROR_IO_PENDING` the event is awaited with {@linkcode waitHandle}: every pending
 *    wait of the process shares one nonblocking `WaitForMultipleObjects` call (see below); an
 *    AbortSignal or a timeout ends the wait at once.
 * 5. When the event is signalled, `GetOverlappedResult(bWait = FALSE)` gives the byte count and
 *    the status.
 * 6. On abort or timeout the operation is cancelled with `CancelIoEx(handle, overlapped)` and
 *    `GetOverlappedResult(bWait = TRUE)` waits (briefly) for the cancellation to land: the buffer
 *    and the `OVERLAPPED` must outlive the operation, so nothing returns while the kernel may
 *    still write into them. If the operation completed before the cancellation reached it, its
 *    result is returned instead of the abort: an abort that races a completion loses no data.
 *
 * Status codes are *returned*, not thrown ({@linkcode IoResult.error}), because several of them
 * are normal outcomes that only the caller can interpret: `ERROR_MORE_DATA` (a message-mode read
 * got part of a message), `ERROR_BROKEN_PIPE` (end of stream), `ERROR_PIPE_CONNECTED` (a client
 * came before `ConnectNamedPipe`), `ERROR_OPERATION_ABORTED` (the handle's owner cancelled all
 * I/O with `CancelIoEx(handle, NULL)`, e.g. in `close()`), `ERROR_SEM_TIMEOUT` (a mailslot's read
 * timeout). Only the abort (the signal's reason) and the timeout (`Deno.errors.TimedOut`) throw.
 *
 * Why one shared wait ({@linkcode waitHandle}) and not one worker thread per operation: Deno runs
 * `nonblocking` FFI calls on a small pool of worker threads (8 in deno.exe 2.x; measured under
 * Wine), which it also uses to read child processes' piped stdout/stderr. One blocking wait per
 * pending operation would exhaust that pool with 8 pending reads (a server with 8 idle clients),
 * after which every other nonblocking call, and the reads of child output, queue behind waits
 * that may never end: a deadlock. So all waits of the process are multiplexed: a group of up to
 * 63 handles (plus a wake-up event) is waited on by a single `WaitForMultipleObjects` call;
 * adding or removing a handle sets the group's wake-up event so the call returns and is re-armed
 * with the new set; when it returns, every handle of the group is polled on the main thread
 * (`WaitForSingleObject(h, 0)`), so all signalled ones complete together. 63 pending operations
 * cost one worker thread; 64 to 126 cost two, and so on. When nothing is pending, no call is in
 * flight and the process can exit. And because the pool may still be full of other work (reads
 * of child output), a group also polls its handles every 20 ms from a timer while anything
 * waits: a saturated pool slows completions down to that pace but can never stall them.
 *
 * Under Wine, the completion of an overlapped read is delivered to the thread that issued it (an
 * APC that copies the data, then sets the event), which runs when that thread next waits in the
 * wineserver. Operations are issued on Deno's main thread, whose event loop waits there whenever
 * it is idle, so completions arrive; no extra step is needed, but it is why the issue happens
 * here and only the wait goes to a worker thread.
 *
 * Ownership: the op borrows the file handle for the duration of `run`; whoever owns the handle
 * must not close it while {@linkcode OverlappedOp.busy} is true. Cancel with
 * {@linkcode cancelAll}, then await {@linkcode OverlappedOp.idle} before `CloseHandle`.
 *
 * @example Read from an overlapped handle with a timeout
 * ```ts
 * import { OverlappedOp } from "./_overlapped.ts";
 * import { kernel32 } from "../ffi/kernel32.ts";
 * declare const pipe: Deno.PointerObject; // opened with FILE_FLAG_OVERLAPPED
 * using op = new OverlappedOp();
 * const buffer = new Uint8Array(4096);
 * const result = await op.run(
 *   pipe,
 *   (overlapped) => kernel32().ReadFile(pipe, buffer, buffer.length, null, overlapped),
 *   { timeout: 5000, context: "Cannot read from pipe" },
 * );
 * if (result.error === 0) console.log(buffer.subarray(0, result.bytes));
 * ```
 *
 * @module
 */
import { checkHandle, lastError, Win32Error } from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import { INFINITE, kernel32, WAIT_ABANDONED, WAIT_FAILED, WAIT_OBJECT_0 } from "../ffi/kernel32.ts";
import { OVERLAPPED } from "../ffi/struct.ts";

/** `ERROR_IO_PENDING`: the operation runs in the background. */
export const ERROR_IO_PENDING = 997;
/** `ERROR_OPERATION_ABORTED`: the operation was cancelled (CancelIoEx, CloseHandle). */
export const ERROR_OPERATION_ABORTED = 995;

/** The outcome of an overlapped operation. */
export interface IoResult {
  /** Bytes transferred (also set with `ERROR_MORE_DATA`). */
  bytes: number;
  /** 0 on success, else the Win32 error code the operation ended with. */
  error: number;
}

/** Options of {@linkcode OverlappedOp.run}. */
export interface OverlappedRunOptions {
  /** Cancels the operation (CancelIoEx); `run` then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds before the operation is cancelled and `run` rejects with `TimedOut`. */
  timeout?: number;
  /** What is being done, for error messages (`Cannot read from pipe "\\.\pipe\x"`). */
  context?: string;
}

/**
 * One reusable `OVERLAPPED` + manual-reset event, for one operation at a time.
 *
 * @example Connect a named pipe instance
 * ```ts
 * import { OverlappedOp } from "./_overlapped.ts";
 * import { kernel32 } from "../ffi/kernel32.ts";
 * declare const instance: Deno.PointerObject;
 * using op = new OverlappedOp();
 * const { error } = await op.run(instance, (ov) => kernel32().ConnectNamedPipe(instance, ov));
 * // error is 0 or 535 (ERROR_PIPE_CONNECTED) when a client is connected
 * ```
 */
export class OverlappedOp implements Disposable {
  /** The `OVERLAPPED` structure; its memory does not move while the op lives. */
  readonly overlapped: Uint8Array<ArrayBuffer> = OVERLAPPED.alloc();
  readonly #event: OwnedHandle;
  readonly #count = new Uint32Array(1);
  #busy = false;
  #idle: PromiseWithResolvers<void> | undefined;
  #disposeWhenIdle = false;

  /** Creates the event. @throws {Win32Error} When `CreateEventW` fails. */
  constructor() {
    this.#event = new OwnedHandle(
      checkHandle(
        kernel32().CreateEventW(null, 1, 0, null),
        "CreateEventW",
        "Cannot create I/O event",
      ),
    );
  }

  /** Whether an operation is in flight. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Resolves when no operation is in flight (at once when idle).
   *
   * @returns A promise that never rejects.
   */
  idle(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  /**
   * Runs one overlapped operation to its end.
   *
   * @param file The handle the operation is issued on (for GetOverlappedResult and CancelIoEx).
   * @param issue Starts the operation with `overlapped` as its `LPOVERLAPPED`; returns the BOOL.
   * @param options AbortSignal, timeout and the error context.
   * @returns The byte count and status code.
   * @throws The signal's reason when aborted before the operation completed.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed first.
   * @throws {Error} When called while another operation of this op is in flight.
   */
  async run(
    file: Deno.PointerObject,
    issue: (overlapped: Uint8Array<ArrayBuffer>) => number | boolean,
    options: OverlappedRunOptions = {},
  ): Promise<IoResult> {
    if (this.#busy) throw new Error("Internal error: overlapped operation already in flight");
    if (this.#event.closed) throw new Deno.errors.BadResource("I/O operation is disposed");
    options.signal?.throwIfAborted();
    const k = kernel32();
    const event = this.#event.unsafeHandle;
    this.overlapped.fill(0);
    OVERLAPPED.write(this.overlapped, { hEvent: event });
    k.ResetEvent(event);
    const started = issue(this.overlapped);
    const code = started ? 0 : lastError(); // at once, on this thread
    if (started) return this.#result(file, false);
    if (code !== ERROR_IO_PENDING) {
      // Failed at once. ERROR_MORE_DATA still transferred bytes, which the OVERLAPPED records.
      return code === 234 ? this.#result(file, false) : { bytes: 0, error: code };
    }
    this.#busy = true;
    try {
      let state;
      try {
        state = await waitHandle(
          event,
          { signal: options.signal, timeout: options.timeout },
          options.context ?? "Cannot wait for I/O",
        );
      } catch (reason) {
        const result = this.#cancel(file);
        if (result.error === ERROR_OPERATION_ABORTED) throw reason;
        return result; // it completed before the cancellation reached it: keep its data
      }
      if (state === "timeout") {
        const result = this.#cancel(file);
        if (result.error !== ERROR_OPERATION_ABORTED) return result;
        throw new Deno.errors.TimedOut(
          `${options.context ?? "I/O"}: no completion within ${options.timeout} ms`,
        );
      }
      return this.#result(file, false);
    } finally {
      this.#busy = false;
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.resolve();
      if (this.#disposeWhenIdle) this.#event.close();
    }
  }

  #result(file: Deno.PointerObject, wait: boolean): IoResult {
    this.#count[0] = 0;
    const ok = kernel32().GetOverlappedResult(file, this.overlapped, this.#count, wait ? 1 : 0);
    return { bytes: this.#count[0], error: ok ? 0 : lastError() };
  }

  #cancel(file: Deno.PointerObject): IoResult {
    // ERROR_NOT_FOUND here means it completed meanwhile; either way wait for the final status,
    // so the buffers are not released while the kernel may still use them.
    kernel32().CancelIoEx(file, this.overlapped);
    return this.#result(file, true);
  }

  /**
   * Closes the event, now when idle, else as soon as the operation in flight ends (cancel it
   * first with {@linkcode cancelAll} or it may wait forever). A second call does nothing.
   */
  [Symbol.dispose](): void {
    if (this.#busy) this.#disposeWhenIdle = true;
    else this.#event.close();
  }
}

/**
 * Cancels every overlapped operation issued on a handle by this process (`CancelIoEx(h, NULL)`):
 * each ends with `ERROR_OPERATION_ABORTED` (unless it completed first) and its waiter wakes.
 *
 * @param file The handle.
 * @returns `true` when something was cancelled.
 */
export function cancelAll(file: Deno.PointerObject): boolean {
  return kernel32().CancelIoEx(file, null) !== 0;
}

// ---------------------------------------------------------------------------------------------
// one shared wait for all pending operations

/** `MAXIMUM_WAIT_OBJECTS` (64) less the group's wake-up event. */
const GROUP_CAPACITY = 63;
/** How often a group polls its handles itself, in case its worker-thread call is delayed. */
const BACKSTOP_POLL_MS = 20;

interface Waiter {
  handle: Deno.PointerObject;
  context: string;
  settle: (outcome: "signaled" | "abandoned" | Error) => void;
}

/** Up to 63 handles waited on by one nonblocking WaitForMultipleObjects call at a time. */
class WaitGroup {
  readonly waiters = new Set<Waiter>();
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
    this.waiters.add(waiter);
    if (this.#armed) kernel32().SetEvent(this.#wake);
    else this.#run();
  }

  remove(waiter: Waiter): void {
    if (this.waiters.delete(waiter) && this.#armed) kernel32().SetEvent(this.#wake);
  }

  /** Completes every waiter whose handle is signalled (polls on this thread). */
  #poll(): void {
    const k = kernel32();
    for (const w of [...this.waiters]) {
      const code = k.WaitForSingleObject(w.handle, 0);
      if (code === WAIT_OBJECT_0 || code === WAIT_ABANDONED) {
        this.waiters.delete(w);
        w.settle(code === WAIT_OBJECT_0 ? "signaled" : "abandoned");
      } else if (code === WAIT_FAILED) {
        this.waiters.delete(w);
        w.settle(new Win32Error("WaitForSingleObject", lastError(), { context: w.context }));
      }
    }
  }

  async #run(): Promise<void> {
    const k = kernel32();
    this.#armed = true;
    // The backstop: if the worker pool is busy with other work (e.g. reads of child processes'
    // output), the nonblocking call below may wait its turn; meanwhile this timer polls the
    // handles, so progress never depends on a free worker thread. Unref'd: the pending call
    // keeps the process alive as long as something waits.
    const backstop = setInterval(() => this.#poll(), BACKSTOP_POLL_MS);
    Deno.unrefTimer(backstop as unknown as number);
    try {
      while (this.waiters.size > 0) {
        const handles = new BigUint64Array(this.waiters.size + 1);
        handles[0] = Deno.UnsafePointer.value(this.#wake) as bigint;
        let i = 1;
        for (const w of this.waiters) handles[i++] = Deno.UnsafePointer.value(w.handle) as bigint;
        await k.WaitForMultipleObjectsAsync(handles.length, handles, 0, INFINITE);
        // Whatever woke the call (one handle, the wake-up event, a failure), look at every
        // handle here: all that are signalled complete now, the rest wait in the next round.
        this.#poll();
      }
    } finally {
      clearInterval(backstop);
      this.#armed = false;
    }
  }
}

const groups: WaitGroup[] = [];
/** At most this many groups (worker threads) wait at once while a group has room. */
const MAX_IDLE_SPREAD = 3;

/**
 * Where a new wait goes: an idle group first (its call starts at once, one thread hop), else a
 * new group while few exist, else the armed group with room (woken to re-arm: two hops).
 * Spreading over up to 3 groups keeps long waits (listening instances) from making every short
 * wait (a read) pay for a re-arm, while still using at most 3 worker threads for 189 waits.
 */
function pickGroup(): WaitGroup {
  const idle = groups.find((g) => !g.armed);
  if (idle) return idle;
  if (groups.length < MAX_IDLE_SPREAD) {
    const fresh = new WaitGroup();
    groups.push(fresh);
    return fresh;
  }
  const roomy = groups.find((g) => g.waiters.size < GROUP_CAPACITY);
  if (roomy) return roomy;
  const extra = new WaitGroup();
  groups.push(extra);
  return extra;
}

/** Options of {@linkcode waitHandle}. */
export interface WaitHandleOptions {
  /** Milliseconds; `Infinity` or absent waits until signalled. */
  timeout?: number;
  /** Ends the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Waits until a handle (event, process, thread, semaphore; not a mutex, whose ownership would go
 * to a worker thread) is signalled, without blocking the event loop and without taking a worker
 * thread of its own: all pending waits of the process share one `WaitForMultipleObjects` call per
 * 63 handles (see the module documentation).
 *
 * @param handle The handle. It must stay open until the promise settles.
 * @param options Timeout and AbortSignal.
 * @param context What is being waited for, for error messages.
 * @returns `"signaled"`, `"abandoned"` (a mutex whose owner died) or `"timeout"`.
 * @throws The signal's reason when aborted.
 * @throws {Win32Error} When the handle cannot be waited on.
 *
 * @example Wait for a process to end, at most 5 s
 * ```ts
 * import { waitHandle } from "./_overlapped.ts";
 * declare const process: Deno.PointerObject;
 * if (await waitHandle(process, { timeout: 5000 }) === "timeout") console.log("still running");
 * ```
 */
export function waitHandle(
  handle: Deno.PointerObject,
  options: WaitHandleOptions = {},
  context = "Cannot wait",
): Promise<"signaled" | "abandoned" | "timeout"> {
  const { signal, timeout } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const now = kernel32().WaitForSingleObject(handle, 0);
  if (now === WAIT_OBJECT_0) return Promise.resolve("signaled");
  if (now === WAIT_ABANDONED) return Promise.resolve("abandoned");
  if (now === WAIT_FAILED) {
    return Promise.reject(new Win32Error("WaitForSingleObject", lastError(), { context }));
  }
  if (timeout === 0) return Promise.resolve("timeout");
  return new Promise((resolve, reject) => {
    const group = pickGroup();
    const chosen = group;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const waiter: Waiter = {
      handle,
      context,
      settle: (outcome) => {
        finish();
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      },
    };
    const onAbort = () => {
      finish();
      chosen.remove(waiter);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeout !== undefined && timeout !== Infinity) {
      timer = setTimeout(() => {
        finish();
        chosen.remove(waiter);
        resolve("timeout");
      }, timeout);
    }
    chosen.add(waiter);
  });
}
