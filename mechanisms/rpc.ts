/**
 * Typed remote procedure calls between processes: JSON-RPC 2.0 messages (so any JSON-RPC peer can
 * talk to it), procedures declared with zod schemas for their parameters and results and checked
 * on both sides, concurrent calls, timeouts, cancellation, and errors with codes carried across.
 *
 * The transport is any message connection ({@linkcode MessageConnection}). {@linkcode RpcServer}
 * and {@linkcode RpcClient} speak over a message-mode named pipe by default (`transport: "pipe"`,
 * the pipe `\\.\pipe\<name>`), over shared-memory connections for speed
 * (`transport: "shm"`), or across machines over TCP: pass `{ transport: "tcp", hostname, port }`
 * instead of a name (newline-delimited JSON, optional TLS and shared-secret token; see
 * {@linkcode ./rpc_tcp.ts}).
 *
 * @example A typed service
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcClient, RpcServer } from "./rpc.ts";
 *
 * const api = defineProcedures({
 *   add: { params: z.object({ a: z.number(), b: z.number() }), result: z.number() },
 * });
 * // server
 * await using server = await RpcServer.listen("Local\\calc", api, { add: ({ a, b }) => a + b });
 * // client, in another process
 * await using client = await RpcClient.connect("Local\\calc", api);
 * const sum = await client.call("add", { a: 2, b: 3 }); // 5, typed as number
 * ```
 *
 * @module
 */
import { WinipcError } from "../ffi/base_error.ts";
import { z } from "zod";
import { NamedPipeClient, NamedPipeServer, type PipeConnection } from "./pipe.ts";
import { connectShm, listenShm } from "./shm_listener.ts";
import { type IoOptions, ioOptionsSchema, parseArg } from "./_validate.ts";
import { spinSchema } from "./_shm_limits.ts";
import {
  AUTH_METHOD,
  connectTcp,
  DEFAULT_MAX_LINE,
  listenTcp,
  tcpConnectSchema,
  tcpListenSchema,
  UNAUTHORIZED,
} from "./rpc_tcp.ts";

/**
 * A schema: anything with zod's `safeParse` (a zod schema is one; so is any library's object
 * of that shape).
 *
 * @example A schema without zod
 * ```ts
 * import type { Schema } from "./rpc.ts";
 * const positive: Schema<number> = {
 *   safeParse: (v) =>
 *     typeof v === "number" && v > 0
 *       ? { success: true, data: v }
 *       : { success: false, error: { issues: [{ path: [], message: "must be a positive number" }] } },
 * };
 * ```
 */
export interface Schema<Output = unknown> {
  /** Checks a value: its parsed form, or the issues found. */
  safeParse(value: unknown):
    | { success: true; data: Output }
    | { success: false; error: { issues: readonly SchemaIssue[] } };
}

/**
 * One problem a schema found.
 *
 * @example Print where a value went wrong
 * ```ts
 * import { z } from "zod";
 * import type { SchemaIssue } from "./rpc.ts";
 * const result = z.object({ a: z.number() }).safeParse({ a: "x" });
 * if (!result.success) {
 *   const issue: SchemaIssue = result.error.issues[0];
 *   console.log(issue.path.join("."), issue.message); // a, Invalid input: ...
 * }
 * ```
 */
export interface SchemaIssue {
  /** Where in the value. */
  readonly path: readonly PropertyKey[];
  /** What is wrong. */
  readonly message: string;
}

/**
 * The type a schema produces.
 *
 * @example The parameter type of a procedure
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, type Infer } from "./rpc.ts";
 * const api = defineProcedures({ add: { params: z.tuple([z.number(), z.number()]), result: z.number() } });
 * const params: Infer<typeof api.add.params> = [2, 3];
 * ```
 */
export type Infer<S> = S extends Schema<infer O> ? O : never;

/**
 * One procedure: the schema of its parameters and of its result.
 *
 * @example A procedure that takes a path and returns its size
 * ```ts
 * import { z } from "zod";
 * import type { ProcedureSchema } from "./rpc.ts";
 * const fileSize = {
 *   params: z.object({ path: z.string() }),
 *   result: z.number().int().min(0),
 * } satisfies ProcedureSchema;
 * ```
 */
export interface ProcedureSchema<P extends Schema = Schema, R extends Schema = Schema> {
  /** Parameters (JSON-RPC `params`: an object or an array). */
  params: P;
  /** The result. */
  result: R;
}

/**
 * Procedures by name.
 *
 * @example A function that works with any API
 * ```ts
 * import type { Procedures } from "./rpc.ts";
 * function methodNames(api: Procedures): string[] {
 *   return Object.keys(api).sort();
 * }
 * ```
 */
export type Procedures = Record<string, ProcedureSchema>;

/**
 * The server's implementation of each procedure.
 *
 * @example Handlers checked against the API, one of them cancellable
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, type Handlers } from "./rpc.ts";
 * const api = defineProcedures({
 *   add: { params: z.tuple([z.number(), z.number()]), result: z.number() },
 *   fetchText: { params: z.object({ url: z.string() }), result: z.string() },
 * });
 * const handlers: Handlers<typeof api> = {
 *   add: ([a, b]) => a + b,
 *   fetchText: async ({ url }, { signal }) => await (await fetch(url, { signal })).text(),
 * };
 * ```
 */
