/**
 * The byte layouts of the clipboard's rich formats, with no Win32 call: CF_HTML ("HTML Format"),
 * device-independent bitmaps (CF_DIB, CF_DIBV5) to and from PNG, and file lists (CF_HDROP's
 * `DROPFILES`). The clipboard module reads and writes the bytes; this one builds and checks them.
 *
 * Whatever another program put on the clipboard is untrusted: every offset, size and count read
 * here is checked against the data's length before use, and a violation is a
 * `ClipboardFormatError` that says what was wrong, never an out-of-range read.
 *
 * @module
 */
import { convertIndexedToRgb, decode, encode, hasPngSignature } from "fast-png";
// A cycle, on purpose: the error and the HTML type are public, so they live in the clipboard
// module; neither module uses the other's exports before it has been evaluated.
import { ClipboardFormatError, type ClipboardHtml } from "./clipboard.ts";

// ---- CF_HTML ----

const HTML = "HTML Format";
const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * Builds CF_HTML bytes: a header of ASCII `Key:value` lines with byte offsets (10 digits each, so
 * the header's length does not depend on them), then the fragment wrapped in a minimal document
 * with the `<!--StartFragment-->`/`<!--EndFragment-->` markers. Offsets count UTF-8 bytes from
 * the start of the data.
 *
 * @param fragment The HTML to put on the clipboard.
 * @param sourceUrl The page it came from, if any (no line breaks).
 */
export function encodeHtml(fragment: string, sourceUrl?: string): Uint8Array<ArrayBuffer> {
  if (sourceUrl !== undefined && /[\r\n]/.test(sourceUrl)) {
    throw new TypeError('Invalid argument "options.sourceUrl": must not contain line breaks');
  }
  const before = encoder.encode("<html><body>\r\n<!--StartFragment-->");
  const body = encoder.encode(fragment);
  const after = encoder.encode("<!--EndFragment-->\r\n</body></html>");
  const field = (n: number) => String(n).padStart(10, "0");
  const header = (start: number, end: number, fragmentStart: number, fragmentEnd: number) =>
    `Version:0.9\r\nStartHTML:${field(start)}\r\nEndHTML:${field(end)}\r\n` +
    `StartFragment:${field(fragmentStart)}\r\nEndFragment:${field(fragmentEnd)}\r\n` +
    (sourceUrl === undefined ? "" : `SourceURL:${sourceUrl}\r\n`);
  const headerLength = encoder.encode(header(0, 0, 0, 0)).length;
  const startHtml = headerLength;
  const startFragment = startHtml + before.length;
  const endFragment = startFragment + body.length;
  const endHtml = endFragment + after.length;
  const out = new Uint8Array(endHtml + 1); // a NUL at the end, as most writers add
  out.set(encoder.encode(header(startHtml, endHtml, startFragment, endFragment)));
  out.set(before, startHtml);
  out.set(body, startFragment);
  out.set(after, endFragment);
  return out;
}

/**
 * Parses CF_HTML bytes. The data may end in NULs (or be padded by the allocator): offsets are
 * checked against the length before the NULs.
 *
 * @param data The bytes of the "HTML Format" clipboard format.
 * @throws {ClipboardFormatError} For a header without the offsets, or offsets out of order or past
 *   the end.
 */
export function decodeHtml(data: Uint8Array): ClipboardHtml {
  let length = data.indexOf(0);
  if (length < 0) length = data.length;
  // The header is ASCII lines; it ends where StartHTML (or StartFragment) says the HTML begins.
  const headerText = utf8.decode(data.subarray(0, Math.min(length, 4096)));
  const fields = new Map<string, string>();
  for (const line of headerText.split(/\r\n|\r|\n/)) {
    const match = line.match(/^([A-Za-z]+):(.*)$/);
    if (!match) break;
    fields.set(match[1].toLowerCase(), match[2].trim());
  }
  const offset = (key: string, optional: boolean): number | undefined => {
    const text = fields.get(key.toLowerCase());
    if (text === undefined) {
      if (optional) return undefined;
      throw new ClipboardFormatError(HTML, `the header has no ${key}`);
    }
    if (!/^-?\d{1,10}$/.test(text)) {
      throw new ClipboardFormatError(HTML, `${key} is not a number: "${text.slice(0, 20)}"`);
    }
    const n = Number(text);
    if (n === -1 && optional) return undefined; // "no context", as the format allows
    if (n < 0 || n > length) {
      throw new ClipboardFormatError(HTML, `${key} (${n}) is past the end of the data (${length})`);
    }
    return n;
  };
  const startFragment = offset("StartFragment", false)!;
  const endFragment = offset("EndFragment", false)!;
  const startHtml = offset("StartHTML", true) ?? startFragment;
  const endHtml = offset("EndHTML", true) ?? endFragment;
  if (!(startHtml <= startFragment && startFragment <= endFragment && endFragment <= endHtml)) {
    throw new ClipboardFormatError(
      HTML,
      `offsets out of order: StartHTML ${startHtml}, StartFragment ${startFragment}, ` +
        `EndFragment ${endFragment}, EndHTML ${endHtml}`,
    );
  }
  const sourceUrl = fields.get("sourceurl");
  return {
    fragment: utf8.decode(data.subarray(startFragment, endFragment)),
    html: utf8.decode(data.subarray(startHtml, endHtml)),
    ...(sourceUrl ? { sourceUrl } : {}),
  };
}

// ---- images ----

/** An image as 8-bit RGBA pixels, top row first. */
export interface RgbaImage {
  width: number;
  height: number;
  /** `width * height * 4` bytes: red, green, blue, alpha. */
  data: Uint8Array;
}

/** The largest image (in pixels) accepted from the clipboard or a PNG: 2^28, 1 GiB of RGBA. */
export const MAX_IMAGE_PIXELS = 1 << 28;

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;
const BITMAPINFOHEADER_SIZE = 40;
const BITMAPV4HEADER_SIZE = 108;
const BITMAPV5HEADER_SIZE = 124;
const LCS_SRGB = 0x7352_4742; // 'sRGB'
const LCS_GM_IMAGES = 4;

/** Decodes PNG bytes (any bit depth and colour type) to 8-bit RGBA. */
export function pngToRgba(png: Uint8Array): RgbaImage {
  if (!hasPngSignature(png)) throw new ClipboardFormatError("PNG", "no PNG signature");
  let decoded;
  try {
    decoded = decode(png);
  } catch (e) {
    throw new ClipboardFormatError("PNG", (e as Error).message);
  }
  const { width, height } = decoded;
  if (width < 1 || height < 1 || width * height > MAX_IMAGE_PIXELS) {
    throw new ClipboardFormatError("PNG", `unsupported size ${width}×${height}`);
  }
  const pixels = width * height;
  const out = new Uint8Array(pixels * 4);
  if (decoded.palette) {
    const rgb = convertIndexedToRgb(decoded);
    const channels = decoded.palette[0]?.length ?? 3;
    for (let i = 0; i < pixels; i++) {
      out[i * 4] = rgb[i * channels];
      out[i * 4 + 1] = rgb[i * channels + 1];
      out[i * 4 + 2] = rgb[i * channels + 2];
      out[i * 4 + 3] = channels === 4 ? rgb[i * channels + 3] : 255;
    }
    return { width, height, data: out };
  }
  const { channels, depth, data } = decoded;
  // one sample as 8 bits: 16-bit samples keep their high byte; 1/2/4-bit ones (grey only) are
  // packed per row and scaled up
  const max = (1 << depth) - 1;
  const rowBytes = Math.ceil(width * channels * depth / 8);
  const sample = (x: number, y: number, c: number): number => {
    const index = x * channels + c;
    if (depth === 8) return data[y * width * channels + index];
    if (depth === 16) return data[y * width * channels + index] >> 8;
    const bit = index * depth;
    const byte = data[y * rowBytes + (bit >> 3)];
    const value = (byte >> (8 - depth - (bit & 7))) & max;
    return Math.round(value * 255 / max);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (channels >= 3) {
        out[o] = sample(x, y, 0);
        out[o + 1] = sample(x, y, 1);
        out[o + 2] = sample(x, y, 2);
        out[o + 3] = channels === 4 ? sample(x, y, 3) : 255;
      } else {
        out[o] = out[o + 1] = out[o + 2] = sample(x, y, 0);
        out[o + 3] = channels === 2 ? sample(x, y, 1) : 255;
      }
    }
  }
  return { width, height, data: out };
}

