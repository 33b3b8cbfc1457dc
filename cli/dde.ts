/**
 * `winipc dde serve|request|poke|execute|advise|services`: DDE from the command line.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { DdeClient, DdeServer } from "../mechanisms/dde.ts";
import {
  check,
  countParser,
  deadline,
  emit,
  isDeadline,
  peerText,
  RAW_HELP,
  status,
  timeoutParser,
} from "./_common.ts";

const nameSchema = z.string()
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" });

/**
 * Adds the `dde` group to the program.
 *
 * @param program The root command.
 */
export function registerDde(program: Command): void {
  const dde = program.command("dde").description(
    "DDE (DDEML): serve items, request, poke, execute, advise, list services",
  );
  dde.addHelpText(
    "after",
    '\nExamples:\n  winipc dde serve quotes prices --timeout 60\n  winipc dde poke quotes prices EURUSD 1.0832\n  winipc dde request quotes prices EURUSD\n  winipc dde execute quotes prices "[refresh]"\n  winipc dde advise quotes prices EURUSD --count 10',
  );

  dde.command("serve")
    .description(
      "serve a topic whose items are set by poke and read by request; prints each poked value\n" +
        "and each executed command",
    )
    .argument("<service>", "the service name")
    .argument("<topic>", "the topic")
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc dde serve Prices Quotes --timeout 60")
    .action(async (rawService, rawTopic, opts) => {
      const service = check(nameSchema, rawService, "<service>");
      const topic = check(nameSchema, rawTopic, "<topic>");
      const signal = deadline(opts.timeout);
      const items = new Map<string, string>();
      const server: DdeServer = new DdeServer(service, {
        topics: [topic],
        request: (_t, item) => items.get(item.toLowerCase()),
        poke: (t, item, data) => {
          const text = data.text();
          items.set(item.toLowerCase(), text);
          emit(opts.json, { event: "poke", topic: t, item, text }, peerText(text, opts.raw));
          // after this callback: clients with an advise loop on the item get the new value
          setTimeout(() => server.advise(t, item), 0);
        },
        execute: (t, command) => {
          emit(opts.json, { event: "execute", topic: t, command }, peerText(command, opts.raw));
        },
      });
      try {
        const stopped = new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
        await Promise.race([server.failed(), stopped]);
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      } finally {
        server.close();
      }
    });

  dde.command("request")
    .description("print an item's value (asks for CF_TEXT, then CF_UNICODETEXT)")
    .argument("<service>", "the service name")
    .argument("<topic>", "the topic")
    .argument("<item>", "the item")
    .option("--json", "print a JSON line")
    .action(async (rawService, rawTopic, rawItem, opts) => {
      const service = check(nameSchema, rawService, "<service>");
      const topic = check(nameSchema, rawTopic, "<topic>");
      const item = check(nameSchema, rawItem, "<item>");
      await using conv = await DdeClient.connect(service, topic, { timeout: 10_000 });
      const data = await conv.requestData(item);
      const text = data.text();
      emit(
        opts.json,
        { service, topic, item, format: data.format === 1 ? "CF_TEXT" : "CF_UNICODETEXT", text },
        text,
      );
    });

  dde.command("poke")
    .description(
      "set an item's value (sent as CF_TEXT; as CF_UNICODETEXT if Latin-1 cannot hold it)",
    )
    .argument("<service>", "the service name")
    .argument("<topic>", "the topic")
    .argument("<item>", "the item")
    .argument("<value>", "the value")
    .option("--json", "print a JSON line")
    .action(async (rawService, rawTopic, rawItem, value, opts) => {
      const service = check(nameSchema, rawService, "<service>");
      const topic = check(nameSchema, rawTopic, "<topic>");
      const item = check(nameSchema, rawItem, "<item>");
      await using conv = await DdeClient.connect(service, topic, { timeout: 10_000 });
      await conv.poke(item, value);
      if (opts.json) emit(true, { service, topic, item, value }, "");
    });

  dde.command("execute")
    .description("send a command to the server")
    .argument("<service>", "the service name")
    .argument("<topic>", "the topic")
    .argument("<command>", "the command")
    .option("--json", "print a JSON line")
    .action(async (rawService, rawTopic, rawCommand, opts) => {
      const service = check(nameSchema, rawService, "<service>");
      const topic = check(nameSchema, rawTopic, "<topic>");
      const command = check(nameSchema, rawCommand, "<command>");
      await using conv = await DdeClient.connect(service, topic, { timeout: 10_000 });
      await conv.execute(command);
      if (opts.json) emit(true, { service, topic, command }, "");
    });

  dde.command("advise")
    .description(
      "start a hot advise loop on an item and print each update on its own line; prints a\n" +
        "ready line first (stderr, or stdout with --json) once the server has accepted the loop",
    )
    .argument("<service>", "the service name")
    .argument("<topic>", "the topic")
    .argument("<item>", "the item")
    .option("--count <n>", "exit 0 after this many updates", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc dde advise quotes prices EURUSD --count 10 --json")
    .action(async (rawService, rawTopic, rawItem, opts) => {
      const service = check(nameSchema, rawService, "<service>");
      const topic = check(nameSchema, rawTopic, "<topic>");
      const item = check(nameSchema, rawItem, "<item>");
      const signal = deadline(opts.timeout);
      await using conv = await DdeClient.connect(service, topic, { timeout: 10_000 });
      let seen = 0;
      try {
        const updates = conv.advise(item, {
          signal,
          timeout: 10_000,
          onStarted: () =>
            status(
              opts.json,
              { event: "ready", service, topic, item },
              `advising ${service}|${topic}!${item}`,
            ),
        });
        for await (const update of updates) {
          const text = update.data?.text() ?? "";
          emit(
            opts.json,
            { event: "update", topic: update.topic, item: update.item, text },
            peerText(text, opts.raw),
          );
          if (opts.count !== undefined && ++seen >= opts.count) break;
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      }
    });

  dde.command("services")
    .description(
      "list the DDE services and topics that answer, one service|topic per line (a wildcard\n" +
        "initiate, then each System topic's Topics item)",
    )
    .option("--timeout <s>", "give hung windows this many seconds (default 5)", timeoutParser, 5)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc dde services --json")
    .action(async (opts) => {
      const pairs = await DdeClient.services({ timeout: opts.timeout * 1000 });
      for (const { service, topic } of pairs) {
        emit(opts.json, { service, topic }, `${service}|${topic}`);
      }
    });
}
