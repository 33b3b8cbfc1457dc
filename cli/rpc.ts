/**
 * `winipc rpc serve|call`: JSON-RPC 2.0 between processes over shared-memory connections.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { type Handlers, RpcClient, RpcServer } from "../mechanisms/rpc.ts";
import { builtinHandlers, builtinProcedures } from "../mechanisms/rpc_builtins.ts";
import { objectNameSchema } from "../mechanisms/_validate.ts";
import { check, deadline, emit, parser, status, timeoutParser } from "./_common.ts";

const transportParser = parser(
  z.enum(["pipe", "shm"], { error: 'must be "pipe" or "shm"' }),
);

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
      "pipe (a message-mode named pipe) or shm",
      transportParser,
      "pipe" as const,
    )
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      '\nExamples:\n  winipc rpc serve calc --timeout 60\n  winipc rpc call calc add "[2, 3]"',
    )
    .action(async (rawName, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
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
      await using server = await RpcServer.listen(name, builtinProcedures, logged, {
        transport: opts.transport,
      });
      status(
        opts.json,
        { event: "ready", name, methods: Object.keys(builtinProcedures) },
        `serving rpc "${name}" (${Object.keys(builtinProcedures).join(", ")})`,
      );
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
    .argument("<name>", "the server's name")
    .argument("<method>", "the procedure")
    .argument("[json-params]", "JSON-RPC params: a JSON array or object")
    .option(
      "--transport <t>",
      "pipe (default) or shm, as the server",
      transportParser,
      "pipe" as const,
    )
    .option("--timeout <s>", "fail after this many seconds (default 30)", timeoutParser, 30)
    .option("--json", "print a JSON line")
    .action(async (rawName, method, rawParams, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      const params = rawParams === undefined
        ? undefined
        : check(paramsSchema, rawParams, "[json-params]");
      await using client = await RpcClient.connect(name, {}, {
        transport: opts.transport,
        timeout: opts.timeout * 1000,
      });
      const result = await client.callUnchecked(method, params, { timeout: opts.timeout * 1000 });
      emit(opts.json, { method, result }, JSON.stringify(result));
    });
}
