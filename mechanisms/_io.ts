/**
 * The process's I/O core: one I/O completion port that every overlapped handle of winipc is
 * associated with, and one wait for its completions.
 *
 * Every handle opened with `FILE_FLAG_OVERLAPPED` (named pipes on both sides, the pipes behind
 * anonymous pipes, serial ports, the pipe file system's root for `FSCTL_PIPE_WAIT`) runs its I/O
 * through an {@linkcode OverlappedOp}. The first
 * operation on a handle associates it with the port (created lazily), and sets
 * `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`, both with `NtSetInformationFile` (what
 * `CreateIoCompletionPort` and `SetFileCompletionNotificationModes` do, but with the status as its
 * return value instead of in `GetLastError`), so an
 * operation that completes at once needs no completion packet and no thread switch at all.
 *
 * How one operation runs ({@linkcode OverlappedOp.run}):
 *
 * 1. The caller's `issue` function starts the operation on this thread (`ReadFile`, `WriteFile`,
 *    `ConnectNamedPipe`, `TransactNamedPipe`, ... with the op's `OVERLAPPED`, whose `hEvent` is
 *    NULL). `GetLastError` is read right after it, synchronously.
 * 2. `TRUE` or a failure other than `ERROR_IO_PENDING`: the operation is over; its byte count
 *    and status come from `GetOverlappedResult(bWait = FALSE)` or the error code.
 * 3. `ERROR_IO_PENDING`: the op is registered under its `OVERLAPPED`'s address, and the core's
 *    one completion wait is armed if it is not already: a `nonblocking`
 *    `NtRemoveIoCompletionEx` call (what `GetQueuedCompletionStatusEx` calls, with its status as
 *    the return value; on one of Deno's worker threads) that dequeues up to 64
 *    completions at a time. When it returns, each `OVERLAPPED_ENTRY` settles the op registered
 *    under its `lpOverlapped` (status read with `GetOverlappedResult(bWait = FALSE)`, which
 *    returns at once since the packet proves the operation ended); then, after the settled
 *    operations' continuations had their turn (see below), the port is drained with timeout-0
 *    calls on this thread when the batch was full, and the wait is re-armed while anything is
 *    pending. When
 *    nothing is pending no call is in flight, so the process can exit. Packets for an
 *    `OVERLAPPED` nobody waits for are dropped, and so is one whose `OVERLAPPED` still reads
 *    `STATUS_PENDING` (the kernel writes the final status before it queues the packet, so such a
 *    packet belongs to an earlier operation on the same `OVERLAPPED`).
 * 4. An AbortSignal or a timeout cancels the operation with `CancelIoEx(handle, overlapped)`;
 *    the op still waits for its packet (the cancelled one arrives with `ERROR_OPERATION_ABORTED`,
 *    or with the result when the operation won the race), so its buffer and `OVERLAPPED` stay
 *    alive while the kernel may write into them, and nothing ever waits with
 *    `GetOverlappedResult(bWait = TRUE)` on the main thread.
 * 5. A wait that fails (never seen; the port's status is checked on this thread then) is
 *    re-armed after a pause that doubles with each failure in a row, up to 100 ms, so it can
 *    never spin the event loop; when the port itself no longer works, every pending operation
 *    rejects with the `Win32Error` instead of waiting for a packet that cannot be dequeued.
 *
 * Status codes are *returned*, not thrown ({@linkcode IoResult.error}), because several of them
 * are normal outcomes only the caller can interpret: `ERROR_MORE_DATA` (a message-mode read got
 * part of a message), `ERROR_BROKEN_PIPE` (end of stream), `ERROR_PIPE_CONNECTED`,
 * `ERROR_OPERATION_ABORTED` (the owner cancelled all I/O with {@linkcode cancelAll}, e.g. in
 * `close()`). Only the abort (the signal's reason) and the timeout (`Deno.errors.TimedOut`) throw,
 * and not even those with {@linkcode OverlappedRunOptions.returnCancelled} (serial reads keep the
 * bytes that came before their timeout).
 *
 * Measured under Wine 10 (deno.exe 2.9.6, 2026-12-02): named pipe completions are delivered
 * through the port, also when dequeued on a worker thread; `SetFileCompletionNotificationModes`
 * works (an at-once success posts no packet); a message-mode read that fails at once with
 * `ERROR_MORE_DATA` posts a packet without the skip flag and none with it. Windows documents the
 * skip as applying to successes only, and `STATUS_BUFFER_OVERFLOW` is a warning, so whether it
 * posts one there is not something to depend on: after an at-once `ERROR_MORE_DATA` the op
 * retires its `OVERLAPPED` (kept alive, at most {@linkcode RETIRED_LIMIT} of them, until a packet
 * for it arrives) and takes a fresh one. Re-associating an associated handle fails with
 * `ERROR_INVALID_PARAMETER` in about 7 µs, so each operation simply tries, instead of tracking
 * handle values that Windows reuses after `CloseHandle`.
 *
 * Why one wait and not one per operation: Deno runs `nonblocking` FFI calls on a small pool of
 * worker threads (8 in deno.exe 2.x), which it also uses to read child processes' output; one
 * blocking wait per pending operation would exhaust it. Here any number of pending operations
 * cost one worker thread. That pool can still be full of other work (a test process reading the
 * output of 8 children fills it): the call then waits its turn, and completions would wait with
 * it. So while anything is pending, the port is also drained on this thread by an unref'd timer,
 * every {@linkcode BACKSTOP_POLL_MS} ms at first, twice as late after each drain that found
 * nothing (up to {@linkcode BACKSTOP_MAX_MS} ms), and back to the start after one that found
 * something: a saturated pool slows completions down but can never stall them (the 8-client pipe
 * test deadlocked without it), and an idle process pays little for it (measured under Wine, an
 * idle process with 100 pending pipe reads and 64 event waits used 1.0–1.2% of a core with a
 * fixed 20 ms drain, 0.20% with this back-off, 0.00% with none). When that drain
 * settles the last operation while the call still waits, a `PostQueuedCompletionStatus` wake-up
 * ends the call, so no worker thread waits with nothing pending.
 *
 * Where the time of a round trip goes, measured under Wine 10 (deno.exe 2.9.6, 2026-12-02, the
 * 2-core machine loaded by other Wine jobs, load average 3 to 7, so every figure is noisy;
 * `.scratch`-style scripts, p50 over 2,000):
 *
 * | step | p50 µs |
 * |---|---|
 * | one `nonblocking` FFI round trip (`Sleep(0)`, or `GetQueuedCompletionStatusEx` timeout 0), awaited | 28–35 |
 * | a waiting `nonblocking` `GetQueuedCompletionStatusEx` woken by `PostQueuedCompletionStatus`, until its promise resolves | 55–66 |
 * | arming a `nonblocking` call (its synchronous part on this thread) | 14 |
 * | `GetQueuedCompletionStatusEx` timeout 0 on this thread, empty port | 3.5 (quiet) – 15 (loaded) |
 * | associating an associated handle again (`NtSetInformationFile`) | 13 |
 * | 64 B pipe round trip, synchronous `WriteFile` + `ReadFile` against a synchronous peer | 52–118 |
 * | the same through this core (winipc client) against the same synchronous peer | 70–150 |
 *
 * So each pending operation costs two thread wake-ups (the worker thread's, then this thread's),
 * about 60 µs here, on top of the kernel's; with both processes on the core a round trip has two
 * pending reads, four wake-ups, where a synchronous peer has two and Deno's own `node:net` pipe
 * (tokio's completion port, which its event loop blocks on) one per pending read. Deno gives
 * no way to wake this thread from a completion port of ours directly, so that part stays. What
 * was taken out, by two changes:
 *
 * - Pipe connections associate their handle once (the `associated` option of
 *   {@linkcode OverlappedOp.run}, as sockets do), and `readMessage` reads into one reusable
 *   buffer instead of making and zeroing a 64 KiB one per message: a `write` that completes at
 *   once went from 41–51 to 20–27 µs, a `readMessage` whose data is there from 44–73 to
 *   13–27 µs (p50, alternated runs). Sockets had neither cost (an operation that completes at
 *   once costs about 1.5 µs more than the bare `WSASend`/`WSARecv`).
 * - A wake-up first lets the continuations of what it settled run (up to
 *   {@linkcode REARM_YIELDS} microtask turns; in the pipe ping-pong the next read re-armed the
 *   wait after 11 turns, sometimes 21 to 51, almost never none), and drains only after a full
 *   batch: the drain (4–15 µs) and the re-arm (14 µs) used to run before the reader's
 *   continuation, so before its reply went out; now the next operation, issued by that
 *   continuation, re-arms the wait after its own request went out, and a packet that came
 *   meanwhile ends the next wait at once. A wait that returned has to be re-armed for the next
 *   completion anyway, so this is the whole of "re-using an armed wait": what changed is only
 *   whose time the re-arm takes.
 *
 * `winipc bench --mechanism pipe,deno-pipe,socket --size 64 --floor`, four rounds, each running
 * the code before both changes, after the first, and after both, one after the other (load
 * average 2.5 to 3.7), p50 µs:
 *
 * | | before | pipe change | both |
 * |---|---|---|---|
 * | pipe | 283, 226, 232, 275 | 210, 173, 359, 179 | 154, 156, 183, 157 |
 * | pipe floor | 51–104 | 54–98 | 56–101 |
 * | `deno-pipe` | 105–174 | 123–172 | 104–177 |
 * | socket | 279, 274, 251, 220 | 221, 331, 225, 210 | 197, 193, 192, 180 |
 * | socket floor | 78–160 | 79–152 | 78–157 |
 *
 * (The floors come in two groups, about 55 and 100 µs for the pipe, 78 and 155 µs for the
 * socket, whichever the scheduler gave that run.) Three more alternated rounds (load average 3.4
 * to 4.0): pipe 213, 236, 236 µs before, 170, 198, 136 µs after (`deno-pipe` 101–128 µs);
 * socket 219, 249, 228 µs before, 266, 256, 294 µs after; four socket-only rounds: 196, 315, 248,
 * 353 µs before, 223, 177, 378, 185 µs after. The pipe gains in every set; the socket gains less
 * clearly (over all eleven socket runs the median went from 249 to 197 µs). Neither reaches 1.5×
 * its floor under Wine: the four wake-ups remain.
 *
 * Tried and left out, spinning on this thread after an operation went pending: watching the
 * `OVERLAPPED`'s status word for up to N µs (no call per turn; Wine's completion does show up
 * there while this thread runs JavaScript) and then dequeuing the packet here. In the bench it
 * only lost: pipe p50 229 and 259 µs without it, 824/621 µs with 150 µs, 659/809 µs with 400 µs,
 * 2,440/462 µs with 1 ms of spin (one run each, alternated, load average 4 to 8); with 50 µs the
 * reply came within the spin for 195 of about 1,750 pending reads, since the peer process needs longer
 * than that to answer. An earlier variant that polled the port with timeout-0 calls lost the same
 * way (p50 292 µs to 643 µs with 300 µs of polling, 1,438 µs with 1 ms). On two cores a thread
 * that spins takes the time the peer process needs to answer; the shm channel can spin because
 * there the peer answers in about a microsecond. So an operation that pends goes straight to
 * the worker-thread wait and this thread never spins: an idle process costs nothing.
 *
 * Under Wine a pending read wakes its issuing thread once more: Wine's server hands a completed
 * read's data to the thread that issued it (a system APC, then a `get_async_result` request)
 * before it queues the packet. A `WINEDEBUG=+server` trace of a pipe read (2026-12-03) showed the
 * main thread woken for that copy, then the worker thread with the packet, then the main thread
 * again; on Windows the kernel copies the data, and only the last two wake. Issuing the reads on
 * the thread that waits on the port would save that wake-up under Wine only (Deno runs each
 * `nonblocking` call on whichever worker thread is free, so it would need a Worker of winipc's own
 * and a hand-off per read); `tools/async_floor` puts the difference at a few per cent of a round
 * trip (`iocp` against `nonblocking-ffi`, whose blocking read wakes only its own thread), so it is
 * left as it is.
 *
 * Ownership: the op borrows the file handle for the duration of `run`; whoever owns the handle
 * must not close it while {@linkcode OverlappedOp.busy} is true. Cancel with
 * {@linkcode cancelAll}, then await {@linkcode OverlappedOp.idle} before `CloseHandle`.
 *
 * @example Read from an overlapped handle with a timeout
 * ```ts
 * import { OverlappedOp } from "./_io.ts";
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
import { checkNtStatus, checkPointer, ntStatusError } from "../ffi/error.ts";
import { kernel32 } from "../ffi/kernel32.ts";
import {
  FILE_COMPLETION_INFORMATION_CLASS,
  FILE_IO_COMPLETION_NOTIFICATION_INFORMATION_CLASS,
  ntdll,
  STATUS_INVALID_PARAMETER,
  STATUS_TIMEOUT,
} from "../ffi/ntdll.ts";
import { OVERLAPPED } from "../ffi/struct.ts";

/** `ERROR_IO_PENDING`: the operation runs in the background. */
export const ERROR_IO_PENDING = 997;
/** `ERROR_OPERATION_ABORTED`: the operation was cancelled (CancelIoEx, CloseHandle). */
export const ERROR_OPERATION_ABORTED = 995;
/** `ERROR_MORE_DATA`: a message-mode read got part of a message. */
const ERROR_MORE_DATA = 234;
/** `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`. */
const FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 1;
/** `OVERLAPPED_ENTRY` on x64: key, lpOverlapped, Internal (8 bytes each), byte count (4), pad. */
const ENTRY_SIZE = 32;
/** Completions dequeued per call. */
const BATCH = 64;
/** How many retired `OVERLAPPED`s (see the module doc) are kept for a packet that may come. */
export const RETIRED_LIMIT = 256;
/** The completion key of winipc's handles; packets with {@linkcode WAKE_KEY} only wake the wait. */
const HANDLE_KEY = 1n;
/** The completion key of {@linkcode wakeCore}'s packets. */
const WAKE_KEY = 2n;
/** `STATUS_PENDING` in an `OVERLAPPED`'s `Internal`. */
const STATUS_PENDING = 0x103n;
/**
 * How many microtask turns a wake-up lets pass before it drains and re-arms (see `waitOnce`):
 * enough for a settled read's continuation to write its reply and issue its next read (a chain
 * of a dozen or so awaits through a connection's lanes), bounded so a wake-up that settled
 * nothing new re-arms at once.
 */
