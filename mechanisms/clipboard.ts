/**
 * The Windows clipboard: text ({@linkcode readText}, {@linkcode writeText}, `CF_UNICODETEXT`),
 * HTML ({@linkcode readHtml}, {@linkcode writeHtml}, CF_HTML), images as PNG
 * ({@linkcode readImage}, {@linkcode writeImage}: the "PNG" format, `CF_DIBV5` and `CF_DIB`), file
 * lists ({@linkcode readFiles}, {@linkcode writeFiles}: `CF_HDROP` and "Preferred DropEffect"),
 * bytes in registered custom formats ({@linkcode read}, {@linkcode write} with several formats in
 * one set; {@linkcode htmlItem}, {@linkcode imageItems} and {@linkcode fileItems} make the rich
 * formats' items), the formats present with their names ({@linkcode listFormats}), and changes as
 * an async iterator ({@linkcode watch}, `AddClipboardFormatListener` + `WM_CLIPBOARDUPDATE`).
 *
 * What another program put on the clipboard is checked before use: a malformed CF_HTML header, a
 * bitmap whose sizes disagree with its length or a file list that runs past its end is a
 * {@linkcode ClipboardFormatError}. Formats whose handle is a GDI object (`CF_BITMAP`,
 * `CF_PALETTE`, `CF_ENHMETAFILE`, the private GDI range) are never read as memory.
 *
 * The clipboard is one per session and only one window may have it open at a time. When another
 * process holds it, `OpenClipboard` fails with `ERROR_ACCESS_DENIED`; winipc retries with a short
 * backoff (without blocking the event loop) until `timeout`, then fails with an error naming the
 * process that holds it.
 *
 * Watching ({@linkcode watch}) needs no pump and no sleep: the watcher's window is a message-only
 * window on winipc's window thread (`_window_thread.ts`, a worker blocked in
 * `MsgWaitForMultipleObjectsEx`), which calls `AddClipboardFormatListener` when it creates the
 * window and `RemoveClipboardFormatListener` when it destroys it, and hands each
 * `WM_CLIPBOARDUPDATE` to the main thread through shared memory (`Atomics.notify` to a main thread
 * waiting in `Atomics.waitAsync`). A change wakes that thread at once; a process that only watches
 * uses no CPU while idle and never starts the main thread's pump (`_pump.ts`, which idles in a
 * `Sleep(1)`: about 1.5 ms under Wine, up to 15.6 ms on a stock Windows timer). An open watch keeps
 * the process alive until its loop ends (break, `return()`, the signal); then the process may exit.
 *
 * Measured 2026-12-02 with `tools/clipboard_latency/run.ts` (another process writes text 30 times,
 * 100 to 200 ms apart; the latency runs from just before its `SetClipboardData` to the watcher's
 * iterator yielding the change), deno.exe 2.9.6 under Wine 10 on a 2-core machine loaded by other
 * test runs (load average 2 to 4, so noisy), 7 rounds in 4 runs, the pump-served watcher (before)
 * and this one alternating in each run:
 *
 * | watcher | p50 per round | median of the p50s | idle CPU of the watching process |
 * |---|---|---|---|
 * | main-thread window served by the pump (before) | 1,014–1,280 µs | 1,103 µs | 8.6–10.6% of a core |
 * | window thread (now) | 680–1,092 µs | 864 µs | 0.0 ms of CPU in 5 s |
 * | floor: a Deno main thread blocked on its own listener window, no event loop (2 rounds) | 251–290 µs | | |
 *
 * So the hand-off to the main thread costs about 0.4–0.6 ms here, more than Wine's own wake-up;
 * on stock Windows the pump's idle `Sleep(1)` (up to 15.6 ms, not measured here) is gone from the
 * path as well.
 *
 * Memory ownership follows the Win32 rules: data is copied into `GlobalAlloc(GMEM_MOVEABLE)`
 * memory, which belongs to the system once `SetClipboardData` succeeds (and is freed by winipc
 * when it fails); handles from `GetClipboardData` belong to the clipboard and are only locked,
 * copied and unlocked.
 *
 * @example Copy and paste text
 * ```ts
 * import { readText, writeText } from "./clipboard.ts";
 * await writeText("héllo ✓");
 * console.log(await readText()); // "héllo ✓"
 * ```
 *
 * @module
 */
import { z } from "zod";
import { lastError, win32Error, WinipcError } from "../ffi/error.ts";
import { GMEM_MOVEABLE, kernel32 } from "../ffi/kernel32.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import { CF_UNICODETEXT, HWND_MESSAGE, user32, WM_CLIPBOARDUPDATE } from "../ffi/user32.ts";
import {
  decodeFileList,
  decodeHtml,
  dibToRgba,
  encodeFileList,
  encodeHtml,
  pngToRgba,
  type RgbaImage,
  rgbaToDibV5,
  rgbaToPng,
} from "./_clipboard_codecs.ts";
import { hasPngSignature } from "fast-png";
import { AsyncQueue } from "./_queue.ts";
import { type IoOptions, parseArg, signalSchema } from "./_validate.ts";
import { pollUntil } from "./_wait.ts";
import { hwndValue } from "./_window.ts";
import { ThreadWindow } from "./_window_thread.ts";

const ERROR_ACCESS_DENIED = 5;

