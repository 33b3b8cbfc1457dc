/**
 * `winipc serial listen|send|list|status`: serial ports from the command line. One line is one
 * message: `send` writes the message and a newline; `listen` prints each line it receives (a
 * trailing `\r` is dropped). `status` reads a parallel port's status lines and its IEEE 1284
 * device ID.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { type DeviceId, listPorts, SerialPort } from "../mechanisms/serial.ts";
import { portNameSchema } from "../mechanisms/_validate.ts";
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
  timeoutParser,
  UsageError,
} from "./_common.ts";

const baudParser = parser(intSchema(50, 4_000_000));

/**
 * Adds the `serial` group to the program.
 *
 * @param program The root command.
 */
export function registerSerial(program: Command): void {
  const serial = program.command("serial").description(
    "serial ports: COMn (\\\\.\\COMn), one line per message",
  );
  serial.addHelpText(
    "after",
    '\nExamples:\n  winipc serial list\n  winipc serial listen COM5 --baud 115200 --count 10\n  winipc serial send COM5 "hello" --baud 115200\n  winipc serial status LPT1 --json',
  );

  serial.command("listen")
    .description("print each line received on the port")
    .argument("<port>", 'port name ("COM5") or device path ("\\\\.\\COM12")')
    .option("--baud <n>", "baud rate", baudParser, 9600)
    .option("--count <n>", "exit 0 after this many lines", countParser)
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--raw", RAW_HELP)
    .option("--json", "print JSON lines")
    .addHelpText("after", "\nExample:\n  winipc serial listen COM5 --baud 115200 --count 3")
    .action(async (rawPort, opts) => {
      const port = check(portNameSchema, rawPort, "<port>");
      const signal = deadline(opts.timeout);
      await using device = SerialPort.open(port, { baudRate: opts.baud });
      const decoder = new TextDecoder();
      const buffer = new Uint8Array(4096);
      let pending = "";
      let seen = 0;
      try {
        while (opts.count === undefined || seen < opts.count) {
          const n = await device.read(buffer, { signal });
          pending += decoder.decode(buffer.subarray(0, n), { stream: true });
          let at: number;
          while ((at = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, at).replace(/\r$/, "");
            pending = pending.slice(at + 1);
            emit(opts.json, { port, message: line }, peerText(line, opts.raw));
            if (opts.count !== undefined && ++seen >= opts.count) break;
          }
        }
      } catch (e) {
        if (!isDeadline(e, signal)) throw e;
      }
    });

  serial.command("send")
    .description("write the message and a newline to the port")
    .argument("<port>", 'port name ("COM5") or device path ("\\\\.\\COM12")')
    .argument("<message>", "the message (UTF-8)")
    .option("--baud <n>", "baud rate", baudParser, 9600)
    .option("--json", "print a JSON line")
    .action(async (rawPort, message, opts) => {
      const port = check(portNameSchema, rawPort, "<port>");
      await using device = SerialPort.open(port, { baudRate: opts.baud });
      const bytes = new TextEncoder().encode(message + "\n");
      await device.write(bytes, { timeout: 30_000 });
      await device.flush();
      if (opts.json) emit(true, { port, bytes: bytes.length }, "");
    });

  serial.command("list")
    .description("list the serial and parallel ports present")
    .option("--json", "print JSON lines")
    .action((opts) => {
      for (const name of listPorts()) emit(opts.json, { port: name }, name);
    });

  serial.command("status")
    .description(
      "a parallel port's status lines and the IEEE 1284 device ID of what is attached (LPTn)",
    )
    .argument("<port>", 'parallel port name ("LPT1") or device path')
    .option("--timeout <s>", "give up after this many seconds (default 10)", timeoutParser)
    .option("--json", "print a JSON line")
    .addHelpText("after", "\nExample:\n  winipc serial status LPT1 --json")
    .action(async (rawPort, opts) => {
      const port = check(portNameSchema, rawPort, "<port>");
      if (/^COM\d+$/i.test(port)) {
        throw new UsageError(
          `Invalid <port>: "${port}" is a serial port; status reads parallel ports (LPTn)`,
        );
      }
      const timeout = (opts.timeout ?? 10) * 1000;
      await using device = SerialPort.open(port, { configure: false });
      const status = await device.parallelStatus({ timeout });
      let id: DeviceId | undefined;
      let idError: string | undefined;
      try {
        id = await device.deviceId({ timeout });
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) throw e;
        idError = e instanceof Error ? e.message : String(e);
      }
      if (opts.json) {
        emit(true, {
          port,
          status,
          deviceId: id ?? null,
          ...(idError === undefined ? {} : { deviceIdError: idError }),
        }, "");
        return;
      }
      const flags =
        (["busy", "paperEmpty", "selected", "offLine", "powerOff", "notConnected"] as const)
          .filter((k) => status[k]).map((k) => k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()));
      const hex = status.raw.toString(16).padStart(2, "0");
      console.log(`status: ${flags.length ? flags.join(", ") : "none"} (0x${hex})`);
      if (id) {
        console.log(`manufacturer: ${peerText(id.manufacturer ?? "", false)}`);
        console.log(`model: ${peerText(id.model ?? "", false)}`);
        console.log(`command set: ${peerText(id.commandSet.join(","), false)}`);
      } else {
        console.error(`warning: no device ID: ${idError}`);
      }
    });
}