export type Handlers<T extends Procedures> = {
  [K in keyof T]: (
    params: Infer<T[K]["params"]>,
    context: { signal: AbortSignal },
  ) => Infer<T[K]["result"]> | Promise<Infer<T[K]["result"]>>;
};

/**
 * Declares procedures (a typed identity function, for inference).
 *
 * @param procedures The procedures.
 * @returns The same object.
 *
 * @example Declare an API once, for both sides
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures } from "./rpc.ts";
 * export const api = defineProcedures({
 *   greet: { params: z.object({ name: z.string() }), result: z.string() },
 * });
 * ```
 */
export function defineProcedures<T extends Procedures>(procedures: T): T {
  return procedures;
}

/**
 * JSON-RPC 2.0 error codes, and winipc's.
 *
 * @example Tell a refused argument from a failed procedure
 * ```ts
 * import { RpcError, RpcErrorCode } from "./rpc.ts";
 * declare const call: () => Promise<unknown>;
 * try {
 *   await call();
 * } catch (e) {
 *   if (e instanceof RpcError && e.code === RpcErrorCode.InvalidParams) console.log("bad input");
 * }
 * ```
 */
export const RpcErrorCode = {
  /** The message was not JSON. */
  ParseError: -32700,
  /** The message was not a JSON-RPC request. */
  InvalidRequest: -32600,
  /** No procedure of that name. */
  MethodNotFound: -32601,
  /** The parameters failed the procedure's schema. */
  InvalidParams: -32602,
  /** The procedure failed. */
  InternalError: -32603,
  /** The result failed the procedure's schema (on either side). */
  InvalidResult: -32001,
  /** The call was cancelled by the caller. */
  RequestCancelled: -32800,
  /** The server requires a token and the client's was wrong or missing (TCP). */
  Unauthorized: UNAUTHORIZED,
} as const;

/** The name of a JSON-RPC error code: its key in {@linkcode RpcErrorCode}, else `RPC_<code>`. */
function rpcCodeName(code: number): string {
  for (const [name, value] of Object.entries(RpcErrorCode)) if (value === code) return name;
  return `RPC_${code}`;
}

/**
 * An error carried across a call: a JSON-RPC error object.
 *
 * @example Fail a call with an application code and data
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcError, RpcServer } from "./rpc.ts";
 * const api = defineProcedures({ withdraw: { params: z.tuple([z.number()]), result: z.number() } });
 * let balance = 100;
 * await using server = await RpcServer.listen("bank", api, {
 *   withdraw: ([amount]) => {
 *     if (amount > balance) throw new RpcError(1001, "Insufficient funds", { balance });
 *     return balance -= amount;
 *   },
 * });
 * ```
 */
export class RpcError extends WinipcError {
  /** The JSON-RPC error code; `codeName` is its name in {@linkcode RpcErrorCode}, else `RPC_<code>`. */
  declare readonly code: number;
  /** Extra data the server attached. */
  readonly data: unknown;
  /**
   * Makes an error to throw from a handler (it reaches the caller with its code and data).
   *
   * @param code The code (see {@linkcode RpcErrorCode}; applications use their own).
   * @param message The message.
   * @param data Extra data.
   */
  constructor(code: number, message: string, data?: unknown) {
    super(message, code, rpcCodeName(code));
    this.name = "RpcError";
    this.data = data;
  }
}

/**
 * What RPC runs over: a connection that carries whole messages both ways.
 *
 * @example A message-mode named pipe connection as a MessageConnection
 * ```ts
 * import type { MessageConnection } from "./rpc.ts";
 * import type { PipeConnection } from "./pipe.ts";
 * declare const pipe: PipeConnection; // opened with mode: "message"
 * const conn: MessageConnection = {
 *   send: async (data) => {
 *     await pipe.write(data);
 *   },
 *   receive: () => pipe.readMessage(),
 *   close: () => pipe.close(),
 * };
 * ```
 */