/**
 * Clipboard data that does not follow its format's layout (a malformed CF_HTML header, a DIB
 * whose sizes disagree with its length, a file list that runs past its end, bytes that are not a
 * PNG).
 *
 * @example Tell a malformed format from other failures
 * ```ts
 * import { ClipboardFormatError, readHtml } from "./clipboard.ts";
 * try {
 *   await readHtml();
 * } catch (e) {
 *   if (e instanceof ClipboardFormatError) console.log(`${e.format}: ${e.message}`);
 * }
 * ```
 */
export class ClipboardFormatError extends WinipcError {
  /** The format whose data was malformed (`"HTML Format"`, `"CF_DIB"`, ...). */
  readonly format: string;

  /**
   * Makes the error.
   *
   * @param format The format's name.
   * @param message What was wrong.
   */
  constructor(format: string, message: string) {
    super(`Malformed ${format} data on the clipboard: ${message}`, "ERR_CLIPBOARD_FORMAT");
    this.name = "ClipboardFormatError";
    this.format = format;
  }
}

/**
 * The HTML on the clipboard, as CF_HTML carries it.
 *
 * @example Paste the fragment, keep where it came from
 * ```ts
 * import { type ClipboardHtml, readHtml } from "./clipboard.ts";
 * const html: ClipboardHtml | null = await readHtml();
 * if (html) console.log(html.fragment, html.sourceUrl ?? "(no source)");
 * ```
 */
export interface ClipboardHtml {
  /** The fragment that was copied (between StartFragment and EndFragment). */
  fragment: string;
  /** The whole HTML context around it (StartHTML to EndHTML), or the fragment when absent. */
  html: string;
  /** The page the fragment came from, when the writer said. */
  sourceUrl?: string;
}

/**
 * The standard clipboard formats, by number.
 *
 * @example Tell standard formats from registered ones
 * ```ts
 * import { listFormats, STANDARD_FORMATS } from "./clipboard.ts";
 * const custom = (await listFormats()).filter((f) => STANDARD_FORMATS[f.id] === undefined);
 * ```
 */
export const STANDARD_FORMATS: Readonly<Record<number, string>> = {
  1: "CF_TEXT",
  2: "CF_BITMAP",
  3: "CF_METAFILEPICT",
  4: "CF_SYLK",
  5: "CF_DIF",
  6: "CF_TIFF",
  7: "CF_OEMTEXT",
  8: "CF_DIB",
  9: "CF_PALETTE",
  10: "CF_PENDATA",
  11: "CF_RIFF",
  12: "CF_WAVE",
  13: "CF_UNICODETEXT",
  14: "CF_ENHMETAFILE",
  15: "CF_HDROP",
  16: "CF_LOCALE",
  17: "CF_DIBV5",
  0x80: "CF_OWNERDISPLAY",
  0x81: "CF_DSPTEXT",
  0x82: "CF_DSPBITMAP",
  0x83: "CF_DSPMETAFILEPICT",
  0x8e: "CF_DSPENHMETAFILE",
};
const STANDARD_BY_NAME = new Map(
  Object.entries(STANDARD_FORMATS).map(([id, name]) => [name, Number(id)]),
);

/**
 * A clipboard format: its number and name.
 *
 * @example Print what the clipboard holds
 * ```ts
 * import { type ClipboardFormat, listFormats } from "./clipboard.ts";
 * const formats: ClipboardFormat[] = await listFormats();
 * for (const { id, name } of formats) console.log(`${id.toString(16)} ${name}`);
 * ```
 */
export interface ClipboardFormat {
  /** The format number (`CF_UNICODETEXT` is 13; registered formats are 0xC000 to 0xFFFF). */
  id: number;
  /** `CF_...` for standard formats, the registered name otherwise. */
  name: string;
}

/**
 * Options of every clipboard call that opens the clipboard.
 *
 * @example Wait up to 10 s for another program to let go of the clipboard
 * ```ts
 * import { readText } from "./clipboard.ts";
 * const text = await readText({ timeout: 10_000, signal: AbortSignal.timeout(15_000) });
 * ```
 */
export interface ClipboardOptions extends IoOptions {
  /**
   * Milliseconds to keep retrying while another window holds the clipboard open. Default 2000.
   * 0 tries once.
   */
  timeout?: number;
  /** Aborts the retries. */
  signal?: AbortSignal;
}

const optionsSchema = z.object({
  timeout: z.number({ error: "must be a number of milliseconds" })
    .int({ error: "must be a whole number of milliseconds" })
    .min(0, { error: "must not be negative" })
    .max(0x7fff_ffff, { error: "must be below 2^31 ms" })
    .optional(),
  signal: signalSchema,
}).strict().optional();

const formatNameSchema = z.string({ error: "must be a format number or name" })
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .refine((s) => !s.includes("\0"), { error: "must not contain NUL" });
const formatSchema = z.union([
  z.number().int({ error: "must be an integer" })
    .min(1, { error: "must be at least 1" })
    .max(0xffff, { error: "must be at most 0xFFFF" }),
  formatNameSchema,
], { error: "must be a format number or name" });

/**
 * Registers a clipboard format name (`RegisterClipboardFormatW`); every process that registers
 * the same name (case-insensitive) gets the same number.
 *
 * @param name The format's name, e.g. `"my-app/record"`.
 * @returns Its number, from 0xC000 to 0xFFFF.
 * @throws {TypeError} For an empty name or one with NUL.
 * @throws {Win32Error} When registration fails.
 *
 * @example Register an application format
 * ```ts
 * import { registerFormat } from "./clipboard.ts";
 * const CF_RECORD = registerFormat("example/record");
 * ```
 */