export const REARM_YIELDS = 64;
/**
 * Counts packets, packets that matched no pending operation, and failed worker-thread waits
 * with the last one's NTSTATUS (for tests and diagnostics).
 */
export const stats = { strays: 0, packets: 0, failedWaits: 0, lastWaitFailure: 0 };

/** The outcome of an overlapped operation. */
export interface IoResult {
  /** Bytes transferred (also set with `ERROR_MORE_DATA`). */
  bytes: number;
  /** 0 on success, else the Win32 error code the operation ended with. */
  error: number;
  /**
   * With {@linkcode OverlappedRunOptions.returnCancelled}: why the operation was cancelled
   * (`error` is then `ERROR_OPERATION_ABORTED`, `bytes` what it transferred before).
   */
  cancelled?: "abort" | "timeout";
}

/** Options of {@linkcode OverlappedOp.run}. */
export interface OverlappedRunOptions {
  /** Cancels the operation (CancelIoEx); `run` then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds before the operation is cancelled and `run` rejects with `TimedOut`. */
  timeout?: number;
  /** What is being done, for error messages (`Cannot read from pipe "\\.\pipe\x"`). */
  context?: string;
  /**
   * Return a cancelled operation's result (with {@linkcode IoResult.cancelled} set) instead of
   * throwing, e.g. to keep the bytes a serial read got before its timeout. Default `false`.
   */
  returnCancelled?: boolean;
  /**
   * The caller associated `file` with the port already ({@linkcode associate}) and owns it for as
   * long as it uses this option, so `run` skips its per-operation association attempt (about
   * 5 µs under Wine for a handle already associated). Default `false`.
   */
  associated?: boolean;
}

