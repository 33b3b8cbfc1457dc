/**
 * `winipc clipboard get|set|watch|formats`: the clipboard from the command line: text
 * (CF_UNICODETEXT, the default), HTML (CF_HTML), images (PNG) and file lists (CF_HDROP).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { Buffer } from "node:buffer";
import { z } from "zod";
import {
  type ClipboardItem,
  fileItems,
  htmlItem,
  imageItems,
  listFormats,
  readFiles,
  readHtml,
  readImage,
  readText,
  watch,
  write,
} from "../mechanisms/clipboard.ts";
import {
  deadline,
  emit,
  intSchema,
  isDeadline,
  parser,
  peerText,
  RAW_HELP,
  timeoutParser,
  UsageError,
} from "./_common.ts";

const countParser = parser(intSchema(1));
const formatParser = parser(
  z.enum(["text", "html", "png", "files"], { error: "must be text, html, png or files" }),
);
const OPEN_TIMEOUT = 5000;

/** Writes bytes to `--output`, or to stdout. */
async function output(bytes: Uint8Array, file: string | undefined): Promise<void> {
  if (file === undefined) {
    for (let done = 0; done < bytes.length;) {
      done += await Deno.stdout.write(bytes.subarray(done));
    }
  } else {
    await Deno.writeFile(file, bytes);
  }
}

/** Runs a library call whose TypeError means bad usage. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}

/**
 * Adds the `clipboard` group to the program.
 *
 * @param program The root command.
 */
export function registerClipboard(program: Command): void {
  const clipboard = program.command("clipboard").description(
    "the clipboard: text (CF_UNICODETEXT), HTML, images (PNG) and file lists",
  );
  clipboard.addHelpText(
    "after",
    '\nExamples:\n  winipc clipboard set "héllo ✓"\n  winipc clipboard get --json\n' +
      "  winipc clipboard set caption --image chart.png --html table.html\n" +
      "  winipc clipboard get --format png --output pasted.png\n" +
      "  winipc clipboard watch --count 1 --timeout 30",
  );

  clipboard.command("get")
    .description(
      "print the clipboard's text (nothing when it holds no text); with --format, its HTML\n" +
        "fragment, its image as PNG bytes or its files, one path per line",
    )
    .option("--format <format>", "text (default), html, png or files", formatParser)
    .option("--output <file>", "write the text, HTML or PNG bytes to this file")
    .option("--json", "print a JSON line")
    .action(async (opts) => {
      const format = opts.format ?? "text";
      if (format === "files" && opts.output !== undefined) {
        throw new UsageError("--output takes text, html or png, not files");
      }
      if (format === "text") {
        const text = await readText({ timeout: OPEN_TIMEOUT });
        if (opts.output !== undefined && text !== null) {
          await output(new TextEncoder().encode(text), opts.output);
        }
        if (opts.json) emit(true, { text, ...(opts.output ? { output: opts.output } : {}) }, "");
        else if (text !== null && opts.output === undefined) console.log(text);
        return;
      }
      if (format === "html") {
        const html = await readHtml({ timeout: OPEN_TIMEOUT });
        if (html === null) throw new Error("The clipboard holds no HTML");
        if (opts.output !== undefined) {
          await output(new TextEncoder().encode(html.fragment), opts.output);
        }
        if (opts.json) {
          emit(true, { format, ...html, ...(opts.output ? { output: opts.output } : {}) }, "");
        } else if (opts.output === undefined) console.log(html.fragment);
        return;
      }
      if (format === "png") {
        const png = await readImage({ timeout: OPEN_TIMEOUT });
        if (png === null) throw new Error("The clipboard holds no image");
        if (opts.json) {
          if (opts.output !== undefined) await output(png, opts.output);
          emit(
            true,
            opts.output === undefined
              ? { format, bytes: png.length, base64: Buffer.from(png).toString("base64") }
              : { format, bytes: png.length, output: opts.output },
            "",
          );
        } else {
          await output(png, opts.output);
        }
        return;
      }
      const files = await readFiles({ timeout: OPEN_TIMEOUT });
      if (files === null) throw new Error("The clipboard holds no files");
      if (opts.json) emit(true, { format, ...files }, "");
      else for (const path of files.paths) console.log(path);
    });

  clipboard.command("set")
    .description(
      "replace the clipboard's contents with the text, and in the same set the HTML, image and\n" +
        "files given",
    )
    .argument("<text>", "the text")
    .option("--html <file>", "an HTML fragment (UTF-8) to put beside the text")
    .option("--image <png>", "a PNG image to put beside the text")
    .option("--files <path...>", "absolute paths to put as a file list")
    .option("--json", "print a JSON line")
    .action(async (text, opts) => {
      const items: ClipboardItem[] = [{ format: "CF_UNICODETEXT", data: text }];
      if (opts.html !== undefined) {
        const html = await Deno.readTextFile(opts.html);
        items.push(htmlItem(html));
      }
      if (opts.image !== undefined) {
        const png = await Deno.readFile(opts.image);
        items.push(...usage(() => imageItems(png)));
      }
      if (opts.files !== undefined) {
        const paths = opts.files;
        items.push(...usage(() => fileItems(paths)));
      }
      await write(items, { timeout: OPEN_TIMEOUT });
      if (opts.json) {
        emit(true, {
          text,
          ...(opts.html !== undefined ? { html: opts.html } : {}),
          ...(opts.image !== undefined ? { image: opts.image } : {}),
          ...(opts.files !== undefined ? { files: opts.files } : {}),
        }, "");
      }
    });

  clipboard.command("formats")
    .description("list the formats on the clipboard, one per line: number and name")
    .option("--json", "print JSON lines")
    .action(async (opts) => {
      for (const { id, name } of await listFormats({ timeout: OPEN_TIMEOUT })) {
        emit(opts.json, { id, name }, `${id} ${name}`);
      }
    });

  clipboard.command("watch")
    .description("print the clipboard's text after each change")
    .option("--count <n>", "exit 0 after this many changes", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc clipboard watch --count 3 --timeout 60")
    .action(async (opts) => {
      const signal = deadline(opts.timeout);
      let n = 0;
      try {
        for await (const change of watch({ signal })) {
          const text = await readText({ timeout: OPEN_TIMEOUT });
          emit(
            opts.json,
            { event: "change", sequence: change.sequence, text },
            peerText(text ?? "", opts.raw),
          );
          if (opts.count !== undefined && ++n >= opts.count) break;
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      }
    });
}
