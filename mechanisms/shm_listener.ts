/**
 * Connections over shared memory, the way `Deno.listen`/`Deno.connect` give connections over TCP:
 * a {@linkcode ShmListener} is an async iterable of duplex {@linkcode ShmChannel}s, one per client.
 *
 * A client creates a private channel of its own and announces its name on the listener's
 * rendezvous channel (which any number of clients may send to); the listener opens it. Each
 * connection is then a channel between exactly two processes: the client sends on the ring the
 * listener receives, and the other way round.
 *
 * @example An echo server and a client
 * ```ts
 * import { connectShm, listenShm } from "./shm_listener.ts";
 * // server
 * await using listener = await listenShm("Local\\echo");
 * for await (const conn of listener) {
 *   (async () => {
 *     for await (const message of conn) await conn.send(message);
 *   })();
 * }
 * // client, in another process
 * await using conn = await connectShm("Local\\echo");
 * await conn.send(new TextEncoder().encode("hi"));
 * ```
 *
 * @module
 */
import { z } from "zod";
import { PeerGoneError, ProtocolError, ShmChannel } from "./channel.ts";
import type { SecurityOptions } from "../ffi/security.ts";
import {
  type IoOptions,
  ioOptionsSchema,
  objectNameSchema,
  parseArg,
  securitySchema,
} from "./_validate.ts";
import { capacitySchema, channelInternals, spinSchema } from "./_shm_limits.ts";

const HELLO = "winipc-shm-connect/1 ";
/**
 * Every hello is padded to this many bytes (a 1 KiB frame), so that the listener can step over
 * the frame of a client that died in the middle of sending one.
 */
const HELLO_BYTES = 1016;
const HELLO_FRAME = 1024;
/** What follows `<listener>#c` in a connection's name: `<pid>-<n>-<random>`, as connectShm makes it. */
const CONNECTION_SUFFIX = /^[1-9][0-9]{0,9}-[1-9][0-9]{0,15}-[0-9a-z]{1,8}$/;

const nameSchema = objectNameSchema.refine((s) => s.length <= 200, {
  error: "must be at most 200 characters",
});

/**
 * Options of {@linkcode listenShm} and {@linkcode connectShm}.
 *
 * @example Small rings for short messages; give the listener 2 s
 * ```ts
 * import { connectShm } from "./shm_listener.ts";
 * await using conn = await connectShm("Local\\echo", { capacity: 1 << 16, timeout: 2000 });
 * ```
 */
export interface ShmConnectionOptions extends IoOptions {
  /** Bytes of each ring of each connection (a power of two, 4 KiB to 1 GiB). Default 1 MiB. */
  capacity?: number;
  /** Microseconds to spin before sleeping (0 to 1,000,000). Default 50. */
  spinMicros?: number;
  /**
   * Milliseconds `connectShm` waits in all: to send its hello on the listener's rendezvous (a
   * full rendezvous ring waits) and for the listener to open the connection. Default 10,000.
   */
  timeout?: number;
  /** Aborts `connectShm`'s waits. */
  signal?: AbortSignal;
  /**
   * Access control of the objects made: the listener's rendezvous channel (for `listenShm`),
   * the connection's channel (for `connectShm`). Default: the creator's default DACL.
   */
  security?: SecurityOptions;
  /**
   * Called (by `listenShm`'s listener) for each client it refused: a hello that names a channel
   * outside the listener's own names (a `ProtocolError`), or a channel it could not open. The
   * listener keeps serving others. Default: refused clients are skipped.
   */
  onError?: (error: Error) => void;
}

const optionsSchema = ioOptionsSchema.extend({
  capacity: capacitySchema.optional(),
  spinMicros: spinSchema.optional(),
  security: securitySchema,
  onError: z.custom<(error: Error) => void>((v) => typeof v === "function", {
    error: "must be a function",
  }).optional(),
}).strict().optional();

// Users never make a listener: the constructor is private, and listenShm makes one through this,
// which the class's static block sets.
let newListener!: (
  name: string,
  rendezvous: ShmChannel,
  spinMicros: number | undefined,
  onError: ((error: Error) => void) | undefined,
) => ShmListener;

/**
 * Accepts shared-memory connections. Iterate it (or call `accept()`); close it to stop.
 *
 * @example Take one client, answer it, stop listening
 * ```ts
 * import { listenShm } from "./shm_listener.ts";
 * await using listener = await listenShm("Local\\jobs");
 * const conn = await listener.accept();
 * if (conn) {
 *   await conn.send(new TextEncoder().encode(`hello from ${listener.name}`));
 *   await conn[Symbol.asyncDispose]();
 * }
 * ```
 */
export class ShmListener implements AsyncIterable<ShmChannel>, AsyncDisposable {
  readonly #rendezvous: ShmChannel;
  readonly #spinMicros: number | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  /** The pid of a dead client whose claimed hello blocks the rendezvous, once reported. */
  #stuckOn = 0;
  /** The name clients connect to. */
  readonly name: string;

  static {
    newListener = (name, rendezvous, spinMicros, onError) =>
      new ShmListener(name, rendezvous, spinMicros, onError);
  }

  /** Made by {@linkcode listenShm}. */
  private constructor(
    name: string,
    rendezvous: ShmChannel,
    spinMicros: number | undefined,
    onError?: (error: Error) => void,
  ) {
    this.name = name;
    this.#rendezvous = rendezvous;
    this.#spinMicros = spinMicros;
    this.#onError = onError;
  }

