/**
 * Publish/subscribe over shared memory with zero-copy loans: one publisher, up to 32 subscribers,
 * one named mapping.
 *
 * The mapping holds a pool of fixed-size samples. The publisher *loans* a sample (a writable
 * `Uint8Array` over its bytes in the mapping), writes in place and publishes it; every subscriber
 * then receives a view of the same bytes, through a read-only view of the mapping (a write through
 * it is an access violation that ends that subscriber's process). A sample goes back to the pool
 * when every subscriber it was published to has released it: each sample carries a mask of the
 * subscribers that hold it (queued or received), and a subscriber's release clears its bit.
 *
 * Each subscriber has a bounded queue (`history` samples). When it is full the service's overflow
 * policy, chosen at creation, applies: `"drop-oldest"` takes the oldest queued sample away from
 * that subscriber and counts it in its {@linkcode Subscriber.dropped}; `"block"` makes the
 * publisher wait for room. A subscriber may hold at most `maxHeld` received samples at once, so
 * the pool (`history + maxSubscribers * maxHeld + 2` samples) never runs dry while every
 * subscriber follows the rules.
 *
 * Peers are untrusted: every index, count and pid read from the mapping is checked once, into a
 * local, before use, and a peer that breaks the layout is cut off (a subscriber) or reported with a
 * {@linkcode PubSubError} (the publisher), never followed out of bounds. A subscriber whose process
 * ends without closing is found by its process handle whenever the publisher waits (and at least
 * once a second while it publishes): its bit is cleared from every sample and its slot freed, so a
 * crashed subscriber never starves the publisher. Subscribers may join at any time and get what is
 * published from then on.
 *
 * Wake-up: a waiting side spins briefly (`spinMicros`), then sets a "sleeping" flag in the mapping,
 * looks once more and blocks on a named event on a worker thread. The other side sets the event
 * only when the flag is set, so while both sides are active no sample costs an FFI call.
 *
 * Services register themselves in a small registry mapping of the session
 * (`Local\winipc-pubsub-registry`, see `_registry.ts`), which {@linkcode listServices} reads,
 * together with the shared-memory channels of `channel.ts`, which register there too.
 *
 * @example A publisher and a subscriber
 * ```ts
 * import { Publisher, Subscriber } from "./pubsub.ts";
 * // the publisher
 * using pub = await Publisher.create("Local\\frames", { sampleSize: 1 << 20 });
 * const sample = await pub.loan();
 * sample.data[0] = 42; // write in place
 * await sample.publish(1);
 * // a subscriber, in another process
 * using sub = await Subscriber.open("Local\\frames");
 * using frame = await sub.receive();
 * console.log(frame?.data[0]); // 42
 * ```
 *
 * @module
 */
import { z } from "zod";
import { kernel32, PROCESS_QUERY_LIMITED_INFORMATION, SYNCHRONIZE } from "../ffi/kernel32.ts";
import { Win32Error, WinipcError } from "../ffi/error.ts";
import { channelInfo, PeerGoneError, ProtocolError, type ShmChannelInfo } from "./channel.ts";
import {
  openExistingRegistry,
  openRegistry,
  prune,
  register,
  registryEntries,
  tryOpen,
} from "./_registry.ts";
import { SharedMemory, type SharedView } from "./shm.ts";
import { Event } from "./sync.ts";
import { type IoOptions, ioOptionsSchema, objectNameSchema, parseArg } from "./_validate.ts";

export { PeerGoneError, type ShmChannelInfo } from "./channel.ts";

/** "PSUB" little-endian: the first word of every pub/sub mapping. */
const MAGIC = 0x4255_5350;
/**
 * The layout version this module speaks: a service made by a winipc with another layout is refused
 * with an error naming both versions.
 *
 * @example Say which layout a process speaks
 * ```ts
 * import { PUBSUB_LAYOUT_VERSION } from "./pubsub.ts";
 * console.log(`pub/sub layout ${PUBSUB_LAYOUT_VERSION}`);
 * ```
 */
export const PUBSUB_LAYOUT_VERSION = 1;

/** Header words (Int32 indexes). */
const H = {
  magic: 0,
  version: 1,
  sampleSize: 2,
  poolSize: 3,
  history: 4,
  maxSubscribers: 5,
  policy: 6,
  maxHeld: 7,
  publisherPid: 16,
  publisherState: 17,
  closing: 32, // set by a subscriber that closes: the publisher sweeps slots
  activeMask: 48, // bit i: slot i receives samples
  publisherWaiting: 64, // the publisher sleeps: subscribers set its event
};
const HEADER_BYTES = 4096;
/** Subscriber slots: 128 bytes each. Word offsets inside a slot. */
const SLOT_BYTES = 128;
const S = { pid: 0, state: 1, waiting: 2, dropped: 3, head: 16, tail: 24 };
/** Per-sample metadata: holders mask, length, sequence (low and high words). */
const META_WORDS = 4;
const MAX_SUBSCRIBERS = 32;
const MAX_POOL = 65_536;

const FREE = 0;
const ACTIVE = 1;
const CLOSED = 2;
// publisherState 0: no publisher yet
const PUB_OPEN = 1;
const PUB_CLOSED = 2;

/**
 * How a full subscriber queue is handled, chosen when the service is created: `"drop-oldest"`
 * takes the oldest queued sample from that subscriber (counted in {@linkcode Subscriber.dropped}),
 * `"block"` makes the publisher wait for room.
 *
 * @example A service where no subscriber loses a sample
 * ```ts
 * import { type OverflowPolicy, Publisher } from "./pubsub.ts";
 * const overflow: OverflowPolicy = "block";
 * using pub = await Publisher.create("Local\\orders", { overflow });
 * ```
 */
export type OverflowPolicy = "drop-oldest" | "block";

/**
 * The shape of a service, fixed by whoever creates it.
 *
 * @example Small samples, deep history, the publisher waits for slow subscribers
 * ```ts
 * import type { PubSubServiceOptions } from "./pubsub.ts";
 * const shape: PubSubServiceOptions = { sampleSize: 64, history: 1024, overflow: "block" };
 * ```
 */
export interface PubSubServiceOptions {
  /** Bytes of each sample: 1 to 256 MiB. Default 4096. */
  sampleSize?: number;
  /** Samples each subscriber's queue holds: 1 to 4096. Default 16. */
  history?: number;
  /** Subscribers the service takes at once: 1 to 32. Default 16. */
  maxSubscribers?: number;
  /** Received samples a subscriber may hold at once: 1 to 64. Default 4. */
  maxHeld?: number;
  /** What a full subscriber queue does: `"drop-oldest"` (default) or `"block"` the publisher. */
  overflow?: OverflowPolicy;
}

/**
 * Options of {@linkcode Publisher.create}.
 *
 * @example A blocking service of 64-byte samples
 * ```ts
 * import { Publisher, type PublisherOptions } from "./pubsub.ts";
 * const options: PublisherOptions = { sampleSize: 64, overflow: "block", spinMicros: 200 };
 * using pub = await Publisher.create("Local\\ticks", options);
 * ```
 */