export function registerFormat(name: string): number {
  const n = parseArg(formatNameSchema, name, "name");
  if (STANDARD_BY_NAME.has(n)) return STANDARD_BY_NAME.get(n)!;
  const id = user32().RegisterClipboardFormatW(wide(n));
  if (id === 0) {
    throw win32Error("RegisterClipboardFormatW", lastError(), {
      context: `Cannot register clipboard format "${n}"`,
    });
  }
  return id;
}

/**
 * The name of a clipboard format (`GetClipboardFormatNameW` for registered ones).
 *
 * @param id The format number.
 * @returns `CF_...` for standard formats, the registered name, or `"#<id>"` when it has none.
 *
 * @example Name a format
 * ```ts
 * import { formatName } from "./clipboard.ts";
 * formatName(13); // "CF_UNICODETEXT"
 * ```
 */
export function formatName(id: number): string {
  const n = parseArg(formatSchema, id, "id");
  if (typeof n === "string") throw new TypeError(`Invalid argument "id": must be a number`);
  if (STANDARD_FORMATS[n]) return STANDARD_FORMATS[n];
  const buf = new Uint16Array(256);
  const len = user32().GetClipboardFormatNameW(n, buf, buf.length);
  return len > 0 ? fromWide(buf, len) : `#${n}`;
}

/**
 * A message-only window of the built-in "STATIC" class: an owner for `OpenClipboard` (without
 * one `SetClipboardData` fails) that needs no window procedure of ours.
 */
function withOwner<T>(fn: (owner: Deno.PointerObject) => T): T {
  const u = user32();
  const owner = u.CreateWindowExW(
    0,
    wide("STATIC"),
    wide("winipc clipboard owner"),
    0,
    0,
    0,
    0,
    0,
    HWND_MESSAGE,
    null,
    null,
    null,
  );
  if (owner === null) {
    throw win32Error("CreateWindowExW", lastError(), {
      context: "Cannot create the clipboard owner window",
    });
  }
  try {
    return fn(owner);
  } finally {
    u.DestroyWindow(owner);
  }
}

function holderDescription(): string {
  const u = user32();
  const holder = u.GetOpenClipboardWindow();
  if (holder === null) return "another window holds it open";
  const pid = new Uint32Array(1);
  u.GetWindowThreadProcessId(holder, pid);
  return `window 0x${hwndValue(holder).toString(16)} of process ${pid[0]} holds it open`;
}

/**
 * Opens the clipboard (retrying while another window holds it), runs `fn` synchronously, and
 * closes it again.
 */
async function withClipboard<T>(
  options: ClipboardOptions | undefined,
  what: string,
  fn: (owner: Deno.PointerObject) => T,
): Promise<T> {
  const opts: ClipboardOptions = parseArg(optionsSchema, options, "options") ?? {};
  const timeout = opts.timeout ?? 2000;
  const u = user32();
  let failure = 0;
  const result = await pollUntil<{ value: T }>(() =>
    withOwner((owner) => {
      if (!u.OpenClipboard(owner)) {
        failure = lastError();
        if (failure !== ERROR_ACCESS_DENIED) {
          throw win32Error("OpenClipboard", failure, {
            context: `Cannot open the clipboard to ${what}`,
          });
        }
        return undefined;
      }
      try {
        return { value: fn(owner) };
      } finally {
        u.CloseClipboard();
      }
    }), { timeout, signal: opts.signal });
  if (result) return result.value;
  throw win32Error("OpenClipboard", failure || ERROR_ACCESS_DENIED, {
    context:
      `Cannot open the clipboard to ${what}: ${holderDescription()} (retried for ${timeout} ms)`,
  });
}

/** Resolves a format given by number or name; names must be standard or present (when reading). */
function resolveFormat(format: number | string, name: string, register: boolean): number {
  const f = parseArg(formatSchema, format, name);
  if (typeof f === "number") return f;
  if (STANDARD_BY_NAME.has(f)) return STANDARD_BY_NAME.get(f)!;
  return register ? registerFormat(f) : -1;
}

function readHandle(h: Deno.PointerObject): Uint8Array<ArrayBuffer> {
  const k = kernel32();
  const size = Number(k.GlobalSize(h));
  const p = k.GlobalLock(h);
  if (p === null) {
    throw win32Error("GlobalLock", lastError(), { context: "Cannot read clipboard data" });
  }
  try {
    return size
      ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size)).slice()
      : new Uint8Array(0);
  } finally {
    k.GlobalUnlock(h);
  }
}

function readFormat(id: number): Uint8Array<ArrayBuffer> | null {
  const u = user32();
  if (!u.IsClipboardFormatAvailable(id)) return null;
  const h = u.GetClipboardData(id);
  if (h === null) {
    throw win32Error("GetClipboardData", lastError(), {
      context: `Cannot read clipboard format ${formatName(id)}`,
    });
  }
  return readHandle(h);
}

function decodeUnicode(bytes: Uint8Array<ArrayBuffer>): string {
  const units = new Uint16Array(bytes.buffer, 0, bytes.length >> 1);
  return fromWide(units);
}

function encodeUnicode(text: string): Uint8Array<ArrayBuffer> {
  const units = wide(text);
  return new Uint8Array(units.buffer);
}

