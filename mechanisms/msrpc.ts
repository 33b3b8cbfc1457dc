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
import { Win32Error } from "../ffi/error.ts";
import {
  NDR_LOCAL_DATA_REPRESENTATION,
  NDR_TRANSFER_SYNTAX_GUID,
  RPC_C_LISTEN_MAX_CALLS_DEFAULT,
  RPC_C_PROTSEQ_MAX_REQS_DEFAULT,
  RPC_DISPATCH_TABLE,
  RPC_IF_AUTOLISTEN,
  RPC_INTERFACE,
  RPC_MESSAGE,
  rpcrt4,
} from "../ffi/rpcrt4.ts";
import { wide } from "../ffi/strings.ts";
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
 * Reads NDR written by {@linkcode NdrWriter} (or a MIDL stub).
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
      throw new RangeError(
        `NDR ends early: ${size} bytes wanted at ${at} of ${this.#view.byteLength}`,
      );
    }
    this.#at = at + size;
    return at;
  }

  /** Reads a `long`. @returns The next `long`. */
  long(): number {
    return this.#view.getInt32(this.#take(4, 4), true);
  }

  /** Reads a `hyper`. @returns The next `hyper`. */
  hyper(): bigint {
    return this.#view.getBigInt64(this.#take(8, 8), true);
  }

  /** Reads a `[string] wchar_t*`. @returns The string. */
  wstring(): string {
    this.long(); // maximum count
    const offset = this.long();
    const count = this.long();
    const at = this.#take(2, count * 2) + offset * 2;
    let text = "";
    for (let i = 0; i < count; i++) {
      const unit = this.#view.getUint16(at + i * 2, true);
      if (unit === 0) break;
      text += String.fromCharCode(unit);
    }
    return text;
  }

  /** Reads a conformant `byte` array. @returns A copy of its bytes. */
  byteArray(): Uint8Array {
    const count = this.long();
    const at = this.#take(1, count);
    return new Uint8Array(this.#view.buffer, this.#view.byteOffset + at, count).slice();
  }
}

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
}

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

function check(status: number, functionName: string, context: string): void {
  if (status !== 0) throw new Win32Error(functionName, status, { context });
}