/** Encodes 8-bit RGBA as PNG bytes. */
export function rgbaToPng(image: RgbaImage): Uint8Array<ArrayBuffer> {
  const png = encode({
    width: image.width,
    height: image.height,
    data: image.data,
    channels: 4,
    depth: 8,
  });
  return new Uint8Array(png);
}

/**
 * Builds a CF_DIBV5 (a `BITMAPV5HEADER`, 32 bits per pixel with an alpha mask, bottom-up rows,
 * sRGB), the format that keeps alpha; the system synthesises CF_DIB and CF_BITMAP from it.
 */
export function rgbaToDibV5(image: RgbaImage): Uint8Array<ArrayBuffer> {
  const { width, height, data } = image;
  const stride = width * 4;
  const out = new Uint8Array(BITMAPV5HEADER_SIZE + stride * height);
  const v = new DataView(out.buffer);
  v.setUint32(0, BITMAPV5HEADER_SIZE, true);
  v.setInt32(4, width, true);
  v.setInt32(8, height, true); // positive: bottom-up
  v.setUint16(12, 1, true); // planes
  v.setUint16(14, 32, true); // bits per pixel
  v.setUint32(16, BI_BITFIELDS, true);
  v.setUint32(20, stride * height, true);
  v.setInt32(24, 2835, true); // 72 dpi, in pixels per metre
  v.setInt32(28, 2835, true);
  v.setUint32(40, 0x00ff_0000, true); // red mask
  v.setUint32(44, 0x0000_ff00, true);
  v.setUint32(48, 0x0000_00ff, true);
  v.setUint32(52, 0xff00_0000, true); // alpha mask
  v.setUint32(56, LCS_SRGB, true);
  v.setUint32(108, LCS_GM_IMAGES, true);
  for (let y = 0; y < height; y++) {
    const row = BITMAPV5HEADER_SIZE + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 4;
      const d = row + x * 4;
      out[d] = data[s + 2];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s];
      out[d + 3] = data[s + 3];
    }
  }
  return out;
}

