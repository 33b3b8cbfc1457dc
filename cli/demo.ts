/**
 * `winipc demo`: starts a second winipc process and exercises each mechanism between the two,
 * printing a table (mechanism, what was sent, what came back, round-trip time, ok/failed). Exits
 * 1 when any mechanism fails.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { SharedMemory } from "../mechanisms/shm.ts";
import { Event, Mutex } from "../mechanisms/sync.ts";
import { emit, tableStyle } from "./_common.ts";
import { selfCommand } from "./_self.ts";

/** One mechanism's part in the demo. */
interface DemoCase {
  mechanism: string;
  /** The parent's side: sends, waits for the peer's answer, returns what came back. */
  run(session: string, sent: string): Promise<string>;
  /** The peer's side: answers one exchange. */
  serve(session: string): Promise<void>;
}

const TIMEOUT = 20_000;

const shmCase: DemoCase = {
  mechanism: "shm",
  async run(session, sent) {
    using shm = SharedMemory.create(`${session}.shm`, { size: 4096 });
    using mutex = Mutex.createOrOpen(`${session}.shm.lock`);
    using ping = Event.createOrOpen(`${session}.shm.ping`);
    using pong = Event.createOrOpen(`${session}.shm.pong`);
    await mutex.withLock(() => shm.view.writeText(0, sent));
    ping.set();
    if (!await pong.wait({ timeout: TIMEOUT })) throw new Error("the peer did not answer");
    return await mutex.withLock(() => shm.view.readText(0));
  },
  async serve(session) {
    using ping = Event.createOrOpen(`${session}.shm.ping`);
    using pong = Event.createOrOpen(`${session}.shm.pong`);
    if (!await ping.wait({ timeout: TIMEOUT })) throw new Error("no ping from the demo");
    using shm = SharedMemory.open(`${session}.shm`);
    using mutex = Mutex.open(`${session}.shm.lock`);
    await mutex.withLock(() => shm.view.writeText(0, `echo:${shm.view.readText(0)}`));
    pong.set();
  },
};

const cases: DemoCase[] = [shmCase];

/**
 * Adds `demo` to the program.
 *
 * @param program The root command.
 */
export function registerDemo(program: Command): void {
  program.command("demo")
    .description("exercise every mechanism end to end between this process and a second one")
    .option("--json", "print one JSON line per mechanism")
    .option("--peer <session>", "run as the demo's second process (internal)")
    .action(async (opts) => {
      if (opts.peer !== undefined) {
        console.log("ready");
        for (const c of cases) await c.serve(opts.peer);
        return;
      }
      const session = `winipc-demo-${Deno.pid}-${Date.now().toString(36)}`;
      const peer = selfCommand(["demo", "--peer", session]).spawn();
      const lines = peer.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = await lines.read(); // the peer is up: round trips below exclude its start-up
      if (!first.value?.startsWith("ready")) {
        const stderr = await new Response(peer.stderr).text();
        throw new Error(`the demo's second process did not start: ${stderr.trim()}`);
      }
      const rows: { mechanism: string; sent: string; received: string; ms: number; ok: boolean }[] =
        [];
      for (const c of cases) {
        const sent = `hello from ${Deno.pid} over ${c.mechanism}`;
        const start = performance.now();
        let received: string;
        let ok = false;
        try {
          received = await c.run(session, sent);
          ok = received === `echo:${sent}`;
        } catch (e) {
          received = `error: ${(e as Error).message}`;
        }
        rows.push({ mechanism: c.mechanism, sent, received, ms: performance.now() - start, ok });
      }
      await lines.cancel();
      const [status, peerError] = await Promise.all([
        peer.status,
        new Response(peer.stderr).text().then((t) => t.trim()),
      ]);
      if (opts.json) {
        for (const r of rows) {
          emit(true, { ...r, ms: Math.round(r.ms * 1000) / 1000 }, "");
        }
      } else {
        const table = new Table({
          head: ["mechanism", "sent", "came back", "round trip", "result"],
          style: tableStyle(),
        });
        for (const r of rows) {
          table.push([
            r.mechanism,
            r.sent,
            r.received,
            `${r.ms.toFixed(2)} ms`,
            r.ok ? "ok" : "FAILED",
          ]);
        }
        console.log(table.toString());
      }
      if (!status.success) {
        throw new Error(`the demo's second process failed (code ${status.code}): ${peerError}`);
      }
      if (rows.some((r) => !r.ok)) {
        throw new Error(
          `${rows.filter((r) => !r.ok).map((r) => r.mechanism).join(", ")} failed`,
        );
      }
    });
}