export interface MessageConnection {
  /** Sends one whole message. */
  send(data: Uint8Array): Promise<void>;
  /** The next message, or `null` at the end. */
  receive(): Promise<Uint8Array | null>;
  /** Closes the connection. */
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Id = number | string | null;
interface Request {
  jsonrpc: "2.0";
  id?: Id;
  method: string;
  params?: unknown;
}

const requestSchema = z.object({
  jsonrpc: z.literal("2.0"),
  id: z.union([z.number(), z.string(), z.null()]).optional(),
  method: z.string(),
  params: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
});

function issueText(error: { issues: readonly SchemaIssue[] }): string {
  const issue = error.issues[0];
  return `${issue.path.length ? issue.path.join(".") + ": " : ""}${issue.message}`;
}

/** Default of {@linkcode ServeOptions.maxConcurrent}. */
const DEFAULT_MAX_CONCURRENT = 64;
/** Default of {@linkcode ServeOptions.maxBatch}. */
const DEFAULT_MAX_BATCH = 100;

/**
 * Limits of {@linkcode serveConnection} (and of every connection of an {@linkcode RpcServer}).
 *
 * @example Let a trusted client run many calls at once
 * ```ts
 * import type { ServeOptions } from "./rpc.ts";
 * const limits: ServeOptions = { maxConcurrent: 1024, maxBatch: 1000 };
 * ```
 */
export interface ServeOptions {
  /**
   * Calls of one connection that may run at once. Once reached, the connection is not read
   * until one ends (the client waits; nothing is refused). Default 64.
   */
  maxConcurrent?: number;
  /**
   * Requests a batch may hold. A longer batch is answered with one `InvalidRequest` error and
   * none of its calls runs. Default 100.
   */
  maxBatch?: number;
}

const limitSchema = z.number().int({ error: "must be an integer" })
  .min(1, { error: "must be at least 1" }).max(1_000_000, { error: "must be at most 1,000,000" });
const serveOptionsSchema = z.object({
  maxConcurrent: limitSchema.optional(),
  maxBatch: limitSchema.optional(),
}).strict().optional();

/**
 * Serves procedures on one connection until it ends: requests run concurrently, each answered
 * when done.
 *
 * @param conn The connection.
 * @param procedures The schemas.
 * @param handlers The implementations.
 * @param options `maxConcurrent` and `maxBatch`.
 *
 * @example Serve every shared-memory connection of a listener
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, serveConnection } from "./rpc.ts";
 * import { listenShm } from "./shm_listener.ts";
 * const api = defineProcedures({ ping: { params: z.tuple([]), result: z.literal("pong") } });
 * await using listener = await listenShm("Local\\pinger");
 * for await (const conn of listener) {
 *   serveConnection(conn, api, { ping: () => "pong" as const });
 * }
 * ```
 */
export async function serveConnection<T extends Procedures>(
  conn: MessageConnection,
  procedures: T,
  handlers: Handlers<T>,
  options?: ServeOptions,
): Promise<void> {
  const opts: ServeOptions = parseArg(serveOptionsSchema, options, "options") ?? {};
  const maxConcurrent = opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  const running = new Map<Id, AbortController>();
  /** Calls of this connection in flight; the connection is not read while there are too many. */
  let inflight = 0;
  let room: (() => void) | undefined;
  const done = () => {
    inflight--;
    room?.();
    room = undefined;
  };
  const reply = async (message: unknown) => {
    try {
      await conn.send(encoder.encode(JSON.stringify(message)));
    } catch {
      // the client is gone; its calls are over
    }
  };
  /** Answers one request; never rejects (a schema or handler that throws is an error reply). */
  const handle = async (raw: unknown): Promise<unknown> => {
    try {
      return await handleUnchecked(raw);
    } catch (e) {
      const id = (raw as { id?: unknown } | null)?.id;
      if (id === undefined) return undefined; // a notification gets no answer
      return {
        jsonrpc: "2.0",
        id: typeof id === "number" || typeof id === "string" ? id : null,
        error: {
          code: RpcErrorCode.InternalError,
          message: e instanceof Error ? e.message : String(e),
        },
      };
    }
  };
  const handleUnchecked = async (raw: unknown): Promise<unknown> => {
    const parsed = requestSchema.safeParse(raw);
    const id = (raw as { id?: Id } | null)?.id ?? null;
    if (!parsed.success) {
      return {
        jsonrpc: "2.0",
        id,
        error: {
          code: RpcErrorCode.InvalidRequest,
          message: `Invalid request: ${issueText(parsed.error)}`,
        },
      };
    }
    const request = parsed.data as Request;
    if (request.method === "$/cancelRequest") {
      const target = (request.params as { id?: Id } | undefined)?.id;
      running.get(target ?? null)?.abort(
        new RpcError(RpcErrorCode.RequestCancelled, "Request cancelled"),
      );
      return undefined;
    }
    const notification = request.id === undefined;
    const fail = (code: number, message: string, data?: unknown) =>
      notification ? undefined : { jsonrpc: "2.0", id: request.id, error: { code, message, data } };
    const schema = Object.hasOwn(procedures, request.method)
      ? procedures[request.method]
      : undefined;
    if (!schema) return fail(RpcErrorCode.MethodNotFound, `Method not found: ${request.method}`);
    let params: ReturnType<Schema["safeParse"]>;
    try {
      params = schema.params.safeParse(request.params);
    } catch (e) {
      // a schema that throws (a refine or transform) instead of reporting an issue
      return fail(
        RpcErrorCode.InvalidParams,
        `Invalid params for ${request.method}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (!params.success) {
      return fail(
        RpcErrorCode.InvalidParams,
        `Invalid params for ${request.method}: ${issueText(params.error)}`,
      );
    }
    const controller = new AbortController();
    if (!notification) running.set(request.id!, controller);
    try {
      const handler = handlers[request.method] as (
        params: unknown,
        context: { signal: AbortSignal },
      ) => unknown;
      const value = await handler(params.data, { signal: controller.signal });
      const result = schema.result.safeParse(value);
      if (!result.success) {
        return fail(
          RpcErrorCode.InvalidResult,
          `Invalid result from ${request.method}: ${issueText(result.error)}`,
        );
      }
      return notification ? undefined : { jsonrpc: "2.0", id: request.id, result: result.data };
    } catch (e) {
      if (e instanceof RpcError) return fail(e.code, e.message, e.data);
      return fail(RpcErrorCode.InternalError, e instanceof Error ? e.message : String(e));
    } finally {
      running.delete(request.id ?? null);
    }
  };
  for (;;) {
    let message: Uint8Array | null;
    try {
      message = await conn.receive();
    } catch {
      break; // the client died or the connection was closed
    }
    if (message === null) break;
    let body: unknown;
    try {
      body = JSON.parse(decoder.decode(message));
    } catch {
      await reply({
        jsonrpc: "2.0",
        id: null,
        error: { code: RpcErrorCode.ParseError, message: "Parse error" },
      });
      continue;
    }
    if (Array.isArray(body) && body.length > maxBatch) {
      await reply({
        jsonrpc: "2.0",
        id: null,
        error: {
          code: RpcErrorCode.InvalidRequest,
          message:
            `Invalid request: a batch of ${body.length} requests is larger than the server's limit of ${maxBatch}`,
        },
      });
      continue;
    }
    // Wait for room: a client cannot make this server run more than maxConcurrent of its calls.
    while (inflight >= maxConcurrent) await new Promise<void>((resolve) => room = resolve);
    if (Array.isArray(body)) {
      // a batch: answered as one array, once all its calls are done
      inflight += body.length;
      Promise.all(body.map((item) => handle(item).finally(done))).then((answers) => {
        const present = answers.filter((a) => a !== undefined);
        if (present.length) return reply(present);
      });
    } else {
      inflight++;
      handle(body).then((answer) => answer === undefined ? undefined : reply(answer)).finally(
        done,
      );
    }
  }
  for (const controller of running.values()) controller.abort();
  conn.close();
}

