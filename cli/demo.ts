/**
 * `winipc demo`: starts a second winipc process and exercises each mechanism between the two,
 * printing a table (mechanism, what was sent, what came back, the time of that first exchange,
 * ok/failed). Exits
 * 1 when any mechanism fails; a mechanism that cannot run on this machine (no serial port pair)
 * is shown as skipped, with the reason.
 *
 * The second process starts every server first and says "ready"; the exchanges are timed after
 * that, so they do not include its start-up. Each time does include what a first exchange costs:
 * creating or connecting to the object, the first use of the mechanism's DLLs and code in this
 * process. Warm round trips are what `winipc bench` measures; the table says so below itself.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { z } from "zod";
import * as clipboard from "../mechanisms/clipboard.ts";
import { getObject, serveObject } from "../mechanisms/com.ts";
import { MessageWindow, sendCopyData } from "../mechanisms/copydata.ts";
import { DdeClient, DdeServer } from "../mechanisms/dde.ts";
import { download } from "../mechanisms/http.ts";
import { MailslotReader, MailslotWriter } from "../mechanisms/mailslot.ts";
import { NamedPipeClient, NamedPipeServer } from "../mechanisms/pipe.ts";
import { MsRpcClient, MsRpcServer, NdrReader, NdrWriter } from "../mechanisms/msrpc.ts";
import { defineProcedures, RpcClient, RpcServer } from "../mechanisms/rpc.ts";
import { SerialPort } from "../mechanisms/serial.ts";
import { SharedMemory } from "../mechanisms/shm.ts";
import * as ws2 from "../mechanisms/socket.ts";
import { Event, Mutex } from "../mechanisms/sync.ts";
import { emit, tableStyle } from "./_common.ts";
import { selfCommand } from "./_self.ts";

const TIMEOUT = 20_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Facts the peer reports to the demo before "ready" (e.g. a port it listens on). */
type Info = Record<string, string>;

/** One mechanism's part in the demo. */
interface DemoCase {
  mechanism: string;
  /** Why it cannot run here, or undefined when it can. */
  skip?(): string | undefined;
  /**
   * The peer's side: starts serving (resolves once ready), reports facts through `tell`; its
   * `done` settles when its exchange is over.
   */
  start(
    session: string,
    tell: (key: string, value: string) => void,
  ): Promise<{ done: Promise<void> }>;
  /** The demo's side: sends, waits for the answer, returns what came back. */
  run(session: string, sent: string, info: Info): Promise<string>;
}

const shmCase: DemoCase = {
  mechanism: "shm",
  start(session) {
    const ping = Event.createOrOpen(`${session}.shm.ping`);
    const pong = Event.createOrOpen(`${session}.shm.pong`);
    return Promise.resolve({
      done: (async () => {
        try {
          if (!await ping.wait({ timeout: TIMEOUT })) throw new Error("no ping from the demo");
          using shm = SharedMemory.open(`${session}.shm`);
          using mutex = Mutex.open(`${session}.shm.lock`);
          await mutex.withLock(() => shm.view.writeText(0, `echo:${shm.view.readText(0)}`));
          pong.set();
        } finally {
          ping.close();
          pong.close();
        }
      })(),
    });
  },
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
};

const pipeCase: DemoCase = {
  mechanism: "pipe",
  start(session) {
    const server = NamedPipeServer.listen(`${session}.pipe`, { mode: "message" });
    return Promise.resolve({
      done: (async () => {
        using _server = server;
        for await (const conn of server) {
          await using _conn = conn;
          const message = await conn.readMessage({ timeout: TIMEOUT });
          if (message) await conn.write(`echo:${decoder.decode(message)}`);
          return;
        }
      })(),
    });
  },
  async run(session, sent) {
    await using conn = await NamedPipeClient.connect(`${session}.pipe`, {
      mode: "message",
      timeout: TIMEOUT,
    });
    return decoder.decode(await conn.transact(sent));
  },
};