  /** Reports a refused client to the `onError` option; an error it throws is not ours to raise. */
  #refused(error: Error): void {
    try {
      this.#onError?.(error);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  /** The connection name a hello asks for, when it is one connectShm made under this listener. */
  #connectionName(hello: Uint8Array): string | undefined {
    let end = hello.length;
    while (end > 0 && hello[end - 1] === 0) end--;
    const text = new TextDecoder().decode(hello.subarray(0, end));
    if (!text.startsWith(HELLO)) return undefined; // not a winipc client: ignore it
    const name = text.slice(HELLO.length);
    const prefix = `${this.name}#c`;
    if (!name.startsWith(prefix) || !CONNECTION_SUFFIX.test(name.slice(prefix.length))) {
      this.#refused(
        new ProtocolError(
          `Listener "${this.name}": a client asked it to open "${
            name.slice(0, 300)
          }", which is not a connection name under "${prefix}"`,
        ),
      );
      return undefined;
    }
    return name;
  }

  /**
   * Waits for the next client.
   *
   * @param options `timeout` (milliseconds, default none) and `signal`, which stop the wait.
   * @returns The connection, or `null` once the listener is closed.
   * @throws {Deno.errors.TimedOut} When the timeout elapses first.
   * @throws The signal's reason when aborted.
   */
  async accept(options?: IoOptions): Promise<ShmChannel | null> {
    const { signal, timeout } = parseArg(ioOptionsSchema.optional(), options, "options") ?? {};
    const deadline = timeout === undefined ? Infinity : performance.now() + timeout;
    for (;;) {
      let hello: Uint8Array | null;
      try {
        hello = await this.#rendezvous.receive({
          signal,
          timeout: deadline === Infinity
            ? undefined
            : Math.max(0, Math.ceil(deadline - performance.now())),
        });
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return null; // closed while waiting
        if (e instanceof PeerGoneError) {
          // A client died in the middle of its hello, in a frame that could not be stepped
          // over (not one a winipc client writes): reported once; the rendezvous waits on.
          if (this.#stuckOn !== e.pid) this.#refused(e);
          this.#stuckOn = e.pid;
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        throw e; // a ProtocolError: the rendezvous ring itself is broken
      }
      if (hello === null) return null;
      this.#stuckOn = 0;
      const name = this.#connectionName(hello);
      if (name === undefined) continue;
      try {
        return await ShmChannel.open(name, { spinMicros: this.#spinMicros, timeout: 10_000 });
      } catch (e) {
        // the client gave up (or died) before we opened its channel: wait for the next one
        this.#refused(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  /** Connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<ShmChannel> {
    for (;;) {
      const conn = await this.accept();
      if (conn === null) return;
      yield conn;
    }
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#rendezvous.closed;
  }

  /** Stops listening. Connections already accepted stay open. */
  close(): void {
    this.#rendezvous.close();
  }

  /** Stops listening. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#rendezvous[Symbol.asyncDispose]();
  }
}

/**
 * Listens for shared-memory connections under a name.
 *
 * @param name The name clients connect to (at most 200 characters).
 * @param options `spinMicros` for accepted connections.
 * @returns The listener.
 * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when another listener has the name.
 *
 * @example Serve each client on its own task
 * ```ts
 * import { listenShm } from "./shm_listener.ts";
 * await using listener = await listenShm("Local\\upper", { spinMicros: 20 });
 * for await (const conn of listener) {
 *   (async () => {
 *     const text = new TextDecoder();
 *     for await (const m of conn) await conn.send(new TextEncoder().encode(text.decode(m).toUpperCase()));
 *   })();
 * }
 * ```
 */
export async function listenShm(
  name: string,
  options?: ShmConnectionOptions,
): Promise<ShmListener> {
  const n = parseArg(nameSchema, name, "name");
  const opts: ShmConnectionOptions = parseArg(optionsSchema, options, "options") ?? {};
  const rendezvous = await ShmChannel.create(n, {
    capacity: 1 << 16,
    endWhenSendersClose: false,
    security: opts.security,
  });
  channelInternals.fixedFrames(rendezvous, HELLO_FRAME);
  return newListener(n, rendezvous, opts.spinMicros, opts.onError);
}

let connections = 0;

/**
 * Connects to a shared-memory listener.
 *
 * @param name The listener's name.
 * @param options `capacity` and `spinMicros` of the connection, `timeout` for the listener to
 * take it.
 * @returns The connection: `send` reaches the listener's side, `receive` gets what it sends.
 * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when nobody listens under the name.
 * @throws {Deno.errors.TimedOut} When the listener does not take the connection in time.
 *
 * @example Send a request, read the reply
 * ```ts
 * import { connectShm } from "./shm_listener.ts";
 * await using conn = await connectShm("Local\\upper");
 * await conn.send(new TextEncoder().encode("hello"));
 * console.log(new TextDecoder().decode((await conn.receive())!)); // "HELLO"
 * ```
 */
export async function connectShm(
  name: string,
  options?: ShmConnectionOptions,
): Promise<ShmChannel> {
  const n = parseArg(nameSchema, name, "name");
  const opts: ShmConnectionOptions = parseArg(optionsSchema, options, "options") ?? {};
  const deadline = performance.now() + (opts.timeout ?? 10_000);
  const left = () => Math.max(0, Math.ceil(deadline - performance.now()));
  await using rendezvous = await ShmChannel.open(n, { timeout: left(), signal: opts.signal });
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  const own = `${n}#c${Deno.pid}-${++connections}-${random}`;
  const conn = await ShmChannel.create(own, {
    capacity: opts.capacity,
    spinMicros: opts.spinMicros,
    security: opts.security,
    listed: false, // one per connection: listServices shows the listener's rendezvous instead
  });
  try {
    const hello = new Uint8Array(HELLO_BYTES); // padded with NULs: see HELLO_BYTES
    new TextEncoder().encodeInto(HELLO + own, hello);
    await rendezvous.send(hello, { timeout: left(), signal: opts.signal });
    await conn.waitForPeer({ timeout: left(), signal: opts.signal });
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}
