/**
 * `winipc com call`: call a method (or read a property) of an automation object, late-bound
 * through `IDispatch`, and print the result. `winipc com serve`: make a demo class creatable by
 * ProgID from other processes while it runs.
 *
 * Arguments are parsed as JSON when they parse (`42`, `true`, `"text"`, `[1,2]`), else taken as
 * strings. The result prints as text when it is a string, else as JSON; with `--json` the line is
 * `{"progid": ..., "method": ..., "result": ...}`.
 *
 * `serve <progid>` registers a class (CLSID derived from the ProgID, so it is the same on every
 * run) with `CoRegisterClassObject` and per-user under `HKCU\Software\Classes`, and removes the
 * keys on exit (`--timeout`, Ctrl+C). Its objects have `echo(x)`, `add(a, b)` and
 * `startTicks(n)`, which raises the event `Tick(i)` for i = 1..n after returning. The ready status
 * (stderr, or the first `{"event":"ready","progid":...,"clsid":...}` line with `--json`) is
 * printed once other processes can create it; each call prints a line (`add(2, 3)`, or
 * `{"event":"call","method":"add","args":[2,3]}`).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { createObject, raiseEvent, registerClass } from "../mechanisms/com.ts";
import { check, deadline, emit, isDeadline, status, timeoutParser } from "./_common.ts";

const progIdSchema = z.string()
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .regex(/^(\{[0-9A-Fa-f-]{36}\}|[A-Za-z_][\w.]*)$/, {
    error: 'must be a ProgID like "Scripting.Dictionary" or a {CLSID}',
  });
const memberSchema = z.string()
  .min(1, { error: "must not be empty" })
  .regex(/^[A-Za-z_]\w*$/, { error: "must be a member name (letters, digits, _)" });

const serveProgIdSchema = z.string()
  .max(39, { error: "must be at most 39 characters" })
  .regex(/^[A-Za-z_]\w*(\.\w+)+$/, {
    error: 'must be a ProgID like "Vendor.Name" (letters, digits, _ and dots)',
  });

/** A stable CLSID for a ProgID: a name-based (version 5 style) UUID of its lower-case form. */
async function clsidFor(progId: string): Promise<string> {
  const bytes = new TextEncoder().encode(`winipc.com.serve:${progId.toLowerCase()}`);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", bytes)).slice(0, 16);
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = [...hash].map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return `{${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }}`;
}

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
  const com = program.command("com").description(
    "COM automation: late-bound IDispatch calls, and a demo server",
  );
  com.addHelpText(
    "after",
    '\nExamples:\n  winipc com call Scripting.FileSystemObject BuildPath "C:\\data" report.txt\n' +
      "  winipc com serve Winipc.Demo --timeout 60",
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

  com.command("serve")
    .description(
      "serve a demo class creatable by ProgID (echo, add, startTicks raising Tick) while running;\n" +
        "registers it for the current user and removes the registration on exit",
    )
    .argument("<progid>", 'the ProgID to register ("Vendor.Name")')
    .option("--timeout <s>", "exit 0 after this many seconds", timeoutParser)
    .option("--json", "print JSON lines")
    .addHelpText(
      "after",
      "\nExamples:\n  winipc com serve Winipc.Demo --timeout 60\n" +
        "  winipc com call Winipc.Demo add 2 3   # from another terminal",
    )
    .action(async (rawProgId, opts) => {
      const progid = check(serveProgIdSchema, rawProgId, "<progid>");
      const clsid = await clsidFor(progid);
      const signal = deadline(opts.timeout);
      const ctrlC = new AbortController();
      const onSigint = () => ctrlC.abort(new Error("Interrupted"));
      Deno.addSignalListener("SIGINT", onSigint);
      const logCall = (method: string, args: unknown[]) => {
        const json = args.map(toJson);
        emit(
          opts.json,
          { event: "call", method, args: json },
          `${method}(${json.map((a) => JSON.stringify(a)).join(", ")})`,
        );
      };
      class Demo {
        echo(x: unknown): unknown {
          logCall("echo", [x]);
          return x;
        }
        add(a: unknown, b: unknown): unknown {
          logCall("add", [a, b]);
          if (typeof a === "number" && typeof b === "number") return a + b;
          if (typeof a === "bigint" && typeof b === "bigint") return a + b;
          return String(a) + String(b);
        }
        startTicks(n: unknown): void {
          logCall("startTicks", [n]);
          const count = Number(n);
          if (!Number.isInteger(count) || count < 0 || count > 100_000) {
            throw new RangeError("startTicks(n): n must be an integer from 0 to 100000");
          }
          let i = 0;
          const next = () => {
            if (++i > count) return;
            raiseEvent(this, "Tick", i);
            setTimeout(next, 0);
          };
          setTimeout(next, 0);
        }
      }
      using registration = registerClass({
        progId: progid,
        clsid,
        create: () => new Demo(),
        events: ["Tick"],
        register: true,
      });
      try {
        status(
          opts.json,
          { event: "ready", progid, clsid: registration.clsid },
          `serving ${progid} ${registration.clsid}`,
        );
        await new Promise<never>((_, reject) => {
          for (const s of [signal, ctrlC.signal]) {
            if (s.aborted) reject(s.reason);
            s.addEventListener("abort", () => reject(s.reason), { once: true });
          }
        });
      } catch (e) {
        if (!isDeadline(e, signal) && !(ctrlC.signal.aborted && e === ctrlC.signal.reason)) throw e;
      } finally {
        Deno.removeSignalListener("SIGINT", onSigint);
      }
    });
}
