/**
 * DDE through DDEML: a client ({@linkcode DdeClient}: request, poke, execute, advise loops) and a
 * server ({@linkcode DdeServer}: a service whose topics and items are served by TypeScript
 * callbacks, with advise updates pushed by {@linkcode DdeServer.advise}).
 *
 * DDEML calls an instance's callback on the thread that called `DdeInitializeW`, while that thread
 * handles messages. A server's instance lives on the window thread (`_window_thread.ts`), which
 * blocks in `MsgWaitForMultipleObjectsEx`: a transaction from another process wakes it at once,
 * and it hands the transaction (its topic, item and data) to the server's handlers on the main
 * thread through shared memory and waits for their answer. Nothing polls: an idle server uses no
 * CPU (measured under Wine 10 with `tools/dde_latency`: 0–10 ms of CPU in 5 s, against 990–1,020
 * ms, about 20% of a core, when the main thread's pump served the instance), and a request's round
 * trip from a native DDEML client took 1.99–2.33 ms idle and 0.96–1.26 ms back to back, against a
 * native server's 1.19–1.43 ms and 0.82–0.85 ms in the same runs (the pump: 2.44–2.47 ms and
 * 1.02–1.27 ms).
 *
 * Client transactions are synchronous DDEML transactions with a timeout (default 5000 ms), made
 * on a thread of the conversation's own (a Worker, see `_dde_worker.ts`): DDEML waits for the
 * server's answer in its own modal loop there, and `DdeConnect` waits for every top-level window
 * of the session, so a slow server or a hung window stops that thread only. The methods of
 * {@linkcode DdeClient} return promises that settle when DDEML returns or at the timeout; the
 * event loop of the calling thread never waits. That thread's instance is pumped by winipc's
 * message pump of its own isolate (`_pump.ts`) while the conversation is open.
 *
 * Text: `CF_TEXT` is 8-bit text; winipc reads and writes it as Latin-1 (the Windows ANSI code page
 * of most DDE servers agrees on ASCII). `CF_UNICODETEXT` is UTF-16. {@linkcode DdeClient.request}
 * asks for `CF_TEXT` first and falls back to `CF_UNICODETEXT`; a {@linkcode DdeServer} answers
 * `CF_TEXT` only for text that Latin-1 can hold, so non-Latin text arrives as `CF_UNICODETEXT`.
 *
 * @example A client
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("Excel", "[Book1]Sheet1");
 * console.log(await conv.request("R1C1"));
 * await conv.poke("R1C2", "42");
 * ```
 *
 * @example A server
 * ```ts
 * import { DdeServer } from "./dde.ts";
 * const items = new Map<string, string>();
 * using server = new DdeServer("Prices", {
 *   topics: ["Quotes"],
 *   request: (_topic, item) => items.get(item),
 *   poke: (_topic, item, data) => void items.set(item, data.text()),
 * });
 * items.set("EURUSD", "1.08");
 * server.advise("Quotes", "EURUSD");
 * ```
 *
 * @module
 */
import { WinipcError } from "../ffi/base_error.ts";
import { z } from "zod";
import { fromWide, wide } from "../ffi/strings.ts";
import {
  APPCMD_CLIENTONLY,
  CF_TEXT,
  CF_UNICODETEXT,
  CP_WINUNICODE,
  DDE_FACK,
  DDE_FNOTPROCESSED,
  DMLERR_ADVACKTIMEOUT,
  DMLERR_DATAACKTIMEOUT,
  DMLERR_EXECACKTIMEOUT,
  DMLERR_NO_CONV_ESTABLISHED,
  DMLERR_NO_ERROR,
  DMLERR_POKEACKTIMEOUT,
  DMLERR_TEXT,
  dmlErrorName,
  HWND_BROADCAST,
  PFNCALLBACK,
  SMTO_ABORTIFHUNG,
  user32,
  WM_DDE_ACK,
  WM_DDE_INITIATE,
  WM_DDE_TERMINATE,
  XTYP_ADVDATA,
  XTYP_ADVREQ,
  XTYP_ADVSTART,
  XTYP_ADVSTOP,
  XTYP_CONNECT,
  XTYP_DISCONNECT,
  XTYP_EXECUTE,
  XTYP_POKE,
  XTYP_REQUEST,
  XTYP_WILDCONNECT,
  XTYPF_NODATA,
} from "../ffi/user32.ts";
import { atoms } from "../ffi/atoms.ts";
import { inCallback, pump, type PumpLease, releaseAfterCallbacks } from "./_pump.ts";
import { hwndFrom, hwndValue, NativeWindow } from "./_window.ts";
import { AsyncQueue } from "./_queue.ts";
import { type DdeAnswer, type DdeTransaction, ThreadDdeServer } from "./_window_thread.ts";
import { type IoOptions, parseArg, signalSchema } from "./_validate.ts";
import type {
  DdeEvent,
  DdeReply,
  DdeRequest,
  DdeRequestBody,
  DdeWireError,
} from "./_dde_worker.ts";

/** Checks a poke's arguments, as both the blocking and the asynchronous client take them. */
function pokeArgs(
  item: string,
  value: string | Uint8Array,
  options: DdeTransactionOptions & { format?: DdeFormat },
): {
  name: string;
  v: string | Uint8Array;
  o: { timeout?: number; format?: DdeFormat };
} {
  const name = parseArg(nameSchema, item, "item");
  const v = parseArg(
    z.union([z.string(), z.instanceof(Uint8Array)], {
      error: "must be a string or a Uint8Array",
    }),
    value,
    "value",
  );
  const o = parseArg(
    z.object({ timeout: timeoutSchema.optional(), format: formatSchema.optional() }).strict()
      .optional(),
    options,
    "options",
  ) ?? {};
  return { name, v, o };
}

/** DDEML: a PostMessage failed (the window it was for is gone). */
const DMLERR_POSTMSG_FAILED = 0x400c;

/**
 * A DDEML call failed; `code` is the `DdeGetLastError` value.
 *
 * @example Tell "no such server" from other failures
 * ```ts
 * import { DdeClient, DdeError } from "./dde.ts";
 * try {
 *   using conv = await DdeClient.connect("Excel", "[Book1]Sheet1");
 *   console.log(await conv.request("R1C1"));
 * } catch (e) {
 *   if (e instanceof DdeError && e.codeName === "DMLERR_NO_CONV_ESTABLISHED") {
 *     console.log("Excel is not running");
 *   } else throw e;
 * }
 * ```
 */

export class DdeError extends WinipcError {
  /** The DDEML function that failed, e.g. `DdeConnect`. */
  readonly functionName: string;
  /** The DDEML error code; `codeName` is its symbolic name, e.g. `DMLERR_NO_CONV_ESTABLISHED`. */
  declare readonly code: number;

  /**
   * Makes the error; its message names the function, the code and DDEML's text for it.
   *
   * @param functionName The DDEML function.
   * @param code The `DdeGetLastError` value.
   * @param context What winipc was doing (the message's start).
   */
  constructor(functionName: string, code: number, context: string) {
    const text = DMLERR_TEXT[code];
    super(
      `${context}: ${functionName} failed with ${dmlErrorName(code)} (0x${code.toString(16)})${
        text ? `: ${text}` : ""
      }`,
      code,
      dmlErrorName(code),
    );
    this.name = "DdeError";
    this.functionName = functionName;
  }
}

/**
 * Data received over DDE: the bytes and the clipboard format they are in.
 *
 * @example Request an item and look at its format
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("quotes", "prices");
 * const data = await conv.requestData("EURUSD");
 * console.log(data.format === 1 ? "CF_TEXT" : data.format, data.text());
 * ```
 */
