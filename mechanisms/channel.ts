/**
 * A message channel between processes over shared memory: the fast path of winipc.
 *
 * A channel is one named mapping holding two lock-free rings: one carries messages to the
 * creator (any number of openers may send on it: producers claim space with an atomic
 * compare-exchange), the other carries messages from the creator to the opener that receives.
 * Head and tail live in the mapping and move with `Atomics`; while the peer is active no message
 * costs an FFI call. An idle receiver spins briefly, then announces that it sleeps and blocks on
 * a named event (on a worker thread, so the event loop stays free); senders set that event only
 * when the receiver has announced it. The receiver re-checks after announcing, so no wake-up is
 * lost.
 *
 * Messages are byte arrays of up to half the ring's capacity; a larger one is rejected with a
 * `RangeError` (create the channel with a larger `capacity`). A full ring makes `send` wait (or
 * `trySend` return `false`). A receiver gives the room it has read back to senders in batches of
 * an eighth of the ring (at once when a sender waits for room, or when it goes to sleep), so that
 * the read position does not travel between the two processors on every message; `trySend` may
 * therefore report a ring full while up to an eighth of it is about to be given back. A peer process that ends without closing is detected (its process
 * handle is checked whenever a wait lasts), and the other side gets an error instead of a hang.
 *
 * @example A request/response loop
 * ```ts
 * import { ShmChannel } from "./channel.ts";
 * // server
 * await using server = await ShmChannel.create("Local\\jobs");
 * for await (const message of server) await server.send(message); // echo
 * // client, in another process
 * await using client = await ShmChannel.open("Local\\jobs");
 * await client.send(new TextEncoder().encode("ping"));
 * const reply = await client.receive(); // Uint8Array "ping"
 * ```
 *
 * @module
 */
import { z } from "zod";
import { Win32Error, win32Error, WinipcError, withLastError } from "../ffi/error.ts";
import { kernel32, PROCESS_QUERY_LIMITED_INFORMATION, SYNCHRONIZE } from "../ffi/kernel32.ts";
import type { SecurityOptions } from "../ffi/security.ts";
import {
  type IoOptions,
  ioOptionsSchema,
  objectNameSchema,
  parseArg,
  securitySchema,
} from "./_validate.ts";
import { SharedMemory, type SharedView } from "./shm.ts";
import { capacitySchema, channelInternals, spinSchema, validCapacity } from "./_shm_limits.ts";
import { pollUntil } from "./_wait.ts";
import { Event, Semaphore } from "./sync.ts";
import { openExistingRegistry, openRegistry, register, tryOpen } from "./_registry.ts";

/** "WIPC" little-endian: the first word of every channel mapping. */
const MAGIC = 0x4350_4957;
/**
 * The layout version this module speaks: a channel created by a winipc with another layout is
 * refused by {@linkcode ShmChannel.open} with an error naming both versions.
 *
 * @example Say which layout a process speaks
 * ```ts
 * import { CHANNEL_LAYOUT_VERSION } from "./channel.ts";
 * console.log(`shm channel layout ${CHANNEL_LAYOUT_VERSION}`);
 * ```
 */
export const CHANNEL_LAYOUT_VERSION = 3;
const HEADER_BYTES = 4096;
/** Header words (Int32 indexes). */
const H = { magic: 0, version: 1, capacity: 2, maxOpeners: 3, creatorPid: 4, creatorState: 5 };
/** Ring control blocks (byte offsets), each word on its own cache line. */
const RING_BASE = [256, 1024];
const R = {
  reserve: 0,
  tail: 16,
  consumerWaiting: 32,
  producerWaiting: 48,
  consumerPid: 64,
  consumerState: 65,
  consumed: 80,
};
/** Opener slots: [pid, state] pairs (Int32 index of the first). */
const SLOTS = 2048 / 4;
const MAX_OPENERS = 64;
const STATE_OPEN = 1;
const STATE_CLOSED = 2;
const FRAME_HEADER = 8;

/**
 * Options of {@linkcode ShmChannel.create}.
 *
 * @example A large ring for big messages, polled hard, that many clients come and go on
 * ```ts
 * import { ShmChannel, type ShmChannelCreateOptions } from "./channel.ts";
 * const options: ShmChannelCreateOptions = {
 *   capacity: 64 << 20, // messages of up to 32 MiB
 *   spinMicros: 2000,
 *   endWhenSendersClose: false,
 * };
 * await using channel = await ShmChannel.create("Local\frames", options);
 * ```
 */
export interface ShmChannelCreateOptions {
  /** Bytes of each ring: a power of two from 4 KiB to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /**
   * Microseconds an idle receiver (or a sender facing a full ring) spins before it sleeps.
   * Default 50. A sleeper takes longer to wake than a spinner to notice (about a millisecond
   * under Wine on our test machine): for request/response at full speed, spin longer than the
   * peer's wake-up, or poll {@linkcode ShmChannel.tryReceiveView}.
   */
  spinMicros?: number;
  /** Access control of the mapping, its events and its init mutex. */
  security?: SecurityOptions;
  /**
   * Whether the creator's receiving ends (`null`) once every opener that connected has closed.
   * Default `true`. With `false` it waits for more openers instead, and an opener that ends
   * without closing is not an error (a rendezvous channel that many clients come and go on).
   */
  endWhenSendersClose?: boolean;
  /**
   * Whether the channel is written in the session's registry, so that `listServices()` and
   * `winipc shm list` show it while it is open. Default `true`. (`connectShm` makes its private
   * connection channels with `false`: they would crowd out the rest of the 128 entries.)
   */
  listed?: boolean;
}

/**
 * Options of {@linkcode ShmChannel.open}.
 *
 * @example Wait up to 5 s for the creator to finish setting the channel up
 * ```ts
 * import { ShmChannel } from "./channel.ts";
 * await using channel = await ShmChannel.open("Local\frames", { timeout: 5000 });
 * ```
 */
export interface ShmChannelOpenOptions extends IoOptions {
  /** Microseconds to spin before sleeping. Default 50. */
  spinMicros?: number;
  /** Milliseconds to wait for a creator that is still initialising. Default 10,000. */
  timeout?: number;
  /** Aborts that wait. */
  signal?: AbortSignal;
  /** Access control of the channel's events, should this end be the one that creates them. */
  security?: SecurityOptions;
}

