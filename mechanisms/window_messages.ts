/**
 * Window messages between processes: a {@linkcode MessageWindow} that receives `WM_COPYDATA`
 * payloads and other messages, {@linkcode sendCopyData} to send a payload to another process's
 * window and get its reply, {@linkcode sendMessage} and {@linkcode postMessage},
 * {@linkcode registerWindowMessage} and {@linkcode broadcastMessage} for registered messages,
 * and {@linkcode findWindow}/{@linkcode findWindows} to find windows by title or class.
 *
 * Windows belong to the Deno main thread and are served by winipc's message pump, which never
 * blocks the event loop. Sending uses `SendMessageTimeoutW` with `SMTO_ABORTIFHUNG` on a worker
 * thread, so a hung receiver gives a timeout error rather than a hang, and the event loop runs
 * meanwhile.
 *
 * @example Receive payloads, reply with their length
 * ```ts
 * import { MessageWindow } from "./window_messages.ts";
 * using win = new MessageWindow({ title: "my-app", onCopyData: (m) => m.data.length });
 * for await (const message of win) {
 *   console.log(message.dwData, message.text());
 * }
 * ```
 *
 * @example Send a payload to a window found by its title
 * ```ts
 * import { sendCopyData } from "./window_messages.ts";
 * const reply = await sendCopyData("my-app", "hello", { dwData: 7, timeout: 2000 });
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkBool, lastError, win32Error } from "../ffi/error.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import {
  BROADCAST_QUERY_DENY as QUERY_DENY,
  BSF_FORCEIFHUNG,
  BSF_IGNORECURRENTTASK,
  BSF_POSTMESSAGE,
  BSF_QUERY,
  BSM_ALLDESKTOPS,
  BSM_APPLICATIONS,
  COPYDATASTRUCT,
  HWND_MESSAGE,
  MSGFLT_ALLOW,
  MSGFLTINFO_ALLOWED_HIGHER,
  MSGFLTINFO_ALREADYALLOWED_FORWND,
  MSGFLTINFO_NONE,
  SMTO_ABORTIFHUNG,
  user32,
  WM_COPYDATA,
} from "../ffi/user32.ts";
import { AsyncQueue } from "./_queue.ts";
export { StackLimitError } from "./_pump.ts";
import { hwndFrom, hwndValue } from "./_window.ts";
import { ThreadWindow } from "./_window_thread.ts";
import { type IoOptions, parseArg, signalSchema } from "./_validate.ts";

const ERROR_TIMEOUT = 1460;
const ERROR_INVALID_WINDOW_HANDLE = 1400;
const MAX_TITLE = 32_767;
const MAX_CLASS = 256;

/**
 * A window handle (`HWND`) as a number: a window's identity in the session, valid in every
 * process; user32 checks it on each call, so a stale one fails with `ERROR_INVALID_WINDOW_HANDLE`.
 *
 * @example Find a window once, then send to its handle
 * ```ts
 * import { findWindow, sendCopyData, type WindowHandle } from "./window_messages.ts";
 * const hwnd: WindowHandle | null = findWindow({ title: "prices" });
 * if (hwnd !== null) await sendCopyData(hwnd, "EURUSD 1.0832");
 * ```
 */
export type WindowHandle = bigint;

/**
 * Which window a message goes to: a handle, a title (as `FindWindowW(NULL, title)`), or both
 * title and class.
 *
 * @example Three ways to name the same window
 * ```ts
 * import { findWindow, sendCopyData, type WindowTarget } from "./window_messages.ts";
 * const targets: WindowTarget[] = [
 *   "prices",
 *   { title: "prices", className: "winipc.copydata" },
 *   findWindow({ title: "prices" }) ?? 0n,
 * ];
 * for (const target of targets) await sendCopyData(target, "ping");
 * ```
 */
export type WindowTarget = WindowHandle | string | FindWindowOptions;

/**
 * A received `WM_COPYDATA`.
 *
 * @example Read the tag, the sender and the text of each payload
 * ```ts
 * import { type CopyDataMessage, MessageWindow } from "./window_messages.ts";
 * using inbox = new MessageWindow({ title: "prices" });
 * for await (const message of inbox) {
 *   const m: CopyDataMessage = message;
 *   console.log(m.dwData, m.sender, m.text());
 * }
 * ```
 */
export class CopyDataMessage {
  /** The payload (a copy, yours to keep). */
  readonly data: Uint8Array<ArrayBuffer>;
  /** `COPYDATASTRUCT.dwData`, the sender's tag. */
  readonly dwData: bigint;
  /** The sender's window (`wParam`), 0n when it gave none. */
  readonly sender: WindowHandle;

  /**
   * Makes a message (the window procedure does, for each `WM_COPYDATA`).
   *
   * @param data The payload.
   * @param dwData The tag.
   * @param sender The sender's window.
   */
  constructor(data: Uint8Array<ArrayBuffer>, dwData: bigint, sender: WindowHandle) {
    this.data = data;
    this.dwData = dwData;
    this.sender = sender;
  }

  /**
   * The payload as text, without one trailing NUL if the sender included it.
   *
   * @param encoding `"utf-8"` (the default, what `winipc copydata send` sends) or `"utf-16le"`.
   * @returns The text.
   */
  text(encoding: "utf-8" | "utf-16le" = "utf-8"): string {
    let bytes = this.data;
    if (encoding === "utf-16le") {
      if (bytes.length >= 2 && bytes.at(-1) === 0 && bytes.at(-2) === 0 && bytes.length % 2 === 0) {
        bytes = bytes.subarray(0, -2);
      }
      const units = new Uint16Array(bytes.length >> 1);
      new Uint8Array(units.buffer).set(bytes.subarray(0, units.length * 2));
      return units.length ? fromWide(units) : "";
    }
    if (bytes.at(-1) === 0) bytes = bytes.subarray(0, -1);
    return new TextDecoder().decode(bytes);
  }
}

