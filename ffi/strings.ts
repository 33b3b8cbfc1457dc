/**
 * UTF-16 strings for the `W` functions of the Win32 API.
 *
 * JavaScript strings are already sequences of UTF-16 code units, so a string becomes a `LPCWSTR`
 * by copying each code unit into a `Uint16Array` and adding a NUL: astral characters stay
 * surrogate pairs and non-ASCII text survives. (Encoding through `TextEncoder` would produce
 * UTF-8 bytes, which is wrong for every `W` function.)
 *
 * @module
 */

/**
 * Encodes a string as a NUL-terminated UTF-16 buffer (`LPCWSTR`).
 *
 * @param text The string.
 * @returns `text.length + 1` code units, the last one 0.
 *
 * @example Encode a name
 * ```ts
 * import { wide } from "./strings.ts";
 * const name = wide("héllo ✓"); // Uint16Array [104, 233, 108, 108, 111, 32, 10003, 0]
 * ```
 */
export function wide(text: string): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Like {@linkcode wide}, but `null` and `undefined` stay `null` (an absent `LPCWSTR`).
 *
 * @param text The string, or nothing.
 * @returns The buffer, or `null`.
 *
 * @example An optional name
 * ```ts
 * import { wideOrNull } from "./strings.ts";
 * wideOrNull(undefined); // null
 * ```
 */
export function wideOrNull(text: string | null | undefined): Uint16Array<ArrayBuffer> | null {
  return text == null ? null : wide(text);
}

/**
 * Decodes UTF-16 code units up to the first NUL (or the end of the array).
 *
 * @param units The code units.
 * @param length At most this many units are read.
 * @returns The string. Unpaired surrogates are kept as they are.
 *
 * @example Decode a buffer filled by a W function
 * ```ts
 * import { fromWide, wide } from "./strings.ts";
 * fromWide(wide("abc")); // "abc"
 * ```
 */
export function fromWide(units: Uint16Array, length: number = units.length): string {
  let end = 0;
  const limit = Math.min(length, units.length);
  while (end < limit && units[end] !== 0) end++;
  let out = "";
  // String.fromCharCode takes arguments; chunk to stay far below the engine's argument limit.
  for (let i = 0; i < end; i += 8192) {
    out += String.fromCharCode(...units.subarray(i, Math.min(end, i + 8192)));
  }
  return out;
}

/**
 * Reads a NUL-terminated UTF-16 string from foreign memory.
 *
 * @param pointer The first code unit, or `null` (read as `""`).
 * @param maxUnits Stop after this many units if no NUL came first.
 * @returns The string.
 *
 * @example Read a string a Win32 call returned
 * ```ts
 * import { readWide } from "./strings.ts";
 * readWide(null); // ""
 * ```
 */
export function readWide(pointer: Deno.PointerValue, maxUnits: number = 1 << 20): string {
  if (pointer === null) return "";
  const view = new Deno.UnsafePointerView(pointer);
  let end = 0;
  while (end < maxUnits && view.getUint16(end * 2) !== 0) end++;
  if (end === 0) return "";
  const units = new Uint16Array(view.getArrayBuffer(end * 2));
  return fromWide(units, end);
}