/** Copies bytes into movable global memory and hands it to the clipboard. */
function setFormat(id: number, bytes: Uint8Array): void {
  const k = kernel32();
  const u = user32();
  const h = k.GlobalAlloc(GMEM_MOVEABLE, BigInt(Math.max(bytes.length, 1)));
  if (h === null) {
    throw win32Error("GlobalAlloc", lastError(), {
      context: `Cannot allocate ${bytes.length} bytes for the clipboard`,
    });
  }
  const p = k.GlobalLock(h);
  if (p === null) {
    const code = lastError();
    k.GlobalFree(h);
    throw win32Error("GlobalLock", code, { context: "Cannot fill clipboard memory" });
  }
  if (bytes.length) {
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.length)).set(bytes);
  }
  k.GlobalUnlock(h);
  if (u.SetClipboardData(id, h) === null) {
    const code = lastError();
    k.GlobalFree(h); // still ours: the clipboard did not take it
    throw win32Error("SetClipboardData", code, {
      context: `Cannot put format ${formatName(id)} on the clipboard`,
    });
  }
  // The system owns h now: it must not be freed or used.
}

/**
 * Reads the clipboard's text (`CF_UNICODETEXT`; Windows converts from `CF_TEXT` when needed).
 *
 * @param options Retry timeout and AbortSignal.
 * @returns The text, or `null` when the clipboard holds no text.
 * @throws {Win32Error} When the clipboard stays held by another process (`ERROR_ACCESS_DENIED`).
 *
 * @example Read the clipboard's text
 * ```ts
 * import { readText } from "./clipboard.ts";
 * const text = await readText({ timeout: 5000 });
 * ```
 */
export async function readText(options?: ClipboardOptions): Promise<string | null> {
  return await withClipboard(options, "read text", () => {
    const bytes = readFormat(CF_UNICODETEXT);
    return bytes === null ? null : decodeUnicode(bytes);
  });
}

/**
 * Replaces the clipboard's contents with text (`CF_UNICODETEXT`; Windows synthesises `CF_TEXT`
 * and `CF_OEMTEXT` for readers that want them).
 *
 * @param text The text; any Unicode.
 * @param options Retry timeout and AbortSignal.
 * @throws {Win32Error} When the clipboard stays held by another process (`ERROR_ACCESS_DENIED`).
 *
 * @example Copy text to the clipboard
 * ```ts
 * import { writeText } from "./clipboard.ts";
 * await writeText("héllo ✓ 日本語");
 * ```
 */
export async function writeText(text: string, options?: ClipboardOptions): Promise<void> {
  const t = parseArg(z.string({ error: "must be a string" }), text, "text");
  return await write([{ format: CF_UNICODETEXT, data: t }], options);
}

/**
 * One format's data for {@linkcode write}.
 *
 * @example Text for everyone, and the same data in an application's own format
 * ```ts
 * import { type ClipboardItem, write } from "./clipboard.ts";
 * const items: ClipboardItem[] = [
 *   { format: "CF_UNICODETEXT", data: "3 rows" },
 *   { format: "example/rows", data: new TextEncoder().encode("[1,2,3]") },
 * ];
 * await write(items);
 * ```
 */
export interface ClipboardItem {
  /** A format number, a standard name (`"CF_UNICODETEXT"`) or a custom name (registered here). */
  format: number | string;
  /** The bytes; a string is stored as UTF-16 with a NUL (right for `CF_UNICODETEXT`). */
  data: Uint8Array | string;
}

const itemsSchema = z.array(
  z.object({
    format: formatSchema,
    data: z.union([z.instanceof(Uint8Array), z.string()], {
      error: "must be a Uint8Array or a string",
    }),
  }).strict(),
  { error: "must be an array of { format, data }" },
).min(1, { error: "must hold at least one format" });

/**
 * Replaces the clipboard's contents with several formats at once (one `EmptyClipboard`, then a
 * `SetClipboardData` per format), so readers see all of them or none.
 *
 * @param items The formats and their data.
 * @param options Retry timeout and AbortSignal.
 * @throws {TypeError} For an invalid item.
 * @throws {Win32Error} When the clipboard stays held by another process, or a format is refused.
 *
 * @example Text plus a private format
 * ```ts
 * import { write } from "./clipboard.ts";
 * await write([
 *   { format: "CF_UNICODETEXT", data: "3 rows" },
 *   { format: "example/rows", data: new Uint8Array([1, 2, 3]) },
 * ]);
 * ```
 */
export async function write(items: ClipboardItem[], options?: ClipboardOptions): Promise<void> {
  const list = parseArg(itemsSchema, items, "items");
  const prepared = list.map((item, i) => {
    const id = resolveFormat(item.format, `items.${i}.format`, true);
    refuseGdi(id, `items.${i}.format`);
    const bytes = typeof item.data === "string" ? encodeUnicode(item.data) : item.data;
    return { id, bytes };
  });
  return await withClipboard(options, "write", () => {
    const u = user32();
    if (!u.EmptyClipboard()) {
      throw win32Error("EmptyClipboard", lastError(), {
        context: "Cannot empty the clipboard",
      });
    }
    for (const { id, bytes } of prepared) setFormat(id, bytes);
  });
}

/**
 * Reads one format's bytes.
 *
 * @param format A format number, a standard name (`"CF_TEXT"`) or a registered name.
 * @param options Retry timeout and AbortSignal.
 * @returns The bytes (as `GlobalSize` reports them; Windows may round a block up), or `null`
 *   when the clipboard does not hold that format.
 * @throws {Deno.errors.NotFound} For a name that is neither standard nor on the clipboard (a
 *   reader cannot tell an unregistered name from an absent one without registering it).
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Read bytes in a registered format
 * ```ts
 * import { read } from "./clipboard.ts";
 * const rows = await read("example/rows");
 * ```
 */
