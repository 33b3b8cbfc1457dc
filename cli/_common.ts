/**
 * What every CLI group shares: argument validation (zod), the `error:` line and exit codes, output
 * lines (text or `--json`), and the `--count`/`--timeout` contract of listening verbs.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage.
 *
 * @module
 */
import { WinipcError } from "../ffi/base_error.ts";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { z } from "zod";

/** Bad usage: printed as `error: ...`, exit code 2. */
export class UsageError extends WinipcError {
  /** @param message What is wrong with the arguments. */
  constructor(message: string) {
    super(message, "ERR_USAGE");
    this.name = "UsageError";
  }
}

/**
 * Validates a CLI value with a zod schema.
 *
 * @param schema The schema.
 * @param value The raw value.
 * @param label How the user knows the argument (`<name>`, `--size`).
 * @returns The parsed value.
 * @throws {UsageError} When it is invalid.
 */
export function check<T>(schema: z.ZodType<T>, value: unknown, label: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new UsageError(`Invalid ${label}: ${result.error.issues[0].message}`);
}

/**
 * A commander argument parser from a zod schema: a bad value is a usage error (exit 2).
 *
 * @param schema Parses the option's string.
 * @returns The parser.
 */
export function parser<T>(schema: z.ZodType<T>): (value: string) => T {
  return (value: string) => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    throw new InvalidArgumentError(result.error.issues[0].message);
  };
}

/** A whole number of at least `min`, from a string. */
export function intSchema(min: number, max = Number.MAX_SAFE_INTEGER): z.ZodType<number> {
  return z.string()
    .regex(/^\d+$/, { error: "must be a whole number" })
    .transform(Number)
    .pipe(
      z.number()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );
}

/** Seconds (may be fractional), greater than 0. */
export const secondsSchema: z.ZodType<number> = z.string()
  .regex(/^\d+(\.\d+)?$/, { error: "must be a number of seconds" })
  .transform(Number)
  .pipe(z.number().gt(0, { error: "must be more than 0 seconds" }).max(2_000_000));

/** `--count <n>`: how many messages before exiting 0. */
export const countParser: (value: string) => number = parser(intSchema(1));
/** `--timeout <s>`: seconds before exiting 0. */
export const timeoutParser: (value: string) => number = parser(secondsSchema);

/**
 * Prints one output line: the JSON object with `--json`, else the text.
 *
 * @param json Whether `--json` was given.
 * @param record The line as a JSON object.
 * @param text The line as text.
 */
export function emit(
  json: boolean | undefined,
  record: Record<string, unknown>,
  text: string,
): void {
  console.log(json ? JSON.stringify(record) : text);
}

/** `--raw`'s help, the same on every listening verb. */
export const RAW_HELP =
  "print what peers send as it came (by default control characters are shown escaped)";

// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Text a peer sent, made safe for a terminal: C0 and C1 control characters and DEL (which can
 * move the cursor, rewrite the screen, change the window title or, in some terminals, answer
 * back) are shown as `\n`, `\r`, `\t` or `\xHH`, so a line is one message and a peer cannot
 * drive the user's terminal. With `--raw` the text is printed as it came. JSON lines need no such
 * care (JSON escapes control characters itself).
 *
 * @param text What the peer sent.
 * @param raw Whether `--raw` was given.
 * @returns The text to print.
 */
export function peerText(text: string, raw: boolean | undefined): string {
  if (raw) return text;
  return text.replace(
    CONTROL,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/**
 * Prints a listening verb's status (that it is ready, the address it listens on). A listening
 * verb's stdout carries only the messages it receives, so a script can read them line by line:
 * the status goes to stderr as text, or, with `--json`, to stdout as a JSON line whose `event` key
 * tells it from the messages.
 *
 * @param json Whether `--json` was given.
 * @param record The status as a JSON object, with an `event` key.
 * @param text The status as text.
 */
export function status(
  json: boolean | undefined,
  record: { event: string } & Record<string, unknown>,
  text: string,
): void {
  if (json) console.log(JSON.stringify(record));
  else console.error(text);
}

/**
 * An AbortSignal that fires after `--timeout` seconds (never without one).
 *
 * @param seconds The timeout, or undefined.
 * @returns The signal; its reason is a `Deno.errors.TimedOut`.
 */
export function deadline(seconds: number | undefined): AbortSignal {
  const controller = new AbortController();
  if (seconds !== undefined) {
    const timer = setTimeout(
      () => controller.abort(new Deno.errors.TimedOut(`--timeout of ${seconds} s reached`)),
      seconds * 1000,
    );
    Deno.unrefTimer(timer as unknown as number);
  }
  return controller.signal;
}

/** Whether an error is the end of a `--timeout` (a normal end for listening verbs). */
export function isDeadline(error: unknown, signal: AbortSignal): boolean {
  return signal.aborted && error === signal.reason;
}

/**
 * Reports an error as one `error:` line on stderr and returns the exit code: 2 for bad usage,
 * 1 for anything else.
 *
 * @param error What was thrown.
 * @returns The exit code.
 */
export function report(error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`error: ${message.replaceAll("\n", " ")}`);
  return error instanceof UsageError ? 2 : 1;
}

/**
 * cli-table3 styling: colours only when stdout is a terminal and `NO_COLOR` is not set.
 *
 * @returns The table's `style` option.
 */
export function tableStyle(): { head: string[]; border: string[] } {
  const colour = !Deno.noColor && Deno.stdout.isTerminal();
  return { head: colour ? ["cyan"] : [], border: colour ? ["grey"] : [] };
}
