/**
 * The I/O core at scale, across real processes: a thousand connected, idle named pipe clients do
 * not stop an active client's round trips, and every idle one is still there at the end.
 *
 * The active client's p50 is printed, alone and beside the idle clients, for the record; it is
 * not asserted (a loaded machine moves it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { pendingOperations } from "../mechanisms/_io.ts";
import { NamedPipeServer, type PipeConnection } from "../mechanisms/pipe.ts";
import { spawnFixture, uniqueName, winTest } from "./_helpers.ts";

const IDLE = 1000;
const ROUND_TRIPS = 300;

winTest(
  `${IDLE} idle pipe clients and one active: its round trips complete, every idle one answers`,
  async () => {
    const name = uniqueName("io-scale");
    const text = new TextDecoder();
    using server = NamedPipeServer.listen(name, {
      mode: "message",
      backlog: 16,
      readBufferSize: 256,
      inBufferSize: 4096,
      outBufferSize: 4096,
    });
    /** Connections that have not sent anything yet (the idle clients), and the answers. */
    const silent = new Set<PipeConnection>();
    const answers = new Set<string>();
    let allAnswered: () => void = () => {};
    const answered = new Promise<void>((resolve) => allAnswered = resolve);
    const handlers: Promise<void>[] = [];
    const accepting = (async () => {
      for await (const conn of server) {
        silent.add(conn);
        handlers.push((async () => {
          try {
            for (;;) {
              const message = await conn.readMessage();
              if (message === null) break;
              silent.delete(conn);
              const got = text.decode(message);
              if (got.startsWith("answer ")) {
                answers.add(got);
                if (answers.size === IDLE) allAnswered();
              } else await conn.write(message); // the active client's round trip: echo
            }
          } finally {
            silent.delete(conn);
            conn.close();
          }
        })());
      }
    })();

    const active = async () => {
      await using client = spawnFixture(
        "pipe_scale_client.ts",
        [name, "active", `${ROUND_TRIPS}`],
        { stderr: "piped" },
      );
      const line = await client.line(60_000);
      const { code, stderr } = await client.finish();
      assert.equal(code, 0, `${line}\n${stderr}`);
      return JSON.parse(line) as { p50: number; p90: number };
    };

    const alone = await active();
    await using idle = spawnFixture("pipe_scale_client.ts", [name, "idle", `${IDLE}`]);
    assert.equal(await idle.line(60_000), `connected ${IDLE}`);
    // Every idle client is connected, and the server has a read pending on each.
    for (let i = 0; i < 100 && silent.size < IDLE; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(silent.size, IDLE, "the server holds every idle connection");
    assert.ok(pendingOperations() >= IDLE, `pending operations: ${pendingOperations()}`);
    const busy = await active();

    const idleConns = [...silent];
    for (const [i, conn] of idleConns.entries()) await conn.write(`ping ${i}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      answered,
      new Promise((_, reject) =>
        timer = setTimeout(
          () => reject(new Error(`${answers.size} of ${IDLE} idle clients answered`)),
          30_000,
        )
      ),
    ]);
    clearTimeout(timer);
    assert.equal(await idle.line(), `answered ${IDLE}`);
    assert.deepEqual(
      [...answers].sort(),
      idleConns.map((_, i) => `answer ${i}`).sort(),
      "each idle client answered its own ping",
    );
    assert.equal((await idle.finish()).code, 0);
    // Alone once more, the idle clients gone, so the order of the runs does not decide.
    await Promise.all(handlers);
    const aloneAgain = await active();
    server.close();
    await accepting;
    await Promise.all(handlers);
    console.log(
      `active client p50: ${alone.p50} µs alone, ${busy.p50} µs with ${IDLE} idle clients, ` +
        `${aloneAgain.p50} µs alone again (p90 ${alone.p90} / ${busy.p90} / ${aloneAgain.p90} µs; ` +
        `${ROUND_TRIPS} round trips each)`,
    );
  },
);