export class DdeData {
  /** The bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The clipboard format (`CF_TEXT` is 1, `CF_UNICODETEXT` 13, registered ones 0xC000+). */
  readonly format: number;

  /**
   * Wraps received bytes.
   *
   * @param bytes The bytes.
   * @param format Their format.
   */
  constructor(bytes: Uint8Array<ArrayBuffer>, format: number) {
    this.bytes = bytes;
    this.format = format;
  }

  /**
   * The data as text: UTF-16 for `CF_UNICODETEXT`, Latin-1 otherwise, up to the first NUL.
   *
   * @returns The text.
   */
  text(): string {
    return this.format === CF_UNICODETEXT ? decodeUnicode(this.bytes) : decodeLatin1(this.bytes);
  }
}

function decodeUnicode(bytes: Uint8Array): string {
  const units = new Uint16Array(bytes.length >> 1);
  new Uint8Array(units.buffer).set(bytes.subarray(0, units.length * 2));
  return fromWide(units);
}

function decodeLatin1(bytes: Uint8Array): string {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.length;
  let out = "";
  for (let i = 0; i < end; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 8192)));
  }
  return out;
}

/** Latin-1 bytes and a NUL, or `null` when the text holds characters above U+00FF. */
function encodeLatin1(text: string): Uint8Array<ArrayBuffer> | null {
  const out = new Uint8Array(text.length + 1);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return null;
    out[i] = c;
  }
  return out;
}

function encodeUnicode(text: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(wide(text).buffer);
}

type CallbackFn = (
  type: number,
  format: number,
  hconv: Deno.PointerValue,
  hsz1: Deno.PointerValue,
  hsz2: Deno.PointerValue,
  hdata: Deno.PointerValue,
  data1: bigint,
  data2: bigint,
) => Deno.PointerValue | number;

/** A DDEML instance: `DdeInitializeW` with a TypeScript callback, attached to the pump. */
class Instance {
  readonly id: number;
  #callback: Deno.UnsafeCallback<typeof PFNCALLBACK>;
  #lease: PumpLease;
  #strings = new Map<string, Deno.PointerObject>();
  #closed = false;

  constructor(afCmd: number, handler: CallbackFn, onError: (e: unknown) => void) {
    const u = user32();
    this.#callback = new Deno.UnsafeCallback(
      PFNCALLBACK,
      (type, format, hconv, hsz1, hsz2, hdata, data1, data2) =>
        inCallback(() => {
          // Closed from inside a callback: DDEML ends once the stack unwinds; until then every
          // transaction is refused (a connect, a poke: "not processed").
          if (this.#closed) return null;
          try {
            const r = handler(type, format, hconv, hsz1, hsz2, hdata, BigInt(data1), BigInt(data2));
            return typeof r === "number" ? Deno.UnsafePointer.create(BigInt(r)) : r;
          } catch (e) {
            onError(e);
            return null;
          }
        }),
    );
    const id = new Uint32Array(1);
    const code = u.DdeInitializeW(id, this.#callback.pointer, afCmd, 0);
    if (code !== DMLERR_NO_ERROR) {
      this.#callback.close();
      throw new DdeError("DdeInitializeW", code, "Cannot start DDEML");
    }
    this.id = id[0];
    this.#lease = pump.attach(onError);
    pump.serveForever();
  }

  /** The string handle of a name, created once per instance. */
  hsz(text: string): Deno.PointerObject {
    let h = this.#strings.get(text);
    if (h) return h;
    const made = user32().DdeCreateStringHandleW(this.id, wide(text), CP_WINUNICODE);
    if (made === null) throw this.fail("DdeCreateStringHandleW", `Cannot use the name "${text}"`);
    h = made;
    this.#strings.set(text, h);
    return h;
  }

  /**
   * A fresh string handle for one call, freed after it. Item names are not cached: under Wine 10
   * a cached item handle was gone after its first transaction (the item reached the server as ""
   * and later answers were matched to the wrong requests).
   */
  withHsz<T>(text: string, fn: (hsz: Deno.PointerObject) => T): T {
    const u = user32();
    const h = u.DdeCreateStringHandleW(this.id, wide(text), CP_WINUNICODE);
    if (h === null) throw this.fail("DdeCreateStringHandleW", `Cannot use the name "${text}"`);
    try {
      return fn(h);
    } finally {
      u.DdeFreeStringHandle(this.id, h);
    }
  }

  /** The text of a string handle. */
  query(hsz: Deno.PointerValue): string {
    if (hsz === null) return "";
    const buf = new Uint16Array(512);
    const n = user32().DdeQueryStringW(this.id, hsz, buf, buf.length, CP_WINUNICODE);
    return fromWide(buf, n);
  }

  /** Reads and copies a data handle's bytes. */
  read(hdata: Deno.PointerValue): Uint8Array<ArrayBuffer> {
    if (hdata === null) return new Uint8Array(0);
    const u = user32();
    const size = u.DdeGetData(hdata, null, 0, 0);
    const out = new Uint8Array(size);
    if (size) u.DdeGetData(hdata, out, size, 0);
    return out;
  }

  /** A DdeError from `DdeGetLastError`. */
  fail(functionName: string, context: string): DdeError {
    return new DdeError(functionName, user32().DdeGetLastError(this.id), context);
  }

  ref(): void {
    this.#lease.ref();
  }

  unref(): void {
    this.#lease.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Ends the instance. Called from inside a DDEML callback (DDEML forbids `DdeUninitialize`
   * there, and the callback must outlive its own call), the instance counts as closed at once
   * and is ended after the callback returned.
   *
   * @param before Runs first, while the instance still works (a name-service unregistration).
   */
  close(before?: () => void): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseAfterCallbacks(() => {
      const u = user32();
      try {
        before?.();
      } finally {
        for (const h of this.#strings.values()) u.DdeFreeStringHandle(this.id, h);
        this.#strings.clear();
        u.DdeUninitialize(this.id);
        this.#callback.close();
        this.#lease.release();
      }
    });
  }
}

const nameSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });
const timeoutSchema = z.number({ error: "must be a number of milliseconds" })
  .int({ error: "must be a whole number of milliseconds" })
  .min(1, { error: "must be at least 1 ms" })
  .max(0x7fff_ffff, { error: "must be below 2^31 ms" });

/**
 * A format for DDE data: `"CF_TEXT"`, `"CF_UNICODETEXT"`, or a clipboard format number.
 *
 * @example Ask for Unicode text only
 * ```ts
 * import { DdeClient, type DdeFormat } from "./dde.ts";
 * using conv = await DdeClient.connect("quotes", "prices");
 * const formats: DdeFormat[] = ["CF_UNICODETEXT"];
 * console.log(await conv.request("EURUSD", { formats }));
 * ```
 */
export type DdeFormat = "CF_TEXT" | "CF_UNICODETEXT" | number;

const formatSchema = z.union([
  z.literal("CF_TEXT"),
  z.literal("CF_UNICODETEXT"),
  z.number().int().min(1).max(0xffff),
], { error: 'must be "CF_TEXT", "CF_UNICODETEXT" or a format number' });

function formatId(f: DdeFormat): number {
  return f === "CF_TEXT" ? CF_TEXT : f === "CF_UNICODETEXT" ? CF_UNICODETEXT : f;
}

/**
 * Options of {@linkcode DdeClient.connect}.
 *
 * @example Give a slow server 30 s per transaction
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("LabServer", "Results", { timeout: 30_000 });
 * ```
 */
export interface DdeConnectOptions extends Pick<IoOptions, "timeout"> {
  /** Milliseconds each transaction may take. Default 5000. */
  timeout?: number;
}

