/**
 * Validation of pipe and mailslot names (zod), shared by `pipe.ts`, `mailslot.ts` and the CLI.
 * Each schema resolves a name to its full path.
 *
 * @module
 */
import { z } from "zod";

/**
 * The longest pipe path Windows accepts (`\\.\pipe\` included).
 *
 * @example Check a generated name before use
 * ```ts
 * import { MAX_PIPE_PATH, pipePath } from "./pipe.ts";
 * const ok = pipePath(`jobs-${crypto.randomUUID()}`).length <= MAX_PIPE_PATH; // true
 * ```
 */
export const MAX_PIPE_PATH = 256;
/**
 * The longest mailslot path accepted (MAX_PATH).
 *
 * @example Check a generated name before use
 * ```ts
 * import { MAX_MAILSLOT_PATH, mailslotPath } from "./mailslot.ts";
 * const ok = mailslotPath(`events-${Deno.pid}`).length <= MAX_MAILSLOT_PATH; // true
 * ```
 */
export const MAX_MAILSLOT_PATH = 260;

/** Reports a full path longer than `max` characters (a RangeError once parsed). */
function tooLong(ctx: z.RefinementCtx, max: number, length: number): never {
  ctx.addIssue({
    code: "too_big",
    maximum: max,
    origin: "string",
    inclusive: true,
    message: `must be at most ${max} characters as a full path (got ${length})`,
  });
  return z.NEVER;
}

const PIPE_PREFIX = "\\\\.\\pipe\\";
const FULL_PIPE_PATH = /^\\\\([^\\]+)\\pipe\\([^\\]+)$/i;

function pipeNameSchema(serverSide: boolean): z.ZodType<string> {
  return z.string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL" })
    .transform((s, ctx) => {
      let path: string;
      if (s.startsWith("\\\\")) {
        const match = s.match(FULL_PIPE_PATH);
        if (!match) {
          ctx.addIssue({
            code: "custom",
            message: 'must be a pipe name ("foo") or a path "\\\\<server>\\pipe\\<name>"',
          });
          return z.NEVER;
        }
        if (serverSide && match[1] !== ".") {
          ctx.addIssue({
            code: "custom",
            message: 'must be on this machine ("\\\\.\\pipe\\<name>"): a server cannot ' +
              "create a pipe on another machine",
          });
          return z.NEVER;
        }
        path = s;
      } else {
        if (s.includes("\\")) {
          ctx.addIssue({
            code: "custom",
            message:
              'must not contain "\\" (give a full "\\\\.\\pipe\\<name>" path or a bare name)',
          });
          return z.NEVER;
        }
        path = PIPE_PREFIX + s;
      }
      if (path.length > MAX_PIPE_PATH) return tooLong(ctx, MAX_PIPE_PATH, path.length);
      return path;
    });
}

/** A pipe name for a server, resolved to its full local path. */
export const serverPipeNameSchema: z.ZodType<string, unknown> = pipeNameSchema(true);
/** A pipe name for a client, resolved to its full path (another machine's pipe allowed). */
export const clientPipeNameSchema: z.ZodType<string, unknown> = pipeNameSchema(false);

export const FULL_MAILSLOT_PATH = /^\\\\([^\\]+)\\mailslot\\(.+)$/i;

function slotNameSchema(readerSide: boolean): z.ZodType<string, unknown> {
  return z.string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL" })
    .transform((s, ctx) => {
      let path = s;
      if (s.startsWith("\\\\")) {
        const match = s.match(FULL_MAILSLOT_PATH);
        if (!match || match[2].split("\\").some((part) => part === "")) {
          ctx.addIssue({
            code: "custom",
            message: 'must be a mailslot name ("foo") or a path "\\\\<server>\\mailslot\\<name>"',
          });
          return z.NEVER;
        }
        if (readerSide && match[1] !== ".") {
          ctx.addIssue({
            code: "custom",
            message: 'must be on this machine ("\\\\.\\mailslot\\<name>"): only a writer may ' +
              "name another computer or a domain",
          });
          return z.NEVER;
        }
      } else {
        if (s.startsWith("\\") || s.endsWith("\\") || s.includes("\\\\")) {
          ctx.addIssue({
            code: "custom",
            message: 'must not start or end with "\\" or contain "\\\\" (give "name", ' +
              '"folder\\name" or a full "\\\\.\\mailslot\\<name>" path)',
          });
          return z.NEVER;
        }
        path = `\\\\.\\mailslot\\${s}`;
      }
      if (path.length > MAX_MAILSLOT_PATH) return tooLong(ctx, MAX_MAILSLOT_PATH, path.length);
      return path;
    });
}

/** A mailslot name for a reader, resolved to its local path. */
export const readerSlotNameSchema: z.ZodType<string, unknown> = slotNameSchema(true);
/** A mailslot name for a writer, resolved to its path (other computers and broadcasts allowed). */
export const writerSlotNameSchema: z.ZodType<string, unknown> = slotNameSchema(false);
