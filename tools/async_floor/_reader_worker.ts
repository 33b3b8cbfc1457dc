/**
 * The reading thread of `run.ts`'s `threadsafe-callback` and `atomics` variants: blocks in
 * `ReadFile` (pipe) or `recv` (socket, until a whole frame is in) on the client's synchronous
 * handle and hands each message to the main thread, which replies, so the main thread's event
 * loop never blocks on a read.
 *
 * - `callback`: calls the main thread's `Deno.UnsafeCallback.threadSafe` callback with the
 *   message's address and length. Called from this thread, the callback is queued to the main
 *   thread's event loop, and this call returns once it ran there: with 1 when the main thread
 *   sent the next request (read again), 0 at the end of a block (wait for the next).
 * - `atomics`: copies the message into `data`, bumps `words[0]` and `Atomics.notify`s the main
 *   thread, which waits in `Atomics.waitAsync`.
 *
 * Either way a read starts only after the main thread's write of that request returned, since
 * Windows serialises the I/O of a synchronous file object: this thread waits in `Atomics.wait`
 * until `words[1]` moves (the main thread bumps it after each request in `atomics`, after a
 * block's first request in `callback`; -1 ends the thread).
 *
 * @module
 */
import { kernel32 } from "../../ffi/kernel32.ts";
import { ws2 } from "../../ffi/ws2_32.ts";

/** What the main thread sends to start. */
export interface ReaderStart {
  how: "callback" | "atomics";
  /** The pipe's `HANDLE`, or the socket. */
  handle: bigint;
  /** 0: a pipe, one `ReadFile` per message; else a socket, `recv` until this many bytes. */
  frame: number;
  /** Words 0 (messages read), 1 (the main thread's go; -1 ends), 2 (length). */
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
  const { how, handle, frame, words, callback, data } = e.data;
  const buffer = new Uint8Array(4096);
  let receive: () => number;
  if (frame === 0) {
    const k = kernel32();
    const pipe = Deno.UnsafePointer.create(handle)!;
    const read = new Uint32Array(1);
    receive = () => {
      if (!k.ReadFile(pipe, buffer, buffer.length, read, null)) {
        throw new Error(`ReadFile failed: ${k.GetLastError()}`);
      }
      return read[0];
    };
  } else {
    const w = ws2();
    receive = () => {
      for (let got = 0; got < frame;) {
        const n = w.recv(handle, buffer.subarray(got), frame - got, 0);
        if (n <= 0) throw new Error(`recv failed: ${n < 0 ? w.WSAGetLastError() : "closed"}`);
        got += n;
      }
      return frame;
    };
  }
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