/**
 * Options of a client transaction.
 *
 * @example One slow command
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("LabServer", "Control");
 * await conv.execute("[Calibrate]", { timeout: 60_000 });
 * ```
 */
export interface DdeTransactionOptions extends Pick<IoOptions, "timeout"> {
  /** Milliseconds this transaction may take; default the connection's. */
  timeout?: number;
}

/**
 * Options of {@linkcode DdeClient.request}.
 *
 * @example Request bytes in a registered format
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * import { registerFormat } from "./clipboard.ts";
 * using conv = await DdeClient.connect("Excel", "[Book1]Sheet1");
 * const xlTable = registerFormat("XlTable");
 * const data = await conv.requestData("R1C1:R2C2", { formats: [xlTable], timeout: 2000 });
 * ```
 */
export interface DdeRequestOptions extends DdeTransactionOptions {
  /**
   * The formats to ask for, in order; the first the server answers wins. Default
   * `["CF_TEXT", "CF_UNICODETEXT"]`.
   */
  formats?: DdeFormat[];
}

/**
 * Options of {@linkcode DdeClient.advise}.
 *
 * @example A warm link for ten minutes: told of changes, request what is needed
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("quotes", "prices");
 * const signal = AbortSignal.timeout(600_000);
 * for await (const update of conv.advise("EURUSD", { hot: false, signal })) {
 *   console.log(`${update.item} changed: ${await conv.request(update.item)}`);
 * }
 * ```
 */
export interface DdeAdviseOptions extends DdeTransactionOptions, IoOptions {
  /** `true` (default): a hot link, each update carries the data; `false`: a warm link, updates
   * only say that the item changed (`data` is `null`; request it if needed). */
  hot?: boolean;
  /** The format of the updates. Default `"CF_UNICODETEXT"`. */
  format?: DdeFormat;
  /** Ends the loop (sends `XTYP_ADVSTOP`). */
  signal?: AbortSignal;
  /**
   * Called once the server has accepted the loop (its `XTYP_ADVSTART` answered), so a caller
   * can tell others that updates will reach it from now on.
   */
  onStarted?: () => void;
}

/**
 * An advise update.
 *
 * @example Print each new value of a hot link
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("quotes", "prices");
 * for await (const { topic, item, data } of conv.advise("EURUSD")) {
 *   console.log(`${topic}!${item} = ${data?.text()}`);
 * }
 * ```
 */
export interface DdeAdvise {
  /** The topic. */
  topic: string;
  /** The item. */
  item: string;
  /** The new value (hot links), or `null` (warm links). */
  data: DdeData | null;
}

const connectOptionsSchema = z.object({ timeout: timeoutSchema.optional() }).strict().optional();
const requestOptionsSchema = z.object({
  timeout: timeoutSchema.optional(),
  formats: z.array(formatSchema).min(1, { error: "must name at least one format" }).optional(),
}).strict().optional();
const transactionOptionsSchema = z.object({ timeout: timeoutSchema.optional() }).strict()
  .optional();
const adviseOptionsSchema = z.object({
  timeout: timeoutSchema.optional(),
  hot: z.boolean({ error: "must be a boolean" }).optional(),
  format: formatSchema.optional(),
  signal: signalSchema,
  onStarted: z.custom<() => void>((f) => typeof f === "function", {
    error: "must be a function",
  }).optional(),
}).strict().optional();

/**
 * A service and one of its topics, as a server answered a wildcard `WM_DDE_INITIATE` (or listed
 * in its System topic's `Topics` item).
 *
 * @example Print what answers
 * ```ts
 * import { DdeClient, type DdeServiceTopic } from "./dde.ts";
 * const pairs: DdeServiceTopic[] = await DdeClient.services();
 * for (const { service, topic } of pairs) console.log(`${service}|${topic}`);
 * ```
 */
export interface DdeServiceTopic {
  /** The service (application) name. */
  service: string;
  /** The topic. */
  topic: string;
}

/**
 * Options of {@linkcode DdeClient.services}.
 *
 * @example Give hung windows 2 s
 * ```ts
 * import { DdeClient, type DdeServicesOptions } from "./dde.ts";
 * const options: DdeServicesOptions = { timeout: 2000 };
 * console.log(await DdeClient.services(options));
 * ```
 */
export interface DdeServicesOptions extends Pick<IoOptions, "timeout"> {
  /**
   * Milliseconds for the broadcast (windows that do not answer within it are skipped, each
   * System topic's request gets as long). Default 5000.
   */
  timeout?: number;
}

const servicesOptionsSchema = z.object({ timeout: timeoutSchema.optional() }).strict().optional();
/** At most this many pairs are kept (a peer's answers are untrusted). */
const MAX_SERVICE_PAIRS = 4096;

/**
 * Lists the DDE services and topics that answer, blocking the calling thread: a wildcard
 * `WM_DDE_INITIATE` (service and topic "any") broadcast to the top-level windows, each
 * `WM_DDE_ACK` naming a service and topic, then the `Topics` item of each service's System topic.
 * This is what `DdeConnectList(NULL, NULL)` does; it is made by hand because Wine's
 * `DdeConnectList` is a stub that finds nothing.
 */
function listServices(timeout: number): DdeServiceTopic[] {
  const found = new Map<string, DdeServiceTopic>();
  const add = (service: string, topic: string) => {
    if (!service || !topic || found.size >= MAX_SERVICE_PAIRS) return;
    const key = `${service}|${topic}`.toLowerCase();
    if (!found.has(key)) found.set(key, { service, topic });
  };
  const name = new Uint16Array(256);
  const atomName = (atom: number) => {
    if (atom === 0) return "";
    const n = atoms().GlobalGetAtomNameW(atom, name, name.length);
    return fromWide(name, Math.min(n, name.length));
  };
  const partners: bigint[] = [];
  let collecting = false;
  let failure: unknown;
  const window = new NativeWindow({
    messageOnly: true,
    procedure: (_hwnd, message, wParam, lParam) => {
      if (message !== WM_DDE_ACK || !collecting) return undefined;
      const app = Number(lParam & 0xffffn);
      const topic = Number((lParam >> 16n) & 0xffffn);
      add(atomName(app), atomName(topic));
      // the receiver of an answer to WM_DDE_INITIATE deletes its atoms
      if (app) atoms().GlobalDeleteAtom(app);
      if (topic) atoms().GlobalDeleteAtom(topic);
      if (partners.length < MAX_SERVICE_PAIRS) partners.push(wParam);
      return 0;
    },
    onError: (e) => failure ??= e,
  });
  window.unref();
  try {
    const self = hwndValue(window.hwnd);
    collecting = true;
    user32().SendMessageTimeoutW(
      HWND_BROADCAST,
      WM_DDE_INITIATE,
      self,
      0n,
      SMTO_ABORTIFHUNG,
      timeout,
      new BigUint64Array(1),
    );
    collecting = false;
    // end each conversation the answers opened
    for (const partner of partners) {
      user32().PostMessageW(hwndFrom(partner), WM_DDE_TERMINATE, self, 0n);
    }
  } finally {
    collecting = false;
    window.close();
  }
  if (failure !== undefined) throw failure;
  // what each System topic lists
  const services = [...new Set([...found.values()].map((p) => p.service))];
  for (const service of services) {
    if (!found.has(`${service}|system`.toLowerCase())) continue;
    try {
      const conv = DdeConversation.connect(service, "System", { timeout });
      try {
        const text = conv.request("Topics", { timeout });
        for (const topic of text.split(/[\t\r\n]+/)) add(service, topic.trim().slice(0, 255));
      } finally {
        conv.close();
      }
    } catch (e) {
      if (!(e instanceof DdeError)) throw e; // a server without a Topics item
    }
  }
  return [...found.values()];
}

