/**
 * `winipc shm serve|read|write`: shared memory from the command line.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { SharedMemory } from "../mechanisms/shm.ts";
import { Mutex } from "../mechanisms/sync.ts";
import { objectNameSchema } from "../mechanisms/_validate.ts";
import {
  check,
  deadline,
  emit,
  intSchema,
  isDeadline,
  parser,
  status,
  timeoutParser,
} from "./_common.ts";

const sizeParser = parser(
  z.string()
    .regex(/^\d+$/, { error: "must be a whole number of bytes" })
    .transform(BigInt)
    .pipe(
      z.bigint().min(1n, { error: "must be at least 1 byte" })
        .max(0xffff_ffff_ffff_ffffn, { error: "must be below 2^64" }),
    ),
);
const offsetParser = parser(intSchema(0));
const lengthParser = parser(intSchema(1));

/** Runs `fn` holding the named mutex when `--mutex` was given. */
async function withOptionalLock<T>(name: string | undefined, fn: () => T): Promise<T> {
  if (name === undefined) return fn();
  using mutex = Mutex.createOrOpen(name);
  using _guard = await mutex.lock({ timeout: 10_000 });
  return fn();
}

/**
 * Adds the `shm` group to the program.
 *
 * @param program The root command.
 */
export function registerShm(program: Command): void {
  const shm = program.command("shm").description(
    "shared memory: a named file mapping, optionally guarded by a named mutex",
  );
  shm.addHelpText(
    "after",
    '\nExamples:\n  winipc shm serve board --size 4096 --init hello\n  winipc shm read board\n  winipc shm write board "X to move"',
  );

  shm.command("serve")
    .description(
      "create a mapping and keep it alive; prints the text each time it changes (a ready line\ngoes to stderr, or with --json to stdout as an event)",
    )
    .argument("<name>", "mapping name (Local\\ and Global\\ prefixes allowed)")
    .requiredOption("--size <bytes>", "size of the mapping in bytes", sizeParser)
    .option("--mutex <name>", "named mutex taken while writing --init and reading")
    .option("--init <text>", "text (and a NUL) written at offset 0")
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc shm serve board --size 4096 --init hello --timeout 60\n  winipc shm serve Local\\\\prices --size 65536 --mutex prices.lock",
    )
    .action(async (rawName, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      if (opts.mutex !== undefined) check(objectNameSchema, opts.mutex, "--mutex");
      const signal = deadline(opts.timeout);
      using mapping = SharedMemory.create(name, { size: opts.size });
      await withOptionalLock(opts.mutex, () => {
        if (opts.init !== undefined) mapping.view.writeText(0, opts.init);
      });
      status(
        opts.json,
        { event: "ready", name, size: Number(mapping.size) },
        `serving shm "${name}" (${mapping.size} bytes)`,
      );
      const ctrlC = new AbortController();
      const onSigint = () => ctrlC.abort();
      Deno.addSignalListener("SIGINT", onSigint);
      let last = mapping.view.readText(0);
      try {
        while (!signal.aborted && !ctrlC.signal.aborted) {
          await new Promise((r) => setTimeout(r, 20));
          const text = await withOptionalLock(opts.mutex, () => mapping.view.readText(0));
          if (text !== last) {
            last = text;
            emit(opts.json, { event: "change", name, text }, text);
          }
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      } finally {
        Deno.removeSignalListener("SIGINT", onSigint);
      }
    });

  shm.command("read")
    .description("print the mapping's bytes as UTF-8, up to the first NUL")
    .argument("<name>", "mapping name")
    .option("--offset <n>", "where to start reading", offsetParser, 0)
    .option("--length <n>", "read at most this many bytes", lengthParser)
    .option("--mutex <name>", "named mutex held while reading")
    .option("--json", "print a JSON line")
    .action(async (rawName, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      if (opts.mutex !== undefined) check(objectNameSchema, opts.mutex, "--mutex");
      using mapping = SharedMemory.open(name, { access: "read-only" });
      const text = await withOptionalLock(
        opts.mutex,
        () => mapping.view.readText(opts.offset, { length: opts.length }),
      );
      emit(opts.json, { name, offset: opts.offset, text }, text);
    });

  shm.command("write")
    .description("write the text and a NUL into the mapping")
    .argument("<name>", "mapping name")
    .argument("<text>", "text to write (UTF-8)")
    .option("--offset <n>", "where to write", offsetParser, 0)
    .option("--mutex <name>", "named mutex held while writing")
    .option("--json", "print a JSON line")
    .action(async (rawName, text, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      if (opts.mutex !== undefined) check(objectNameSchema, opts.mutex, "--mutex");
      using mapping = SharedMemory.open(name);
      const bytes = await withOptionalLock(
        opts.mutex,
        () => mapping.view.writeText(opts.offset, text),
      );
      if (opts.json) emit(true, { name, offset: opts.offset, bytes }, "");
    });
}