export interface PublisherOptions extends PubSubServiceOptions {
  /** Microseconds a waiting publisher spins before it sleeps. Default 50. */
  spinMicros?: number;
}

/**
 * Options of {@linkcode Subscriber.open}.
 *
 * @example Create the service when no publisher has yet
 * ```ts
 * import { Subscriber, type SubscriberOptions } from "./pubsub.ts";
 * const options: SubscriberOptions = { create: true, sampleSize: 256 };
 * using sub = await Subscriber.open("Local\\ticks", options);
 * ```
 */
export interface SubscriberOptions extends PubSubServiceOptions {
  /**
   * Create the service (with the shape given here) when it does not exist. Default `false`: a
   * missing service is a `Deno.errors.NotFound`. A subscriber takes an existing service as it is:
   * the shape options only apply when it creates one.
   */
  create?: boolean;
  /** Microseconds an idle subscriber spins before it sleeps. Default 50. */
  spinMicros?: number;
}

/**
 * Options of a wait (loan, publish, receive).
 *
 * @example Give up after a second
 * ```ts
 * import { Subscriber } from "./pubsub.ts";
 * using sub = await Subscriber.open("Local\\ticks");
 * const sample = await sub.receive({ timeout: 1000 });
 * ```
 */
export interface PubSubWaitOptions extends IoOptions {
  /** Milliseconds to wait at most; `Infinity` by default. */
  timeout?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/**
 * A pub/sub service as {@linkcode listServices} sees it.
 *
 * @example Print them
 * ```ts
 * import { listServices, type PubSubServiceInfo } from "./pubsub.ts";
 * const services: PubSubServiceInfo[] = listServices()
 *   .filter((s): s is PubSubServiceInfo => s.kind === "pubsub");
 * for (const s of services) console.log(s.name, s.publisherPid, s.subscribers, s.sampleSize);
 * ```
 */
export interface PubSubServiceInfo {
  /** Always `"pubsub"` (channels are `"channel"`). */
  kind: "pubsub";
  /** The service's name. */
  name: string;
  /** The publisher's process id, or 0 when it has none now. */
  publisherPid: number;
  /** Subscribers attached now. */
  subscribers: number;
  /** Bytes of each sample. */
  sampleSize: number;
  /** Samples each subscriber's queue holds. */
  history: number;
  /** The overflow policy. */
  overflow: OverflowPolicy;
}

/**
 * A pub/sub mapping that breaks its layout, or a service that cannot be used as asked.
 *
 * @example Tell a damaged service from other errors
 * ```ts
 * import { PubSubError, Subscriber } from "./pubsub.ts";
 * try {
 *   using sub = await Subscriber.open("Local\\ticks");
 * } catch (e) {
 *   if (e instanceof PubSubError) console.log(`unusable: ${e.message}`);
 * }
 * ```
 */
export class PubSubError extends WinipcError {
  /**
   * Makes the error.
   *
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message, "ERR_PUBSUB");
    this.name = "PubSubError";
  }
}

const nameSchema = objectNameSchema.refine((s) => s.length <= 240, {
  error: "must be at most 240 characters",
});
const int = (min: number, max: number, unit = "") =>
  z.number({ error: "must be a number" }).int({ error: "must be an integer" })
    .min(min, { error: `must be at least ${min}${unit}` })
    .max(max, { error: `must be at most ${max}${unit}` });
const spinSchema = z.number({ error: "must be a number" })
  .min(0, { error: "must not be negative" })
  .max(1_000_000, { error: "must be at most 1,000,000 microseconds" });
const shape = {
  sampleSize: int(1, 256 << 20, " bytes").optional(),
  history: int(1, 4096).optional(),
  maxSubscribers: int(1, MAX_SUBSCRIBERS).optional(),
  maxHeld: int(1, 64).optional(),
  overflow: z.enum(["drop-oldest", "block"], { error: 'must be "drop-oldest" or "block"' })
    .optional(),
  spinMicros: spinSchema.optional(),
};
const publisherSchema = z.object(shape).strict().optional();
const subscriberSchema = z.object({ ...shape, create: z.boolean().optional() }).strict()
  .optional();
const waitSchema = ioOptionsSchema.optional();

/** The layout every process derives from the header's shape words. */
interface Layout {
  sampleSize: number;
  poolSize: number;
  history: number;
  maxSubscribers: number;
  maxHeld: number;
  policy: number;
  /** Byte offsets. */
  queues: number;
  meta: number;
  data: number;
  stride: number;
  total: number;
}

const align = (n: number, to: number) => Math.ceil(n / to) * to;

function layoutOf(
  sampleSize: number,
  history: number,
  maxSubscribers: number,
  maxHeld: number,
  policy: number,
): Layout {
  const poolSize = history + maxSubscribers * maxHeld + 2;
  const queues = HEADER_BYTES + MAX_SUBSCRIBERS * SLOT_BYTES;
  const meta = align(queues + maxSubscribers * history * 4, 64);
  const data = align(meta + poolSize * META_WORDS * 4, 4096);
  const stride = align(sampleSize, 64);
  return {
    sampleSize,
    poolSize,
    history,
    maxSubscribers,
    maxHeld,
    policy,
    queues,
    meta,
    data,
    stride,
    total: data + poolSize * stride,
  };
}

function resolveShape(opts: PubSubServiceOptions): Layout {
  return layoutOf(
    opts.sampleSize ?? 4096,
    opts.history ?? 16,
    opts.maxSubscribers ?? 16,
    opts.maxHeld ?? 4,
    opts.overflow === "block" ? 1 : 0,
  );
}

/** Reads the header's shape once, checks every word, and derives the layout. */
function readLayout(i32: Int32Array, size: bigint, name: string): Layout {
  const magic = Atomics.load(i32, H.magic);
  if (magic !== MAGIC) {
    throw new PubSubError(
      `Cannot open pub/sub service "${name}": the mapping is not a winipc pub/sub service (magic 0x${
        (magic >>> 0).toString(16)
      })`,
    );
  }
  const version = i32[H.version];
  if (version !== PUBSUB_LAYOUT_VERSION) {
    throw new PubSubError(
      `Cannot open pub/sub service "${name}": its layout version is ${version}, this winipc speaks version ${PUBSUB_LAYOUT_VERSION}`,
    );
  }
  const sampleSize = i32[H.sampleSize];
  const history = i32[H.history];
  const maxSubscribers = i32[H.maxSubscribers];
  const maxHeld = i32[H.maxHeld];
  const policy = i32[H.policy];
  const ok = sampleSize >= 1 && sampleSize <= 256 << 20 && history >= 1 && history <= 4096 &&
    maxSubscribers >= 1 && maxSubscribers <= MAX_SUBSCRIBERS && maxHeld >= 1 && maxHeld <= 64 &&
    (policy === 0 || policy === 1);
  const layout = ok ? layoutOf(sampleSize, history, maxSubscribers, maxHeld, policy) : undefined;
  if (
    !layout || i32[H.poolSize] !== layout.poolSize || layout.poolSize > MAX_POOL ||
    BigInt(layout.total) > size
  ) {
    throw new PubSubError(`Cannot open pub/sub service "${name}": its header is damaged`);
  }
  return layout;
}

function checkShape(layout: Layout, opts: PubSubServiceOptions, name: string): void {
  const given: [keyof PubSubServiceOptions, unknown, unknown][] = [
    ["sampleSize", opts.sampleSize, layout.sampleSize],
    ["history", opts.history, layout.history],
    ["maxSubscribers", opts.maxSubscribers, layout.maxSubscribers],
    ["maxHeld", opts.maxHeld, layout.maxHeld],
    ["overflow", opts.overflow, layout.policy === 1 ? "block" : "drop-oldest"],
  ];
  for (const [key, want, have] of given) {
    if (want !== undefined && want !== have) {
      throw new PubSubError(
        `Pub/sub service "${name}" exists with ${key} ${JSON.stringify(have)}, not ${
          JSON.stringify(want)
        }`,
      );
    }
  }
}

/** Liveness of other processes, by pid: one handle each, kept while the object is open. */
class ProcessWatch {
  #handles = new Map<number, Deno.PointerValue>();
  alive(pid: number): boolean {
    if (pid === Deno.pid) return true;
    if (!(pid > 0)) return false;
    let handle = this.#handles.get(pid);
    if (handle === undefined) {
      handle = kernel32().OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
      this.#handles.set(pid, handle);
    }
    // No handle: the process is gone. Signalled: it has ended.
    return handle !== null && kernel32().WaitForSingleObject(handle, 0) !== 0;
  }
  forget(pid: number): void {
    const handle = this.#handles.get(pid);
    if (handle) kernel32().CloseHandle(handle);
    this.#handles.delete(pid);
  }
  close(): void {
    for (const handle of this.#handles.values()) if (handle) kernel32().CloseHandle(handle);
    this.#handles.clear();
  }
}

// ---- discovery ----

/**
 * A pub/sub service or a shared-memory channel, as {@linkcode listServices} sees it: tell them
 * apart by `kind`.
 *
 * @example Print each kind its own way
 * ```ts
 * import { listServices, type ShmServiceInfo } from "./pubsub.ts";
 * const all: ShmServiceInfo[] = listServices();
 * for (const s of all) {
 *   if (s.kind === "pubsub") console.log(s.name, "publisher", s.publisherPid);
 *   else console.log(s.name, "channel of", s.creatorPid);
 * }
 * ```
 */
export type ShmServiceInfo = PubSubServiceInfo | ShmChannelInfo;

/**
 * The pub/sub services and shared-memory channels of this session: every one that some process
 * has open now and that registered (services always do; channels unless created with
 * `listed: false`, which `connectShm`'s per-connection channels are). They are read from a small
 * registry mapping of the session (`Local\winipc-pubsub-registry`, 128 entries); an entry whose
 * mapping no longer exists (every process that had it closed it or ended) is pruned here.
 *
 * @returns One entry per service or channel, sorted by name (a pub/sub service before a channel
 * of the same name).
 *
 * @example List them
 * ```ts
 * import { listServices } from "./pubsub.ts";
 * for (const s of listServices()) {
 *   if (s.kind === "pubsub") {
 *     console.log(`${s.name}: publisher ${s.publisherPid}, ${s.subscribers} subscribers`);
 *   } else {
 *     console.log(`${s.name}: channel, creator ${s.creatorPid}, ${s.openers} openers`);
 *   }
 * }
 * ```
 */
export function listServices(): ShmServiceInfo[] {
  const registry = openExistingRegistry();
  if (registry === undefined) return []; // nothing is registered now
  using _registry = registry;
  const found = new Map<string, ShmServiceInfo>();
  using watch = {
    w: new ProcessWatch(),
    [Symbol.dispose]() {
      this.w.close();
    },
  };
  for (const entry of registryEntries(registry)) {
    const key = `${entry.kind}\0${entry.name}`;
    if (found.has(key)) continue; // listed twice (see _registry.ts): once is enough
    if (entry.kind === "channel") {
      let info: ShmChannelInfo | undefined;
      try {
        info = channelInfo(entry.name);
      } catch (e) {
        if (e instanceof ProtocolError) continue; // a mapping of that name that is not ours
        if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
        info = undefined; // not a channel name at all (a damaged entry)
      }
      if (info === undefined) prune(registry, entry);
      else found.set(key, info);
      continue;
    }
    const name = entry.name;
    const shm = nameSchema.safeParse(name).success ? tryOpen(name) : undefined;
    if (shm === undefined) {
      prune(registry, entry); // the service is gone (or the name is not one of ours)
      continue;
    }
    try {
      const i32 = shm.view.int32Array(0, HEADER_BYTES / 4 + (MAX_SUBSCRIBERS * SLOT_BYTES) / 4);
      const layout = readLayout(i32, shm.size, name);
      const pid = Atomics.load(i32, H.publisherPid);
      const publisherPid = Atomics.load(i32, H.publisherState) === PUB_OPEN &&
          watch.w.alive(pid)
        ? pid
        : 0;
      let subscribers = 0;
      for (let s = 0; s < layout.maxSubscribers; s++) {
        const base = (HEADER_BYTES + s * SLOT_BYTES) / 4;
        const spid = Atomics.load(i32, base + S.pid);
        if (Atomics.load(i32, base + S.state) === ACTIVE && watch.w.alive(spid)) subscribers++;
      }
      found.set(key, {
        kind: "pubsub",
        name,
        publisherPid,
        subscribers,
        sampleSize: layout.sampleSize,
        history: layout.history,
        overflow: layout.policy === 1 ? "block" : "drop-oldest",
      });
    } catch (e) {
      if (!(e instanceof PubSubError)) throw e; // a mapping of that name that is not ours
    } finally {
      shm.close();
    }
  }
  return [...found.values()].sort((a, b) =>
    a.name < b.name
      ? -1
      : a.name > b.name
      ? 1
      : a.kind === b.kind
      ? 0
      : a.kind === "pubsub"
      ? -1
      : 1
  );
}

// ---- what both ends share ----

/** The mapping, its layout and the views both ends use. */
class Service {
  readonly i32: Int32Array<ArrayBuffer>;
  readonly u8: Uint8Array<ArrayBuffer>;
  readonly layout: Layout;
  constructor(readonly name: string, readonly shm: SharedMemory, readonly registry: SharedMemory) {
    this.u8 = shm.view.bytes;
    this.i32 = shm.view.int32Array(0, Math.floor(shm.view.length / 4));
    this.layout = readLayout(this.i32, shm.size, name);
  }
  static async open(
    name: string,
    create: PubSubServiceOptions | undefined,
    checkGiven: boolean,
  ): Promise<Service> {
    const registry = await openRegistry();
    let shm: SharedMemory | undefined;
    try {
      if (create) {
        const layout = resolveShape(create);
        shm = await SharedMemory.createOrOpen(name, {
          size: layout.total,
          init: (view) => {
            const header = view.int32Array(0, 16);
            header[H.version] = PUBSUB_LAYOUT_VERSION;
            header[H.sampleSize] = layout.sampleSize;
            header[H.poolSize] = layout.poolSize;
            header[H.history] = layout.history;
            header[H.maxSubscribers] = layout.maxSubscribers;
            header[H.maxHeld] = layout.maxHeld;
            header[H.policy] = layout.policy;
            Atomics.store(header, H.magic, MAGIC);
          },
        });
      } else {
        try {
          shm = await SharedMemory.openInitialized(name, { timeout: 10_000 });
        } catch (e) {
          if (e instanceof Win32Error && e.code === 2) {
            throw new Deno.errors.NotFound(`No pub/sub service named "${name}"`, { cause: e });
          }
          throw e;
        }
      }
      const service = new Service(name, shm, registry);
      if (create && checkGiven) checkShape(service.layout, create, name);
      register(registry, name, "pubsub");
      return service;
    } catch (e) {
      shm?.close();
      registry.close();
      throw e;
    }
  }
  slot(i: number): number {
    return (HEADER_BYTES + i * SLOT_BYTES) / 4;
  }
  metaWord(sample: number): number {
    return this.layout.meta / 4 + sample * META_WORDS;
  }
  queueWord(subscriber: number, position: number): number {
    return this.layout.queues / 4 + subscriber * this.layout.history +
      (position >>> 0) % this.layout.history;
  }
  dataOffset(sample: number): number {
    return this.layout.data + sample * this.layout.stride;
  }
  close(): void {
    this.shm.close();
    this.registry.close();
  }
}

function subscriberEventName(name: string, slot: number): string {
  return `${name}#ps-s${slot}`;
}
function publisherEventName(name: string): string {
  return `${name}#ps-p`;
}

/** Spins for up to `micros`, checking `ready` every few dozen rounds of the clock. */
function spin<T>(micros: number, ready: () => T): T | false {
  if (micros === 0) return false;
  const until = performance.now() + micros / 1000;
  for (let i = 0;; i++) {
    const value = ready();
    if (value) return value;
    if ((i & 31) === 31 && performance.now() > until) return false;
  }
}

async function waitEvent(
  event: Event,
  ms: number,
  signal: AbortSignal | undefined,
  inflight: Set<Promise<boolean>>,
): Promise<boolean> {
  const waiting = event.wait({ timeout: Math.ceil(ms), signal });
  inflight.add(waiting);
  try {
    return await waiting;
  } finally {
    inflight.delete(waiting);
  }
}

// ---- the publisher ----

// Users never make a sample, and a sample reaches its publisher or subscriber through these: the
// constructors and methods are private, and the classes' static blocks set these.
let newLoanedSample!: (
  publisher: Publisher,
  index: number,
  data: Uint8Array<ArrayBuffer>,
) => LoanedSample;
let newReceivedSample!: (
  subscriber: Subscriber,
  index: number,
  data: Uint8Array<ArrayBuffer>,
  sequence: number,
) => ReceivedSample;
let publishLoan!: (
  publisher: Publisher,
  index: number,
  length: number,
  options?: PubSubWaitOptions,
) => Promise<number>;
let giveBackLoan!: (publisher: Publisher, index: number) => void;
let releaseSample!: (subscriber: Subscriber, index: number) => void;

/**
 * A sample loaned from the pool: write {@linkcode LoanedSample.data} in place, then
 * {@linkcode LoanedSample.publish}. Disposing a sample that was not published gives it back.
 *
 * @example Loan, write, publish
 * ```ts
 * import { Publisher } from "./pubsub.ts";
 * using pub = await Publisher.create("Local\\frames");
 * using sample = await pub.loan();
 * const n = new TextEncoder().encodeInto("hello", sample.data).written;
 * await sample.publish(n);
 * ```
 */
export class LoanedSample implements Disposable {
  readonly #publisher: Publisher;
  readonly #index: number;
  #done = false;
  /** The sample's bytes in the mapping: all of them, `sampleSize` long. Valid until published. */
  readonly data: Uint8Array<ArrayBuffer>;

