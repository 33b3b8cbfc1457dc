// One serving process of the measurement (see run.ts): serves `{ ping, nest }` under a ROT name
// in one of three ways, then answers commands on stdin, one per line:
// `self` (a call to its own object through the
// ROT), `quit`.
import { MWMO_INPUTAVAILABLE, PM_REMOVE, QS_ALLINPUT, user32 } from "../../ffi/user32.ts";
import { getObject, initCom, serveObject } from "../../mechanisms/com.ts";
import { exposeDispatch } from "../../mechanisms/com/server.ts";
import type { ComObject } from "../../mechanisms/com/client.ts";
import { registerInRot } from "./_rot.ts";
import { pump } from "../../mechanisms/_pump.ts";
import { serveThroughComThread } from "./_com_thread_main.ts";

const [modeText, name, measure] = Deno.args;
// `<mode>+busy`: the same, with a Worker that keeps the process as busy as the idle pump does.
const [mode, busy] = modeText.split("+");
if (busy === "busy") new Worker(new URL("./_busy_worker.ts", import.meta.url), { type: "module" });

/** With `cpu` as the third argument: prints `cpu <ms>`, the CPU time of 5 s idle, 1 s after ready. */
function measureCpu(): void {
  if (measure !== "cpu") return;
  const worker = new Worker(new URL("./_cpu_worker.ts", import.meta.url), { type: "module" });
  worker.onmessage = () => worker.terminate();
  worker.postMessage({ settle: 1000, span: 5000 });
}
let calls = 0;
const target = {
  /** The measured call. */
  ping: (i: number) => {
    calls++;
    return i + 1;
  },
  /** Calls back into the caller's object, which calls `ping` here while this call waits. */
  nest: (other: ComObject) => other.back(),
};

if (mode === "pump") {
  // What serveObject did before the COM thread: the main thread's STA, and its polling pump.
  initCom("sta");
  registerInRot(name, exposeDispatch(target));
  pump.attach();
} else if (mode === "library") {
  serveObject(name, target); // winipc's serveObject: the COM thread (mechanisms/com/_com_thread.ts)
} else if (mode === "mta") {
  initCom("mta");
  registerInRot(name, exposeDispatch(target));
  // Nothing of winipc keeps the event loop alive now: a far timer does (it never polls).
  setInterval(() => {}, 1 << 30);
} else if (mode === "sta-worker") {
  const object = exposeDispatch(target);
  const worker = new Worker(new URL("./_sta_worker.ts", import.meta.url), { type: "module" });
  await new Promise<void>((resolve) => {
    worker.onmessage = () => resolve();
    worker.postMessage({ name, object: BigInt(Deno.UnsafePointer.value(object)) });
  });
  setInterval(() => {}, 1 << 30);
} else if (mode === "com-thread") {
  initCom("sta");
  await serveThroughComThread(name, exposeDispatch(target));
  setInterval(() => {}, 1 << 30);
} else if (mode === "blocked") {
  // The floor: the main thread is the STA and blocks in MsgWaitForMultipleObjectsEx, so the
  // window procedure and the vtable run on it directly; its event loop never runs again.
  initCom("sta");
  registerInRot(name, exposeDispatch(target));
  console.log("ready");
  measureCpu();
  // Let the Worker start before this thread stops running the event loop.
  await new Promise((r) => setTimeout(r, 500));
  const u = user32();
  const msg = new Uint8Array(48);
  for (;;) {
    while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
      u.TranslateMessage(msg);
      u.DispatchMessageW(msg);
    }
    u.MsgWaitForMultipleObjectsEx(0, null, 0xffffffff, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
  }
} else {
  console.error(`error: unknown mode ${mode}`);
  Deno.exit(2);
}
console.log("ready");
measureCpu();

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffered = "";
for await (const chunk of lines) {
  buffered += chunk;
  let end;
  while ((end = buffered.indexOf("\n")) >= 0) {
    const [command] = buffered.slice(0, end).trim().split(" ");
    buffered = buffered.slice(end + 1);
    if (command === "self") {
      try {
        using me = getObject(name);
        console.log(`self ${me.ping(41)}`);
      } catch (e) {
        console.log(`self error ${(e as Error).message.split("\n")[0]}`);
      }
    } else if (command === "calls") {
      console.log(`calls ${calls}`);
    } else if (command === "quit") {
      Deno.exit(0);
    }
  }
}
