/**
 * `winipc socket serve|send`: TCP and UDP over Windows Sockets from the command line.
 *
 * Messages: over TCP, one line (up to `\n`, or the end of the connection) is one message; over
 * UDP, one datagram is one message. `serve --echo` answers each with `echo:` + message (a line
 * over TCP, a datagram over UDP). `serve` first prints a ready line with the address it listens
 * on (`--port 0` lets the system choose).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { hostnameSchema } from "../mechanisms/_validate.ts";
import {
  connect,
  type DatagramSocket,
  listen,
  listenDatagram,
  type NetAddr,
  type TcpConn,
  type TcpListener,
} from "../mechanisms/socket.ts";
import {
  check,
  countParser,
  deadline,
  emit,
  intSchema,
  isDeadline,
  parser,
  peerText,
  RAW_HELP,
  status,
  timeoutParser,
} from "./_common.ts";

const portParser = parser(intSchema(0, 65535));

/** `<host:port>`: `127.0.0.1:80`, `[::1]:80`, `localhost:80`. */
export const hostPortSchema: z.ZodType<{ hostname: string; port: number }> = z
  .string()
  .regex(/^(\[[^\]\s]+\]|[^:\s\[\]]+):(\d{1,5})$/, {
    error: "must be host:port (e.g. 127.0.0.1:8080 or [::1]:8080)",
  })
  .transform((s) => {
    const at = s.lastIndexOf(":");
    return { hostname: s.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(s.slice(at + 1)) };
  })
  .pipe(z.object({
    hostname: hostnameSchema,
    port: z.number().min(1, { error: "port must be at least 1" })
      .max(65535, { error: "port must be at most 65535" }),
  }));

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function show(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** Splits a byte stream into text lines (without `\n` or `\r\n`); a last partial line counts. */
/** The longest line `socket serve` takes from a client (1 MiB); a longer one ends that client. */
export const MAX_LINE_BYTES = 1 << 20;

async function* lines(conn: TcpConn, maxLine = MAX_LINE_BYTES): AsyncGenerator<string> {
  const buf = new Uint8Array(64 * 1024);
  let pending = new Uint8Array(0);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    const joined = new Uint8Array(pending.length + n);
    joined.set(pending);
    joined.set(buf.subarray(0, n), pending.length);
    let start = 0;
    for (let i = pending.length; i < joined.length; i++) {
      if (joined[i] === 10) {
        const end = i > start && joined[i - 1] === 13 ? i - 1 : i;
        yield decoder.decode(joined.subarray(start, end));
        start = i + 1;
      }
    }
    pending = joined.slice(start);
    if (pending.length > maxLine) {
      throw new RangeError(`a line longer than ${maxLine} bytes; the connection is closed`);
    }
  }
  if (pending.length > 0) yield decoder.decode(pending);
}

/**
 * Adds the `socket` group to the program.
 *
 * @param program The root command.
 */