// ---------------------------------------------------------------------------------------------
// the port and its one wait

let port: Deno.PointerObject | null = null;
/** The `IO_STATUS_BLOCK` the association calls write (never read). */
const ioStatusBlock = new Uint8Array(16);
/** A pending operation: how to end it, and what the kernel may still write into. */
interface Waiter {
  /** Ends the wait: with no argument when the packet came, with an error when none can come. */
  settle: (error?: Error) => void;
  /** The OVERLAPPED and the buffers of the operation. */
  keep: unknown;
}
/** Pending operations by the address of their OVERLAPPED. */
const pending = new Map<bigint, Waiter>();
/** What operations ended by {@linkcode failAll} may still have written into. */
const abandoned: unknown[] = [];
/** The timeout-0 `LARGE_INTEGER` of the drains on this thread. */
const zero = new BigInt64Array(1);
/** Failed worker-thread waits in a row (see `failedWait`). */
let failures = 0;
/** The longest pause before a failed wait is re-armed. */
const FAILED_WAIT_MAX_MS = 100;
/** OVERLAPPEDs that may still get a packet, by address (insertion order = age). */
const retired = new Map<bigint, Uint8Array>();
/** One OVERLAPPED_ENTRY array for the worker-thread call, one for dequeues on this thread. */
const workerEntries = new Uint8Array(ENTRY_SIZE * BATCH);
const workerRemoved = new Uint32Array(1);
const mainEntries = new Uint8Array(ENTRY_SIZE * BATCH);
const mainRemoved = new Uint32Array(1);
/** Whether the nonblocking NtRemoveIoCompletionEx call is in flight. */
let inFlight = false;
/** The backstop poll's timer while anything is pending. */
let backstop: ReturnType<typeof setTimeout> | undefined;
/** How often the port is also drained on this thread while anything is pending (see module doc). */
export const BACKSTOP_POLL_MS = 20;
/** The backstop's longest interval, reached while its drains find nothing. */
export const BACKSTOP_MAX_MS = 320;