export async function read(
  format: number | string,
  options?: ClipboardOptions,
): Promise<Uint8Array<ArrayBuffer> | null> {
  let id = resolveFormat(format, "format", false);
  refuseGdi(id, "format");
  return await withClipboard(options, "read", () => {
    if (id === -1) {
      const formats = enumFormats();
      const found = formats.find((f) => f.name.toLowerCase() === String(format).toLowerCase());
      if (!found) {
        throw new Deno.errors.NotFound(
          `Unknown clipboard format "${format}": it is not a standard format and the clipboard holds no format of that name (it holds: ${
            formats.map((f) => f.name).join(", ") || "nothing"
          })`,
        );
      }
      id = found.id;
    }
    return readFormat(id);
  });
}

function enumFormats(): ClipboardFormat[] {
  const u = user32();
  const out: ClipboardFormat[] = [];
  let id = 0;
  while ((id = u.EnumClipboardFormats(id)) !== 0) out.push({ id, name: formatName(id) });
  return out;
}

/**
 * The formats on the clipboard, in the order their owner put them there (`EnumClipboardFormats`),
 * including those Windows synthesises (`CF_TEXT` from `CF_UNICODETEXT`, ...).
 *
 * @param options Retry timeout and AbortSignal.
 * @returns The formats with their names.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example List the formats on the clipboard
 * ```ts
 * import { listFormats } from "./clipboard.ts";
 * for (const f of await listFormats()) console.log(f.id, f.name);
 * ```
 */
export async function listFormats(options?: ClipboardOptions): Promise<ClipboardFormat[]> {
  return await withClipboard(options, "list formats", () => enumFormats());
}

/**
 * Empties the clipboard.
 *
 * @param options Retry timeout and AbortSignal.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Empty the clipboard
 * ```ts
 * import { clear } from "./clipboard.ts";
 * await clear();
 * ```
 */
export async function clear(options?: ClipboardOptions): Promise<void> {
  return await withClipboard(options, "empty it", () => {
    if (!user32().EmptyClipboard()) {
      throw win32Error("EmptyClipboard", lastError(), {
        context: "Cannot empty the clipboard",
      });
    }
  });
}

// ---- rich formats: HTML, images, file lists ----

/**
 * The registered format of HTML on the clipboard (CF_HTML).
 *
 * @example Read the raw CF_HTML bytes, header included
 * ```ts
 * import { HTML_FORMAT, read } from "./clipboard.ts";
 * const raw = await read(HTML_FORMAT);
 * ```
 */
export const HTML_FORMAT = "HTML Format";
/**
 * The registered format in which browsers and Office put PNG images.
 *
 * @example Whether the clipboard holds a PNG as such
 * ```ts
 * import { listFormats, PNG_FORMAT } from "./clipboard.ts";
 * const hasPng = (await listFormats()).some((f) => f.name === PNG_FORMAT);
 * ```
 */
export const PNG_FORMAT = "PNG";
/**
 * The registered format that says whether dropped or pasted files are copied or moved (a DWORD of
 * `DROPEFFECT_*` bits).
 *
 * @example Read the raw drop effect
 * ```ts
 * import { DROP_EFFECT_FORMAT, read } from "./clipboard.ts";
 * const bytes = await read(DROP_EFFECT_FORMAT);
 * ```
 */
export const DROP_EFFECT_FORMAT = "Preferred DropEffect";
const CF_BITMAP = 2;
const CF_DIB = 8;
const CF_DIBV5 = 17;
const CF_HDROP = 15;
const DROPEFFECT = { copy: 1, move: 2, link: 4 } as const;

/**
 * Formats whose clipboard handle is a GDI object (a bitmap, palette or metafile), not memory:
 * reading them as bytes would read garbage or crash, so {@linkcode read} and {@linkcode write}
 * refuse them. `CF_BITMAP` is read as an image with {@linkcode readImage} (the system synthesises
 * `CF_DIB` from it).
 */
function gdiFormat(id: number): boolean {
  return id === CF_BITMAP || id === 9 || id === 14 || id === 0x82 || id === 0x8e ||
    (id >= 0x300 && id <= 0x3ff);
}

function refuseGdi(id: number, name: string): void {
  if (!gdiFormat(id)) return;
  throw new TypeError(
    `Invalid argument "${name}": clipboard format ${formatName(id)} holds a GDI handle, not memory${
      id === CF_BITMAP ? "; read images with readImage()" : ""
    }`,
  );
}

/**
 * Options of {@linkcode writeHtml} and {@linkcode htmlItem}.
 *
 * @example HTML with a plain-text alternative and its source
 * ```ts
 * import { writeHtml } from "./clipboard.ts";
 * await writeHtml("<b>Total</b>: 42 €", { text: "Total: 42 €", sourceUrl: "https://example.com/" });
 * ```
 */
export interface HtmlOptions {
  /** The page the fragment came from (CF_HTML's `SourceURL`). */
  sourceUrl?: string;
}

/**
 * Options of {@linkcode writeHtml}.
 *
 * @example HTML and its plain text in one set
 * ```ts
 * import { writeHtml } from "./clipboard.ts";
 * await writeHtml("<i>hi</i>", { text: "hi", timeout: 5000 });
 * ```
 */
export interface WriteHtmlOptions extends HtmlOptions, ClipboardOptions {
  /** A plain-text alternative (`CF_UNICODETEXT`), set together with the HTML. */
  text?: string;
}

