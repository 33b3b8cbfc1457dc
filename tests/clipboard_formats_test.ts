/**
 * The rich clipboard formats' byte layouts (no Win32 call): CF_HTML, DIBs and PNG, DROPFILES,
 * including what a hostile or broken writer may put there.
 */
import assert from "node:assert/strict";
import { ClipboardFormatError } from "../mechanisms/clipboard.ts";
import {
  decodeFileList,
  decodeHtml,
  dibToRgba,
  encodeFileList,
  encodeHtml,
  pngToRgba,
  rgbaToDibV5,
  rgbaToPng,
} from "../mechanisms/_clipboard_codecs.ts";

const encoder = new TextEncoder();

Deno.test("CF_HTML: built with exact byte offsets, read back, non-ASCII included", () => {
  const fragment = "<b>Grüße</b> ✓ 日本語";
  const bytes = encodeHtml(fragment, "https://example.com/page");
  const text = new TextDecoder().decode(bytes);
  const field = (key: string) => Number(text.match(new RegExp(`${key}:(\\d{10})\\r\\n`))![1]);
  // the offsets count UTF-8 bytes, so they cut the bytes, not the string, at the markers
  const slice = (a: number, b: number) => new TextDecoder().decode(bytes.subarray(a, b));
  assert.equal(slice(field("StartFragment"), field("EndFragment")), fragment);
  assert.match(slice(field("StartHTML"), field("EndHTML")), /^<html><body>.*<\/html>$/s);
  assert.equal(bytes.at(-1), 0, "a NUL at the end");
  assert.match(text, /^Version:0\.9\r\n/);
  assert.deepEqual(decodeHtml(bytes), {
    fragment,
    html: slice(field("StartHTML"), field("EndHTML")),
    sourceUrl: "https://example.com/page",
  });
  assert.throws(() => encodeHtml("x", "a\r\nb"), TypeError);
});

Deno.test("CF_HTML from other writers: -1 context offsets, short numbers, trailing padding", () => {
  const body = "<p>é</p>";
  const head = (start: number, end: number) =>
    `Version:1.0\r\nStartHTML:-1\r\nEndHTML:-1\r\nStartFragment:${start}\r\nEndFragment:${end}\r\n`;
  // unpadded offsets: the header's length depends on them, so settle it
  let start = 0;
  while (encoder.encode(head(start, start + encoder.encode(body).length)).length !== start) {
    start = encoder.encode(head(start, start + encoder.encode(body).length)).length;
  }
  const header = head(start, start + encoder.encode(body).length);
  const bytes = new Uint8Array([...encoder.encode(header + body), 0, 0, 0, 0]);
  assert.deepEqual(decodeHtml(bytes), { fragment: body, html: body });
});

Deno.test("CF_HTML: a malformed header is a clear ClipboardFormatError", () => {
  const cases: [string, RegExp][] = [
    ["Version:0.9\r\nStartHTML:0\r\n<html>", /the header has no StartFragment/],
    ["Version:0.9\r\nStartFragment:abc\r\nEndFragment:1\r\n", /StartFragment is not a number/],
    [
      "Version:0.9\r\nStartFragment:40\r\nEndFragment:99999\r\n",
      /EndFragment \(99999\) is past the end/,
    ],
    ["Version:0.9\r\nStartFragment:50\r\nEndFragment:40\r\n..........", /offsets out of order/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => decodeHtml(encoder.encode(text)), (e: Error) => {
      assert.ok(e instanceof ClipboardFormatError, String(e));
      assert.equal(e.format, "HTML Format");
      assert.match(e.message, /^Malformed HTML Format data on the clipboard: /);
      assert.match(e.message, message);
      return true;
    });
  }
});

/** A 3×2 image with four alpha levels. */
const sample = {
  width: 3,
  height: 2,
  data: new Uint8Array([
    ...[255, 0, 0, 255],
    ...[0, 255, 0, 128],
    ...[0, 0, 255, 0],
    ...[10, 20, 30, 255],
    ...[40, 50, 60, 64],
    ...[70, 80, 90, 200],
  ]),
};

Deno.test("images: RGBA -> CF_DIBV5 -> RGBA and RGBA -> PNG -> RGBA are exact, alpha kept", () => {
  const dib = rgbaToDibV5(sample);
  assert.equal(dib.length, 124 + 3 * 4 * 2);
  const view = new DataView(dib.buffer);
  assert.equal(view.getInt32(8, true), 2, "bottom-up");
  assert.equal(view.getUint32(52, true), 0xff00_0000, "an alpha mask");
  assert.deepEqual(dibToRgba(dib), sample);
  assert.deepEqual(pngToRgba(rgbaToPng(sample)), sample);
});