function thePort(): Deno.PointerObject {
  if (port) return port;
  const k = kernel32();
  // INVALID_HANDLE_VALUE as the file: a port with no handle yet.
  port = checkPointer(
    k.CreateIoCompletionPort(Deno.UnsafePointer.create(-1n), null, 0n, 0),
    "CreateIoCompletionPort",
    "Cannot create the I/O completion port",
  );
  return port;
}

/**
 * Associates a handle opened with `FILE_FLAG_OVERLAPPED` with the process's completion port
 * (once; later calls see `ERROR_INVALID_PARAMETER` and return) and sets
 * `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` on it.
 *
 * @param file The handle.
 * @param context What is being done, for error messages.
 * @throws {Win32Error} When the handle cannot be associated (e.g. it is not overlapped).
 */
export function associate(file: Deno.PointerObject, context = "Cannot start I/O"): void {
  // The native call, not CreateIoCompletionPort: its status is its return value. The Win32 call
  // reports through GetLastError, and the runtime may overwrite that before it is read (see
  // `lastError`): twice in about twenty long bench runs, an expected "associated already" was read
  // as 1150 (ERROR_OLD_WIN_VERSION, which the runtime's own VerifyVersionInfoW calls leave behind)
  // and killed the peer.
  const completion = new BigUint64Array([
    Deno.UnsafePointer.value(thePort()) as bigint,
    HANDLE_KEY,
  ]);
  const status = setFileInformation(file, completion, FILE_COMPLETION_INFORMATION_CLASS);
  if (status === STATUS_INVALID_PARAMETER) return; // associated already
  checkNtStatus(
    status,
    "NtSetInformationFile",
    `${context} (associating the handle with the completion port)`,
  );
  const modes = new Uint32Array([FILE_SKIP_COMPLETION_PORT_ON_SUCCESS]);
  checkNtStatus(
    setFileInformation(file, modes, FILE_IO_COMPLETION_NOTIFICATION_INFORMATION_CLASS),
    "NtSetInformationFile",
    `${context} (setting FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)`,
  );
}

