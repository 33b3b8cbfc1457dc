/**
 * Microsoft RPC (rpcrt4) without a MIDL compiler: a server registers an interface whose dispatch
 * table is a thread-safe callback, a client sends `RPC_MESSAGE`s with `I_RpcGetBuffer` and
 * `I_RpcSendReceive`, and the bodies are NDR, written and read with {@linkcode NdrWriter} and
 * {@linkcode NdrReader}. Protocol sequences `ncalrpc` (local), `ncacn_np` (named pipes) and
 * `ncacn_ip_tcp` (TCP, the endpoint a port number; the server listens on every interface, as the
 * RPC runtime does, so a firewall or the RPC policy decides who may reach it).
 *
 * Procedures are synchronous functions from the request's NDR to the response's: the runtime
 * calls the dispatch function on its own worker thread, which waits while the procedure runs on
 * Deno's main thread, so the main thread must not itself be blocked in a synchronous call.
 * A procedure that throws answers with a non-zero status word: every response starts with a
 * `long` status (0 for success), followed by the procedure's output.
 *
 * @example The sample interface, served and called
 * ```ts
 * import { MsRpcClient, MsRpcServer, NdrReader, NdrWriter } from "./msrpc.ts";
 * const iface = { uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11", version: [1, 0] as [number, number] };
 * using server = MsRpcServer.listen({
 *   ...iface, protseq: "ncalrpc", endpoint: "calc",
 *   procedures: [(req, res) => res.long(req.long() + req.long())],
 * });
 * using client = MsRpcClient.connect({ ...iface, protseq: "ncalrpc", endpoint: "calc" });
 * const out = await client.call(0, new NdrWriter().long(2).long(3).bytes());
 * new NdrReader(out).long(); // 5
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkCode, win32Error, WinipcError } from "../ffi/error.ts";
import {
  NDR_LOCAL_DATA_REPRESENTATION,
  NDR_TRANSFER_SYNTAX_GUID,
  RPC_C_LISTEN_MAX_CALLS_DEFAULT,
  RPC_C_PROTSEQ_MAX_REQS_DEFAULT,
  RPC_DISPATCH_TABLE,
  RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH,
  RPC_IF_ALLOW_LOCAL_ONLY,
  RPC_IF_AUTOLISTEN,
  RPC_INTERFACE,
  RPC_MESSAGE,
  RPC_S_ACCESS_DENIED,
  rpcrt4,
  TRANSPORT_TYPE_CN,
  TRANSPORT_TYPE_DG,
  TRANSPORT_TYPE_LPC,
} from "../ffi/rpcrt4.ts";
import { SecurityAttributes } from "../ffi/security.ts";
import { readWide, wide } from "../ffi/strings.ts";
import { SECURITY_ATTRIBUTES } from "../ffi/struct.ts";
import { ProtocolError } from "./channel.ts";
import { isLocalCaller } from "./_rpc_caller.ts";
import { parseArg } from "./_validate.ts";

/**
 * Writes NDR (little-endian, natural alignment) the way MIDL stubs marshal.
 *
 * @example The body of `Log(long level, [string] wchar_t* text, hyper time)`
 * ```ts
 * import { NdrWriter } from "./msrpc.ts";
 * const body = new NdrWriter().long(2).wstring("disk full").hyper(BigInt(Date.now())).bytes();
 * ```
 */
