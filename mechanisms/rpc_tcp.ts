/**
 * The TCP transport of the JSON-RPC layer ({@linkcode ./rpc.ts}): one UTF-8 JSON text per line
 * (newline-delimited), over Deno's own TCP or TLS, with a line length limit and an optional
 * shared-secret token that a client presents first.
 *
 * The framing is plain enough that any language's JSON and socket libraries make a client: write
 * `{"jsonrpc":"2.0","id":1,"method":"add","params":[2,3]}` and a newline, read a line back. When
 * the server has a token, the first line a client sends must be
 * `{"jsonrpc":"2.0","id":0,"method":"$/authenticate","params":{"token":"..."}}`; the server answers
 * it with `{"jsonrpc":"2.0","id":0,"result":true}`, or with an `Unauthorized` error (-32002) and
 * closes the connection.
 *
 * @example Serve and call over TCP
 * ```ts
 * import { z } from "zod";
 * import { defineProcedures, RpcClient, RpcServer } from "./rpc.ts";
 * const api = defineProcedures({ add: { params: z.tuple([z.number(), z.number()]), result: z.number() } });
 * await using server = await RpcServer.listen({ transport: "tcp", port: 0 }, api, {
 *   add: ([a, b]) => a + b,
 * });
 * await using client = await RpcClient.connect({ transport: "tcp", port: server.port! }, api);
 * console.log(await client.call("add", [2, 3])); // 5
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { MessageConnection, TcpConnectAddress, TcpListenAddress } from "./rpc.ts";
import { hostnameSchema, portSchema } from "./_validate.ts";

/** Default of `maxLineBytes`: 4 MiB. */
export const DEFAULT_MAX_LINE = 4 * 1024 * 1024;
/** Milliseconds a client of a server with a token has to present it. */
export const AUTH_TIMEOUT = 10_000;
/** The JSON-RPC error code of a refused (or missing) token. */
export const UNAUTHORIZED = -32002;
/** The method a client presents its token with. */
export const AUTH_METHOD = "$/authenticate";

const tokenSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(4096, { error: "must be at most 4096 characters" })
  .refine((s) => !/[\0\r\n]/.test(s), { error: "must not contain NUL or line breaks" });
const maxLineSchema = z.number({ error: "must be a number" })
  .int({ error: "must be an integer" })
  .min(64, { error: "must be at least 64" })
  .max(1024 * 1024 * 1024, { error: "must be at most 1 GiB" });
const pemSchema = z.string({ error: "must be PEM text" })
  .min(1, { error: "must not be empty" })
  .max(1024 * 1024, { error: "must be at most 1 MiB" });

/** Checks a {@linkcode TcpListenAddress}. */
export const tcpListenSchema: z.ZodType<TcpListenAddress> = z.object({
  transport: z.literal("tcp"),
  hostname: hostnameSchema.optional(),
  port: portSchema,
  token: tokenSchema.optional(),
  cert: pemSchema.optional(),
  key: pemSchema.optional(),
  maxLineBytes: maxLineSchema.optional(),
}).strict().refine((a) => (a.cert === undefined) === (a.key === undefined), {
  error: "cert and key must be given together",
});

/** Checks a {@linkcode TcpConnectAddress}. */
export const tcpConnectSchema: z.ZodType<TcpConnectAddress> = z.object({
  transport: z.literal("tcp"),
  hostname: hostnameSchema.optional(),
  port: portSchema.refine((p) => p > 0, { error: "must be at least 1" }),
  token: tokenSchema.optional(),
  tls: z.boolean({ error: "must be a boolean" }).optional(),
  caCerts: z.array(pemSchema).max(64, { error: "must hold at most 64 certificates" }).optional(),
  maxLineBytes: maxLineSchema.optional(),
}).strict();

const NL = 0x0a;
const CR = 0x0d;

/**
 * A byte stream as newline-delimited messages: each `send` writes the message and a newline
 * (queued sends are written together), each `receive` returns the next line without its
 * newline (and without a `\r` before it). A line longer than `maxLine` fails `receive`, so a
 * peer cannot make us buffer without bound.
 *
 * @param conn The stream (a TCP or TLS connection).
 * @param maxLine The longest line accepted, in bytes.
 * @returns The connection.
 */