  static {
    newLoanedSample = (publisher, index, data) => new LoanedSample(publisher, index, data);
  }

  /** Made by {@linkcode Publisher.loan}. */
  private constructor(publisher: Publisher, index: number, data: Uint8Array<ArrayBuffer>) {
    this.#publisher = publisher;
    this.#index = index;
    this.data = data;
  }

  /** Whether it was published or given back. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Publishes the sample to every subscriber attached now. Under the `"block"` policy it waits
   * (without blocking the event loop) while a subscriber's queue is full.
   *
   * @param length How many bytes of {@linkcode LoanedSample.data} subscribers see. Default: all.
   * @param options `timeout`, `signal` (for a `"block"` wait).
   * @returns The sample's sequence number (1 for the first sample of this publisher).
   * @throws {RangeError} When `length` is out of the sample's range.
   * @throws {Deno.errors.BadResource} When it was published already or the publisher is closed.
   */
  publish(length: number = this.data.length, options?: PubSubWaitOptions): Promise<number> {
    if (this.#done) {
      return Promise.reject(
        new Deno.errors.BadResource("Sample was published or released already"),
      );
    }
    if (!Number.isInteger(length) || length < 0 || length > this.data.length) {
      return Promise.reject(
        new RangeError(
          `Invalid argument "length": must be an integer from 0 to ${this.data.length}`,
        ),
      );
    }
    this.#done = true;
    return publishLoan(this.#publisher, this.#index, length, options);
  }

  /** Gives the sample back unpublished (nothing when it was published). Idempotent. */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    giveBackLoan(this.#publisher, this.#index);
  }

  /** Gives the sample back unpublished. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * The publisher of a service: loans samples, publishes them to every attached subscriber.
 *
 * @example Publish a counter
 * ```ts
 * import { Publisher } from "./pubsub.ts";
 * using pub = await Publisher.create("Local\\counter", { sampleSize: 8, overflow: "block" });
 * await pub.waitForSubscribers(1);
 * for (let i = 0; i < 10; i++) {
 *   const sample = await pub.loan();
 *   new DataView(sample.data.buffer, sample.data.byteOffset).setFloat64(0, i, true);
 *   await sample.publish();
 * }
 * ```
 */
export class Publisher implements Disposable {
  readonly #svc: Service;
  readonly #i32: Int32Array<ArrayBuffer>;
  readonly #layout: Layout;
  readonly #spinMicros: number;
  readonly #event: Event;
  readonly #subscriberEvents: (Event | undefined)[];
  readonly #watch = new ProcessWatch();
  readonly #inflight = new Set<Promise<boolean>>();
  /** Samples free to loan (mask 0, not loaned). */
  readonly #free: number[] = [];
  /** Samples published and maybe still held by a subscriber. */
  readonly #published = new Set<number>();
  #sequence = 0;
  #sinceCheck = 0;
  #lastCheck = performance.now();
  #closed = false;
  /** The service's name. */
  readonly name: string;

  private constructor(svc: Service, spinMicros: number) {
    this.#svc = svc;
    this.name = svc.name;
    this.#i32 = svc.i32;
    this.#layout = svc.layout;
    this.#spinMicros = spinMicros;
    this.#event = Event.createOrOpen(publisherEventName(svc.name));
    this.#subscriberEvents = new Array(svc.layout.maxSubscribers);
  }

  /**
   * Creates the service, or opens it when it exists (a subscriber may have created it), and
   * becomes its publisher.
   *
   * @param name The service's name (at most 240 characters; `Local\` and `Global\` work).
   * @param options The service's shape (checked against an existing service's) and `spinMicros`.
   * @returns The publisher.
   * @throws {Deno.errors.Busy} When another live process publishes on it.
   * @throws {PubSubError} When the service exists with another shape, or is damaged.
   *
   * @example
   * ```ts
   * import { Publisher } from "./pubsub.ts";
   * using pub = await Publisher.create("Local\\frames", { sampleSize: 1 << 20, history: 4 });
   * ```
   */
  static async create(name: string, options?: PublisherOptions): Promise<Publisher> {
    const n = parseArg(nameSchema, name, "name");
    const opts: PublisherOptions = parseArg(publisherSchema, options, "options") ?? {};
    const svc = await Service.open(n, opts, true);
    try {
      const i32 = svc.i32;
      const watch = new ProcessWatch();
      try {
        const pid = Atomics.load(i32, H.publisherPid);
        // a live process (this one included) that has not closed its publisher keeps it
        const busy = pid !== 0 && Atomics.load(i32, H.publisherState) === PUB_OPEN &&
          watch.alive(pid);
        if (busy || Atomics.compareExchange(i32, H.publisherPid, pid, Deno.pid) !== pid) {
          throw new Deno.errors.Busy(
            `Cannot publish on "${n}": process ${pid} publishes on it already`,
          );
        }
      } finally {
        watch.close();
      }
      Atomics.store(i32, H.publisherState, PUB_OPEN);
      const publisher = new Publisher(svc, opts.spinMicros ?? 50);
      publisher.#takeOver();
      return publisher;
    } catch (e) {
      svc.close();
      throw e;
    }
  }

  /** A new publisher: sweeps closed and dead subscribers, and finds the free samples. */
  #takeOver(): void {
    this.#sweep(true);
    const i32 = this.#i32;
    // Bits of slots that receive nothing are left over from a publisher that died: clear them.
    // (One that died in the middle of a publish may leave that sample held by the subscribers it
    // was meant for, until they leave: the pool's two spare samples cover it.)
    const active = Atomics.load(i32, H.activeMask);
    for (let s = 0; s < this.#layout.poolSize; s++) {
      Atomics.and(i32, this.#svc.metaWord(s), active);
      if (Atomics.load(i32, this.#svc.metaWord(s)) === 0) this.#free.push(s);
      else this.#published.add(s);
    }
  }

  /** Bytes of each sample. */
  get sampleSize(): number {
    return this.#layout.sampleSize;
  }

  /** The overflow policy. */
  get overflow(): OverflowPolicy {
    return this.#layout.policy === 1 ? "block" : "drop-oldest";
  }

  /** Subscribers attached now. */
  get subscribers(): number {
    if (Atomics.load(this.#i32, H.closing) !== 0) this.#sweep(false);
    let mask = Atomics.load(this.#i32, H.activeMask);
    let n = 0;
    for (; mask !== 0; mask &= mask - 1) n++;
    return n;
  }

  /** Whether every published sample has been released by every subscriber. */
  get settled(): boolean {
    this.#reclaim();
    return this.#published.size === 0;
  }

  /** Cuts a subscriber off: its bit leaves every sample and the active mask; its slot is freed. */
  #drop(slot: number): void {
    const i32 = this.#i32;
    const bit = 1 << slot;
    Atomics.and(i32, H.activeMask, ~bit);
    for (let s = 0; s < this.#layout.poolSize; s++) {
      Atomics.and(i32, this.#svc.metaWord(s), ~bit);
    }
    const base = this.#svc.slot(slot);
    const pid = Atomics.load(i32, base + S.pid);
    this.#watch.forget(pid);
    Atomics.store(i32, base + S.state, FREE);
    Atomics.store(i32, base + S.pid, 0); // a joiner may take it now
  }

  /**
   * Cuts off closed subscribers, and with `liveness` also those whose process ended (an FFI call
   * per subscriber: done when a wait lasts and about once a second).
   */
  #sweep(liveness: boolean): void {
    const i32 = this.#i32;
    Atomics.store(i32, H.closing, 0);
    for (let slot = 0; slot < this.#layout.maxSubscribers; slot++) {
      const base = this.#svc.slot(slot);
      const pid = Atomics.load(i32, base + S.pid);
      if (pid === 0) continue;
      const state = Atomics.load(i32, base + S.state);
      const member = (Atomics.load(i32, H.activeMask) & (1 << slot)) !== 0;
      if (state === CLOSED || (liveness && !this.#watch.alive(pid))) {
        this.#drop(slot);
      } else if (member && state !== ACTIVE) {
        this.#drop(slot); // a slot in the mask that is not active breaks the protocol
      }
    }
    this.#lastCheck = performance.now();
  }

  /** Moves published samples that every subscriber released back to the free list. */
  #reclaim(): void {
    const i32 = this.#i32;
    for (const s of this.#published) {
      if (Atomics.load(i32, this.#svc.metaWord(s)) === 0) {
        this.#published.delete(s);
        this.#free.push(s);
      }
    }
  }

  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Publisher is closed");
  }

  /**
   * Loans a sample now if one is free.
   *
   * @returns The sample, or `undefined` when the pool is empty.
   */
  tryLoan(): LoanedSample | undefined {
    this.#check();
    let s = this.#free.pop();
    if (s === undefined) {
      this.#reclaim();
      s = this.#free.pop();
      if (s === undefined) return undefined;
    }
    const at = this.#svc.dataOffset(s);
    return newLoanedSample(this, s, this.#svc.u8.subarray(at, at + this.#layout.sampleSize));
  }

  /**
   * Loans a sample, waiting (without blocking the event loop) while every sample is held.
   *
   * @param options `timeout`, `signal`.
   * @returns The sample: write its `data`, then `publish()` it.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   *
   * @example
   * ```ts
   * import { Publisher } from "./pubsub.ts";
   * using pub = await Publisher.create("Local\\frames");
   * const sample = await pub.loan({ timeout: 1000 });
   * sample.data.fill(7);
   * await sample.publish();
   * ```
   */
  async loan(options?: PubSubWaitOptions): Promise<LoanedSample> {
    const now = this.tryLoan();
    if (now) return now;
    return await this.#waitFor(() => this.tryLoan(), options, "a free sample");
  }

  /**
   * Loans a sample, copies `data` into it and publishes it.
   *
   * @param data The bytes (at most `sampleSize`), or text (sent as UTF-8).
   * @param options `timeout`, `signal`.
   * @returns The sample's sequence number.
   * @throws {RangeError} When `data` is larger than a sample.
   *
   * @example
   * ```ts
   * import { Publisher } from "./pubsub.ts";
   * using pub = await Publisher.create("Local\\news");
   * await pub.send(new TextEncoder().encode("hello"));
   * ```
   */
  async send(data: Uint8Array | string, options?: PubSubWaitOptions): Promise<number> {
    if (typeof data === "string") data = new TextEncoder().encode(data);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError('Invalid argument "data": must be a Uint8Array or a string');
    }
    if (data.length > this.#layout.sampleSize) {
      throw new RangeError(
        `Invalid argument "data": ${data.length} bytes is larger than the service's sample size of ${this.#layout.sampleSize} bytes`,
      );
    }
    const sample = await this.loan(options);
    sample.data.set(data);
    return await sample.publish(data.length, options);
  }

  static {
    giveBackLoan = (publisher, index) => publisher.#giveBack(index);
    publishLoan = (publisher, index, length, options) => publisher.#publish(index, length, options);
  }

  /** Takes back a loaned sample that was not published. */
  #giveBack(index: number): void {
    if (!this.#closed) this.#free.push(index);
  }

  /** Puts a sample in subscriber `slot`'s queue; `false` when the queue is full. */
  #enqueue(slot: number, sample: number, bit: number): boolean | "cut" {
    const i32 = this.#i32;
    const svc = this.#svc;
    const base = svc.slot(slot);
    const history = this.#layout.history;
    for (;;) {
      const head = i32[base + S.head]; // written by this process only
      const tail = Atomics.load(i32, base + S.tail);
      const queued = (head - tail) >>> 0;
      if (queued > history) {
        this.#drop(slot); // a subscriber that moved its tail past the head
        return "cut";
      }
      if (queued === history) {
        if (this.#layout.policy === 1) return false;
        // drop-oldest: take the oldest away from the subscriber, unless it takes it first
        const oldest = Atomics.load(i32, svc.queueWord(slot, tail));
        if (Atomics.compareExchange(i32, base + S.tail, tail, (tail + 1) | 0) !== tail) continue;
        if (oldest >= 0 && oldest < this.#layout.poolSize) {
          Atomics.and(i32, svc.metaWord(oldest), ~bit);
        }
        Atomics.add(i32, base + S.dropped, 1);
        continue;
      }
      Atomics.store(i32, svc.queueWord(slot, head), sample);
      Atomics.store(i32, base + S.head, (head + 1) | 0);
      if (i32[base + S.waiting] !== 0 && Atomics.exchange(i32, base + S.waiting, 0) !== 0) {
        let event = this.#subscriberEvents[slot];
        if (event === undefined) {
          event = Event.createOrOpen(subscriberEventName(this.name, slot));
          this.#subscriberEvents[slot] = event;
        }
        event.set();
      }
      return true;
    }
  }

  /** Publishes a loaned sample of `length` bytes. */
  async #publish(index: number, length: number, options?: PubSubWaitOptions): Promise<number> {
    this.#check();
    const i32 = this.#i32;
    const svc = this.#svc;
    if (Atomics.load(i32, H.closing) !== 0 || ++this.#sinceCheck >= 1024) {
      const liveness = this.#sinceCheck >= 1024 && performance.now() - this.#lastCheck > 1000;
      if (this.#sinceCheck >= 1024) this.#sinceCheck = 0;
      this.#sweep(liveness);
    }
    const sequence = ++this.#sequence;
    const meta = svc.metaWord(index);
    const mask = Atomics.load(i32, H.activeMask);
    i32[meta + 1] = length;
    i32[meta + 2] = sequence % 0x1_0000_0000 | 0;
    i32[meta + 3] = Math.floor(sequence / 0x1_0000_0000);
    Atomics.store(i32, meta, mask);
    if (mask === 0) {
      this.#free.push(index);
      return sequence;
    }
    this.#published.add(index);
    for (let rest = mask; rest !== 0; rest &= rest - 1) {
      const slot = 31 - Math.clz32(rest & -rest);
      const bit = 1 << slot;
      let put = this.#enqueue(slot, index, bit);
      if (put === false) {
        put = await this.#waitFor(
          () => {
            if (Atomics.load(i32, H.closing) !== 0) this.#sweep(false); // it may be the one closing
            if ((Atomics.load(i32, H.activeMask) & bit) === 0) return "cut"; // swept meanwhile
            return this.#enqueue(slot, index, bit);
          },
          options,
          `room in subscriber ${slot}'s queue`,
        );
      }
      if (put === "cut") Atomics.and(i32, meta, ~bit);
    }
    return sequence;
  }

  /** Spins, then sleeps on the publisher's event, checking subscribers' liveness while it lasts. */
  async #waitFor<T>(
    ready: () => T | false | undefined,
    options: PubSubWaitOptions | undefined,
    what: string,
  ): Promise<T> {
    const opts: PubSubWaitOptions = parseArg(waitSchema, options, "options") ?? {};
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + opts.timeout;
    const i32 = this.#i32;
    for (;;) {
      const spun = spin(this.#spinMicros, ready);
      if (spun) return spun;
      Atomics.store(i32, H.publisherWaiting, 1);
      const after = ready();
      if (after) {
        Atomics.store(i32, H.publisherWaiting, 0);
        return after;
      }
      const slice = Math.min(50, Math.max(0, deadline - performance.now()));
      const woken = await waitEvent(this.#event, slice, opts.signal, this.#inflight);
      this.#check();
      if (!woken) {
        this.#sweep(true);
        const again = ready();
        if (again) return again;
        if (performance.now() >= deadline) {
          throw new Deno.errors.TimedOut(`Publisher "${this.name}": no ${what} in time`);
        }
      }
      const next = ready();
      if (next) return next;
    }
  }

  /**
   * Waits until at least `count` subscribers are attached.
   *
   * @param count How many. Default 1.
   * @param options `timeout`, `signal`.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   *
   * @example
   * ```ts
   * import { Publisher } from "./pubsub.ts";
   * using pub = await Publisher.create("Local\\frames");
   * await pub.waitForSubscribers(4, { timeout: 30_000 });
   * ```
   */
  async waitForSubscribers(count = 1, options?: PubSubWaitOptions): Promise<void> {
    parseArg(int(0, MAX_SUBSCRIBERS), count, "count");
    const opts: PubSubWaitOptions = parseArg(waitSchema, options, "options") ?? {};
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + opts.timeout;
    while (this.subscribers < count) {
      this.#check();
      opts.signal?.throwIfAborted();
      if (performance.now() >= deadline) {
        throw new Deno.errors.TimedOut(`Publisher "${this.name}": fewer than ${count} subscribers`);
      }
      // Joining is rare and not on a sample's path: a short timer is enough here.
      await new Promise((r) => setTimeout(r, 5));
      this.#sweep(true);
    }
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops publishing: subscribers get what is queued, then the end. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const i32 = this.#i32;
    Atomics.store(i32, H.publisherState, PUB_CLOSED);
    // wake every sleeping subscriber so that it sees the end
    for (let slot = 0; slot < this.#layout.maxSubscribers; slot++) {
      const base = this.#svc.slot(slot);
      if (Atomics.load(i32, base + S.pid) !== 0 && Atomics.exchange(i32, base + S.waiting, 0)) {
        const event = this.#subscriberEvents[slot] ??
          Event.createOrOpen(subscriberEventName(this.name, slot));
        this.#subscriberEvents[slot] = event;
        event.set();
      }
    }
    if (this.#inflight.size) this.#event.set();
    const events = [this.#event, ...this.#subscriberEvents];
    Promise.allSettled([...this.#inflight]).then(() => {
      for (const e of events) e?.close();
    });
    this.#watch.close();
    this.#svc.close();
  }

  /** Closes the publisher. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---- the subscriber ----

/**
 * A sample a subscriber received: a read-only view of the publisher's bytes in the mapping. It
 * stays valid until {@linkcode ReceivedSample.release} (or `using` ends, or the subscriber closes);
 * after that the publisher may reuse the bytes, so copy what you keep (`data.slice()`).
 *
 * @example Read it, then let it go
 * ```ts
 * import { Subscriber } from "./pubsub.ts";
 * using sub = await Subscriber.open("Local\\news");
 * using sample = await sub.receive();
 * if (sample) console.log(sample.sequence, new TextDecoder().decode(sample.data));
 * ```
 */
export class ReceivedSample implements Disposable {
  readonly #subscriber: Subscriber;
  readonly #index: number;
  #released = false;
  /** The bytes, in the read-only view of the mapping: never write them. */
  readonly data: Uint8Array<ArrayBuffer>;
  /** The publisher's sequence number of this sample (1, 2, ...; a new publisher starts over). */
  readonly sequence: number;

  static {
    newReceivedSample = (subscriber, index, data, sequence) =>
      new ReceivedSample(subscriber, index, data, sequence);
  }

  /** Made by {@linkcode Subscriber.receive}. */
  private constructor(
    subscriber: Subscriber,
    index: number,
    data: Uint8Array<ArrayBuffer>,
    sequence: number,
  ) {
    this.#subscriber = subscriber;
    this.#index = index;
    this.data = data;
    this.sequence = sequence;
  }

  /** Whether it was released. */
  get released(): boolean {
    return this.#released;
  }

  /** Gives the sample back (when every subscriber has, the publisher reuses it). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    releaseSample(this.#subscriber, this.#index);
  }

  /** Releases the sample. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A subscriber of a service: receives every sample published after it joined (less what the
 * `"drop-oldest"` policy dropped), as zero-copy views.
 *
 * @example Print every sample as text
 * ```ts
 * import { Subscriber } from "./pubsub.ts";
 * using sub = await Subscriber.open("Local\\news");
 * for (;;) {
 *   using sample = await sub.receive();
 *   if (sample === null) break; // the publisher closed
 *   console.log(new TextDecoder().decode(sample.data));
 * }
 * ```
 */
export class Subscriber implements Disposable {
  readonly #svc: Service;
  readonly #i32: Int32Array<ArrayBuffer>;
  readonly #layout: Layout;
  readonly #readOnly: SharedView;
  readonly #ro: Uint8Array<ArrayBuffer>;
  readonly #slot: number;
  readonly #base: number;
  readonly #bit: number;
  readonly #spinMicros: number;
  readonly #event: Event;
  #publisherEvent: Event | undefined;
  readonly #watch = new ProcessWatch();
  readonly #inflight = new Set<Promise<boolean>>();
  readonly #held = new Set<number>();
  #closed = false;
  /** The service's name. */
  readonly name: string;

  private constructor(svc: Service, slot: number, spinMicros: number) {
    this.#svc = svc;
    this.name = svc.name;
    this.#i32 = svc.i32;
    this.#layout = svc.layout;
    this.#slot = slot;
    this.#base = svc.slot(slot);
    this.#bit = 1 << slot;
    this.#spinMicros = spinMicros;
    this.#readOnly = svc.shm.map({ access: "read-only" });
    this.#ro = this.#readOnly.bytes;
    this.#event = Event.createOrOpen(subscriberEventName(svc.name, slot));
  }

  /**
   * Subscribes to a service.
   *
   * @param name The service's name.
   * @param options `create` (make the service when it is missing, with the shape given here),
   *   `spinMicros`.
   * @returns The subscriber.
   * @throws {Deno.errors.NotFound} When there is no such service (and `create` is not set).
   * @throws {Deno.errors.Busy} When the service has its `maxSubscribers` already.
   * @throws {PubSubError} When the mapping is not a service, or is damaged.
   *
   * @example
   * ```ts
   * import { Subscriber } from "./pubsub.ts";
   * using sub = await Subscriber.open("Local\\frames");
   * ```
   */
  static async open(name: string, options?: SubscriberOptions): Promise<Subscriber> {
    const n = parseArg(nameSchema, name, "name");
    const opts: SubscriberOptions = parseArg(subscriberSchema, options, "options") ?? {};
    const { create, spinMicros, ...shape } = opts;
    const svc = await Service.open(n, create ? shape : undefined, false);
    try {
      const i32 = svc.i32;
      for (let slot = 0; slot < svc.layout.maxSubscribers; slot++) {
        const base = svc.slot(slot);
        if (Atomics.compareExchange(i32, base + S.pid, 0, Deno.pid) !== 0) continue;
        Atomics.store(i32, base + S.dropped, 0);
        Atomics.store(i32, base + S.waiting, 0);
        Atomics.store(i32, base + S.tail, Atomics.load(i32, base + S.head));
        Atomics.store(i32, base + S.state, ACTIVE);
        try {
          const subscriber = new Subscriber(svc, slot, spinMicros ?? 50);
          Atomics.or(i32, H.activeMask, 1 << slot);
          return subscriber;
        } catch (e) {
          Atomics.store(i32, base + S.state, FREE);
          Atomics.store(i32, base + S.pid, 0);
          throw e;
        }
      }
      throw new Deno.errors.Busy(
        `Cannot subscribe to "${n}": it has ${svc.layout.maxSubscribers} subscribers already`,
      );
    } catch (e) {
      svc.close();
      throw e;
    }
  }

  /** Bytes of each sample. */
  get sampleSize(): number {
    return this.#layout.sampleSize;
  }

  /** Samples the `"drop-oldest"` policy took from this subscriber's queue. */
  get dropped(): number {
    return Atomics.load(this.#i32, this.#base + S.dropped) >>> 0;
  }

  /** Received samples not yet released. */
  get held(): number {
    return this.#held.size;
  }

  /** Whether the publisher cut this subscriber off (it was found closed or broke the layout). */
  #cutOff(): boolean {
    return (Atomics.load(this.#i32, H.activeMask) & this.#bit) === 0 ||
      Atomics.load(this.#i32, this.#base + S.pid) !== Deno.pid;
  }

  /**
   * Receives the next sample if one is queued now: no promise, no FFI call.
   *
   * @returns The sample, or `undefined` when none is queued.
   * @throws {RangeError} When this subscriber holds `maxHeld` samples already.
   * @throws {PubSubError} When the publisher broke the layout.
   */
  tryReceive(): ReceivedSample | undefined {
    if (this.#closed) throw new Deno.errors.BadResource("Subscriber is closed");
    const i32 = this.#i32;
    const base = this.#base;
    const layout = this.#layout;
    for (;;) {
      const tail = Atomics.load(i32, base + S.tail);
      const head = Atomics.load(i32, base + S.head);
      if (head === tail) return undefined;
      if (((head - tail) >>> 0) > layout.history) {
        throw new PubSubError(`Subscriber of "${this.name}": its queue is damaged`);
      }
      if (this.#held.size >= layout.maxHeld) {
        throw new RangeError(
          `Subscriber of "${this.name}" holds ${layout.maxHeld} samples already (maxHeld): release one first`,
        );
      }
      const index = Atomics.load(i32, this.#svc.queueWord(this.#slot, tail));
      if (Atomics.compareExchange(i32, base + S.tail, tail, (tail + 1) | 0) !== tail) continue;
      this.#wakePublisher();
      if (!(index >= 0 && index < layout.poolSize)) {
        throw new PubSubError(`Subscriber of "${this.name}": sample index ${index} out of range`);
      }
      const meta = this.#svc.metaWord(index);
      const length = i32[meta + 1];
      if (!(length >= 0 && length <= layout.sampleSize)) {
        Atomics.and(i32, meta, ~this.#bit);
        throw new PubSubError(`Subscriber of "${this.name}": sample length ${length} out of range`);
      }
      const sequence = (i32[meta + 3] >>> 0) * 0x1_0000_0000 + (i32[meta + 2] >>> 0);
      this.#held.add(index);
      const at = this.#svc.dataOffset(index);
      return newReceivedSample(this, index, this.#ro.subarray(at, at + length), sequence);
    }
  }

  #wakePublisher(): void {
    const i32 = this.#i32;
    if (i32[H.publisherWaiting] !== 0 && Atomics.exchange(i32, H.publisherWaiting, 0) !== 0) {
      this.#publisherEvent ??= Event.createOrOpen(publisherEventName(this.name));
      this.#publisherEvent.set();
    }
  }

  static {
    releaseSample = (subscriber, index) => subscriber.#release(index);
  }

  /** Gives a received sample's slot back to the publisher. */
  #release(index: number): void {
    if (!this.#held.delete(index) || this.#closed || this.#cutOff()) return;
    Atomics.and(this.#i32, this.#svc.metaWord(index), ~this.#bit);
    this.#wakePublisher();
  }

  /** Whether the publisher ended: closed (`true`), or died (throws). */
  #publisherEnded(): boolean {
    const i32 = this.#i32;
    const state = Atomics.load(i32, H.publisherState);
    if (state === PUB_CLOSED) return true;
    if (state !== PUB_OPEN) return false; // none yet
    const pid = Atomics.load(i32, H.publisherPid);
    if (!this.#watch.alive(pid)) {
      throw new PeerGoneError(pid, `Pub/sub service "${this.name}": the publisher ${pid} ended`);
    }
    return false;
  }

  /**
   * Receives the next sample, waiting without blocking the event loop: spins briefly, then
   * sleeps until the publisher wakes it.
   *
   * @param options `timeout`, `signal`.
   * @returns The sample, or `null` when the publisher closed and the queue is empty.
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   * @throws {PeerGoneError} When the publisher's process ended without closing.
   * @throws {RangeError} When this subscriber holds `maxHeld` samples already.
   *
   * @example
   * ```ts
   * import { Subscriber } from "./pubsub.ts";
   * using sub = await Subscriber.open("Local\\frames");
   * using frame = await sub.receive({ timeout: 5000 });
   * ```
   */
  async receive(options?: PubSubWaitOptions): Promise<ReceivedSample | null> {
    const now = this.tryReceive();
    if (now) return now;
    const opts: PubSubWaitOptions = parseArg(waitSchema, options, "options") ?? {};
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + opts.timeout;
    const i32 = this.#i32;
    for (;;) {
      const spun = spin(this.#spinMicros, () => this.tryReceive());
      if (spun) return spun;
      Atomics.store(i32, this.#base + S.waiting, 1);
      const after = this.tryReceive();
      if (after) {
        Atomics.store(i32, this.#base + S.waiting, 0);
        return after;
      }
      if (this.#cutOff()) {
        throw new PubSubError(`Subscriber of "${this.name}" was cut off by the publisher`);
      }
      if (this.#publisherEnded()) {
        Atomics.store(i32, this.#base + S.waiting, 0);
        return null;
      }
      const slice = Math.min(250, Math.max(0, deadline - performance.now()));
      const woken = await waitEvent(this.#event, slice, opts.signal, this.#inflight);
      if (this.#closed) throw new Deno.errors.BadResource("Subscriber is closed");
      const next = this.tryReceive();
      if (next) return next;
      if (!woken && performance.now() >= deadline) {
        Atomics.store(i32, this.#base + S.waiting, 0);
        throw new Deno.errors.TimedOut(`Nothing received from "${this.name}" in time`);
      }
    }
  }

  /** Samples until the publisher closes; each is released when the loop moves on. */
  async *[Symbol.asyncIterator](): AsyncIterator<ReceivedSample> {
    for (;;) {
      const sample = await this.receive();
      if (sample === null) return;
      try {
        yield sample;
      } finally {
        sample.release();
      }
    }
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Leaves the service: held and queued samples go back (the publisher sweeps the slot). The views
   * of received samples become invalid. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const i32 = this.#i32;
    if (!this.#cutOff()) {
      for (const index of this.#held) Atomics.and(i32, this.#svc.metaWord(index), ~this.#bit);
      Atomics.store(i32, this.#base + S.state, CLOSED);
      Atomics.store(i32, H.closing, 1);
      // a publisher that waits for this subscriber's room must see it go
      Atomics.store(i32, H.publisherWaiting, 0);
      this.#publisherEvent ??= Event.createOrOpen(publisherEventName(this.name));
      this.#publisherEvent.set();
    }
    this.#held.clear();
    if (this.#inflight.size) this.#event.set();
    const events = [this.#event, this.#publisherEvent];
    Promise.allSettled([...this.#inflight]).then(() => {
      for (const e of events) e?.close();
    });
    this.#watch.close();
    this.#readOnly.close();
    this.#svc.close();
  }

  /** Closes the subscriber. */
  [Symbol.dispose](): void {
    this.close();
  }
}
