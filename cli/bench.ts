/**
 * `winipc bench`: round trips between this process and a second one, per mechanism and message
 * size, against Deno's own TCP (`deno-tcp`: `Deno.listen`/`Deno.connect`) and Deno's own named
 * pipes (`deno-pipe`: `node:net` on `\\.\pipe\<name>`) as the references a user would pick
 * instead. With `--floor`, each kernel mechanism is followed by its floor: the same ping-pong over
 * plain synchronous Win32 calls in both processes (mechanisms/_floor.ts), the fastest any Deno
 * library can be on this system, measured in the same run.
 *
 * For each mechanism and size: a warm-up (not counted), then round trips for about a second:
 * half of it timed one by one (p50 and p99 latency), half in batches of about a millisecond
 * between clock readings (round trips per second); then a one-way stream for about a second (MB/s:
 * payload bytes the receiver got per second). Mechanisms that winipc does not have yet are not in
 * the table.
 *
 * `pubsub-1`, `pubsub-4` and `pubsub-16` measure publish/subscribe with that many subscriber
 * processes; their figures mean something else than a round trip (see {@linkcode PubSubTarget}).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import process from "node:process";
import Table from "cli-table3";
import { z } from "zod";
import net from "node:net";
import { ShmChannel } from "../mechanisms/channel.ts";
import {
  floorCopyDataConnect,
  type FloorEnd,
  type FloorHandler,
  FloorMailslot,
  floorMailslotServe,
  floorMailslotWriter,
  floorPipeConnect,
  FloorPipeServer,
  floorShmCreate,
  floorShmServe,
  FloorTcpListener,
  floorTcpServe,
  floorWindowServe,
} from "../mechanisms/_floor.ts";
import { MessageWindow, sendCopyData } from "../mechanisms/copydata.ts";
import { Publisher, Subscriber } from "../mechanisms/pubsub.ts";
import { MailslotReader, MailslotWriter } from "../mechanisms/mailslot.ts";
import { NamedPipeClient, NamedPipeServer } from "../mechanisms/pipe.ts";
import * as ws2 from "../mechanisms/socket.ts";
import { check, emit, intSchema, parser, tableStyle, UsageError } from "./_common.ts";
import { cliProgress } from "./_progress.ts";
import { selfCommand } from "./_self.ts";

/** Message tags: the first byte of every bench message. */
const ECHO = 0;
const SINK = 1;
const SINK_END = 2;

