// The window thread of atomics_receiver.ts: blocks in GetMessageW; each WM_COPYDATA wakes the
// main thread through Atomics.notify and waits (Atomics.wait) for its reply.
import { runWindow } from "./_window_thread.ts";

declare const self: {
  onmessage: ((e: MessageEvent<{ title: string; shared: SharedArrayBuffer }>) => void) | null;
  postMessage(message: unknown): void;
};

self.onmessage = (e) => {
  const { title, shared } = e.data;
  const request = new Int32Array(shared, 0, 1);
  const reply = new Int32Array(shared, 4, 1);
  const value = new BigInt64Array(shared, 8, 1);
  runWindow(title, (data) => {
    value[0] = BigInt(data.length);
    Atomics.store(reply, 0, 0);
    Atomics.store(request, 0, 1);
    Atomics.notify(request, 0);
    Atomics.wait(reply, 0, 0, 5000);
    return value[0];
  }, () => self.postMessage("ready"));
};
