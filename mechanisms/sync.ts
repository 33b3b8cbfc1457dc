/**
 * Named kernel synchronisation objects shared between processes: {@linkcode Mutex},
 * {@linkcode Event} and {@linkcode Semaphore}.
 *
 * Every wait takes a timeout and an AbortSignal and leaves the event loop free. Each type has
 * `create` (fails with `ERROR_ALREADY_EXISTS` when the name is taken), `open` (fails with
 * `ERROR_FILE_NOT_FOUND` when it is not) and `createOrOpen` (the kernel decides atomically; the
 * `created` property tells which happened).
 *
 * @example Exclusion between processes
 * ```ts
 * import { Mutex } from "./sync.ts";
 * using mutex = Mutex.createOrOpen("my-app-lock");
 * {
 *   using guard = await mutex.lock({ timeout: 5000 });
 *   if (guard.abandoned) console.log("the last owner died; check the shared state");
 *   // ... exclusive work
 * }
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkBool, checkHandle, win32Error, withLastError } from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  EVENT_ALL_ACCESS,
  kernel32,
  MUTEX_ALL_ACCESS,
  SEMAPHORE_ALL_ACCESS,
} from "../ffi/kernel32.ts";
import { SecurityAttributes, type SecurityOptions } from "../ffi/security.ts";
import { wide, wideOrNull } from "../ffi/strings.ts";
import {
  type IoOptions,
  ioOptionsSchema,
  objectNameSchema,
  parseArg,
  securitySchema,
} from "./_validate.ts";
import { pollObject, pollUntil, waitObject, waitObjectSync, type WaitOptions } from "./_wait.ts";

export type { WaitOptions } from "./_wait.ts";
export type { SecurityOptions } from "../ffi/security.ts";

const ERROR_ALREADY_EXISTS = 183;

const waitOptionsSchema = ioOptionsSchema.optional();

function parseWait(options: WaitOptions | undefined): WaitOptions {
  return parseArg(waitOptionsSchema, options, "options") ?? {};
}

type Mode = "create" | "open" | "createOrOpen";

/**
 * Creates or opens a named object through `create` (a Create*W call) or `open` (an Open*W call),
 * with the strictness `mode` asks for. Returns the handle and whether it was created.
 */
function obtain(
  kind: string,
  mode: Mode,
  name: string | null,
  create: (name: Uint16Array | null) => Deno.PointerValue,
  createName: string,
  open: (name: Uint16Array) => Deno.PointerValue,
  openName: string,
): { handle: OwnedHandle; created: boolean } {
  if (mode === "open") {
    const context = `Cannot open ${kind} "${name}"`;
    return {
      handle: new OwnedHandle(checkHandle(open(wide(name!)), openName, context)),
      created: false,
    };
  }
  const context = name === null ? `Cannot create ${kind}` : `Cannot create ${kind} "${name}"`;
  const wideName = wideOrNull(name);
  // ERROR_ALREADY_EXISTS on success, the cause on failure
  const [raw, error] = withLastError(() => create(wideName));
  if (raw === null) throw win32Error(createName, error, { context });
  const handle = new OwnedHandle(raw);
  const created = error !== ERROR_ALREADY_EXISTS;
  if (mode === "create" && !created) {
    handle.close();
    throw win32Error(createName, ERROR_ALREADY_EXISTS, { context });
  }
  return { handle, created };
}

function parseName(name: unknown, allowNull: boolean): string | null {
  if (allowNull && (name === null || name === undefined)) return null;
  return parseArg(objectNameSchema, name, "name");
}

/**
 * What every synchronisation object has: a handle this object owns, a name, and whether this
 * call created it. Closing is idempotent; `using` closes.
 *
 * @example Report any synchronisation object
 * ```ts
 * import { Event, type KernelObject, Mutex } from "./sync.ts";
 * function describe(object: KernelObject): string {
 *   return `${object.name ?? "(unnamed)"}: ${object.created ? "created" : "opened"}`;
 * }
 * using lock = Mutex.createOrOpen("Local\\jobs.lock");
 * using ready = Event.create();
 * console.log(describe(lock), describe(ready));
 * ```
 */
