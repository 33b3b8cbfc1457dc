// The API convention of CONTRIBUTING.md, checked over the public API as `deno doc --json` sees it
// (mod.ts and every sub-path export but ./ffi and ./cli, as tools/doc_audit.ts reads them):
//
// - every exported class that owns something (it has `close()`, or a dispose symbol without a
//   `release()`) has `close()`, a `closed` getter and `[Symbol.dispose]` or
//   `[Symbol.asyncDispose]`, declared or inherited;
// - every exported options type with a `timeout` member extends the shared `IoOptions` (or
//   `Pick<IoOptions, ...>`), directly or through a parent; and no public function or method
//   spells `{ timeout?: number; ... }` inline.
//
// Those two run `deno doc`, so on Linux only (the Wine run skips them). A third, under Wine,
// closes one object of each class that gained `closed` here twice, and disposes it after.
import assert from "node:assert/strict";
import { auditedEntryPoints } from "../tools/doc_audit.ts";
import {
  connect,
  connectShm,
  DdeServer,
  defineProcedures,
  listen,
  listenDatagram,
  listenShm,
  MailslotReader,
  MailslotWriter,
  MsRpcClient,
  MsRpcServer,
  Publisher,
  RpcClient,
  RpcServer,
  ShmChannel,
  spawnChild,
  Subscriber,
} from "../mod.ts";
import { z } from "zod";
import { SAMPLE_INTERFACE } from "./fixtures/msrpc_api.ts";
import { onWindows, uniqueName, winTest } from "./_helpers.ts";

/**
 * Deliberate exceptions, by `file#Class`, each with its reason. The test fails when one no longer
 * applies, so the list shrinks as they are fixed.
 */
const LIFECYCLE_EXCEPTIONS: Record<string, string> = {};

// The parts of `deno doc --json` read here.
interface TsType {
  repr: string;
  kind: string;
  // deno-lint-ignore no-explicit-any
  value?: any;
}
interface Member {
  name: string;
  kind?: string;
  tsType?: TsType;
  functionDef?: { params: { tsType?: TsType }[] };
  params?: { tsType?: TsType }[];
}
interface Declaration {
  kind: string;
  declarationKind: string;
  location: { filename: string; line: number };
  def: {
    extends?: string | TsType[] | null;
    methods?: Member[];
    properties?: Member[];
    params?: { tsType?: TsType }[];
    constructors?: Member[];
    tsType?: TsType;
  };
}
interface DocSymbol {
  name: string;
  declarations: Declaration[];
}

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function docOutput(): Promise<{ file: string; symbol: DocSymbol; decl: Declaration }[]> {
  const files = await auditedEntryPoints(root);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...files],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.ok(out.success, `deno doc --json failed: ${new TextDecoder().decode(out.stderr)}`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols?: DocSymbol[] }>;
  };
  // one entry per declaration (mod.ts re-exports the same symbols as the sub-paths)
  const seen = new Map<string, { file: string; symbol: DocSymbol; decl: Declaration }>();
  for (const node of Object.values(doc.nodes)) {
    for (const symbol of node.symbols ?? []) {
      for (const decl of symbol.declarations) {
        if (decl.kind === "reference" || decl.declarationKind !== "export") continue;
        const file = decodeURIComponent(decl.location.filename.replace(`file://${root}/`, ""));
        seen.set(`${file}#${symbol.name}#${decl.kind}`, { file, symbol, decl });
      }
    }
  }
  return [...seen.values()];
}

let cached: ReturnType<typeof docOutput> | undefined;
const declarations = () => cached ??= docOutput();

function memberName(m: Member): string {
  return typeof m.name === "string" ? m.name : String(m.name);
}