const mailslotCase: DemoCase = {
  mechanism: "mailslot",
  start(session) {
    // Mailslots are one way: the answer goes to the demo's own mailslot.
    const inbox = MailslotReader.create(`${session}.slot`);
    return Promise.resolve({
      done: (async () => {
        using _inbox = inbox;
        const text = await inbox.readText({ timeout: TIMEOUT });
        using back = MailslotWriter.open(`${session}.slot-back`);
        back.write(`echo:${text}`);
      })(),
    });
  },
  async run(session, sent) {
    using inbox = MailslotReader.create(`${session}.slot-back`);
    using out = MailslotWriter.open(`${session}.slot`);
    out.write(sent);
    return await inbox.readText({ timeout: TIMEOUT });
  },
};

const copydataCase: DemoCase = {
  mechanism: "copydata",
  start(session) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    // The reply value of WM_COPYDATA is a number: the text comes back in a WM_COPYDATA of its own
    // to the sender's window.
    const window = new MessageWindow({
      title: `${session}.copydata`,
      onCopyData: (message) => {
        const text = message.text();
        setTimeout(() => {
          sendCopyData(message.sender, `echo:${text}`, { timeout: TIMEOUT }).finally(done);
        }, 0);
        return text.length;
      },
    });
    return Promise.resolve({ done: finished.then(() => window.close()) });
  },
  async run(session, sent) {
    using back = new MessageWindow({ title: `${session}.copydata-back` });
    const reply = await sendCopyData(`${session}.copydata`, sent, {
      sender: back,
      timeout: TIMEOUT,
    });
    if (reply !== sent.length) throw new Error(`reply value ${reply}, expected ${sent.length}`);
    for await (const message of back) return message.text();
    throw new Error("no answer came back");
  },
};

const clipboardCase: DemoCase = {
  mechanism: "clipboard",
  start(session) {
    const changes = clipboard.watch();
    return Promise.resolve({
      done: (async () => {
        try {
          // answer the first change that carries the demo's text
          for await (const _change of changes) {
            const text = await clipboard.readText();
            if (text?.startsWith(`hello from `) && text.endsWith("over clipboard")) {
              await clipboard.writeText(`echo:${text}`);
              return;
            }
          }
        } finally {
          void session;
          await changes.return?.();
        }
      })(),
    });
  },
  async run(_session, sent) {
    const changes = clipboard.watch();
    try {
      await clipboard.writeText(sent);
      for await (const _change of changes) {
        const text = await clipboard.readText();
        if (text === `echo:${sent}`) return text;
      }
      throw new Error("the clipboard watch ended");
    } finally {
      await changes.return?.();
    }
  },
};

const ddeCase: DemoCase = {
  mechanism: "dde",
  start(session) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const items = new Map<string, string>();
    const server = new DdeServer(`${session}.dde`, {
      topics: ["demo"],
      poke: (_topic, item, data) => void items.set(item, data.text()),
      request: (_topic, item) => {
        const value = items.get(item);
        if (value !== undefined) setTimeout(done, 100);
        return value === undefined ? undefined : `echo:${value}`;
      },
    });
    return Promise.resolve({ done: finished.then(() => server.close()) });
  },
  async run(session, sent) {
    await using client = await DdeClient.connect(`${session}.dde`, "demo", { timeout: TIMEOUT });
    await client.poke("greeting", sent);
    return await client.request("greeting");
  },
};

const socketCase: DemoCase = {
  mechanism: "socket",
  async start(_session, tell) {
    const listener = await ws2.listen({ hostname: "127.0.0.1", port: 0 });
    tell("socket.port", String(listener.addr.port));
    return {
      done: (async () => {
        await using _listener = listener;
        await using conn = await listener.accept();
        const buffer = new Uint8Array(4096);
        let text = "";
        while (!text.endsWith("\n")) {
          const n = await conn.read(buffer);
          if (n === null) break;
          text += decoder.decode(buffer.subarray(0, n));
        }
        await conn.write(encoder.encode(`echo:${text}`));
        await conn.closeWrite();
      })(),
    };
  },
  async run(_session, sent, info) {
    await using conn = await ws2.connect({
      hostname: "127.0.0.1",
      port: Number(info["socket.port"]),
    });
    await conn.write(encoder.encode(`${sent}\n`));
    return (await new Response(conn.readable).text()).trimEnd();
  },
};