/**
 * Options of a single send or receive.
 *
 * @example Give up on a reply after a second, or when the user cancels
 * ```ts
 * import { ShmChannel } from "./channel.ts";
 * await using channel = await ShmChannel.open("Local\jobs");
 * const cancel = new AbortController();
 * await channel.send(new Uint8Array([1]), { timeout: 1000 });
 * const reply = await channel.receive({ timeout: 1000, signal: cancel.signal });
 * ```
 */
export interface ChannelOpOptions extends IoOptions {
  /** Aborts the wait. */
  signal?: AbortSignal;
  /** Milliseconds to wait at most; `Infinity` by default. */
  timeout?: number;
}

/**
 * A peer process ended without closing the channel (or in the middle of a message).
 *
 * @example Tell a crashed peer from a clean end
 * ```ts
 * import { PeerGoneError, ShmChannel } from "./channel.ts";
 * await using channel = await ShmChannel.create("Local\jobs");
 * try {
 *   for await (const message of channel) console.log(message.length);
 *   console.log("every sender closed");
 * } catch (e) {
 *   if (e instanceof PeerGoneError) console.log(`process ${e.pid} died`);
 *   else throw e;
 * }
 * ```
 */
export class PeerGoneError extends WinipcError {
  /** The peer's process id. */
  readonly pid: number;
  /**
   * Makes the error.
   *
   * @param pid The peer's process id.
   * @param message What happened.
   */
  constructor(pid: number, message: string) {
    super(message, "ERR_PEER_GONE");
    this.name = "PeerGoneError";
    this.pid = pid;
  }
}

/**
 * A peer broke the channel's protocol: a word it wrote in the shared mapping (a frame length, a
 * padding size, a producer id, the capacity) is out of the bounds this end knows. The channel is
 * ended for this end: every later receive throws the same error; other channels and connections
 * are not affected.
 *
 * @example Tell a hostile or corrupt peer from a crashed one
 * ```ts
 * import { PeerGoneError, ProtocolError, ShmChannel } from "./channel.ts";
 * await using channel = await ShmChannel.create("Local\jobs");
 * try {
 *   for await (const message of channel) console.log(message.length);
 * } catch (e) {
 *   if (e instanceof ProtocolError) console.log(`bad peer: ${e.message}`);
 *   else if (e instanceof PeerGoneError) console.log(`process ${e.pid} died`);
 *   else throw e;
 * }
 * ```
 */
export class ProtocolError extends WinipcError {
  /**
   * Makes the error.
   *
   * @param message What was wrong, with the value read.
   * @param code The code, for a subclass that names its case (`ERR_MESSAGE_TOO_LARGE`).
   */
  constructor(message: string, code = "ERR_PROTOCOL") {
    super(message, code);
    this.name = "ProtocolError";
  }
}

const nameSchema = objectNameSchema.refine((s) => s.length <= 248, {
  error: "must be at most 248 characters",
});
const createSchema = z.object({
  capacity: capacitySchema.optional(),
  endWhenSendersClose: z.boolean().optional(),
  listed: z.boolean({ error: "must be a boolean" }).optional(),
  spinMicros: spinSchema.optional(),
  security: securitySchema,
}).strict().optional();
const openSchema = ioOptionsSchema.extend({
  spinMicros: spinSchema.optional(),
  security: securitySchema,
}).strict().optional();
const opSchema = ioOptionsSchema.optional();

/** The hot path's argument check: the same message a zod schema would give, at no cost. */
function checkData(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError('Invalid argument "data": must be a Uint8Array or a string');
  }
}

const encoder = new TextEncoder();

/** Process handles a channel end keeps at most (the oldest is closed to make room). */
const MAX_WATCHED = 128;
const ERROR_ACCESS_DENIED = 5;
const ERROR_TOO_MANY_POSTS = 298;

/**
 * Liveness of other processes, by pid: one handle each, at most {@linkcode MAX_WATCHED} kept (a
 * peer can write any pid into the mapping). A process this user may not open is alive as far as
 * we can tell: it is asked again next time, not taken for dead.
 */
