/**
 * Internal to the anonymous pipes: when an end (a `PipeReader` or `PipeWriter`) has no operation
 * in flight. `ChildProcess.close()` awaits it before it closes the process handle, and tests await
 * it; it is not part of the public surface (no entry point exports this module).
 *
 * @module
 */

const settlers = new WeakMap<object, () => Promise<void>>();

/** Records how `end` tells that it has no operation in flight (done by its constructor). */
export function registerSettled(end: object, settled: () => Promise<void>): void {
  settlers.set(end, settled);
}

/** Resolves when no operation is in flight on `end` (at once for `null` or an unknown object). */
export function settled(end: object | null): Promise<void> {
  return (end === null ? undefined : settlers.get(end)?.()) ?? Promise.resolve();
}
