/**
 * `winipc clipboard get|set|watch`: the clipboard's text (CF_UNICODETEXT) from the command line.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { readText, watch, writeText } from "../mechanisms/clipboard.ts";
import { deadline, emit, intSchema, isDeadline, parser, timeoutParser } from "./_common.ts";

const countParser = parser(intSchema(1));

/**
 * Adds the `clipboard` group to the program.
 *
 * @param program The root command.
 */
export function registerClipboard(program: Command): void {
  const clipboard = program.command("clipboard").description(
    "the clipboard's text (CF_UNICODETEXT)",
  );
  clipboard.addHelpText(
    "after",
    '\nExamples:\n  winipc clipboard set "héllo ✓"\n  winipc clipboard get --json\n  winipc clipboard watch --count 1 --timeout 30',
  );

  clipboard.command("get")
    .description("print the clipboard's text (nothing when it holds no text)")
    .option("--json", "print a JSON line")
    .action(async (opts) => {
      const text = await readText({ timeout: 5000 });
      if (opts.json) emit(true, { text }, "");
      else if (text !== null) console.log(text);
    });

  clipboard.command("set")
    .description("replace the clipboard's contents with the text")
    .argument("<text>", "the text")
    .option("--json", "print a JSON line")
    .action(async (text, opts) => {
      await writeText(text, { timeout: 5000 });
      if (opts.json) emit(true, { text }, "");
    });

  clipboard.command("watch")
    .description("print the clipboard's text after each change")
    .option("--count <n>", "exit 0 after this many changes", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc clipboard watch --count 3 --timeout 60")
    .action(async (opts) => {
      const signal = deadline(opts.timeout);
      let n = 0;
      try {
        for await (const change of watch({ signal })) {
          const text = await readText({ timeout: 5000 });
          emit(opts.json, { event: "change", sequence: change.sequence, text }, text ?? "");
          if (opts.count !== undefined && ++n >= opts.count) break;
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      }
    });
}
