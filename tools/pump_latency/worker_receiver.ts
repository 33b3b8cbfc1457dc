// A Worker owns the window and blocks in GetMessageW; the reply value is computed on the main
// thread (as a MessageWindow's onCopyData is), whose event loop stays free.
const [title] = Deno.args;
const shared = new SharedArrayBuffer(16);
const flag = new Int32Array(shared, 0, 1);
const value = new BigInt64Array(shared, 8, 1);
const worker = new Worker(new URL("./worker_window.ts", import.meta.url), { type: "module" });
worker.onmessage = (e: MessageEvent<Uint8Array | string>) => {
  if (e.data === "ready") {
    console.log("ready");
    return;
  }
  value[0] = BigInt((e.data as Uint8Array).length);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};
worker.postMessage({ title, shared });