/**
 * How RPC messages travel.
 *
 * @example Pick the transport from the environment
 * ```ts
 * import type { RpcTransport } from "./rpc.ts";
 * const transport: RpcTransport = Deno.env.get("RPC_TRANSPORT") === "shm" ? "shm" : "pipe";
 * ```
 */
export type RpcTransport = "pipe" | "shm" | "tcp";

/**
 * Where an {@linkcode RpcServer} listens over TCP.
 *
 * @example Listen on every interface with TLS and a token
 * ```ts
 * import type { TcpListenAddress } from "./rpc.ts";
 * const address: TcpListenAddress = {
 *   transport: "tcp",
 *   hostname: "0.0.0.0",
 *   port: 7000,
 *   cert: await Deno.readTextFile("cert.pem"),
 *   key: await Deno.readTextFile("key.pem"),
 *   token: Deno.env.get("RPC_TOKEN"),
 * };
 * ```
 */
export interface TcpListenAddress {
  /** Always `"tcp"`. */
  transport: "tcp";
  /** The address to bind. Default `127.0.0.1` (this machine only). */
  hostname?: string;
  /** The port; 0 lets the system choose (read it back from `RpcServer.port`). */
  port: number;
  /** A shared secret every client must present before its first call. */
  token?: string;
  /** A PEM certificate chain: with `key`, the server speaks TLS. */
  cert?: string;
  /** The PEM private key of `cert`. */
  key?: string;
  /** The longest line (one JSON-RPC message) a client may send, in bytes. Default 4 MiB. */
  maxLineBytes?: number;
}

/**
 * Where an {@linkcode RpcClient} connects over TCP.
 *
 * @example Connect over TLS to a server with a self-signed certificate
 * ```ts
 * import type { TcpConnectAddress } from "./rpc.ts";
 * const address: TcpConnectAddress = {
 *   transport: "tcp",
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   tls: true,
 *   caCerts: [await Deno.readTextFile("cert.pem")],
 *   token: "s3cret",
 * };
 * ```
 */
export interface TcpConnectAddress {
  /** Always `"tcp"`. */
  transport: "tcp";
  /** The server's host. Default `127.0.0.1`. */
  hostname?: string;
  /** The server's port. */
  port: number;
  /** The shared secret the server asks for. */
  token?: string;
  /** Speak TLS (the server's certificate is checked against the system's roots or `caCerts`). */
  tls?: boolean;
  /** PEM certificates to trust besides the system's (a self-signed server's certificate). */
  caCerts?: string[];
  /** The longest line the server may send, in bytes. Default 4 MiB. */
  maxLineBytes?: number;
}

/**
 * Options of {@linkcode RpcServer.listen}.
 *
 * @example Serve over shared memory, sleeping sooner when idle
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcServer } from "./rpc.ts";
 * const api = defineProcedures({ now: { params: z.tuple([]), result: z.number() } });
 * await using server = await RpcServer.listen("Local\\clock", api, { now: () => Date.now() }, {
 *   transport: "shm",
 *   spinMicros: 10,
 * });
 * ```
 */
