/**
 * Starting this same CLI again as a second process (the demo's and the benchmark's peer).
 *
 * Run as a script (`deno run -A cli/main.ts`), that is `<deno> run -A <main.ts> <args>`. Inside a
 * binary made by `deno compile` (`Deno.build.standalone`), the program is the executable itself:
 * `<winipc.exe> <args>` (its main module still ends in `.ts` there, so the module's name cannot
 * tell). A compiled binary takes no `--v8-flags`; it reads V8 flags from `DENO_V8_FLAGS`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** What {@linkcode selfInvocation} needs to know about the running program. */
export interface SelfRuntime {
  /** `Deno.build.standalone`: whether this is a binary made by `deno compile`. */
  standalone: boolean;
  /** `Deno.execPath()`. */
  execPath: string;
  /** `Deno.mainModule`. */
  mainModule: string;
  /** `DENO_V8_FLAGS` of this process, if set. */
  envV8Flags?: string;
}

/** A program, its arguments and the environment it needs on top of this process's. */
export interface SelfInvocation {
  /** The executable. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** Variables to set for it. */
  env: Record<string, string>;
}

function currentRuntime(): SelfRuntime {
  return {
    standalone: Deno.build.standalone,
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
    envV8Flags: Deno.env.get("DENO_V8_FLAGS"),
  };
}

/**
 * How to start this CLI again with `args`.
 *
 * @param args The CLI arguments.
 * @param v8Flags V8 flags for the new process (e.g. `--stack-size=4096`).
 * @param runtime The running program (default: this process).
 * @returns The command line and environment.
 */
export function selfInvocation(
  args: string[],
  v8Flags: string[] = [],
  runtime: SelfRuntime = currentRuntime(),
): SelfInvocation {
  if (runtime.standalone) {
    const flags = [runtime.envV8Flags, ...v8Flags].filter((f) => f).join(",");
    return {
      command: runtime.execPath,
      args: [...args],
      env: flags ? { DENO_V8_FLAGS: flags } : {},
    };
  }
  const main = runtime.mainModule;
  const flags = v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  return {
    command: runtime.execPath,
    // a remote main module (`deno run -A https://...`) is run again by its URL
    args: ["run", "-A", "--quiet", ...flags, main.startsWith("file:") ? fileURLToPath(main) : main]
      .concat(args),
    env: {},
  };
}

/**
 * The command that starts this CLI again with `args`: `deno run -A <script>` when running as a
 * script, or the compiled binary itself.
 *
 * @param args The CLI arguments.
 * @param v8Flags V8 flags for the new process (e.g. `--stack-size=4096`).
 * @param stdio stdout and stderr: both `"piped"` unless told otherwise.
 * @returns The command.
 */
export function selfCommand(
  args: string[],
  v8Flags: string[] = [],
  stdio: { stdout?: "piped" | "null" | "inherit"; stderr?: "piped" | "null" | "inherit" } = {},
): Deno.Command {
  const { command, args: argv, env } = selfInvocation(args, v8Flags);
  return new Deno.Command(command, {
    args: argv,
    env,
    stdin: "null",
    stdout: stdio.stdout ?? "piped",
    stderr: stdio.stderr ?? "piped",
  });
}
