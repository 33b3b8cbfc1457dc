/**
 * `winipc pipe serve|send|list`: named pipes from the command line.
 *
 * The protocol between the two verbs: the pipe is in message mode, and one message is one
 * request. `serve` accepts any number of clients at once; it prints each message it receives on
 * its own line (UTF-8 text; with `--json` a line `{"name", "pid", "text"}` where `pid` is the
 * client's process id) and, with `--echo`, answers each with one message `echo:` + the message.
 * Without `--echo` it answers nothing. It exits 0 after `--count` messages (the last one answered
 * first) or at `--timeout` seconds.
 *
 * `send` connects (waiting up to 10 s for the server and a free instance), sends the message as
 * one message and, with `--reply`, waits up to 10 s for one reply message (`TransactNamedPipe`)
 * and prints it; a server that does not reply makes `send --reply` fail with exit code 1.
 *
 * `list` prints the named pipes of this machine, one per line: the name (control characters
 * escaped), a tab, `instances <n>`, a tab, `max <n>` (`max unlimited` for -1); with `--json` a
 * line `{"name", "path", "instances", "maxInstances"}` per pipe.
 *
 * @example
 * ```sh
 * winipc pipe serve jobs --echo --count 1 &
 * winipc pipe send jobs hello --reply     # prints: echo:hello
 * ```
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import {
  listPipes,
  NamedPipeClient,
  NamedPipeServer,
  type PipeConnection,
} from "../mechanisms/pipe.ts";
import { clientPipeNameSchema, serverPipeNameSchema } from "../mechanisms/_names.ts";
import {
  check,
  countParser,
  deadline,
  emit,
  isDeadline,
  peerText,
  RAW_HELP,
  timeoutParser,
} from "./_common.ts";

/** How long `send` waits for the server, and for its reply. */
const SEND_TIMEOUT_MS = 10_000;

/** Errors of one client's connection that end that connection, not the server. */
function isClientGone(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}

/**
 * Adds the `pipe` group to the program.
 *
 * @param program The root command.
 */
export function registerPipe(program: Command): void {
  const pipe = program.command("pipe").description(
    "named pipes: a message-mode server (one message = one request) and a client",
  );
  pipe.addHelpText(
    "after",
    "\nExamples:\n  winipc pipe serve jobs --echo --count 1\n  winipc pipe send jobs hello --reply",
  );

  pipe.command("serve")
    .description(
      "serve a message-mode pipe; prints each message on its own line; with --echo replies " +
        '"echo:" + message',
    )
    .argument("<name>", 'pipe name ("jobs" means \\\\.\\pipe\\jobs) or \\\\.\\pipe\\<name>')
    .option("--count <n>", "exit 0 after this many messages", countParser)
    .option("--echo", 'reply to each message with "echo:" + the message')
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--remote", "also accept clients from other machines (default: this machine only)")
    .option("--raw", RAW_HELP)
    .option("--json", 'print JSON lines: {"name","pid","text"}')
    .addHelpText(
      "after",
      "\nProtocol: message mode, one message = one request; several clients at once. Only the\n" +
        "current user may connect, and only from this machine unless --remote is given.\n\n" +
        "Examples:\n" +
        "  winipc pipe serve jobs --echo --timeout 60\n  winipc pipe serve jobs --count 1 --json",
    )
    .action(async (rawName, opts) => {
      const name = check(serverPipeNameSchema, rawName, "<name>");
      const signal = deadline(opts.timeout);
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      Deno.addSignalListener("SIGINT", onSigint);
      const server = NamedPipeServer.listen(name, {
        mode: "message",
        rejectRemoteClients: !opts.remote,
      });
      const connections = new Set<PipeConnection>();
      let received = 0;
      let failure: unknown;
      const finish = () => {
        server.close();
        for (const c of connections) c.close();
      };
      signal.addEventListener("abort", finish, { once: true });
      stop.signal.addEventListener("abort", finish, { once: true });
      const serveOne = async (conn: PipeConnection) => {
        connections.add(conn);
        try {
          let pid: number | null = null;
          try {
            pid = conn.clientProcessId;
          } catch {
            // The client may already be gone; its messages (if any) still count.
          }
          for (let m; (m = await conn.readMessage()) !== null;) {
            if (opts.count !== undefined && received >= opts.count) break;
            received++;
            const text = new TextDecoder().decode(m);
            emit(opts.json, { name, pid, text }, peerText(text, opts.raw));
            if (opts.echo) await conn.write(`echo:${text}`);
            if (opts.count !== undefined && received >= opts.count) finish();
          }
        } catch (e) {
          if (!isClientGone(e)) {
            failure ??= e;
            finish();
          }
        } finally {
          connections.delete(conn);
          conn.close();
        }
      };
      const tasks: Promise<void>[] = [];
      try {
        for await (const conn of server) tasks.push(serveOne(conn));
        await Promise.all(tasks);
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      } finally {
        Deno.removeSignalListener("SIGINT", onSigint);
        finish();
      }
      if (failure !== undefined) throw failure;
    });

  pipe.command("list")
    .description(
      "list the named pipes of this machine, one per line: name, current instances, maximum",
    )
    .option("--json", 'print JSON lines: {"name","path","instances","maxInstances"}')
    .addHelpText(
      "after",
      "\nReads the directory \\\\.\\pipe\\ (Wine 10 cannot list it: exit 1 there).\n\n" +
        "Examples:\n  winipc pipe list\n  winipc pipe list --json",
    )
    .action((opts) => {
      for (const p of listPipes()) {
        const max = p.maxInstances === -1 ? "unlimited" : String(p.maxInstances ?? "?");
        emit(
          opts.json,
          { ...p },
          `${peerText(p.name, false)}\tinstances ${p.instances ?? "?"}\tmax ${max}`,
        );
      }
    });

  pipe.command("send")
    .description("send one message to a pipe server; with --reply print its reply")
    .argument("<name>", 'pipe name ("jobs" means \\\\.\\pipe\\jobs) or \\\\<server>\\pipe\\<name>')
    .argument("<message>", "the message (UTF-8 text)")
    .option("--reply", "wait for one reply message (up to 10 s) and print it")
    .option("--json", 'print a JSON line: {"name","sent","reply"}')
    .addHelpText(
      "after",
      "\nWaits up to 10 s for the server to exist and for a free instance.\n\nExamples:\n" +
        "  winipc pipe send jobs hello\n  winipc pipe send jobs hello --reply",
    )
    .action(async (rawName, message, opts) => {
      const name = check(clientPipeNameSchema, rawName, "<name>");
      using client = await NamedPipeClient.connect(name, { timeout: SEND_TIMEOUT_MS });
      const bytes = new TextEncoder().encode(message);
      if (!opts.reply) {
        await client.write(bytes, { timeout: SEND_TIMEOUT_MS });
        if (opts.json) emit(true, { name, sent: bytes.length }, "");
        return;
      }
      let reply: Uint8Array | null;
      if (client.mode === "message") {
        reply = await client.transact(bytes, { timeout: SEND_TIMEOUT_MS });
      } else {
        await client.write(bytes, { timeout: SEND_TIMEOUT_MS });
        reply = await client.readMessage({ timeout: SEND_TIMEOUT_MS });
      }
      if (reply === null) throw new Error(`Pipe "${name}" closed without replying`);
      const text = new TextDecoder().decode(reply);
      emit(opts.json, { name, sent: bytes.length, reply: text }, text);
    });
}
