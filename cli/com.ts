/**
 * `winipc com call`: call a method (or read a property) of an automation object, late-bound
 * through `IDispatch`, and print the result.
 *
 * Arguments are parsed as JSON when they parse (`42`, `true`, `"text"`, `[1,2]`), else taken as
 * strings. The result prints as text when it is a string, else as JSON; with `--json` the line is
 * `{"progid": ..., "method": ..., "result": ...}`.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { createObject } from "../mechanisms/com.ts";
import { check, emit } from "./_common.ts";

const progIdSchema = z.string()
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .regex(/^(\{[0-9A-Fa-f-]{36}\}|[A-Za-z_][\w.]*)$/, {
    error: 'must be a ProgID like "Scripting.Dictionary" or a {CLSID}',
  });
const memberSchema = z.string()
  .min(1, { error: "must not be empty" })
  .regex(/^[A-Za-z_]\w*$/, { error: "must be a member name (letters, digits, _)" });

/** An argument: JSON when it parses, else the string itself. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A COM result as JSON-friendly data. */
function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === "object" && value !== null) return "[COM object]";
  return value;
}

/**
 * Adds the `com` group to the program.
 *
 * @param program The root command.
 */
export function registerCom(program: Command): void {
  const com = program.command("com").description("COM automation: late-bound IDispatch calls");
  com.addHelpText(
    "after",
    '\nExamples:\n  winipc com call Scripting.FileSystemObject BuildPath "C:\\data" report.txt',
  );

  com.command("call")
    .description("create the object, call the method (or read the property), print the result")
    .argument("<progid>", 'ProgID ("Scripting.FileSystemObject") or {CLSID}')
    .argument("<method>", "method or property name")
    .argument("[args...]", "arguments: JSON when they parse, else strings")
    .option("--json", "print a JSON line")
    .addHelpText(
      "after",
      '\nExamples:\n  winipc com call Scripting.FileSystemObject BuildPath "C:\\\\a" b\n' +
        "  winipc com call Scripting.FileSystemObject FolderExists C:\\\\windows --json",
    )
    .action((rawProgId, rawMethod, rawArgs, opts) => {
      const progid = check(progIdSchema, rawProgId, "<progid>");
      const method = check(memberSchema, rawMethod, "<method>");
      const args = rawArgs.map(parseValue);
      using object = createObject(progid);
      const result = toJson(object.$call(method, ...args));
      emit(
        opts.json,
        { progid, method, result },
        typeof result === "string" ? result : JSON.stringify(result),
      );
    });
}
