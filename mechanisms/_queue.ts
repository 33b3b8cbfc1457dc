/**
 * An unbounded async queue: producers (window procedures, DDE callbacks) push synchronously,
 * one consumer iterates. Nothing pushed is lost; an error ends the iteration after the items
 * already queued. And {@linkcode Lane}, which runs async operations one after another.
 *
 * @module
 */

interface Waiter<T> {
  resolve: (result: IteratorResult<T>) => void;
  reject: (error: unknown) => void;
}

/** An unbounded queue read as an async iterator. */
export class AsyncQueue<T> {
  #items: T[] = [];
  #waiters: Waiter<T>[] = [];
  #done = false;
  #error: { error: unknown } | undefined;

  /** How many items wait to be read. */
  get size(): number {
    return this.#items.length;
  }

  /** Whether the queue was closed or failed. */
  get done(): boolean {
    return this.#done;
  }

  /** Adds an item (ignored once the queue is done). */
  push(item: T): void {
    if (this.#done) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ value: item, done: false });
    else this.#items.push(item);
  }

  /** Ends the iteration with an error, after the items already queued. */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = { error };
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  /** Ends the iteration, after the items already queued. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  /**
   * The next item.
   *
   * @param signal Rejects with the signal's reason when aborted.
   */
  next(signal?: AbortSignal): Promise<IteratorResult<T>> {
    if (this.#items.length) return Promise.resolve({ value: this.#items.shift()!, done: false });
    if (this.#done) {
      return this.#error
        ? Promise.reject(this.#error.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve: (r) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * An async iterator over the queue.
   *
   * @param signal Ends the iteration with the signal's reason.
   * @param onReturn Called once when the consumer stops (break, return, throw or the end).
   */
  iterate(signal?: AbortSignal, onReturn?: () => void): AsyncIterableIterator<T> {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      onReturn?.();
    };
    const it: AsyncIterableIterator<T> = {
      next: async () => {
        if (finished) return { value: undefined, done: true };
        try {
          const r = await this.next(signal);
          if (r.done) finish();
          return r;
        } catch (e) {
          finish();
          throw e;
        }
      },
      return: () => {
        finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }
}

/**
 * Runs async operations one after another, each when the one before has settled (one read and
 * one write at a time per handle). A failed operation rejects its own caller only.
 */
export class Lane {
  #tail: Promise<unknown> = Promise.resolve();

  /**
   * Runs `fn` after every operation queued before it has settled.
   *
   * @param fn The operation.
   * @returns What `fn` resolves or rejects with.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}
