/**
 * The floor of an event-loop-friendly read from Deno FFI, measured: 64-byte ping-pong between
 * this process and `peer.ts` (a synchronous echo server: the bench's floor peer) over a
 * message-mode named pipe (`pipe`) or a TCP connection on 127.0.0.1 (`tcp`; frames of a 4-byte
 * length and the message, `TCP_NODELAY`), with this side reading each reply in one of these ways:
 *
 * - `sync`: blocking `WriteFile` + `ReadFile` (`send` + `recv`) on the main thread, as the
 *   bench's floor (`mechanisms/_floor.ts`) makes them; the event loop is blocked;
 * - `nonblocking-ffi`: the write on the main thread, then `ReadFile` (`recv`) declared
 *   `nonblocking: true` on the same synchronous handle (it runs on a Deno blocking-pool thread;
 *   its promise resolves on the main thread);
 * - `threadsafe-callback`: a Worker blocks in the read and hands each message to the main
 *   thread through a `Deno.UnsafeCallback.threadSafe` callback, which replies;
 * - `atomics`: as `threadsafe-callback`, but the Worker wakes the main thread with
 *   `Atomics.notify`, the main thread waiting in `Atomics.waitAsync`;
 * - `iocp` (pipe only): the design of winipc's I/O core without winipc around it: an overlapped
 *   handle on a completion port of its own (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`), `WriteFile`
 *   and `ReadFile` issued on the main thread, and for one that pends a `nonblocking`
 *   `NtRemoveIoCompletionEx` for its packet;
 * - `winipc`: `NamedPipeClient` from `mechanisms/pipe.ts` (`write` + `readMessage`), or a
 *   `TcpConn` from `mechanisms/socket.ts` (`write` + `read`), as `winipc bench` uses them;
 * - `nonblocking-ffi-both`, `winipc-both`: the same against a peer that reads the same way
 *   (issue 17's case: both processes keep their event loop free; `winipc-both` is the bench's
 *   own pairing).
 *
 * Except in the `-both` variants, the peer is the same synchronous one: a variant's cost over
 * `sync` is that of one side's reads.
 *
 * Every variant has its own connection to its own peer process, all open at once, and the
 * variants take turns in blocks of {@linkcode BLOCK} round trips (the order rotating), so a load
 * that comes and goes on the machine weighs on all of them alike. Each block's first round trip
 * is not counted, nor a first block of {@linkcode WARM_UP} per variant.
 *
 * Usage, from the repository's root:
 *
 * ```sh
 * deno run -A tools/wine_run.ts tools/async_floor/run.ts [pipe|tcp] [round trips] [variants]
 * ```
 *
 * Defaults: `pipe`, 2,000 round trips per variant, all variants. Prints a Markdown table: p50
 * and p90 in µs, p50 as a multiple of `sync`'s, and the p50 of the part of a round trip until
 * the request was sent (the write's own cost: what is left is the wait for the reply).
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
import {
  AF_INET,
  checkSocket,
  checkSocketResult,
  IPPROTO_TCP,
  SOCK_STREAM,
  TCP_NODELAY,
  ws2,
} from "../../ffi/ws2_32.ts";
import { NamedPipeClient } from "../../mechanisms/pipe.ts";
import { listen } from "../../mechanisms/socket.ts";
import type { ReaderStart } from "./_reader_worker.ts";

const VARIANTS: Record<string, string[]> = {
  pipe: [
    "sync",
    "nonblocking-ffi",
    "threadsafe-callback",
    "atomics",
    "iocp",
    "winipc",
    "nonblocking-ffi-both",
    "winipc-both",
  ],
  tcp: [
    "sync",
    "nonblocking-ffi",
    "threadsafe-callback",
    "atomics",
    "winipc",
    "nonblocking-ffi-both",
    "winipc-both",
  ],
};
const [mechanism = "pipe", countText = "2000", variantsText] = Deno.args;
if (!VARIANTS[mechanism]) throw new Error(`unknown mechanism ${mechanism} (pipe or tcp)`);
const count = Number(countText);
const names = variantsText?.split(",") ?? VARIANTS[mechanism];
for (const v of names) {
  if (!VARIANTS[mechanism].includes(v)) throw new Error(`no variant ${v} for ${mechanism}`);
}
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
const w = ws2();
/** What goes out: the message, on TCP after its length. */
const request = new Uint8Array(mechanism === "tcp" ? 4 + SIZE : SIZE).fill(7);
if (mechanism === "tcp") new DataView(request.buffer).setUint32(0, SIZE, true);
/** What comes back: as much. */
const REPLY = request.length;
const recvAsync = Deno.dlopen("ws2_32.dll", {
  recv: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
}).symbols.recv;