export class NdrWriter {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  #room(align: number, size: number): number {
    const at = Math.ceil(this.#length / align) * align;
    if (at + size > this.#bytes.length) {
      const bigger = new Uint8Array(Math.max(at + size, this.#bytes.length * 2));
      bigger.set(this.#bytes);
      this.#bytes = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#length = at + size;
    return at;
  }

  /** A `long` (4 bytes). @param value The value. @returns This writer. */
  long(value: number): this {
    this.#view.setInt32(this.#room(4, 4), value, true);
    return this;
  }

  /** A `hyper` (8 bytes). @param value The value. @returns This writer. */
  hyper(value: bigint): this {
    this.#view.setBigInt64(this.#room(8, 8), value, true);
    return this;
  }

  /**
   * A `[string] wchar_t*`: conformant varying (maximum count, offset, actual count) and the
   * UTF-16 units with a NUL.
   *
   * @param text The string.
   * @returns This writer.
   */
  wstring(text: string): this {
    const count = text.length + 1;
    this.long(count).long(0).long(count);
    const at = this.#room(2, count * 2);
    for (let i = 0; i < text.length; i++) {
      this.#view.setUint16(at + i * 2, text.charCodeAt(i), true);
    }
    this.#view.setUint16(at + text.length * 2, 0, true);
    return this;
  }

  /**
   * A conformant `byte` array (`[size_is(n)] byte data[]`): its count, then the bytes.
   *
   * @param data The bytes.
   * @returns This writer.
   */
  byteArray(data: Uint8Array): this {
    this.long(data.length);
    const at = this.#room(1, data.length);
    this.#bytes.set(data, at);
    return this;
  }

  /** The NDR written so far. @returns A copy. */
  bytes(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}

/**
 * Reads NDR written by {@linkcode NdrWriter} (or a MIDL stub). The bytes come from another
 * process: every count and offset is checked against the bytes left before it is used, and a
 * violation throws a {@linkcode ProtocolError} (a procedure that throws one answers its call with
 * the status "bad request"; the server goes on).
 *
 * @example Read the values back in the order they were written
 * ```ts
 * import { NdrReader, NdrWriter } from "./msrpc.ts";
 * const reader = new NdrReader(new NdrWriter().long(7).wstring("héllo").bytes());
 * console.log(reader.long(), reader.wstring()); // 7 "héllo"
 * ```
 */
export class NdrReader {
  readonly #view: DataView;
  #at = 0;

  /**
   * Reads from the start of `bytes`.
   *
   * @param bytes The NDR.
   */
  constructor(bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #take(align: number, size: number): number {
    const at = Math.ceil(this.#at / align) * align;
    if (at + size > this.#view.byteLength) {
      throw new ProtocolError(
        `NDR ends early: ${size} bytes wanted at ${at} of ${this.#view.byteLength}`,
      );
    }
    this.#at = at + size;
    return at;
  }

  /** An unsigned 32-bit count or offset, as NDR sends them. */
  #count(): number {
    return this.#view.getUint32(this.#take(4, 4), true);
  }

  /**
   * Reads a `long`.
   *
   * @returns The next `long`.
   * @throws {ProtocolError} When the NDR ends before it.
   */
  long(): number {
    return this.#view.getInt32(this.#take(4, 4), true);
  }

  /**
   * Reads a `hyper`.
   *
   * @returns The next `hyper`.
   * @throws {ProtocolError} When the NDR ends before it.
   */
  hyper(): bigint {
    return this.#view.getBigInt64(this.#take(8, 8), true);
  }

  /**
   * Reads a `[string] wchar_t*`: its maximum count, offset and actual count are checked (offset
   * 0, actual count at least 1 and at most the maximum, the units inside the NDR, the only NUL
   * the last unit) before any unit is read.
   *
   * @returns The string.
   * @throws {ProtocolError} When a count or the offset is out of bounds or the string is not
   *   terminated where its count says.
   */
  wstring(): string {
    const max = this.#count();
    const offset = this.#count();
    const count = this.#count();
    if (offset !== 0) throw new ProtocolError(`NDR string offset ${offset}: must be 0`);
    if (count < 1 || count > max) {
      throw new ProtocolError(`NDR string actual count ${count}: must be 1 to its maximum ${max}`);
    }
    const at = this.#take(2, count * 2); // throws unless all `count` units are in the NDR
    const units = new Uint16Array(count);
    for (let i = 0; i < count; i++) units[i] = this.#view.getUint16(at + i * 2, true);
    const nul = units.indexOf(0);
    if (nul !== count - 1) {
      throw new ProtocolError(
        nul < 0
          ? `NDR string of ${count} units has no terminating NUL`
          : `NDR string of ${count} units has a NUL at unit ${nul}`,
      );
    }
    return utf16.decode(units.subarray(0, count - 1));
  }

  /**
   * Reads a conformant `byte` array.
   *
   * @returns A copy of its bytes.
   * @throws {ProtocolError} When its count passes the end of the NDR.
   */
  byteArray(): Uint8Array {
    const count = this.#count();
    const at = this.#take(1, count);
    return new Uint8Array(this.#view.buffer, this.#view.byteOffset + at, count).slice();
  }
}

const utf16 = new TextDecoder("utf-16le");

/**
 * A procedure of a served interface: reads the request's NDR, writes the response's.
 *
 * @example `long Length([string] wchar_t* text)`
 * ```ts
 * import type { MsRpcProcedure } from "./msrpc.ts";
 * const length: MsRpcProcedure = (request, response) => {
 *   response.long(request.wstring().length);
 * };
 * ```
 */
export type MsRpcProcedure = (request: NdrReader, response: NdrWriter) => void;

/**
 * Where an interface listens (server) or is reached (client).
 *
 * @example One interface over local RPC and over a named pipe
 * ```ts
 * import type { MsRpcEndpoint } from "./msrpc.ts";
 * const uuid = "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11";
 * const local: MsRpcEndpoint = { uuid, protseq: "ncalrpc", endpoint: "calc" };
 * const pipe: MsRpcEndpoint = { uuid, version: [1, 0], protseq: "ncacn_np", endpoint: "\\pipe\\calc" };
 * const tcp: MsRpcEndpoint = { uuid, protseq: "ncacn_ip_tcp", endpoint: "50123" };
 * ```
 */
export interface MsRpcEndpoint {
  /** The interface's UUID. */
  uuid: string;
  /** Its version, `[major, minor]`. Default `[1, 0]`. */
  version?: [number, number];
  /** `"ncalrpc"` (local RPC, default), `"ncacn_np"` (named pipes) or `"ncacn_ip_tcp"` (TCP). */
  protseq?: "ncalrpc" | "ncacn_np" | "ncacn_ip_tcp";
  /**
   * The endpoint: an LRPC port name, a pipe path for ncacn_np (`\pipe\calc`), or a port number
   * for ncacn_ip_tcp (`"50123"`).
   */
  endpoint: string;
}

/**
 * Who is calling, as the RPC runtime reports it; given to {@linkcode MsRpcServerOptions.allow}.
 *
 * @example Let in local processes of one program only
 * ```ts
 * import type { MsRpcCaller } from "./msrpc.ts";
 * const trusted = new Set<number>([4242]);
 * const allow = (caller: MsRpcCaller) => caller.local && trusted.has(caller.pid ?? -1);
 * ```
 */
export interface MsRpcCaller {
  /**
   * The call's transport (`I_RpcBindingInqTransportType`): `"lrpc"` (local RPC), `"cn"`
   * (connection-oriented: named pipes, TCP), `"dg"` (datagram) or `"unknown"`.
   */
  transport: "lrpc" | "cn" | "dg" | "unknown";
  /** The protocol sequence of the client's binding (`ncalrpc`, `ncacn_np`, `ncacn_ip_tcp`), if known. */
  protseq?: string;
  /** The client's network address as the runtime reports it (an IP address over TCP), if any. */
  address?: string;
  /** The client's process id, when the runtime knows it (local RPC). */
  pid?: number;
  /**
   * Whether the call comes from this machine: local RPC, a named pipe without a remote address,
   * or TCP from a loopback address (127.0.0.0/8, ::1).
   */
  local: boolean;
}

/**
 * Options of {@linkcode MsRpcServer.listen}.
 *
 * @example Procedure 0 adds, procedure 1 echoes a string
 * ```ts
 * import { MsRpcServer } from "./msrpc.ts";
 * const iface = { uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11", endpoint: "calc" };
 * using server = MsRpcServer.listen({
 *   ...iface,
 *   procedures: [
 *     (req, res) => res.long(req.long() + req.long()),
 *     (req, res) => res.wstring(req.wstring()),
 *   ],
 * });
 * ```
 */
export interface MsRpcServerOptions extends MsRpcEndpoint {
  /** The procedures, by number. */
  procedures: MsRpcProcedure[];
  /**
   * Accept calls from other machines. Default `false`: the interface is registered with
   * `RPC_IF_ALLOW_LOCAL_ONLY` and every call's caller must be local (see
   * {@linkcode MsRpcCaller.local}); over ncacn_ip_tcp that means from a loopback address. The
   * runtime's TCP endpoint listens on every interface either way; the refusal is per call.
   */
  remote?: boolean;
  /**
   * Decides per call, after the local check: `true` lets the call in. Called by the interface's
   * security callback (where the runtime calls it) and again before each procedure. A throw
   * refuses the call. Default: every caller the local check let in.
   */
  allow?: (caller: MsRpcCaller) => boolean;
  /**
   * The largest request body accepted, in bytes (`MaxRpcSize` of `RpcServerRegisterIf2`, and
   * checked again before the body is copied). Default 4 MiB (4,194,304); at most 1 GiB.
   */
  maxMessageBytes?: number;
  /**
   * The endpoint's security descriptor (SDDL) for ncalrpc and ncacn_np. Default for a local
   * server: `D:(D;;GA;;;NU)(A;;GA;;;WD)` (network logons denied, everyone else allowed, as the
   * interface's own checks decide who may call); for a remote one the runtime's default.
   */
  sddl?: string;
  /**
   * Told about each refused or failed call: a {@linkcode ProtocolError} for bad NDR or a request
   * over `maxMessageBytes`, a {@linkcode MsRpcRefusedError} for a caller refused, or the error a
   * procedure threw. The server goes on either way. Default: none.
   */
  onError?: (error: Error, caller: MsRpcCaller | undefined) => void;
}

/**
 * A call refused by the server's local check or its `allow` function.
 *
 * @example Seen by the server's onError
 * ```ts
 * import { MsRpcRefusedError, MsRpcServer } from "./msrpc.ts";
 * using server = MsRpcServer.listen({
 *   uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11", endpoint: "calc",
 *   procedures: [(req, res) => res.long(req.long())],
 *   allow: (caller) => caller.pid === 4242,
 *   onError: (e) => { if (e instanceof MsRpcRefusedError) console.log(e.message); },
 * });
 * ```
 */
export class MsRpcRefusedError extends WinipcError {
  /** Who was refused. */
  readonly caller: MsRpcCaller | undefined;

  /**
   * Makes the error.
   *
   * @param message Why.
   * @param caller Who, when the runtime said.
   */
  constructor(message: string, caller: MsRpcCaller | undefined) {
    super(message, "ERR_RPC_REFUSED");
    this.name = "MsRpcRefusedError";
    this.caller = caller;
  }
}

/** The status word that starts every response. */
const STATUS = { ok: 0, failed: 1, badRequest: 2, tooLarge: 3, refused: 5 } as const;

const FAILURES = new Map<number, string>([
  [STATUS.failed, "the procedure failed on the server"],
  [STATUS.badRequest, "the server found the request malformed (bad NDR or no such procedure)"],
  [STATUS.tooLarge, "the request is over the server's maxMessageBytes"],
]);

/** The default `maxMessageBytes`: 4 MiB. */
const DEFAULT_MAX_MESSAGE = 4 << 20;

/** The default endpoint descriptor of a local server: no network logons. */
const LOCAL_SDDL = "D:(D;;GA;;;NU)(A;;GA;;;WD)";

/**
 * Options of {@linkcode MsRpcClient.connect}.
 *
 * @example Reach the interface on another machine over named pipes
 * ```ts
 * import { MsRpcClient } from "./msrpc.ts";
 * using client = MsRpcClient.connect({
 *   uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11",
 *   protseq: "ncacn_np",
 *   endpoint: "\\pipe\\calc",
 *   host: "buildserver",
 * });
 * ```
 */
export interface MsRpcClientOptions extends MsRpcEndpoint {
  /**
   * The server's host for ncacn_np and ncacn_ip_tcp (DCE RPC to another machine). Default: this
   * one.
   */
  host?: string;
}

const endpointSchema = z.object({
  uuid: z.uuid({ error: "must be a UUID" }),
  version: z.tuple([z.number().int().min(0).max(65535), z.number().int().min(0).max(65535)])
    .optional(),
  protseq: z.enum(["ncalrpc", "ncacn_np", "ncacn_ip_tcp"], {
    error: 'must be "ncalrpc", "ncacn_np" or "ncacn_ip_tcp"',
  }).optional(),
  endpoint: z.string().min(1, { error: "must not be empty" }).max(200)
    .regex(/^[\w.\\-]+$/, { error: "must be letters, digits, '.', '-', '_' or '\\'" }),
});

/** An ncacn_ip_tcp endpoint is a port number; checked after the schema (extensible objects). */
function checkTcpEndpoint(o: { protseq?: string; endpoint: string }): void {
  if (o.protseq !== "ncacn_ip_tcp") return;
  const port = /^\d{1,5}$/.test(o.endpoint) ? Number(o.endpoint) : 0;
  if (port < 1 || port > 65535) {
    throw new TypeError(
      'Invalid argument "options.endpoint": an ncacn_ip_tcp endpoint must be a port number from 1 to 65535',
    );
  }
}

function guidBytes(uuid: string): number[] {
  const hex = uuid.replaceAll("-", "");
  const b = (i: number) => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  // Data1 (4), Data2 (2), Data3 (2) little-endian; Data4 (8) as written
  return [
    b(3),
    b(2),
    b(1),
    b(0),
    b(5),
    b(4),
    b(7),
    b(6),
    ...Array.from({ length: 8 }, (_, i) => b(8 + i)),
  ];
}

function interfaceStruct(uuid: string, version: [number, number], dispatch: Deno.PointerValue) {
  return RPC_INTERFACE.alloc({
    Length: RPC_INTERFACE.size,
    InterfaceId: { guid: guidBytes(uuid), major: version[0], minor: version[1] },
    TransferSyntax: { guid: guidBytes(NDR_TRANSFER_SYNTAX_GUID), major: 2, minor: 0 },
    DispatchTable: dispatch,
  });
}

/** The dispatch function's signature: `void Dispatch(RPC_MESSAGE *Message)`. */
const DISPATCH = { parameters: ["pointer"], result: "void" } as const;
type DispatchCallback = Deno.UnsafeCallback<typeof DISPATCH>;
/** The security callback's: `RPC_STATUS IfCallbackFn(RPC_IF_HANDLE Interface, void *Context)`. */
const SECURITY = { parameters: ["pointer", "pointer"], result: "i32" } as const;

const TRANSPORTS = new Map<number, MsRpcCaller["transport"]>([
  [TRANSPORT_TYPE_LPC, "lrpc"],
  [TRANSPORT_TYPE_CN, "cn"],
  [TRANSPORT_TYPE_DG, "dg"],
]);

/**
 * Who is calling on a server binding, from the runtime: transport, the client binding's protocol
 * sequence and network address, the client's pid. A query the runtime refuses leaves its field
 * unset; nothing here throws.
 */
function inspectCaller(binding: Deno.PointerValue): MsRpcCaller {
  const caller: MsRpcCaller = { transport: "unknown", local: false };
  if (!binding) return caller;
  const rpc = rpcrt4();
  const word = new Uint32Array(1);
  if (rpc.I_RpcBindingInqTransportType(binding, word) === 0) {
    caller.transport = TRANSPORTS.get(word[0]) ?? "unknown";
  }
  if (rpc.I_RpcBindingInqLocalClientPID(binding, word) === 0 && word[0] !== 0) caller.pid = word[0];
  const server = new BigUint64Array(1);
  if (rpc.RpcBindingServerFromClient(binding, server) === 0) {
    const text = new BigUint64Array(1);
    if (rpc.RpcBindingToStringBindingW(Deno.UnsafePointer.create(server[0]), text) === 0) {
      const binding = readWide(Deno.UnsafePointer.create(text[0]), 1024);
      rpc.RpcStringFreeW(text);
      // [object-uuid@]protseq:[address][endpoint,options]
      const parts = /^(?:[0-9a-f-]{36}@)?([a-z_]+):([^[]*)/i.exec(binding);
      if (parts) {
        caller.protseq = parts[1].toLowerCase();
        if (parts[2]) caller.address = parts[2];
      }
    }
    rpc.RpcBindingFree(server);
  }
  caller.local = isLocalCaller(caller, Deno.hostname());
  return caller;
}

const RPC_S_DUPLICATE_ENDPOINT = 1740;
/** The endpoints this process's servers asked the runtime to use (`protseq:endpoint`). */
const endpointsInUse = new Set<string>();

/** What a served interface checks and calls, shared by its two callbacks. */
interface Served {
  procedures: MsRpcProcedure[];
  remote: boolean;
  allow: ((caller: MsRpcCaller) => boolean) | undefined;
  maxMessageBytes: number;
  onError: ((error: Error, caller: MsRpcCaller | undefined) => void) | undefined;
}

/** Refuses a caller the server does not let in: throws {@linkcode MsRpcRefusedError}. */
function admit(caller: MsRpcCaller, served: Served): void {
  if (!served.remote && !caller.local) {
    throw new MsRpcRefusedError(
      `RPC call refused: the caller is not on this machine (${caller.protseq ?? caller.transport}` +
        `${caller.address ? ` from ${caller.address}` : ""}) and the server is local-only`,
      caller,
    );
  }
  if (!served.allow) return;
  let allowed: boolean;
  try {
    allowed = served.allow(caller) === true;
  } catch (e) {
    throw Object.assign(
      new MsRpcRefusedError(
        `RPC call refused: allow() threw: ${(e as Error)?.message ?? e}`,
        caller,
      ),
      { cause: e },
    );
  }
  if (!allowed) throw new MsRpcRefusedError("RPC call refused by allow()", caller);
}

function report(served: Served, error: unknown, caller: MsRpcCaller | undefined): void {
  if (!served.onError) return;
  try {
    served.onError(error instanceof Error ? error : new Error(String(error)), caller);
  } catch {
    // an onError that throws must not reach the runtime's thread; the call is answered anyway
  }
}

/**
 * A registered RPC interface served from TypeScript.
 *
 * Secure by default: local callers only (`RPC_IF_ALLOW_LOCAL_ONLY`, and the same check made by
 * the interface's security callback and before every procedure), request bodies up to
 * `maxMessageBytes`, an endpoint descriptor that denies network logons, and an optional `allow`
 * function that sees who calls. A request whose NDR is malformed, too large, or from a caller
 * refused is answered with an error status; the server goes on serving.
 *
 * @example Serve an interface until the process is told to stop
 * ```ts
 * import { MsRpcServer } from "./msrpc.ts";
 * const iface = { uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11", endpoint: "calc" };
 * using server = MsRpcServer.listen({ ...iface, procedures: [(req, res) => res.long(-req.long())] });
 * await new Promise((resolve) => Deno.addSignalListener("SIGINT", () => resolve(undefined)));
 * ```
 */
export class MsRpcServer implements Disposable, AsyncDisposable {
  readonly #interface: Uint8Array<ArrayBuffer>;
  readonly #callbacks: { close(): void }[];
  readonly #keep: unknown[];
  #closing: Promise<void> | undefined;

  private constructor(
    iface: Uint8Array<ArrayBuffer>,
    callbacks: { close(): void }[],
    keep: unknown[],
  ) {
    this.#interface = iface;
    this.#callbacks = callbacks;
    this.#keep = keep;
  }

  /**
   * Registers the interface and listens on the endpoint.
   *
   * @param options The interface, endpoint, procedures, and who may call.
   * @returns The server; `close()` unregisters it.
   * @throws {Win32Error} With the RPC status (e.g. `RPC_S_DUPLICATE_ENDPOINT`).
   */
  static listen(options: MsRpcServerOptions): MsRpcServer {
    const opts = parseArg(
      endpointSchema.extend({
        procedures: z.array(z.custom<MsRpcProcedure>((f) => typeof f === "function")).min(1),
        remote: z.boolean().optional(),
        allow: z.custom<(caller: MsRpcCaller) => boolean>((f) => typeof f === "function", {
          error: "must be a function",
        }).optional(),
        maxMessageBytes: z.number().int({ error: "must be an integer" })
          .min(1, { error: "must be at least 1" })
          .max(1 << 30, { error: "must be at most 1 GiB" }).optional(),
        sddl: z.string().min(1, { error: "must not be empty" }).optional(),
        onError: z.custom<(error: Error) => void>((f) => typeof f === "function", {
          error: "must be a function",
        }).optional(),
      }),
      options,
      "options",
    );
    checkTcpEndpoint(opts);
    const protseq = opts.protseq ?? "ncalrpc";
    const remote = opts.remote ?? false;
    const served: Served = {
      procedures: opts.procedures,
      remote,
      allow: opts.allow,
      maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE,
      onError: opts.onError as Served["onError"],
    };
    const rpc = rpcrt4();
    const dispatch = Deno.UnsafeCallback.threadSafe(
      DISPATCH,
      (message) => MsRpcServer.#dispatch(message!, served),
    );
    dispatch.unref(); // the registration, not the callback, keeps a server alive
    const security = Deno.UnsafeCallback.threadSafe(SECURITY, (_iface, context) => {
      try {
        admit(inspectCaller(context), served);
        return 0;
      } catch {
        return RPC_S_ACCESS_DENIED; // the call is refused again, and reported, in #dispatch
      }
    });
    security.unref();
    // Opnums are 16-bit on the wire, and Wine's runtime, after it answered an opnum past
    // DispatchTableCount with a fault, still reads that entry of the table and calls it when it is
    // not NULL. So the table has an entry for every opnum: ours for the procedures, NULL after.
    const functions = new BigUint64Array(0x1_0000);
    functions.fill(Deno.UnsafePointer.value(dispatch.pointer) as bigint, 0, opts.procedures.length);
    const table = RPC_DISPATCH_TABLE.alloc({
      DispatchTableCount: opts.procedures.length,
      DispatchTable: Deno.UnsafePointer.of(functions),
    });
    const iface = interfaceStruct(opts.uuid, opts.version ?? [1, 0], Deno.UnsafePointer.of(table));
    const context = `Cannot serve RPC interface ${opts.uuid} on ${protseq}:[${opts.endpoint}]`;
    const sddl = opts.sddl ?? (remote ? undefined : LOCAL_SDDL);
    // The runtime takes an endpoint descriptor for ncalrpc and ncacn_np only.
    using attributes = new SecurityAttributes(
      protseq === "ncacn_ip_tcp" || sddl === undefined ? {} : { sddl },
    );
    const descriptor = attributes.bytes
      ? SECURITY_ATTRIBUTES.read(attributes.bytes).lpSecurityDescriptor
      : null;
    const flags = RPC_IF_AUTOLISTEN | RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH |
      (remote ? 0 : RPC_IF_ALLOW_LOCAL_ONLY);
    try {
      const key = `${protseq}:${opts.endpoint.toLowerCase()}`;
      const used = rpc.RpcServerUseProtseqEpW(
        wide(protseq),
        RPC_C_PROTSEQ_MAX_REQS_DEFAULT,
        wide(opts.endpoint),
        descriptor,
      );
      // An endpoint stays in use until the process exits (the runtime has no call that stops
      // using one), so a later server of this process on the same endpoint finds it taken by us.
      if (!(used === RPC_S_DUPLICATE_ENDPOINT && endpointsInUse.has(key))) {
        checkCode(used, "RpcServerUseProtseqEpW", context);
      }
      endpointsInUse.add(key);
      checkCode(
        rpc.RpcServerRegisterIf2(
          iface,
          null,
          null,
          flags,
          RPC_C_LISTEN_MAX_CALLS_DEFAULT,
          served.maxMessageBytes,
          security.pointer,
        ),
        "RpcServerRegisterIf2",
        context,
      );
    } catch (e) {
      dispatch.close();
      security.close();
      throw e;
    }
    return new MsRpcServer(iface, [dispatch, security], [functions, table]);
  }

  static #dispatch(message: Deno.PointerObject, served: Served): void {
    const fields = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(message, RPC_MESSAGE.size));
    const { Handle, Buffer, BufferLength, ProcNum } = RPC_MESSAGE.read(fields);
    const response = new NdrWriter();
    let caller: MsRpcCaller | undefined;
    let status: number = STATUS.failed;
    try {
      caller = inspectCaller(Handle);
      admit(caller, served);
      const length = BufferLength;
      if (length > served.maxMessageBytes) {
        status = STATUS.tooLarge;
        throw new ProtocolError(
          `RPC request of ${length} bytes: over maxMessageBytes (${served.maxMessageBytes})`,
        );
      }
      const input = Buffer && length
        ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Buffer, length)).slice()
        : new Uint8Array(0);
      const procedure = ProcNum < served.procedures.length ? served.procedures[ProcNum] : undefined;
      if (!procedure) {
        status = STATUS.badRequest;
        throw new ProtocolError(
          `RPC procedure ${ProcNum}: the interface has ${served.procedures.length}`,
        );
      }
      const body = new NdrWriter();
      procedure(new NdrReader(input), body);
      response.long(STATUS.ok).byteArray(body.bytes());
    } catch (e) {
      if (e instanceof MsRpcRefusedError) status = STATUS.refused;
      else if (e instanceof ProtocolError && status === STATUS.failed) status = STATUS.badRequest;
      response.long(status).byteArray(new Uint8Array(0));
      report(served, e, caller);
    }
    const out = response.bytes();
    RPC_MESSAGE.write(fields, { BufferLength: out.length });
    if (rpcrt4().I_RpcGetBuffer(message) !== 0) return; // the runtime reports the failure
    const { Buffer: reply } = RPC_MESSAGE.read(fields);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(reply!, out.length)).set(out);
  }

  /** Whether `close()` has run (the unregistration may still be completing). */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Unregisters the interface, waits for the calls in progress to complete, then frees the
   * dispatch and security callbacks. Idempotent: every call returns the same promise.
   *
   * New calls are refused at once (clients get `RPC_S_UNKNOWN_IF` or `RPC_S_SERVER_UNAVAILABLE`).
   * The wait (`RpcServerUnregisterIf` with `WaitForCallsToComplete`) runs on a worker thread,
   * because the calls it waits for run their procedures on this thread: so `close()` may be
   * called from inside a procedure, and that call, and any other already dispatched, still
   * completes. The callbacks are freed only after the wait, never under a call that still uses
   * them.
   *
   * Under Wine 10 the wait has a race: the runtime checks the interface's call count under a
   * lock, while a call that has just sent its reply lowers the count without that lock and only
   * then looks whether the interface is being deleted; a `close()` that lands in that gap (right
   * after a reply) waits forever. Windows does not have it. The tests leave a few milliseconds
   * between a last reply and `close()`.
   *
   * @returns Resolves once the calls in flight completed and the callbacks are freed.
   * @throws {Win32Error} (rejects) With the RPC status when the runtime refuses the
   *   unregistration; the callbacks are then kept, as a call may still reach them.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const status = await rpcrt4().RpcServerUnregisterIfAsync(this.#interface, null, 1);
      checkCode(status, "RpcServerUnregisterIf", "Cannot stop serving the RPC interface");
      for (const callback of this.#callbacks) callback.close();
      this.#keep.length = 0;
    })();
    return this.#closing;
  }

  /** Starts closing ({@linkcode MsRpcServer.close}); the callbacks are freed once calls complete. */
  [Symbol.dispose](): void {
    this.close().catch(() => undefined);
  }

  /** Closes and waits until the calls in flight completed. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A binding to a server's interface.
 *
 * @example Call procedure 0 with two longs
 * ```ts
 * import { MsRpcClient, NdrReader, NdrWriter } from "./msrpc.ts";
 * const iface = { uuid: "5b0bdf8e-4d7a-4c6b-9a7e-3c1f7e0b9a11", endpoint: "calc" };
 * using client = MsRpcClient.connect(iface);
 * const reply = await client.call(0, new NdrWriter().long(2).long(3).bytes());
 * new NdrReader(reply).long(); // 5
 * ```
 */
export class MsRpcClient implements Disposable {
  readonly #binding: BigUint64Array;
  readonly #interface: Uint8Array<ArrayBuffer>;
  #closed = false;

  private constructor(binding: BigUint64Array, iface: Uint8Array<ArrayBuffer>) {
    this.#binding = binding;
    this.#interface = iface;
  }

  /**
   * Binds to an interface (no connection is made until the first call).
   *
   * @param options The interface, endpoint and optional host.
   * @returns The client.
   */
  static connect(options: MsRpcClientOptions): MsRpcClient {
    const opts = parseArg(
      endpointSchema.extend({ host: z.string().regex(/^[\w.-]+$/).optional() }),
      options,
      "options",
    );
    checkTcpEndpoint(opts);
    const protseq = opts.protseq ?? "ncalrpc";
    // In a string binding "\\" escapes: an ncacn_np endpoint's backslashes are doubled.
    const text = `${protseq}:${opts.host ?? ""}[${opts.endpoint.replaceAll("\\", "\\\\")}]`;
    const binding = new BigUint64Array(1);
    checkCode(
      rpcrt4().RpcBindingFromStringBindingW(wide(text), binding),
      "RpcBindingFromStringBindingW",
      `Cannot bind to "${text}"`,
    );
    return new MsRpcClient(binding, interfaceStruct(opts.uuid, opts.version ?? [1, 0], null));
  }

  /**
   * Calls procedure `procNum` with a request body; resolves to the response's body.
   *
   * @param procNum The procedure's number.
   * @param request The request's NDR.
   * @returns The response's NDR (after the status word).
   * @throws {Win32Error} With the RPC status when the call fails (`RPC_S_SERVER_UNAVAILABLE`...),
   *   `ERROR_ACCESS_DENIED` (5) when the server refused this caller (not local, or its `allow`).
   * @throws {Error} When the procedure failed on the server, or the server found the request
   *   malformed or over its `maxMessageBytes`.
   * @throws {ProtocolError} When the response's NDR is malformed.
   */
  async call(procNum: number, request: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new Deno.errors.BadResource("RPC binding is closed");
    const rpc = rpcrt4();
    const fields = RPC_MESSAGE.alloc({
      Handle: Deno.UnsafePointer.create(this.#binding[0]),
      DataRepresentation: NDR_LOCAL_DATA_REPRESENTATION,
      BufferLength: request.length,
      ProcNum: procNum,
      RpcInterfaceInformation: Deno.UnsafePointer.of(this.#interface),
    });
    const message = Deno.UnsafePointer.of(fields)!;
    const context = `RPC call ${procNum} failed`;
    checkCode(rpc.I_RpcGetBuffer(message), "I_RpcGetBuffer", context);
    let sent = false;
    try {
      const { Buffer } = RPC_MESSAGE.read(fields);
      if (request.length) {
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Buffer!, request.length)).set(request);
      }
      checkCode(await rpc.I_RpcSendReceiveAsync(message), "I_RpcSendReceive", context);
      sent = true;
      const { Buffer: reply, BufferLength } = RPC_MESSAGE.read(fields);
      const body = new NdrReader(
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(reply!, BufferLength)).slice(),
      );
      const status = body.long();
      if (status === STATUS.refused) {
        // as the runtime answers when the interface's security callback refuses
        throw win32Error("I_RpcSendReceive", RPC_S_ACCESS_DENIED, {
          context: `${context}: the server refused this caller`,
        });
      }
      if (status !== STATUS.ok) {
        throw new Error(
          `${context}: ${FAILURES.get(status) ?? `the server answered status ${status}`}`,
        );
      }
      return body.byteArray();
    } finally {
      if (sent) rpc.I_RpcFreeBuffer(message);
    }
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Frees the binding. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    rpcrt4().RpcBindingFree(this.#binding);
  }

  /** Frees the binding. */
  [Symbol.dispose](): void {
    this.close();
  }
}
