/**
 * `winipc copydata listen|send`: WM_COPYDATA between processes from the command line.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { MessageWindow, sendCopyData } from "../mechanisms/copydata.ts";
import {
  check,
  deadline,
  emit,
  intSchema,
  isDeadline,
  parser,
  peerText,
  RAW_HELP,
  timeoutParser,
} from "./_common.ts";

const titleSchema = z.string()
  .min(1, { error: "must not be empty" })
  .max(32_767, { error: "must be at most 32767 characters" });
const dataParser = parser(intSchema(0, Number.MAX_SAFE_INTEGER));
const countParser = parser(intSchema(1));

/** Resolves when SIGINT arrives (and stops listening for it). */
function onInterrupt(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const handler = () => {
      Deno.removeSignalListener("SIGINT", handler);
      resolve();
    };
    try {
      Deno.addSignalListener("SIGINT", handler);
    } catch {
      return; // no signal support here: only --count/--timeout end the listener
    }
    signal.addEventListener("abort", () => Deno.removeSignalListener("SIGINT", handler), {
      once: true,
    });
  });
}

/**
 * Adds the `copydata` group to the program.
 *
 * @param program The root command.
 */
export function registerCopydata(program: Command): void {
  const copydata = program.command("copydata").description(
    "window messages: WM_COPYDATA payloads to and from a window found by its title",
  );
  copydata.addHelpText(
    "after",
    '\nExamples:\n  winipc copydata listen prices --count 1\n  winipc copydata send prices "EURUSD 1.0832" --data 7',
  );

  copydata.command("listen")
    .description(
      "create a hidden window with that title and print each WM_COPYDATA payload as UTF-8\n" +
        "(one trailing NUL dropped); payloads of about 900 KiB and more need\n" +
        "deno run --v8-flags=--stack-size=4096",
    )
    .argument("<window-title>", "the window's title (senders use FindWindowW(NULL, title))")
    .option("--count <n>", "exit 0 after this many messages", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc copydata listen my-inbox --count 1 --timeout 30")
    .action(async (rawTitle, opts) => {
      const title = check(titleSchema, rawTitle, "<window-title>");
      const signal = deadline(opts.timeout);
      const stop = new AbortController();
      signal.addEventListener("abort", () => stop.abort(signal.reason), { once: true });
      onInterrupt(stop.signal).then(() => stop.abort(new Deno.errors.Interrupted("SIGINT")));
      using win = new MessageWindow({ title });
      let n = 0;
      try {
        for await (const m of win.copyData({ signal: stop.signal })) {
          const text = m.text();
          emit(
            opts.json,
            {
              event: "copydata",
              dwData: Number(m.dwData),
              bytes: m.data.length,
              sender: Number(m.sender),
              text,
            },
            peerText(text, opts.raw),
          );
          if (opts.count !== undefined && ++n >= opts.count) break;
        }
      } catch (e) {
        if (!isDeadline(e, signal) && !(e instanceof Deno.errors.Interrupted)) throw e;
      } finally {
        stop.abort();
      }
    });

  copydata.command("send")
    .description("send the message's UTF-8 bytes (no NUL) and print the receiver's reply value")
    .argument("<window-title>", "the receiving window's title")
    .argument("<message>", "the payload (UTF-8 text)")
    .option("--data <n>", "COPYDATASTRUCT.dwData", dataParser, 0)
    .option("--json", "print a JSON line")
    .addHelpText("after", '\nExample:\n  winipc copydata send my-inbox "hello" --data 7')
    .action(async (rawTitle, message, opts) => {
      const title = check(titleSchema, rawTitle, "<window-title>");
      const reply = await sendCopyData(title, message, { dwData: opts.data, timeout: 10_000 });
      emit(opts.json, { title, dwData: opts.data, reply }, String(reply));
    });
}