class ProcessWatch {
  #handles = new Map<number, Deno.PointerValue>();
  alive(pid: number): boolean {
    if (pid === Deno.pid) return true;
    let handle = this.#handles.get(pid);
    if (handle === undefined) {
      const access = SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION;
      let code: number;
      [handle, code] = withLastError(() => kernel32().OpenProcess(access, 0, pid));
      if (handle === null && code === ERROR_ACCESS_DENIED) return true;
      if (this.#handles.size >= MAX_WATCHED) {
        const [oldest, old] = this.#handles.entries().next().value!;
        if (old) kernel32().CloseHandle(old);
        this.#handles.delete(oldest);
      }
      this.#handles.set(pid, handle);
    }
    // No handle: the process is gone (or never was). Signalled: it has ended.
    return handle !== null && kernel32().WaitForSingleObject(handle, 0) !== 0;
  }
  /** Handles held now. */
  get size(): number {
    return this.#handles.size;
  }
  close(): void {
    for (const handle of this.#handles.values()) if (handle) kernel32().CloseHandle(handle);
    this.#handles.clear();
  }
}

/**
 * A channel as `listServices()` sees it.
 *
 * @example Print a channel's ends
 * ```ts
 * import { channelInfo, type ShmChannelInfo } from "./channel.ts";
 * const info: ShmChannelInfo | undefined = channelInfo("Local\\jobs");
 * if (info) console.log(`creator ${info.creatorPid}, ${info.openers} openers`);
 * ```
 */
export interface ShmChannelInfo {
  /** Always `"channel"` (pub/sub services are `"pubsub"`). */
  kind: "channel";
  /** The channel's name. */
  name: string;
  /**
   * The creator's process id, or 0 when its process is gone or it has closed its end (or only
   * its sending side, with `closeWrite()`).
   */
  creatorPid: number;
  /** Opener ends open now (their processes alive). */
  openers: number;
  /** Bytes of each of the two rings. */
  capacity: number;
}

/**
 * Reads a channel's header, without opening an end of it: who has it open and its capacity.
 *
 * @param name The channel's name.
 * @returns The channel's state, or `undefined` when no mapping of that name exists.
 * @throws {ProtocolError} When the mapping is not a channel of this layout version, or its
 * header is damaged.
 * @throws {TypeError} For a bad name.
 *
 * @example Is the server's channel up?
 * ```ts
 * import { channelInfo } from "./channel.ts";
 * const info = channelInfo("Local\\jobs");
 * console.log(info && info.creatorPid !== 0 ? "up" : "down");
 * ```
 */
export function channelInfo(name: string): ShmChannelInfo | undefined {
  const n = parseArg(nameSchema, name, "name");
  const shm = tryOpen(n);
  if (shm === undefined) return undefined;
  const watch = new ProcessWatch();
  try {
    if (shm.size < BigInt(HEADER_BYTES)) {
      throw new ProtocolError(`"${n}" is not a winipc channel (a mapping of ${shm.size} bytes)`);
    }
    const header = shm.view.int32Array(0, HEADER_BYTES / 4);
    const magic = Atomics.load(header, H.magic);
    const version = Atomics.load(header, H.version);
    if (magic !== MAGIC || version !== CHANNEL_LAYOUT_VERSION) {
      throw new ProtocolError(
        `"${n}" is not a winipc channel of layout ${CHANNEL_LAYOUT_VERSION} (magic 0x${
          (magic >>> 0).toString(16)
        }, version ${version})`,
      );
    }
    const capacity = Atomics.load(header, H.capacity);
    if (!validCapacity(capacity) || BigInt(HEADER_BYTES + 2 * capacity) > shm.size) {
      throw new ProtocolError(`Channel "${n}" has a damaged header (capacity ${capacity})`);
    }
    const pid = Atomics.load(header, H.creatorPid);
    const creatorPid = pid > 0 && Atomics.load(header, H.creatorState) === STATE_OPEN &&
        watch.alive(pid)
      ? pid
      : 0;
    let openers = 0;
    for (let i = 0; i < MAX_OPENERS; i++) {
      const opener = Atomics.load(header, SLOTS + i * 2);
      const state = Atomics.load(header, SLOTS + i * 2 + 1);
      if (opener > 0 && state === STATE_OPEN && watch.alive(opener)) openers++;
    }
    return { kind: "channel", name: n, creatorPid, openers, capacity };
  } finally {
    watch.close();
    shm.close();
  }
}

const END = Symbol("end");

/** One ring's indexes into the mapping. */
interface Ring {
  index: number;
  dataOffset: number;
  mask: number;
  reserve: number;
  tail: number;
  consumerWaiting: number;
  producerWaiting: number;
  consumerPid: number;
  consumerState: number;
  /** The consumer's read position, kept for a consumer that takes over after one died. */
  consumed: number;
  /** Set by a producer when the consumer announced it sleeps. */
  data: Event;
  /** Released by the consumer, one unit per producer that announced it waits for room. */
  space: Semaphore;
}

/**
 * One end of a shared-memory message channel. The creator receives what openers send and sends
 * to the opener that receives; an opener sends to the creator and receives what it sends.
 * Implements `AsyncIterable<Uint8Array>` and has `readable`/`writable` streams.
 *
 * The end of the stream: an opener's receiving ends when the creator closes its sending side.
 * The creator's ends when every opener that has connected so far has closed its sending side
 * (as a Rust `mpsc` receiver ends when every sender is dropped). An opener that connects after
 * that is not seen by a stream that has ended, so when senders start independently, count what
 * you expect rather than rely on the end.
 *
 * @example A worker process that answers jobs, and its client
 * ```ts
 * import { ShmChannel } from "./channel.ts";
 * // the worker: receives jobs, answers each
 * await using jobs = await ShmChannel.create("Local\jobs", { capacity: 4 << 20 });
 * for await (const job of jobs) await jobs.send(job.reverse());
 *
 * // the client, in another process
 * await using client = await ShmChannel.open("Local\jobs");
 * await client.send(new Uint8Array([1, 2, 3]));
 * console.log(await client.receive()); // Uint8Array [3, 2, 1]
 * ```
 */
export class ShmChannel implements AsyncDisposable, Disposable, AsyncIterable<Uint8Array> {
  readonly #shm: SharedMemory;
  /** The session's registry, held open while this end is open (see `_registry.ts`). */
  #registry: SharedMemory | undefined;
  readonly #view: SharedView;
  readonly #i32: Int32Array<ArrayBuffer>;
  readonly #u8: Uint8Array<ArrayBuffer>;
  readonly #capacity: number;
  readonly #in: Ring;
  readonly #out: Ring;
  readonly #slot: number; // 0 for the creator, 1+ for openers (their slot in the header)
  readonly #spinMicros: number;
  readonly #endWhenSendersClose: boolean;
  readonly #watch = new ProcessWatch();
  /** The creator's pid, read (and checked) once. */
  readonly #creatorPid: number;
  /** Set when a peer broke the protocol: every later receive throws it. */
  #broken: ProtocolError | undefined;
  /** Bytes of every incoming frame when fixed (see `channelInternals.fixedFrames`), else 0. */
  #abandonedFrame = 0;
  /** This end's read position in its incoming ring (it is the ring's only consumer). */
  #tail = 0;
  /** The read position last published to senders; the ring is zeroed up to it. */
  #published = 0;
  /** Consumed bytes that make this end publish its read position (an eighth of a ring). */
  readonly #publishEvery: number;
  /** Bytes of the frame a zero-copy receive lent out, freed by the next receive (0: none). */
  #lent = 0;
  #inflight = new Set<Promise<boolean>>();
  #closing: Promise<void> | undefined;
  #closed = false;
  #writeClosed = false;
  #consumerClaimed = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  /** `"creator"` or `"opener"`. */
  readonly role: "creator" | "opener";
  /** The channel's name. */
  readonly name: string;

