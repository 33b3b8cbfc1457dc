/**
 * `deno task demo` and `deno task winipc`: runs a script of this repository on the Windows build
 * of Deno: natively on Windows, under Wine elsewhere (provisioning Wine and deno.exe first).
 *
 * Usage: deno run -A tools/wine_run.ts <script> [args...]
 *
 * @module
 */
import { provision, startTempCleaner, windowsDeno } from "./wine.ts";

const [script, ...args] = Deno.args;
if (!script) {
  console.error("error: usage: tools/wine_run.ts <script> [args...]");
  Deno.exit(2);
}
await provision();
const stopCleaner = startTempCleaner();
const status = await windowsDeno(["run", "-A", "--quiet", script, ...args], {
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn().status;
stopCleaner();
Deno.exit(status.code);