/**
 * The blocking form of a DDE conversation: every call is a synchronous DDEML call on the calling
 * thread, which waits (its event loop with it) until the server answers or the timeout passes,
 * and `connect` waits for every top-level window of the session to take its `WM_DDE_INITIATE`.
 * {@linkcode DdeClient} runs one of these on a thread of its own; use this class directly only on
 * a thread that may block (a Worker of yours).
 *
 * @example Request, poke, execute from a Worker
 * ```ts
 * import { DdeConversation } from "./dde.ts";
 * using conv = DdeConversation.connect("Prices", "Quotes", { timeout: 2000 });
 * const value = conv.request("EURUSD");
 * conv.poke("Note", "hello");
 * conv.execute("[Recalc()]");
 * ```
 */
export class DdeConversation {
  #instance: Instance;
  #hconv: Deno.PointerObject | null;
  #timeout: number;
  #service: string;
  #topic: string;
  #loops = new Map<string, AsyncQueue<DdeAdvise>>();

  private constructor(service: string, topic: string, timeout: number) {
    this.#service = service;
    this.#topic = topic;
    this.#timeout = timeout;
    this.#instance = new Instance(
      APPCMD_CLIENTONLY,
      (type, format, _hconv, hsz1, hsz2, hdata) => this.#callback(type, format, hsz1, hsz2, hdata),
      (e) => {
        for (const q of this.#loops.values()) q.fail(e);
      },
    );
    this.#instance.unref(); // only a pending advise loop keeps the process alive
    try {
      const hconv = user32().DdeConnect(
        this.#instance.id,
        this.#instance.hsz(service),
        this.#instance.hsz(topic),
        null,
      );
      if (hconv === null) {
        throw this.#instance.fail(
          "DdeConnect",
          `Cannot connect to DDE service "${service}" topic "${topic}"`,
        );
      }
      this.#hconv = hconv;
    } catch (e) {
      this.#instance.close();
      throw e;
    }
  }

  /**
   * Connects to a service and topic (`DdeConnect`).
   *
   * @param service The service (application) name.
   * @param topic The topic.
   * @param options The default transaction timeout.
   * @returns The conversation.
   * @throws {DdeError} `DMLERR_NO_CONV_ESTABLISHED` when no server answers.
   * @throws {TypeError} For an empty name.
   */
  static connect(
    service: string,
    topic: string,
    options: DdeConnectOptions = {},
  ): DdeConversation {
    const s = parseArg(nameSchema, service, "service");
    const t = parseArg(nameSchema, topic, "topic");
    const o = parseArg(connectOptionsSchema, options, "options") ?? {};
    return new DdeConversation(s, t, o.timeout ?? 5000);
  }

  /**
   * Lists the DDE services and topics that answer (see {@linkcode DdeClient.services}),
   * blocking the calling thread: for a Worker of your own.
   *
   * @param options The timeout of the broadcast and of each System topic request.
   * @returns The pairs, each once.
   */
  static services(options: DdeServicesOptions = {}): DdeServiceTopic[] {
    const o = parseArg(servicesOptionsSchema, options, "options") ?? {};
    return listServices(o.timeout ?? 5000);
  }

  /** The service name. */
  get service(): string {
    return this.#service;
  }

  /** The topic. */
  get topic(): string {
    return this.#topic;
  }

  /** The raw `HCONV`. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#conv();
  }

  #conv(): Deno.PointerObject {
    if (!this.#hconv) throw new Deno.errors.BadResource("DDE conversation is closed");
    return this.#hconv;
  }

  #callback(
    type: number,
    format: number,
    hsz1: Deno.PointerValue,
    hsz2: Deno.PointerValue,
    hdata: Deno.PointerValue,
  ): Deno.PointerValue | number {
    if (type === XTYP_ADVDATA) {
      const item = this.#instance.query(hsz2);
      const queue = this.#loops.get(item.toLowerCase());
      if (!queue) return DDE_FNOTPROCESSED;
      queue.push({
        topic: this.#instance.query(hsz1),
        item,
        data: hdata === null ? null : new DdeData(this.#instance.read(hdata), format),
      });
      return DDE_FACK;
    }
    if (type === XTYP_DISCONNECT) {
      this.#hconv = null;
      for (const q of this.#loops.values()) {
        q.fail(new Deno.errors.ConnectionReset(`The DDE server "${this.#service}" disconnected`));
      }
      return 0;
    }
    return 0;
  }

  /**
   * One synchronous transaction on the long-lived conversation (advise start and stop).
   */
  #transact(
    data: Uint8Array<ArrayBuffer> | null,
    item: string | null,
    format: number,
    type: number,
    timeout: number,
    context: string,
  ): Deno.PointerValue {
    const u = user32();
    const inst = this.#instance;
    const hconv = this.#conv();
    pump.drain();
    const call = (hsz: Deno.PointerValue) =>
      u.DdeClientTransaction(data, data?.length ?? 0, hconv, hsz, format, type, timeout, null);
    const h = item === null ? call(null) : inst.withHsz(item, call);
    if (h === null) throw inst.fail("DdeClientTransaction", context);
    return h;
  }

  /**
   * One request, poke or execute, on a conversation of its own (a DDEML instance made for it and
   * ended after it). Under Wine 10, on a conversation used for several synchronous transactions a
   * late message of an earlier one sometimes ended the next wait early or was taken as its answer,
   * shifting answers by one; a conversation per transaction cannot mix them up. Costs a
   * `DdeConnect` (a few milliseconds) per call.
   */
  #oneShot<T>(
    data: Uint8Array<ArrayBuffer> | null,
    item: string | null,
    format: number,
    type: number,
    timeout: number,
    context: string,
    use: (inst: Instance, h: Deno.PointerObject) => T,
  ): T {
    this.#conv(); // throws once closed
    const u = user32();
    const inst = new Instance(APPCMD_CLIENTONLY, () => 0, () => {});
    try {
      const hconv = u.DdeConnect(inst.id, inst.hsz(this.#service), inst.hsz(this.#topic), null);
      if (hconv === null) throw inst.fail("DdeConnect", context);
      try {
        const call = (hsz: Deno.PointerValue) =>
          u.DdeClientTransaction(data, data?.length ?? 0, hconv, hsz, format, type, timeout, null);
        const h = item === null ? call(null) : inst.withHsz(item, call);
        if (h === null) throw inst.fail("DdeClientTransaction", context);
        return use(inst, h);
      } finally {
        u.DdeDisconnect(hconv);
      }
    } finally {
      inst.close();
    }
  }

  /**
   * Requests an item's value (`XTYP_REQUEST`), trying the formats in order.
   *
   * @param item The item.
   * @param options Formats (default `CF_TEXT`, then `CF_UNICODETEXT`) and timeout.
   * @returns The value and its format.
   * @throws {DdeError} The last format's error, e.g. `DMLERR_NOTPROCESSED` (no such item) or
   *   `DMLERR_DATAACKTIMEOUT`.
   */
  requestData(item: string, options: DdeRequestOptions = {}): DdeData {
    const name = parseArg(nameSchema, item, "item");
    const o = parseArg(requestOptionsSchema, options, "options") ?? {};
    const formats = (o.formats ?? ["CF_TEXT", "CF_UNICODETEXT"]).map(formatId);
    let error: unknown;
    for (const format of formats) {
      try {
        return this.#oneShot(
          null,
          name,
          format,
          XTYP_REQUEST,
          o.timeout ?? this.#timeout,
          `Cannot request DDE item "${name}" of "${this.#service}|${this.#topic}"`,
          (inst, h) => {
            try {
              return new DdeData(inst.read(h), format);
            } finally {
              user32().DdeFreeDataHandle(h);
            }
          },
        );
      } catch (e) {
        error = e;
        if (!(e instanceof DdeError) || e.codeName !== "DMLERR_NOTPROCESSED") throw e;
      }
    }
    throw error;
  }

  /**
   * Requests an item's value as text (`CF_TEXT` first, then `CF_UNICODETEXT`).
   *
   * @param item The item.
   * @param options Formats and timeout.
   * @returns The text.
   * @throws {DdeError} When the server does not answer the item.
   */
  request(item: string, options: DdeRequestOptions = {}): string {
    return this.requestData(item, options).text();
  }

  /**
   * Sets an item's value (`XTYP_POKE`). Text goes as `CF_TEXT` (Latin-1) when it fits, else as
   * `CF_UNICODETEXT`; bytes go in the format given.
   *
   * @param item The item.
   * @param value Text, or bytes.
   * @param options The format for bytes (default `CF_TEXT`) and timeout.
   * @throws {DdeError} E.g. `DMLERR_NOTPROCESSED` when the server refuses it.
   */
  poke(
    item: string,
    value: string | Uint8Array,
    options: DdeTransactionOptions & { format?: DdeFormat } = {},
  ): void {
    const { name, v, o } = pokeArgs(item, value, options);
    let bytes: Uint8Array<ArrayBuffer>;
    let format: number;
    if (typeof v === "string") {
      const latin1 = encodeLatin1(v);
      [bytes, format] = latin1 ? [latin1, CF_TEXT] : [encodeUnicode(v), CF_UNICODETEXT];
    } else {
      bytes = new Uint8Array(v);
      format = formatId(o.format ?? "CF_TEXT");
    }
    this.#oneShot(
      bytes,
      name,
      format,
      XTYP_POKE,
      o.timeout ?? this.#timeout,
      `Cannot poke DDE item "${name}" of "${this.#service}|${this.#topic}"`,
      () => undefined,
    );
  }

  /**
   * Sends a command (`XTYP_EXECUTE`), as UTF-16 text.
   *
   * Under Wine 10, DDEML passes commands of ASCII and Latin-1 characters intact but mangles other
   * characters (it takes such UTF-16 for ANSI text and converts it again); Windows keeps UTF-16
   * between Unicode DDEML instances.
   *
   * @param command The command, e.g. `"[Open(\"a.xls\")]"`.
   * @param options Timeout.
   * @throws {DdeError} E.g. `DMLERR_NOTPROCESSED` when the server refuses it.
   */
  execute(command: string, options: DdeTransactionOptions = {}): void {
    const cmd = parseArg(
      z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
      command,
      "command",
    );
    const o = parseArg(transactionOptionsSchema, options, "options") ?? {};
    this.#oneShot(
      encodeUnicode(cmd),
      null,
      0,
      XTYP_EXECUTE,
      o.timeout ?? this.#timeout,
      `Cannot execute a DDE command on "${this.#service}|${this.#topic}"`,
      () => undefined,
    );
  }

  /**
   * Starts an advise loop on an item (`XTYP_ADVSTART`): yields an update each time the server
   * advises, in order. Ending the iteration (break, the signal, `close()`) stops the loop
   * (`XTYP_ADVSTOP`).
   *
   * @param item The item.
   * @param options Hot or warm, format, timeout, AbortSignal.
   * @returns An async iterator of updates.
   * @throws {DdeError} When the server refuses the advise loop.
   */
  advise(item: string, options: DdeAdviseOptions = {}): AsyncIterableIterator<DdeAdvise> {
    const name = parseArg(nameSchema, item, "item");
    const o: DdeAdviseOptions = parseArg(adviseOptionsSchema, options, "options") ?? {};
    const key = name.toLowerCase();
    if (this.#loops.has(key)) {
      throw new Deno.errors.AlreadyExists(`An advise loop on "${name}" is already running`);
    }
    const format = formatId(o.format ?? "CF_UNICODETEXT");
    const type = XTYP_ADVSTART | (o.hot === false ? XTYPF_NODATA : 0);
    const timeout = o.timeout ?? this.#timeout;
    const queue = new AsyncQueue<DdeAdvise>();
    this.#loops.set(key, queue);
    try {
      this.#transact(
        null,
        name,
        format,
        type,
        timeout,
        `Cannot start an advise loop on DDE item "${name}" of "${this.#service}|${this.#topic}"`,
      );
    } catch (e) {
      this.#loops.delete(key);
      throw e;
    }
    this.#instance.ref(); // a running loop keeps the process alive
    o.onStarted?.();
    const stop = () => {
      if (this.#loops.get(key) !== queue) return;
      this.#loops.delete(key);
      if (this.#loops.size === 0) this.#instance.unref();
      if (this.#hconv) {
        const hconv = this.#hconv;
        this.#instance.withHsz(
          name,
          (hsz) =>
            user32().DdeClientTransaction(null, 0, hconv, hsz, format, XTYP_ADVSTOP, timeout, null),
        );
      }
      queue.close();
    };
    return queue.iterate(o.signal, stop);
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#instance.closed;
  }

  /** Ends the conversation and its advise loops. Idempotent. */
  close(): void {
    if (this.#instance.closed) return;
    for (const q of this.#loops.values()) q.close();
    this.#loops.clear();
    if (this.#hconv) user32().DdeDisconnect(this.#hconv);
    this.#hconv = null;
    this.#instance.close();
  }

  /** Ends the conversation. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * How long past a transaction's own timeout the client waits for its thread before it gives up
 * on it (DDEML reports its own timeouts, with their codes, in that time), in ms.
 */
const THREAD_GRACE_MS = 500;
/** How long a closed conversation's thread may take to disconnect before it is terminated, in ms. */
const CLOSE_GRACE_MS = 1000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

function fromWire(error: DdeWireError): Error {
  switch (error.kind) {
    case "dde": {
      const e = new DdeError(error.functionName, error.code, "");
      e.message = error.message;
      return e;
    }
    case "closed":
      return new Deno.errors.BadResource(error.message);
    case "reset":
      return new Deno.errors.ConnectionReset(error.message);
    default: {
      const e = new Error(error.message);
      e.name = error.name;
      return e;
    }
  }
}

/**
 * A DDE conversation with a server's service and topic.
 *
 * Every DDEML call of the conversation runs on a thread of its own (a Worker holding a
 * {@linkcode DdeConversation}), so a server that is slow to answer, or a hung top-level window of
 * the session (which holds up every `DdeConnect`, see `_dde_worker.ts`), never stops this thread's
 * event loop: `connect` and each transaction resolve when the server answers, or reject at their
 * timeout. A transaction that DDEML does not end by its timeout (its thread is held up) rejects
 * `THREAD_GRACE_MS` (500 ms) later, and the conversation is then closed, its thread abandoned.
 * The thread starts with `connect` (about 0.4 to 0.9 s under Wine, not counted in its timeout)
 * and, as any Worker, keeps the process alive until the conversation is closed: hold it with
 * `using`, or call `close()`.
 *
 * @example Request, poke, execute
 * ```ts
 * import { DdeClient } from "./dde.ts";
 * using conv = await DdeClient.connect("Prices", "Quotes", { timeout: 2000 });
 * const value = await conv.request("EURUSD");
 * await conv.poke("Note", "hello");
 * await conv.execute("[Recalc()]");
 * ```
 */
export class DdeClient {
  #worker: Worker | undefined;
  #pending = new Map<number, Pending>();
  #next = 1;
  #timeout: number;
  #service: string;
  #topic: string;
  #hconv: bigint = 0n;
  #loops = new Map<number, { key: string; queue: AsyncQueue<DdeAdvise> }>();
  #closedReason: string | undefined;
  #closing: Promise<void> | undefined;
  /** Resolves once the thread has loaded (its start-up does not count against a timeout). */
  #ready = Promise.withResolvers<void>();

  private constructor(service: string, topic: string, timeout: number) {
    this.#service = service;
    this.#topic = topic;
    this.#timeout = timeout;
    const worker = new Worker(new URL("./_dde_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<DdeReply | DdeEvent>) => this.#receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.#abandon(`The DDE thread failed: ${e.message}`);
    };
    this.#worker = worker;
    this.#ready.promise.catch(() => undefined); // a thread that fails to load rejects it
  }

  /**
   * Connects to a service and topic (`DdeConnect`, on the conversation's own thread).
   *
   * @param service The service (application) name.
   * @param topic The topic.
   * @param options The default transaction timeout, also the time `connect` may take.
   * @returns The conversation.
   * @throws {DdeError} `DMLERR_NO_CONV_ESTABLISHED` when no server answers, also when the
   *   connection is not made within the timeout (a hung window of the session holds it up).
   * @throws {TypeError} For an empty name.
   */
  static async connect(
    service: string,
    topic: string,
    options: DdeConnectOptions = {},
  ): Promise<DdeClient> {
    const s = parseArg(nameSchema, service, "service");
    const t = parseArg(nameSchema, topic, "topic");
    const o = parseArg(connectOptionsSchema, options, "options") ?? {};
    const timeout = o.timeout ?? 5000;
    const client = new DdeClient(s, t, timeout);
    try {
      await client.#ready.promise;
      const { hconv } = await client.#call(
        { op: "connect", service: s, topic: t, timeout },
        timeout,
        () =>
          new DdeError(
            "DdeConnect",
            DMLERR_NO_CONV_ESTABLISHED,
            `Cannot connect to DDE service "${s}" topic "${t}" within ${timeout} ms (a window ` +
              "of the session that does not answer messages holds DdeConnect up)",
          ),
      ) as { hconv: bigint };
      client.#hconv = hconv;
      return client;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /**
   * Lists the DDE services and topics that answer: a wildcard `WM_DDE_INITIATE` (as
   * `DdeConnectList` with no service and no topic sends) on a thread of its own, then the
   * `Topics` item of each service's System topic where the server answers it.
   *
   * @param options The timeout (default 5000 ms) of the broadcast and of each request.
   * @returns The pairs, each once, in the order found.
   * @throws {Deno.errors.TimedOut} When the whole listing takes longer than four timeouts.
   *
   * @example Every service|topic pair
   * ```ts
   * import { DdeClient } from "./dde.ts";
   * for (const { service, topic } of await DdeClient.services()) console.log(`${service}|${topic}`);
   * ```
   */
  static async services(options: DdeServicesOptions = {}): Promise<DdeServiceTopic[]> {
    const o = parseArg(servicesOptionsSchema, options, "options") ?? {};
    const timeout = o.timeout ?? 5000;
    const client = new DdeClient("*", "*", timeout);
    try {
      await client.#ready.promise;
      // the broadcast, then one connect and one request per System topic: all of it within
      // four timeouts (a hung window holds each DdeConnect of the session up)
      return await client.#call(
        { op: "services", timeout },
        4 * timeout,
        () =>
          new Deno.errors.TimedOut(
            `Listing DDE services did not finish within ${4 * timeout} ms (a window of the ` +
              "session that does not answer messages holds DDE up)",
          ),
      ) as DdeServiceTopic[];
    } finally {
      client.close();
    }
  }

  /** The service name. */
  get service(): string {
    return this.#service;
  }

  /** The topic. */
  get topic(): string {
    return this.#topic;
  }

  /** The raw `HCONV` (owned by the conversation's thread). */
  get unsafeHandle(): Deno.PointerObject {
    if (this.#closedReason !== undefined) {
      throw new Deno.errors.BadResource("DDE conversation is closed");
    }
    return Deno.UnsafePointer.create(this.#hconv)!;
  }

  #receive(message: DdeReply | DdeEvent): void {
    if ("event" in message) {
      if (message.event === "ready") {
        this.#ready.resolve();
        return;
      }
      const loop = this.#loops.get(message.loop);
      if (!loop) return;
      if (message.event === "advise") {
        loop.queue.push({
          topic: message.topic,
          item: message.item,
          data: message.bytes === null ? null : new DdeData(message.bytes, message.format),
        });
      } else {
        this.#loops.delete(message.loop);
        if (message.error) loop.queue.fail(fromWire(message.error));
        else loop.queue.close();
      }
      return;
    }
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(fromWire(message.error));
  }

  /** Posts a request; `late` makes the error when the thread does not answer in time. */
  #call(
    request: DdeRequestBody,
    timeout: number | null,
    late?: () => Error,
  ): Promise<unknown> {
    const worker = this.#worker;
    if (!worker || this.#closedReason !== undefined) {
      return Promise.reject(
        new Deno.errors.BadResource(`DDE conversation is closed${this.#closedReason ?? ""}`),
      );
    }
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      if (timeout !== null) {
        const limit = request.op === "connect" ? timeout : timeout + THREAD_GRACE_MS;
        pending.timer = setTimeout(() => {
          if (!this.#pending.has(id)) return;
          this.#pending.delete(id);
          reject(late?.() ?? new Deno.errors.TimedOut(`The DDE thread did not answer in time`));
          this.#abandon(": its thread was held up past a timeout");
        }, limit);
      }
      this.#pending.set(id, pending);
      worker.postMessage({ ...request, id } as DdeRequest);
    });
  }

  /** Ends the thread at once (it may be held up inside DDEML) and fails what waits on it. */
  #abandon(reason: string): void {
    if (this.#closedReason === undefined) this.#closedReason = reason;
    this.#ready.reject(new Deno.errors.BadResource(`DDE conversation is closed${reason}`));
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll(new Deno.errors.BadResource(`DDE conversation is closed${reason}`));
  }

  #failAll(error: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.#pending.clear();
    for (const { queue } of this.#loops.values()) queue.fail(error);
    this.#loops.clear();
  }

  #transactionTimeout(
    timeout: number | undefined,
    what: string,
    code: number,
  ): [number, () => Error] {
    const ms = timeout ?? this.#timeout;
    return [
      ms,
      () =>
        new DdeError(
          "DdeClientTransaction",
          code,
          `Cannot ${what} on "${this.#service}|${this.#topic}" within ${ms} ms (the DDE thread ` +
            "is held up: a hung window of the session or a server that does not answer)",
        ),
    ];
  }

  /**
   * Requests an item's value (`XTYP_REQUEST`), trying the formats in order.
   *
   * @param item The item.
   * @param options Formats (default `CF_TEXT`, then `CF_UNICODETEXT`) and timeout.
   * @returns The value and its format.
   * @throws {DdeError} The last format's error, e.g. `DMLERR_NOTPROCESSED` (no such item) or
   *   `DMLERR_DATAACKTIMEOUT`.
   */
  async requestData(item: string, options: DdeRequestOptions = {}): Promise<DdeData> {
    const name = parseArg(nameSchema, item, "item");
    const o = parseArg(requestOptionsSchema, options, "options") ?? {};
    const formats = (o.formats ?? ["CF_TEXT", "CF_UNICODETEXT"]).map(formatId);
    const [timeout, late] = this.#transactionTimeout(
      o.timeout,
      `request DDE item "${name}"`,
      DMLERR_DATAACKTIMEOUT,
    );
    // each format is one transaction, each with the whole timeout
    const { bytes, format } = await this.#call(
      { op: "request", item: name, formats, timeout },
      timeout * formats.length,
      late,
    ) as { bytes: Uint8Array<ArrayBuffer>; format: number };
    return new DdeData(bytes, format);
  }

  /**
   * Requests an item's value as text (`CF_TEXT` first, then `CF_UNICODETEXT`).
   *
   * @param item The item.
   * @param options Formats and timeout.
   * @returns The text.
   * @throws {DdeError} When the server does not answer the item.
   */
  async request(item: string, options: DdeRequestOptions = {}): Promise<string> {
    return (await this.requestData(item, options)).text();
  }

  /**
   * Sets an item's value (`XTYP_POKE`). Text goes as `CF_TEXT` (Latin-1) when it fits, else as
   * `CF_UNICODETEXT`; bytes go in the format given.
   *
   * @param item The item.
   * @param value Text, or bytes.
   * @param options The format for bytes (default `CF_TEXT`) and timeout.
   * @throws {DdeError} E.g. `DMLERR_NOTPROCESSED` when the server refuses it.
   */
  async poke(
    item: string,
    value: string | Uint8Array,
    options: DdeTransactionOptions & { format?: DdeFormat } = {},
  ): Promise<void> {
    const { name, v, o } = pokeArgs(item, value, options);
    const [timeout, late] = this.#transactionTimeout(
      o.timeout,
      `poke DDE item "${name}"`,
      DMLERR_POKEACKTIMEOUT,
    );
    await this.#call(
      { op: "poke", item: name, value: v, format: o.format, timeout },
      timeout,
      late,
    );
  }

  /**
   * Sends a command (`XTYP_EXECUTE`), as UTF-16 text.
   *
   * Under Wine 10, DDEML passes commands of ASCII and Latin-1 characters intact but mangles other
   * characters (it takes such UTF-16 for ANSI text and converts it again); Windows keeps UTF-16
   * between Unicode DDEML instances.
   *
   * @param command The command, e.g. `"[Open(\"a.xls\")]"`.
   * @param options Timeout.
   * @throws {DdeError} E.g. `DMLERR_NOTPROCESSED` when the server refuses it.
   */
  async execute(command: string, options: DdeTransactionOptions = {}): Promise<void> {
    const cmd = parseArg(
      z.string({ error: "must be a string" }).min(1, { error: "must not be empty" }),
      command,
      "command",
    );
    const o = parseArg(transactionOptionsSchema, options, "options") ?? {};
    const [timeout, late] = this.#transactionTimeout(
      o.timeout,
      "execute a DDE command",
      DMLERR_EXECACKTIMEOUT,
    );
    await this.#call({ op: "execute", command: cmd, timeout }, timeout, late);
  }

  /**
   * Starts an advise loop on an item (`XTYP_ADVSTART`): yields an update each time the server
   * advises, in order. Ending the iteration (break, the signal, `close()`) stops the loop
   * (`XTYP_ADVSTOP`). A server that refuses the loop makes the first `next()` reject.
   *
   * @param item The item.
   * @param options Hot or warm, format, timeout, AbortSignal.
   * @returns An async iterator of updates.
   * @throws {DdeError} (from the iteration) When the server refuses the advise loop.
   * @throws {Deno.errors.AlreadyExists} When a loop on the item is already running.
   */
  advise(item: string, options: DdeAdviseOptions = {}): AsyncIterableIterator<DdeAdvise> {
    const name = parseArg(nameSchema, item, "item");
    const o: DdeAdviseOptions = parseArg(adviseOptionsSchema, options, "options") ?? {};
    const key = name.toLowerCase();
    for (const loop of this.#loops.values()) {
      if (loop.key === key) {
        throw new Deno.errors.AlreadyExists(`An advise loop on "${name}" is already running`);
      }
    }
    const queue = new AsyncQueue<DdeAdvise>();
    const loop = this.#next++;
    this.#loops.set(loop, { key, queue });
    const [timeout, late] = this.#transactionTimeout(
      o.timeout,
      `start an advise loop on DDE item "${name}"`,
      DMLERR_ADVACKTIMEOUT,
    );
    this.#call(
      { op: "advise", loop, item: name, hot: o.hot, format: o.format, timeout },
      timeout,
      late,
    ).then(() => o.onStarted?.()).catch((e) => {
      this.#loops.delete(loop);
      queue.fail(e);
    });
    const stop = () => {
      if (this.#loops.get(loop)?.queue !== queue) return;
      this.#loops.delete(loop);
      queue.close();
      this.#call({ op: "stop", loop }, null).catch(() => undefined);
    };
    return queue.iterate(o.signal, stop);
  }

  /**
   * Whether `close()` has run, or the conversation was given up on (its thread held up past a
   * transaction's timeout); operations then reject with `BadResource`.
   */
  get closed(): boolean {
    return this.#closedReason !== undefined;
  }

  /**
   * Ends the conversation, its advise loops and its thread. Idempotent. Transactions still
   * waiting reject with `BadResource`; the thread ends once the DDEML call it is making returns.
   *
   * @returns A promise that settles once the thread has ended the conversation (the server has
   *   seen its advise loops end and the conversation terminate) or was given up on. Await it (or
   *   use `await using`) before the process exits, or the server keeps links to a client that is
   *   gone.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#closedReason !== undefined) return this.#closing = Promise.resolve();
    this.#closedReason = "";
    this.#ready.reject(new Deno.errors.BadResource("DDE conversation is closed"));
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Deno.errors.BadResource("DDE conversation is closed"));
    for (const { queue } of this.#loops.values()) queue.close();
    this.#loops.clear();
    // abandoned (held up past a timeout): already terminated
    if (!worker) return this.#closing = Promise.resolve();
    // After what it is doing, the thread disconnects and ends DDEML (the partner sees a clean
    // termination, and DDEML's windows go with the thread), then ends.
    // A thread still inside a DDEML call after CLOSE_GRACE_MS is terminated (it ends when the
    // call returns).
    const ended = Promise.withResolvers<void>();
    const end = () => {
      clearTimeout(timer);
      worker.terminate();
      ended.resolve();
    };
    const timer = setTimeout(end, CLOSE_GRACE_MS);
    worker.onmessage = end;
    worker.postMessage({ op: "close", id: 0 } satisfies DdeRequest);
    return this.#closing = ended.promise;
  }

  /** Ends the conversation without waiting for its thread (see {@linkcode DdeClient.close}). */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Ends the conversation and waits until the partner has seen it end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * The callbacks that serve a {@linkcode DdeServer}'s topics and items.
 *
 * Topic and item names are DDE string handles, which are atoms: case-insensitive, and they reach
 * the callbacks in the spelling the session's atom table holds (the first one registered while
 * the name was in use), not necessarily the client's. Compare them without case.
 *
 * @example A read-only clock topic and a command topic
 * ```ts
 * import { DdeServer, type DdeServerHandlers } from "./dde.ts";
 * const handlers: DdeServerHandlers = {
 *   topics: (topic) => /^(clock|control)$/i.test(topic),
 *   request: (topic, item) =>
 *     /^clock$/i.test(topic) && /^now$/i.test(item) ? new Date().toISOString() : undefined,
 *   poke: () => false, // nothing is writable
 *   execute: (topic, command) => /^control$/i.test(topic) && command === "[Ping]",
 * };
 * using server = new DdeServer("TimeService", handlers);
 * ```
 */