export abstract class KernelObject implements Disposable {
  readonly #handle: OwnedHandle;
  /** The name, or `null` for an unnamed object. */
  readonly name: string | null;
  /** Whether this call created the object (`false` when it opened an existing one). */
  readonly created: boolean;

  /**
   * Takes ownership of a handle.
   *
   * @param name The object's name, or `null`.
   * @param handle The handle, now owned by this object.
   * @param created Whether the call that made the handle created the object.
   */
  protected constructor(name: string | null, handle: OwnedHandle, created: boolean) {
    this.name = name;
    this.#handle = handle;
    this.created = created;
  }

  /** The raw handle, for FFI calls. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#handle.unsafeHandle;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /** Closes the handle; a second call does nothing. */
  close(): void {
    this.#handle.close();
  }

  /** Closes the object. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Mutex

/**
 * Options of a new mutex.
 *
 * @example A mutex that child processes inherit
 * ```ts
 * import { Mutex } from "./sync.ts";
 * using lock = Mutex.create("Local\\jobs.lock", { security: { inheritable: true } });
 * ```
 */
export interface MutexOptions {
  /** Inheritance and access control of the new object. */
  security?: SecurityOptions;
}

const mutexOptionsSchema = z.object({ security: securitySchema }).strict().optional();

/**
 * A process-local FIFO lock. Windows mutexes are recursive per thread and every task of a Deno
 * process runs on one thread, so two tasks of this process would both "own" the kernel mutex; this
 * lock keeps them apart first.
 */
class LocalLock {
  #held = false;
  #queue: (() => void)[] = [];
  /** Takes the lock now, or returns false. */
  tryAcquire(): boolean {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }
  /** Waits for the lock. Resolves false on timeout. */
  acquire(options: WaitOptions): Promise<boolean> {
    if (this.tryAcquire()) return Promise.resolve(true);
    const { signal, timeout } = options;
    return new Promise<boolean>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.#queue.indexOf(grant);
        if (i >= 0) this.#queue.splice(i, 1);
      };
      const grant = () => {
        cleanup();
        resolve(true);
      };
      const onAbort = () => {
        cleanup();
        reject(signal!.reason);
      };
      this.#queue.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== undefined && timeout !== Infinity) {
        timer = setTimeout(() => {
          cleanup();
          resolve(false);
        }, timeout);
      }
    });
  }
  /** Passes the lock to the next waiter, or frees it. */
  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#held = false;
  }
}

const localLocks = new Map<string | object, { lock: LocalLock; users: number }>();

function localKey(name: string | null, self: object): string | object {
  return name === null ? self : name.replace(/^Local\\/, "");
}

// Users never make a guard: the constructor is private, and the mutex makes one through this,
// which the class's static block sets.
let newGuard!: (abandoned: boolean, release: () => void) => MutexGuard;

/**
 * Ownership of a {@linkcode Mutex}, from `lock()` until `release()` or the end of a `using` scope.
 *
 * @example Repair the shared state when the previous owner died holding the lock
 * ```ts
 * import { Mutex } from "./sync.ts";
 * using lock = Mutex.createOrOpen("Local\\inventory.lock");
 * {
 *   using guard = await lock.lock({ timeout: 5000 });
 *   if (guard.abandoned) console.log("last owner crashed: checking the inventory");
 * } // released here
 * ```
 */
export class MutexGuard implements Disposable {
  /**
   * `true` when the previous owner ended without releasing the mutex (`WAIT_ABANDONED`). The
   * caller owns the mutex all the same, but the state it protects may be half-written.
   */
  readonly abandoned: boolean;
  #release: (() => void) | undefined;

  static {
    newGuard = (abandoned, release) => new MutexGuard(abandoned, release);
  }

  /** Made by {@linkcode Mutex.lock} and the other locking methods. */
  private constructor(abandoned: boolean, release: () => void) {
    this.abandoned = abandoned;
    this.#release = release;
  }