/** The shift and width of a colour mask (0x00ff0000 is shift 16, 8 bits). */
function maskShape(mask: number): { shift: number; bits: number } {
  if (mask === 0) return { shift: 0, bits: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (shift + bits < 32 && ((mask >>> (shift + bits)) & 1) === 1) bits++;
  return { shift, bits };
}

/**
 * Decodes a packed DIB (CF_DIB or CF_DIBV5: a `BITMAPINFOHEADER`, `BITMAPV4HEADER` or
 * `BITMAPV5HEADER`, then masks or a colour table, then the rows) of 24 or 32 bits per pixel,
 * bottom-up or top-down, `BI_RGB` or `BI_BITFIELDS`, to RGBA. A 32-bit `BI_RGB` bitmap whose
 * alpha bytes are all 0 is opaque (the alpha byte is unused there, by convention).
 *
 * @param dib The format's bytes.
 * @param format The format's name, for errors.
 * @throws {ClipboardFormatError} When the header's sizes disagree with the data's length, or for
 *   a layout this does not decode (compressed or palette bitmaps).
 */
export function dibToRgba(dib: Uint8Array, format = "CF_DIB"): RgbaImage {
  const fail = (message: string) => new ClipboardFormatError(format, message);
  if (dib.length < BITMAPINFOHEADER_SIZE) {
    throw fail(`${dib.length} bytes is shorter than a bitmap header`);
  }
  const v = new DataView(dib.buffer, dib.byteOffset, dib.byteLength);
  const headerSize = v.getUint32(0, true);
  if (
    headerSize !== BITMAPINFOHEADER_SIZE && headerSize !== BITMAPV4HEADER_SIZE &&
    headerSize !== BITMAPV5HEADER_SIZE && headerSize !== 52 && headerSize !== 56
  ) {
    throw fail(`unknown header size ${headerSize}`);
  }
  if (headerSize > dib.length) throw fail(`the header (${headerSize}) is past the end`);
  const width = v.getInt32(4, true);
  const rawHeight = v.getInt32(8, true);
  const bitCount = v.getUint16(14, true);
  const compression = v.getUint32(16, true);
  const colorsUsed = v.getUint32(32, true);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  if (width < 1 || height < 1 || width * height > MAX_IMAGE_PIXELS) {
    throw fail(`unsupported size ${width}×${rawHeight}`);
  }
  if (bitCount !== 24 && bitCount !== 32) {
    throw fail(`${bitCount} bits per pixel (24 and 32 are supported)`);
  }
  let masks: [number, number, number, number] = [0x00ff_0000, 0x0000_ff00, 0x0000_00ff, 0];
  let offset = headerSize;
  if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
    if (bitCount !== 32) throw fail("BI_BITFIELDS needs 32 bits per pixel here");
    const inHeader = headerSize >= 52;
    const count = compression === BI_ALPHABITFIELDS ? 4 : 3;
    const at = inHeader ? 40 : headerSize;
    if (at + 4 * (inHeader && headerSize >= 56 ? 4 : count) > dib.length) {
      throw fail("the colour masks are past the end");
    }
    masks = [
      v.getUint32(at, true),
      v.getUint32(at + 4, true),
      v.getUint32(at + 8, true),
      (inHeader && headerSize >= 56) || count === 4 ? v.getUint32(at + 12, true) : 0,
    ];
    if (!inHeader) offset += 4 * count;
  } else if (compression !== BI_RGB) {
    throw fail(`compression ${compression} (BI_RGB and BI_BITFIELDS are supported)`);
  }
  if (colorsUsed > 256) throw fail(`a colour table of ${colorsUsed} entries`);
  offset += colorsUsed * 4; // a colour table is allowed (unused) before 24/32-bit rows
  const stride = Math.floor((width * bitCount + 31) / 32) * 4;
  const needed = offset + stride * height;
  if (needed > dib.length) {
    throw fail(
      `${width}×${height} at ${bitCount} bits needs ${needed} bytes, the data has ${dib.length}`,
    );
  }
  const shapes = masks.map(maskShape);
  const channel = (pixel: number, i: number) => {
    const { shift, bits } = shapes[i];
    if (bits === 0) return 255; // no alpha mask: opaque
    const value = (pixel >>> shift) % 2 ** bits;
    return bits === 8 ? value : Math.round(value * 255 / (2 ** bits - 1));
  };
  const out = new Uint8Array(width * height * 4);
  let anyAlpha = false;
  for (let y = 0; y < height; y++) {
    const row = offset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (bitCount === 24) {
        const p = row + x * 3;
        out[o] = dib[p + 2];
        out[o + 1] = dib[p + 1];
        out[o + 2] = dib[p];
        out[o + 3] = 255;
      } else if (compression === BI_RGB) {
        const p = row + x * 4;
        out[o] = dib[p + 2];
        out[o + 1] = dib[p + 1];
        out[o + 2] = dib[p];
        out[o + 3] = dib[p + 3];
        if (dib[p + 3] !== 0) anyAlpha = true;
      } else {
        const pixel = v.getUint32(row + x * 4, true);
        out[o] = channel(pixel, 0);
        out[o + 1] = channel(pixel, 1);
        out[o + 2] = channel(pixel, 2);
        out[o + 3] = channel(pixel, 3);
      }
    }
  }
  if (bitCount === 32 && compression === BI_RGB && !anyAlpha) {
    for (let i = 3; i < out.length; i += 4) out[i] = 255;
  }
  return { width, height, data: out };
}