export interface DdeServerHandlers {
  /**
   * The topics served: a list (case-insensitive) or a predicate. Default: every topic.
   */
  topics?: string[] | ((topic: string) => boolean);
  /**
   * Answers a request (and each advise update): text, bytes, or `undefined` for "no such item".
   * Text is sent as asked: `CF_TEXT` (only when Latin-1 holds it) or `CF_UNICODETEXT`.
   */
  request?: (topic: string, item: string, format: number) => string | Uint8Array | undefined;
  /** Takes a poked value; return `false` to refuse it. */
  poke?: (topic: string, item: string, data: DdeData) => boolean | void;
  /** Runs a command; return `false` to refuse it. */
  execute?: (topic: string, command: string) => boolean | void;
}

/** Text or bytes as a DDE answer in `format`; text only as `CF_TEXT` (Latin-1) or Unicode. */
function encodeAnswer(value: string | Uint8Array | undefined, format: number): DdeAnswer {
  if (value === undefined) return null;
  if (typeof value !== "string") return { bytes: value, format };
  const bytes = format === CF_UNICODETEXT
    ? encodeUnicode(value)
    : format === CF_TEXT
    ? encodeLatin1(value)
    : null;
  return bytes === null ? null : { bytes, format };
}

/**
 * Answers `XTYP_WILDCONNECT` (a client asked for any topic, or this service with any topic; the
 * window thread refused one for another service): this service's listed topics (and System)
 * that match.
 */