const htmlOptionsSchema = z.object({
  sourceUrl: z.string({ error: "must be a string" })
    .refine((s) => !/[\r\n\0]/.test(s), { error: "must not contain line breaks or NUL" })
    .optional(),
}).strict().optional();

/**
 * One clipboard item that carries HTML as CF_HTML ("HTML Format": a header of byte offsets, then
 * the fragment in a minimal document, UTF-8), for {@linkcode write} beside other formats.
 *
 * @param fragment The HTML.
 * @param options The source URL.
 * @returns The item.
 * @throws {TypeError} For a fragment that is not a string, or a bad source URL.
 *
 * @example HTML and an application format in one set
 * ```ts
 * import { htmlItem, write } from "./clipboard.ts";
 * await write([htmlItem("<b>3</b> rows"), { format: "example/rows", data: "[1,2,3]" }]);
 * ```
 */
export function htmlItem(fragment: string, options?: HtmlOptions): ClipboardItem {
  const html = parseArg(z.string({ error: "must be a string" }), fragment, "fragment");
  const opts = parseArg(htmlOptionsSchema, options, "options") ?? {};
  return { format: HTML_FORMAT, data: encodeHtml(html, opts.sourceUrl) };
}

/**
 * Puts HTML on the clipboard (CF_HTML), with a plain-text alternative when `text` is given, in
 * one set.
 *
 * @param fragment The HTML that was copied (a fragment, not a whole document).
 * @param options The plain text, the source URL, retry timeout and AbortSignal.
 * @throws {TypeError} For bad arguments.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Copy a formatted line
 * ```ts
 * import { writeHtml } from "./clipboard.ts";
 * await writeHtml("<b>Überweisung</b> ✓", { text: "Überweisung ✓" });
 * ```
 */
export async function writeHtml(fragment: string, options: WriteHtmlOptions = {}): Promise<void> {
  const { text, sourceUrl, ...rest } = options ?? {};
  const items = [htmlItem(fragment, sourceUrl === undefined ? {} : { sourceUrl })];
  if (text !== undefined) {
    items.push({ format: CF_UNICODETEXT, data: parseArg(z.string(), text, "options.text") });
  }
  return await write(items, rest);
}

/**
 * Reads the HTML on the clipboard (CF_HTML), checking every offset of its header.
 *
 * @param options Retry timeout and AbortSignal.
 * @returns The fragment, its HTML context and source URL, or `null` when there is no HTML.
 * @throws {ClipboardFormatError} When the data does not follow CF_HTML's layout.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Paste HTML, or text where there is none
 * ```ts
 * import { readHtml, readText } from "./clipboard.ts";
 * const html = await readHtml();
 * console.log(html ? html.fragment : await readText());
 * ```
 */
export async function readHtml(options?: ClipboardOptions): Promise<ClipboardHtml | null> {
  const id = registerFormat(HTML_FORMAT);
  const bytes = await withClipboard(options, "read HTML", () => readFormat(id));
  return bytes === null ? null : decodeHtml(bytes);
}

/**
 * The clipboard items that carry an image: the PNG itself (the registered "PNG" format, as
 * browsers and Office write it) and a 32-bit `CF_DIBV5` with alpha, from which the system
 * synthesises `CF_DIB` and `CF_BITMAP` for older readers.
 *
 * @param png The image as PNG bytes (any bit depth and colour type).
 * @returns The items, for {@linkcode write}.
 * @throws {TypeError} When the bytes are not a PNG this can decode.
 *
 * @example An image and its description in one set
 * ```ts
 * import { imageItems, write } from "./clipboard.ts";
 * const png = await Deno.readFile("chart.png");
 * await write([...imageItems(png), { format: "CF_UNICODETEXT", data: "sales chart" }]);
 * ```
 */
export function imageItems(png: Uint8Array): ClipboardItem[] {
  const bytes = parseArg(z.instanceof(Uint8Array, { error: "must be a Uint8Array" }), png, "png");
  let image: RgbaImage;
  try {
    image = pngToRgba(bytes);
  } catch (e) {
    if (!(e instanceof ClipboardFormatError)) throw e;
    throw new TypeError(
      `Invalid argument "png": ${e.message.replace(/^Malformed PNG data on the clipboard: /, "")}`,
    );
  }
  return [{ format: PNG_FORMAT, data: bytes }, { format: CF_DIBV5, data: rgbaToDibV5(image) }];
}

/**
 * Puts an image on the clipboard: see {@linkcode imageItems} for the formats.
 *
 * @param png The image as PNG bytes.
 * @param options Retry timeout and AbortSignal.
 * @throws {TypeError} When the bytes are not a PNG.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Copy a PNG file
 * ```ts
 * import { writeImage } from "./clipboard.ts";
 * await writeImage(await Deno.readFile("logo.png"));
 * ```
 */
export async function writeImage(png: Uint8Array, options?: ClipboardOptions): Promise<void> {
  return await write(imageItems(png), options);
}

/** The bytes of a PNG up to the end of its IEND chunk (clipboard memory may be rounded up). */
function trimPng(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; at + 12 <= bytes.length;) {
    const length = view.getUint32(at, false);
    const end = at + 12 + length;
    if (end > bytes.length) break;
    if (view.getUint32(at + 4, false) === 0x4945_4e44) return bytes.subarray(0, end); // "IEND"
    at = end;
  }
  throw new ClipboardFormatError(PNG_FORMAT, "no IEND chunk within the data");
}