// ---- file lists ----

const HDROP = "CF_HDROP";
const DROPFILES_SIZE = 20;

/**
 * Builds CF_HDROP bytes: a `DROPFILES` header (`pFiles` = 20, `fWide` = 1) and the paths as
 * NUL-terminated UTF-16 strings, with one more NUL at the end.
 *
 * @param paths Absolute paths; none may be empty or contain NUL.
 */
export function encodeFileList(paths: readonly string[]): Uint8Array<ArrayBuffer> {
  let units = 1;
  for (const path of paths) units += path.length + 1;
  const out = new Uint8Array(DROPFILES_SIZE + units * 2);
  const v = new DataView(out.buffer);
  v.setUint32(0, DROPFILES_SIZE, true);
  v.setUint32(16, 1, true); // fWide
  let at = DROPFILES_SIZE;
  for (const path of paths) {
    for (let i = 0; i < path.length; i++, at += 2) v.setUint16(at, path.charCodeAt(i), true);
    at += 2; // its NUL
  }
  return out;
}

/**
 * Parses CF_HDROP bytes: the `DROPFILES` header, then wide (or, with `fWide` 0, ANSI, read as
 * Windows-1252) NUL-terminated names up to an empty one.
 *
 * @throws {ClipboardFormatError} When `pFiles` points outside the data or the list does not end
 *   before the data does.
 */
export function decodeFileList(data: Uint8Array): string[] {
  if (data.length < DROPFILES_SIZE) {
    throw new ClipboardFormatError(HDROP, `${data.length} bytes is shorter than DROPFILES`);
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const start = v.getUint32(0, true);
  const wideNames = v.getUint32(16, true) !== 0;
  if (start < DROPFILES_SIZE || start >= data.length) {
    throw new ClipboardFormatError(
      HDROP,
      `the file list's offset (${start}) is outside the data (${data.length} bytes)`,
    );
  }
  const paths: string[] = [];
  const ansi = new TextDecoder("windows-1252");
  const utf16 = new TextDecoder("utf-16le");
  let at = start;
  const unit = wideNames ? 2 : 1;
  for (;;) {
    let end = at;
    while (end + unit <= data.length && (wideNames ? v.getUint16(end, true) : data[end]) !== 0) {
      end += unit;
    }
    if (end + unit > data.length) {
      throw new ClipboardFormatError(HDROP, "the file list runs past the end of the data");
    }
    if (end === at) return paths; // the empty name: the end of the list
    paths.push((wideNames ? utf16 : ansi).decode(data.subarray(at, end)));
    at = end + unit;
  }
}
