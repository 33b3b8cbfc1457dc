/**
 * Validation of user input at the public API, with zod. A bad value fails before any Win32 call
 * with a `TypeError` or `RangeError` whose message names the argument.
 *
 * @module
 */
import { z } from "zod";

/**
 * Parses a value with a schema, or throws an error that names the argument.
 *
 * @param schema The zod schema.
 * @param value The value.
 * @param name The argument's name, as the caller knows it (`"size"`, `"options.timeout"`).
 * @returns The parsed value.
 * @throws {RangeError} For a value out of range (too small, too big, or a refinement whose
 * `params` say `{ range: true }`).
 * @throws {TypeError} For any other invalid value.
 */
export function parseArg<T>(schema: z.ZodType<T>, value: unknown, name: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = [name, ...issue.path.map(String)].join(".");
  const message = `Invalid argument "${where}": ${issue.message}`;
  const range = issue.code === "too_big" || issue.code === "too_small" ||
    (issue.code === "custom" && (issue.params as { range?: boolean } | undefined)?.range === true);
  throw range ? new RangeError(message) : new TypeError(message);
}

/** Windows limits a kernel object's name to MAX_PATH (260) UTF-16 units. */
export const MAX_OBJECT_NAME = 260;

/**
 * The name of a named kernel object (mapping, mutex, event, semaphore): 1 to 260 UTF-16 units, no
 * NUL, and a backslash only in a leading `Global\` or `Local\` namespace prefix.
 */
export const objectNameSchema: z.ZodType<string> = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(MAX_OBJECT_NAME, { error: `must be at most ${MAX_OBJECT_NAME} characters` })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" })
  .refine((s) => !s.replace(/^(Global|Local)\\/, "").includes("\\"), {
    error: 'must not contain "\\" except after a "Global\\" or "Local\\" prefix',
  })
  .refine((s) => s.replace(/^(Global|Local)\\/, "").length > 0, {
    error: "must have a name after its namespace prefix",
  });

/** A size in bytes for a new mapping: a positive integer (number or bigint) below 2^64. */
export const mappingSizeSchema: z.ZodType<bigint> = z
  .union([
    z.number({ error: "must be a positive integer" }).int({ error: "must be an integer" }),
    z.bigint(),
  ], { error: "must be a positive integer" })
  .transform((v) => BigInt(v))
  .pipe(
    z.bigint()
      .min(1n, { error: "must be at least 1 byte" })
      .max(0xffff_ffff_ffff_ffffn, { error: "must be below 2^64" }),
  );

/** A byte offset: a non-negative integer (number or bigint). */
export const offsetSchema: z.ZodType<bigint> = z
  .union([z.number().int({ error: "must be an integer" }), z.bigint()], {
    error: "must be a non-negative integer",
  })
  .transform((v) => BigInt(v))
  .pipe(z.bigint().min(0n, { error: "must not be negative" }));

/** A wait timeout in milliseconds: 0 to 2^32 - 2, or `Infinity` to wait forever. */
export const timeoutSchema: z.ZodType<number> = z
  // z.number() refuses Infinity, which means "wait forever" here
  .custom<number>((v) => typeof v === "number" && !Number.isNaN(v), {
    error: "must be a number of milliseconds",
  })
  .refine((v) => v === Infinity || Number.isInteger(v), {
    error: "must be a whole number of milliseconds (or Infinity)",
  })
  .refine((v) => v >= 0, { error: "must not be negative", params: { range: true } })
  .refine((v) => v === Infinity || v <= 0xffff_fffe, {
    error: "must be below 2^32 - 1 milliseconds (or Infinity)",
    params: { range: true },
  });

/** An AbortSignal, or nothing. */
export const signalSchema: z.ZodType<AbortSignal | undefined> = z
  .instanceof(AbortSignal, { error: "must be an AbortSignal" })
  .optional();

/**
 * The waiting part of an operation's options, shared by every mechanism: how long it may wait and
 * what cancels it. An option type with more members extends it; one whose wait is a single Win32
 * call with its own bound, which no signal can interrupt (`SendMessageTimeoutW`,
 * `DdeClientTransaction`), extends `Pick<IoOptions, "timeout">`.
 *
 * @example Read for at most a second, or until the user gives up
 * ```ts
 * import type { IoOptions } from "./_validate.ts";
 * const cancel = new AbortController();
 * const options: IoOptions = { timeout: 1000, signal: cancel.signal };
 * ```
 */
export interface IoOptions {
  /**
   * Milliseconds to wait (0 to 2^32 - 2, or `Infinity` for ever); the operation then throws
   * `Deno.errors.TimedOut`, unless its documentation names another answer. Each operation
   * documents its default.
   */
  timeout?: number;
  /** Cancels the wait: the operation rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The schema of {@linkcode IoOptions}, strict; `ioOptionsSchema.extend({...})` adds members. */
export const ioOptionsSchema = z.object({
  timeout: timeoutSchema.optional(),
  signal: signalSchema,
}).strict();

/** Security options (`inheritable`, `sddl`). */
export const securitySchema = z.object({
  inheritable: z.boolean().optional(),
  sddl: z.string().min(1, { error: "must not be empty" }).optional(),
}).strict().optional();

/** A TCP/UDP port: an integer from 0 to 65535 (0 lets the system choose, for listening). */
export const portSchema: z.ZodType<number> = z
  .number({ error: "must be a port number" })
  .int({ error: "must be an integer" })
  .min(0, { error: "must be at least 0" })
  .max(65535, { error: "must be at most 65535" });

/** A host name or a numeric IPv4/IPv6 address (brackets around IPv6 are accepted). */
export const hostnameSchema: z.ZodType<string, string> = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !/[\0\s/]/.test(s), { error: "must not contain NUL, spaces or slashes" })
  .transform((s) => s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s);

/** An absolute `http:` or `https:` URL. */
export const urlSchema: z.ZodType<URL, string> = z
  .string({ error: "must be a string" })
  .transform((s, ctx) => {
    const url = URL.parse(s);
    if (!url) {
      ctx.addIssue({ code: "custom", message: `must be an absolute URL, got "${s}"` });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({
        code: "custom",
        message: `must be an http or https URL, got "${url.protocol}"`,
      });
      return z.NEVER;
    }
    if (!url.hostname) {
      ctx.addIssue({ code: "custom", message: "must name a host" });
      return z.NEVER;
    }
    return url;
  });

/** A port name: `COM1`..`COM256`, `LPT1`..`LPT9`, or a device path starting with `\\`. */
export const portNameSchema: z.ZodType<string> = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(260, { error: "must be at most 260 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" })
  .refine((s) => /^(COM\d{1,3}|LPT\d{1,2})$/i.test(s) || s.startsWith("\\\\"), {
    error: 'must be a port name like "COM5" or "LPT1", or a device path like "\\\\.\\COM5"',
  });
