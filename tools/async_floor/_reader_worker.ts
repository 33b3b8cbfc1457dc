/**
 * The reading thread of `run.ts`'s `threadsafe-callback` and `atomics` variants: blocks in
 * `ReadFile` on the client's synchronous pipe handle and hands each message to the main thread,
 * which replies, so the main thread's event loop never blocks on a read.
 *
 * - `callback`: calls the main thread's `Deno.UnsafeCallback.threadSafe` callback with the
 *   message's address and length. Called from this thread, the callback is queued to the main
 *   thread's event loop, and this call returns once it ran there: with 1 when the main thread
 *   sent the next request (read again), 0 at the end of a block (wait for the next).
 * - `atomics`: copies the message into `data`, bumps `words[0]` and `Atomics.notify`s the main
 *   thread, which waits in `Atomics.waitAsync`.
 *
 * Either way a `ReadFile` starts only after the main thread's `WriteFile` of that request
 * returned, since Windows serialises the I/O of a synchronous file object: this thread waits in
 * `Atomics.wait` until `words[1]` moves (the main thread bumps it after each request in `atomics`,
 * after a block's first request in `callback`; -1 ends the thread).
 *
 * @module
 */
import { kernel32 } from "../../ffi/kernel32.ts";

/** What the main thread sends to start. */
export interface ReaderStart {
  how: "callback" | "atomics";
  /** The pipe handle's value. */
  handle: bigint;
  /** Words 0 (messages read), 1 (the main thread's go: requests sent, or blocks; -1 ends), 2 (length). */
  words: Int32Array<SharedArrayBuffer>;
  /** `callback`: the thread-safe callback's address. */
  callback?: bigint;
  /** `atomics`: where each message is copied to. */
  data?: Uint8Array<SharedArrayBuffer>;
}

declare const self: {
  onmessage: ((e: MessageEvent<ReaderStart>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

self.onmessage = (e) => {
  const { how, handle: value, words, callback, data } = e.data;
  const k = kernel32();
  const handle = Deno.UnsafePointer.create(value)!;
  const buffer = new Uint8Array(4096);
  const read = new Uint32Array(1);
  const receive = () => {
    if (!k.ReadFile(handle, buffer, buffer.length, read, null)) {
      throw new Error(`ReadFile failed: ${k.GetLastError()}`);
    }
    return read[0];
  };
  /** Waits until the main thread's go moves past `seen`; returns it (-1: stop). */
  const go = (seen: number) => {
    while (Atomics.load(words, 1) === seen) Atomics.wait(words, 1, seen);
    return Atomics.load(words, 1);
  };
  if (how === "callback") {
    const deliver = new Deno.UnsafeFnPointer(
      Deno.UnsafePointer.create(callback!)!,
      {
        parameters: ["pointer", "u32"],
        result: "i32",
      } as const,
    );
    const address = Deno.UnsafePointer.of(buffer);
    for (let block = 0; (block = go(block)) >= 0;) {
      while (deliver.call(address, receive())) {
        // the main thread sent the next request inside the callback
      }
    }
  } else {
    for (let seq = 0; go(seq) >= 0;) {
      const length = Math.min(receive(), data!.length);
      data!.set(buffer.subarray(0, length));
      words[2] = length;
      Atomics.store(words, 0, ++seq);
      Atomics.notify(words, 0);
    }
  }
  self.postMessage("done");
  self.close();
};