  /** Whether `release()` has run. */
  get released(): boolean {
    return this.#release === undefined;
  }

  /** Releases the mutex; a second call does nothing. */
  release(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  /** Releases the mutex. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A mutex, named so that other processes share it, or unnamed.
 *
 * Ownership belongs to a thread in Windows, so winipc acquires mutexes on the main thread: an
 * uncontended `lock()` costs one `WaitForSingleObject(h, 0)`; a contended one polls with a short
 * back-off (0 to 10 ms) instead of blocking the event loop. Tasks of one process are also
 * excluded from each other, which a raw Windows mutex (recursive per thread) would not do.
 *
 * @example Lock with a timeout
 * ```ts
 * import { Mutex } from "./sync.ts";
 * using mutex = Mutex.createOrOpen("Local\\inventory");
 * using guard = await mutex.lock({ timeout: 1000 });
 * ```
 */
export class Mutex extends KernelObject {
  readonly #local: { lock: LocalLock; users: number };
  readonly #key: string | object;
  #guards = new Set<MutexGuard>();

  private constructor(name: string | null, handle: OwnedHandle, created: boolean) {
    super(name, handle, created);
    this.#key = localKey(name, this);
    let local = localLocks.get(this.#key);
    if (!local) localLocks.set(this.#key, local = { lock: new LocalLock(), users: 0 });
    local.users++;
    this.#local = local;
  }

  static #make(mode: Mode, name: unknown, options: MutexOptions | undefined): Mutex {
    const n = parseName(name, mode === "create");
    const opts = parseArg(mutexOptionsSchema, options, "options") ?? {};
    using security = new SecurityAttributes(opts.security);
    const k = kernel32();
    const { handle, created } = obtain(
      "mutex",
      mode,
      n,
      (w) => k.CreateMutexW(security.bytes, 0, w),
      "CreateMutexW",
      (w) => k.OpenMutexW(MUTEX_ALL_ACCESS, 0, w),
      "OpenMutexW",
    );
    return new Mutex(n, handle, created);
  }

  /**
   * Creates a mutex, not owned.
   *
   * @param name A name other processes can open, or `null` for an unnamed mutex.
   * @param options Security.
   * @returns The mutex.
   * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when the name is taken.
   * @throws {TypeError} For an invalid name.
   */
  static create(name: string | null = null, options?: MutexOptions): Mutex {
    return Mutex.#make("create", name, options);
  }

  /**
   * Opens an existing named mutex.
   *
   * @param name The name.
   * @returns The mutex.
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is none.
   */
  static open(name: string): Mutex {
    return Mutex.#make("open", name, undefined);
  }

  /**
   * Opens the named mutex, creating it when there is none (atomically, in the kernel).
   *
   * @param name The name.
   * @param options Security, used when it is created.
   * @returns The mutex; `created` tells which happened.
   */
  static createOrOpen(name: string, options?: MutexOptions): Mutex {
    return Mutex.#make("createOrOpen", name, options);
  }

  #grant(abandoned: boolean): MutexGuard {
    const guard = newGuard(abandoned, () => {
      this.#guards.delete(guard);
      const ok = kernel32().ReleaseMutex(this.unsafeHandle);
      this.#local.lock.release();
      checkBool(ok, "ReleaseMutex", `Cannot release mutex${this.name ? ` "${this.name}"` : ""}`);
    });
    this.#guards.add(guard);
    return guard;
  }

  #tryOs(): MutexGuard | undefined {
    const result = pollObject(this.unsafeHandle, this.#context("lock"));
    return result === "timeout" ? undefined : this.#grant(result === "abandoned");
  }

  #context(verb: string): string {
    return `Cannot ${verb} mutex${this.name ? ` "${this.name}"` : ""}`;
  }

  /**
   * Acquires the mutex without waiting.
   *
   * @returns A guard, or `undefined` when another process or task owns the mutex.
   */
  tryLock(): MutexGuard | undefined {
    if (!this.#local.lock.tryAcquire()) return undefined;
    try {
      const guard = this.#tryOs();
      if (!guard) this.#local.lock.release();
      return guard;
    } catch (e) {
      this.#local.lock.release();
      throw e;
    }
  }

  /**
   * Acquires the mutex, waiting without blocking the event loop.
   *
   * @param options `timeout` in milliseconds (default: forever) and `signal`.
   * @returns A guard; its `abandoned` is `true` when the previous owner died holding the mutex.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   * @throws The signal's reason when aborted.
   */
  async lock(options?: WaitOptions): Promise<MutexGuard> {
    const opts = parseWait(options);
    const start = performance.now();
    if (!await this.#local.lock.acquire(opts)) throw this.#timedOut(opts.timeout!);
    try {
      const left = opts.timeout === undefined
        ? undefined
        : Math.max(0, opts.timeout - (performance.now() - start));
      const guard = await pollUntil(() => this.#tryOs(), { timeout: left, signal: opts.signal });
      if (!guard) throw this.#timedOut(opts.timeout!);
      return guard;
    } catch (e) {
      this.#local.lock.release();
      throw e;
    }
  }

  /**
   * Acquires the mutex, blocking this thread (and the event loop) while it waits. For scripts and
   * short critical sections; prefer {@linkcode Mutex.lock}.
   *
   * @param options `timeout` in milliseconds (default: forever).
   * @returns A guard.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   * @throws {Deno.errors.Busy} When another task of this process holds it (waiting here would
   * deadlock).
   */
  lockSync(options?: Pick<IoOptions, "timeout">): MutexGuard {
    const opts = parseWait(options);
    if (!this.#local.lock.tryAcquire()) {
      throw new Deno.errors.Busy(`${this.#context("lock")}: another task of this process holds it`);
    }
    try {
      const result = waitObjectSync(this.unsafeHandle, opts.timeout, this.#context("lock"));
      if (result === "timeout") throw this.#timedOut(opts.timeout!);
      return this.#grant(result === "abandoned");
    } catch (e) {
      this.#local.lock.release();
      throw e;
    }
  }

  /**
   * Runs `fn` while holding the mutex.
   *
   * @param fn The critical section; it receives the guard (see `abandoned`).
   * @param options Timeout and signal for acquiring.
   * @returns What `fn` returns.
   */
  async withLock<T>(fn: (guard: MutexGuard) => T | Promise<T>, options?: WaitOptions): Promise<T> {
    using guard = await this.lock(options);
    return await fn(guard);
  }

  #timedOut(ms: number): Error {
    return new Deno.errors.TimedOut(`${this.#context("lock")}: timed out after ${ms} ms`);
  }

  /** Releases any guard still held, then closes the handle; a second call does nothing. */
  override close(): void {
    if (this.closed) return;
    for (const guard of [...this.#guards]) guard.release();
    super.close();
    if (--this.#local.users === 0) localLocks.delete(this.#key);
  }
}

// ---------------------------------------------------------------------------------------------
// Event

/**
 * Options of a new event.
 *
 * @example A manual-reset event that starts signalled: every waiter passes until reset()
 * ```ts
 * import { Event } from "./sync.ts";
 * using open = Event.create("Local\\gate", { manualReset: true, initialState: true });
 * ```
 */
export interface EventOptions {
  /** `true`: stays signalled until `reset()`. `false` (default): one waiter wakes, then it resets. */
  manualReset?: boolean;
  /** Start signalled. Default `false`. */
  initialState?: boolean;
  /** Inheritance and access control of the new object. */
  security?: SecurityOptions;
}

const eventOptionsSchema = z.object({
  manualReset: z.boolean().optional(),
  initialState: z.boolean().optional(),
  security: securitySchema,
}).strict().optional();

/**
 * An event object: auto-reset (one waiter per `set()`) or manual-reset.
 *
 * @example Wake another process
 * ```ts
 * import { Event } from "./sync.ts";
 * using ready = Event.createOrOpen("Local\\job-ready");
 * ready.set(); // the other process's `await ready.wait()` returns true
 * ```
 */
export class Event extends KernelObject {
  private constructor(name: string | null, handle: OwnedHandle, created: boolean) {
    super(name, handle, created);
  }

  static #make(mode: Mode, name: unknown, options: EventOptions | undefined): Event {
    const n = parseName(name, mode === "create");
    const opts = parseArg(eventOptionsSchema, options, "options") ?? {};
    using security = new SecurityAttributes(opts.security);
    const k = kernel32();
    const { handle, created } = obtain(
      "event",
      mode,
      n,
      (w) => k.CreateEventW(security.bytes, opts.manualReset ? 1 : 0, opts.initialState ? 1 : 0, w),
      "CreateEventW",
      (w) => k.OpenEventW(EVENT_ALL_ACCESS, 0, w),
      "OpenEventW",
    );
    return new Event(n, handle, created);
  }

  /**
   * Creates an event.
   *
   * @param name A name other processes can open, or `null`.
   * @param options Reset mode, initial state, security.
   * @returns The event.
   * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when the name is taken.
   */
  static create(name: string | null = null, options?: EventOptions): Event {
    return Event.#make("create", name, options);
  }

  /**
   * Opens an existing named event.
   *
   * @param name The name.
   * @returns The event.
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is none.
   */
  static open(name: string): Event {
    return Event.#make("open", name, undefined);
  }

  /**
   * Opens the named event, creating it (with `options`) when there is none.
   *
   * @param name The name.
   * @param options Used when it is created.
   * @returns The event.
   */
  static createOrOpen(name: string, options?: EventOptions): Event {
    return Event.#make("createOrOpen", name, options);
  }

  #context(verb: string): string {
    return `Cannot ${verb} event${this.name ? ` "${this.name}"` : ""}`;
  }

  /** Signals the event. */
  set(): void {
    checkBool(kernel32().SetEvent(this.unsafeHandle), "SetEvent", this.#context("set"));
  }

  /** Clears the event. */
  reset(): void {
    checkBool(
      kernel32().ResetEvent(this.unsafeHandle),
      "ResetEvent",
      this.#context("reset"),
    );
  }

  /**
   * Waits until the event is signalled, without blocking the event loop. For an auto-reset event,
   * a successful wait consumes the signal.
   *
   * @param options `timeout` in milliseconds (default: forever) and `signal`.
   * @returns `true` when signalled, `false` when the timeout elapsed.
   * @throws The signal's reason when aborted.
   */
  async wait(options?: WaitOptions): Promise<boolean> {
    const opts = parseWait(options);
    return await waitObject(this.unsafeHandle, opts, this.#context("wait for")) !==
      "timeout";
  }

  /**
   * Waits on this thread, blocking the event loop.
   *
   * @param options Milliseconds, or `{ timeout }` as the other waits take it (default: forever).
   * @returns `true` when signalled, `false` on timeout.
   */
  waitSync(options?: number | Pick<IoOptions, "timeout">): boolean {
    const opts = parseWait(typeof options === "object" ? options : { timeout: options });
    return waitObjectSync(this.unsafeHandle, opts.timeout, this.#context("wait for")) !==
      "timeout";
  }
}

// ---------------------------------------------------------------------------------------------
// Semaphore

/**
 * Options of a new semaphore.
 *
 * @example At most four workers at a time, across processes
 * ```ts
 * import { Semaphore } from "./sync.ts";
 * using slots = Semaphore.createOrOpen("Local\\workers", { initial: 4, maximum: 4 });
 * await slots.acquire();
 * try {
 *   // ... the work
 * } finally {
 *   slots.release();
 * }
 * ```
 */
export interface SemaphoreOptions {
  /** The count it starts with. Default 0. */
  initial?: number;
  /** The largest count. Default 2^31 - 1. */
  maximum?: number;
  /** Inheritance and access control of the new object. */
  security?: SecurityOptions;
}

const semaphoreOptionsSchema = z.object({
  initial: z.number().int().min(0, { error: "must not be negative" }).optional(),
  maximum: z.number().int().min(1, { error: "must be at least 1" })
    .max(0x7fff_ffff, { error: "must be at most 2^31 - 1" }).optional(),
  security: securitySchema,
}).strict().optional()
  .refine((o) => (o?.initial ?? 0) <= (o?.maximum ?? 0x7fff_ffff), {
    error: "initial must not exceed maximum",
  });

/**
 * A counting semaphore.
 *
 * @example Limit concurrent work across processes
 * ```ts
 * import { Semaphore } from "./sync.ts";
 * using slots = Semaphore.createOrOpen("Local\\render-slots", { initial: 4, maximum: 4 });
 * await slots.acquire();
 * try {
 *   // ... work
 * } finally {
 *   slots.release();
 * }
 * ```
 */
export class Semaphore extends KernelObject {
  private constructor(name: string | null, handle: OwnedHandle, created: boolean) {
    super(name, handle, created);
  }

  static #make(mode: Mode, name: unknown, options: SemaphoreOptions | undefined): Semaphore {
    const n = parseName(name, mode === "create");
    const opts = parseArg(semaphoreOptionsSchema, options, "options") ?? {};
    using security = new SecurityAttributes(opts.security);
    const k = kernel32();
    const { handle, created } = obtain(
      "semaphore",
      mode,
      n,
      (w) => k.CreateSemaphoreW(security.bytes, opts.initial ?? 0, opts.maximum ?? 0x7fff_ffff, w),
      "CreateSemaphoreW",
      (w) => k.OpenSemaphoreW(SEMAPHORE_ALL_ACCESS, 0, w),
      "OpenSemaphoreW",
    );
    return new Semaphore(n, handle, created);
  }

  /**
   * Creates a semaphore.
   *
   * @param name A name other processes can open, or `null`.
   * @param options Initial and maximum count, security.
   * @returns The semaphore.
   * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when the name is taken.
   */
  static create(name: string | null = null, options?: SemaphoreOptions): Semaphore {
    return Semaphore.#make("create", name, options);
  }

  /**
   * Opens an existing named semaphore.
   *
   * @param name The name.
   * @returns The semaphore.
   */
  static open(name: string): Semaphore {
    return Semaphore.#make("open", name, undefined);
  }

  /**
   * Opens the named semaphore, creating it (with `options`) when there is none.
   *
   * @param name The name.
   * @param options Used when it is created.
   * @returns The semaphore.
   */
  static createOrOpen(name: string, options?: SemaphoreOptions): Semaphore {
    return Semaphore.#make("createOrOpen", name, options);
  }

  #context(verb: string): string {
    return `Cannot ${verb} semaphore${this.name ? ` "${this.name}"` : ""}`;
  }

  /**
   * Takes one unit, waiting without blocking the event loop.
   *
   * @param options `timeout` in milliseconds (default: forever) and `signal`.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   */
  async acquire(options?: WaitOptions): Promise<void> {
    const opts = parseWait(options);
    const result = await waitObject(this.unsafeHandle, opts, this.#context("acquire"));
    if (result === "timeout") {
      throw new Deno.errors.TimedOut(
        `${this.#context("acquire")}: timed out after ${opts.timeout} ms`,
      );
    }
  }

  /**
   * Takes one unit if one is free now.
   *
   * @returns Whether a unit was taken.
   */
  tryAcquire(): boolean {
    return pollObject(this.unsafeHandle, this.#context("acquire")) !== "timeout";
  }

  /**
   * Returns units.
   *
   * @param count How many (default 1).
   * @returns The count before this release.
   * @throws {Win32Error} `ERROR_TOO_MANY_POSTS` when the count would pass the maximum.
   */
  release(count = 1): number {
    const n = parseArg(z.number().int().min(1, { error: "must be at least 1" }), count, "count");
    const previous = new Int32Array(1);
    checkBool(
      kernel32().ReleaseSemaphore(this.unsafeHandle, n, previous),
      "ReleaseSemaphore",
      this.#context("release"),
    );
    return previous[0];
  }
}
