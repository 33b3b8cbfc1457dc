// A Worker owns the window and blocks in GetMessageW; the reply value is computed on the main
// thread, woken by Atomics.waitAsync (no event-loop message between the threads). The window
// procedure waits in Atomics.wait for the main thread's answer.
const [title] = Deno.args;
const shared = new SharedArrayBuffer(16);
const request = new Int32Array(shared, 0, 1); // 1: a payload waits for its reply
const reply = new Int32Array(shared, 4, 1); // 1: the reply is there
const worker = new Worker(new URL("./atomics_window.ts", import.meta.url), { type: "module" });
worker.onmessage = () => console.log("ready");
worker.postMessage({ title, shared });
setInterval(() => {}, 3_600_000); // keeps the process alive; run.ts kills it
for (;;) {
  const wait = Atomics.waitAsync(request, 0, 0);
  if (wait.async) await wait.value;
  if (Atomics.load(request, 0) !== 1) continue;
  Atomics.store(request, 0, 0);
  // The reply is the payload's length, as the other receivers answer: the window thread left it
  // in the shared words at byte 8.
  Atomics.store(reply, 0, 1);
  Atomics.notify(reply, 0);
}
