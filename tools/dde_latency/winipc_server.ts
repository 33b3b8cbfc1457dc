/**
 * The `winipc` server of `run.ts`: `winipc_server.ts <dde.ts> <service> <topic> <item>`.
 *
 * Imports `DdeServer` from the given `mechanisms/dde.ts` (so two trees can be compared in one
 * run), serves `<topic>` and answers each request of `<item>` with the number of requests served
 * so far (`"1"`, `"2"`, ...), as the C server does. Prints `ready <pid>` once the service is
 * registered, answers each line of its stdin with `cpu <ms>` (its CPU time so far), and serves
 * until its stdin ends.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { kernel32 } from "../../ffi/kernel32.ts";

const [modulePath, service, topic, item] = Deno.args;
if (item === undefined) {
  console.error("error: usage: winipc_server.ts <dde.ts> <service> <topic> <item>");
  Deno.exit(2);
}
const { DdeServer } = await import(pathToFileURL(resolve(modulePath)).href);
let served = 0;
const server = new DdeServer(service, {
  topics: [topic],
  request: (_topic: string, name: string) =>
    name.toLowerCase() === item.toLowerCase() ? String(++served) : undefined,
});
console.log(`ready ${Deno.pid}`);

function cpuMs(): number {
  const [creation, exit, kernel, user] = [0, 0, 0, 0].map(() => new BigUint64Array(1));
  kernel32().GetProcessTimes(kernel32().GetCurrentProcess(), creation, exit, kernel, user);
  return Number(kernel[0] + user[0]) / 10_000;
}

for await (const chunk of Deno.stdin.readable) {
  for (const byte of chunk) if (byte === 0x0a) console.log(`cpu ${cpuMs().toFixed(1)}`);
}
server.close();
Deno.exit(0);
