/**
 * Decoders for what a parallel-port driver answers, with no Win32 call: the status byte of
 * `IOCTL_PAR_QUERY_INFORMATION` ({@linkcode decodeParallelStatus}) and the IEEE 1284 device ID of
 * `IOCTL_PAR_QUERY_DEVICE_ID` / `IOCTL_PAR_QUERY_RAW_DEVICE_ID` ({@linkcode decodeDeviceIdBuffer},
 * {@linkcode decodeRawDeviceId}, {@linkcode parseDeviceId}).
 *
 * {@linkcode SerialPort.parallelStatus} and {@linkcode SerialPort.deviceId} in `serial.ts` issue
 * the requests and use these functions; they are separate so that the byte layouts are tested on
 * any platform.
 *
 * The bytes come from a driver and, behind it, from the device on the cable: every length is
 * checked against the buffer before use, and a device ID is at most 64 KiB.
 *
 * @example Decode a status byte and a device ID
 * ```ts
 * import { decodeParallelStatus, parseDeviceId } from "./parallel_codec.ts";
 * decodeParallelStatus(0x80).selected; // true
 * parseDeviceId("MFG:Acme;MDL:Jet 9;CMD:PCL,PJL;").commandSet; // ["PCL", "PJL"]
 * ```
 *
 * @module
 */

/** `PARALLEL_INIT` (ntddpar.h): the INIT line is asserted. */
export const PARALLEL_INIT = 0x01;
/** `PARALLEL_AUTOFEED`: the AUTOFEED line is asserted. */
export const PARALLEL_AUTOFEED = 0x02;
/** `PARALLEL_PAPER_EMPTY`: the device reports paper out (PError). */
export const PARALLEL_PAPER_EMPTY = 0x04;
/** `PARALLEL_OFF_LINE`: the device is off line (a fault, or not selected). */
export const PARALLEL_OFF_LINE = 0x08;
/** `PARALLEL_POWER_OFF`: the device seems powered off. */
export const PARALLEL_POWER_OFF = 0x10;
/** `PARALLEL_NOT_CONNECTED`: no device seems connected. */
export const PARALLEL_NOT_CONNECTED = 0x20;
/** `PARALLEL_BUSY`: the device is busy (BUSY line). */
export const PARALLEL_BUSY = 0x40;
/** `PARALLEL_SELECTED`: the device is selected (SELECT line). */
export const PARALLEL_SELECTED = 0x80;

/** The largest device ID a driver may return (the documented limit of `IOCTL_PAR_QUERY_DEVICE_ID`). */
export const MAX_DEVICE_ID_BYTES = 0x10000;

/**
 * A parallel port's status as `IOCTL_PAR_QUERY_INFORMATION` reports it (`PAR_QUERY_INFORMATION`,
 * one byte of `PARALLEL_*` flags).
 *
 * The request has no separate "error" flag: the driver reports a device fault (the nFault line)
 * as off line, powered off or not connected, depending on the other lines. {@linkcode error} is
 * the summary of those and paper out: the device cannot print now.
 *
 * @example Tell the user why the printer does not print
 * ```ts
 * import { decodeParallelStatus, type ParallelStatus } from "./parallel_codec.ts";
 * const status: ParallelStatus = decodeParallelStatus(0x0c);
 * if (status.paperEmpty) console.log("out of paper");
 * ```
 */
export interface ParallelStatus {
  /** The raw status byte. */
  raw: number;
  /** `PARALLEL_BUSY`. */
  busy: boolean;
  /** `PARALLEL_PAPER_EMPTY`. */
  paperEmpty: boolean;
  /** `PARALLEL_SELECTED`. */
  selected: boolean;
  /** `PARALLEL_OFF_LINE`. */
  offLine: boolean;
  /** `PARALLEL_POWER_OFF`. */
  powerOff: boolean;
  /** `PARALLEL_NOT_CONNECTED`. */
  notConnected: boolean;
  /** `PARALLEL_INIT`. */
  init: boolean;
  /** `PARALLEL_AUTOFEED`. */
  autoFeed: boolean;
  /** Any of paper empty, off line, powered off or not connected. */
  error: boolean;
}

