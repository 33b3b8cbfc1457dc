// Parallel ports: the decoders of IOCTL_PAR_QUERY_INFORMATION and the IEEE 1284 device ID against
// known byte layouts (any platform), and, under Wine, an LPT port that carries bytes but whose
// driver answers no parallel-port request (Wine has no parallel-port driver; no parallel port
// exists on these machines, so a driver's real answer is not run here).
import assert from "node:assert/strict";
import {
  ctlCode,
  FILE_DEVICE_PARALLEL_PORT,
  IOCTL_PAR_QUERY_DEVICE_ID,
  IOCTL_PAR_QUERY_DEVICE_ID_SIZE,
  IOCTL_PAR_QUERY_INFORMATION,
  IOCTL_PAR_QUERY_RAW_DEVICE_ID,
} from "../ffi/comm.ts";
import { Win32Error } from "../ffi/error.ts";
import {
  decodeDeviceIdBuffer,
  decodeParallelStatus,
  decodeRawDeviceId,
  PARALLEL_BUSY,
  PARALLEL_NOT_CONNECTED,
  PARALLEL_OFF_LINE,
  PARALLEL_PAPER_EMPTY,
  PARALLEL_POWER_OFF,
  PARALLEL_SELECTED,
  parseDeviceId,
} from "../mechanisms/parallel_codec.ts";
import { SerialPort } from "../mechanisms/serial.ts";
import { onWindows, runCli } from "./_helpers.ts";

const LPT = Deno.env.get("WINIPC_TEST_LPT_ECHO");
const haveLpt = onWindows && !!LPT;
if (onWindows && !haveLpt) {
  console.log(
    "parallel-port tests under Wine ignored: WINIPC_TEST_LPT_ECHO is not set (run them through " +
      "`deno task test` on Linux with socat installed)",
  );
}

const encode = (s: string) => new TextEncoder().encode(s);

// ---- platform-independent: the byte layouts ----

Deno.test("the IOCTL_PAR_* codes are CTL_CODE(FILE_DEVICE_PARALLEL_PORT, n, BUFFERED, ANY)", () => {
  assert.equal(FILE_DEVICE_PARALLEL_PORT, 0x16);
  assert.equal(IOCTL_PAR_QUERY_INFORMATION, ctlCode(FILE_DEVICE_PARALLEL_PORT, 1));
  assert.equal(IOCTL_PAR_QUERY_DEVICE_ID, ctlCode(FILE_DEVICE_PARALLEL_PORT, 3));
  assert.equal(IOCTL_PAR_QUERY_DEVICE_ID_SIZE, ctlCode(FILE_DEVICE_PARALLEL_PORT, 4));
  assert.equal(IOCTL_PAR_QUERY_RAW_DEVICE_ID, ctlCode(FILE_DEVICE_PARALLEL_PORT, 12));
  assert.equal(ctlCode(0x16, 1), 0x160004);
  // METHOD_NEITHER (3) and FILE_READ_ACCESS (1) land in their own bits
  assert.equal(ctlCode(0x22, 0x800, 3, 1), 0x226003);
});

Deno.test("decodeParallelStatus() reads each PARALLEL_* bit of the status byte", () => {
  const none = decodeParallelStatus(0);
  assert.deepEqual(none, {
    raw: 0,
    busy: false,
    paperEmpty: false,
    selected: false,
    offLine: false,
    powerOff: false,
    notConnected: false,
    init: false,
    autoFeed: false,
    error: false,
  });
  // A ready printer: selected, nothing else.
  assert.deepEqual(
    Object.entries(decodeParallelStatus(PARALLEL_SELECTED)).filter(([k, v]) => v === true && k)
      .map(([k]) => k),
    ["selected"],
  );
  // Printing: busy and selected, no error.
  const busy = decodeParallelStatus(0xc0);
  assert.equal(busy.busy, true);
  assert.equal(busy.selected, true);
  assert.equal(busy.error, false);
  // Out of paper and off line: 0x0c.
  const paper = decodeParallelStatus(PARALLEL_PAPER_EMPTY | PARALLEL_OFF_LINE);
  assert.equal(paper.paperEmpty, true);
  assert.equal(paper.offLine, true);
  assert.equal(paper.selected, false);
  assert.equal(paper.error, true);
  // Each error bit alone makes `error`; busy or selected alone does not.
  for (const bit of [PARALLEL_PAPER_EMPTY, PARALLEL_OFF_LINE, PARALLEL_POWER_OFF]) {
    assert.equal(decodeParallelStatus(bit).error, true, `bit 0x${bit.toString(16)}`);
  }
  assert.equal(decodeParallelStatus(PARALLEL_NOT_CONNECTED).notConnected, true);
  assert.equal(decodeParallelStatus(PARALLEL_NOT_CONNECTED).error, true);
  assert.equal(decodeParallelStatus(PARALLEL_BUSY).error, false);
  assert.equal(decodeParallelStatus(0x01).init, true);
  assert.equal(decodeParallelStatus(0x02).autoFeed, true);
  const all = decodeParallelStatus(0xff);
  assert.equal(all.raw, 0xff);
  assert.ok(Object.entries(all).every(([k, v]) => k === "raw" || v === true));
  for (const bad of [-1, 256, 1.5, NaN]) assert.throws(() => decodeParallelStatus(bad), RangeError);
});

