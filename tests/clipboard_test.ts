// The clipboard is one per Wine prefix (session): the clipboard tests live in this file,
// cli_clipboard_test.ts and examples_test.ts, and they run one after the other (Deno runs a
// file's tests sequentially, and the suite runs files one at a time: no --parallel).
import assert from "node:assert/strict";
import {
  clear,
  ClipboardFormatError,
  fileItems,
  formatName,
  htmlItem,
  imageItems,
  listFormats,
  read,
  readFiles,
  readHtml,
  readImage,
  readText,
  registerFormat,
  sequenceNumber,
  watch,
  write,
  writeFiles,
  writeHtml,
  writeImage,
  writeText,
} from "../mechanisms/clipboard.ts";
import { pngToRgba, rgbaToPng } from "../mechanisms/_clipboard_codecs.ts";
import { Win32Error } from "../ffi/error.ts";
import { runCli, spawnCli, spawnFixture, underWine, uniqueName, winTest } from "./_helpers.ts";

const NON_ASCII = "héllo wörld ✓ 𝄞 日本語 — clipboard";
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

winTest("clipboard: text set in another process is read here, and the other way", async () => {
  const text = `${NON_ASCII} ${uniqueName("a")}`;
  await using setter = spawnFixture("clipboard_peer.ts", ["set-text", text]);
  assert.equal(await setter.line(), "ok");
  assert.equal((await setter.finish()).code, 0);
  // the setter process has exited: its data stays on the clipboard
  assert.equal(await readText(), text);

  const back = `${NON_ASCII} ${uniqueName("b")}`;
  await writeText(back);
  await using getter = spawnFixture("clipboard_peer.ts", ["get-text"]);
  assert.deepEqual(JSON.parse(await getter.line()), { text: back });
});

winTest("clipboard: a custom format round trip with text in the same set", async () => {
  const name = uniqueName("fmt");
  const bytes = new Uint8Array([0, 1, 2, 254, 255, 0, 42]);
  const hex = "000102feff002a";
  await using setter = spawnFixture("clipboard_peer.ts", ["set-custom", name, hex]);
  assert.equal(await setter.line(), "ok");
  await setter.finish();
  const id = registerFormat(name);
  assert.ok(id >= 0xc000);
  assert.equal(formatName(id), name);
  const got = await read(name);
  assert.ok(got !== null);
  // GlobalSize may round a block up: the payload is a prefix, any rest is padding
  assert.deepEqual(got.subarray(0, bytes.length), bytes);
  assert.deepEqual(await read(id).then((b) => b?.subarray(0, bytes.length)), bytes);
  assert.equal(await readText(), "custom");
  const formats = await listFormats();
  assert.ok(formats.some((f) => f.id === id && f.name === name), JSON.stringify(formats));
  assert.ok(formats.some((f) => f.name === "CF_UNICODETEXT"));

  // and back: written here, read by the other process
  const mine = uniqueName("fmt2");
  await write([
    { format: mine, data: new Uint8Array([9, 8, 7]) },
    { format: "CF_UNICODETEXT", data: "two formats" },
  ]);
  await using getter = spawnFixture("clipboard_peer.ts", ["get-custom", mine]);
  assert.match(JSON.parse(await getter.line()).hex, /^090807/);
  assert.equal(await readText(), "two formats");
});

winTest("clipboard: watch sees a change made by another process", async () => {
  const changes = watch();
  const before = sequenceNumber();
  const text = `watched ${uniqueName("w")}`;
  await using setter = spawnFixture("clipboard_peer.ts", ["set-text", text]);
  assert.equal(await setter.line(), "ok");
  const timeout = setTimeout(() => changes.return?.(), 30_000);
  try {
    const change = await changes.next();
    assert.equal(change.done, false);
    assert.notEqual(change.value!.sequence, before);
    assert.equal(await readText(), text);
  } finally {
    clearTimeout(timeout);
    await changes.return?.();
  }
});

winTest("clipboard: another process's watch sees changes made here", async () => {
  await using watcher = spawnFixture("clipboard_peer.ts", ["watch", "2"]);
  assert.equal(await watcher.line(), "ready");
  await writeText("first ✓");
  assert.deepEqual(JSON.parse(await watcher.line()), { text: "first ✓" });
  await writeText("second ✓");
  assert.deepEqual(JSON.parse(await watcher.line()), { text: "second ✓" });
  assert.equal((await watcher.finish()).code, 0);
});

