import assert from "node:assert/strict";
import { COMMTIMEOUTS, COMSTAT, DCB, dcbFlag, getBits, setBits, withDcbFlag } from "../ffi/comm.ts";
import { Win32Error } from "../ffi/error.ts";
import {
  applySettings,
  dcbSettings,
  listPorts,
  portPath,
  SerialPort,
} from "../mechanisms/serial.ts";
import { onWindows, runCli, spawnCli, spawnFixture } from "./_helpers.ts";
import { pattern, sha256 } from "./fixtures/serial_data.ts";

// The ports come from tools/test.ts, which starts socat on the Linux side before the Wine run:
// COM_A <-> COM_B is a null-modem pty pair, COM_ECHO's far end is a Linux `cat`.
const COM_A = Deno.env.get("WINIPC_TEST_COM_A");
const COM_B = Deno.env.get("WINIPC_TEST_COM_B");
const COM_ECHO = Deno.env.get("WINIPC_TEST_COM_ECHO");
const havePorts = onWindows && !!COM_A && !!COM_B && !!COM_ECHO;
if (onWindows && !havePorts) {
  console.log(
    "serial tests ignored: WINIPC_TEST_COM_A/B/ECHO are not set (run them through `deno task " +
      "test` on Linux with socat installed, which maps a socat pty pair into the Wine prefix)",
  );
}

/** A test that needs the socat ports; ignored (with the reason above) without them. */
function serialTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, ignore: !havePorts, fn });
}

/** Reads exactly `size` bytes. */
async function readExactly(port: SerialPort, size: number, timeout = 30_000): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let got = 0;
  const chunk = new Uint8Array(65536);
  while (got < size) {
    const n = await port.read(chunk.subarray(0, Math.min(chunk.length, size - got)), { timeout });
    out.set(chunk.subarray(0, n), got);
    got += n;
  }
  return out;
}

/** Reads and drops whatever is still arriving (left over from an earlier test) until 300 ms of quiet. */
async function drain(port: SerialPort): Promise<void> {
  port.purge("input");
  const sink = new Uint8Array(65536);
  for (;;) {
    try {
      await port.read(sink, { timeout: 300 });
    } catch (e) {
      if (e instanceof Deno.errors.TimedOut) return;
      throw e;
    }
  }
}

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

// ---- platform-independent ----

Deno.test("portPath() maps COMn and LPTn to \\\\.\\ paths and keeps device paths", () => {
  assert.equal(portPath("COM5"), "\\\\.\\COM5");
  assert.equal(portPath("com12"), "\\\\.\\COM12");
  assert.equal(portPath("LPT1"), "\\\\.\\LPT1");
  assert.equal(portPath("\\\\.\\COM200"), "\\\\.\\COM200");
  assert.throws(() => portPath(""), RangeError);
  for (const bad of ["COM", "COMX", "tty0", "/dev/ttyS0", "COM1\0", 5]) {
    assert.throws(() => portPath(bad as string), TypeError);
  }
  assert.throws(() => portPath("serial"), /Invalid argument "name": must be a port name/);
});

Deno.test("DCB, COMMTIMEOUTS and COMSTAT have the sizes winbase.h gives them", () => {
  assert.equal(DCB.size, 28);
  assert.equal(DCB.offsetOf("flags"), 8);
  assert.equal(DCB.offsetOf("XonLim"), 14);
  assert.equal(DCB.offsetOf("ByteSize"), 18);
  assert.equal(DCB.offsetOf("EvtChar"), 25);
  assert.equal(COMMTIMEOUTS.size, 20);
  assert.equal(COMSTAT.size, 12);
});

Deno.test("DCB bitfield helpers read and write each field in place", () => {
  // fBinary=1, fDtrControl=1, fRtsControl=1: what Wine's GetCommState reports for a fresh port
  const flags = 0x1011;
  assert.equal(dcbFlag(flags, "fBinary"), 1);
  assert.equal(dcbFlag(flags, "fDtrControl"), 1);
  assert.equal(dcbFlag(flags, "fRtsControl"), 1);
  assert.equal(dcbFlag(flags, "fOutX"), 0);
  const handshake = withDcbFlag(flags, "fRtsControl", 2);
  assert.equal(handshake, 0x2011);
  assert.equal(withDcbFlag(withDcbFlag(0, "fOutX", 1), "fInX", 1), 0x300);
  assert.equal(setBits(0xffff_ffff, 4, 2, 0), 0xffff_ffcf);
  assert.equal(getBits(0x8000_0000, 31, 1), 1);
  assert.throws(() => withDcbFlag(0, "fDtrControl", 4), RangeError);
});