/**
 * Reads the image on the clipboard as PNG bytes: the "PNG" format as it was put there when there
 * is one, else `CF_DIBV5` or `CF_DIB` (24 or 32 bits, bottom-up or top-down), encoded as PNG.
 *
 * A `CF_BITMAP` (a GDI bitmap, as screenshot tools and older programs put images) is read
 * through the `CF_DIBV5`/`CF_DIB` the system synthesises from it; a bitmap has no alpha, so its
 * pixels come out opaque. Wine synthesises them from a device-dependent bitmap
 * (`CreateBitmap`, `CreateCompatibleBitmap`) but not from a DIB section (`CreateDIBSection`) that
 * another process put there: that is a `Win32Error` that says so.
 *
 * @param options Retry timeout and AbortSignal.
 * @returns The PNG bytes, or `null` when the clipboard holds no image.
 * @throws {ClipboardFormatError} When a bitmap's header disagrees with its data.
 * @throws {Win32Error} When the clipboard stays held by another process, or the system lists a
 *   DIB it cannot give (a `CF_BITMAP` it could not convert).
 *
 * @example Save a pasted image
 * ```ts
 * import { readImage } from "./clipboard.ts";
 * const png = await readImage();
 * if (png) await Deno.writeFile("pasted.png", png);
 * ```
 */
export async function readImage(options?: ClipboardOptions): Promise<Uint8Array | null> {
  const pngId = registerFormat(PNG_FORMAT);
  const found = await withClipboard(options, "read an image", () => {
    const png = readFormat(pngId);
    if (png !== null) return { id: pngId, bytes: png };
    const u = user32();
    let failure: number | undefined;
    for (const id of [CF_DIBV5, CF_DIB]) {
      if (!u.IsClipboardFormatAvailable(id)) continue;
      const h = u.GetClipboardData(id);
      if (h !== null) return { id, bytes: readHandle(h) };
      failure ??= lastError();
    }
    if (failure === undefined) return null;
    // Listed but not given: a DIB the system was to synthesise (from CF_BITMAP) and could not.
    throw win32Error("GetClipboardData", failure, {
      context: u.IsClipboardFormatAvailable(CF_BITMAP)
        ? "Cannot read the clipboard's image: the system did not convert its CF_BITMAP to a DIB " +
          "(Wine cannot for a DIB section that another process put there)"
        : "Cannot read the clipboard's image: CF_DIB is listed but the system did not give it",
    });
  });
  if (found === null) return null;
  if (found.id === pngId) {
    if (!hasPngSignature(found.bytes)) {
      throw new ClipboardFormatError(PNG_FORMAT, "no PNG signature");
    }
    return trimPng(found.bytes);
  }
  return rgbaToPng(dibToRgba(found.bytes, found.id === CF_DIBV5 ? "CF_DIBV5" : "CF_DIB"));
}

/**
 * Files on the clipboard (copied or cut in a file manager).
 *
 * @example Tell a cut from a copy
 * ```ts
 * import { readFiles } from "./clipboard.ts";
 * const files = await readFiles();
 * if (files?.effect === "move") console.log("cut:", files.paths);
 * ```
 */
export interface ClipboardFiles {
  /** The paths, in order. */
  paths: string[];
  /** What the writer asked a paste to do ("Preferred DropEffect"), when it said. */
  effect?: "copy" | "move" | "link";
}

/**
 * Options of {@linkcode writeFiles} and {@linkcode fileItems}.
 *
 * @example Cut, not copy
 * ```ts
 * import { writeFiles } from "./clipboard.ts";
 * await writeFiles(["C:\\data\\report.txt"], { effect: "move" });
 * ```
 */
export interface FileListOptions {
  /** What a paste should do: `"copy"` (default) or `"move"` (a cut). */
  effect?: "copy" | "move";
}

const pathsSchema = z.array(
  z.string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(32_767, { error: "must be at most 32,767 characters" })
    .refine((p) => !p.includes("\0"), { error: "must not contain NUL" })
    .refine((p) => /^(?:[A-Za-z]:[\\/]|\\\\)/.test(p), {
      error: 'must be an absolute Windows path ("C:\\..." or "\\\\server\\share\\...")',
    }),
  { error: "must be an array of paths" },
).min(1, { error: "must hold at least one path" }).max(65_536, { error: "too many paths" });
const fileOptionsSchema = z.object({
  effect: z.enum(["copy", "move"], { error: 'must be "copy" or "move"' }).optional(),
}).strict().optional();

/**
 * The clipboard items that carry a file list: `CF_HDROP` (a `DROPFILES` with wide names) and
 * "Preferred DropEffect".
 *
 * @param paths Absolute paths.
 * @param options Copy or move.
 * @returns The items, for {@linkcode write}.
 * @throws {TypeError} For a path that is empty, relative or contains NUL.
 *
 * @example Files and their names as text in one set
 * ```ts
 * import { fileItems, write } from "./clipboard.ts";
 * const paths = ["C:\\data\\a.txt", "C:\\data\\b.txt"];
 * await write([...fileItems(paths), { format: "CF_UNICODETEXT", data: paths.join("\r\n") }]);
 * ```
 */
export function fileItems(paths: string[], options?: FileListOptions): ClipboardItem[] {
  const list = parseArg(pathsSchema, paths, "paths");
  const effect = parseArg(fileOptionsSchema, options, "options")?.effect ?? "copy";
  return [
    { format: CF_HDROP, data: encodeFileList(list) },
    {
      format: DROP_EFFECT_FORMAT,
      data: new Uint8Array(new Uint32Array([DROPEFFECT[effect]]).buffer),
    },
  ];
}