/**
 * Decodes the `Status` byte of `PAR_QUERY_INFORMATION`.
 *
 * @param status The byte (0 to 255).
 * @returns The flags.
 * @throws {RangeError} When `status` is not a byte.
 *
 * @example A busy, selected printer
 * ```ts
 * import { decodeParallelStatus } from "./parallel_codec.ts";
 * const s = decodeParallelStatus(0xc0);
 * console.log(s.busy, s.selected, s.error); // true true false
 * ```
 */
export function decodeParallelStatus(status: number): ParallelStatus {
  if (!Number.isInteger(status) || status < 0 || status > 0xff) {
    throw new RangeError(`Invalid argument "status": must be a byte (0 to 255), got ${status}`);
  }
  const has = (bit: number) => (status & bit) !== 0;
  return {
    raw: status,
    busy: has(PARALLEL_BUSY),
    paperEmpty: has(PARALLEL_PAPER_EMPTY),
    selected: has(PARALLEL_SELECTED),
    offLine: has(PARALLEL_OFF_LINE),
    powerOff: has(PARALLEL_POWER_OFF),
    notConnected: has(PARALLEL_NOT_CONNECTED),
    init: has(PARALLEL_INIT),
    autoFeed: has(PARALLEL_AUTOFEED),
    error: has(
      PARALLEL_PAPER_EMPTY | PARALLEL_OFF_LINE | PARALLEL_POWER_OFF |
        PARALLEL_NOT_CONNECTED,
    ),
  };
}

/**
 * An IEEE 1284 device ID, parsed: the `KEY:value;` pairs with the keys every printer sends given
 * their own fields.
 *
 * @example Pick the printer language
 * ```ts
 * import { type DeviceId, parseDeviceId } from "./parallel_codec.ts";
 * const id: DeviceId = parseDeviceId("MANUFACTURER:Acme;MODEL:Jet 9;COMMAND SET:PCL,PJL;");
 * console.log(id.manufacturer, id.model, id.commandSet.includes("PJL"));
 * ```
 */
export interface DeviceId {
  /** The whole string, as the device sent it. */
  raw: string;
  /** `MFG` (or `MANUFACTURER`); `undefined` when absent. */
  manufacturer?: string;
  /** `MDL` (or `MODEL`); `undefined` when absent. */
  model?: string;
  /** `CMD` (or `COMMAND SET`), split at commas; empty when absent. */
  commandSet: string[];
  /** `CLS` (or `CLASS`), e.g. `PRINTER`; `undefined` when absent. */
  class?: string;
  /** `DES` (or `DESCRIPTION`); `undefined` when absent. */
  description?: string;
  /** Every pair, keys upper-cased and trimmed, in the order sent; a repeated key keeps its first value. */
  fields: Record<string, string>;
}

const ALIASES: Record<string, string> = {
  MANUFACTURER: "MFG",
  MODEL: "MDL",
  "COMMAND SET": "CMD",
  CLASS: "CLS",
  DESCRIPTION: "DES",
};

/**
 * Parses an IEEE 1284 device ID string: `KEY:value;` pairs (keys compared without case; the long
 * forms `MANUFACTURER`, `MODEL`, `COMMAND SET`, `CLASS`, `DESCRIPTION` are taken for the short
 * ones). A piece with no colon is skipped; a last pair without its `;` is kept.
 *
 * @param text The device ID, without the two length bytes.
 * @returns The parsed ID.
 * @throws {TypeError} When `text` is not a string.
 * @throws {RangeError} When `text` is longer than 64 KiB.
 *
 * @example Parse a printer's ID
 * ```ts
 * import { parseDeviceId } from "./parallel_codec.ts";
 * const id = parseDeviceId("MFG:Hewlett-Packard;CMD:PJL,PCL;MDL:LaserJet 4;CLS:PRINTER;");
 * console.log(id.manufacturer, id.model); // "Hewlett-Packard" "LaserJet 4"
 * ```
 */
