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
import { ShmChannel } from "./channel.ts";
import { objectNameSchema, parseArg, timeoutSchema } from "./_validate.ts";

const HELLO = "winipc-shm-connect/1 ";

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
export interface ShmConnectionOptions {
  /** Bytes of each ring of each connection (a power of two). Default 1 MiB. */
  capacity?: number;
  /** Microseconds to spin before sleeping. Default 50. */
  spinMicros?: number;
  /** Milliseconds `connectShm` waits for the listener to open the connection. Default 10,000. */
  timeout?: number;
}

const optionsSchema = z.object({
  capacity: z.number().int().optional(),
  spinMicros: z.number().min(0).optional(),
  timeout: timeoutSchema.optional(),
}).strict().optional();

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
  /** The name clients connect to. */
  readonly name: string;

  /** @internal Use {@linkcode listenShm}. */
  constructor(name: string, rendezvous: ShmChannel, spinMicros: number | undefined) {
    this.name = name;
    this.#rendezvous = rendezvous;
    this.#spinMicros = spinMicros;
  }

  /**
   * Waits for the next client.
   *
   * @returns The connection, or `null` once the listener is closed.
   */
  async accept(): Promise<ShmChannel | null> {
    for (;;) {
      let hello: Uint8Array | null;
      try {
        hello = await this.#rendezvous.receive();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return null; // closed while waiting
        throw e;
      }
      if (hello === null) return null;
      const text = new TextDecoder().decode(hello);
      if (!text.startsWith(HELLO)) continue; // not a winipc client: ignore it
      try {
        return await ShmChannel.open(text.slice(HELLO.length), {
          spinMicros: this.#spinMicros,
          timeout: 10_000,
        });
      } catch {
        // the client gave up (or died) before we opened its channel: wait for the next one
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
  const opts = parseArg(optionsSchema, options, "options") ?? {};
  const rendezvous = await ShmChannel.create(n, { capacity: 1 << 16, endWhenSendersClose: false });
  return new ShmListener(n, rendezvous, opts.spinMicros);
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
  const opts = parseArg(optionsSchema, options, "options") ?? {};
  await using rendezvous = await ShmChannel.open(n);
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  const own = `${n}#c${Deno.pid}-${++connections}-${random}`;
  const conn = await ShmChannel.create(own, {
    capacity: opts.capacity,
    spinMicros: opts.spinMicros,
  });
  try {
    await rendezvous.send(new TextEncoder().encode(HELLO + own));
    await conn.waitForPeer({ timeout: opts.timeout ?? 10_000 });
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}