const httpCase: DemoCase = {
  mechanism: "http",
  start(_session, tell) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    // The peer's server is Deno's own; the demo's side is WinINet.
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const text = new URL(request.url).searchParams.get("text") ?? "";
      queueMicrotask(done);
      return new Response(`echo:${text}`);
    });
    tell("http.port", String(server.addr.port));
    return Promise.resolve({ done: finished.then(() => server.shutdown()) });
  },
  async run(_session, sent, info) {
    const url = `http://127.0.0.1:${info["http.port"]}/echo?text=${encodeURIComponent(sent)}`;
    const response = await download(url, { timeout: TIMEOUT });
    return await new Response(response.body).text();
  },
};

const rpcApi = defineProcedures({
  echo: { params: z.tuple([z.string()]), result: z.string() },
});

const rpcCase: DemoCase = {
  mechanism: "rpc",
  async start(session) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const server = await RpcServer.listen(`${session}.rpc`, rpcApi, {
      echo: ([text]) => {
        setTimeout(done, 100); // after the answer has gone out
        return `echo:${text}`;
      },
    });
    return { done: finished.then(() => server[Symbol.asyncDispose]()) };
  },
  async run(session, sent) {
    await using client = await RpcClient.connect(`${session}.rpc`, rpcApi);
    return await client.call("echo", [sent], { timeout: TIMEOUT });
  },
};

const MSRPC_INTERFACE = {
  uuid: "0f6f1a39-3e63-4d45-9a2e-7d0c5b1e8a42",
  version: [1, 0] as [number, number],
};

const msrpcCase: DemoCase = {
  mechanism: "msrpc",
  start(session) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const server = MsRpcServer.listen({
      ...MSRPC_INTERFACE,
      endpoint: `${session}-msrpc`,
      procedures: [(request, response) => {
        response.wstring(`echo:${request.wstring()}`);
        setTimeout(done, 100);
      }],
    });
    return Promise.resolve({ done: finished.then(() => server.close()) });
  },
  async run(session, sent) {
    using client = MsRpcClient.connect({ ...MSRPC_INTERFACE, endpoint: `${session}-msrpc` });
    return new NdrReader(await client.call(0, new NdrWriter().wstring(sent).bytes())).wstring();
  },
};

const comCase: DemoCase = {
  mechanism: "com",
  start(session) {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const registration = serveObject(`${session}.com`, {
      Echo(text: string) {
        setTimeout(done, 100);
        return `echo:${text}`;
      },
    });
    return Promise.resolve({ done: finished.then(() => registration.close()) });
  },
  run(session, sent) {
    using object = getObject(`${session}.com`);
    return Promise.resolve(String(object.$call("Echo", sent)));
  },
};

/** The serial pair the demo uses: `WINIPC_DEMO_COM="COM5,COM6"` (a null-modem pair). */
function serialPair(): [string, string] | undefined {
  const value = Deno.env.get("WINIPC_DEMO_COM");
  const ports = value?.split(",").map((s) => s.trim()).filter(Boolean);
  return ports?.length === 2 ? [ports[0], ports[1]] : undefined;
}

const serialCase: DemoCase = {
  mechanism: "serial",
  skip: () =>
    serialPair()
      ? undefined
      : 'no serial port pair: set WINIPC_DEMO_COM="COM5,COM6" (a null-modem pair)',
  async start() {
    const [, b] = serialPair()!;
    const port = await SerialPort.open(b, { baudRate: 115200 });
    return {
      done: (async () => {
        await using _port = port;
        const buffer = new Uint8Array(4096);
        let text = "";
        while (!text.endsWith("\n")) {
          const n = await port.read(buffer, { timeout: TIMEOUT });
          if (n === 0) throw new Error("nothing came over the serial line");
          text += decoder.decode(buffer.subarray(0, n));
        }
        await port.write(encoder.encode(`echo:${text}`));
      })(),
    };
  },
  async run(_session, sent) {
    const [a] = serialPair()!;
    await using port = await SerialPort.open(a, { baudRate: 115200 });
    await port.write(encoder.encode(`${sent}\n`));
    const buffer = new Uint8Array(4096);
    let text = "";
    while (!text.endsWith("\n")) {
      const n = await port.read(buffer, { timeout: TIMEOUT });
      if (n === 0) throw new Error("no answer over the serial line");
      text += decoder.decode(buffer.subarray(0, n));
    }
    return text.trimEnd();
  },
};

