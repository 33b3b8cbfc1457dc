/**
 * The floor of an event-loop-friendly read from Deno FFI, measured: 64-byte ping-pong over a
 * message-mode named pipe between this process and `peer.ts` (a synchronous echo server), with
 * this side reading each reply in one of these ways:
 *
 * - `sync`: blocking `WriteFile` + `ReadFile` on the main thread, as the bench's floor
 *   (`mechanisms/_floor.ts`) makes them; the event loop is blocked;
 * - `nonblocking-ffi`: `WriteFile` on the main thread, then `ReadFile` declared
 *   `nonblocking: true` on the same synchronous handle (it runs on a Deno blocking-pool thread;
 *   its promise resolves on the main thread);
 * - `threadsafe-callback`: a Worker blocks in `ReadFile` and hands each message to the main
 *   thread through a `Deno.UnsafeCallback.threadSafe` callback, which replies;
 * - `atomics`: as `threadsafe-callback`, but the Worker wakes the main thread with
 *   `Atomics.notify`, the main thread waiting in `Atomics.waitAsync`;
 * - `iocp`: the design of winipc's I/O core without winipc around it: an overlapped handle on a
 *   completion port of its own (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`), `WriteFile` and
 *   `ReadFile` issued on the main thread, and for one that pends a `nonblocking`
 *   `NtRemoveIoCompletionEx` for its packet;
 * - `winipc`: `NamedPipeClient` from `mechanisms/pipe.ts`, `write` + `readMessage` (overlapped
 *   handle, I/O completion port, one `nonblocking` wait), as `winipc bench` does.
 *
 * Every variant has its own connection to its own peer process, all open at once, and the
 * variants take turns in blocks of {@linkcode BLOCK} round trips (the order rotating), so a load
 * that comes and goes on the machine weighs on all of them alike. Each block's first round trip
 * is not counted, nor a first block of {@linkcode WARM_UP} per variant.
 *
 * Usage, from the repository's root:
 *
 * ```sh
 * deno run -A tools/wine_run.ts tools/async_floor/run.ts [round trips] [variants]
 * ```
 *
 * Defaults: 2,000 round trips per variant, all six variants. Prints a Markdown table: p50 and
 * p90 in µs, and p50 as a multiple of `sync`'s.
 *
 * @module
 */
import { checkBool, checkPointer, isInvalidHandle } from "../../ffi/error.ts";
import {
  FILE_FLAG_OVERLAPPED,
  GENERIC_READ,
  GENERIC_WRITE,
  kernel32,
  OPEN_EXISTING,
  PIPE_READMODE_MESSAGE,
} from "../../ffi/kernel32.ts";
import { ntdll } from "../../ffi/ntdll.ts";
import { wide } from "../../ffi/strings.ts";
import { NamedPipeClient } from "../../mechanisms/pipe.ts";
import type { ReaderStart } from "./_reader_worker.ts";

const ALL = ["sync", "nonblocking-ffi", "threadsafe-callback", "atomics", "iocp", "winipc"];
const [countText = "2000", variantsText = ALL.join(",")] = Deno.args;
const count = Number(countText);
const names = variantsText.split(",");
for (const v of names) if (!ALL.includes(v)) throw new Error(`unknown variant ${v}`);
/** Round trips per variant before any is counted. */
const WARM_UP = 200;
/** Round trips of one variant in a row (the first of them not counted). */
const BLOCK = 51;
const SIZE = 64;
const ERROR_IO_PENDING = 997;
const FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 1;

const here = new URL(".", import.meta.url);
const path = (u: URL) => decodeURIComponent(u.pathname.replace(/^\/([A-Za-z]:)/, "$1"));
const k = kernel32();
const message = new Uint8Array(SIZE).fill(7);

/** One variant's connection. */
interface Variant {
  /** Makes `n` round trips; their times in µs. */
  trips(n: number): Promise<number[]>;
  close(): Promise<void>;
}

function check(length: number, what: string): void {
  if (length !== SIZE) throw new Error(`${what}: a reply of ${length} bytes`);
}

/** A client handle on the peer's pipe (synchronous unless `flags` say otherwise), in message read mode. */
async function openSync(name: string, flags = 0): Promise<Deno.PointerObject> {
  const path = wide(`\\\\.\\pipe\\${name}`);
  const access = (GENERIC_READ | GENERIC_WRITE) >>> 0;
  for (const deadline = Date.now() + 30_000;;) {
    const handle = k.CreateFileW(path, access, 0, null, OPEN_EXISTING, flags, null);
    if (!isInvalidHandle(handle)) {
      checkBool(
        k.SetNamedPipeHandleState(handle, new Uint32Array([PIPE_READMODE_MESSAGE]), null, null),
        "SetNamedPipeHandleState",
      );
      return handle;
    }
    if (Date.now() > deadline) throw new Error(`cannot open the pipe ${name}`);
    await new Promise((r) => setTimeout(r, 20)); // the peer is starting
  }
}