export function lineConnection(conn: Deno.Conn, maxLine: number): MessageConnection {
  const lines: Uint8Array[] = [];
  /** Bytes of a line not yet ended. */
  let partial: Uint8Array[] = [];
  let partialSize = 0;
  let eof = false;
  const buffer = new Uint8Array(64 * 1024);
  let closed = false;

  const take = (chunk: Uint8Array) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      const tail = chunk.subarray(start, nl);
      if (partialSize + tail.length > maxLine) throw lineTooLong(maxLine);
      let line: Uint8Array;
      if (partial.length === 0) line = tail.slice();
      else {
        line = new Uint8Array(partialSize + tail.length);
        let at = 0;
        for (const p of partial) {
          line.set(p, at);
          at += p.length;
        }
        line.set(tail, at);
        partial = [];
        partialSize = 0;
      }
      if (line.length && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length) lines.push(line); // blank lines are keep-alives
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (partialSize + rest.length > maxLine) throw lineTooLong(maxLine);
      partial.push(rest.slice());
      partialSize += rest.length;
    }
  };

  // Writes: one writer at a time; messages sent while it writes go out together next.
  let queued: { parts: Uint8Array[]; size: number; done: PromiseWithResolvers<void> } | null = null;
  let writing = false;
  const pump = async () => {
    writing = true;
    while (queued) {
      const batch = queued;
      queued = null;
      const out = new Uint8Array(batch.size);
      let at = 0;
      for (const p of batch.parts) {
        out.set(p, at);
        at += p.length;
        out[at++] = NL;
      }
      try {
        for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
        batch.done.resolve();
      } catch (e) {
        batch.done.reject(e);
      }
    }
    writing = false;
  };

  return {
    send(data) {
      if (closed) return Promise.reject(new Deno.errors.BadResource("The connection is closed"));
      if (data.includes(NL)) {
        return Promise.reject(new TypeError("A message sent over TCP must not contain a newline"));
      }
      if (!queued) queued = { parts: [], size: 0, done: Promise.withResolvers() };
      queued.parts.push(data);
      queued.size += data.length + 1;
      const done = queued.done.promise;
      if (!writing) void pump();
      return done;
    },
    async receive() {
      while (lines.length === 0) {
        if (eof) {
          if (partialSize) {
            partial = [];
            partialSize = 0;
            throw new Deno.errors.UnexpectedEof("The peer closed the connection mid-line");
          }
          return null;
        }
        const n = await conn.read(buffer);
        if (n === null) eof = true;
        else take(buffer.subarray(0, n));
      }
      return lines.shift()!;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // already closed by the peer's end
      }
    },
  };
}

function lineTooLong(maxLine: number): Error {
  return new Deno.errors.InvalidData(
    `A message over TCP is longer than the limit of ${maxLine} bytes`,
  );
}

/**
 * Compares two strings in time that depends on neither's contents (both are hashed first, so
 * not on their lengths either).
 */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [x, y] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  const u = new Uint8Array(x);
  const v = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < u.length; i++) diff |= u[i] ^ v[i];
  return diff === 0;
}

/**
 * A server-side connection that first requires the token: the first line must be an
 * `$/authenticate` request carrying it. A wrong, missing or late token is answered with an
 * `Unauthorized` error and ends the connection (`receive` returns `null`).
 */