Deno.test({
  name: "convention: every handle-owning class has close(), closed and a dispose symbol",
  ignore: onWindows,
  fn: async () => {
    const all = await declarations();
    const classes = new Map(
      all.filter((d) => d.decl.kind === "class").map((d) => [d.symbol.name, d]),
    );
    /** The names of a class's members, its parents' included. */
    const members = (name: string): Set<string> => {
      const found = classes.get(name);
      if (!found) return new Set();
      const own = [...found.decl.def.methods ?? [], ...found.decl.def.properties ?? []]
        .map(memberName);
      const parent = found.decl.def.extends;
      const inherited = typeof parent === "string" ? members(parent) : new Set<string>();
      return new Set([...own, ...inherited]);
    };
    const problems: string[] = [];
    const stale: string[] = [];
    let checked = 0;
    for (const [name, { file }] of classes) {
      const m = members(name);
      const disposable = m.has("[Symbol.dispose]") || m.has("[Symbol.asyncDispose]");
      const owner = m.has("close") || (disposable && !m.has("release"));
      if (!owner) continue;
      checked++;
      const missing = [
        ...m.has("close") ? [] : ["close()"],
        ...m.has("closed") ? [] : ["closed"],
        ...disposable ? [] : ["[Symbol.dispose] or [Symbol.asyncDispose]"],
      ];
      const key = `${file}#${name}`;
      if (key in LIFECYCLE_EXCEPTIONS) {
        if (missing.length === 0) stale.push(key);
        continue;
      }
      if (missing.length) problems.push(`${key}: no ${missing.join(", ")}`);
    }
    assert.ok(
      checked >= 20,
      `only ${checked} handle-owning classes found: is deno doc read right?`,
    );
    assert.deepEqual(problems, [], problems.join("\n"));
    assert.deepEqual(stale, [], `exceptions that no longer apply: ${stale.join(", ")}`);
  },
});

/** Whether a type names the shared options: `IoOptions` or `Pick<IoOptions, ...>`. */
function isShared(t: TsType): boolean {
  if (t.repr === "IoOptions") return true;
  return t.repr === "Pick" && t.value?.typeParams?.[0]?.repr === "IoOptions";
}

/** Whether a type is an inline object type with a `timeout` member. */
function inlineTimeout(t: TsType | undefined): boolean {
  if (!t) return false;
  if (t.kind === "typeLiteral") {
    return (t.value?.properties ?? []).some((p: Member) => p.name === "timeout");
  }
  if (t.kind === "union" || t.kind === "intersection") {
    return (t.value as TsType[]).some(inlineTimeout);
  }
  return false;
}

Deno.test({
  name: "convention: every options type with a timeout uses the shared IoOptions",
  ignore: onWindows,
  fn: async () => {
    const all = await declarations();
    const interfaces = new Map(
      all.filter((d) => d.decl.kind === "interface").map((d) => [d.symbol.name, d]),
    );
    const usesShared = (name: string): boolean => {
      const found = interfaces.get(name);
      const parents = (found?.decl.def.extends ?? []) as TsType[];
      return parents.some((p) => isShared(p) || usesShared(p.repr));
    };
    const problems: string[] = [];
    let checked = 0;
    for (const { file, symbol, decl } of all) {
      const where = `${file}#${symbol.name}`;
      if (decl.kind === "interface" && where !== "mechanisms/_validate.ts#IoOptions") {
        const hasTimeout = (decl.def.properties ?? []).some((p) => p.name === "timeout");
        if (!hasTimeout) continue;
        checked++;
        if (!usesShared(symbol.name)) problems.push(`${where}: declares timeout, not IoOptions`);
      } else if (decl.kind === "typeAlias" && inlineTimeout(decl.def.tsType)) {
        problems.push(`${where}: an inline { timeout } type`);
      } else if (
        decl.kind === "function" && decl.def.params?.some((p) => inlineTimeout(p.tsType))
      ) {
        problems.push(`${where}: a parameter of an inline { timeout } type`);
      } else if (decl.kind === "class") {
        for (const m of [...decl.def.methods ?? [], ...decl.def.constructors ?? []]) {
          const params = m.functionDef?.params ?? m.params ?? [];
          if (params.some((p) => inlineTimeout(p.tsType))) {
            problems.push(`${where}.${memberName(m)}: a parameter of an inline { timeout } type`);
          }
        }
      }
    }
    assert.ok(checked >= 15, `only ${checked} options types with a timeout found`);
    assert.deepEqual(problems, [], problems.join("\n"));
  },
});