  private constructor(
    name: string,
    shm: SharedMemory,
    role: "creator" | "opener",
    slot: number,
    spinMicros: number,
    events: [Event, Semaphore, Event, Semaphore],
    capacity: number,
    creatorPid: number,
    endWhenSendersClose = true,
  ) {
    this.#endWhenSendersClose = endWhenSendersClose;
    this.name = name;
    this.#shm = shm;
    this.#view = shm.view;
    this.#u8 = this.#view.bytes;
    this.#i32 = this.#view.int32Array(0, Math.floor(this.#view.length / 4));
    this.#capacity = capacity; // checked once by create/open: the mapping's word is not read again
    this.#creatorPid = creatorPid;
    this.#publishEvery = this.#capacity / 8;
    this.role = role;
    this.#slot = slot;
    this.#spinMicros = spinMicros;
    const rings = [0, 1].map((index): Ring => {
      const base = RING_BASE[index] / 4;
      return {
        index,
        dataOffset: HEADER_BYTES + index * this.#capacity,
        mask: this.#capacity - 1,
        reserve: base + R.reserve,
        tail: base + R.tail,
        consumerWaiting: base + R.consumerWaiting,
        producerWaiting: base + R.producerWaiting,
        consumerPid: base + R.consumerPid,
        consumerState: base + R.consumerState,
        consumed: base + R.consumed,
        data: events[index * 2] as Event,
        space: events[index * 2 + 1] as Semaphore,
      };
    });
    // ring 0 carries messages to the creator, ring 1 from it
    this.#in = role === "creator" ? rings[0] : rings[1];
    this.#out = role === "creator" ? rings[1] : rings[0];
  }

  static #events(
    name: string,
    security: SecurityOptions | undefined,
  ): [Event, Semaphore, Event, Semaphore] {
    const made: (Event | Semaphore)[] = [];
    try {
      made.push(Event.createOrOpen(`${name}#0d`, { security }));
      made.push(Semaphore.createOrOpen(`${name}#0s`, { security }));
      made.push(Event.createOrOpen(`${name}#1d`, { security }));
      made.push(Semaphore.createOrOpen(`${name}#1s`, { security }));
    } catch (e) {
      for (const object of made) object.close();
      throw e;
    }
    return made as [Event, Semaphore, Event, Semaphore];
  }

  /**
   * Creates a channel. Fails when the name is taken.
   *
   * @param name The channel's name (at most 248 characters; `Local\` and `Global\` work).
   * @param options `capacity` (bytes per ring, default 1 MiB), `spinMicros`, `security`.
   * @returns The creator's end.
   * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when the name is taken.
   *
   * @example
   * ```ts
   * import { ShmChannel } from "./channel.ts";
   * await using channel = await ShmChannel.create("Local\\frames", { capacity: 8 << 20 });
   * ```
   */
  static async create(name: string, options?: ShmChannelCreateOptions): Promise<ShmChannel> {
    const n = parseArg(nameSchema, name, "name");
    const opts: ShmChannelCreateOptions = parseArg(createSchema, options, "options") ?? {};
    const capacity = opts.capacity ?? 1 << 20;
    const shm = await SharedMemory.createOrOpen(n, {
      size: HEADER_BYTES + 2 * capacity,
      security: opts.security,
      init: (view) => {
        const header = view.int32Array(0, 8);
        header[H.version] = CHANNEL_LAYOUT_VERSION;
        header[H.capacity] = capacity;
        header[H.maxOpeners] = MAX_OPENERS;
        header[H.creatorPid] = Deno.pid;
        header[H.creatorState] = STATE_OPEN;
        Atomics.store(header, H.magic, MAGIC);
      },
    });
    if (!shm.created) {
      shm.close();
      throw win32Error("CreateFileMappingW", 183, {
        context: `Cannot create channel "${n}"`,
      });
    }
    let events;
    let registry: SharedMemory | undefined;
    try {
      events = ShmChannel.#events(n, opts.security);
      if (opts.listed !== false) {
        registry = await openRegistry();
        register(registry, n, "channel");
      }
    } catch (e) {
      for (const object of events ?? []) object.close();
      registry?.close();
      shm.close();
      throw e;
    }
    const channel = new ShmChannel(
      n,
      shm,
      "creator",
      0,
      opts.spinMicros ?? 50,
      events,
      capacity,
      Deno.pid,
      opts.endWhenSendersClose ?? true,
    );
    channel.#registry = registry;
    return channel;
  }

  /**
   * Opens a channel another process created.
   *
   * @param name The channel's name.
   * @param options `spinMicros`, and `timeout`/`signal` for a creator still initialising.
   * @returns An opener's end.
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is no such channel.
   * @throws {Error} When the mapping is not a channel or has another layout version.
   */
  static async open(name: string, options?: ShmChannelOpenOptions): Promise<ShmChannel> {
    const n = parseArg(nameSchema, name, "name");
    const opts: ShmChannelOpenOptions = parseArg(openSchema, options, "options") ?? {};
    // A channel whose magic word is set has finished its init (the word is written last): open it
    // without the init lock, which any process can hold.
    let shm: SharedMemory | undefined;
    try {
      shm = SharedMemory.open(n);
      if (Atomics.load(shm.view.int32Array(0, 1), H.magic) !== MAGIC) {
        shm.close();
        shm = undefined;
      }
    } catch {
      shm = undefined; // not there (yet), or not a section we map: the path below says which
    }
    shm ??= await SharedMemory.openInitialized(n, { timeout: opts.timeout, signal: opts.signal });
    try {
      const header = shm.view.int32Array(0, 8);
      const magic = Atomics.load(header, H.magic);
      if (magic !== MAGIC) {
        throw new Error(
          `Cannot open channel "${n}": the mapping is not a winipc channel (magic 0x${
            (magic >>> 0).toString(16)
          })`,
        );
      }
      if (header[H.version] !== CHANNEL_LAYOUT_VERSION) {
        throw new Error(
          `Cannot open channel "${n}": its layout version is ${
            header[H.version]
          }, this winipc speaks version ${CHANNEL_LAYOUT_VERSION}`,
        );
      }
      // Each word is read once, into a local, and checked before use.
      const capacity = Atomics.load(header, H.capacity);
      if (!validCapacity(capacity) || BigInt(HEADER_BYTES + 2 * capacity) > shm.size) {
        throw new ProtocolError(
          `Cannot open channel "${n}": its header is damaged (capacity ${capacity}, mapping of ${shm.size} bytes)`,
        );
      }
      const creatorPid = Atomics.load(header, H.creatorPid);
      if (creatorPid <= 0) {
        throw new ProtocolError(
          `Cannot open channel "${n}": its header is damaged (creator pid ${creatorPid})`,
        );
      }
      const slot = ShmChannel.#claimSlot(shm.view.int32Array(SLOTS * 4, MAX_OPENERS * 2), n);
      const events = ShmChannel.#events(n, opts.security);
      const channel = new ShmChannel(
        n,
        shm,
        "opener",
        slot,
        opts.spinMicros ?? 50,
        events,
        capacity,
        creatorPid,
      );
      // An opener keeps the registry alive too (without creating it), so that a channel whose
      // creator is gone is still listed while openers use it.
      try {
        channel.#registry = openExistingRegistry();
      } catch (e) {
        channel.close();
        throw e;
      }
      return channel;
    } catch (e) {
      shm.close();
      throw e;
    }
  }

