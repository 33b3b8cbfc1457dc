// A Worker owns the window, blocks in GetMessageW and answers by itself: how fast a Deno worker
// thread (rather than the main thread) wakes for a sent message.
const [title] = Deno.args;
const worker = new Worker(new URL("./worker_self_window.ts", import.meta.url), { type: "module" });
worker.onmessage = (e: MessageEvent<string>) => {
  if (e.data === "ready") console.log("ready");
};
worker.postMessage({ title });
