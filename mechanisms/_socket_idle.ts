/**
 * The count of socket operations in flight and of closes waiting for them, over every socket of
 * the process, and a promise for when it is zero. Internal: tests await {@linkcode pollerIdle} so
 * that nothing of theirs is pending when they end.
 *
 * @module
 */

let busy = 0;
let idleWaiters: PromiseWithResolvers<void> | null = null;

/** One more operation in flight (or a close waiting for its operations). */
export function moreBusy(): void {
  busy++;
}

/** One fewer; wakes {@linkcode pollerIdle} at zero. */
export function lessBusy(): void {
  busy--;
  if (busy === 0 && idleWaiters) {
    idleWaiters.resolve();
    idleWaiters = null;
  }
}

/**
 * Resolves when no socket operation is in flight and every closed socket has been released
 * (`closesocket` waits for the completions of the operations that `close()` cancelled).
 *
 * @returns A promise that resolves when the sockets are idle.
 */
export function pollerIdle(): Promise<void> {
  if (busy === 0) return Promise.resolve();
  idleWaiters ??= Promise.withResolvers<void>();
  return idleWaiters.promise;
}