function wildConnect(topic: string | null, listed: string[] | undefined): DdeAnswer {
  if (listed === undefined) return null;
  const all = listed.some((t) => t.toLowerCase() === "system") ? listed : [...listed, "System"];
  const wanted = topic?.toLowerCase();
  const topics = all.filter((t) => wanted === undefined || t.toLowerCase() === wanted);
  return topics.length === 0 ? null : { topics };
}

/** The standard System topic's items: `Topics` and `SysItems`, tab-separated. */
function systemItem(item: string, format: number, listed: string[]): DdeAnswer {
  const text = item.toLowerCase() === "topics"
    ? [...listed, "System"].join("\t")
    : item.toLowerCase() === "sysitems"
    ? "Topics\tSysItems"
    : undefined;
  return encodeAnswer(text, format);
}

const handlersSchema = z.object({
  topics: z.union([
    z.array(nameSchema),
    z.custom<(topic: string) => boolean>((v) => typeof v === "function"),
  ], { error: "must be a list of names or a function" }).optional(),
  request: z.custom((v) => typeof v === "function", { error: "must be a function" }).optional(),
  poke: z.custom((v) => typeof v === "function", { error: "must be a function" }).optional(),
  execute: z.custom((v) => typeof v === "function", { error: "must be a function" }).optional(),
}).strict();