/**
 * Any message a {@linkcode MessageWindow} received (other than `WM_COPYDATA`).
 *
 * @example Receive a registered message
 * ```ts
 * import { MessageWindow, registerWindowMessage, type WindowMessage } from "./window_messages.ts";
 * const REFRESH = registerWindowMessage("example.refresh");
 * using win = new MessageWindow({ title: "viewer", messages: [REFRESH] });
 * for await (const m of win.messages()) {
 *   const { message, wParam }: WindowMessage = m;
 *   if (message === REFRESH) console.log(`refresh page ${wParam}`);
 * }
 * ```
 */
export interface WindowMessage {
  /** The message number (`WM_USER + n`, a registered message, ...). */
  message: number;
  /** `wParam`. */
  wParam: bigint;
  /** `lParam`. */
  lParam: bigint;
}

/**
 * Options of a {@linkcode MessageWindow}.
 *
 * @example A window that answers payloads and a registered message
 * ```ts
 * import { MessageWindow, registerWindowMessage } from "./window_messages.ts";
 * const PING = registerWindowMessage("example.ping");
 * using win = new MessageWindow({
 *   title: "worker-7",
 *   onCopyData: (m) => m.data.length,
 *   messages: [PING],
 *   onMessage: (m) => m.message === PING ? 42 : undefined,
 * });
 * ```
 */
export interface MessageWindowOptions {
  /**
   * The window's title. Senders find the window with `FindWindowW(NULL, title)`, as
   * {@linkcode sendCopyData} does for a string target.
   */
  title?: string;
  /** The window class name; a unique one is made when absent. */
  className?: string;
  /**
   * A message-only window (`HWND_MESSAGE` parent): cheaper, but it receives no broadcasts and
   * `FindWindowW` does not find it ({@linkcode findWindow} with `messageOnly: true` does).
   * Default `false`: a hidden top-level window.
   */
  messageOnly?: boolean;
  /**
   * Called synchronously for each `WM_COPYDATA`; its return value is the sender's reply. Without
   * it, the reply is `reply`. The message is also queued for the async iterator.
   */
  onCopyData?: (message: CopyDataMessage) => number | bigint | void;
  /**
   * The reply to `WM_COPYDATA` when `onCopyData` returns nothing, or when there is no
   * `onCopyData` (then given by the window thread at once). Default 1 (TRUE).
   */
  reply?: number | bigint;
  /**
   * Called synchronously for every other message in `messages`; its return value is the reply
   * (an `LRESULT`: a safe integer or a bigint of up to 64 bits; a handler that returns anything
   * else ends the iterators with a `RangeError`). Messages it is not given go to `DefWindowProcW`.
   */
  onMessage?: (message: WindowMessage) => number | bigint | void;
  /**
   * Message numbers (e.g. from {@linkcode registerWindowMessage}) delivered to `onMessage` and to
   * {@linkcode MessageWindow.messages}. Default none.
   */
  messages?: number[];
  /**
   * Accept `WM_COPYDATA` and the `messages` from processes of a lower integrity level. Default
   * `false`.
   *
   * Since Windows Vista, User Interface Privilege Isolation (UIPI) drops a message that a process
   * sends or posts to a window of a process at a higher integrity level (an elevated, "Run as
   * administrator" program is High; an ordinary one is Medium; a sandboxed one is Low), apart
   * from a few harmless system messages. `WM_COPYDATA` and registered messages are not among
   * them: the sender's `SendMessageTimeoutW` or `PostMessageW` fails with `ERROR_ACCESS_DENIED`
   * and the window never sees the message. So an elevated program that listens for
   * `WM_COPYDATA` hears nothing from ordinary ones unless it opens its filter.
   *
   * With this option the window calls `ChangeWindowMessageFilterEx(MSGFLT_ALLOW)` (Windows 7 and
   * later) for `WM_COPYDATA` and each message in `messages`, for this window only; other windows
   * of the process keep the default filter. Any lower-integrity process may then send these
   * messages, so check what they carry. {@linkcode MessageWindow.messageFilter} tells what
   * Windows answered for each; {@linkcode MessageWindow.allowMessage} adds one later.
   *
   * Under Wine there are no integrity levels and no UIPI: every message gets through either way,
   * and `ChangeWindowMessageFilterEx` succeeds without reporting a status (`"not-reported"`).
   */
  allowLowerIntegrity?: boolean;
}

/**
 * What Windows answered when a message was let through a window's filter
 * (`CHANGEFILTERSTRUCT.ExtStatus` of `ChangeWindowMessageFilterEx`).
 *
 * - `"allowed"`: the window's filter now lets it through (`MSGFLTINFO_NONE`);
 * - `"already-allowed"`: the window's filter already did (`MSGFLTINFO_ALREADYALLOWED_FORWND`);
 * - `"allowed-higher"`: it is allowed for the whole process (`MSGFLTINFO_ALLOWED_HIGHER`);
 * - `"not-reported"`: the call succeeded but left the status unwritten (Wine does).
 *
 * @example See what each allowed message's filter said
 * ```ts
 * import { MessageWindow, type MessageFilterResult } from "./window_messages.ts";
 * using win = new MessageWindow({ title: "elevated-inbox", allowLowerIntegrity: true });
 * const results: readonly MessageFilterResult[] = win.messageFilter;
 * for (const { message, status } of results) console.log(message, status);
 * ```
 */
export interface MessageFilterResult {
  /** The message number. */
  message: number;
  /** What Windows said. */
  status: "allowed" | "already-allowed" | "allowed-higher" | "not-reported";
}

const titleSchema = z.string({ error: "must be a string" })
  .max(MAX_TITLE, { error: `must be at most ${MAX_TITLE} characters` })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });
const classSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(MAX_CLASS, { error: `must be at most ${MAX_CLASS} characters` })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });
const messageNumberSchema = z.number({ error: "must be a message number" })
  .int({ error: "must be an integer" })
  .min(0, { error: "must not be negative" })
  .max(0xffff, { error: "must be at most 0xFFFF" });
const MIN_PARAM = -(1n << 63n);
const MAX_PARAM = (1n << 64n) - 1n;
/** A WPARAM/LPARAM: a safe integer or a bigint from -2^63 to 2^64 - 1, as a bigint. */
const paramSchema = z.union([
  // not .int(): zod's refuses unsafe integers with the same message as fractions
  z.number({ error: "must be an integer or a bigint" })
    .refine(Number.isInteger, { error: "must be an integer" })
    .refine(Number.isSafeInteger, {
      error: "must be a safe integer (pass a bigint beyond 2^53)",
      params: { range: true },
    }),
  z.bigint(),
], { error: "must be an integer or a bigint" })
  .transform((v) => BigInt(v))
  .pipe(
    z.bigint()
      .min(MIN_PARAM, { error: "must fit in 64 bits (at least -2^63)" })
      .max(MAX_PARAM, { error: "must fit in 64 bits (at most 2^64 - 1)" }),
  );
const replySchema = paramSchema;
// deno-lint-ignore ban-types
const functionSchema = z.custom<Function>((v) => typeof v === "function", {
  error: "must be a function",
});
const windowOptionsSchema = z.object({
  title: titleSchema.optional(),
  className: classSchema.optional(),
  messageOnly: z.boolean({ error: "must be a boolean" }).optional(),
  onCopyData: functionSchema.optional(),
  reply: replySchema.optional(),
  onMessage: functionSchema.optional(),
  messages: z.array(messageNumberSchema).optional(),
  allowLowerIntegrity: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().optional();

/**
 * A handler's reply as the window procedure's `LRESULT`: 64 bits, signed (an unsigned value of
 * 2^63 and more is taken as its two's complement).
 */
function replyValue(r: number | bigint): bigint {
  if (typeof r === "number" && !Number.isSafeInteger(r)) {
    throw new RangeError(`A window's reply must be a safe integer or a bigint: got ${r}`);
  }
  const v = BigInt(r);
  if (v < MIN_PARAM || v > MAX_PARAM) {
    throw new RangeError(`A window's reply must fit in 64 bits: got ${v}`);
  }
  return BigInt.asIntN(64, v);
}

/** Written into `CHANGEFILTERSTRUCT.ExtStatus` before the call, to see whether it was written. */
const EXT_STATUS_UNSET = 0xffff_ffff;

/**
 * Lets `message` through the window's UIPI filter (`ChangeWindowMessageFilterEx` with
 * `MSGFLT_ALLOW`) and reads back `CHANGEFILTERSTRUCT.ExtStatus`.
 */
function allowThroughFilter(hwnd: Deno.PointerObject, message: number): MessageFilterResult {
  // CHANGEFILTERSTRUCT: DWORD cbSize, DWORD ExtStatus
  const info = new Uint32Array([8, EXT_STATUS_UNSET]);
  if (!user32().ChangeWindowMessageFilterEx(hwnd, message, MSGFLT_ALLOW, info)) {
    throw win32Error("ChangeWindowMessageFilterEx", lastError(), {
      context: `Cannot let message 0x${message.toString(16)} through the window's filter`,
    });
  }
  const status = info[1] === MSGFLTINFO_NONE
    ? "allowed"
    : info[1] === MSGFLTINFO_ALREADYALLOWED_FORWND
    ? "already-allowed"
    : info[1] === MSGFLTINFO_ALLOWED_HIGHER
    ? "allowed-higher"
    : "not-reported";
  return { message, status };
}

/**
 * A window that receives messages from other processes: `WM_COPYDATA` payloads (as an async
 * iterator or a callback whose return value is the reply) and any message numbers you list.
 *
 * The window is hidden. It keeps the process alive while it is open, unless `unref()`ed.
 *
 * Replies: the window lives on winipc's window thread. A message with a handler
 * (`onCopyData`, `onMessage`) waits there for the handler to run on the main thread, whose
 * return value is the reply. A message without one is answered by the window thread at once
 * (`reply` for `WM_COPYDATA`, 0 for a listed message) and then queued for the iterators: its
 * sender waits only for that thread's wake-up, also while the main thread is busy, and the
 * messages keep their order.
 *
 * Large payloads: a sent message's data is copied onto the receiving thread's stack, and V8
 * will not run the window procedure beyond its stack limit (984 KiB by default). To receive
 * payloads of about 900 KiB and more, run deno with `--v8-flags=--stack-size=4096`; otherwise
 * such a message is answered 0 and the iterators end with a `StackLimitError`.
 *
 * @example A window found by its title, replying to each payload
 * ```ts
 * import { MessageWindow } from "./window_messages.ts";
 * using win = new MessageWindow({
 *   title: "prices",
 *   onCopyData: (m) => (m.dwData === 1n ? 0 : m.data.length),
 * });
 * for await (const m of win) console.log(m.sender, m.text());
 * ```
 */
export class MessageWindow {
  #window: ThreadWindow;
  #copyData = new AsyncQueue<CopyDataMessage>();
  #other = new AsyncQueue<WindowMessage>();
  #error: unknown;
  #filter: MessageFilterResult[] = [];

  /**
   * Creates the window.
   *
   * @param options Title, class, kind and handlers.
   * @throws {TypeError} For an invalid option.
   * @throws {Win32Error} When the window cannot be created.
   */
  constructor(options: MessageWindowOptions = {}) {
    const opts = parseArg(windowOptionsSchema, options, "options") ?? {};
    const wanted = new Set(opts.messages ?? []);
    const onCopyData = options.onCopyData;
    const onMessage = options.onMessage;
    const defaultReply = BigInt.asIntN(64, opts.reply ?? 1n);
    this.#window = new ThreadWindow({
      title: opts.title,
      className: opts.className,
      messageOnly: opts.messageOnly,
      messages: [...wanted],
      // What needs no handler is answered on the window thread at once (see the class doc).
      immediate: {
        copyData: onCopyData === undefined ? defaultReply : undefined,
        messages: onMessage === undefined,
      },
      onError: (error) => {
        this.#error ??= error;
        this.#copyData.fail(error);
        this.#other.fail(error);
      },
      procedure: (message, wParam, lParam, copy) => {
        if (copy) {
          const msg = new CopyDataMessage(copy.data, copy.dwData, wParam);
          this.#copyData.push(msg);
          const r = onCopyData?.(msg);
          return r === undefined ? defaultReply : replyValue(r);
        }
        if (wanted.has(message)) {
          const msg = { message, wParam, lParam };
          this.#other.push(msg);
          const r = onMessage?.(msg);
          return r === undefined ? 0n : replyValue(r);
        }
        return undefined;
      },
    });
    if (opts.allowLowerIntegrity) {
      try {
        for (const message of new Set([WM_COPYDATA, ...wanted])) this.allowMessage(message);
      } catch (error) {
        this.close();
        throw error;
      }
    }
  }

  /**
   * What Windows answered for each message let through this window's filter (with
   * `allowLowerIntegrity` or {@linkcode MessageWindow.allowMessage}), in order. Empty when none
   * was.
   */
  get messageFilter(): readonly MessageFilterResult[] {
    return this.#filter;
  }

  /**
   * Lets a message from processes of a lower integrity level through this window's filter
   * (`ChangeWindowMessageFilterEx` with `MSGFLT_ALLOW`): see
   * {@linkcode MessageWindowOptions.allowLowerIntegrity} for why UIPI drops it otherwise. This
   * changes only the filter: a message that is not in `options.messages` still goes to
   * `DefWindowProcW`.
   *
   * @param message The message number.
   * @returns What Windows answered (also added to {@linkcode MessageWindow.messageFilter}).
   * @throws {TypeError} For a value that is not a message number.
   * @throws {Win32Error} When Windows refuses (e.g. `ERROR_ACCESS_DENIED`).
   *
   * @example Accept a message registered after the window was made
   * ```ts
   * import { MessageWindow, registerWindowMessage } from "./window_messages.ts";
   * using win = new MessageWindow({ title: "elevated-inbox", allowLowerIntegrity: true });
   * const { status } = win.allowMessage(registerWindowMessage("example.late"));
   * ```
   */
  allowMessage(message: number): MessageFilterResult {
    const msg = parseArg(messageNumberSchema, message, "message");
    const result = allowThroughFilter(this.#window.hwnd, msg);
    this.#filter.push(result);
    return result;
  }

  /** The window handle as a number (what other processes send to). */
  get handle(): WindowHandle {
    return hwndValue(this.#window.hwnd);
  }

  /** The raw `HWND`. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#window.hwnd;
  }

  /** Whether the window was closed. */
  get closed(): boolean {
    return this.#window.closed;
  }

  /**
   * The `WM_COPYDATA` messages received, in order, from the window's creation on.
   *
   * @param options An AbortSignal that ends the iteration with its reason.
   * @returns An async iterator; it ends when the window is closed.
   * @throws The error a handler threw, after the messages before it.
   */
  copyData(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<CopyDataMessage> {
    const signal = parseArg(signalSchema, options.signal, "options.signal");
    return this.#copyData.iterate(signal);
  }

  /**
   * The other messages received (those listed in `options.messages`), in order.
   *
   * @param options An AbortSignal that ends the iteration with its reason.
   * @returns An async iterator; it ends when the window is closed.
   */
  messages(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<WindowMessage> {
    const signal = parseArg(signalSchema, options.signal, "options.signal");
    return this.#other.iterate(signal);
  }

  /** Iterates over the `WM_COPYDATA` messages ({@linkcode MessageWindow.copyData}). */
  [Symbol.asyncIterator](): AsyncIterableIterator<CopyDataMessage> {
    return this.copyData();
  }

  /** Keeps the process alive while the window is open (the default). */
  ref(): void {
    this.#window.ref();
  }

  /** Lets the process exit while the window is open. */
  unref(): void {
    this.#window.unref();
  }

  /** Destroys the window and ends its iterators. Idempotent. */
  close(): void {
    this.#window.close();
    this.#copyData.close();
    this.#other.close();
  }

  /** Closes the window. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * How to find a window.
 *
 * @example Find a message-only window by its class
 * ```ts
 * import { findWindow } from "./window_messages.ts";
 * const hwnd = findWindow({ className: "winipc.worker", messageOnly: true });
 * ```
 */
export interface FindWindowOptions {
  /** The exact title. */
  title?: string;
  /** The exact class name. */
  className?: string;
  /** Search message-only windows instead of top-level ones. Default `false`. */
  messageOnly?: boolean;
}

const findSchema = z.object({
  title: titleSchema.optional(),
  className: classSchema.optional(),
  messageOnly: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().refine((o) => o.title !== undefined || o.className !== undefined, {
  error: "needs a title or a className",
});

/**
 * Finds the first window with a title and/or class (`FindWindowExW`).
 *
 * @param options The title, the class, and whether to search message-only windows.
 * @returns The window's handle, or `null` when there is none.
 * @throws {TypeError} When neither title nor class is given.
 *
 * @example Find a window by its title
 * ```ts
 * import { findWindow } from "./window_messages.ts";
 * const hwnd = findWindow({ title: "prices" });
 * ```
 */
export function findWindow(options: FindWindowOptions): WindowHandle | null {
  return findWindows(options, 1)[0] ?? null;
}

/**
 * Finds every window with a title and/or class (`FindWindowExW` in a loop).
 *
 * @param options The title, the class, and whether to search message-only windows.
 * @param limit Stop after this many. Default 1000.
 * @returns The handles, in Z order.
 * @throws {TypeError} When neither title nor class is given.
 *
 * @example Count the windows of a class
 * ```ts
 * import { findWindows } from "./window_messages.ts";
 * console.log(findWindows({ className: "winipc.copydata" }).length);
 * ```
 */
export function findWindows(options: FindWindowOptions, limit = 1000): WindowHandle[] {
  const o = parseArg(findSchema, options, "options");
  const u = user32();
  const parent = o.messageOnly ? HWND_MESSAGE : null;
  const cls = o.className === undefined ? null : wide(o.className);
  const title = o.title === undefined ? null : wide(o.title);
  const out: WindowHandle[] = [];
  let after: Deno.PointerValue = null;
  while (out.length < limit) {
    after = u.FindWindowExW(parent, after, cls, title);
    if (after === null) break;
    out.push(hwndValue(after));
  }
  return out;
}

/**
 * The title of a window (`GetWindowTextW`).
 *
 * @param hwnd The window.
 * @returns The title (empty when it has none or is gone).
 *
 * @example Read a window's title
 * ```ts
 * import { findWindow, windowTitle } from "./window_messages.ts";
 * const hwnd = findWindow({ className: "Notepad" });
 * if (hwnd) console.log(windowTitle(hwnd));
 * ```
 */
export function windowTitle(hwnd: WindowHandle): string {
  const buf = new Uint16Array(1024);
  const n = user32().GetWindowTextW(hwndFrom(hwnd), buf, buf.length);
  return fromWide(buf, n);
}

/**
 * The process and thread that own a window (`GetWindowThreadProcessId`).
 *
 * @param hwnd The window.
 * @returns The ids.
 * @throws {Win32Error} When the window does not exist.
 *
 * @example Find the process behind a window
 * ```ts
 * import { findWindow, windowOwner } from "./window_messages.ts";
 * const hwnd = findWindow({ title: "prices" });
 * if (hwnd) console.log(windowOwner(hwnd).processId);
 * ```
 */
export function windowOwner(hwnd: WindowHandle): { processId: number; threadId: number } {
  const pid = new Uint32Array(1);
  const tid = user32().GetWindowThreadProcessId(hwndFrom(hwnd), pid);
  if (tid === 0) {
    throw win32Error("GetWindowThreadProcessId", lastError(), {
      context: `Cannot find the owner of window 0x${hwnd.toString(16)}`,
    });
  }
  return { processId: pid[0], threadId: tid };
}

const targetSchema = z.union([
  z.bigint().min(1n, { error: "must not be 0" }),
  titleSchema,
  findSchema,
], { error: "must be a window handle (bigint), a title or { title, className }" });

function describe(target: WindowTarget): string {
  if (typeof target === "bigint") return `window 0x${target.toString(16)}`;
  if (typeof target === "string") return `window "${target}"`;
  const parts = [];
  if (target.title !== undefined) parts.push(`title "${target.title}"`);
  if (target.className !== undefined) parts.push(`class "${target.className}"`);
  return `window with ${parts.join(" and ")}`;
}

/**
 * Resolves a target to a window handle.
 *
 * @throws {Deno.errors.NotFound} When no window matches.
 */
function resolveTarget(target: WindowTarget, name: string): Deno.PointerObject {
  const t = parseArg(targetSchema, target, name) as WindowTarget;
  const u = user32();
  let hwnd: Deno.PointerValue;
  if (typeof t === "bigint") {
    hwnd = hwndFrom(t);
    if (!u.IsWindow(hwnd)) {
      throw new Deno.errors.NotFound(`No ${describe(t)}: it does not exist (or was closed)`);
    }
  } else if (typeof t === "string") {
    hwnd = u.FindWindowW(null, wide(t));
  } else {
    const found = findWindow(t);
    hwnd = found === null ? null : hwndFrom(found);
  }
  if (hwnd === null) throw new Deno.errors.NotFound(`No ${describe(t)} was found`);
  return hwnd;
}

/**
 * Options of {@linkcode sendCopyData} and {@linkcode sendMessage}.
 *
 * @example Name this process's window as the sender, wait at most a second
 * ```ts
 * import { MessageWindow, sendCopyData } from "./window_messages.ts";
 * using me = new MessageWindow({ title: "client" });
 * await sendCopyData("prices", "subscribe EURUSD", { sender: me, timeout: 1000 });
 * ```
 */
export interface SendOptions extends Pick<IoOptions, "timeout"> {
  /**
   * Milliseconds to wait for the receiver's reply. Default 5000. With `SMTO_ABORTIFHUNG`, a
   * receiver that Windows considers hung fails at once.
   */
  timeout?: number;
  /** The sender's window, passed as `wParam` of `WM_COPYDATA`. Default 0. */
  sender?: WindowHandle | MessageWindow;
}

/**
 * Options of {@linkcode sendCopyData}.
 *
 * @example Tag a payload so the receiver knows what it holds
 * ```ts
 * import { sendCopyData } from "./window_messages.ts";
 * const QUOTE = 1;
 * await sendCopyData("prices", JSON.stringify({ EURUSD: 1.0832 }), { dwData: QUOTE });
 * ```
 */
export interface SendCopyDataOptions extends SendOptions {
  /** `COPYDATASTRUCT.dwData`: a tag for the receiver. Default 0. */
  dwData?: number | bigint;
}

const timeoutMsSchema = z.number({ error: "must be a number of milliseconds" })
  .int({ error: "must be a whole number of milliseconds" })
  .min(1, { error: "must be at least 1 ms" })
  .max(0x7fff_ffff, { error: "must be below 2^31 ms" });
const senderSchema = z.union([z.bigint().min(0n).max(MAX_PARAM), z.instanceof(MessageWindow)], {
  error: "must be a window handle (bigint) or a MessageWindow",
});
const sendOptionsSchema = z.object({
  timeout: timeoutMsSchema.optional(),
  sender: senderSchema.optional(),
  dwData: z.union([
    z.number().int({ error: "must be an integer" }).min(0, { error: "must not be negative" }),
    z.bigint().min(0n, { error: "must not be negative" }).max(0xffff_ffff_ffff_ffffn, {
      error: "must fit in 64 bits",
    }),
  ], { error: "must be a non-negative integer" }).optional(),
}).strict().optional();
const dataSchema = z.union([z.instanceof(Uint8Array), z.string()], {
  error: "must be a Uint8Array or a string",
});

async function sendTimeout(
  hwnd: Deno.PointerObject,
  message: number,
  wParam: bigint,
  lParam: bigint,
  timeout: number,
  what: string,
): Promise<bigint> {
  const u = user32();
  const result = new BigUint64Array(1);
  const ok = await u.SendMessageTimeoutWAsync(
    hwnd,
    message,
    wParam,
    lParam,
    SMTO_ABORTIFHUNG,
    timeout,
    result,
  );
  if (ok) return BigInt.asIntN(64, result[0]);
  // The call failed on a worker thread, whose last error we cannot read: tell the two failures
  // apart by whether the window still exists.
  if (!u.IsWindow(hwnd)) {
    throw win32Error("SendMessageTimeoutW", ERROR_INVALID_WINDOW_HANDLE, {
      context: `Cannot send to ${what}: the window was closed`,
    });
  }
  throw win32Error("SendMessageTimeoutW", ERROR_TIMEOUT, {
    context: `No reply from ${what} within ${timeout} ms (the receiver is hung or busy)`,
  });
}

/**
 * Sends a `WM_COPYDATA` payload to another process's window and returns its reply.
 *
 * Uses `SendMessageTimeoutW(SMTO_ABORTIFHUNG)` on a worker thread: the event loop runs while the
 * receiver works, and a hung receiver fails with a timeout error instead of hanging.
 *
 * @param target The window: a handle, a title (found as `FindWindowW(NULL, title)`), or
 *   `{ title, className }`.
 * @param data The payload; a string is sent as UTF-8 without a NUL.
 * @param options `dwData`, timeout, sender window.
 * @returns The receiver's reply value (`LRESULT`, signed), as a number: a reply beyond ±2^53 is
 *   rounded ({@linkcode sendMessage} returns all 64 bits as a bigint).
 * @throws {Deno.errors.NotFound} When no such window exists.
 * @throws {Win32Error} `ERROR_TIMEOUT` when the receiver did not reply in time (or is hung),
 *   `ERROR_INVALID_WINDOW_HANDLE` when it closed meanwhile.
 * @throws {TypeError} For an invalid argument.
 *
 * @example Send bytes with a tag
 * ```ts
 * import { sendCopyData } from "./window_messages.ts";
 * const reply = await sendCopyData("prices", new Uint8Array([1, 2, 3]), { dwData: 2n });
 * ```
 */
export async function sendCopyData(
  target: WindowTarget,
  data: Uint8Array | string,
  options: SendCopyDataOptions = {},
): Promise<number> {
  const payload = parseArg(dataSchema, data, "data");
  const opts = parseArg(sendOptionsSchema, options, "options") ?? {};
  if (payload.length > 0x7fff_ffff) throw new RangeError(`Invalid argument "data": too large`);
  const hwnd = resolveTarget(target, "target");
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const cds = COPYDATASTRUCT.alloc({
    dwData: BigInt(opts.dwData ?? 0),
    cbData: bytes.length,
    lpData: bytes.length ? Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>) : null,
  });
  const sender = senderValue(opts.sender);
  const lParam = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(cds)));
  // `bytes` and `cds` stay referenced until the call returns.
  const reply = await sendTimeout(
    hwnd,
    WM_COPYDATA,
    sender,
    lParam,
    opts.timeout ?? 5000,
    describe(target),
  );
  retain(bytes, cds);
  return Number(reply);
}

/** Keeps buffers reachable until this point (they were lent to a call on another thread). */
function retain(..._buffers: ArrayBufferView[]): void {}

function senderValue(sender: WindowHandle | MessageWindow | undefined): bigint {
  if (sender === undefined) return 0n;
  return sender instanceof MessageWindow ? sender.handle : sender;
}

/**
 * A `WPARAM` or `LPARAM`: any 64-bit value, as a bigint or a safe integer. Both are 64 bits wide
 * on 64-bit Windows, so a {@linkcode WindowHandle}, an id or a count beyond 2^53 travels whole as
 * a bigint. A negative value is sent as its two's complement (`-1n` and `0xFFFF_FFFF_FFFF_FFFFn`
 * are the same bits).
 *
 * @example A window in wParam, a negative number in lParam
 * ```ts
 * import { findWindow, type MessageParam, postMessage, registerWindowMessage } from "./window_messages.ts";
 * const hwnd: MessageParam = findWindow({ title: "prices" }) ?? 0n;
 * postMessage("viewer", registerWindowMessage("example.attach"), { wParam: hwnd, lParam: -1 });
 * ```
 */
export type MessageParam = number | bigint;

/**
 * The parameters of a message ({@linkcode postMessage}, {@linkcode broadcastMessage}).
 *
 * @example Parameters beyond 2^53 as bigints
 * ```ts
 * import { type MessageParams, postMessage, registerWindowMessage } from "./window_messages.ts";
 * const params: MessageParams = { wParam: 0xffff_ffff_ffff_fff0n, lParam: -2n };
 * postMessage("viewer", registerWindowMessage("example.seek"), params);
 * ```
 */
export interface MessageParams {
  /** `wParam` (`WPARAM`, unsigned 64 bits). Default 0. */
  wParam?: MessageParam;
  /** `lParam` (`LPARAM`, signed 64 bits). Default 0. */
  lParam?: MessageParam;
}

/**
 * Options of {@linkcode sendMessage}.
 *
 * @example Wait at most half a second
 * ```ts
 * import { registerWindowMessage, sendMessage, type SendMessageOptions } from "./window_messages.ts";
 * const options: SendMessageOptions = { wParam: 1, timeout: 500 };
 * await sendMessage("viewer", registerWindowMessage("example.ping"), options);
 * ```
 */
export interface SendMessageOptions extends MessageParams, Pick<IoOptions, "timeout"> {
  /** Milliseconds to wait for the reply. Default 5000. */
  timeout?: number;
}

const paramsShape = { wParam: paramSchema.optional(), lParam: paramSchema.optional() };
const messageParamsSchema = z.object(paramsShape).strict().optional();
const sendMessageSchema = z.object({ ...paramsShape, timeout: timeoutMsSchema.optional() })
  .strict().optional();

/** The 64 bits of a `WPARAM` (unsigned) and an `LPARAM` (signed), as the FFI call takes them. */
function wireParams(p: { wParam?: bigint; lParam?: bigint } | undefined): [bigint, bigint] {
  return [BigInt.asUintN(64, p?.wParam ?? 0n), BigInt.asIntN(64, p?.lParam ?? 0n)];
}

/**
 * Sends a message with integer parameters (no pointers into this process) and returns the
 * reply: for registered messages and the `WM_USER`/`WM_APP` ranges. Uses
 * `SendMessageTimeoutW(SMTO_ABORTIFHUNG)` on a worker thread.
 *
 * Both parameters and the reply are pointer-sized (64 bits): handles, ids and counts beyond 2^53
 * pass whole as bigints.
 *
 * @param target The window.
 * @param message The message number.
 * @param options `wParam` and `lParam` (default 0), and the timeout.
 * @returns The reply (`LRESULT`: all 64 bits, signed).
 * @throws {Deno.errors.NotFound} When no such window exists.
 * @throws {Win32Error} `ERROR_TIMEOUT` when the receiver did not reply in time.
 * @throws {TypeError} For a parameter that is not an integer.
 * @throws {RangeError} For a parameter that does not fit in 64 bits, or an unsafe number.
 *
 * @example Send a registered message and read the reply
 * ```ts
 * import { registerWindowMessage, sendMessage } from "./window_messages.ts";
 * const PING = registerWindowMessage("my-app.ping");
 * const pong: bigint = await sendMessage("my-app", PING, { wParam: 1, lParam: 1n << 40n });
 * ```
 */
export async function sendMessage(
  target: WindowTarget,
  message: number,
  options: SendMessageOptions = {},
): Promise<bigint> {
  const msg = parseArg(messageNumberSchema, message, "message");
  const opts = parseArg(sendMessageSchema, options, "options");
  const hwnd = resolveTarget(target, "target");
  const [wParam, lParam] = wireParams(opts);
  return await sendTimeout(hwnd, msg, wParam, lParam, opts?.timeout ?? 5000, describe(target));
}

/**
 * Posts a message (`PostMessageW`): queued for the window's thread, no reply, no waiting.
 *
 * @param target The window.
 * @param message The message number.
 * @param params `wParam` and `lParam` (default 0), 64 bits each.
 * @throws {Deno.errors.NotFound} When no such window exists.
 * @throws {Win32Error} When posting fails (e.g. the queue is full: `ERROR_NOT_ENOUGH_QUOTA`).
 * @throws {RangeError} For a parameter that does not fit in 64 bits, or an unsafe number.
 *
 * @example Post a notification
 * ```ts
 * import { postMessage, registerWindowMessage } from "./window_messages.ts";
 * postMessage("my-app", registerWindowMessage("my-app.refresh"), { wParam: 3 });
 * ```
 */
export function postMessage(target: WindowTarget, message: number, params?: MessageParams): void {
  const msg = parseArg(messageNumberSchema, message, "message");
  const p = parseArg(messageParamsSchema, params, "params");
  const hwnd = resolveTarget(target, "target");
  const [wParam, lParam] = wireParams(p);
  checkBool(
    user32().PostMessageW(hwnd, msg, wParam, lParam),
    "PostMessageW",
    `Cannot post message ${msg} to ${describe(target)}`,
  );
}

const registeredNameSchema = z.string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });

/**
 * Registers a message name system-wide (`RegisterWindowMessageW`): every process that registers
 * the same name gets the same number, from 0xC000 to 0xFFFF.
 *
 * @param name The name (case-insensitive).
 * @returns The message number.
 * @throws {Win32Error} When registration fails.
 *
 * @example Register a message shared by applications
 * ```ts
 * import { registerWindowMessage } from "./window_messages.ts";
 * const WM_PRICES_CHANGED = registerWindowMessage("example.prices-changed");
 * ```
 */
export function registerWindowMessage(name: string): number {
  const n = parseArg(registeredNameSchema, name, "name");
  const id = user32().RegisterWindowMessageW(wide(n));
  if (id === 0) {
    throw win32Error("RegisterWindowMessageW", lastError(), {
      context: `Cannot register window message "${n}"`,
    });
  }
  return id;
}

/**
 * The reply with which a window refuses a {@linkcode queryBroadcast} (`BROADCAST_QUERY_DENY`,
 * "DQMB" in ASCII): the broadcast stops there and resolves `false`.
 *
 * @example A window that refuses while it is busy
 * ```ts
 * import { BROADCAST_QUERY_DENY, MessageWindow, registerWindowMessage } from "./window_messages.ts";
 * const MAY_RELOAD = registerWindowMessage("example.may-reload");
 * let busy = true;
 * using win = new MessageWindow({
 *   messages: [MAY_RELOAD],
 *   onMessage: () => (busy ? BROADCAST_QUERY_DENY : 1),
 * });
 * ```
 */
export const BROADCAST_QUERY_DENY: number = QUERY_DENY;

/**
 * Options of {@linkcode broadcastMessage} and {@linkcode queryBroadcast}.
 *
 * @example Tell every other application, on every desktop
 * ```ts
 * import { broadcastMessage, registerWindowMessage } from "./window_messages.ts";
 * broadcastMessage(registerWindowMessage("example.reload"), {
 *   wParam: 1,
 *   skipOwnProcess: true,
 *   allDesktops: true,
 * });
 * ```
 */
export interface BroadcastOptions extends MessageParams {
  /** Leave out the windows of this process (`BSF_IGNORECURRENTTASK`). Default `false`. */
  skipOwnProcess?: boolean;
  /**
   * Reach the top-level windows of every desktop of the window station, not only this one's
   * (`BSM_ALLDESKTOPS`). Windows requires the `SE_TCB_NAME` privilege for it (services running
   * as LocalSystem hold it; ordinary and elevated programs do not): without it the broadcast
   * fails or reaches this desktop only. Wine, which has one desktop here, accepts it without the
   * privilege. Default `false`.
   */
  allDesktops?: boolean;
}

const broadcastSchema = z.object({
  ...paramsShape,
  skipOwnProcess: z.boolean({ error: "must be a boolean" }).optional(),
  allDesktops: z.boolean({ error: "must be a boolean" }).optional(),
}).strict().optional();

function broadcastArgs(
  message: number,
  options: BroadcastOptions | undefined,
): { msg: number; flags: number; recipients: Uint32Array<ArrayBuffer>; params: [bigint, bigint] } {
  const msg = parseArg(messageNumberSchema, message, "message");
  if (msg < 0xc000) {
    throw new RangeError(
      `Invalid argument "message": only registered messages (0xC000 and up) may be broadcast: got 0x${
        msg.toString(16)
      }`,
    );
  }
  const opts = parseArg(broadcastSchema, options, "options");
  return {
    msg,
    flags: opts?.skipOwnProcess ? BSF_IGNORECURRENTTASK : 0,
    recipients: new Uint32Array([BSM_APPLICATIONS | (opts?.allDesktops ? BSM_ALLDESKTOPS : 0)]),
    params: wireParams(opts),
  };
}

/**
 * Posts a registered message to every top-level window of the desktop
 * (`BroadcastSystemMessageW` with `BSM_APPLICATIONS` and `BSF_POSTMESSAGE`: what
 * `PostMessageW(HWND_BROADCAST)` does, plus the options). Only registered messages (0xC000 and
 * up) may be broadcast, so unrelated windows ignore them. Message-only windows receive no
 * broadcasts.
 *
 * @param message A number from {@linkcode registerWindowMessage}.
 * @param options `wParam` and `lParam` (default 0), whether to skip this process's windows, and
 *   whether to reach every desktop.
 * @throws {RangeError} When the message is not a registered one.
 * @throws {Win32Error} When the broadcast fails (e.g. `allDesktops` without `SE_TCB_NAME`).
 *
 * @example Tell every top-level window
 * ```ts
 * import { broadcastMessage, registerWindowMessage } from "./window_messages.ts";
 * broadcastMessage(registerWindowMessage("example.reload"), { wParam: 1 });
 * ```
 */
export function broadcastMessage(message: number, options?: BroadcastOptions): void {
  const { msg, flags, recipients, params } = broadcastArgs(message, options);
  const r = user32().BroadcastSystemMessageW(
    flags | BSF_POSTMESSAGE,
    recipients,
    msg,
    params[0],
    params[1],
  );
  // A positive value on success; -1 when it could not broadcast (0 for flags it refused)
  if (r <= 0) {
    throw win32Error("BroadcastSystemMessageW", lastError(), {
      context: `Cannot broadcast message 0x${msg.toString(16)}`,
    });
  }
}

/**
 * Asks every top-level window of the desktop in turn (`BroadcastSystemMessageW` with
 * `BSF_QUERY`): each is sent the message and waited for; one that replies
 * {@linkcode BROADCAST_QUERY_DENY} stops the broadcast, and the rest are not asked. A window
 * that does not answer in time is skipped (`BSF_FORCEIFHUNG`; Windows decides the time).
 *
 * The call runs on a worker thread: the event loop runs meanwhile, and this process's own
 * windows answer through winipc's pump unless `skipOwnProcess` is set.
 *
 * @param message A number from {@linkcode registerWindowMessage}.
 * @param options `wParam` and `lParam` (default 0), whether to skip this process's windows, and
 *   whether to reach every desktop.
 * @returns `true` when no window refused, `false` when one did.
 * @throws {RangeError} When the message is not a registered one.
 * @throws {Error} When the broadcast could not be made.
 *
 * @example Ask whether every viewer may reload now
 * ```ts
 * import { queryBroadcast, registerWindowMessage } from "./window_messages.ts";
 * if (await queryBroadcast(registerWindowMessage("example.may-reload"))) console.log("go");
 * ```
 */
export async function queryBroadcast(
  message: number,
  options?: BroadcastOptions,
): Promise<boolean> {
  const { msg, flags, recipients, params } = broadcastArgs(message, options);
  const r = await user32().BroadcastSystemMessageWAsync(
    flags | BSF_QUERY | BSF_FORCEIFHUNG,
    recipients,
    msg,
    params[0],
    params[1],
  );
  retain(recipients);
  if (r > 0) return true;
  if (r === 0) return false;
  // It failed on a worker thread, whose last error is not ours to read.
  throw new Error(`Cannot broadcast message 0x${msg.toString(16)}: BroadcastSystemMessageW failed`);
}