winTest(
  "clipboard: a process that only watches attaches no main-thread pump and still sees changes",
  async () => {
    // The watcher's window is on the window thread, which wakes on WM_CLIPBOARDUPDATE: the main
    // thread's pump (which polls with Sleep(1)) never starts and dispatches nothing.
    await using watcher = spawnFixture("clipboard_peer.ts", ["watch-pump", "2"]);
    const idle = { running: false, attached: 0, dispatched: 0 };
    assert.deepEqual(JSON.parse(await watcher.line()), { pump: idle });
    await writeText("no pump ✓ 1");
    assert.deepEqual(JSON.parse(await watcher.line()), { text: "no pump ✓ 1", pump: idle });
    await writeText("no pump ✓ 2");
    assert.deepEqual(JSON.parse(await watcher.line()), { text: "no pump ✓ 2", pump: idle });
    assert.equal((await watcher.finish()).code, 0, "exits once the watch is closed");
  },
);

winTest(
  "clipboard: held open by another process, retried until free, else a clear error",
  async () => {
    await using holder = spawnFixture("clipboard_peer.ts", ["hold", "3000"]);
    assert.equal(await holder.line(), "holding");
    await assert.rejects(writeText("too soon", { timeout: 200 }), (e) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_ACCESS_DENIED");
      assert.match(
        e.message,
        /Cannot open the clipboard to write: .* holds it open \(retried for 200 ms\)/,
      );
      return true;
    });
    // retried with backoff until the holder lets go (after about 3 s)
    await writeText("after the holder", { timeout: 20_000 });
    assert.equal(await holder.line(), "released");
    assert.equal(await readText(), "after the holder");
  },
);

winTest("clipboard: bad input gives clear errors", async () => {
  await writeText("only text");
  const missing = uniqueName("never-registered");
  await assert.rejects(read(missing), (e) => {
    assert.ok(e instanceof Deno.errors.NotFound);
    assert.match((e as Error).message, new RegExp(`Unknown clipboard format "${missing}"`));
    assert.match((e as Error).message, /CF_UNICODETEXT/);
    return true;
  });
  assert.equal(await read("CF_DIB"), null, "a standard format that is absent reads as null");
  await assert.rejects(read(""), /Invalid argument "format"/);
  await assert.rejects(read(0x10000), RangeError);
  await assert.rejects(write([]), /must hold at least one format/);
  await assert.rejects(writeText(5 as unknown as string), /Invalid argument "text"/);
  await assert.rejects(readText({ timeout: -1 }), RangeError);
  assert.throws(() => registerFormat("a\0b"), /must not contain NUL/);
  await clear();
  assert.equal(await readText(), null);
  assert.deepEqual(await listFormats(), []);
});