Deno.test("SerialPort.open() rejects bad settings before any Win32 call", () => {
  assert.throws(() => SerialPort.open("COM1", { baudRate: 10 }), RangeError);
  assert.throws(() => SerialPort.open("COM1", { baudRate: 9600.5 }), /options\.baudRate/);
  assert.throws(() => SerialPort.open("COM1", { dataBits: 9 as 8 }), /options\.dataBits/);
  assert.throws(
    () => SerialPort.open("COM1", { parity: "weird" as "odd" }),
    /options\.parity.*none, odd, even, mark, space/,
  );
  assert.throws(() => SerialPort.open("COM1", { stopBits: 3 as 2 }), /options\.stopBits/);
  assert.throws(
    () => SerialPort.open("COM1", { flowControl: "dtr" as "none" }),
    /options\.flowControl/,
  );
  assert.throws(() => SerialPort.open("COM1", { readInterval: 0 }), RangeError);
  assert.throws(() => SerialPort.open("COM1", { bogus: 1 } as never), TypeError);
  assert.throws(() => SerialPort.open("nope"), /Invalid argument "name"/);
});

// ---- under Wine, with the socat ports ----

serialTest("1 MB each way between two processes at 115200 baud, checksums match", async () => {
  const size = 1 << 20;
  await using peer = spawnFixture("serial_peer.ts", ["exchange", COM_B!, String(size), "7"]);
  await using port = SerialPort.open(COM_A!, { baudRate: 115200 });
  await peer.expect("ready");
  const outgoing = pattern(size, 1234);
  const started = performance.now();
  const [received] = await Promise.all([
    readExactly(port, size),
    port.write(outgoing, { timeout: 60_000 }),
  ]);
  const ms = performance.now() - started;
  const sent = (await peer.expect("sent *")).slice(5);
  const got = (await peer.expect("received *")).slice(9);
  assert.equal(await sha256(received as Uint8Array<ArrayBuffer>), sent, "bytes the peer sent");
  assert.equal(await sha256(pattern(size, 7)), sent, "the peer's pattern");
  assert.equal(got, await sha256(outgoing), "bytes the peer received");
  console.log(`  2 x 1 MiB over the pty pair in ${ms.toFixed(0)} ms`);
  assert.equal((await peer.finish()).code, 0);
});

serialTest("a Linux program (cat behind socat) echoes what the port sends", async () => {
  await using port = SerialPort.open(COM_ECHO!, { baudRate: 115200 });
  await drain(port);
  assert.equal(await port.write("ping from deno.exe\n"), 19); // a string goes as UTF-8
  assert.equal(decode(await readExactly(port, 19, 10_000)), "ping from deno.exe\n");
  const block = pattern(256 * 1024, 99);
  const [echoed] = await Promise.all([readExactly(port, block.length), port.write(block)]);
  assert.equal(
    await sha256(echoed as Uint8Array<ArrayBuffer>),
    await sha256(block),
    "256 KiB came back intact",
  );
});

serialTest(
  "a read times out with Deno.errors.TimedOut and the event loop keeps running",
  async () => {
    await using port = SerialPort.open(COM_A!, { baudRate: 115200 });
    await drain(port);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = performance.now();
    try {
      await assert.rejects(
        port.read(new Uint8Array(16), { timeout: 400 }),
        (e: unknown) =>
          e instanceof Deno.errors.TimedOut && /No data on port ".*" within 400 ms/.test(e.message),
      );
    } finally {
      clearInterval(timer);
    }
    assert.ok(performance.now() - started >= 350, "waited for the timeout");
    // a blocked loop runs the interval at most once; about 35 are expected
    assert.ok(ticks >= 3, `timers ran during the read (${ticks} ticks)`);
    // the port still works after a cancelled read
    await using peer = SerialPort.open(COM_B!, { baudRate: 115200 });
    await peer.write(encode("after"));
    assert.equal(decode(await readExactly(port, 5, 10_000)), "after");
  },
);

