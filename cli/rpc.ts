/**
 * `winipc rpc serve|call`: JSON-RPC 2.0 between processes over a named pipe or shared-memory
 * connections, and across machines over TCP (newline-delimited JSON, optional TLS and token).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { type Handlers, RpcClient, RpcServer } from "../mechanisms/rpc.ts";
import { builtinHandlers, builtinProcedures } from "./_rpc_builtins.ts";
import { hostnameSchema, objectNameSchema } from "../mechanisms/_validate.ts";
import {
  check,
  deadline,
  emit,
  intSchema,
  parser,
  status,
  timeoutParser,
  UsageError,
} from "./_common.ts";
import { hostPortSchema } from "./socket.ts";

const transportParser = parser(
  z.enum(["pipe", "shm", "tcp"], { error: 'must be "pipe", "shm" or "tcp"' }),
);
const portParser = parser(intSchema(0, 65535));

/** Reads a PEM file named by an option. */
async function readPem(path: string, label: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(
      `Invalid ${label}: cannot read ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
}

const paramsSchema = z.string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "must be JSON" });
      return z.NEVER;
    }
  })
  .pipe(z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())], {
    error: "must be a JSON array or object (JSON-RPC params)",
  }));

/**
 * Adds the `rpc` group to the program.
 *
 * @param program The root command.
 */
export function registerRpc(program: Command): void {
  const rpc = program.command("rpc").description(
    "JSON-RPC 2.0 between processes (built-in procedures: echo, add, sha256)",
  );
  rpc.addHelpText(
    "after",
    '\nExamples:\n  winipc rpc serve calc --timeout 60\n  winipc rpc call calc add "[2, 3]"',
  );

  rpc.command("serve")
    .description("serve the built-in procedures; prints a ready line, then each call")
    .argument("<name>", "the name clients connect to (the pipe \\\\.\\pipe\\<name>)")
    .option(
      "--transport <t>",
      "pipe (a message-mode named pipe), shm, or tcp (newline-delimited JSON)",
      transportParser,
      "pipe" as const,
    )
    .option("--port <n>", "tcp: port to listen on (0: the system chooses)", portParser)
    .option("--host <h>", "tcp: address to listen on (default 127.0.0.1, this machine only)")
    .option("--token <secret>", "tcp: clients must present this shared secret")
    .option("--cert <file>", "tcp: PEM certificate chain; with --key, serve TLS")
    .option("--key <file>", "tcp: PEM private key of --cert")
    .option(
      "--remote",
      "pipe: also accept clients from other machines (default: this machine only)",
    )
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      '\nExamples:\n  winipc rpc serve calc --timeout 60\n  winipc rpc call calc add "[2, 3]"\n  winipc rpc serve calc --transport tcp --port 7000 --token s3cret\n  winipc rpc call 127.0.0.1:7000 add "[2, 3]" --transport tcp --token s3cret',
    )
    .action(async (rawName, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      const tcp = opts.transport === "tcp";
      if (
        !tcp && [opts.port, opts.host, opts.token, opts.cert, opts.key].some((o) => o !== undefined)
      ) {
        throw new UsageError("--port, --host, --token, --cert and --key go with --transport tcp");
      }
      if (opts.remote && opts.transport !== "pipe") {
        throw new UsageError("--remote goes with --transport pipe (over tcp, choose --host)");
      }
      if (tcp && opts.port === undefined) throw new UsageError("--transport tcp needs --port <n>");
      if ((opts.cert === undefined) !== (opts.key === undefined)) {
        throw new UsageError("--cert and --key go together");
      }
      const hostname = opts.host === undefined
        ? undefined
        : check(hostnameSchema, opts.host, "--host");
      const cert = opts.cert === undefined ? undefined : await readPem(opts.cert, "--cert");
      const key = opts.key === undefined ? undefined : await readPem(opts.key, "--key");
      const signal = deadline(opts.timeout);
      const logged = Object.fromEntries(
        Object.entries(builtinHandlers).map(([method, handler]) => [
          method,
          (params: unknown, context: { signal: AbortSignal }) => {
            emit(
              opts.json,
              { event: "call", method, params },
              `${method} ${JSON.stringify(params)}`,
            );
            return (handler as (p: unknown, c: { signal: AbortSignal }) => unknown)(
              params,
              context,
            );
          },
        ]),
      ) as unknown as Handlers<typeof builtinProcedures>;
      await using server = tcp
        ? await RpcServer.listen(
          {
            transport: "tcp",
            hostname,
            port: opts.port!,
            token: opts.token,
            cert,
            key,
          },
          builtinProcedures,
          logged,
        )
        : await RpcServer.listen(name, builtinProcedures, logged, {
          transport: opts.transport,
          rejectRemoteClients: opts.transport === "pipe" ? !opts.remote : undefined,
        });
      const methods = Object.keys(builtinProcedures);
      if (tcp) {
        status(
          opts.json,
          { event: "ready", name, methods, address: server.name, port: server.port, tls: !!cert },
          `serving rpc "${name}" on ${server.name}${cert ? " (TLS)" : ""} (${methods.join(", ")})`,
        );
      } else {
        status(
          opts.json,
          { event: "ready", name, methods },
          `serving rpc "${name}" (${methods.join(", ")})`,
        );
      }
      await new Promise<void>((resolve) => {
        const onSigint = () => resolve();
        Deno.addSignalListener("SIGINT", onSigint);
        signal.addEventListener("abort", () => {
          Deno.removeSignalListener("SIGINT", onSigint);
          resolve();
        }, { once: true });
      });
      void server;
    });

  rpc.command("call")
    .description("call a procedure and print its result as JSON")
    .argument("<name>", "the server's name (tcp: its host:port)")
    .argument("<method>", "the procedure")
    .argument("[json-params]", "JSON-RPC params: a JSON array or object")
    .option(
      "--transport <t>",
      "pipe (default), shm or tcp, as the server",
      transportParser,
      "pipe" as const,
    )
    .option("--token <secret>", "tcp: the server's shared secret")
    .option("--tls", "tcp: speak TLS")
    .option(
      "--ca <file>",
      "tcp: trust this PEM certificate (a self-signed server's); implies --tls",
    )
    .option("--timeout <s>", "fail after this many seconds (default 30)", timeoutParser, 30)
    .option("--json", "print a JSON line")
    .addHelpText(
      "after",
      "\nOver a pipe, the call goes only to a server that runs as the current user (a server of\n" +
        "another user that holds the name is refused before anything is sent).",
    )
    .action(async (rawName, method, rawParams, opts) => {
      const tcp = opts.transport === "tcp";
      if (!tcp && (opts.token !== undefined || opts.tls || opts.ca !== undefined)) {
        throw new UsageError("--token, --tls and --ca go with --transport tcp");
      }
      const name = tcp ? undefined : check(objectNameSchema, rawName, "<name>");
      const address = tcp ? check(hostPortSchema, rawName, "<name>") : undefined;
      const params = rawParams === undefined
        ? undefined
        : check(paramsSchema, rawParams, "[json-params]");
      const ca = opts.ca === undefined ? undefined : await readPem(opts.ca, "--ca");
      await using client = address
        ? await RpcClient.connect(
          {
            transport: "tcp",
            hostname: address.hostname,
            port: address.port,
            token: opts.token,
            tls: opts.tls || ca !== undefined,
            caCerts: ca === undefined ? undefined : [ca],
          },
          {},
          { timeout: opts.timeout * 1000 },
        )
        : await RpcClient.connect(name!, {}, {
          transport: opts.transport as "pipe" | "shm",
          timeout: opts.timeout * 1000,
        });
      const result = await client.callUnchecked(method, params, { timeout: opts.timeout * 1000 });
      emit(opts.json, { method, result }, JSON.stringify(result));
    });
}