/**
 * Puts a file list on the clipboard, as a file manager's copy (or, with `effect: "move"`, cut)
 * does.
 *
 * @param paths Absolute paths.
 * @param options Copy or move, retry timeout and AbortSignal.
 * @throws {TypeError} For a bad path.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Copy two files
 * ```ts
 * import { writeFiles } from "./clipboard.ts";
 * await writeFiles(["C:\\data\\a.txt", "C:\\data\\b.txt"]);
 * ```
 */
export async function writeFiles(
  paths: string[],
  options: FileListOptions & ClipboardOptions = {},
): Promise<void> {
  const { effect, ...rest } = options ?? {};
  return await write(fileItems(paths, effect === undefined ? {} : { effect }), rest);
}

/**
 * Reads the file list on the clipboard (`CF_HDROP`), and whether it was a copy or a cut.
 *
 * @param options Retry timeout and AbortSignal.
 * @returns The paths and effect, or `null` when the clipboard holds no files.
 * @throws {ClipboardFormatError} When the `DROPFILES` data runs past its end.
 * @throws {Win32Error} When the clipboard stays held by another process.
 *
 * @example Print copied files
 * ```ts
 * import { readFiles } from "./clipboard.ts";
 * for (const path of (await readFiles())?.paths ?? []) console.log(path);
 * ```
 */
export async function readFiles(options?: ClipboardOptions): Promise<ClipboardFiles | null> {
  const effectId = registerFormat(DROP_EFFECT_FORMAT);
  const found = await withClipboard(options, "read files", () => {
    const list = readFormat(CF_HDROP);
    return list === null ? null : { list, effect: readFormat(effectId) };
  });
  if (found === null) return null;
  const paths = decodeFileList(found.list);
  let effect: ClipboardFiles["effect"];
  if (found.effect !== null && found.effect.length >= 4) {
    const value = new DataView(found.effect.buffer, found.effect.byteOffset, 4).getUint32(0, true);
    // a cut says move (often with copy's bit too); link alone is a link
    effect = value & DROPEFFECT.move
      ? "move"
      : value & DROPEFFECT.copy
      ? "copy"
      : value & DROPEFFECT.link
      ? "link"
      : undefined;
  }
  return effect === undefined ? { paths } : { paths, effect };
}

/**
 * The clipboard's sequence number (`GetClipboardSequenceNumber`): it changes with every change.
 *
 * @returns The number.
 *
 * @example Tell whether the clipboard changed
 * ```ts
 * import { sequenceNumber } from "./clipboard.ts";
 * const before = sequenceNumber();
 * ```
 */
export function sequenceNumber(): number {
  return user32().GetClipboardSequenceNumber();
}

/**
 * A change of the clipboard's contents.
 *
 * @example Log each change's sequence number
 * ```ts
 * import { type ClipboardChange, watch } from "./clipboard.ts";
 * for await (const change of watch()) {
 *   const { sequence }: ClipboardChange = change;
 *   console.log(`clipboard change #${sequence}`);
 * }
 * ```
 */
export interface ClipboardChange {
  /** The clipboard's sequence number right after the change. */
  sequence: number;
}

/**
 * Options of {@linkcode watch}.
 *
 * @example Watch for one minute
 * ```ts
 * import { watch } from "./clipboard.ts";
 * try {
 *   for await (const change of watch({ signal: AbortSignal.timeout(60_000) })) {
 *     console.log(change.sequence);
 *   }
 * } catch (e) {
 *   if (!(e instanceof DOMException && e.name === "TimeoutError")) throw e;
 * }
 * ```
 */
export interface WatchOptions {
  /** Ends the iteration (with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * Watches the clipboard: yields once per change made by any process (`WM_CLIPBOARDUPDATE` to a
 * window registered with `AddClipboardFormatListener`), from the call on. Read the new contents
 * with {@linkcode readText} or {@linkcode read}. Breaking out of the loop (or the signal) stops the
 * watch and releases the window.
 *
 * @param options An AbortSignal.
 * @returns An async iterator of changes.
 * @throws {Win32Error} When the listener cannot be registered.
 *
 * @example Print the text after each change
 * ```ts
 * import { readText, watch } from "./clipboard.ts";
 * for await (const _change of watch()) console.log(await readText());
 * ```
 */
export function watch(options: WatchOptions = {}): AsyncIterableIterator<ClipboardChange> {
  const signal = parseArg(
    z.object({ signal: signalSchema }).strict(),
    options,
    "options",
  ).signal;
  signal?.throwIfAborted();
  const queue = new AsyncQueue<ClipboardChange>();
  const u = user32();
  // On the window thread (see the module doc): it adds the listener when it creates the window
  // and removes it when it destroys it.
  const window = new ThreadWindow({
    messageOnly: true,
    messages: [WM_CLIPBOARDUPDATE],
    clipboardListener: true,
    // A posted message: its reply is not read, so the window thread gives it at once.
    immediate: { messages: true },
    onError: (e) => queue.fail(e),
    procedure: (message) => {
      if (message !== WM_CLIPBOARDUPDATE) return undefined;
      queue.push({ sequence: u.GetClipboardSequenceNumber() });
      return 0n;
    },
  });
  const stop = () => {
    if (window.closed) return;
    window.close();
    queue.close();
  };
  return queue.iterate(signal, stop);
}
