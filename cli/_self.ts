/**
 * Starting this same CLI again as a second process (the demo's and the benchmark's peer).
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * The command that starts this CLI again with `args`: `deno run -A <script>` when running as a
 * script, or the compiled binary itself.
 *
 * @param args The CLI arguments.
 * @param v8Flags V8 flags for the new process (e.g. `--stack-size=4096`), when it is a script.
 * @param stdio stdout and stderr: both `"piped"` unless told otherwise.
 * @returns The command.
 */
export function selfCommand(
  args: string[],
  v8Flags: string[] = [],
  stdio: { stdout?: "piped" | "null" | "inherit"; stderr?: "piped" | "null" | "inherit" } = {},
): Deno.Command {
  const main = Deno.mainModule;
  const script = main.startsWith("file:") && /\.[jt]s$/.test(main);
  const flags = v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  return new Deno.Command(Deno.execPath(), {
    args: script ? ["run", "-A", "--quiet", ...flags, fileURLToPath(main), ...args] : args,
    stdin: "null",
    stdout: stdio.stdout ?? "piped",
    stderr: stdio.stderr ?? "piped",
  });
}