export function parseDeviceId(text: string): DeviceId {
  if (typeof text !== "string") {
    throw new TypeError('Invalid argument "text": must be a string');
  }
  if (text.length > MAX_DEVICE_ID_BYTES) {
    throw new RangeError(
      `Invalid argument "text": a device ID is at most ${MAX_DEVICE_ID_BYTES} characters, got ${text.length}`,
    );
  }
  const fields: Record<string, string> = {};
  for (const piece of text.split(";")) {
    const colon = piece.indexOf(":");
    if (colon <= 0) continue;
    const key = piece.slice(0, colon).trim().toUpperCase();
    if (key === "" || Object.hasOwn(fields, key)) continue;
    fields[key] = piece.slice(colon + 1).trim(); // upper-cased: never `__proto__`
  }
  const get = (short: string): string | undefined => {
    if (Object.hasOwn(fields, short)) return fields[short];
    for (const [long, alias] of Object.entries(ALIASES)) {
      if (alias === short && Object.hasOwn(fields, long)) return fields[long];
    }
    return undefined;
  };
  const cmd = get("CMD");
  return {
    raw: text,
    manufacturer: get("MFG"),
    model: get("MDL"),
    commandSet: cmd === undefined ? [] : cmd.split(",").map((s) => s.trim()).filter((s) => s),
    class: get("CLS"),
    description: get("DES"),
    fields,
  };
}

// Device IDs are 7-bit ASCII by the standard; latin1 keeps any other byte visible, one character
// per byte, instead of failing on it.
const latin1 = new TextDecoder("latin1");

/**
 * Decodes the output buffer of `IOCTL_PAR_QUERY_DEVICE_ID`: the device ID and a NUL, `count`
 * bytes of it filled (the request's `Information`, i.e. `lpBytesReturned`). The text ends at the
 * first NUL within `count`.
 *
 * @param buffer The output buffer.
 * @param count The bytes the driver reported; must be within the buffer.
 * @returns The parsed ID.
 * @throws {RangeError} When `count` is negative, past the buffer or over 64 KiB.
 *
 * @example The buffer a driver fills
 * ```ts
 * import { decodeDeviceIdBuffer } from "./parallel_codec.ts";
 * const bytes = new TextEncoder().encode("MFG:Acme;MDL:Jet 9;\0");
 * decodeDeviceIdBuffer(bytes, bytes.length).model; // "Jet 9"
 * ```
 */
export function decodeDeviceIdBuffer(buffer: Uint8Array, count: number): DeviceId {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError('Invalid argument "buffer": must be a Uint8Array');
  }
  if (!Number.isInteger(count) || count < 0 || count > buffer.length) {
    throw new RangeError(
      `Invalid argument "count": must be 0 to the buffer's ${buffer.length} bytes, got ${count}`,
    );
  }
  if (count > MAX_DEVICE_ID_BYTES + 1) {
    throw new RangeError(
      `Invalid argument "count": a device ID is at most ${MAX_DEVICE_ID_BYTES} bytes, got ${count}`,
    );
  }
  const filled = buffer.subarray(0, count);
  const nul = filled.indexOf(0);
  return parseDeviceId(latin1.decode(nul < 0 ? filled : filled.subarray(0, nul)));
}

/**
 * Decodes a device ID as it comes over the cable (and from `IOCTL_PAR_QUERY_RAW_DEVICE_ID`): two
 * length bytes, most significant first, counting themselves, then the text.
 *
 * @param bytes The raw ID.
 * @returns The parsed ID.
 * @throws {RangeError} When fewer than two bytes are given, when the length is below 2, or when
 * it claims more bytes than were given.
 *
 * @example Decode the bytes read in nibble mode
 * ```ts
 * import { decodeRawDeviceId } from "./parallel_codec.ts";
 * const text = new TextEncoder().encode("MFG:Acme;MDL:Jet 9;");
 * const raw = new Uint8Array([0, text.length + 2, ...text]);
 * decodeRawDeviceId(raw).manufacturer; // "Acme"
 * ```
 */
export function decodeRawDeviceId(bytes: Uint8Array): DeviceId {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError('Invalid argument "bytes": must be a Uint8Array');
  }
  if (bytes.length < 2) {
    throw new RangeError(`A raw device ID needs its two length bytes, got ${bytes.length} bytes`);
  }
  const length = (bytes[0] << 8) | bytes[1];
  if (length < 2) {
    throw new RangeError(`A raw device ID's length counts its two length bytes, got ${length}`);
  }
  if (length > bytes.length) {
    throw new RangeError(
      `A raw device ID claims ${length} bytes but only ${bytes.length} were given`,
    );
  }
  const text = bytes.subarray(2, length);
  const nul = text.indexOf(0);
  return parseDeviceId(latin1.decode(nul < 0 ? text : text.subarray(0, nul)));
}