/** `NtSetInformationFile` with `info` as the information of class `infoClass`; its NTSTATUS. */
function setFileInformation(
  file: Deno.PointerObject,
  info: BigUint64Array<ArrayBuffer> | Uint32Array<ArrayBuffer>,
  infoClass: number,
): number {
  const bytes = new Uint8Array(info.buffer);
  return ntdll().NtSetInformationFile(file, ioStatusBlock, bytes, bytes.byteLength, infoClass);
}

/** Settles every operation whose packet is among the first `count` entries. */
function dispatch(entries: Uint8Array, count: number): void {
  const view = new DataView(entries.buffer);
  for (let i = 0; i < count; i++) {
    const at = i * ENTRY_SIZE;
    if (view.getBigUint64(at, true) !== HANDLE_KEY) continue; // a wake-up
    const address = view.getBigUint64(at + 8, true);
    stats.packets++;
    const waiter = pending.get(address);
    // A packet proves its operation ended, and the kernel writes the final status into
    // `Internal` before it queues the packet. A packet that finds its OVERLAPPED still at
    // STATUS_PENDING belongs to an earlier operation on the same OVERLAPPED: drop it.
    if (waiter && readInternal(address) !== STATUS_PENDING) {
      pending.delete(address);
      waiter.settle();
    } else {
      stats.strays++;
      retired.delete(address);
    }
  }
}