Deno.test("parseDeviceId() reads MFG, MDL, CMD, CLS, DES and keeps every pair", () => {
  const id = parseDeviceId(
    "MFG:Hewlett-Packard;CMD:PJL,MLC,PCL,PCLXL,POSTSCRIPT;MDL:HP LaserJet 4050 Series ;" +
      "CLS:PRINTER;DES:Hewlett-Packard LaserJet 4050 Series ;",
  );
  assert.equal(id.manufacturer, "Hewlett-Packard");
  assert.equal(id.model, "HP LaserJet 4050 Series");
  assert.deepEqual(id.commandSet, ["PJL", "MLC", "PCL", "PCLXL", "POSTSCRIPT"]);
  assert.equal(id.class, "PRINTER");
  assert.equal(id.description, "Hewlett-Packard LaserJet 4050 Series");
  assert.deepEqual(Object.keys(id.fields), ["MFG", "CMD", "MDL", "CLS", "DES"]);

  // The long key names, mixed case, spaces around, a last pair without its ';', an unknown key
  const long = parseDeviceId(
    "Manufacturer: EPSON ;COMMAND SET:ESCPL2,BDC, D4 ,;model:Stylus Photo R200;CID:EpsonStd",
  );
  assert.equal(long.manufacturer, "EPSON");
  assert.equal(long.model, "Stylus Photo R200");
  assert.deepEqual(long.commandSet, ["ESCPL2", "BDC", "D4"]);
  assert.equal(long.fields.CID, "EpsonStd");
  assert.equal(long.class, undefined);

  // A value may hold a colon; a piece without one is skipped; the first of a repeated key wins;
  // the short key wins over the long one.
  const odd = parseDeviceId("junk;MFG:A:B;MFG:second;MANUFACTURER:long;;:novalue;MDL:");
  assert.equal(odd.manufacturer, "A:B");
  assert.equal(odd.model, "");
  assert.deepEqual(odd.commandSet, []);
  assert.deepEqual(Object.keys(odd.fields), ["MFG", "MANUFACTURER", "MDL"]);

  const empty = parseDeviceId("");
  assert.equal(empty.manufacturer, undefined);
  assert.deepEqual(empty.fields, {});
  // "__proto__" (upper-cased "__PROTO__") and "CONSTRUCTOR" are ordinary keys
  const proto = parseDeviceId("__proto__:x;constructor:z;MFG:y");
  assert.deepEqual(Object.keys(proto.fields), ["__PROTO__", "CONSTRUCTOR", "MFG"]);
  assert.equal(proto.fields.__PROTO__, "x");
  assert.equal(Object.getPrototypeOf(proto.fields), Object.prototype);
  assert.equal(proto.manufacturer, "y");
  assert.equal(parseDeviceId("MFG:y").fields.CONSTRUCTOR, undefined);

  assert.throws(() => parseDeviceId(5 as unknown as string), TypeError);
  assert.throws(() => parseDeviceId("x".repeat(0x10001)), RangeError);
});

Deno.test("decodeDeviceIdBuffer() stops at the NUL and at the driver's byte count", () => {
  const text = "MFG:Acme;MDL:Jet 9;CMD:PCL;";
  const buffer = new Uint8Array(64).fill(0x41); // junk past what the driver filled
  buffer.set(encode(text + "\0"));
  const id = decodeDeviceIdBuffer(buffer, text.length + 1);
  assert.equal(id.raw, text);
  assert.equal(id.model, "Jet 9");
  // No NUL within the count: the count ends the text.
  const cut = decodeDeviceIdBuffer(encode("MFG:Acme;MDL:Jet 9;xxxx"), 19);
  assert.equal(cut.raw, "MFG:Acme;MDL:Jet 9;");
  // Bytes above 0x7f come out one character each (latin1), not as a decoding failure.
  const latin = decodeDeviceIdBuffer(new Uint8Array([0x4d, 0x46, 0x47, 0x3a, 0xe9, 0]), 6);
  assert.equal(latin.manufacturer, "\u00e9");
  assert.equal(decodeDeviceIdBuffer(buffer, 0).raw, "");
  assert.throws(() => decodeDeviceIdBuffer(buffer, 65), RangeError);
  assert.throws(() => decodeDeviceIdBuffer(buffer, -1), RangeError);
  assert.throws(() => decodeDeviceIdBuffer(new Uint8Array(0x10010), 0x10010), /at most 65536/);
});

