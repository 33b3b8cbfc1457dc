// The window thread of worker_receiver.ts: blocks in GetMessageW; each WM_COPYDATA is handed to
// the main thread, and the window procedure waits (Atomics.wait) for the main thread's reply.
import { runWindow } from "./_window_thread.ts";

declare const self: {
  onmessage: ((e: MessageEvent<{ title: string; shared: SharedArrayBuffer }>) => void) | null;
  postMessage(message: unknown): void;
};

self.onmessage = (e) => {
  const { title, shared } = e.data;
  const flag = new Int32Array(shared, 0, 1);
  const value = new BigInt64Array(shared, 8, 1);
  runWindow(title, (data) => {
    Atomics.store(flag, 0, 0);
    self.postMessage(data);
    Atomics.wait(flag, 0, 0, 5000);
    return value[0];
  }, () => self.postMessage("ready"));
};