/** A connected client of one mechanism: sends a message and waits for the echo. */
interface BenchClient {
  /**
   * Sends and waits for the reply. A mechanism that can poll (the shm channel) returns the reply
   * synchronously when it arrives within its spin, so that no promise is measured.
   */
  roundTrip(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Sends without waiting for a reply (synchronously when there is room at once). */
  send(message: Uint8Array): void | Promise<void>;
  /** Waits for one reply. */
  receive(): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** One mechanism in the benchmark. */
interface BenchTarget {
  mechanism: string;
  /** `"floor"` for the same ping-pong over plain synchronous Win32 calls (`--floor`). */
  impl?: "floor";
  /** The parent's side: prepares, returns arguments for the peer, then connects. */
  prepare(
    session: string,
    size: number,
  ): Promise<{ peerArgs: string[]; v8Flags?: string[]; connect(): Promise<BenchClient> }>;
  /** The peer's side: echoes ECHO messages, counts SINK ones, acknowledges SINK_END. */
  serve(args: string[]): Promise<void>;
}

/** Echo logic shared by every peer: what to send back for a message, if anything. */
function answer(message: Uint8Array): Uint8Array | undefined {
  if (message[0] === ECHO) return message;
  if (message[0] === SINK_END) return new Uint8Array([SINK_END]);
  return undefined;
}

function channelCapacity(size: number): number {
  let capacity = 1 << 20;
  while (capacity / 2 - 8 < size * 2) capacity *= 2;
  return capacity;
}

/**
 * Receives on a channel the way a latency-bound user would: poll `tryReceiveView` (no FFI call,
 * no promise, no copy) for up to `spinMicros`, then fall back to the awaited `receiveView` (which
 * sleeps). The view is valid until the next receive.
 */
function receiveSpinning(
  channel: ShmChannel,
  spinMicros: number,
): Uint8Array | Promise<Uint8Array | null> {
  let until = 0;
  for (let i = 0;; i++) {
    const message = channel.tryReceiveView();
    if (message) return message;
    if ((i & 63) === 63) {
      const now = performance.now();
      if (until === 0) until = now + spinMicros / 1000;
      else if (now > until) return channel.receiveView();
    }
  }
}

/**
 * How long each side of the shm bench polls before it sleeps. Longer than a sleeping receiver
 * takes to wake under Wine (about a millisecond), so that when one side is descheduled for a
 * moment the other is still polling when it comes back; with a shorter spin both sides can fall
 * into sleeping on every message and stay there.
 */
const SPIN_MICROS = 2000;

const shmTarget: BenchTarget = {
  mechanism: "shm",
  async prepare(session, size) {
    const name = `${session}.chan`;
    const channel = await ShmChannel.create(name, {
      capacity: channelCapacity(size),
      spinMicros: SPIN_MICROS,
    });
    return {
      peerArgs: [name],
      connect: () =>
        Promise.resolve({
          roundTrip(message) {
            const reply = channel.trySend(message)
              ? receiveSpinning(channel, SPIN_MICROS)
              : channel.send(message).then(() => receiveSpinning(channel, SPIN_MICROS));
            return reply instanceof Uint8Array ? reply : reply.then((view) => view!);
          },
          send: (message) => channel.trySend(message) ? undefined : channel.send(message),
          async receive() {
            return (await channel.receive())!;
          },
          close: () => channel[Symbol.asyncDispose](),
        }),
    };
  },
  async serve([name]) {
    await using channel = await ShmChannel.open(name, { spinMicros: SPIN_MICROS });
    console.log("ready");
    for (;;) {
      // zero-copy: the view is valid until the next receive
      const spun = receiveSpinning(channel, SPIN_MICROS);
      const message = spun instanceof Promise ? await spun : spun;
      if (message === null) return;
      const reply = answer(message);
      if (reply && !channel.trySend(reply)) await channel.send(reply);
    }
  },
};

/** A byte stream: Deno's own `Deno.Conn` or winipc's ws2_32 `TcpConn`. */
interface ByteConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** Length-prefixed frames over a byte stream. */
class FrameReader {
  #buffer = new Uint8Array(1 << 16);
  #start = 0;
  #end = 0;
  readonly #conn: ByteConn;
  constructor(conn: ByteConn) {
    this.#conn = conn;
  }
  async #fill(need: number): Promise<boolean> {
    if (this.#buffer.length < need) {
      const bigger = new Uint8Array(Math.max(need, this.#buffer.length * 2));
      bigger.set(this.#buffer.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buffer = bigger;
    } else if (this.#start + need > this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.#end - this.#start < need) {
      const n = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }
  async next(): Promise<Uint8Array | null> {
    if (!await this.#fill(4)) return null;
    const length = new DataView(this.#buffer.buffer, this.#start, 4).getUint32(0, true);
    if (!await this.#fill(4 + length)) return null;
    const message = this.#buffer.subarray(this.#start + 4, this.#start + 4 + length);
    this.#start += 4 + length;
    return message;
  }
}

async function writeFrame(conn: ByteConn, message: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + message.length);
  new DataView(frame.buffer).setUint32(0, message.length, true);
  frame.set(message, 4);
  for (let done = 0; done < frame.length;) done += await conn.write(frame.subarray(done));
}

/** A framed client over a connected byte stream. */
function framedClient(conn: ByteConn): BenchClient {
  const reader = new FrameReader(conn);
  return {
    async roundTrip(message) {
      await writeFrame(conn, message);
      return (await reader.next())!;
    },
    send: (message) => writeFrame(conn, message),
    async receive() {
      return (await reader.next())!;
    },
    close() {
      conn.close();
      return Promise.resolve();
    },
  };
}

/**
 * The peer's side over a connected byte stream: answers frames until the end of the stream. Says
 * "ready" first unless the peer said it already (a peer that listens says it before it connects).
 */
async function serveFramed(conn: ByteConn, announce = true): Promise<void> {
  if (announce) console.log("ready");
  const reader = new FrameReader(conn);
  for (;;) {
    const message = await reader.next();
    if (message === null) break;
    const reply = answer(message);
    if (reply) await writeFrame(conn, reply);
  }
  conn.close();
}

const denoTcpTarget: BenchTarget = {
  mechanism: "deno-tcp",
  prepare() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return Promise.resolve({
      peerArgs: [String(listener.addr.port)],
      async connect() {
        const conn = await listener.accept();
        listener.close();
        conn.setNoDelay(true);
        return framedClient(conn);
      },
    });
  },
  async serve([port]) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    conn.setNoDelay(true);
    await serveFramed(conn);
  },
};

/** A `node:net` socket as a {@linkcode ByteConn}. */
function nodeConn(socket: net.Socket): ByteConn {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    notify();
  });
  socket.on("end", () => {
    ended = true;
    notify();
  });
  socket.on("error", (e: Error) => {
    failure = e;
    notify();
  });
  return {
    async read(buffer) {
      while (chunks.length === 0 && !ended && !failure) {
        await new Promise<void>((resolve) => wake = resolve);
      }
      if (failure) throw failure;
      if (chunks.length === 0) return null;
      const chunk = chunks[0];
      const n = Math.min(chunk.length, buffer.length);
      buffer.set(chunk.subarray(0, n));
      if (n === chunk.length) chunks.shift();
      else chunks[0] = chunk.subarray(n);
      return n;
    },
    write: (data) =>
      new Promise((resolve, reject) =>
        socket.write(data, (e) => e ? reject(e) : resolve(data.length))
      ),
    close: () => void socket.destroy(),
  };
}

/**
 * Deno's own named pipes (`node:net` on `\\.\pipe\<name>`, byte mode): what a Deno user can
 * pick instead of winipc's pipes, as `deno-tcp` is for sockets.
 */
const denoPipeTarget: BenchTarget = {
  mechanism: "deno-pipe",
  prepare(session) {
    const path = `\\\\.\\pipe\\${session}.node`;
    return Promise.resolve({
      peerArgs: [path],
      connect: () =>
        new Promise<BenchClient>((resolve, reject) => {
          const socket = net.connect(path, () => resolve(framedClient(nodeConn(socket))));
          socket.once("error", reject);
        }),
    });
  },
  async serve([path]) {
    const done = Promise.withResolvers<void>();
    const server = net.createServer((socket) => {
      server.close();
      serveFramed(nodeConn(socket), false).then(done.resolve, done.reject);
    });
    server.listen(path, () => console.log("ready"));
    await done.promise;
  },
};

const socketTarget: BenchTarget = {
  mechanism: "socket",
  async prepare() {
    const listener = await ws2.listen({ hostname: "127.0.0.1", port: 0 });
    return {
      peerArgs: [String(listener.addr.port)],
      async connect() {
        const conn = await listener.accept();
        listener.close();
        conn.setNoDelay(true);
        return framedClient(conn);
      },
    };
  },
  async serve([port]) {
    const conn = await ws2.connect({ hostname: "127.0.0.1", port: Number(port), noDelay: true });
    await serveFramed(conn);
  },
};

const pipeTarget: BenchTarget = {
  mechanism: "pipe",
  prepare(session, size) {
    const name = `${session}.pipe`;
    return Promise.resolve({
      peerArgs: [name, String(size)],
      async connect() {
        const conn = await NamedPipeClient.connect(name, { mode: "message", timeout: 10_000 });
        return {
          async roundTrip(message) {
            await conn.write(message);
            return (await conn.readMessage())!;
          },
          send: async (message) => void await conn.write(message),
          async receive() {
            return (await conn.readMessage())!;
          },
          close: () => conn[Symbol.asyncDispose](),
        };
      },
    });
  },
  async serve([name, size]) {
    using server = NamedPipeServer.listen(name, {
      mode: "message",
      inBufferSize: Math.max(65536, Number(size)),
      outBufferSize: Math.max(65536, Number(size)),
    });
    console.log("ready");
    for await (const conn of server) {
      for (;;) {
        const message = await conn.readMessage();
        if (message === null) break;
        const reply = answer(message);
        if (reply) await conn.write(reply);
      }
      conn.close();
      return;
    }
  },
};

/** The bench's mailslots take the largest `--size` (64 MiB) and a little more. */
const BENCH_SLOT_MAX = (64 << 20) + 4096;

/** Mailslots are one way: the reply comes back through a second mailslot, the demo's own. */
const mailslotTarget: BenchTarget = {
  mechanism: "mailslot",
  prepare(session) {
    const inbox = MailslotReader.create(`${session}.back`, { maxMessageBytes: BENCH_SLOT_MAX });
    return Promise.resolve({
      peerArgs: [`${session}.there`, `${session}.back`],
      connect() {
        const out = MailslotWriter.open(`${session}.there`);
        return Promise.resolve({
          async roundTrip(message) {
            out.write(message);
            return await inbox.read({ timeout: 10_000 });
          },
          send: (message) => Promise.resolve(void out.write(message)),
          receive: () => inbox.read({ timeout: 10_000 }),
          close() {
            out.close();
            inbox.close();
            return Promise.resolve();
          },
        });
      },
    });
  },
  async serve([there, back]) {
    using inbox = MailslotReader.create(there, { maxMessageBytes: BENCH_SLOT_MAX });
    console.log("ready");
    // the demo opens its writer after "ready"; the reply mailslot exists before it starts us
    using out = MailslotWriter.open(back);
    for (;;) {
      const message = await inbox.read({ timeout: 30_000 });
      const reply = answer(message);
      if (reply) out.write(reply);
      if (message[0] === SINK_END) return;
    }
  },
};

/**
 * WM_COPYDATA: the payload goes to the peer's window, its reply value (the payload's length)
 * comes back, all within one SendMessageTimeoutW. Payloads past about 900 KiB need a larger V8
 * stack in the receiver (see copydata.ts), so the peer runs with `--stack-size=4096`.
 */
const copydataTarget: BenchTarget = {
  mechanism: "copydata",
  prepare(session) {
    const title = `${session}.copydata`;
    return Promise.resolve({
      peerArgs: [title],
      v8Flags: ["--stack-size=4096"],
      connect() {
        let last: Uint8Array = new Uint8Array(0);
        return Promise.resolve({
          async roundTrip(message) {
            const reply = await sendCopyData(title, message, { timeout: 10_000 });
            if (reply !== message.length) throw new Error(`copydata: reply ${reply}`);
            return message;
          },
          async send(message) {
            last = message;
            await sendCopyData(title, message, { timeout: 10_000 });
          },
          receive: () => Promise.resolve(last[0] === SINK_END ? new Uint8Array([SINK_END]) : last),
          close: () => Promise.resolve(),
        });
      },
    });
  },
  async serve([title]) {
    let ended!: () => void;
    const end = new Promise<void>((resolve) => ended = resolve);
    using _window = new MessageWindow({
      title,
      onCopyData: (message) => {
        if (message.data[0] === SINK_END) setTimeout(ended, 0);
        return message.data.length;
      },
    });
    console.log("ready");
    await end;
  },
};

/** The floor peers' handler: the bench's answer, and the end after SINK_END. */
const floorHandler: FloorHandler = (message) => ({
  reply: answer(message),
  last: message[0] === SINK_END,
});

/** A floor end as a bench client (its calls block; replies come back without a promise). */
function floorClient(end: FloorEnd): BenchClient {
  return {
    roundTrip: (message) => end.roundTrip(message),
    send: (message) => end.send(message),
    receive: () => Promise.resolve(end.receive()),
    close: () => Promise.resolve(end.close()),
  };
}

/** The floors (`--floor`): each mechanism's ping-pong over plain synchronous Win32 calls. */
const FLOOR_TARGETS: BenchTarget[] = [
  {
    mechanism: "shm",
    impl: "floor",
    prepare(session, size) {
      const name = `${session}.floor`;
      const end = floorShmCreate(name, size);
      return Promise.resolve({
        peerArgs: [name, String(size)],
        connect: () => Promise.resolve(floorClient(end)),
      });
    },
    serve([name, size]) {
      console.log("ready");
      floorShmServe(name, Number(size), floorHandler);
      return Promise.resolve();
    },
  },
  {
    mechanism: "pipe",
    impl: "floor",
    prepare(session, size) {
      const name = `${session}.floor`;
      return Promise.resolve({
        peerArgs: [name, String(size)],
        connect: () => Promise.resolve(floorClient(floorPipeConnect(name, size))),
      });
    },
    serve([name, size]) {
      const server = new FloorPipeServer(name, Number(size));
      console.log("ready");
      server.serve(floorHandler);
      return Promise.resolve();
    },
  },
  {
    mechanism: "mailslot",
    impl: "floor",
    prepare(session, size) {
      const inbox = new FloorMailslot(`${session}.floor.back`, size);
      return Promise.resolve({
        peerArgs: [`${session}.floor.there`, `${session}.floor.back`, String(size)],
        connect() {
          const out = floorMailslotWriter(`${session}.floor.there`);
          return Promise.resolve(floorClient({
            roundTrip(message) {
              out.write(message);
              return inbox.read();
            },
            send: (message) => out.write(message),
            receive: () => inbox.read(),
            close() {
              out.close();
              inbox.close();
            },
          }));
        },
      });
    },
    serve([there, back, size]) {
      const inbox = new FloorMailslot(there, Number(size));
      console.log("ready");
      floorMailslotServe(inbox, back, floorHandler);
      return Promise.resolve();
    },
  },
  {
    mechanism: "copydata",
    impl: "floor",
    prepare(session) {
      const title = `${session}.floor`;
      return Promise.resolve({
        peerArgs: [title],
        v8Flags: ["--stack-size=4096"],
        connect: () => Promise.resolve(floorClient(floorCopyDataConnect(title))),
      });
    },
    serve([title]) {
      floorWindowServe(title, floorHandler, () => console.log("ready"));
      return Promise.resolve();
    },
  },
  {
    mechanism: "socket",
    impl: "floor",
    prepare(_session, size) {
      const listener = new FloorTcpListener();
      return Promise.resolve({
        peerArgs: [String(listener.port), String(size)],
        connect: () => Promise.resolve(floorClient(listener.accept(size))),
      });
    },
    serve([port, size]) {
      console.log("ready");
      floorTcpServe(Number(port), Number(size), floorHandler);
      return Promise.resolve();
    },
  },
];

/** Every mechanism the benchmark knows, in table order. */
export const BENCH_TARGETS: BenchTarget[] = [
  shmTarget,
  pipeTarget,
  denoPipeTarget,
  mailslotTarget,
  copydataTarget,
  socketTarget,
  denoTcpTarget,
];

/**
 * Publish/subscribe (mechanisms/pubsub.ts) with 1, 4 and 16 subscriber processes: mechanisms
 * `pubsub-1`, `pubsub-4` and `pubsub-16`. It is not a ping-pong, so its line reads differently:
 * `rtt_us_p50`/`rtt_us_p99` run from the loan of a sample until every subscriber has received
 * and released it (publish to the last receive, plus the release's way back, seen by the
 * publisher), one sample at a time; `msgs_per_s` is samples published per second in a stream
 * ("block" policy, so the slowest subscriber sets the pace) and `mb_per_s` that many samples'
 * bytes per second per subscriber. Nothing is copied: the publisher writes a sample's first
 * 8 bytes, each subscriber reads its first and last byte.
 */
interface PubSubTarget {
  mechanism: string;
  subscribers: number;
}

const PUBSUB_TARGETS: PubSubTarget[] = [1, 4, 16].map((subscribers) => ({
  mechanism: `pubsub-${subscribers}`,
  subscribers,
}));

/**
 * How long a pub/sub bench subscriber spins before it sleeps: as the shm bench while the
 * subscribers and the publisher fit on the machine's cores; with more of them than cores, spinning
 * subscribers take the cores from the ones that have work, so they sleep at once.
 */
function pubsubSpin(subscribers: number): number {
  return subscribers + 1 <= navigator.hardwareConcurrency ? SPIN_MICROS : 0;
}

/** The subscriber process of the pub/sub bench: receives, touches, releases, until the end. */
async function servePubSub([name, spin]: string[]): Promise<void> {
  using sub = await Subscriber.open(name, { spinMicros: Number(spin) });
  let touched = 0;
  for (;;) {
    let sample = sub.tryReceive();
    if (sample === undefined) {
      const until = performance.now() + Number(spin) / 1000;
      while (sample === undefined && performance.now() < until) sample = sub.tryReceive();
      sample ??= await sub.receive() ?? undefined;
      if (sample === undefined) break; // the publisher closed
    }
    const data = sample.data;
    touched += data[0] + data[data.length - 1];
    sample.release();
  }
  if (touched < 0) console.log(touched); // keeps the reads
}

async function measurePubSub(
  target: PubSubTarget,
  size: number,
  seconds: number,
  onProgress: (fraction: number) => void,
): Promise<BenchResult> {
  const name = `winipc-bench-${Deno.pid}-${Date.now().toString(36)}-${target.mechanism}-${size}`;
  const k = target.subscribers;
  using pub = await Publisher.create(name, {
    sampleSize: size,
    history: size <= 65536 ? 64 : 4,
    maxHeld: 1,
    maxSubscribers: k,
    overflow: "block",
    spinMicros: SPIN_MICROS,
  });
  // The peers report nothing on stdout: the publisher sees them join. (Deno reads a child's pipes
  // on the thread pool that runs nonblocking FFI waits; 16 readers would hold it.)
  const peers = Array.from(
    { length: k },
    () =>
      selfCommand(["bench", "--peer", "pubsub", name, String(pubsubSpin(k))], [], {
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
  );
  try {
    await pub.waitForSubscribers(k, { timeout: 120_000 });
    const one = async () => {
      const sample = pub.tryLoan() ?? await pub.loan({ timeout: 10_000 });
      sample.data[0] = 1;
      await sample.publish(size, { timeout: 10_000 });
    };
    const settle = async () => {
      for (let i = 0; !pub.settled; i++) {
        if ((i & 1023) === 1023) await new Promise((r) => setTimeout(r, 0));
      }
    };
    // warm-up: a fifth of the time, not counted
    const warmUntil = performance.now() + seconds * 200;
    while (performance.now() < warmUntil) {
      await one();
      await settle();
    }
    onProgress(0.2);
    const samples = new Float64Array(1_000_000);
    let n = 0;
    const start = performance.now();
    const until = start + seconds * 400;
    let now = start;
    while (now < until && n < samples.length) {
      const t0 = now;
      await one();
      if (!pub.settled) await settle();
      now = performance.now();
      samples[n++] = now - t0;
    }
    const sorted = samples.slice(0, n).sort();
    onProgress(0.4);
    let published = 0;
    const rateStart = performance.now();
    const rateUntil = rateStart + seconds * 1000;
    while (performance.now() < rateUntil) {
      for (let i = 0; i < 16; i++) await one();
      published += 16;
      if ((published & 255) === 0) {
        onProgress(0.4 + 0.6 * (performance.now() - rateStart) / (rateUntil - rateStart));
      }
    }
    await settle();
    const rateSeconds = (performance.now() - rateStart) / 1000;
    onProgress(1);
    return {
      mechanism: target.mechanism,
      size,
      rtt_us_p50: percentile(sorted, 0.5) * 1000,
      rtt_us_p99: percentile(sorted, 0.99) * 1000,
      msgs_per_s: published / rateSeconds,
      mb_per_s: published * size / rateSeconds / 1e6,
    };
  } finally {
    pub.close(); // the subscribers see the end and exit
    for (const peer of peers) {
      const status = await peer.status;
      if (!status.success) {
        console.error(`warning: a ${target.mechanism} peer exited with code ${status.code}`);
      }
    }
  }
}

/** The name a target's peer is started with (`bench --peer <id>`). */
const peerId = (target: BenchTarget) =>
  target.impl ? `${target.mechanism}-${target.impl}` : target.mechanism;

/** One line of results, at full precision (the table rounds; `--json` prints these as they are). */
export interface BenchResult {
  /** The mechanism, named as its CLI group. */
  mechanism: string;
  /** `"floor"` on a floor's line (`--floor`); absent on winipc's own. */
  impl?: "floor";
  /** The message size in bytes. */
  size: number;
  /** The median round trip, in microseconds. */
  rtt_us_p50: number;
  /** The 99th-percentile round trip, in microseconds. */
  rtt_us_p99: number;
  /** Round trips per second. */
  msgs_per_s: number;
  /** One-way throughput, in megabytes (10^6 bytes) per second. */
  mb_per_s: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * A figure for the table: whole numbers with thousands separators from 100 up, three significant
 * digits below (so a slow run's 0.0397 MB/s reads as 0.0397, not 0). The JSON lines carry the
 * figures at full precision.
 */
function figure(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  return String(Number(n.toPrecision(3)));
}

async function measure(
  target: BenchTarget,
  size: number,
  seconds: number,
  onProgress: (fraction: number) => void,
): Promise<BenchResult> {
  const session = `winipc-bench-${Deno.pid}-${Date.now().toString(36)}-${target.mechanism}-${size}`;
  const { peerArgs, v8Flags, connect } = await target.prepare(session, size);
  const peer = selfCommand(["bench", "--peer", peerId(target), ...peerArgs], v8Flags).spawn();
  const lines = peer.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await lines.read();
  if (!first.value?.startsWith("ready")) {
    const stderr = await new Response(peer.stderr).text();
    throw new Error(`the ${target.mechanism} peer did not start: ${stderr.trim()}`);
  }
  const client = await connect();
  try {
    const echo = new Uint8Array(size).fill(7);
    echo[0] = ECHO;
    // warm-up: a fifth of the time, not counted
    const warmUntil = performance.now() + seconds * 200;
    while (performance.now() < warmUntil) await client.roundTrip(echo);
    onProgress(0.2);
    const checkReply = (reply: Uint8Array) => {
      if (reply.length !== size) {
        throw new Error(`${target.mechanism}: a reply of ${reply.length} bytes`);
      }
    };
    // Latency, for half the time: one clock reading per round trip. Each sample runs from the end
    // of the previous one, so it includes the loop and the clock itself (about 0.18 µs under
    // Wine) and nothing is subtracted.
    const samples = new Float64Array(1_000_000);
    let n = 0;
    const start = performance.now();
    const until = start + seconds * 500;
    let now = start;
    while (now < until && n < samples.length) {
      const t0 = now;
      let reply = client.roundTrip(echo);
      if (reply instanceof Promise) reply = await reply;
      now = performance.now();
      checkReply(reply);
      samples[n++] = now - t0;
      if ((n & 1023) === 0) onProgress(0.2 + 0.2 * (now - start) / (until - start));
    }
    const sorted = samples.slice(0, n).sort();
    // Rate, for the other half: round trips in batches of about a millisecond between clock
    // readings, so that the clock does not weigh on fast mechanisms.
    const batch = Math.min(4096, Math.max(1, Math.floor(n / (now - start))));
    let trips = 0;
    const rateStart = performance.now();
    const rateUntil = rateStart + seconds * 500;
    now = rateStart;
    while (now < rateUntil) {
      for (let i = 0; i < batch; i++) {
        const reply = client.roundTrip(echo);
        checkReply(reply instanceof Promise ? await reply : reply);
      }
      trips += batch;
      now = performance.now();
      onProgress(0.4 + 0.2 * (now - rateStart) / (rateUntil - rateStart));
    }
    const rate = trips / ((now - rateStart) / 1000);
    // one-way stream
    const sink = new Uint8Array(size).fill(9);
    sink[0] = SINK;
    let sent = 0;
    const streamStart = performance.now();
    const streamUntil = streamStart + seconds * 1000;
    while (performance.now() < streamUntil) {
      for (let i = 0; i < 16; i++) {
        const sending = client.send(sink);
        if (sending) await sending;
      }
      sent += 16;
      if ((sent & 255) === 0) {
        onProgress(0.6 + 0.4 * (performance.now() - streamStart) / (streamUntil - streamStart));
      }
    }
    await client.send(new Uint8Array([SINK_END]));
    const ack = await client.receive();
    if (ack[0] !== SINK_END) {
      throw new Error(`${target.mechanism}: no end of stream acknowledgement`);
    }
    const streamSeconds = (performance.now() - streamStart) / 1000;
    onProgress(1);
    return {
      mechanism: target.mechanism,
      ...(target.impl ? { impl: target.impl } : {}),
      size,
      rtt_us_p50: percentile(sorted, 0.5) * 1000,
      rtt_us_p99: percentile(sorted, 0.99) * 1000,
      msgs_per_s: rate,
      mb_per_s: sent * size / streamSeconds / 1e6,
    };
  } finally {
    await client.close();
    await lines.cancel().catch(() => undefined);
    const status = await peer.status;
    if (!status.success) {
      const said = await new Response(peer.stderr).text().catch(() => "");
      console.error(
        `warning: the ${target.mechanism} peer exited with code ${status.code}: ${said.trim()}`,
      );
    }
  }
}

const SIZES = [64, 4096, 65536, 1 << 20];

/**
 * Adds `bench` to the program.
 *
 * @param program The root command.
 */
export function registerBench(program: Command): void {
  program.command("bench")
    .description(
      "round trips between two processes for each mechanism: p50/p99 latency, round trips/s,\none-way MB/s",
    )
    .option(
      "--mechanism <list>",
      `comma-separated mechanisms (default: all of ${
        [...BENCH_TARGETS, ...PUBSUB_TARGETS].map((t) => t.mechanism).join(", ")
      })`,
    )
    .option(
      "--size <bytes>",
      "one message size (default: 64, 4096, 65536 and 1048576)",
      parser(intSchema(1, 64 << 20)),
    )
    .option("--seconds <s>", "seconds per measurement (default 1)", parser(intSchema(1, 60)), 1)
    .option(
      "--floor",
      'after each mechanism, the same ping-pong over plain synchronous Win32 calls ("impl": "floor")',
    )
    .option("--json", "print one JSON line per measurement")
    .option(
      "--chart <file.svg>",
      "also draw p50 latency and throughput per mechanism and size, log scale, as an SVG file",
    )
    .option("--peer <mechanism>", "run as the benchmark's second process (internal)")
    .argument("[peer-args...]")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc bench\n  winipc bench --mechanism shm,deno-tcp --size 64 --json\n" +
        "  winipc bench --mechanism pipe,socket --size 64 --floor\n" +
        "  winipc bench --mechanism shm,pipe,copydata --floor --chart bench.svg",
    )
    .action(async (peerArgs, opts) => {
      if (opts.peer === "pubsub") {
        await servePubSub(peerArgs);
        return;
      }
      if (opts.peer !== undefined) {
        const target = [...BENCH_TARGETS, ...FLOOR_TARGETS].find((t) => peerId(t) === opts.peer);
        if (!target) throw new UsageError(`Unknown mechanism: ${opts.peer}`);
        await target.serve(peerArgs);
        return;
      }
      const known = [...BENCH_TARGETS, ...PUBSUB_TARGETS].map((t) => t.mechanism);
      const names = opts.mechanism === undefined ? known : check(
        z.array(z.enum(known as [string, ...string[]], {
          error: `must be among ${known.join(", ")}`,
        })).min(1),
        opts.mechanism.split(",").map((s) => s.trim()),
        "--mechanism",
      );
      const targets = BENCH_TARGETS.filter((t) => names.includes(t.mechanism)).flatMap((t) => {
        const floor = opts.floor && FLOOR_TARGETS.find((f) => f.mechanism === t.mechanism);
        return floor ? [t, floor] : [t];
      }) as (BenchTarget | PubSubTarget)[];
      targets.push(...PUBSUB_TARGETS.filter((t) => names.includes(t.mechanism)));
      const sizes = opts.size === undefined ? SIZES : [opts.size];
      const chart = opts.chart === undefined
        ? undefined
        : check(z.string().trim().min(1, { error: "must be a file name" }), opts.chart, "--chart");
      const showProgress = Deno.stderr.isTerminal();
      const bar = showProgress
        ? new cliProgress.SingleBar({
          format: "{bar} {percentage}% | {task}",
          stream: process.stderr,
          hideCursor: true,
        }, cliProgress.Presets.shades_classic)
        : undefined;
      const total = targets.length * sizes.length;
      bar?.start(total * 100, 0, { task: "" });
      const results: BenchResult[] = [];
      let done = 0;
      // size by size, each mechanism's floor right after it: the two are measured side by side
      const runs = opts.floor
        ? sizes.flatMap((size) => targets.map((target) => ({ target, size })))
        : targets.flatMap((target) => sizes.map((size) => ({ target, size })));
      for (const { target, size } of runs) {
        {
          const label = "impl" in target && target.impl
            ? `${target.mechanism} ${target.impl}`
            : target.mechanism;
          bar?.update(done * 100, { task: `${label} ${size} B` });
          const progress = (f: number) => bar?.update(Math.round((done + f) * 100));
          const result = "subscribers" in target
            ? await measurePubSub(target, size, opts.seconds, progress)
            : await measure(target, size, opts.seconds, progress);
          done++;
          results.push(result);
          if (opts.json) emit(true, { ...result }, "");
        }
      }
      bar?.stop();
      if (!opts.json) {
        const head = ["mechanism", "size", "p50 µs", "p99 µs", "round trips/s", "MB/s one way"];
        const table = new Table({
          head: opts.floor ? [...head, "p50 / floor"] : head,
          style: tableStyle(),
        });
        for (const r of results) {
          const row = [
            r.impl ? `${r.mechanism} (${r.impl})` : r.mechanism,
            r.size,
            figure(r.rtt_us_p50),
            figure(r.rtt_us_p99),
            figure(r.msgs_per_s),
            figure(r.mb_per_s),
          ];
          if (opts.floor) {
            const floor = r.impl
              ? undefined
              : results.find((f) =>
                f.impl === "floor" && f.mechanism === r.mechanism && f.size === r.size
              );
            row.push(floor ? `${figure(r.rtt_us_p50 / floor.rtt_us_p50)}×` : "");
          }
          table.push(row);
        }
        console.log(table.toString());
      }
      if (chart !== undefined) {
        // Loaded only here: the chart library takes about 1.5 s to load under Wine, which every
        // start of the CLI would pay.
        const { benchChartSvg, sizeLabel } = await import("./_chart.ts");
        const sizeText = sizes.map(sizeLabel).join(", ");
        await Deno.writeTextFile(
          chart,
          benchChartSvg(results, {
            title: `winipc bench: ${sizeText}, ${opts.seconds} s each (${
              new Date().toISOString().slice(0, 10)
            })`,
          }),
        );
        console.error(`chart written to ${chart}`);
      }
    });
}