Deno.test("decodeRawDeviceId() checks the two big-endian length bytes against the data", () => {
  const text = encode("MFG:Acme;MDL:Jet 9;CMD:PCL,PJL;");
  const raw = new Uint8Array(2 + text.length + 5); // trailing bytes past the length are ignored
  raw[0] = 0;
  raw[1] = text.length + 2;
  raw.set(text, 2);
  raw.set(encode("EXTRA"), 2 + text.length);
  const id = decodeRawDeviceId(raw);
  assert.equal(id.raw, "MFG:Acme;MDL:Jet 9;CMD:PCL,PJL;");
  assert.deepEqual(id.commandSet, ["PCL", "PJL"]);

  // A length over 255 uses the first byte (most significant first).
  const long = "MFG:Acme;DES:" + "d".repeat(300) + ";";
  const big = new Uint8Array(2 + long.length);
  big[0] = (long.length + 2) >> 8;
  big[1] = (long.length + 2) & 0xff;
  big.set(encode(long), 2);
  assert.equal(decodeRawDeviceId(big).description, "d".repeat(300));

  assert.equal(decodeRawDeviceId(new Uint8Array([0, 2])).raw, "");
  assert.throws(() => decodeRawDeviceId(new Uint8Array([0])), /two length bytes/);
  assert.throws(() => decodeRawDeviceId(new Uint8Array([0, 1])), /counts its two length bytes/);
  assert.throws(() => decodeRawDeviceId(new Uint8Array([0, 40, 65])), /claims 40 bytes/);
  assert.throws(() => decodeRawDeviceId(new Uint8Array([1, 0, 65, 66])), /claims 256 bytes/);
});

// ---- under Wine: a port with no parallel-port driver behind it ----

Deno.test({
  name: "an LPT port under Wine carries bytes, and its status requests fail with a clear error",
  ignore: !haveLpt,
  fn: async () => {
    await using port = SerialPort.open(LPT!, { configure: false });
    // The far end is a Linux `cat`: what we write comes back.
    await port.write(encode("LPT line\n"), { timeout: 10_000 });
    const buffer = new Uint8Array(64);
    let got = "";
    while (!got.includes("\n")) {
      const n = await port.read(buffer, { timeout: 10_000 });
      got += new TextDecoder().decode(buffer.subarray(0, n));
    }
    assert.equal(got, "LPT line\n");

    const status = await port.parallelStatus({ timeout: 5000 }).then(
      () => assert.fail("Wine answered IOCTL_PAR_QUERY_INFORMATION"),
      (e) => e,
    );
    assert.ok(status instanceof Win32Error, String(status));
    assert.equal(status.codeName, "ERROR_NOT_SUPPORTED");
    assert.equal(status.functionName, "DeviceIoControl");
    assert.match(
      status.message,
      new RegExp(`port "${LPT}": the driver does not answer IOCTL_PAR_QUERY_INFORMATION`),
    );
    const id = await port.deviceId({ timeout: 5000 }).then(
      () => assert.fail("Wine answered IOCTL_PAR_QUERY_DEVICE_ID_SIZE"),
      (e) => e,
    );
    assert.ok(id instanceof Win32Error, String(id));
    assert.match(id.message, /does not answer IOCTL_PAR_QUERY_DEVICE_ID_SIZE/);
    // The port still works after the refused requests.
    await port.write(encode("again\n"), { timeout: 10_000 });
    got = "";
    while (!got.includes("\n")) {
      const n = await port.read(buffer, { timeout: 10_000 });
      got += new TextDecoder().decode(buffer.subarray(0, n));
    }
    assert.equal(got, "again\n");
  },
});

Deno.test({
  name: "winipc serial status: no driver answer exits 1, a missing port 1, a COM port 2",
  ignore: !haveLpt,
  fn: async () => {
    const unanswered = await runCli(["serial", "status", LPT!]);
    assert.equal(unanswered.code, 1, unanswered.stderr);
    assert.equal(unanswered.stdout, "");
    assert.match(
      unanswered.stderr,
      /^error: .*does not answer IOCTL_PAR_QUERY_INFORMATION.*ERROR_NOT_SUPPORTED \(50\)/,
    );
    // LPT9 is not mapped in the test prefix (the test port is LPT10..LPT99).
    const missing = await runCli(["serial", "status", "LPT9", "--json"]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^error: Cannot open port "LPT9".*ERROR_FILE_NOT_FOUND \(2\)/);
    const com = await runCli(["serial", "status", "COM5"]);
    assert.equal(com.code, 2, com.stderr);
    assert.match(com.stderr, /^error: .*serial port; status reads parallel ports/);
  },
});