export interface RpcServerOptions {
  /**
   * `"pipe"` (default: a message-mode named pipe) or `"shm"` (shared-memory connections);
   * `"tcp"` is chosen by giving a TCP address instead of a name.
   */
  transport?: RpcTransport;
  /** Microseconds shared-memory connections spin before sleeping. Default 50. */
  spinMicros?: number;
  /** Calls of one connection that may run at once (see {@linkcode ServeOptions}). Default 64. */
  maxConcurrent?: number;
  /** Requests a batch may hold (see {@linkcode ServeOptions}). Default 100. */
  maxBatch?: number;
  /**
   * Over a pipe: refuse clients from other machines (`PIPE_REJECT_REMOTE_CLIENTS`). Default
   * `true`. With `false`, clients on other machines may connect as `\\<this machine>\pipe\<name>`
   * (the pipe's DACL still lets only the current user in).
   */
  rejectRemoteClients?: boolean;
  /**
   * Over a pipe: the longest request message accepted. A client that sends a longer one has it
   * refused before it is read (a `MessageTooLargeError` on the server's side) and its
   * connection closed; other clients go on. Default 4 MiB, as `maxLineBytes` over TCP.
   */
  maxMessageBytes?: number;
}

/** A message-mode pipe connection as a {@linkcode MessageConnection}. */
function pipeMessages(conn: PipeConnection): MessageConnection {
  return {
    send: async (data) => {
      await conn.write(data);
    },
    receive: () => conn.readMessage(),
    close: () => conn.close(),
  };
}

/** What the server accepts connections from, whatever the transport. */
interface Acceptor {
  connections: AsyncIterable<MessageConnection>;
  close(): void | Promise<void>;
}

async function accept(name: string, options: RpcServerOptions): Promise<Acceptor> {
  if (options.transport === "tcp") {
    throw new TypeError(
      'A TCP server is given by its address: RpcServer.listen({ transport: "tcp", hostname, port }, ...)',
    );
  }
  if (options.transport === "shm") {
    for (const key of ["rejectRemoteClients", "maxMessageBytes"] as const) {
      if (options[key] !== undefined) {
        throw new TypeError(`options.${key}: goes with transport "pipe"`);
      }
    }
    const listener = await listenShm(name, { spinMicros: options.spinMicros });
    return { connections: listener, close: () => listener[Symbol.asyncDispose]() };
  }
  const server = NamedPipeServer.listen(name, {
    mode: "message",
    rejectRemoteClients: options.rejectRemoteClients,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_LINE,
  });
  return {
    connections: (async function* () {
      for await (const conn of server) yield pipeMessages(conn);
    })(),
    close: () => server.close(),
  };
}

/**
 * Serves procedures to every client that connects under a name.
 *
 * @example Serve until Ctrl+C
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcServer } from "./rpc.ts";
 * const api = defineProcedures({ upper: { params: z.tuple([z.string()]), result: z.string() } });
 * await using server = await RpcServer.listen("text", api, { upper: ([s]) => s.toUpperCase() });
 * console.log(`serving ${server.name} over ${server.transport}`);
 * await new Promise((resolve) => Deno.addSignalListener("SIGINT", () => resolve(undefined)));
 * ```
 */
export class RpcServer implements AsyncDisposable {
  readonly #acceptor: Acceptor;
  readonly #done: Promise<void>;
  #closing: Promise<void> | undefined;
  /** The name clients connect to (over TCP, the bound `host:port`). */
  readonly name: string;
  /** How messages travel. */
  readonly transport: RpcTransport;
  /** Over TCP, the bound port (the one the system chose for port 0); otherwise `undefined`. */
  readonly port: number | undefined;

