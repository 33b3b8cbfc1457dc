// The window thread of worker_self_receiver.ts: blocks in GetMessageW and answers each
// WM_COPYDATA itself (the payload's length), with no hand-off to the main thread.
import { runWindow } from "./_window_thread.ts";

declare const self: {
  onmessage: ((e: MessageEvent<{ title: string }>) => void) | null;
  postMessage(message: unknown): void;
};

self.onmessage = (e) => {
  runWindow(e.data.title, (data) => BigInt(data.length), () => self.postMessage("ready"));
};