/** Reads an OVERLAPPED's `Internal` (the NTSTATUS) by address. */
function readInternal(address: bigint): bigint {
  return new Deno.UnsafePointerView(Deno.UnsafePointer.create(address)!).getBigUint64(0);
}

/**
 * Dequeues what is already queued, on this thread (timeout 0).
 *
 * @returns 0 (`STATUS_SUCCESS`) or `STATUS_TIMEOUT` when the port works, else the failure.
 */
function drain(): number {
  const nt = ntdll();
  for (;;) {
    const status = nt.NtRemoveIoCompletionEx(thePort(), mainEntries, BATCH, mainRemoved, zero, 0);
    if (status !== 0) return status;
    const count = mainRemoved[0];
    dispatch(mainEntries, count);
    if (count < BATCH) return 0;
  }
}

/** The one wait: a nonblocking NtRemoveIoCompletionEx, re-armed while anything is pending. */
async function waitOnce(): Promise<void> {
  inFlight = true;
  let status: number;
  try {
    // `NtRemoveIoCompletionEx`, not `GetQueuedCompletionStatusEx`: its status is its return
    // value, where the Win32 call's would be in the worker thread's last error, which this
    // thread cannot read.
    status = await ntdll().NtRemoveIoCompletionExAsync(
      thePort(),
      workerEntries,
      BATCH,
      workerRemoved,
      null,
      0,
    );
  } finally {
    inFlight = false;
  }
  const count = status === 0 ? workerRemoved[0] : 0;
  if (status === 0) dispatch(workerEntries, count);
  // Let the continuations of what just settled run before the drain and the re-arm (each a
  // call of 4 to 15 µs under Wine, see the module doc): they usually issue the next operation,
  // whose `expect` re-arms the wait itself, after its caller's reply or request went out.
  for (let i = 0; i < REARM_YIELDS && !inFlight; i++) await undefined;
  if (status !== 0 && status !== STATUS_TIMEOUT) {
    failedWait(status);
    return;
  }
  failures = 0;
  // A full batch may have left packets behind. Otherwise a packet that came meanwhile ends the
  // next wait at once.
  if (count === BATCH) drain();
  rearm();
}

/**
 * The worker-thread wait failed, which no state of the port explains (never seen): find out
 * on this thread whether the port still works. When it does, re-arm after a pause that grows
 * with each failure in a row, so a wait that keeps failing can never spin the event loop; when
 * it does not, no completion can ever be dequeued again, so every pending operation ends with
 * the error instead of waiting forever.
 */