/** A packed DIB built by hand: a BITMAPINFOHEADER and rows of `bits` per pixel. */
function handDib(bits: 24 | 32, topDown: boolean, rows: number[][]): Uint8Array {
  const width = rows[0].length / (bits / 8);
  const stride = Math.ceil(width * bits / 32) * 4;
  const out = new Uint8Array(40 + stride * rows.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 40, true);
  v.setInt32(4, width, true);
  v.setInt32(8, topDown ? -rows.length : rows.length, true);
  v.setUint16(12, 1, true);
  v.setUint16(14, bits, true);
  rows.forEach((row, i) => out.set(row, 40 + (topDown ? i : rows.length - 1 - i) * stride));
  return out;
}

Deno.test("images: 24-bit and 32-bit CF_DIB, bottom-up and top-down, with row padding", () => {
  // two pixels a row, BGR: 6 bytes padded to 8
  const rows24 = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]];
  const expected24 = new Uint8Array([3, 2, 1, 255, 6, 5, 4, 255, 9, 8, 7, 255, 12, 11, 10, 255]);
  for (const topDown of [false, true]) {
    assert.deepEqual(dibToRgba(handDib(24, topDown, rows24)), {
      width: 2,
      height: 2,
      data: expected24,
    });
  }
  // 32-bit BI_RGB with every alpha byte 0: the byte is unused, the image is opaque
  const opaque = dibToRgba(handDib(32, false, [[1, 2, 3, 0, 4, 5, 6, 0]]));
  assert.deepEqual([...opaque.data], [3, 2, 1, 255, 6, 5, 4, 255]);
  // 32-bit BI_RGB with alpha bytes set: they are alpha
  const alpha = dibToRgba(handDib(32, true, [[1, 2, 3, 9, 4, 5, 6, 0]]));
  assert.deepEqual([...alpha.data], [3, 2, 1, 9, 6, 5, 4, 0]);
});

Deno.test("images: a DIB whose sizes disagree with its length, or an odd layout, is refused", () => {
  const good = handDib(24, false, [[1, 2, 3, 4, 5, 6]]);
  const bad = (dib: Uint8Array, message: RegExp) =>
    assert.throws(() => dibToRgba(dib), (e: Error) => {
      assert.ok(e instanceof ClipboardFormatError, String(e));
      assert.match(e.message, message);
      return true;
    });
  bad(good.subarray(0, good.length - 1), /needs 48 bytes, the data has 47/);
  bad(good.subarray(0, 20), /shorter than a bitmap header/);
  const huge = good.slice();
  new DataView(huge.buffer).setInt32(4, 1 << 20, true);
  new DataView(huge.buffer).setInt32(8, 1 << 20, true);
  bad(huge, /unsupported size/);
  const eight = good.slice();
  new DataView(eight.buffer).setUint16(14, 8, true);
  bad(eight, /8 bits per pixel/);
  const compressed = good.slice();
  new DataView(compressed.buffer).setUint32(16, 1, true); // BI_RLE8
  bad(compressed, /compression 1/);
  const header = good.slice();
  new DataView(header.buffer).setUint32(0, 12, true);
  bad(header, /unknown header size 12/);
  assert.throws(() => pngToRgba(new Uint8Array([1, 2, 3])), /no PNG signature/);
});

Deno.test("file lists: DROPFILES with wide names, read back; ANSI lists too", () => {
  const paths = ["C:\\data\\a.txt", "C:\\données\\b ✓.txt", "\\\\server\\share\\c"];
  const bytes = encodeFileList(paths);
  assert.equal(new DataView(bytes.buffer).getUint32(0, true), 20);
  assert.deepEqual(decodeFileList(bytes), paths);
  const ansi = new Uint8Array([
    ...new Uint8Array(new Uint32Array([20, 0, 0, 0, 0]).buffer),
    ...encoder.encode("C:\\x"),
    0,
    ...encoder.encode("C:\\y"),
    0,
    0,
  ]);
  assert.deepEqual(decodeFileList(ansi), ["C:\\x", "C:\\y"]);
});

Deno.test("file lists: offsets past the end and unterminated lists are refused", () => {
  const bytes = encodeFileList(["C:\\a"]);
  const far = bytes.slice();
  new DataView(far.buffer).setUint32(0, 4096, true);
  assert.throws(() => decodeFileList(far), /offset \(4096\) is outside the data/);
  const near = bytes.slice();
  new DataView(near.buffer).setUint32(0, 4, true);
  assert.throws(() => decodeFileList(near), /offset \(4\) is outside the data/);
  assert.throws(() => decodeFileList(bytes.subarray(0, bytes.length - 2)), /runs past the end/);
  assert.throws(() => decodeFileList(bytes.subarray(0, 10)), /shorter than DROPFILES/);
});