/**
 * A registered RPC interface served from TypeScript.
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
  readonly #callback: DispatchCallback;
  readonly #keep: unknown[];
  #closing: Promise<void> | undefined;

  private constructor(
    iface: Uint8Array<ArrayBuffer>,
    callback: DispatchCallback,
    keep: unknown[],
  ) {
    this.#interface = iface;
    this.#callback = callback;
    this.#keep = keep;
  }

  /**
   * Registers the interface and listens on the endpoint.
   *
   * @param options The interface, endpoint and procedures.
   * @returns The server; `close()` unregisters it.
   * @throws {Win32Error} With the RPC status (e.g. `RPC_S_DUPLICATE_ENDPOINT`).
   */
  static listen(options: MsRpcServerOptions): MsRpcServer {
    const opts = parseArg(
      endpointSchema.extend({
        procedures: z.array(z.custom<MsRpcProcedure>((f) => typeof f === "function")).min(1),
      }),
      options,
      "options",
    );
    checkTcpEndpoint(opts);
    const protseq = opts.protseq ?? "ncalrpc";
    const rpc = rpcrt4();
    const callback = Deno.UnsafeCallback.threadSafe(
      DISPATCH,
      (message) => MsRpcServer.#dispatch(message!, opts.procedures),
    );
    callback.unref(); // the registration, not the callback, keeps a server alive
    const functions = new BigUint64Array(opts.procedures.length).fill(
      Deno.UnsafePointer.value(callback.pointer) as bigint,
    );
    const table = RPC_DISPATCH_TABLE.alloc({
      DispatchTableCount: opts.procedures.length,
      DispatchTable: Deno.UnsafePointer.of(functions),
    });
    const iface = interfaceStruct(opts.uuid, opts.version ?? [1, 0], Deno.UnsafePointer.of(table));
    const context = `Cannot serve RPC interface ${opts.uuid} on ${protseq}:[${opts.endpoint}]`;
    try {
      check(
        rpc.RpcServerUseProtseqEpW(
          wide(protseq),
          RPC_C_PROTSEQ_MAX_REQS_DEFAULT,
          wide(opts.endpoint),
          null,
        ),
        "RpcServerUseProtseqEpW",
        context,
      );
      check(
        rpc.RpcServerRegisterIf2(
          iface,
          null,
          null,
          RPC_IF_AUTOLISTEN,
          RPC_C_LISTEN_MAX_CALLS_DEFAULT,
          0xffff_ffff,
          null,
        ),
        "RpcServerRegisterIf2",
        context,
      );
    } catch (e) {
      callback.close();
      throw e;
    }
    return new MsRpcServer(iface, callback, [functions, table]);
  }

  static #dispatch(message: Deno.PointerObject, procedures: MsRpcProcedure[]): void {
    const fields = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(message, RPC_MESSAGE.size));
    const { Buffer, BufferLength, ProcNum } = RPC_MESSAGE.read(fields);
    const input = Buffer && BufferLength
      ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Buffer, BufferLength)).slice()
      : new Uint8Array(0);
    const response = new NdrWriter();
    try {
      const procedure = procedures[ProcNum];
      if (!procedure) throw new Error(`No procedure ${ProcNum}`);
      const body = new NdrWriter();
      procedure(new NdrReader(input), body);
      response.long(0).byteArray(body.bytes());
    } catch {
      response.long(1).byteArray(new Uint8Array(0));
    }
    const out = response.bytes();
    RPC_MESSAGE.write(fields, { BufferLength: out.length });
    if (rpcrt4().I_RpcGetBuffer(message) !== 0) return; // the runtime reports the failure
    const { Buffer: reply } = RPC_MESSAGE.read(fields);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(reply!, out.length)).set(out);
  }

  /**
   * Unregisters the interface, waits for the calls in progress to complete, then frees the
   * dispatch callback. Idempotent: every call returns the same promise.
   *
   * New calls are refused at once (clients get `RPC_S_UNKNOWN_IF` or `RPC_S_SERVER_UNAVAILABLE`).
   * The wait (`RpcServerUnregisterIf` with `WaitForCallsToComplete`) runs on a worker thread,
   * because the calls it waits for run their procedures on this thread: so `close()` may be
   * called from inside a procedure, and that call, and any other already dispatched, still
   * completes. The callback is freed only after the wait, never under a call that still uses it.
   *
   * @returns Resolves once the calls in flight completed and the callback is freed.
   * @throws {Win32Error} (rejects) With the RPC status when the runtime refuses the
   *   unregistration; the callback is then kept, as a call may still reach it.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const status = await rpcrt4().RpcServerUnregisterIfAsync(this.#interface, null, 1);
      check(status, "RpcServerUnregisterIf", "Cannot stop serving the RPC interface");
      this.#callback.close();
      this.#keep.length = 0;
    })();
    return this.#closing;
  }

  /** Starts closing ({@linkcode MsRpcServer.close}); the callback is freed once calls complete. */
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
    check(
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
   * @throws {Win32Error} With the RPC status when the call fails (`RPC_S_SERVER_UNAVAILABLE`...).
   * @throws {Error} When the procedure failed on the server.
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
    check(rpc.I_RpcGetBuffer(message), "I_RpcGetBuffer", context);
    let sent = false;
    try {
      const { Buffer } = RPC_MESSAGE.read(fields);
      if (request.length) {
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Buffer!, request.length)).set(request);
      }
      check(await rpc.I_RpcSendReceiveAsync(message), "I_RpcSendReceive", context);
      sent = true;
      const { Buffer: reply, BufferLength } = RPC_MESSAGE.read(fields);
      const body = new NdrReader(
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(reply!, BufferLength)).slice(),
      );
      const status = body.long();
      if (status !== 0) throw new Error(`${context}: the procedure failed on the server`);
      return body.byteArray();
    } finally {
      if (sent) rpc.I_RpcFreeBuffer(message);
    }
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
