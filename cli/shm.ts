/**
 * `winipc shm serve|read|write|publish|subscribe|list`: shared memory from the command line: a
 * plain mapping, and publish/subscribe over one (mechanisms/pubsub.ts).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { listServices, Publisher, Subscriber } from "../mechanisms/pubsub.ts";
import { SharedMemory } from "../mechanisms/shm.ts";
import { Mutex } from "../mechanisms/sync.ts";
import { objectNameSchema } from "../mechanisms/_validate.ts";
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
const subscribersParser = parser(intSchema(1, 32));
const sampleSizeParser = parser(intSchema(1, 256 << 20));
/** The CLI's services: samples of 4 KiB (unless --sample-size), and no sample lost ("block"). */
const CLI_SAMPLE_SIZE = 4096;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
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
    '\nExamples:\n  winipc shm serve board --size 4096 --init hello\n  winipc shm read board\n  winipc shm write board "X to move"\n  winipc shm subscribe news --count 3\n  winipc shm publish news hello --count 3 --subscribers 1\n  winipc shm list',
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
    .option("--raw", RAW_HELP)
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
            emit(opts.json, { event: "change", name, text }, peerText(text, opts.raw));
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

  shm.command("publish")
    .description(
      'publish samples on a pub/sub service, creating it when it does not exist (samples of\n4 KiB, the "block" policy: no subscriber loses one)',
    )
    .argument("<name>", "service name")
    .argument("<message>", "text of each sample (UTF-8)")
    .option("--count <n>", "publish n samples: <message> 1 .. <message> n", countParser)
    .option(
      "--subscribers <k>",
      "wait for k subscribers before the first sample",
      subscribersParser,
    )
    .option(
      "--sample-size <bytes>",
      "bytes of each sample when creating the service",
      sampleSizeParser,
    )
    .option("--timeout <s>", "give up (exit 1) after this many seconds", timeoutParser)
    .option("--json", "print a JSON line")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc shm publish news hello\n  winipc shm publish news tick --count 100 --subscribers 2",
    )
    .action(async (rawName, message, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      const texts = opts.count === undefined
        ? [message]
        : Array.from({ length: opts.count }, (_, i) => `${message} ${i + 1}`);
      const signal = deadline(opts.timeout);
      using pub = await Publisher.create(name, {
        overflow: "block",
        ...(opts.sampleSize === undefined ? {} : { sampleSize: opts.sampleSize }),
      });
      const longest = Math.max(...texts.map((t) => utf8.encode(t).length));
      if (longest > pub.sampleSize) {
        throw new Error(
          `Cannot publish on "${name}": a message of ${longest} bytes is larger than its samples of ${pub.sampleSize} bytes`,
        );
      }
      if (opts.subscribers !== undefined) {
        await pub.waitForSubscribers(opts.subscribers, { signal });
      }
      for (const text of texts) {
        const sample = await pub.loan({ signal });
        const { written } = utf8.encodeInto(text, sample.data);
        await sample.publish(written, { signal });
      }
      if (opts.json) {
        emit(true, { name, published: texts.length, subscribers: pub.subscribers }, "");
      }
    });

  shm.command("subscribe")
    .description(
      "print each sample of a pub/sub service as UTF-8 text, one per line (creates the service\nwhen it does not exist, so it may start before the publisher; ends when the publisher closes)",
    )
    .argument("<name>", "service name")
    .option("--count <n>", "exit 0 after n samples", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc shm subscribe news\n  winipc shm subscribe news --count 10 --timeout 60 --json",
    )
    .action(async (rawName, opts) => {
      const name = check(objectNameSchema, rawName, "<name>");
      const signal = deadline(opts.timeout);
      using sub = await Subscriber.open(name, {
        create: true,
        overflow: "block",
        sampleSize: CLI_SAMPLE_SIZE,
      });
      status(opts.json, { event: "ready", name }, `subscribed to "${name}"`);
      try {
        for (let n = 0; opts.count === undefined || n < opts.count; n++) {
          using sample = await sub.receive({ signal });
          if (sample === null) break; // the publisher closed
          const text = utf8Decoder.decode(sample.data);
          emit(opts.json, { name, sequence: sample.sequence, text }, peerText(text, opts.raw));
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      }
    });

  shm.command("list")
    .description(
      "list the pub/sub services and shared-memory channels of this session, one per line, name first:\n" +
        "a service with its publisher pid (0: none), subscribers, sample size, overflow policy;\n" +
        'a channel with "channel", its creator pid (0: closed), openers and ring capacity',
    )
    .option("--json", "print JSON lines")
    .action((opts) => {
      for (const s of listServices()) {
        const text = s.kind === "pubsub"
          ? `${s.name}\tpublisher ${s.publisherPid}\tsubscribers ${s.subscribers}\tsample ${s.sampleSize} B\t${s.overflow}`
          : `${s.name}\tchannel\tcreator ${s.creatorPid}\topeners ${s.openers}\tcapacity ${s.capacity} B`;
        emit(opts.json, { ...s }, text);
      }
    });
}
