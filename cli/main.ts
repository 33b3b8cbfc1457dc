/**
 * The `winipc` command: `winipc <mechanism> <verb> [args]`.
 *
 * Errors go to stderr as one line starting `error:`; the exit status is 1 for a runtime failure
 * and 2 for bad usage. `--json` makes every output line one JSON object.
 *
 * @example Run it
 * ```sh
 * deno run -A jsr:@winipc/winipc/cli shm serve board --size 4096 --init hello --timeout 30
 * ```
 *
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import meta from "../deno.json" with { type: "json" };
import { report } from "./_common.ts";
import { registerBench } from "./bench.ts";
import { registerCom } from "./com.ts";
import { registerCompletions } from "./completions.ts";
import { registerClipboard } from "./clipboard.ts";
import { registerCopydata } from "./copydata.ts";
import { registerDde } from "./dde.ts";
import { registerDemo } from "./demo.ts";
import { registerHttp } from "./http.ts";
import { registerMailslot } from "./mailslot.ts";
import { registerPipe } from "./pipe.ts";
import { registerRpc } from "./rpc.ts";
import { registerSerial } from "./serial.ts";
import { registerShm } from "./shm.ts";
import { registerSocket } from "./socket.ts";

/**
 * Builds the command tree.
 *
 * @returns The root command, ready to parse.
 */
function buildProgram(): Command {
  const program = new Command("winipc")
    .description(
      "Windows inter-process communication from Deno: shared memory, pipes, mailslots, window\n" +
        "messages, the clipboard, DDE, sockets, WinINet, RPC, serial ports and COM",
    )
    .version(meta.version, "-V, --version")
    .showSuggestionAfterError(false)
    .configureOutput({ outputError: (text, write) => write(text.trimEnd() + "\n") })
    .exitOverride()
    .addHelpText(
      "after",
      "\nExamples:\n  winipc demo\n  winipc shm serve board --size 4096 --init hello\n  winipc pipe send jobs hello --reply\n  winipc bench --mechanism shm,pipe --json\n  winipc completions bash",
    );
  // Groups are made with program.command(), so they inherit exitOverride and the output settings.
  registerShm(program);
  registerPipe(program);
  registerMailslot(program);
  registerCopydata(program);
  registerClipboard(program);
  registerDde(program);
  registerSocket(program);
  registerHttp(program);
  registerSerial(program);
  registerCom(program);
  registerRpc(program);
  registerBench(program);
  registerDemo(program);
  registerCompletions(program);
  return program;
}

/**
 * Runs the CLI.
 *
 * @param args The arguments (without the program name).
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its own "error: ..." line (or the help or version)
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" ? 0 : 2;
    }
    return report(e);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