  private constructor(
    name: string,
    transport: RpcTransport,
    acceptor: Acceptor,
    procedures: Procedures,
    handlers: Handlers<Procedures>,
    limits: ServeOptions,
    port?: number,
  ) {
    this.name = name;
    this.transport = transport;
    this.port = port;
    this.#acceptor = acceptor;
    this.#done = (async () => {
      try {
        for await (const conn of acceptor.connections) {
          // serveConnection answers every failure of a call; what is left is the connection's
          // own end, which ends that client only
          serveConnection(conn, procedures, handlers, limits).catch(() => undefined);
        }
      } catch (e) {
        // Accepting failed for good (a listener whose rendezvous a peer broke): connections
        // already open are still served; the error is kept for asyncDispose.
        if (!(e instanceof Deno.errors.BadResource)) this.#acceptError = e;
      }
    })();
  }

  #acceptError: unknown;

  /** Why the server stopped accepting clients before it was closed, or `undefined`. */
  get acceptError(): unknown {
    return this.#acceptError;
  }

  /**
   * Starts serving.
   *
   * @param name The name clients connect to (a pipe name for `"pipe"`), or a TCP address
   * `{ transport: "tcp", hostname, port, token, cert, key, maxLineBytes }` (hostname
   * `127.0.0.1` unless given; TLS when `cert` and `key` are given).
   * @param procedures The schemas.
   * @param handlers The implementations.
   * @param options `transport` (`"pipe"` by default, or `"shm"`), `spinMicros`, the limits
   * `maxConcurrent` and `maxBatch`, and over a pipe `rejectRemoteClients` (default `true`).
   * @returns The running server.
   */
  static async listen<T extends Procedures>(
    name: string | TcpListenAddress,
    procedures: T,
    handlers: Handlers<T>,
    options?: RpcServerOptions,
  ): Promise<RpcServer> {
    const opts = parseArg(serverOptionsSchema, options, "options") ?? {};
    if (typeof name !== "string") {
      const address = parseArg(tcpListenSchema, name, "address");
      if (opts.transport !== undefined && opts.transport !== "tcp") {
        throw new TypeError(`options.transport: "${opts.transport}" does not take a TCP address`);
      }
      if (opts.rejectRemoteClients !== undefined) {
        throw new TypeError(
          'options.rejectRemoteClients: goes with transport "pipe" (over TCP, choose the hostname)',
        );
      }
      if (opts.maxMessageBytes !== undefined) {
        throw new TypeError(
          'options.maxMessageBytes: goes with transport "pipe" (over TCP, the address has maxLineBytes)',
        );
      }
      const tcp = listenTcp(address);
      const host = tcp.hostname.includes(":") ? `[${tcp.hostname}]` : tcp.hostname;
      return new RpcServer(
        `${host}:${tcp.port}`,
        "tcp",
        tcp,
        procedures,
        handlers as Handlers<Procedures>,
        { maxConcurrent: opts.maxConcurrent, maxBatch: opts.maxBatch },
        tcp.port,
      );
    }
    const acceptor = await accept(name, opts);
    return new RpcServer(
      name,
      opts.transport ?? "pipe",
      acceptor,
      procedures,
      handlers as Handlers<Procedures>,
      { maxConcurrent: opts.maxConcurrent, maxBatch: opts.maxBatch },
    );
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Stops accepting clients; connections already open are served until they end. A second call
   * does nothing.
   */
  close(): void {
    void this.#stop();
  }

  #stop(): Promise<void> {
    return this.#closing ??= (async () => await this.#acceptor.close())();
  }

  /** Stops accepting and waits for the accept loop to end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stop();
    await this.#done;
  }
}

/**
 * Options of a call.
 *
 * @example Give up after 2 s, or when the user cancels
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcClient } from "./rpc.ts";
 * const api = defineProcedures({ slow: { params: z.tuple([]), result: z.string() } });
 * await using client = await RpcClient.connect("worker", api);
 * const cancel = new AbortController();
 * const result = await client.call("slow", [], { timeout: 2000, signal: cancel.signal });
 * ```
 */
export interface CallOptions extends IoOptions {
  /** Milliseconds before the call fails with `Deno.errors.TimedOut` (and is cancelled). */
  timeout?: number;
  /** Cancels the call (the server's handler sees its signal abort). */
  signal?: AbortSignal;
}

const callOptionsSchema = ioOptionsSchema.optional();

/**
 * Options of {@linkcode RpcClient.connect}.
 *
 * @example Connect over shared memory, waiting up to 30 s for the server
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcClient } from "./rpc.ts";
 * const api = defineProcedures({ now: { params: z.tuple([]), result: z.number() } });
 * await using client = await RpcClient.connect("Local\\clock", api, {
 *   transport: "shm",
 *   timeout: 30_000,
 * });
 * ```
 */
export interface RpcClientOptions extends IoOptions {
  /** `"pipe"` (default) or `"shm"`: what the server listens on (`"tcp"` comes with an address). */
  transport?: RpcTransport;
  /** Milliseconds to wait for the server to take the connection. Default 10,000. */
  timeout?: number;
  /** Gives up connecting: `connect` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Microseconds shared-memory connections spin before sleeping. Default 50. */
  spinMicros?: number;
  /**
   * Over a pipe: the longest answer message accepted; a longer one ends the connection (its
   * pending calls reject). Default 4 MiB.
   */
  maxMessageBytes?: number;
  /**
   * Over a pipe: talk only to a server that runs as the current user (see
   * `NamedPipeConnectOptions.currentUserOnly`), so a squatter of the name never receives a
   * call. Default `true`; `false` to call a server of another user (a service).
   */
  currentUserOnly?: boolean;
}

const maxMessageSchema = z.number({ error: "must be a number of bytes" })
  .int({ error: "must be a whole number of bytes" })
  .min(1, { error: "must be at least 1 byte" })
  .max(0xffff_ffff, { error: "must be below 4 GiB" });
