/**
 * `winipc http get|put`: WinINet transfers from the command line.
 *
 * `get` writes the body to stdout, or with `--output` to a file (through a temporary name, so a
 * failed transfer leaves no truncated file). `put` uploads a file and prints the server's reply.
 * A status of 400 or more is an error (exit 1). A progress bar is drawn on stderr when stderr is
 * a terminal and `--json` is not given.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { download, downloadFile, type Progress, upload } from "../mechanisms/http.ts";
import { urlSchema } from "../mechanisms/_validate.ts";
import process from "node:process";
import { check, emit, timeoutParser } from "./_common.ts";
import { cliProgress } from "./_progress.ts";

/** A progress bar on stderr, or nothing when stderr is not a terminal. */
function progressBar(enabled: boolean, label: string): {
  update: (p: Progress) => void;
  stop: () => void;
} {
  if (!enabled || !Deno.stderr.isTerminal()) return { update: () => {}, stop: () => {} };
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {done}/{all} MiB`,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: ({ loaded, total }) => {
      const all = total ?? 0;
      if (!started) {
        bar.start(all, loaded, { done: mib(loaded), all: total ? mib(all) : "?" });
        started = true;
      }
      if (total !== undefined && bar.getTotal() !== total) bar.setTotal(total);
      bar.update(loaded, { done: mib(loaded), all: total ? mib(all) : "?" });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/**
 * Adds the `http` group to the program.
 *
 * @param program The root command.
 */
export function registerHttp(program: Command): void {
  const http = program.command("http").description(
    "Internet transfers through WinINet: download and upload, redirects followed",
  );
  http.addHelpText(
    "after",
    "\nExamples:\n  winipc http get http://127.0.0.1:8000/file.bin --output file.bin\n  winipc http put http://127.0.0.1:8000/upload file.bin",
  );

  http.command("get")
    .description("download a URL to stdout, or to a file with --output")
    .argument("<url>", "http or https URL")
    .option("--output <file>", "write the body to this file instead of stdout")
    .option("--timeout <s>", "connect/send/receive timeout, each (default 30)", timeoutParser)
    .option("--insecure", "HTTPS: accept any certificate (self-signed test servers only)")
    .option("--json", "print a JSON line (the body as text when there is no --output)")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc http get http://127.0.0.1:8000/ \n  winipc http get http://127.0.0.1:8000/big.iso --output big.iso",
    )
    .action(async (rawUrl, opts) => {
      const url = check(urlSchema, rawUrl, "<url>").href;
      const timeout = opts.timeout === undefined ? undefined : Math.ceil(opts.timeout * 1000);
      const ctrlC = new AbortController();
      const onSigint = () => ctrlC.abort(new Error("Interrupted"));
      Deno.addSignalListener("SIGINT", onSigint);
      const bar = progressBar(!opts.json, "GET");
      try {
        if (opts.output !== undefined) {
          const r = await downloadFile(url, opts.output, {
            timeout,
            insecure: opts.insecure,
            signal: ctrlC.signal,
            onProgress: bar.update,
          });
          bar.stop();
          emit(
            opts.json,
            { url: r.url, status: r.status, path: r.path, bytes: r.bytes },
            `${r.status} ${r.statusText}: ${r.bytes} bytes to ${r.path}`,
          );
          return;
        }
        const r = await download(url, {
          timeout,
          insecure: opts.insecure,
          signal: ctrlC.signal,
          onProgress: bar.update,
        });
        if (opts.json) {
          const body = await new Response(r.body).text();
          bar.stop();
          emit(true, {
            url: r.url,
            status: r.status,
            bytes: new TextEncoder().encode(body).length,
            body,
          }, "");
          return;
        }
        await r.body.pipeTo(Deno.stdout.writable, { preventClose: true });
        bar.stop();
      } finally {
        bar.stop();
        Deno.removeSignalListener("SIGINT", onSigint);
      }
    });

  http.command("put")
    .description("upload a file with PUT and print the server's reply")
    .argument("<url>", "http or https URL")
    .argument("<file>", "the file to send")
    .option("--timeout <s>", "connect/send/receive timeout, each (default 30)", timeoutParser)
    .option("--insecure", "HTTPS: accept any certificate (self-signed test servers only)")
    .option("--json", "print a JSON line")
    .action(async (rawUrl, file, opts) => {
      const url = check(urlSchema, rawUrl, "<url>").href;
      const timeout = opts.timeout === undefined ? undefined : Math.ceil(opts.timeout * 1000);
      const bar = progressBar(!opts.json, "PUT");
      try {
        const r = await upload(url, file, {
          timeout,
          insecure: opts.insecure,
          onProgress: bar.update,
        });
        bar.stop();
        emit(
          opts.json,
          { url: r.url, status: r.status, bytes: r.bytes, body: r.body },
          r.body.replace(/\n$/, ""),
        );
      } finally {
        bar.stop();
      }
    });
}
