/**
 * `winipc mailslot listen|send`: mailslots from the command line.
 *
 * `listen` creates the slot and prints each message on its own line (UTF-8 text; with `--json`
 * a line `{"name","text"}`); it exits 0 after `--count` messages or at `--timeout` seconds.
 * `send` writes one message (UTF-8) to a slot; `\\*\mailslot\<name>` broadcasts to the domain.
 *
 * @example
 * ```sh
 * winipc mailslot listen events --count 1 &
 * winipc mailslot send events hello
 * ```
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { MailslotReader, sendMailslot } from "../mechanisms/mailslot.ts";
import { readerSlotNameSchema, writerSlotNameSchema } from "../mechanisms/_names.ts";
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

/**
 * Adds the `mailslot` group to the program.
 *
 * @param program The root command.
 */
export function registerMailslot(program: Command): void {
  const mailslot = program.command("mailslot").description(
    "mailslots: one-way datagrams to a named slot; one reader, many writers",
  );
  mailslot.addHelpText(
    "after",
    "\nExamples:\n  winipc mailslot listen inbox --count 1\n  winipc mailslot send inbox hello",
  );

  mailslot.command("listen")
    .description("create a mailslot and print each message on its own line")
    .argument("<name>", 'slot name ("events" means \\\\.\\mailslot\\events) or a local path')
    .option("--count <n>", "exit 0 after this many messages", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", 'print JSON lines: {"name","text"}')
    .addHelpText(
      "after",
      "\nExamples:\n  winipc mailslot listen events --timeout 60\n" +
        "  winipc mailslot listen app\\\\events --count 10 --json",
    )
    .action(async (rawName, opts) => {
      const name = check(readerSlotNameSchema, rawName, "<name>");
      const signal = deadline(opts.timeout);
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      Deno.addSignalListener("SIGINT", onSigint);
      using slot = MailslotReader.create(name);
      let received = 0;
      try {
        for await (
          const message of slot.messages({
            signal: AbortSignal.any([signal, stop.signal]),
            // a message over the slot's 64 KiB is dropped with a warning; listening goes on
            onError: (e) => console.error(`warning: ${e.message}`),
          })
        ) {
          const text = new TextDecoder().decode(message);
          emit(opts.json, { name, text }, peerText(text, opts.raw));
          if (opts.count !== undefined && ++received >= opts.count) break;
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      } finally {
        Deno.removeSignalListener("SIGINT", onSigint);
      }
    });

  mailslot.command("send")
    .description("write one message to a mailslot")
    .argument("<name>", "slot name, a path, or \\\\*\\mailslot\\<name> (a domain broadcast)")
    .argument("<message>", "the message (UTF-8 text)")
    .option("--json", 'print a JSON line: {"name","sent"}')
    .addHelpText("after", "\nExample:\n  winipc mailslot send events hello")
    .action((rawName, message, opts) => {
      const name = check(writerSlotNameSchema, rawName, "<name>");
      const sent = sendMailslot(name, message);
      if (opts.json) emit(true, { name, sent }, "");
    });
}