  /** Takes a free opener slot (or one whose owner closed or died); returns its id (1-based). */
  static #claimSlot(slots: Int32Array, name: string): number {
    const watch = new ProcessWatch();
    try {
      for (let i = 0; i < MAX_OPENERS; i++) {
        const pid = Atomics.load(slots, i * 2);
        const state = Atomics.load(slots, i * 2 + 1);
        const free = pid === 0 || state === STATE_CLOSED || !watch.alive(pid);
        if (free && Atomics.compareExchange(slots, i * 2, pid, Deno.pid) === pid) {
          Atomics.store(slots, i * 2 + 1, STATE_OPEN);
          return i + 1;
        }
      }
    } finally {
      watch.close();
    }
    throw new Error(`Cannot open channel "${name}": it has ${MAX_OPENERS} openers already`);
  }

  /** Whether an opener has connected (for the creator), or `true` (for an opener). */
  get connected(): boolean {
    if (this.role === "opener") return true;
    for (let i = 0; i < MAX_OPENERS; i++) {
      if (Atomics.load(this.#i32, SLOTS + i * 2) !== 0) return true;
    }
    return false;
  }

  /**
   * Waits until an opener has connected (for the creator; an opener returns at once).
   *
   * @param options `timeout` in milliseconds (default: forever) and `signal`.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   */
  async waitForPeer(options?: ChannelOpOptions): Promise<void> {
    const opts: ChannelOpOptions = parseArg(opSchema, options, "options") ?? {};
    const ok = await pollUntil(() => this.connected || undefined, opts);
    if (!ok) {
      throw new Deno.errors.TimedOut(`Nobody opened channel "${this.name}" in time`);
    }
  }

  /** The largest message this channel carries: half a ring, less the frame header. */
  get maxMessageSize(): number {
    return this.#capacity / 2 - FRAME_HEADER;
  }

  /** Bytes of each ring. */
  get capacity(): number {
    return this.#capacity;
  }

  // ---- sending ----

  #checkSendable(data: Uint8Array): void {
    if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
    if (this.#writeClosed) throw new Deno.errors.BadResource("Channel's sending side is closed");
    if (data.length > this.maxMessageSize) {
      throw new RangeError(
        `Message of ${data.length} bytes is larger than the channel's maximum of ${this.maxMessageSize} bytes (half its capacity); create the channel with a larger capacity`,
      );
    }
    if (this.#receiverClosed()) {
      throw new Deno.errors.BrokenPipe(
        `Cannot send on channel "${this.name}": the receiver closed it`,
      );
    }
  }

  #receiverClosed(): boolean {
    // Plain loads: an advisory check on the hot path, never spun on (the Atomics calls around
    // it keep the compiler from caching the value).
    const out = this.#out;
    return out.index === 0
      ? this.#i32[H.creatorState] === STATE_CLOSED
      : this.#i32[out.consumerState] === STATE_CLOSED;
  }

  /**
   * Writes one frame if the ring has room. No FFI call unless the receiver sleeps.
   *
   * The reserve, the frame's state word (publish) and the consumer's flag go through `Atomics`.
   * The tail, the sender's pid word and the flag's re-read are plain accesses placed between `Atomics`
   * calls, which the compiler does not move them across; x86 keeps loads and stores in order, so
   * a stale tail only ever under-reports free space.
   */
  #put(data: Uint8Array): boolean {
    const i32 = this.#i32;
    const ring = this.#out;
    const capacity = this.#capacity;
    const frame = (FRAME_HEADER + data.length + 7) & ~7;
    for (;;) {
      const reserve = Atomics.load(i32, ring.reserve);
      const tail = i32[ring.tail];
      const pos = reserve & ring.mask;
      const need = pos + frame > capacity ? capacity - pos + frame : frame;
      if (((reserve - tail) >>> 0) + need > capacity) return false;
      if (Atomics.compareExchange(i32, ring.reserve, reserve, (reserve + need) | 0) !== reserve) {
        continue; // another producer claimed first
      }
      let at = ring.dataOffset + pos;
      if (need !== frame) {
        // not enough room before the end: a padding frame fills it, the message starts at 0
        Atomics.store(i32, (at >> 2) + 1, Deno.pid);
        Atomics.store(i32, at >> 2, -(capacity - pos));
        at = ring.dataOffset;
      }
      i32[(at >> 2) + 1] = Deno.pid; // the sender, for a receiver that finds the frame unpublished
      this.#u8.set(data, at + FRAME_HEADER);
      Atomics.exchange(i32, at >> 2, data.length + 1); // publish (a full barrier on x86)
      if (
        i32[ring.consumerWaiting] !== 0 &&
        Atomics.exchange(i32, ring.consumerWaiting, 0) !== 0
      ) {
        ring.data.set();
      }
      return true;
    }
  }

  /**
   * Sends a message if the ring has room now.
   *
   * @param data The message (copied into the ring), or text (sent as UTF-8).
   * @returns `false` when the ring is full (or looks full: room comes back in batches, see the
   *   module documentation).
   * @throws {RangeError} When the message is larger than {@linkcode ShmChannel.maxMessageSize}.
   * @throws {Deno.errors.BrokenPipe} When the receiver closed the channel.
   */
  trySend(data: Uint8Array | string): boolean {
    if (typeof data === "string") data = encoder.encode(data);
    checkData(data);
    this.#checkSendable(data);
    return this.#put(data);
  }

  /**
   * Sends a message, waiting (without blocking the event loop) while the ring is full.
   *
   * @param data The message (copied into the ring), or text (sent as UTF-8).
   * @param options `signal`, `timeout`.
   * @throws {RangeError} When the message is larger than {@linkcode ShmChannel.maxMessageSize}.
   * @throws {Deno.errors.BrokenPipe} When the receiver closed the channel.
   * @throws {PeerGoneError} When the receiver's process ended while the ring was full.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   */
  async send(data: Uint8Array | string, options?: ChannelOpOptions): Promise<void> {
    if (typeof data === "string") data = encoder.encode(data);
    checkData(data);
    this.#checkSendable(data);
    if (this.#put(data)) return;
    const opts: ChannelOpOptions = parseArg(opSchema, options, "options") ?? {};
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + opts.timeout;
    const ring = this.#out;
    for (;;) {
      if (this.#spin(() => this.#put(data))) return;
      // Announce the wait (a counter: several producers may wait), then look once more.
      Atomics.add(this.#i32, ring.producerWaiting, 1);
      if (this.#put(data)) return; // the unit announced for us may wake a later wait: harmless
      const slice = Math.min(250, Math.max(0, deadline - performance.now()));
      const woken = await this.#wait(ring.space, slice, opts.signal);
      if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
      if (!woken) {
        this.#checkReceiverAlive();
        if (performance.now() >= deadline) {
          throw new Deno.errors.TimedOut(
            `Cannot send on channel "${this.name}": the ring stayed full`,
          );
        }
      }
      this.#checkSendable(data);
      if (this.#put(data)) return;
    }
  }

  /** Waits on one of the channel's objects, tracked so that close() can wait for it to return. */
  async #wait(
    object: Event | Semaphore,
    ms: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const timeout = Math.ceil(ms);
    const waiting = object instanceof Event
      ? object.wait({ timeout, signal })
      : object.acquire({ timeout, signal }).then(() => true, (e) => {
        if (e instanceof Deno.errors.TimedOut) return false;
        throw e;
      });
    this.#inflight.add(waiting);
    try {
      return await waiting;
    } finally {
      this.#inflight.delete(waiting);
    }
  }

  #checkReceiverAlive(): void {
    const out = this.#out;
    const pid = out.index === 0 ? this.#creatorPid : Atomics.load(this.#i32, out.consumerPid);
    if (pid > 0 && !this.#watch.alive(pid)) {
      throw new PeerGoneError(pid, `Channel "${this.name}": the receiving process ${pid} ended`);
    }
  }

  /** Spins for up to spinMicros, checking `ready` every few dozen rounds of the clock. */
  #spin<T>(ready: () => T): T | false {
    if (this.#spinMicros === 0) return false;
    const until = performance.now() + this.#spinMicros / 1000;
    for (let i = 0;; i++) {
      const value = ready();
      if (value) return value;
      if ((i & 31) === 31 && performance.now() > until) return false;
    }
  }

  /**
   * Half-closes: ends this end's sending side. The receiver reads every message sent before it,
   * then the end of the stream (`receive()` returns `null`, its iterator ends); this end can still
   * receive. (An opener's half-close ends only its own sending.) A second call does nothing. The
   * work is done when it returns (it only flips shared memory and wakes the receiver); it returns
   * a Promise as every `closeWrite()` does (see CONTRIBUTING.md), so `await` it.
   *
   * @throws {Deno.errors.BadResource} When the channel is closed (its `close()` ended the sending
   * side already).
   */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Channel is closed"));
    this.#endSending();
    return Promise.resolve();
  }

  /** Marks this end's sending side closed and wakes the receiver; does nothing the second time. */
  #endSending(): void {
    if (this.#writeClosed || this.#closed) return;
    this.#writeClosed = true;
    if (this.role === "creator") Atomics.store(this.#i32, H.creatorState, STATE_CLOSED);
    else Atomics.store(this.#i32, SLOTS + (this.#slot - 1) * 2 + 1, STATE_CLOSED);
    const ring = this.#out;
    if (Atomics.exchange(this.#i32, ring.consumerWaiting, 0) !== 0) ring.data.set();
  }

  // ---- receiving ----

  #claimConsumer(): void {
    if (this.#consumerClaimed) return;
    const ring = this.#in;
    // The creator is ring 0's only consumer; ring 1's is the first opener that receives (another
    // end in this same process counts as another receiver: each end keeps its own read position).
    if (ring.index === 0) {
      this.#startConsuming();
      return;
    }
    const pid = Atomics.load(this.#i32, ring.consumerPid);
    if (
      (pid !== 0 && this.#watch.alive(pid) &&
        Atomics.load(this.#i32, ring.consumerState) !== STATE_CLOSED) ||
      Atomics.compareExchange(this.#i32, ring.consumerPid, pid, Deno.pid) !== pid
    ) {
      throw new Deno.errors.Busy(
        `Cannot receive on channel "${this.name}": process ${pid} receives on it already`,
      );
    }
    Atomics.store(this.#i32, ring.consumerState, STATE_OPEN);
    this.#startConsuming();
  }

  /** Takes up the read position where the ring's previous consumer (if any) left it. */
  #startConsuming(): void {
    const ring = this.#in;
    const published = Atomics.load(this.#i32, ring.tail);
    const consumed = Atomics.load(this.#i32, ring.consumed);
    const reserve = Atomics.load(this.#i32, ring.reserve);
    // Positions are multiples of 8, and the read position is at most a ring behind the reserve.
    if ((published & 7) !== 0 || ((reserve - published) >>> 0) > this.#capacity) {
      throw this.#fail(`the read position ${published} (reserve ${reserve}) is out of bounds`);
    }
    this.#published = published;
    // A consumer that died may have read past what it published: not again.
    this.#tail = (consumed & 7) === 0 && ((consumed - published) >>> 0) <= this.#capacity &&
        ((reserve - consumed) >>> 0) <= this.#capacity
      ? consumed
      : published;
    this.#consumerClaimed = true;
  }

  /**
   * Frees the frame a zero-copy receive lent out. Its space goes back to senders in batches (see
   * {@linkcode ShmChannel.#publish}): publishing the read position on every message would move
   * its cache line between the two processes' cores twice per round trip.
   */
  #release(): void {
    const bytes = this.#lent;
    if (bytes === 0) return;
    this.#lent = 0;
    this.#tail = (this.#tail + bytes) | 0;
    this.#i32[this.#in.consumed] = this.#tail; // plain: read only by a consumer taking over
    if (
      ((this.#tail - this.#published) >>> 0) >= this.#publishEvery ||
      this.#i32[this.#in.producerWaiting] !== 0
    ) {
      this.#publish();
    }
  }

  /**
   * Gives senders the space this end has consumed: zeroes it (a frame's state word must read 0
   * until a sender publishes it, and the next frames may start anywhere in it), publishes the
   * read position, and wakes senders that wait for room.
   */
  #publish(): void {
    const ring = this.#in;
    const from = this.#published;
    const bytes = (this.#tail - from) >>> 0;
    // Every frame read was claimed by a sender: the read position never passes the reserve. (A
    // frame written without a claim is caught here, once per batch, not on every message.)
    const reserve = Atomics.load(this.#i32, ring.reserve);
    if (bytes > this.#capacity || ((reserve - this.#tail) >>> 0) > this.#capacity) {
      this.#fail(
        `the read position ${this.#tail} passed what senders claimed (reserve ${reserve})`,
      );
      return;
    }
    if (bytes !== 0) {
      const start = from & ring.mask;
      const first = Math.min(bytes, this.#capacity - start);
      const at = ring.dataOffset + start;
      this.#u8.fill(0, at, at + first);
      if (first < bytes) this.#u8.fill(0, ring.dataOffset, ring.dataOffset + bytes - first);
      this.#published = this.#tail;
    }
    Atomics.store(this.#i32, ring.tail, this.#tail); // a full barrier before the load
    if (Atomics.load(this.#i32, ring.producerWaiting) !== 0) {
      // A count any peer may write: at most one unit per opener (and the creator) is useful.
      const waiting = Atomics.exchange(this.#i32, ring.producerWaiting, 0);
      if (waiting > 0) this.#wake(ring.space, Math.min(waiting, MAX_OPENERS + 1));
    }
  }

  /**
   * Releases units of a ring's space semaphore. A count already at its maximum (units piled up
   * by a peer's waiting count, or a semaphore some other program created first with a low
   * maximum) means waiters have all the wake-ups they need: that error alone is not raised.
   */
  #wake(space: Semaphore, count: number): void {
    try {
      space.release(count);
    } catch (e) {
      if (!(e instanceof Win32Error && e.code === ERROR_TOO_MANY_POSTS)) throw e;
    }
  }

  /** Ends receiving on this channel: a peer wrote a word out of bounds. */
  #fail(what: string): ProtocolError {
    this.#broken ??= new ProtocolError(`Channel "${this.name}": ${what}`);
    return this.#broken;
  }

  /** Takes the next frame: a view of it (lent until #release) or undefined when none is ready. */
  #take(): Uint8Array | undefined {
    this.#release();
    if (this.#broken) throw this.#broken;
    const i32 = this.#i32;
    const ring = this.#in;
    const capacity = this.#capacity;
    // At most two rounds: a padding frame (which always reaches the ring's end), then a frame.
    for (let round = 0;; round++) {
      const pos = this.#tail & ring.mask;
      const at = ring.dataOffset + pos;
      const state = Atomics.load(i32, at >> 2); // read once: the peer may rewrite the word
      if (state === 0) {
        // Nothing to read. A sender that waits for room gets what was consumed.
        if (i32[ring.producerWaiting] !== 0) this.#publish();
        return undefined;
      }
      // Checked against what this end knows alone (no other word of the mapping is read): what
      // it has consumed but not yet published plus this frame stays within one ring, so that
      // #publish zeroes only this ring. (That the frame was claimed is checked by #publish.)
      const bytes = state < 0 ? -state : (FRAME_HEADER + state - 1 + 7) & ~7;
      const unpublished = ((this.#tail - this.#published) >>> 0) + bytes;
      if (state < 0) {
        // padding to the ring's end, consumed like a frame; it never follows another padding
        if (bytes !== capacity - pos || round !== 0 || unpublished > capacity) {
          throw this.#fail(
            `a padding frame of ${bytes} bytes at offset ${pos} does not end at the ring's end (${capacity} bytes)`,
          );
        }
        this.#lent = bytes;
        this.#release();
        if (this.#broken) throw this.#broken;
        continue;
      }
      const length = state - 1;
      if (
        length > capacity / 2 - FRAME_HEADER || pos + bytes > capacity || unpublished > capacity
      ) {
        throw this.#fail(
          `a frame length of ${length} bytes at offset ${pos} is past the ring (${capacity} bytes)`,
        );
      }
      this.#lent = bytes;
      return this.#u8.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
    }
  }

  static {
    channelInternals.fixedFrames = (channel, bytes) => {
      channel.#abandonedFrame = bytes;
    };
  }

  /**
   * Steps over a frame whose sender died before publishing it, on a ring whose frames all have
   * one size. Returns whether it did.
   */
  #skipAbandoned(reserve: number): boolean {
    const bytes = this.#abandonedFrame;
    const claimed = (reserve - this.#tail) >>> 0;
    if ((this.#tail & this.#in.mask) % bytes !== 0 || claimed < bytes || claimed > this.#capacity) {
      return false;
    }
    this.#lent = bytes;
    this.#release();
    if (this.#published !== this.#tail) this.#publish();
    return true;
  }

  /** Whether the peers that send to this end are gone; throws when one died. */
  #senderState(): typeof END | undefined {
    const i32 = this.#i32;
    const ring = this.#in;
    const reserve = Atomics.load(i32, ring.reserve);
    const tail = this.#tail;
    if (reserve !== tail) {
      // a frame is claimed but not published: is its writer still alive?
      const at = ring.dataOffset + (tail & ring.mask);
      // The sender's pid, 0 until it writes it. (Its slot would not do: a slot whose owner died
      // is taken by the next opener.) Pids are below 2^31.
      const pid = Atomics.load(i32, (at >> 2) + 1);
      if (pid < 0) {
        throw this.#fail(`a frame names the sender pid ${pid}, which is not a process id`);
      }
      if (pid > 0 && !this.#watch.alive(pid)) {
        if (this.#abandonedFrame !== 0 && this.#skipAbandoned(reserve)) return undefined;
        throw new PeerGoneError(
          pid,
          `Channel "${this.name}": process ${pid} ended in the middle of a message`,
        );
      }
      return undefined;
    }
    if (ring.index === 1) {
      // the creator sends to openers
      const pid = this.#creatorPid;
      if (Atomics.load(i32, H.creatorState) === STATE_CLOSED) return END;
      if (!this.#watch.alive(pid)) {
        throw new PeerGoneError(pid, `Channel "${this.name}": the creating process ${pid} ended`);
      }
      return undefined;
    }
    if (!this.#endWhenSendersClose) return undefined;
    let seen = 0;
    let dead = 0;
    for (let i = 0; i < MAX_OPENERS; i++) {
      const pid = Atomics.load(i32, SLOTS + i * 2);
      if (pid <= 0) continue;
      seen++;
      const state = Atomics.load(i32, SLOTS + i * 2 + 1);
      if (state === STATE_CLOSED) continue;
      if (this.#watch.alive(pid)) return undefined; // an opener is still there
      dead = pid;
    }
    if (seen === 0) return undefined; // nobody has connected yet
    if (dead) {
      throw new PeerGoneError(
        dead,
        `Channel "${this.name}": process ${dead} ended without closing the channel`,
      );
    }
    return END;
  }

  /**
   * Receives the next message if one is ready now.
   *
   * @returns A copy of the message, or `undefined` when none is ready.
   */
  tryReceive(): Uint8Array | undefined {
    const view = this.tryReceiveView();
    if (view === undefined) return undefined;
    const copy = view.slice();
    this.#release();
    return copy;
  }

  /**
   * Receives the next message if one is ready now, without copying it: the array is a view of the
   * ring, valid until the next receive on this end (or `close()`). With no promise, no copy and no
   * FFI call, this is the fastest receive: poll it in a loop when both processes may spin.
   *
   * @returns The message view, or `undefined` when none is ready.
   *
   * @example Spin for a reply, then fall back to waiting
   * ```ts
   * import { ShmChannel } from "./channel.ts";
   * await using channel = await ShmChannel.open("Local\jobs");
   * channel.trySend(new Uint8Array([1, 2, 3]));
   * let reply = channel.tryReceiveView();
   * for (let i = 0; reply === undefined && i < 10_000; i++) reply = channel.tryReceiveView();
   * reply ??= await channel.receiveView() ?? undefined;
   * ```
   */
  tryReceiveView(): Uint8Array | undefined {
    if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
    this.#claimConsumer();
    return this.#take();
  }

  /**
   * Receives the next message without copying it: the array is a view of the ring, valid until
   * the next receive on this end (or `close()`); the ring space is freed then.
   *
   * @param options `signal`, `timeout`.
   * @returns The message view, or `null` when every sender has closed.
   */
  async receiveView(options?: ChannelOpOptions): Promise<Uint8Array | null> {
    if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
    this.#claimConsumer();
    const now = this.#take();
    if (now !== undefined) return now;
    const opts: ChannelOpOptions = parseArg(opSchema, options, "options") ?? {};
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + opts.timeout;
    const ring = this.#in;
    for (;;) {
      const spun = this.#spin(() => this.#take());
      if (spun) return spun;
      Atomics.exchange(this.#i32, ring.consumerWaiting, 1);
      const after = this.#take();
      if (after !== undefined) {
        Atomics.store(this.#i32, ring.consumerWaiting, 0);
        return after;
      }
      if (this.#senderState() === END) return null;
      if (this.#published !== this.#tail) this.#publish(); // before sleeping, give back all room
      const slice = Math.min(250, Math.max(0, deadline - performance.now()));
      const woken = await this.#wait(ring.data, slice, opts.signal);
      if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
      if (!woken) {
        if (performance.now() >= deadline) {
          throw new Deno.errors.TimedOut(`Nothing received on channel "${this.name}" in time`);
        }
      }
      const next = this.#take();
      if (next !== undefined) return next;
    }
  }

  /**
   * Receives the next message, waiting without blocking the event loop.
   *
   * @param options `signal`, `timeout`.
   * @returns A copy of the message, or `null` when every sender has closed.
   * @throws {PeerGoneError} When a sender's process ended without closing.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   */
  async receive(options?: ChannelOpOptions): Promise<Uint8Array | null> {
    if (this.#closed) throw new Deno.errors.BadResource("Channel is closed");
    this.#claimConsumer();
    const view = this.#take() ?? await this.receiveView(options);
    if (view === null) return null;
    const copy = view.slice();
    this.#release();
    return copy;
  }

  /** Messages until every sender has closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const message = await this.receive();
      if (message === null) return;
      yield message;
    }
  }

  /**
   * The received messages as a stream, made on first access and the same one after. It reads
   * only when its reader asks (no read-ahead), so a stream and direct `receive` calls can take
   * turns.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const message = await this.receive();
        if (message === null) controller.close();
        else controller.enqueue(message);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * A stream whose chunks are sent as messages, made on first access and the same one after;
   * closing it closes this end's sending side (as {@linkcode ShmChannel.closeWrite}).
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.send(chunk),
      close: () => this.#endSending(),
    });
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Closes this end: ends its sending side, unmaps the channel and closes the events (after any
   * wait in flight has returned). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#endSending();
    this.#release();
    if (this.#consumerClaimed && this.#published !== this.#tail) this.#publish();
    this.#closed = true;
    const ring = this.#in;
    if (ring.index === 1 && this.#consumerClaimed) {
      Atomics.store(this.#i32, ring.consumerState, STATE_CLOSED);
    }
    // Wake this end's own waiters so they see the close; the handles close once they return.
    const objects = [this.#in.data, this.#in.space, this.#out.data, this.#out.space];
    if (this.#inflight.size) {
      this.#in.data.set();
      this.#out.space.release();
    }
    this.#closing = Promise.allSettled([...this.#inflight]).then(() => {
      for (const object of objects) object.close();
    });
    this.#watch.close();
    this.#shm.close();
    this.#registry?.close();
    this.#registry = undefined;
  }

  /** Closes the channel. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the channel. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#closing;
  }
}