export function registerSocket(program: Command): void {
  const socket = program.command("socket").description(
    "Windows Sockets (ws2_32): TCP and UDP, IPv4 and IPv6",
  );
  socket.addHelpText(
    "after",
    "\nExamples:\n  winipc socket serve --port 9000 --echo --count 1\n  winipc socket send 127.0.0.1:9000 hello --reply",
  );

  socket.command("serve")
    .description(
      "listen and print each message (a line over TCP, a datagram over UDP); prints a ready line first",
    )
    .requiredOption("--port <n>", "port to listen on (0: the system chooses)", portParser)
    .option("--host <h>", "address to listen on", "127.0.0.1")
    .option("--udp", "UDP instead of TCP")
    .option("--echo", 'reply "echo:" + message to each message')
    .option("--count <n>", "exit 0 after this many messages", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc socket serve --port 7000 --echo\n  winipc socket serve --port 7001 --udp --host ::1 --count 3",
    )
    .action(async (opts) => {
      const hostname = check(hostnameSchema, opts.host, "--host");
      const signal = deadline(opts.timeout);
      const transport = opts.udp ? "udp" : "tcp";
      let seen = 0;
      const done = Promise.withResolvers<void>();
      const onMessage = (text: string, from: NetAddr) => {
        seen++;
        emit(
          opts.json,
          { event: "message", transport, from: show(from), text },
          peerText(text, opts.raw),
        );
        if (opts.count !== undefined && seen >= opts.count) done.resolve();
      };
      const stop = () => done.resolve();
      signal.addEventListener("abort", stop, { once: true });
      Deno.addSignalListener("SIGINT", stop);
      let server: TcpListener | DatagramSocket | undefined;
      const conns = new Set<TcpConn>();
      try {
        if (opts.udp) {
          const udp = await listenDatagram({ port: opts.port, hostname });
          server = udp;
          ready(opts.json, transport, udp.addr);
          (async () => {
            for await (const [data, from] of udp) {
              if (opts.count !== undefined && seen >= opts.count) break;
              const text = decoder.decode(data);
              if (opts.echo) await udp.send(encoder.encode(`echo:${text}`), from);
              onMessage(text, from);
            }
          })().catch(done.reject);
        } else {
          const tcp = await listen({ port: opts.port, hostname });
          server = tcp;
          ready(opts.json, transport, tcp.addr);
          (async () => {
            for await (const conn of tcp) {
              conns.add(conn);
              (async () => {
                try {
                  for await (const line of lines(conn)) {
                    if (opts.count !== undefined && seen >= opts.count) break;
                    if (opts.echo) await conn.write(encoder.encode(`echo:${line}\n`));
                    onMessage(line, conn.remoteAddr);
                  }
                } catch (e) {
                  // one client's failure (a reset) does not stop the server
                  if (!(e instanceof Deno.errors.BadResource)) {
                    console.error(`warning: ${show(conn.remoteAddr)}: ${(e as Error).message}`);
                  }
                } finally {
                  conns.delete(conn);
                  conn.close();
                }
              })();
            }
          })().catch(done.reject);
        }
        await done.promise;
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      } finally {
        signal.removeEventListener("abort", stop);
        Deno.removeSignalListener("SIGINT", stop);
        for (const c of conns) c.close();
        server?.close();
      }
    });

  socket.command("send")
    .description("send one message; with --reply print the server's reply")
    .argument("<host:port>", "where to send, e.g. 127.0.0.1:7000 or [::1]:7000")
    .argument("<message>", "the message (UTF-8 text; a line over TCP)")
    .option("--udp", "send one UDP datagram instead of a TCP line")
    .option("--reply", "wait for the reply and print it")
    .option("--timeout <s>", "give up waiting for a reply after this many seconds", timeoutParser)
    .option("--json", "print a JSON line")
    .action(async (target, message, opts) => {
      const to = check(hostPortSchema, target, "<host:port>");
      const seconds = opts.timeout ?? 10;
      if (opts.udp) {
        const v6 = to.hostname.includes(":");
        const loopback = ["localhost", "127.0.0.1", "::1"].includes(to.hostname);
        using udp = await listenDatagram({
          port: 0,
          hostname: loopback ? (v6 ? "::1" : "127.0.0.1") : (v6 ? "::" : "0.0.0.0"),
        });
        const bytes = await udp.send(encoder.encode(message), to);
        if (!opts.reply) {
          if (opts.json) emit(true, { to: show(to), bytes }, "");
          return;
        }
        const timer = setTimeout(() => udp.close(), seconds * 1000);
        try {
          const [data] = await udp.receive();
          const reply = decoder.decode(data);
          emit(opts.json, { to: show(to), bytes, reply }, reply);
        } catch (e) {
          if (e instanceof Deno.errors.BadResource) {
            throw new Error(`No reply from ${show(to)} within ${seconds} s`);
          }
          throw e;
        } finally {
          clearTimeout(timer);
        }
        return;
      }
      using conn = await connect({
        ...to,
        noDelay: true,
        signal: AbortSignal.timeout(seconds * 1000),
      });
      const line = message.endsWith("\n") ? message : `${message}\n`;
      const bytes = await conn.write(encoder.encode(line));
      if (!opts.reply) {
        await conn.closeWrite();
        if (opts.json) emit(true, { to: show(to), bytes }, "");
        return;
      }
      const timer = setTimeout(() => conn.close(), seconds * 1000);
      try {
        const it = lines(conn);
        const first = await it.next();
        if (first.done) throw new Error(`${show(to)} closed the connection without a reply`);
        emit(opts.json, { to: show(to), bytes, reply: first.value }, first.value);
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) {
          throw new Error(`No reply from ${show(to)} within ${seconds} s`);
        }
        throw e;
      } finally {
        clearTimeout(timer);
      }
    });
}

function ready(json: boolean | undefined, transport: "tcp" | "udp", addr: NetAddr): void {
  status(
    json,
    { event: "listening", transport, hostname: addr.hostname, port: addr.port },
    `listening on ${transport} ${show(addr)}`,
  );
}