function requireToken(conn: MessageConnection, token: string): MessageConnection {
  let state: "waiting" | "open" | "refused" = "waiting";
  const encoder = new TextEncoder();
  const refuse = async (id: unknown, message: string) => {
    state = "refused";
    await conn.send(encoder.encode(JSON.stringify({
      jsonrpc: "2.0",
      id: typeof id === "number" || typeof id === "string" ? id : null,
      error: { code: UNAUTHORIZED, message },
    }))).catch(() => undefined);
    conn.close();
    return null;
  };
  return {
    send: (data) =>
      state === "open"
        ? conn.send(data)
        : Promise.reject(new Deno.errors.PermissionDenied("The client is not authenticated")),
    async receive() {
      if (state === "refused") return null;
      if (state === "open") return await conn.receive();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) =>
        timer = setTimeout(() => resolve("late"), AUTH_TIMEOUT)
      );
      let first: Uint8Array | null | "late";
      try {
        first = await Promise.race([conn.receive(), late]);
      } finally {
        clearTimeout(timer);
      }
      if (first === "late") return await refuse(null, "Unauthorized: no token within 10 s");
      if (first === null) return null;
      let request: { id?: unknown; method?: unknown; params?: { token?: unknown } } | null = null;
      try {
        request = JSON.parse(new TextDecoder().decode(first));
      } catch {
        // answered below as a missing token
      }
      const id = request !== null && typeof request === "object" ? request.id : null;
      if (
        request === null || typeof request !== "object" || Array.isArray(request) ||
        request.method !== AUTH_METHOD
      ) {
        return await refuse(
          id,
          `Unauthorized: this server requires a token (send ${AUTH_METHOD} first)`,
        );
      }
      const given = request.params !== null && typeof request.params === "object"
        ? request.params.token
        : undefined;
      if (typeof given !== "string" || !(await sameSecret(given, token))) {
        return await refuse(id, "Unauthorized: wrong token");
      }
      state = "open";
      await conn.send(
        encoder.encode(JSON.stringify({ jsonrpc: "2.0", id: id ?? null, result: true })),
      );
      return await conn.receive();
    },
    close: () => conn.close(),
  };
}

/** A TCP (or TLS) listener whose connections are message connections. */
export interface TcpAcceptor {
  /** The bound address. */
  hostname: string;
  /** The bound port. */
  port: number;
  /** Each accepted connection. */
  connections: AsyncIterable<MessageConnection>;
  /** Stops listening. */
  close(): void;
}

/**
 * Listens for JSON-RPC clients over TCP (or TLS).
 *
 * @param address The checked address.
 * @returns The listener.
 */
export function listenTcp(address: TcpListenAddress): TcpAcceptor {
  const hostname = address.hostname ?? "127.0.0.1";
  const listener: Deno.Listener = address.cert !== undefined
    ? Deno.listenTls({ hostname, port: address.port, cert: address.cert, key: address.key! })
    : Deno.listen({ hostname, port: address.port, transport: "tcp" });
  const maxLine = address.maxLineBytes ?? DEFAULT_MAX_LINE;
  const bound = listener.addr as Deno.NetAddr;
  return {
    hostname: bound.hostname,
    port: bound.port,
    connections: (async function* () {
      for await (const conn of listener) {
        if (address.cert === undefined) (conn as Deno.TcpConn).setNoDelay(true);
        const lines = lineConnection(conn, maxLine);
        yield address.token === undefined ? lines : requireToken(lines, address.token);
      }
    })(),
    close: () => {
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * Connects to a JSON-RPC server over TCP (or TLS). The token, if any, is presented by the
 * caller (see {@linkcode AUTH_METHOD}).
 *
 * @param address The checked address.
 * @param timeout Milliseconds to wait for the connection.
 * @returns The connection.
 */
export async function connectTcp(
  address: TcpConnectAddress,
  timeout: number,
): Promise<MessageConnection> {
  const hostname = address.hostname ?? "127.0.0.1";
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${address.port}`;
  const opening: Promise<Deno.Conn> = address.tls || address.caCerts
    ? Deno.connectTls({ hostname, port: address.port, caCerts: address.caCerts })
    : Deno.connect({ hostname, port: address.port, transport: "tcp" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), timeout));
  let conn: Deno.Conn | "late";
  try {
    conn = await Promise.race([opening, late]);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const ErrorClass = e instanceof Error ? e.constructor as ErrorConstructor : Error;
    throw new ErrorClass(`Cannot connect to the RPC server at ${where}: ${message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  if (conn === "late") {
    opening.then((c) => c.close(), () => undefined);
    throw new Deno.errors.TimedOut(
      `Cannot connect to the RPC server at ${where}: no answer within ${timeout} ms`,
    );
  }
  if (!(address.tls || address.caCerts)) (conn as Deno.TcpConn).setNoDelay(true);
  if (address.tls || address.caCerts) {
    // finish the handshake here, so a certificate problem fails connect, not the first call
    try {
      await (conn as Deno.TlsConn).handshake();
    } catch (e) {
      conn.close();
      throw new Deno.errors.InvalidData(
        `TLS with the RPC server at ${where} failed: ${e instanceof Error ? e.message : e}`,
        { cause: e },
      );
    }
  }
  return lineConnection(conn, address.maxLineBytes ?? DEFAULT_MAX_LINE);
}