const cases: DemoCase[] = [
  shmCase,
  pipeCase,
  mailslotCase,
  copydataCase,
  clipboardCase,
  ddeCase,
  socketCase,
  httpCase,
  serialCase,
  comCase,
  rpcCase,
  msrpcCase,
];

interface Row {
  mechanism: string;
  sent: string;
  received: string;
  ms: number;
  result: "ok" | "failed" | "skipped";
}

async function runPeer(session: string): Promise<void> {
  const active = cases.filter((c) => !c.skip?.());
  const tell = (key: string, value: string) => console.log(`info ${key} ${value}`);
  const running = await Promise.all(active.map((c) => c.start(session, tell)));
  console.log("ready");
  await Promise.all(running.map((r) => r.done));
}

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
      if (opts.peer !== undefined) return await runPeer(opts.peer);
      const session = `winipc-demo-${Deno.pid}-${Date.now().toString(36)}`;
      const peer = selfCommand(["demo", "--peer", session]).spawn();
      const lines = peer.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const info: Info = {};
      let buffered = "";
      for (;;) {
        const { value, done } = await lines.read();
        if (done) {
          const stderr = await new Response(peer.stderr).text();
          throw new Error(`the demo's second process did not start: ${stderr.trim()}`);
        }
        buffered += value;
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        const ready = parts.some((line) => {
          const [word, key, ...rest] = line.trim().split(" ");
          if (word === "info") info[key] = rest.join(" ");
          return word === "ready";
        });
        if (ready) break;
      }
      const rows: Row[] = [];
      for (const c of cases) {
        const sent = `hello from ${Deno.pid} over ${c.mechanism}`;
        const reason = c.skip?.();
        if (reason) {
          rows.push({
            mechanism: c.mechanism,
            sent: "",
            received: reason,
            ms: 0,
            result: "skipped",
          });
          continue;
        }
        const start = performance.now();
        let received: string;
        let ok = false;
        try {
          received = await c.run(session, sent, info);
          ok = received === `echo:${sent}`;
        } catch (e) {
          received = `error: ${(e as Error).message}`;
        }
        rows.push({
          mechanism: c.mechanism,
          sent,
          received,
          ms: performance.now() - start,
          result: ok ? "ok" : "failed",
        });
      }
      const [status, peerError] = await Promise.all([
        peer.status,
        new Response(peer.stderr).text().then((t) => t.trim()),
        lines.cancel(),
      ]);
      if (opts.json) {
        for (const r of rows) {
          emit(true, { ...r, ms: Math.round(r.ms * 1000) / 1000, ok: r.result === "ok" }, "");
        }
      } else {
        const table = new Table({
          head: ["mechanism", "sent", "came back", "first exchange", "result"],
          style: tableStyle(),
        });
        for (const r of rows) {
          table.push([
            r.mechanism,
            r.sent,
            r.received,
            r.result === "skipped" ? "" : `${r.ms.toFixed(2)} ms`,
            r.result,
          ]);
        }
        console.log(table.toString());
        console.log(
          "Each time is one first exchange: it includes creating or connecting to the object and\n" +
            "the first use of the mechanism in this process. For warm round trips: winipc bench",
        );
      }
      if (!status.success) {
        throw new Error(`the demo's second process failed (code ${status.code}): ${peerError}`);
      }
      const failed = rows.filter((r) => r.result === "failed");
      if (failed.length) throw new Error(`${failed.map((r) => r.mechanism).join(", ")} failed`);
    });
}