winTest("CLI: clipboard set, get and watch (CF_UNICODETEXT)", async () => {
  const text = `${NON_ASCII} ${uniqueName("cli")}`;
  const set = await runCli(["clipboard", "set", text]);
  assert.deepEqual(set, { code: 0, stdout: "", stderr: "" });
  assert.equal(await readText(), text);
  const got = await runCli(["clipboard", "get"]);
  assert.deepEqual(got, { code: 0, stdout: `${text}\n`, stderr: "" });
  const json = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(json.stdout), { text });

  await using watcher = spawnCli(["clipboard", "watch", "--count", "1", "--json"]);
  // the watcher prints nothing before the first change: keep changing until it reports one
  let stop = false;
  const changer = (async () => {
    for (let i = 0; i < 100 && !stop; i++) {
      await writeText(`change ${i}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  const first = JSON.parse(await watcher.line(30_000));
  stop = true;
  await changer;
  assert.equal(first.event, "change");
  assert.match(String(first.text), /^change \d+$/);
  assert.equal(typeof first.sequence, "number");
  assert.equal((await watcher.finish()).code, 0, "exits 0 after --count changes");

  await clear();
  const empty = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(empty.stdout), { text: null });
  const bad = await runCli(["clipboard", "set"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: missing required argument 'text'/);
});

/** The fixture's 2×2 image, RGBA, top row first. */
const RAW_PIXELS = [255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 255, 255, 255, 0x40];

winTest("clipboard: HTML, a 32-bit image with alpha and files put by a raw writer", async () => {
  await using writer = spawnFixture("clipboard_raw.ts", ["put"]);
  assert.equal(await writer.line(), "ok");
  assert.equal((await writer.finish()).code, 0);
  const html = await readHtml();
  assert.equal(html?.fragment, "<b>Grüße</b> ✓");
  assert.equal(html?.sourceUrl, "https://example.com/raw");
  assert.match(html!.html, /^<html><body><!--StartFragment--><b>Grüße<\/b> ✓/);
  const png = await readImage();
  assert.ok(png);
  assert.deepEqual(pngToRgba(png), { width: 2, height: 2, data: new Uint8Array(RAW_PIXELS) });
  assert.deepEqual(await readFiles(), {
    paths: ["C:\\raw\\one.txt", "C:\\raw\\zwei ✓.txt", "\\\\host\\share\\3"],
    effect: "move",
  });
  assert.equal(await readText(), "rich");
});

winTest("clipboard: HTML, an image and files written here, read by a raw reader", async () => {
  const image = { width: 2, height: 2, data: new Uint8Array(RAW_PIXELS) };
  const png = rgbaToPng(image);
  const paths = ["C:\\data\\a.txt", "C:\\données\\b ✓.txt", "\\\\server\\share\\c"];
  await write([
    htmlItem("<i>héllo</i> ✓", { sourceUrl: "https://example.com/x" }),
    ...imageItems(png),
    ...fileItems(paths),
    { format: "CF_UNICODETEXT", data: "plain" },
  ]);
  await using reader = spawnFixture("clipboard_raw.ts", ["get"]);
  const seen = JSON.parse(await reader.line());
  assert.equal(seen.fragment, "<i>héllo</i> ✓");
  assert.equal(seen.sourceUrl, "https://example.com/x");
  assert.deepEqual(seen.dib, { width: 2, height: 2, bits: 32, pixels: RAW_PIXELS });
  assert.equal(seen.png.slice(0, png.length * 2), hex(png), "the PNG as it was written");
  assert.deepEqual(seen.files, paths);
  assert.equal(seen.effect, 1, "DROPEFFECT_COPY");
  assert.equal(await readText(), "plain");
  // each writer on its own, as the one-call helpers do it
  await writeHtml("<u>only</u>", { text: "only" });
  assert.equal((await readHtml())?.fragment, "<u>only</u>");
  assert.equal(await readText(), "only");
  assert.equal(await readImage(), null, "writeHtml replaced the image");
  await writeImage(png);
  assert.deepEqual(await readImage(), png);
  await writeFiles(["C:\\x"], { effect: "move" });
  assert.deepEqual(await readFiles(), { paths: ["C:\\x"], effect: "move" });
  assert.equal(await readHtml(), null);
});

winTest(
  "clipboard: GDI-handle formats are never read as memory; bad rich input is refused",
  async () => {
    for (const format of ["CF_BITMAP", "CF_PALETTE", "CF_ENHMETAFILE", 0x300, 0x3ff]) {
      await assert.rejects(read(format), (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /holds a GDI handle, not memory/);
        return true;
      });
      await assert.rejects(write([{ format, data: new Uint8Array(4) }]), TypeError);
    }
    await assert.rejects(read("CF_BITMAP"), /read images with readImage\(\)/);
    await assert.rejects(
      writeImage(new Uint8Array([1, 2, 3])),
      /Invalid argument "png": no PNG signature/,
    );
    await assert.rejects(writeFiles([]), /Invalid argument "paths": must hold at least one path/);
    await assert.rejects(writeFiles(["relative.txt"]), /must be an absolute Windows path/);
    await assert.rejects(writeFiles(["C:\\a"], { effect: "link" as "copy" }), /"copy" or "move"/);
    await assert.rejects(writeHtml(42 as unknown as string), /Invalid argument "fragment"/);
  },
);

winTest(
  "clipboard: malformed rich data from another writer is a ClipboardFormatError",
  async () => {
    const badHtml =
      "Version:0.9\r\nStartHTML:0\r\nEndHTML:5000\r\nStartFragment:10\r\nEndFragment:4000\r\n";
    await write([{ format: "HTML Format", data: new TextEncoder().encode(badHtml) }]);
    await assert.rejects(readHtml(), (e: Error) => {
      assert.ok(e instanceof ClipboardFormatError);
      assert.match(e.message, /EndFragment \(4000\) is past the end of the data/);
      return true;
    });
    const dib = new Uint8Array(40 + 8);
    new DataView(dib.buffer).setUint32(0, 40, true);
    new DataView(dib.buffer).setInt32(4, 100, true);
    new DataView(dib.buffer).setInt32(8, 100, true);
    new DataView(dib.buffer).setUint16(14, 32, true);
    await write([{ format: "CF_DIB", data: dib }]);
    // Wine synthesises CF_DIBV5 from the CF_DIB (keeping the claimed size), so either is refused
    await assert.rejects(
      readImage(),
      /Malformed CF_DIB(V5)? data on the clipboard: 100×100 at 32 bits needs \d+ bytes, the data has/,
    );
    const hdrop = new Uint8Array(24);
    new DataView(hdrop.buffer).setUint32(0, 1 << 20, true);
    await write([{ format: "CF_HDROP", data: hdrop }]);
    await assert.rejects(readFiles(), /offset \(1048576\) is outside the data/);
  },
);

/** The bitmap fixture modes' 3×2 image, RGBA, top row first: a bitmap has no alpha (opaque). */
const BITMAP_PIXELS = [
  [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255],
  [255, 255, 255, 255, 0, 0, 0, 255, 0x80, 0x80, 0x80, 255],
].flat();

winTest(
  "clipboard: a CF_BITMAP put by another process is read as an image through the system's CF_DIB",
  async () => {
    // a device-dependent bitmap (CreateBitmap), the writer still running, as a screenshot tool's
    await using writer = spawnFixture("clipboard_raw.ts", ["bitmap"]);
    assert.equal(await writer.line(), "ok");
    const ids = (await listFormats()).map((f) => f.id);
    assert.ok(ids.includes(2), `CF_BITMAP is listed: ${ids}`);
    assert.ok(ids.includes(8), `the system offers CF_DIB from it: ${ids}`);
    const png = await readImage();
    assert.ok(png);
    assert.deepEqual(pngToRgba(png), {
      width: 3,
      height: 2,
      data: new Uint8Array(BITMAP_PIXELS),
    });
    // the synthesised DIB as bytes: 3×2 at 32 bits
    const dib = await read("CF_DIB");
    assert.ok(dib);
    const header = new DataView(dib.buffer, dib.byteOffset, dib.byteLength);
    assert.equal(header.getInt32(4, true), 3);
    assert.equal(Math.abs(header.getInt32(8, true)), 2);
    assert.equal(header.getUint16(14, true), 32);
    await assert.rejects(read("CF_BITMAP"), /holds a GDI handle, not memory; read images/);
    // the CLI reads it the same way
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}\\bitmap.png`;
      const got = await runCli(["clipboard", "get", "--format", "png", "--output", out]);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(pngToRgba(await Deno.readFile(out)).data, new Uint8Array(BITMAP_PIXELS));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

winTest(
  "clipboard: a DIB section as CF_BITMAP from another process: pixels on Windows, a clear error under Wine",
  async () => {
    await using writer = spawnFixture("clipboard_raw.ts", ["dibsection"]);
    assert.equal(await writer.line(), "ok");
    if (underWine()) {
      // Wine's user32 does not carry a DIB section's CF_BITMAP to another process, so the CF_DIB
      // and CF_DIBV5 it lists cannot be made; Windows converts any bitmap.
      await assert.rejects(readImage(), (e: unknown) => {
        assert.ok(e instanceof Win32Error, String(e));
        assert.match(e.message, /the system did not convert its CF_BITMAP to a DIB/);
        return true;
      });
    } else {
      const png = await readImage();
      assert.ok(png);
      assert.deepEqual(pngToRgba(png).data, new Uint8Array(BITMAP_PIXELS));
    }
  },
);