const transportSchema = z.enum(["pipe", "shm", "tcp"], {
  error: 'must be "pipe", "shm" or "tcp"',
});
const serverOptionsSchema = z.object({
  transport: transportSchema.optional(),
  spinMicros: spinSchema.optional(),
  maxConcurrent: limitSchema.optional(),
  maxBatch: limitSchema.optional(),
  rejectRemoteClients: z.boolean({ error: "must be a boolean" }).optional(),
  maxMessageBytes: maxMessageSchema.optional(),
}).strict().optional();
const clientOptionsSchema = ioOptionsSchema.extend({
  transport: transportSchema.optional(),
  spinMicros: spinSchema.optional(),
  maxMessageBytes: maxMessageSchema.optional(),
  currentUserOnly: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().optional();

/** Presents the token to a TCP server and waits for its answer. */
/**
 * Settles as `work` does, or rejects with the signal's reason when it aborts first; what `work`
 * brings after that is handed to `discard`.
 */
function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  discard: (late: T) => void,
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.then(discard, () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      work.then(discard, () => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function authenticate(conn: MessageConnection, token: string, timeout: number) {
  await conn.send(encoder.encode(JSON.stringify({
    jsonrpc: "2.0",
    id: 0,
    method: AUTH_METHOD,
    params: { token },
  })));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), timeout));
  let line: Uint8Array | null | "late";
  try {
    line = await Promise.race([conn.receive(), late]);
  } finally {
    clearTimeout(timer);
  }
  if (line === "late") {
    throw new Deno.errors.TimedOut(`The RPC server did not answer the token within ${timeout} ms`);
  }
  if (line === null) {
    throw new Deno.errors.ConnectionReset("The RPC server closed the connection at the token");
  }
  let answer: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
  try {
    answer = JSON.parse(decoder.decode(line));
  } catch {
    throw new RpcError(RpcErrorCode.ParseError, "The RPC server's answer to the token is not JSON");
  }
  if (answer?.error && typeof answer.error === "object") {
    const code = typeof answer.error.code === "number" ? answer.error.code : UNAUTHORIZED;
    const message = typeof answer.error.message === "string"
      ? answer.error.message
      : "Unauthorized";
    throw new RpcError(code, `The RPC server refused the token: ${message}`);
  }
  if (answer?.id !== 0 || answer.result !== true) {
    throw new RpcError(
      RpcErrorCode.InvalidRequest,
      "The RPC server answered the token with something other than its result",
    );
  }
}

/**
 * Calls the procedures of a server. Calls may run concurrently.
 *
 * @example Concurrent typed calls
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcClient } from "./rpc.ts";
 * const api = defineProcedures({
 *   square: { params: z.tuple([z.number()]), result: z.number() },
 * });
 * await using client = await RpcClient.connect("math", api);
 * const squares = await Promise.all([1, 2, 3].map((n) => client.call("square", [n])));
 * ```
 */
export class RpcClient<T extends Procedures> implements AsyncDisposable {
  readonly #conn: MessageConnection;
  #closed = false;
  readonly #procedures: T;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  readonly #reader: Promise<void>;
  #nextId = 1;
  #ended: Error | undefined;

  /**
   * Calls over an already open connection.
   *
   * @param conn The connection.
   * @param procedures The schemas (parameters are checked before sending, results on arrival).
   */
  constructor(conn: MessageConnection, procedures: T) {
    this.#conn = conn;
    this.#procedures = procedures;
    this.#reader = this.#read();
  }

  /**
   * Connects to a server under a name.
   *
   * @param name The server's name, or a TCP address
   * `{ transport: "tcp", hostname, port, token, tls, caCerts, maxLineBytes }`.
   * @param procedures The schemas.
   * @param options `transport` (`"pipe"` by default, or `"shm"`), `timeout`, `spinMicros`, and
   * over a pipe `maxMessageBytes` and `currentUserOnly` (default `true`: a server that does not
   * run as the current user is refused with `Deno.errors.PermissionDenied`).
   * @returns The client.
   * @throws {RpcError} `Unauthorized` when a TCP server refuses the token.
   */
  static async connect<T extends Procedures>(
    name: string | TcpConnectAddress,
    procedures: T,
    options?: RpcClientOptions,
  ): Promise<RpcClient<T>> {
    const opts: RpcClientOptions = parseArg(clientOptionsSchema, options, "options") ?? {};
    if (
      opts.maxMessageBytes !== undefined &&
      (typeof name !== "string" || (opts.transport ?? "pipe") !== "pipe")
    ) {
      throw new TypeError('options.maxMessageBytes: goes with transport "pipe"');
    }
    if (
      opts.currentUserOnly !== undefined &&
      (typeof name !== "string" || (opts.transport ?? "pipe") !== "pipe")
    ) {
      throw new TypeError('options.currentUserOnly: goes with transport "pipe"');
    }
    if (typeof name !== "string") {
      const address = parseArg(tcpConnectSchema, name, "address");
      if (opts.transport !== undefined && opts.transport !== "tcp") {
        throw new TypeError(`options.transport: "${opts.transport}" does not take a TCP address`);
      }
      opts.signal?.throwIfAborted();
      const conn = await untilAborted(
        connectTcp(address, opts.timeout ?? 10_000),
        opts.signal,
        (late) => late.close(),
      );
      if (address.token !== undefined) {
        try {
          await untilAborted(
            authenticate(conn, address.token, opts.timeout ?? 10_000),
            opts.signal,
            () => undefined,
          );
        } catch (e) {
          conn.close(); // on an abort, this also ends the authentication in flight
          throw e;
        }
      }
      return new RpcClient(conn, procedures);
    }
    if (opts.transport === "tcp") {
      throw new TypeError(
        'A TCP server is given by its address: RpcClient.connect({ transport: "tcp", hostname, port }, ...)',
      );
    }
    if (opts.transport === "shm") {
      return new RpcClient(
        await connectShm(name, {
          timeout: opts.timeout,
          signal: opts.signal,
          spinMicros: opts.spinMicros,
        }),
        procedures,
      );
    }
    const pipe = await NamedPipeClient.connect(name, {
      mode: "message",
      timeout: opts.timeout ?? 10_000,
      signal: opts.signal,
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_LINE,
      currentUserOnly: opts.currentUserOnly ?? true,
    });
    return new RpcClient(pipeMessages(pipe), procedures);
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const message = await this.#conn.receive();
        if (message === null) break;
        let body: unknown;
        try {
          body = JSON.parse(decoder.decode(message));
        } catch {
          continue;
        }
        for (const answer of Array.isArray(body) ? body : [body]) {
          const { id, result, error } = answer as {
            id?: number;
            result?: unknown;
            error?: { code: number; message: string; data?: unknown };
          };
          const pending = this.#pending.get(id as number);
          if (!pending) continue;
          this.#pending.delete(id as number);
          if (error) pending.reject(new RpcError(error.code, error.message, error.data));
          else pending.resolve(result);
        }
      }
      this.#ended = new Deno.errors.ConnectionReset("The RPC server closed the connection");
    } catch (e) {
      this.#ended = new Deno.errors.ConnectionReset(
        `The RPC connection failed: ${e instanceof Error ? e.message : e}`,
        { cause: e },
      );
    }
    for (const pending of this.#pending.values()) pending.reject(this.#ended);
    this.#pending.clear();
  }

  /**
   * Calls a procedure.
   *
   * @param method The procedure's name.
   * @param params Its parameters, checked against its schema before anything is sent.
   * @param options `timeout`, `signal`.
   * @returns The result, checked against its schema.
   * @throws {RpcError} For an error the server returned (codes in {@linkcode RpcErrorCode}),
   * for parameters that fail the schema (`InvalidParams`, before sending) and for a result that
   * fails it (`InvalidResult`).
   * @throws {Deno.errors.TimedOut} When the timeout elapses.
   * @throws {Deno.errors.ConnectionReset} When the server goes away during the call.
   */
  async call<K extends keyof T & string>(
    method: K,
    params: Infer<T[K]["params"]>,
    options?: CallOptions,
  ): Promise<Infer<T[K]["result"]>> {
    const opts: CallOptions = parseArg(callOptionsSchema, options, "options") ?? {};
    const schema = this.#procedures[method];
    if (!schema) throw new RpcError(RpcErrorCode.MethodNotFound, `Method not found: ${method}`);
    const checked = schema.params.safeParse(params);
    if (!checked.success) {
      throw new RpcError(
        RpcErrorCode.InvalidParams,
        `Invalid params for ${method}: ${issueText(checked.error)}`,
      );
    }
    const value = await this.#request(method, checked.data, opts);
    const result = schema.result.safeParse(value);
    if (!result.success) {
      throw new RpcError(
        RpcErrorCode.InvalidResult,
        `Invalid result from ${method}: ${issueText(result.error)}`,
      );
    }
    return result.data as Infer<T[K]["result"]>;
  }

  /**
   * Calls a method by name without a schema (for tools such as `winipc rpc call`).
   *
   * @param method The method.
   * @param params JSON-RPC params (an object, an array, or nothing).
   * @param options `timeout`, `signal`.
   * @returns The result as the server sent it.
   */
  async callUnchecked(method: string, params?: unknown, options?: CallOptions): Promise<unknown> {
    const opts: CallOptions = parseArg(callOptionsSchema, options, "options") ?? {};
    return await this.#request(method, params, opts);
  }

  #request(method: string, params: unknown, opts: CallOptions): Promise<unknown> {
    if (this.#ended) return Promise.reject(this.#ended);
    opts.signal?.throwIfAborted();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cancel = (reason: unknown) => {
        if (!this.#pending.delete(id)) return;
        cleanup();
        reject(reason);
        this.#conn.send(encoder.encode(JSON.stringify({
          jsonrpc: "2.0",
          method: "$/cancelRequest",
          params: { id },
        }))).catch(() => undefined);
      };
      const onAbort = () => cancel(opts.signal!.reason);
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      this.#pending.set(id, {
        resolve: (v) => {
          cleanup();
          resolve(v);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      if (opts.timeout !== undefined && opts.timeout !== Infinity) {
        timer = setTimeout(
          () =>
            cancel(
              new Deno.errors.TimedOut(`RPC call ${method} timed out after ${opts.timeout} ms`),
            ),
          opts.timeout,
        );
      }
      const request = params === undefined
        ? { jsonrpc: "2.0", id, method }
        : { jsonrpc: "2.0", id, method, params };
      this.#conn.send(encoder.encode(JSON.stringify(request))).catch((e) => {
        if (this.#pending.delete(id)) {
          cleanup();
          reject(e);
        }
      });
    });
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the connection; pending calls fail. A second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  /** Closes the connection and waits for its reader to stop. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reader;
  }
}