const written = new Uint32Array(1);
function send(handle: Deno.PointerObject): void {
  checkBool(k.WriteFile(handle, message, message.length, written, null), "WriteFile");
}

/** Starts `_reader_worker.ts`; resolves when it has ended. */
function startReader(start: ReaderStart): Promise<void> {
  const worker = new Worker(new URL("_reader_worker.ts", here), { type: "module" });
  const done = new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`reader worker: ${e.message}`));
    };
  });
  worker.postMessage(start);
  return done.finally(() => worker.terminate());
}

function stopReader(words: Int32Array): void {
  Atomics.store(words, 1, -1);
  Atomics.notify(words, 1);
}

const open: Record<string, (name: string) => Promise<Variant>> = {
  async sync(name) {
    const handle = await openSync(name);
    const buffer = new Uint8Array(4096);
    const read = new Uint32Array(1);
    return {
      trips(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          send(handle);
          const ok = k.ReadFile(handle, buffer, buffer.length, read, null);
          out.push((performance.now() - t0) * 1000);
          if (!ok) throw new Error("ReadFile failed");
          check(read[0], "sync");
        }
        return Promise.resolve(out);
      },
      close: () => Promise.resolve(void k.CloseHandle(handle)),
    };
  },

  async "nonblocking-ffi"(name) {
    const handle = await openSync(name);
    const buffer = new Uint8Array(4096);
    const read = new Uint32Array(1);
    return {
      async trips(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          send(handle);
          const ok = await k.ReadFileAsync(handle, buffer, buffer.length, read, null);
          out.push((performance.now() - t0) * 1000);
          if (!ok) throw new Error("nonblocking ReadFile failed");
          check(read[0], "nonblocking-ffi");
        }
        return out;
      },
      close: () => Promise.resolve(void k.CloseHandle(handle)),
    };
  },

  async "threadsafe-callback"(name) {
    const handle = await openSync(name);
    const words = new Int32Array(new SharedArrayBuffer(12));
    const received = new Uint8Array(4096);
    let out: number[] = [];
    let left = 0;
    let t0 = 0;
    let block = Promise.withResolvers<void>();
    const callback = Deno.UnsafeCallback.threadSafe(
      { parameters: ["pointer", "u32"], result: "i32" } as const,
      (pointer, length) => {
        const t1 = performance.now();
        try {
          check(length, "threadsafe-callback");
          Deno.UnsafePointerView.copyInto(pointer!, received.subarray(0, length));
          out.push((t1 - t0) * 1000);
          if (--left === 0) {
            block.resolve();
            return 0;
          }
          t0 = performance.now();
          send(handle);
          return 1;
        } catch (e) {
          block.reject(e);
          return 0;
        }
      },
    );
    const reader = startReader({
      how: "callback",
      handle: BigInt(Deno.UnsafePointer.value(handle)),
      words,
      callback: BigInt(Deno.UnsafePointer.value(callback.pointer)),
    });
    return {
      async trips(n) {
        out = [];
        left = n;
        block = Promise.withResolvers();
        t0 = performance.now();
        send(handle);
        Atomics.add(words, 1, 1); // the block's first request is out: read
        Atomics.notify(words, 1);
        await block.promise;
        return out;
      },
      async close() {
        stopReader(words);
        await reader;
        callback.close(); // the worker's last call has returned
        k.CloseHandle(handle);
      },
    };
  },

  async atomics(name) {
    const handle = await openSync(name);
    const words = new Int32Array(new SharedArrayBuffer(12));
    const data = new Uint8Array(new SharedArrayBuffer(4096));
    const received = new Uint8Array(4096);
    const reader = startReader({
      how: "atomics",
      handle: BigInt(Deno.UnsafePointer.value(handle)),
      words,
      data,
    });
    let sent = 0;
    return {
      async trips(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          send(handle);
          Atomics.store(words, 1, ++sent); // the request is out: read
          Atomics.notify(words, 1);
          const wait = Atomics.waitAsync(words, 0, sent - 1);
          if (wait.async) await wait.value;
          out.push((performance.now() - t0) * 1000);
          const length = words[2];
          check(length, "atomics");
          received.set(data.subarray(0, length));
        }
        return out;
      },
      async close() {
        stopReader(words);
        await reader;
        k.CloseHandle(handle);
      },
    };
  },

  async iocp(name) {
    const handle = await openSync(name, FILE_FLAG_OVERLAPPED);
    const port = checkPointer(
      k.CreateIoCompletionPort(handle, null, 1n, 0),
      "CreateIoCompletionPort",
    );
    checkBool(
      k.SetFileCompletionNotificationModes(handle, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS),
      "SetFileCompletionNotificationModes",
    );
    const writeOverlapped = new Uint8Array(32);
    const readOverlapped = new Uint8Array(32);
    const buffer = new Uint8Array(4096);
    const entry = new Uint8Array(32);
    const removed = new Uint32Array(1);
    const bytes = new Uint32Array(1);
    const getLastError = k.GetLastError;
    /** Ends an operation: when it went pending, waits (on a pool thread) for its packet. */
    const settle = async (code: number, overlapped: Uint8Array<ArrayBuffer>) => {
      if (code === ERROR_IO_PENDING) {
        const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(overlapped));
        for (;;) {
          const status = await ntdll().NtRemoveIoCompletionExAsync(
            port,
            entry,
            1,
            removed,
            null,
            0,
          );
          if (status !== 0) throw new Error(`NtRemoveIoCompletionEx: 0x${status.toString(16)}`);
          if (new DataView(entry.buffer).getBigUint64(8, true) === BigInt(address)) break;
        }
      } else if (code !== 0) throw new Error(`overlapped I/O failed: ${code}`);
      checkBool(k.GetOverlappedResult(handle, overlapped, bytes, 0), "GetOverlappedResult");
      return bytes[0];
    };
    return {
      async trips(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          writeOverlapped.fill(0);
          let code = k.WriteFile(handle, message, message.length, null, writeOverlapped)
            ? 0
            : getLastError();
          await settle(code, writeOverlapped);
          readOverlapped.fill(0);
          code = k.ReadFile(handle, buffer, buffer.length, null, readOverlapped)
            ? 0
            : getLastError();
          const length = await settle(code, readOverlapped);
          out.push((performance.now() - t0) * 1000);
          check(length, "iocp");
        }
        return out;
      },
      close() {
        k.CloseHandle(handle);
        k.CloseHandle(port);
        return Promise.resolve();
      },
    };
  },

  async winipc(name) {
    const conn = await NamedPipeClient.connect(name, { mode: "message", timeout: 30_000 });
    return {
      async trips(n) {
        const out = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          await conn.write(message);
          const reply = await conn.readMessage();
          out.push((performance.now() - t0) * 1000);
          check(reply?.length ?? -1, "winipc");
        }
        return out;
      },
      close: () => conn[Symbol.asyncDispose](),
    };
  },
};