/**
 * A DDE server: registers a service (`DdeNameService`) and serves its topics and items from
 * TypeScript callbacks. Keeps the process alive while open, unless `unref()`ed.
 *
 * @example Items set by poke and read by request, with advise updates
 * ```ts
 * import { DdeServer } from "./dde.ts";
 * const items = new Map<string, string>();
 * using server = new DdeServer("MyService", {
 *   topics: ["Data"],
 *   request: (_t, item) => items.get(item),
 *   poke: (_t, item, data) => {
 *     items.set(item, data.text());
 *     server.advise("Data", item);
 *   },
 * });
 * ```
 */
export class DdeServer {
  #thread: ThreadDdeServer;
  #service: string;
  #errors = new AsyncQueue<never>();

  /**
   * Starts serving.
   *
   * @param service The service name clients connect to.
   * @param handlers The topics and the request, poke and execute callbacks.
   * @throws {DdeError} When the service cannot be registered.
   * @throws {TypeError} For an invalid argument.
   */
  constructor(service: string, handlers: DdeServerHandlers) {
    this.#service = parseArg(nameSchema, service, "service");
    parseArg(handlersSchema, handlers, "handlers");
    const topics = handlers.topics;
    /** The topics a wildcard connect lists: known only when given as a list. */
    const listed = Array.isArray(topics) ? [...topics] : undefined;
    /** The standard System topic (its Topics and SysItems items), unless the list has its own. */
    const system = listed !== undefined && !listed.some((t) => t.toLowerCase() === "system");
    const accepts = typeof topics === "function"
      ? topics
      : topics === undefined
      ? () => true
      : ((set) => (t: string) => set.has(t.toLowerCase()))(
        new Set(topics.map((t) => t.toLowerCase())),
      );
    const transact = (x: DdeTransaction): DdeAnswer => {
      const topic = x.topic ?? "";
      const isSystem = system && topic.toLowerCase() === "system";
      switch (x.type) {
        case XTYP_CONNECT:
          return accepts(topic) || isSystem ? 1 : 0;
        case XTYP_WILDCONNECT:
          return wildConnect(x.topic, listed);
        case XTYP_REQUEST:
        case XTYP_ADVREQ:
          if (isSystem && x.type === XTYP_REQUEST) {
            return systemItem(x.item ?? "", x.format, listed!);
          }
          return encodeAnswer(handlers.request?.(topic, x.item ?? "", x.format), x.format);
        case XTYP_POKE: {
          const ok = handlers.poke?.(topic, x.item ?? "", new DdeData(x.data, x.format));
          return handlers.poke && ok !== false ? DDE_FACK : DDE_FNOTPROCESSED;
        }
        case XTYP_EXECUTE: {
          const ok = handlers.execute?.(topic, decodeUnicode(x.data));
          return handlers.execute && ok !== false ? DDE_FACK : DDE_FNOTPROCESSED;
        }
        default:
          return null;
      }
    };
    this.#thread = new ThreadDdeServer(
      this.#service,
      transact,
      (e) => this.#errors.fail(e),
      ({ functionName, code }) =>
        new DdeError(functionName, code, `Cannot register DDE service "${this.#service}"`),
    );
  }

  /** The service name. */
  get service(): string {
    return this.#service;
  }

  /**
   * Tells every client with an advise loop on the item that it changed (`DdePostAdvise`): the
   * `request` callback is asked for the value once per loop.
   *
   * @param topic The topic.
   * @param item The item.
   * @returns `true`, or `false` when a client could not be told (`DMLERR_POSTMSG_FAILED`: its
   *   window is gone, as when its process ended without ending the conversation); the other
   *   clients were told, and the server goes on.
   * @throws {DdeError} When DDEML refuses otherwise.
   * @throws {Deno.errors.BadResource} Once the server is closed.
   */
  advise(topic: string, item: string): boolean {
    const t = parseArg(nameSchema, topic, "topic");
    const i = parseArg(nameSchema, item, "item");
    const failure = this.#thread.advise(t, i);
    if (failure === null) return true;
    // A client whose process ended without ending its conversation leaves a link to a window
    // that is gone: posting to it fails. That client is gone, not the server: the others were
    // advised, and the server goes on.
    if (failure.code === DMLERR_POSTMSG_FAILED) return false;
    throw new DdeError(
      failure.functionName,
      failure.code,
      `Cannot advise DDE item "${i}" of topic "${t}"`,
    );
  }

  /**
   * Rejects with the first error a request, poke or execute callback threw (callbacks run inside
   * DDEML and cannot throw to it; the client is answered "not processed"); never resolves. Race it
   * with your work to notice failures.
   *
   * @returns A promise that only rejects.
   */
  async failed(): Promise<never> {
    await this.#errors.next(); // only rejects (with the callback's error) or ends on close()
    return await new Promise<never>(() => {});
  }

  /** Keeps the process alive while serving (the default). */
  ref(): void {
    this.#thread.ref();
  }

  /** Lets the process exit while serving. */
  unref(): void {
    this.#thread.unref();
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#thread.closed;
  }

  /**
   * Unregisters the service and ends DDEML. Idempotent. Called from inside one of the server's
   * own callbacks (`poke`, `request`, `execute`), the server refuses every transaction from then
   * on and is ended once that callback has returned.
   */
  close(): void {
    if (this.#thread.closed) return;
    this.#thread.close();
    this.#errors.close();
  }

  /** Stops serving. */
  [Symbol.dispose](): void {
    this.close();
  }
}