/** One variant's connection. */
interface Variant {
  /** Makes `n` round trips; their times. */
  trips(n: number): Promise<Trip[]>;
  close(): Promise<void>;
}

/** A round trip's time, and the part of it until the request was sent, in µs. */
type Trip = [total: number, write: number];

/** The {@linkcode Trip} that began at `t0` and sent its request at `tw`, ending now. */
function trip(t0: number, tw: number, t1 = performance.now()): Trip {
  return [(t1 - t0) * 1000, (tw - t0) * 1000];
}

/** This process's end of a connection to a peer, synchronous. */
interface End {
  /** The pipe's `HANDLE` or the socket, for the reading worker. */
  handle: bigint;
  /** For the reading worker: 0 for a pipe, else the bytes of a frame. */
  frame: number;
  /** Sends the request (blocking). */
  send(): void;
  /** Reads the reply (blocking); its length. */
  receive(): number;
  /** Reads the reply with `nonblocking` calls; its length. */
  receiveAsync(): Promise<number>;
  close(): void;
}

const peers: Deno.ChildProcess[] = [];
let peerCount = 0;
const session = `winipc-async-floor-${Deno.pid}-${Date.now().toString(36)}`;

/**
 * Starts a peer: `peer.ts tcp <port> <how>`, or `peer.ts pipe <name> <how>` with a new name
 * (returned).
 */
function startPeer(how: string, port?: number): string {
  const where = port === undefined ? `${session}-${peerCount++}` : String(port);
  peers.push(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", path(new URL("peer.ts", here)), mechanism, where, how],
      stdout: "null",
      stderr: "inherit",
      stdin: "null",
    }).spawn(),
  );
  return where;
}

function check(length: number, what: string): void {
  if (length !== REPLY) throw new Error(`${what}: a reply of ${length} bytes`);
}

/** A client handle on a new peer's pipe (synchronous unless `flags` say otherwise). */
async function openPipe(how: string, flags = 0): Promise<Deno.PointerObject> {
  const name = startPeer(how);
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

/** A blocking socket connected with a new peer. */
function acceptSocket(how: string): bigint {
  const listener = checkSocket(w.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), "socket");
  try {
    const address = new Uint8Array(16);
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_INET, true);
    address.set([127, 0, 0, 1], 4);
    checkSocketResult(w.bind(listener, address, address.length), "bind");
    checkSocketResult(w.listen(listener, 1), "listen");
    checkSocketResult(w.getsockname(listener, address, new Int32Array([16])), "getsockname");
    startPeer(how, view.getUint16(2, false));
    const socket = checkSocket(w.accept(listener, null, null), "accept"); // blocks: setup only
    const on = new Uint8Array(new Uint32Array([1]).buffer);
    checkSocketResult(w.setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, on, 4), "setsockopt");
    return socket;
  } finally {
    w.closesocket(listener);
  }
}

