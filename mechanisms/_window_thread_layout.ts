/**
 * The shared memory between the main thread and the window thread (`_window_thread.ts`,
 * `_window_thread_worker.ts`).
 *
 * @module
 */
import { WM_APP } from "../ffi/user32.ts";

/** Indexes of the `Int32Array` control words. */
export const CTL = {
  /** Worker → main: a message waits for its reply (1). The main thread waits on it. */
  request: 0,
  /** Main → worker: bumped with every reply and command; the worker waits on it. */
  wake: 1,
  /**
   * Main → worker: the `requestSeq` of the request last answered. Requests nest (a command of
   * the main thread that the worker runs while it waits for a reply may ask the main thread
   * again), and each waits for its own number.
   */
  reply: 2,
  /** Main → worker: a command waits (1); the worker takes it (0) before it runs it. */
  command: 3,
  /** Worker → main: the `commandSeq` of the command that ran last. The main thread waits on it. */
  done: 4,
  /** The window thread's id (for `PostThreadMessageW`). */
  threadId: 5,
  /** The window thread is up (1). */
  ready: 6,
  /** The command: 1 create, 2 destroy, 3 start a DDE server, 4 DDE advise, 5 end a DDE server. */
  commandKind: 7,
  /** The Win32 error of a failed command. */
  commandError: 8,
  /** The request's window id (0: no window, see `stackError`). */
  requestWindow: 9,
  /** Main → worker: the reply value is in `big[6]` (1), else the default procedure answers (0). */
  handled: 10,
  /** The length of the command's JSON in the command area. */
  commandLength: 11,
  /**
   * Which call of a create failed: 1 RegisterClassExW, 2 CreateWindowExW, 3
   * AddClipboardFormatListener.
   */
  commandFailed: 12,
  /** Worker → main: a message failed before its window procedure ran (V8's stack limit). */
  stackError: 13,
  /** What the request is: 0 a window message, 1 a DDE transaction ({@linkcode DdeHeader}). */
  requestKind: 14,
  /**
   * Worker → main: bumped with every request and every finished command; the main thread waits
   * on it while it waits for a command, so that it answers the requests the command causes (a
   * DDE advise asks for each linked item's value).
   */
  mainWake: 15,
  /** The request's number (see `reply`). */
  requestSeq: 16,
  /** A DDE transaction: the length of its JSON header at the start of the data area. */
  ddeHeaderLength: 17,
  /** A DDE answer's clipboard format (with `handled` 2). */
  ddeFormat: 18,
  /** The command's number (see `done`): commands nest, as requests do. */
  commandSeq: 19,
  /** Worker → main: 1 once the thread has left its message loop (see `stopThread`). */
  stopped: 20,
} as const;

/** How many control words there are (the `BigInt64Array` of message fields follows them). */
export const CTL_INTS = 24;
/**
 * The `BigInt64Array` after the control words: 0 hwnd, 1 message, 2 wParam, 3 lParam, 4 dwData,
 * 5 payload length (-1: not WM_COPYDATA), 6 reply, 7 the command's window handle.
 */
export const BIG_COUNT = 8;
/** The largest WM_COPYDATA payload the window thread hands over (larger ones are answered 0). */
export const MAX_PAYLOAD = 1 << 30;
/** The thread message that tells the window thread a command waits. */
export const WM_WINDOW_THREAD_COMMAND = WM_APP + 0x3a1;

/** The buffers both threads share. */
export interface Shared {
  /** Control words and message fields. */
  control: SharedArrayBuffer;
  /** A WM_COPYDATA payload (growable up to {@linkcode MAX_PAYLOAD}). */
  data: SharedArrayBuffer;
  /** A command's JSON (growable). */
  command: SharedArrayBuffer;
}

/** The arguments of a create command. */
export interface CreateCommand {
  /** winipc's id for the window. */
  id: number;
  /** The class name. */
  className: string;
  /** The title, or null. */
  title: string | null;
  /** A message-only window. */
  messageOnly: boolean;
  /** Messages besides WM_COPYDATA that the main thread answers. */
  messages: number[];
  /**
   * Put the window on the clipboard format listener list (`AddClipboardFormatListener`, on the
   * window thread, which owns it); it leaves the list when the window is destroyed.
   */
  clipboardListener: boolean;
  /**
   * The reply to WM_COPYDATA (a decimal bigint) when the window thread answers it at once and
   * posts the payload to the main thread, which then needs to compute nothing; `null`: the main
   * thread answers.
   */
  immediateCopyData: string | null;
  /** Whether the window thread answers the listed messages at once (0) and posts them on. */
  immediateMessages: boolean;
}

/** The arguments of a command that starts a DDE server. */
export interface DdeStartCommand {
  /** winipc's id for the server. */
  id: number;
  /** The service name to register. */
  service: string;
}

/** The arguments of a DDE advise command. */
export interface DdeAdviseCommand {
  /** winipc's id for the server. */
  id: number;
  topic: string;
  item: string;
}

/**
 * A DDE transaction handed to the main thread: this JSON at the start of the data area
 * (`CTL.ddeHeaderLength` bytes), then the transaction's data (`big[5]` bytes: a poke's value, an
 * execute's command). `topic` is null for a wildcard connect without a topic; `item` is null for
 * a connect or an execute.
 */
export interface DdeHeader {
  /** `XTYP_*`. */
  type: number;
  /** The clipboard format. */
  format: number;
  topic: string | null;
  item: string | null;
}

/**
 * How the main thread answered a DDE transaction (`CTL.handled`): 0 no answer (`NULL`, "not
 * processed"), 1 a number (`big[6]`), 2 data (`big[6]` bytes at the start of the data area, in
 * the format `CTL.ddeFormat`), 3 the topics of a wildcard connect (JSON, `big[6]` bytes).
 */
export const DDE_ANSWER = { none: 0, number: 1, data: 2, topics: 3 } as const;

/** An error of the window thread for one DDE server, posted to the main thread. */
export interface DdeThreadError {
  /** winipc's id for the server. */
  ddeError: number;
  message: string;
}

/** A message the window thread answered at once, posted to the main thread (`parentPort`). */
export interface PostedMessage {
  /** winipc's id for the window. */
  id: number;
  message: number;
  wParam: bigint;
  lParam: bigint;
  /** WM_COPYDATA's `dwData` and payload (transferred), or null for another message. */
  copy: { dwData: bigint; data: Uint8Array<ArrayBuffer> } | null;
}