// One peer per variant, each with its own pipe.
const session = `winipc-async-floor-${Deno.pid}-${Date.now().toString(36)}`;
const peers = names.map((_, i) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", path(new URL("peer.ts", here)), `${session}-${i}`],
    stdout: "null",
    stderr: "inherit",
    stdin: "null",
  }).spawn()
);
const variants = await Promise.all(names.map((v, i) => open[v](`${session}-${i}`)));
const samples: number[][] = names.map(() => []);
for (const variant of variants) await variant.trips(WARM_UP);
for (let block = 0; samples.some((s) => s.length < count); block++) {
  for (let j = 0; j < variants.length; j++) {
    const i = (j + block) % variants.length;
    if (samples[i].length >= count) continue;
    const times = await variants[i].trips(Math.min(BLOCK, count - samples[i].length + 1));
    samples[i].push(...times.slice(1));
  }
}
for (const variant of variants) await variant.close();
for (const peer of peers) {
  const status = await peer.status;
  if (!status.success) throw new Error(`a peer ended with code ${status.code}`);
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const stats = samples.map((s) => {
  const sorted = s.toSorted((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9) };
});
const floor = stats[names.indexOf("sync")]?.p50;
console.log(`| variant | p50 µs | p90 µs | p50 / sync p50 |\n|---|---|---|---|`);
names.forEach((name, i) => {
  const { p50, p90 } = stats[i];
  const ratio = floor ? `${(p50 / floor).toFixed(2)}×` : "";
  console.log(`| ${name} | ${p50.toFixed(1)} | ${p90.toFixed(1)} | ${ratio} |`);
});
