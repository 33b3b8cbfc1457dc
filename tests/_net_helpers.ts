/**
 * Helpers shared by the socket and HTTP tests.
 *
 * @module
 */

/**
 * Awaits `fn()`, expects it to reject with an instance of `type` whose message includes `text`,
 * and returns the error.
 */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
  text?: string,
): Promise<E> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  if (error === undefined) throw new Error(`Expected a rejection with ${type.name}, got none`);
  if (!(error instanceof type)) {
    throw new Error(`Expected ${type.name}, got ${error}`, { cause: error });
  }
  if (text !== undefined && !error.message.includes(text)) {
    throw new Error(`Expected "${text}" in the message, got "${error.message}"`);
  }
  return error;
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** The SHA-256 of the bytes, in hex. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads a stream to its end into one buffer. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Writes `data` to a native Deno connection, then half-closes it (`closeWrite`). (Closing a
 * `Deno.Conn`'s `writable` closes the whole connection, so that is not used.)
 */
export async function nativeWriteThenEnd(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let i = 0; i < data.length;) i += await conn.write(data.subarray(i, i + 256 * 1024));
  await conn.closeWrite();
}

/**
 * Reads a native Deno connection to its end with `read` (its `readable` closes the whole
 * connection at the end of the stream, which would stop our own writes).
 */
export async function nativeReadAll(conn: Deno.Conn): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(256 * 1024);
  for (let n; (n = await conn.read(buf)) !== null;) {
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