/** This end of a connection with a new peer that reads as `how` says (see `peer.ts`). */
async function openEnd(how = "sync"): Promise<End> {
  const buffer = new Uint8Array(4096);
  if (mechanism === "pipe") {
    const pipe = await openPipe(how);
    const read = new Uint32Array(1);
    const written = new Uint32Array(1);
    return {
      handle: BigInt(Deno.UnsafePointer.value(pipe)),
      frame: 0,
      send: () => checkBool(k.WriteFile(pipe, request, request.length, written, null), "WriteFile"),
      receive() {
        checkBool(k.ReadFile(pipe, buffer, buffer.length, read, null), "ReadFile");
        return read[0];
      },
      async receiveAsync() {
        if (!await k.ReadFileAsync(pipe, buffer, buffer.length, read, null)) {
          throw new Error("nonblocking ReadFile failed");
        }
        return read[0];
      },
      close: () => void k.CloseHandle(pipe),
    };
  }
  const socket = acceptSocket(how);
  const received = (n: number) => {
    if (n <= 0) throw new Error(`recv: ${n < 0 ? w.WSAGetLastError() : "closed"}`);
    return n;
  };
  return {
    handle: socket,
    frame: REPLY,
    send: () => void checkSocketResult(w.send(socket, request, request.length, 0), "send"),
    receive() {
      let got = 0;
      while (got < REPLY) got += received(w.recv(socket, buffer.subarray(got), REPLY - got, 0));
      return got;
    },
    async receiveAsync() {
      let got = 0;
      while (got < REPLY) {
        got += received(await recvAsync(socket, buffer.subarray(got), REPLY - got, 0));
      }
      return got;
    },
    close: () => void w.closesocket(socket),
  };
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

const open: Record<string, (peer?: string) => Promise<Variant>> = {
  async sync() {
    const end = await openEnd();
    return {
      trips(n) {
        const out: Trip[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          end.send();
          const tw = performance.now();
          const length = end.receive();
          out.push(trip(t0, tw));
          check(length, "sync");
        }
        return Promise.resolve(out);
      },
      close: () => Promise.resolve(end.close()),
    };
  },

  async "nonblocking-ffi"(peer) {
    const end = await openEnd(peer);
    return {
      async trips(n) {
        const out: Trip[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          end.send();
          const tw = performance.now();
          const length = await end.receiveAsync();
          out.push(trip(t0, tw));
          check(length, "nonblocking-ffi");
        }
        return out;
      },
      close: () => Promise.resolve(end.close()),
    };
  },

  async "threadsafe-callback"() {
    const end = await openEnd();
    const words = new Int32Array(new SharedArrayBuffer(12));
    const received = new Uint8Array(4096);
    let out: Trip[] = [];
    let left = 0;
    let t0 = 0;
    let tw = 0;
    let block = Promise.withResolvers<void>();
    const callback = Deno.UnsafeCallback.threadSafe(
      { parameters: ["pointer", "u32"], result: "i32" } as const,
      (pointer, length) => {
        const t1 = performance.now();
        try {
          check(length, "threadsafe-callback");
          Deno.UnsafePointerView.copyInto(pointer!, received.subarray(0, length));
          out.push(trip(t0, tw, t1));
          if (--left === 0) {
            block.resolve();
            return 0;
          }
          t0 = performance.now();
          end.send();
          tw = performance.now();
          return 1;
        } catch (e) {
          block.reject(e);
          return 0;
        }
      },
    );
    const reader = startReader({
      how: "callback",
      handle: end.handle,
      frame: end.frame,
      words,
      callback: BigInt(Deno.UnsafePointer.value(callback.pointer)),
    });
    return {
      async trips(n) {
        out = [];
        left = n;
        block = Promise.withResolvers();
        t0 = performance.now();
        end.send();
        tw = performance.now();
        Atomics.add(words, 1, 1); // the block's first request is out: read
        Atomics.notify(words, 1);
        await block.promise;
        return out;
      },
      async close() {
        stopReader(words);
        await reader;
        callback.close(); // the worker's last call has returned
        end.close();
      },
    };
  },

  async atomics() {
    const end = await openEnd();
    const words = new Int32Array(new SharedArrayBuffer(12));
    const data = new Uint8Array(new SharedArrayBuffer(4096));
    const received = new Uint8Array(4096);
    const reader = startReader({
      how: "atomics",
      handle: end.handle,
      frame: end.frame,
      words,
      data,
    });
    let sent = 0;
    return {
      async trips(n) {
        const out: Trip[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          end.send();
          const tw = performance.now();
          Atomics.store(words, 1, ++sent); // the request is out: read
          Atomics.notify(words, 1);
          const wait = Atomics.waitAsync(words, 0, sent - 1);
          if (wait.async) await wait.value;
          out.push(trip(t0, tw));
          const length = words[2];
          check(length, "atomics");
          received.set(data.subarray(0, length));
        }
        return out;
      },
      async close() {
        stopReader(words);
        await reader;
        end.close();
      },
    };
  },

  async iocp() {
    const pipe = await openPipe("sync", FILE_FLAG_OVERLAPPED);
    const port = checkPointer(
      k.CreateIoCompletionPort(pipe, null, 1n, 0),
      "CreateIoCompletionPort",
    );
    checkBool(
      k.SetFileCompletionNotificationModes(pipe, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS),
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
        const address = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(overlapped)));
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
          if (new DataView(entry.buffer).getBigUint64(8, true) === address) break;
        }
      } else if (code !== 0) throw new Error(`overlapped I/O failed: ${code}`);
      checkBool(k.GetOverlappedResult(pipe, overlapped, bytes, 0), "GetOverlappedResult");
      return bytes[0];
    };
    return {
      async trips(n) {
        const out: Trip[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          writeOverlapped.fill(0);
          let code = k.WriteFile(pipe, request, request.length, null, writeOverlapped)
            ? 0
            : getLastError();
          await settle(code, writeOverlapped);
          const tw = performance.now();
          readOverlapped.fill(0);
          code = k.ReadFile(pipe, buffer, buffer.length, null, readOverlapped) ? 0 : getLastError();
          const length = await settle(code, readOverlapped);
          out.push(trip(t0, tw));
          check(length, "iocp");
        }
        return out;
      },
      close() {
        k.CloseHandle(pipe);
        k.CloseHandle(port);
        return Promise.resolve();
      },
    };
  },

  async winipc(peer = "sync") {
    if (mechanism === "pipe") {
      const conn = await NamedPipeClient.connect(startPeer(peer), {
        mode: "message",
        timeout: 30_000,
      });
      return {
        async trips(n) {
          const out: Trip[] = [];
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            await conn.write(request);
            const tw = performance.now();
            const reply = await conn.readMessage();
            out.push(trip(t0, tw));
            check(reply?.length ?? -1, "winipc");
          }
          return out;
        },
        close: () => conn[Symbol.asyncDispose](),
      };
    }
    await using listener = await listen({ hostname: "127.0.0.1", port: 0 });
    startPeer(peer, listener.addr.port);
    const conn = await listener.accept({ timeout: 30_000 });
    conn.setNoDelay(true);
    const buffer = new Uint8Array(4096);
    return {
      async trips(n) {
        const out: Trip[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          await conn.write(request);
          const tw = performance.now();
          let got = 0;
          while (got < REPLY) {
            const r = await conn.read(buffer.subarray(got, REPLY));
            if (r === null) throw new Error("winipc: the peer closed");
            got += r;
          }
          out.push(trip(t0, tw));
        }
        return out;
      },
      close: () => conn[Symbol.asyncDispose](),
    };
  },
};

/** The same as the first two, against a peer that reads the same way. */
open["nonblocking-ffi-both"] = () => open["nonblocking-ffi"]("nonblocking");
open["winipc-both"] = () => open.winipc("winipc");

const variants: Variant[] = [];
for (const name of names) variants.push(await open[name]());
const samples: Trip[][] = names.map(() => []);
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
  const totals = s.map((t) => t[0]).sort((a, b) => a - b);
  const writes = s.map((t) => t[1]).sort((a, b) => a - b);
  return {
    p50: quantile(totals, 0.5),
    p90: quantile(totals, 0.9),
    write: quantile(writes, 0.5),
  };
});
const floor = stats[names.indexOf("sync")]?.p50;
console.log(
  `| ${mechanism} | p50 µs | p90 µs | p50 / sync p50 | request sent, p50 µs |\n|---|---|---|---|---|`,
);
names.forEach((name, i) => {
  const { p50, p90, write } = stats[i];
  const ratio = floor ? `${(p50 / floor).toFixed(2)}×` : "";
  console.log(
    `| ${name} | ${p50.toFixed(1)} | ${p90.toFixed(1)} | ${ratio} | ${write.toFixed(1)} |`,
  );
});