serialTest("an AbortSignal cancels a pending read; close() ends one with BadResource", async () => {
  await using port = SerialPort.open(COM_A!, { baudRate: 115200 });
  await drain(port);
  const controller = new AbortController();
  const reading = port.read(new Uint8Array(16), { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop reading")), 100);
  await assert.rejects(reading, /stop reading/);
  const pending = port.read(new Uint8Array(16));
  await new Promise((r) => setTimeout(r, 100));
  port.close();
  await assert.rejects(pending, Deno.errors.BadResource);
  port.close(); // a second close is harmless
  assert.throws(() => port.unsafeHandle, Deno.errors.BadResource);
});

serialTest("bad read, write and wait arguments are rejected with clear errors", async () => {
  await using port = SerialPort.open(COM_A!, { baudRate: 115200 });
  await assert.rejects(port.read(new Uint8Array(0)), /Invalid argument "buffer"/);
  await assert.rejects(port.read("x" as unknown as Uint8Array), TypeError);
  await assert.rejects(port.read(new Uint8Array(4), { timeout: -1 }), RangeError);
  await assert.rejects(port.read(new Uint8Array(4), { timeout: 1.5 }), /options\.timeout/);
  await assert.rejects(
    port.write([1, 2] as unknown as Uint8Array),
    /Invalid argument "data": must be a Uint8Array or a string/,
  );
  await assert.rejects(
    port.write(new Uint8Array(1), { signal: "no" as unknown as AbortSignal }),
    /options\.signal/,
  );
  assert.throws(() => port.purge("sideways" as "both"), TypeError);
  assert.throws(() => port.setBreak(1 as unknown as boolean), /Invalid argument "on"/);
  await assert.rejects(port.sendBreak(0), RangeError);
});

serialTest("a write nobody reads times out; the port's own write timeout too", async () => {
  // Nobody reads COM_B, so the pty buffers and socat fill up and the write stops progressing.
  {
    await using port = SerialPort.open(COM_A!, { baudRate: 115200 });
    const started = performance.now();
    await assert.rejects(
      port.write(new Uint8Array(16 << 20), { timeout: 1000 }),
      (e: unknown) =>
        e instanceof Deno.errors.TimedOut &&
        /took only \d+ of 16777216 bytes within 1000 ms/.test(e.message),
    );
    assert.ok(performance.now() - started < 15_000);
  }
  {
    await using port = SerialPort.open(COM_A!, { baudRate: 115200, writeTimeout: 500 });
    await assert.rejects(
      port.write(new Uint8Array(16 << 20), { timeout: 10_000 }),
      (e: unknown) =>
        e instanceof Deno.errors.TimedOut && /bytes before its write timeout$/.test(e.message),
    );
  }
  // Read away what did get through, so later tests start clean.
  await using peer = SerialPort.open(COM_B!, { baudRate: 115200 });
  await drain(peer);
});

serialTest("a missing port gives a clear error", () => {
  const error = assert.throws(() => SerialPort.open("COM255"), (e: unknown) => {
    assert.ok(e instanceof Win32Error);
    assert.equal(e.codeName, "ERROR_FILE_NOT_FOUND");
    assert.equal(e.functionName, "CreateFileW");
    assert.match(
      e.message,
      /^Cannot open port "COM255": CreateFileW failed with ERROR_FILE_NOT_FOUND/,
    );
    return true;
  });
  void error;
});

Deno.test("applySettings() writes the DCB fields and flag bits; dcbSettings() reads them", () => {
  const dcb = DCB.alloc({ DCBlength: DCB.size, BaudRate: 9600, ByteSize: 8, flags: 0x1011 });
  applySettings(dcb, {
    baudRate: 19200,
    dataBits: 7,
    parity: "even",
    stopBits: 2,
    flowControl: "xon-xoff",
  });
  const raw = DCB.read(dcb);
  assert.equal(raw.BaudRate, 19200);
  assert.equal(raw.ByteSize, 7);
  assert.equal(raw.Parity, 2); // EVENPARITY
  assert.equal(raw.StopBits, 2); // TWOSTOPBITS
  assert.equal(dcbFlag(raw.flags, "fParity"), 1);
  assert.equal(dcbFlag(raw.flags, "fOutX"), 1);
  assert.equal(dcbFlag(raw.flags, "fInX"), 1);
  assert.equal(dcbFlag(raw.flags, "fBinary"), 1);
  assert.equal(raw.XonChar, 0x11);
  assert.equal(raw.XoffChar, 0x13);
  assert.deepEqual(dcbSettings(dcb), {
    baudRate: 19200,
    dataBits: 7,
    parity: "even",
    stopBits: 2,
    flowControl: "xon-xoff",
  });
  applySettings(dcb, { flowControl: "rts-cts", stopBits: 1.5, parity: "none" });
  const after = DCB.read(dcb);
  assert.equal(dcbFlag(after.flags, "fOutxCtsFlow"), 1);
  assert.equal(dcbFlag(after.flags, "fRtsControl"), 2); // RTS_CONTROL_HANDSHAKE
  assert.equal(dcbFlag(after.flags, "fOutX"), 0);
  assert.equal(dcbFlag(after.flags, "fParity"), 0);
  assert.equal(after.StopBits, 1); // ONE5STOPBITS
  assert.equal(after.ByteSize, 7, "untouched fields keep their values");
  assert.throws(() => applySettings(dcb, { baudRate: 5_000_000 }), RangeError);
});

serialTest("settings round-trip through SetCommState and GetCommState", async () => {
  // Linux ptys always report 8 data bits and no parity (the pty driver forces CS8 and clears
  // PARENB), so under Wine only the baud rate, stop bits and flow control round-trip here; the
  // DCB encoding of the others is covered by the applySettings() test above.
  await using port = SerialPort.open(COM_A!, {
    baudRate: 19200,
    stopBits: 2,
    flowControl: "xon-xoff",
  });
  const first = port.settings();
  assert.equal(first.baudRate, 19200);
  assert.equal(first.stopBits, 2);
  assert.equal(first.flowControl, "xon-xoff");
  port.configure({ baudRate: 115200, stopBits: 1, flowControl: "rts-cts" });
  const second = port.settings();
  assert.equal(second.baudRate, 115200);
  assert.equal(second.stopBits, 1);
  assert.equal(second.flowControl, "rts-cts");
  port.configure({ flowControl: "none" });
  assert.equal(port.settings().flowControl, "none");
  port.setTimeouts({ readConstant: 1234, writeConstant: 55 });
  assert.deepEqual(port.timeouts(), {
    readInterval: 1,
    readMultiplier: 0,
    readConstant: 1234,
    writeMultiplier: 0,
    writeConstant: 55,
  });
  assert.throws(() => port.configure({ baudRate: -1 }), RangeError);
  assert.throws(() => port.setTimeouts({ readInterval: 2 ** 32 }), RangeError);
});

serialTest("ClearCommError reports the input queue; PurgeComm empties it", async () => {
  await using a = SerialPort.open(COM_A!, { baudRate: 115200 });
  await using b = SerialPort.open(COM_B!, { baudRate: 115200 });
  await drain(b);
  await a.write(encode("0123456789"));
  await a.flush();
  let status = b.clearErrors();
  for (let i = 0; i < 100 && status.inQueue < 10; i++) {
    await new Promise((r) => setTimeout(r, 20));
    status = b.clearErrors();
  }
  assert.equal(status.inQueue, 10);
  assert.deepEqual(status.errors, []);
  await drain(b);
  assert.equal(b.clearErrors().inQueue, 0);
  await assert.rejects(b.read(new Uint8Array(4), { timeout: 200 }), Deno.errors.TimedOut);
  // break on, break off: accepted by the device
  a.setBreak(true);
  a.setBreak(false);
});

serialTest(
  "modem lines and WaitCommEvent on a pty under Wine give clear errors",
  async () => {
    // A pty has no modem-control lines: Wine's TIOCMGET fails, so GetCommModemStatus and
    // EscapeCommFunction(SETDTR) report ERROR_NOT_SUPPORTED and WaitCommEvent ends with
    // ERROR_OPERATION_ABORTED. On a real port they report CTS/DSR/RI/DCD and the events.
    // Only "rxchar" is asked for: with a modem-line event (cts, dsr, ring, dcd) in the mask, Wine's
    // WaitCommEvent on a pty does not return at all, OVERLAPPED or not (a Wine limitation).
    await using a = SerialPort.open(COM_A!, { baudRate: 115200 });
    await using b = SerialPort.open(COM_B!, { baudRate: 115200 });
    await drain(b);
    assert.throws(() => b.modemStatus(), (e: unknown) => {
      assert.ok(e instanceof Win32Error);
      assert.equal(e.codeName, "ERROR_NOT_SUPPORTED");
      assert.match(e.message, /^Cannot read modem lines on port ".*": GetCommModemStatus failed/);
      return true;
    });
    assert.throws(() => b.setDtr(true), /Cannot set DTR .*EscapeCommFunction failed/);
    assert.throws(() => b.setRts(false), /Cannot set RTS .*EscapeCommFunction failed/);
    const waiting = b.waitEvent(["rxchar"], { timeout: 5000 }).then(
      () => null,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await a.write(encode("x"));
    const error = await waiting;
    assert.ok(error instanceof Win32Error, String(error));
    assert.equal(error.functionName, "WaitCommEvent");
    assert.equal(error.codeName, "ERROR_OPERATION_ABORTED");
    assert.match(error.message, /^Cannot wait for events on port ".*": WaitCommEvent failed/);
    await assert.rejects(b.waitEvent([] as never), /Invalid argument "events"/);
    await assert.rejects(b.waitEvent(["bogus" as "cts"]), TypeError);
  },
);

serialTest("readable and writable streams carry 200 KiB between two ports", async () => {
  await using a = SerialPort.open(COM_A!, { baudRate: 115200 });
  await using b = SerialPort.open(COM_B!, { baudRate: 115200 });
  await drain(b);
  const data = pattern(200 * 1024, 5);
  const writing = (async () => {
    const writer = a.writable.getWriter();
    for (let i = 0; i < data.length; i += 10_000) await writer.write(data.subarray(i, i + 10_000));
    await writer.close();
  })();
  const received = new Uint8Array(data.length);
  let got = 0;
  const reader = b.readable.getReader();
  while (got < data.length) {
    const { value, done } = await reader.read();
    if (done) break;
    received.set(value, got);
    got += value.length;
  }
  await reader.cancel();
  await writing;
  assert.equal(got, data.length);
  assert.equal(await sha256(received), await sha256(data));
});

serialTest("listPorts() returns COMn/LPTn names, sorted, without duplicates", () => {
  const ports = listPorts();
  for (const p of ports) assert.match(p, /^(COM|LPT)\d+$/);
  assert.equal(new Set(ports).size, ports.length);
  const coms = ports.filter((p) => p.startsWith("COM")).map((p) => Number(p.slice(3)));
  assert.deepEqual(coms, [...coms].sort((x, y) => x - y));
});

serialTest("CLI: serial listen prints each line; serial send writes one", async () => {
  await using listener = spawnCli(["serial", "listen", COM_B!, "--baud", "115200", "--count", "2"]);
  // Bytes sent before the listener has opened its end wait in the pty, so no ready line is needed.
  const first = await runCli(["serial", "send", COM_A!, "héllo ✓", "--baud", "115200"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, "");
  const second = await runCli(["serial", "send", COM_A!, "second line", "--json"]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(JSON.parse(second.stdout), { port: COM_A, bytes: 12 });
  assert.equal(await listener.line(), "héllo ✓");
  assert.equal(await listener.line(), "second line");
  assert.equal((await listener.finish()).code, 0);
});

serialTest("CLI: serial listen --json and --timeout", async () => {
  await using listener = spawnCli(["serial", "listen", COM_B!, "--json", "--timeout", "20"]);
  const sent = await runCli(["serial", "send", COM_A!, "json please"]);
  assert.equal(sent.code, 0, sent.stderr);
  assert.deepEqual(JSON.parse(await listener.line()), { port: COM_B, message: "json please" });
  const quiet = await runCli(["serial", "listen", COM_B!, "--timeout", "0.5"]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, "");
});

serialTest("CLI: bad usage exits 2, a missing port exits 1 with an error line", async () => {
  const baud = await runCli(["serial", "send", COM_A!, "x", "--baud", "fast"]);
  assert.equal(baud.code, 2);
  assert.match(baud.stderr, /^error: .*--baud.*must be a whole number/m);
  const low = await runCli(["serial", "listen", COM_A!, "--baud", "3"]);
  assert.equal(low.code, 2);
  assert.match(low.stderr, /must be at least 50/);
  const name = await runCli(["serial", "send", "/dev/ttyS0", "x"]);
  assert.equal(name.code, 2);
  assert.match(name.stderr, /^error: Invalid <port>: must be a port name/m);
  const missing = await runCli(["serial", "send", "COM254", "x"]);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /^error: Cannot open port "COM254": CreateFileW failed with ERROR_FILE_NOT_FOUND/m,
  );
  const list = await runCli(["serial", "list", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  for (const line of list.stdout.trim().split("\n").filter(Boolean)) {
    assert.match(JSON.parse(line).port, /^(COM|LPT)\d+$/);
  }
});