function failedWait(status: number): void {
  stats.failedWaits++;
  stats.lastWaitFailure = status;
  const again = drain();
  if (again !== 0 && again !== STATUS_TIMEOUT) {
    failAll(
      ntStatusError("NtRemoveIoCompletionEx", again, {
        context: "The I/O completion port failed; pending I/O cannot complete",
      }),
    );
    return;
  }
  failures++;
  if (inFlight || pending.size === 0) return;
  const timer = setTimeout(rearm, Math.min(FAILED_WAIT_MAX_MS, 2 ** (failures - 1)));
  Deno.unrefTimer(timer);
}

/**
 * Ends every pending operation with `error`. Their OVERLAPPEDs and buffers are kept for the
 * life of the process, since the kernel may still complete them.
 */
function failAll(error: Error): void {
  // Handles associated with this port cannot move to another, but handles opened from now on
  // get a new one.
  port = null;
  for (const [address, waiter] of pending) {
    abandoned.push(waiter.keep);
    pending.delete(address);
    waiter.settle(error);
  }
  rearm();
}

/** Keeps the wait (and the backstop) going while anything is pending, and only then. */
function rearm(): void {
  if (pending.size > 0) {
    if (!inFlight) waitOnce();
    if (backstop === undefined) scheduleBackstop(BACKSTOP_POLL_MS);
    return;
  }
  if (backstop !== undefined) clearTimeout(backstop);
  backstop = undefined;
  // The backstop settled the last operation while the call still waits: end the call, so no
  // worker thread waits (and keeps the process alive) with nothing pending.
  if (inFlight) wakeCore();
}

/**
 * The backstop: drains the port on this thread after `ms`; the next drain comes twice as late
 * when this one found nothing (up to {@linkcode BACKSTOP_MAX_MS}), and at once again at
 * {@linkcode BACKSTOP_POLL_MS} when it found something (the worker-thread call is stuck).
 */
function scheduleBackstop(ms: number): void {
  const timer = setTimeout(() => {
    backstop = undefined;
    const before = stats.packets;
    const status = drain();
    if (status !== 0 && status !== STATUS_TIMEOUT) {
      failedWait(status);
      return;
    }
    if (pending.size > 0) {
      scheduleBackstop(
        stats.packets > before ? BACKSTOP_POLL_MS : Math.min(ms * 2, BACKSTOP_MAX_MS),
      );
    }
    rearm();
  }, ms);
  Deno.unrefTimer(timer);
  backstop = timer;
}

function expect(overlapped: Uint8Array, waiter: Waiter): void {
  pending.set(Deno.UnsafePointer.value(Deno.UnsafePointer.of(overlapped)) as bigint, waiter);
  rearm();
}

/**
 * Makes the core's pending completion wait return at once (`PostQueuedCompletionStatus`), e.g.
 * so it re-checks whether anything is still pending. Harmless when nothing waits.
 */
export function wakeCore(): void {
  if (port) kernel32().PostQueuedCompletionStatus(port, 0, WAKE_KEY, null);
}

/**
 * The completion port's handle, `null` before the first operation (for tests and diagnostics;
 * closing it ends every pending operation with an error).
 */
export function unsafePortHandle(): Deno.PointerObject | null {
  return port;
}

/** How many operations wait for a completion packet (for tests and diagnostics). */
export function pendingOperations(): number {
  return pending.size;
}

// ---------------------------------------------------------------------------------------------
// one operation at a time on an OVERLAPPED

/**
 * One reusable `OVERLAPPED`, for one operation at a time, completed through the process's
 * completion port.
 *
 * @example Connect a named pipe instance
 * ```ts
 * import { OverlappedOp } from "./_io.ts";
 * import { kernel32 } from "../ffi/kernel32.ts";
 * declare const instance: Deno.PointerObject;
 * using op = new OverlappedOp();
 * const { error } = await op.run(instance, (ov) => kernel32().ConnectNamedPipe(instance, ov));
 * // error is 0 or 535 (ERROR_PIPE_CONNECTED) when a client is connected
 * ```
 */
export class OverlappedOp implements Disposable {
  #overlapped: Uint8Array<ArrayBuffer> = OVERLAPPED.alloc();
  readonly #count = new Uint32Array(1);
  #busy = false;
  #disposed = false;
  #idle: PromiseWithResolvers<void> | undefined;