/** An object with the convention's lifecycle. */
interface Closable {
  readonly closed: boolean;
  close(): void | Promise<void>;
  [Symbol.dispose]?(): void;
  [Symbol.asyncDispose]?(): Promise<void>;
}

/** `closed` is false, then true after close(); a second close() and the dispose do nothing. */
async function closeTwice(what: string, object: Closable): Promise<void> {
  assert.equal(object.closed, false, `${what}: closed before close()`);
  await object.close();
  assert.equal(object.closed, true, `${what}: not closed after close()`);
  await object.close();
  if (object[Symbol.asyncDispose]) await object[Symbol.asyncDispose]!();
  else object[Symbol.dispose]!();
  assert.equal(object.closed, true, `${what}: closed again after dispose`);
}

winTest(
  "lifecycle: closed flips on close(), and closing twice then disposing is harmless",
  async () => {
    const tcp = await listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = tcp.accept();
    const conn = await connect({ hostname: "127.0.0.1", port: tcp.addr.port });
    const peer = await accepted;
    await closeTwice("TcpConn", conn);
    await closeTwice("TcpConn (accepted)", peer);
    await closeTwice("TcpListener", tcp);
    await closeTwice("DatagramSocket", await listenDatagram({ hostname: "127.0.0.1", port: 0 }));

    const channelName = uniqueName("conv-ch");
    const channel = await ShmChannel.create(channelName);
    // streams are made once
    assert.equal(channel.readable, channel.readable);
    assert.equal(channel.writable, channel.writable);
    await closeTwice("ShmChannel", channel);

    const listenerName = uniqueName("conv-l");
    const listener = await listenShm(listenerName);
    // an accept takes the shared { timeout, signal } too
    await assert.rejects(listener.accept({ timeout: 50 }), Deno.errors.TimedOut);
    const client = connectShm(listenerName, { timeout: 10_000 });
    const server = await listener.accept();
    await closeTwice("ShmChannel (accepted)", server!);
    await closeTwice("ShmChannel (connected)", await client);
    await closeTwice("ShmListener", listener);

    const slot = uniqueName("conv-slot");
    using reader = MailslotReader.create(slot);
    await closeTwice("MailslotWriter", MailslotWriter.open(slot));
    assert.equal(reader.closed, false);

    const service = uniqueName("conv-ps");
    const publisher = await Publisher.create(service, { sampleSize: 16, history: 4 });
    await closeTwice("Subscriber", await Subscriber.open(service));
    await closeTwice("Publisher", publisher);

    const rpcName = uniqueName("conv-rpc");
    const api = defineProcedures({
      add: { params: z.object({ a: z.number(), b: z.number() }), result: z.number() },
    });
    const rpcServer = await RpcServer.listen(rpcName, api, { add: ({ a, b }) => a + b });
    const rpcClient = await RpcClient.connect(rpcName, api);
    assert.equal(await rpcClient.call("add", { a: 2, b: 40 }), 42);
    await closeTwice("RpcClient", rpcClient);
    await closeTwice("RpcServer", rpcServer);

    const endpoint = uniqueName("conv-msrpc");
    const msServer = MsRpcServer.listen({ ...SAMPLE_INTERFACE, endpoint, procedures: [() => {}] });
    await closeTwice("MsRpcClient", MsRpcClient.connect({ ...SAMPLE_INTERFACE, endpoint }));
    await closeTwice("MsRpcServer", msServer);

    await closeTwice("DdeServer", new DdeServer(uniqueName("convdde"), { topics: ["T"] }));

    const child = spawnChild(Deno.execPath(), ["eval", "0"], {
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    });
    assert.equal((await child.status).code, 0);
    await closeTwice("ChildProcess", child);
    assert.equal(child.stdin!.closed, true, "close() closes the child's pipes");
    assert.equal(child.stdout!.closed, true);
  },
);
