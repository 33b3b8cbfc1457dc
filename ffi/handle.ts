/**
 * Owned handles: a kernel handle (or any resource with a close function) that is released
 * exactly once, by `close()`, by `using`, or, as a backstop only, when it is garbage collected.
 *
 * @module
 */
import { kernel32 } from "./kernel32.ts";

type Closer = (handle: Deno.PointerObject) => void;

interface Held {
  handle: Deno.PointerObject;
  close: Closer;
}

const backstop = new FinalizationRegistry<Held>((held) => {
  try {
    held.close(held.handle);
  } catch {
    // A finalizer has nobody to report to; the handle is lost either way.
  }
});

/** Closes a kernel handle with `CloseHandle`. */
export function closeKernelHandle(handle: Deno.PointerObject): void {
  kernel32().CloseHandle(handle);
}

/**
 * A handle that this object owns. `close()` is idempotent; `using` closes it at the end of the
 * scope. A handle dropped without closing is closed when it is garbage collected, which is a
 * backstop, not a plan: close what you open.
 *
 * @example Own a handle
 * ```ts
 * import { OwnedHandle } from "./handle.ts";
 * declare const raw: Deno.PointerObject;
 * {
 *   using h = new OwnedHandle(raw);
 *   // ... use h.unsafeHandle
 * } // CloseHandle ran here
 * ```
 */
export class OwnedHandle implements Disposable {
  #held: Held | undefined;

  /**
   * Takes ownership of a raw handle.
   *
   * @param handle The raw handle, now owned by this object.
   * @param close How to release it (default `CloseHandle`).
   */
  constructor(handle: Deno.PointerObject, close: Closer = closeKernelHandle) {
    this.#held = { handle, close };
    backstop.register(this, this.#held, this);
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#held === undefined;
  }

  /**
   * The raw handle, for FFI calls. Valid until `close()`.
   *
   * @throws {Deno.errors.BadResource} When the handle is closed.
   */
  get unsafeHandle(): Deno.PointerObject {
    if (!this.#held) throw new Deno.errors.BadResource("Handle is closed");
    return this.#held.handle;
  }

  /**
   * Gives up ownership without closing: the caller now owns the raw handle.
   *
   * @returns The raw handle.
   */
  release(): Deno.PointerObject {
    const held = this.#held;
    if (!held) throw new Deno.errors.BadResource("Handle is closed");
    this.#held = undefined;
    backstop.unregister(this);
    return held.handle;
  }

  /** Closes the handle; a second call does nothing. */
  close(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    backstop.unregister(this);
    held.close(held.handle);
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }
}