  /** The `OVERLAPPED` structure of the operation in flight (or of the next one). */
  get overlapped(): Uint8Array<ArrayBuffer> {
    return this.#overlapped;
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
   * @param file The handle the operation is issued on (opened with `FILE_FLAG_OVERLAPPED`).
   * @param issue Starts the operation with `overlapped` as its `LPOVERLAPPED`; returns the BOOL.
   * @param options AbortSignal, timeout and the error context.
   * @returns The byte count and status code.
   * @throws The signal's reason when aborted before the operation completed.
   * @throws {Deno.errors.TimedOut} When the timeout elapsed first.
   * @throws {Win32Error} When the handle cannot be associated with the completion port.
   * @throws {Error} When called while another operation of this op is in flight.
   */
  async run(
    file: Deno.PointerObject,
    issue: (overlapped: Uint8Array<ArrayBuffer>) => number | boolean,
    options: OverlappedRunOptions = {},
  ): Promise<IoResult> {
    if (this.#busy) throw new Error("Internal error: overlapped operation already in flight");
    if (this.#disposed) throw new Deno.errors.BadResource("I/O operation is disposed");
    options.signal?.throwIfAborted();
    if (!options.associated) associate(file, options.context);
    const overlapped = this.#overlapped;
    overlapped.fill(0);
    // Bound beforehand and called straight after `issue` returns, with no JavaScript function
    // entered and nothing allocated in between: see `lastError` for why that matters.
    const getLastError = kernel32().GetLastError;
    const started = issue(overlapped);
    const code = started ? 0 : getLastError();
    if (started) return this.#result(file, overlapped);
    if (code !== ERROR_IO_PENDING) {
      if (code !== ERROR_MORE_DATA) return { bytes: 0, error: code };
      // Bytes were transferred (the OVERLAPPED records them); a packet may still come for it.
      this.#retire();
      return this.#result(file, overlapped);
    }
    this.#busy = true;
    const completed = Promise.withResolvers<void>();
    expect(overlapped, {
      settle: (error) => error ? completed.reject(error) : completed.resolve(),
      keep: [overlapped, issue],
    });
    const { signal, timeout } = options;
    let why: "abort" | "timeout" | undefined;
    const cancel = (reason: "abort" | "timeout") => {
      why ??= reason;
      kernel32().CancelIoEx(file, overlapped); // ERROR_NOT_FOUND: it completed meanwhile
    };
    const onAbort = () => cancel("abort");
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = timeout !== undefined && timeout !== Infinity
      ? setTimeout(() => cancel("timeout"), timeout)
      : undefined;
    try {
      try {
        await completed.promise;
      } catch (error) {
        // The port failed (`failAll`): the kernel may still complete into this OVERLAPPED,
        // which `failAll` keeps; later operations take a fresh one.
        this.#overlapped = OVERLAPPED.alloc();
        throw error;
      }
      const result = this.#result(file, overlapped);
      if (why && result.error === ERROR_OPERATION_ABORTED) {
        if (options.returnCancelled) return { ...result, cancelled: why };
        if (why === "abort") throw signal!.reason;
        throw new Deno.errors.TimedOut(
          `${options.context ?? "I/O"}: no completion within ${timeout} ms`,
        );
      }
      return result; // it completed before the cancellation reached it: keep its data
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.#busy = false;
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.resolve();
    }
  }

  #result(file: Deno.PointerObject, overlapped: Uint8Array): IoResult {
    this.#count[0] = 0;
    const k = kernel32();
    const ok = k.GetOverlappedResult(file, overlapped, this.#count, 0);
    return { bytes: this.#count[0], error: ok ? 0 : k.GetLastError() };
  }

  /** Keeps the current OVERLAPPED alive for a packet that may come, and takes a fresh one. */
  #retire(): void {
    const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#overlapped)) as bigint;
    retired.set(address, this.#overlapped);
    if (retired.size > RETIRED_LIMIT) retired.delete(retired.keys().next().value!);
    this.#overlapped = OVERLAPPED.alloc();
  }

  /** Marks the op unusable; an operation in flight still runs to its packet. */
  [Symbol.dispose](): void {
    this.#disposed = true;
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
