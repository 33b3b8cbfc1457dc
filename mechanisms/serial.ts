/**
 * Serial (and parallel) ports: {@linkcode SerialPort} opens `COMn` with a baud rate, data bits,
 * parity, stop bits and flow control, and reads and writes with overlapped I/O so the event loop
 * stays free; {@linkcode listPorts} lists the ports present.
 *
 * A port name `COM5` means `\\.\COM5` (the `\\.\` prefix is required above COM9, and added for
 * every `COMn`/`LPTn`); a name that starts with `\\` is taken as given.
 *
 * Parallel ports (`LPT1`) are written through the same file API: `SerialPort.open("LPT1")` and
 * `write()` work; the DCB settings do not apply to them, so pass `{ configure: false }`.
 * {@linkcode SerialPort.parallelStatus} and {@linkcode SerialPort.deviceId} ask the parallel-port
 * driver for the printer's status lines and its IEEE 1284 device ID (decoded by
 * `parallel_codec.ts`).
 *
 * @example Send a line and read the answer
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5", { baudRate: 115200 });
 * await port.write(new TextEncoder().encode("AT\r\n"));
 * const buffer = new Uint8Array(256);
 * const n = await port.read(buffer, { timeout: 2000 });
 * console.log(new TextDecoder().decode(buffer.subarray(0, n)));
 * ```
 *
 * @module
 */
import { z } from "zod";
import { advapi32, HKEY_LOCAL_MACHINE, KEY_READ, REG_SZ } from "../ffi/advapi32.ts";
import {
  CE_BREAK,
  CE_FRAME,
  CE_OVERRUN,
  CE_RXOVER,
  CE_RXPARITY,
  CLRDTR,
  CLRRTS,
  COMMTIMEOUTS,
  COMSTAT,
  COMSTAT_BITS,
  DCB,
  EV_BREAK,
  EV_CTS,
  EV_DSR,
  EV_ERR,
  EV_RING,
  EV_RLSD,
  EV_RXCHAR,
  EV_RXFLAG,
  EV_TXEMPTY,
  getBits,
  IOCTL_PAR_QUERY_DEVICE_ID,
  IOCTL_PAR_QUERY_DEVICE_ID_SIZE,
  IOCTL_PAR_QUERY_INFORMATION,
  MS_CTS_ON,
  MS_DSR_ON,
  MS_RING_ON,
  MS_RLSD_ON,
  PURGE_RXABORT,
  PURGE_RXCLEAR,
  PURGE_TXABORT,
  PURGE_TXCLEAR,
  SETDTR,
  SETRTS,
} from "../ffi/comm.ts";
import {
  checkBool,
  checkCode,
  checkHandle,
  checkNtStatus,
  Win32Error,
  win32Error,
  withLastError,
} from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  FILE_FLAG_OVERLAPPED,
  GENERIC_READ,
  GENERIC_WRITE,
  kernel32,
  OPEN_EXISTING,
} from "../ffi/kernel32.ts";
import { fromWide, wide } from "../ffi/strings.ts";
import { type IoOptions, ioOptionsSchema, parseArg, portNameSchema } from "./_validate.ts";
import { ntdll } from "../ffi/ntdll.ts";
import { OverlappedOp } from "./_io.ts";
import { applySettings, dcbSettings, settingsSchema } from "./_dcb.ts";
import {
  decodeDeviceIdBuffer,
  decodeParallelStatus,
  type DeviceId,
  MAX_DEVICE_ID_BYTES,
  type ParallelStatus,
} from "./parallel_codec.ts";

export {
  decodeDeviceIdBuffer,
  decodeParallelStatus,
  decodeRawDeviceId,
  type DeviceId,
  type ParallelStatus,
  parseDeviceId,
} from "./parallel_codec.ts";
export { applySettings, dcbSettings } from "./_dcb.ts";

const ERROR_SEM_TIMEOUT = 121;
const ERROR_TIMEOUT = 1460;
/**
 * The codes a device answers an I/O control it does not know with: `ERROR_INVALID_FUNCTION`,
 * `ERROR_NOT_SUPPORTED`, `ERROR_INVALID_PARAMETER`, `ERROR_CALL_NOT_IMPLEMENTED`.
 */
const UNANSWERED_IOCTL = new Set([1, 50, 87, 120]);

// ---------------------------------------------------------------------------------------------
// Names and listing

/**
 * The device path of a port name: `COM5` → `\\.\COM5`; a path starting with `\\` is kept.
 *
 * @param name A port name or device path.
 * @returns The path to pass to `CreateFileW`.
 * @throws {TypeError} When the name is not a port name or a device path.
 *
 * @example The device path of a port name
 * ```ts
 * import { portPath } from "./serial.ts";
 * portPath("COM12"); // "\\\\.\\COM12"
 * ```
 */
export function portPath(name: string): string {
  const parsed = parseArg(portNameSchema, name, "name");
  return parsed.startsWith("\\\\") ? parsed : `\\\\.\\${parsed.toUpperCase()}`;
}

function multiString(units: Uint16Array, length: number): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < length; i++) {
    if (units[i] !== 0) continue;
    if (i > start) out.push(fromWide(units.subarray(start, i)));
    start = i + 1;
  }
  return out;
}

function dosDevicePorts(): string[] {
  const k = kernel32();
  for (let size = 1 << 16; size <= 1 << 22; size *= 4) {
    const buffer = new Uint16Array(size);
    const [n, code] = withLastError(() => k.QueryDosDeviceW(null, buffer, size));
    if (n === 0) {
      if (code === 122) continue; // ERROR_INSUFFICIENT_BUFFER: a bigger buffer
      throw win32Error("QueryDosDeviceW", code, { context: "Cannot list DOS devices" });
    }
    return multiString(buffer, n).filter((s) => /^(COM|LPT)\d+$/i.test(s));
  }
  return [];
}

function registryPorts(): string[] {
  const a = advapi32();
  const key = new BigUint64Array(1);
  const status = a.RegOpenKeyExW(
    HKEY_LOCAL_MACHINE,
    wide("HARDWARE\\DEVICEMAP\\SERIALCOMM"),
    0,
    KEY_READ,
    key,
  );
  if (status === 2) return []; // ERROR_FILE_NOT_FOUND: no serial ports at all
  checkCode(status, "RegOpenKeyExW", "Cannot read HARDWARE\\DEVICEMAP\\SERIALCOMM");
  const hkey = Deno.UnsafePointer.create(key[0]);
  const out: string[] = [];
  try {
    for (let index = 0;; index++) {
      const name = new Uint16Array(16384);
      const nameLength = new Uint32Array([name.length]);
      const type = new Uint32Array(1);
      const data = new Uint16Array(512);
      const dataBytes = new Uint32Array([data.byteLength]);
      const r = a.RegEnumValueW(hkey, index, name, nameLength, null, type, data, dataBytes);
      if (r === 259) break; // ERROR_NO_MORE_ITEMS
      if (r === 234) continue; // ERROR_MORE_DATA: not a port name
      checkCode(r, "RegEnumValueW", "Cannot read HARDWARE\\DEVICEMAP\\SERIALCOMM");
      if (type[0] === REG_SZ) out.push(fromWide(data, dataBytes[0] / 2));
    }
  } finally {
    a.RegCloseKey(hkey);
  }
  return out;
}

/**
 * Lists the serial and parallel ports present: the `COMn`/`LPTn` DOS device names
 * (`QueryDosDeviceW`) together with the ports in `HKLM\HARDWARE\DEVICEMAP\SERIALCOMM`.
 *
 * Under Wine, ports are what `$WINEPREFIX/dosdevices/comN` links and `HKLM\Software\Wine\Ports`
 * define when the prefix's device manager starts; a link added later can be opened but may not
 * be listed.
 *
 * @returns Upper-case names (`COM1`, `LPT1`), sorted by kind and number, without duplicates.
 * @throws {Win32Error} When the system cannot be asked.
 *
 * @example List the serial ports
 * ```ts
 * import { listPorts } from "./serial.ts";
 * console.log(listPorts()); // ["COM1", "COM3"]
 * ```
 */
export function listPorts(): string[] {
  const names = new Set(
    [...dosDevicePorts(), ...registryPorts()]
      .map((s) => s.toUpperCase())
      .filter((s) => /^(COM|LPT)\d+$/.test(s)),
  );
  return [...names].sort((a, b) =>
    a.slice(0, 3).localeCompare(b.slice(0, 3)) || Number(a.slice(3)) - Number(b.slice(3))
  );
}

// ---------------------------------------------------------------------------------------------
// Settings

/**
 * Parity of each character.
 *
 * @example 7 data bits, even parity (7E1)
 * ```ts
 * import { type Parity, SerialPort } from "./serial.ts";
 * const parity: Parity = "even";
 * using port = SerialPort.open("COM5", { baudRate: 9600, dataBits: 7, parity, stopBits: 1 });
 * ```
 */
export type Parity = "none" | "odd" | "even" | "mark" | "space";
/**
 * Stop bits after each character.
 *
 * @example Two stop bits for a slow device
 * ```ts
 * import { SerialPort, type StopBits } from "./serial.ts";
 * const stopBits: StopBits = 2;
 * using port = SerialPort.open("COM5", { baudRate: 1200, stopBits });
 * ```
 */
export type StopBits = 1 | 1.5 | 2;
/**
 * Flow control: none, hardware (RTS/CTS) or software (XON/XOFF).
 *
 * @example Hardware flow control at high speed
 * ```ts
 * import { type FlowControl, SerialPort } from "./serial.ts";
 * const flowControl: FlowControl = "rts-cts";
 * using port = SerialPort.open("COM5", { baudRate: 921_600, flowControl });
 * ```
 */
export type FlowControl = "none" | "rts-cts" | "xon-xoff";

/**
 * The line settings of a port (the parts of its `DCB` a user sets).
 *
 * @example Print a port's settings as 9600 8N1
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5", { configure: false });
 * const { baudRate, dataBits, parity, stopBits } = port.settings();
 * console.log(`${baudRate} ${dataBits}${parity[0].toUpperCase()}${stopBits}`);
 * ```
 */
export interface SerialSettings {
  /** Bits per second. Default 9600. */
  baudRate: number;
  /** Bits per character, 5 to 8. Default 8. */
  dataBits: 5 | 6 | 7 | 8;
  /** Default `"none"`. */
  parity: Parity;
  /** Default 1. */
  stopBits: StopBits;
  /**
   * Default `"none"`. `"rts-cts"` sets `fOutxCtsFlow` and `RTS_CONTROL_HANDSHAKE`; `"xon-xoff"`
   * sets `fOutX` and `fInX`.
   */
  flowControl: FlowControl;
}

/**
 * Options of {@linkcode SerialPort.open}.
 *
 * @example A read ends 20 ms after the last byte; a write may take 2 s
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5", { baudRate: 115200, readInterval: 20, writeTimeout: 2000 });
 * ```
 */
export interface SerialOptions extends Partial<SerialSettings> {
  /**
   * Apply the line settings with `SetCommState` (default `true`). `false` leaves the device as it
   * is, e.g. for a parallel port, which has no DCB.
   */
  configure?: boolean;
  /**
   * The gap in milliseconds between two received bytes that ends a read once bytes have arrived
   * (`ReadIntervalTimeout`, default 1). Reads also end when the buffer is full.
   */
  readInterval?: number;
  /** A write that takes longer than this many milliseconds fails (default none). */
  writeTimeout?: number;
}

const msSchema = z.number({ error: "must be a number of milliseconds" })
  .int({ error: "must be a whole number of milliseconds" })
  .min(1, { error: "must be at least 1 millisecond" })
  .max(0xffff_fffe, { error: "must be below 2^32 - 1 milliseconds" });

const openOptionsSchema = settingsSchema.extend({
  configure: z.boolean({ error: "must be a boolean" }).optional(),
  readInterval: msSchema.optional(),
  writeTimeout: msSchema.optional(),
}).strict().optional();

const ioOptionsArg = ioOptionsSchema.optional();

export type { IoOptions } from "./_validate.ts";

/**
 * The raw `COMMTIMEOUTS` of a port, in milliseconds (`0xFFFFFFFF` is `MAXDWORD`).
 *
 * @example Reads return at once with what has arrived
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5");
 * port.setTimeouts({ readInterval: 0xffff_ffff, readMultiplier: 0, readConstant: 0 });
 * console.log(port.timeouts());
 * ```
 */
export interface CommTimeouts {
  /** `ReadIntervalTimeout`. */
  readInterval: number;
  /** `ReadTotalTimeoutMultiplier`. */
  readMultiplier: number;
  /** `ReadTotalTimeoutConstant`. */
  readConstant: number;
  /** `WriteTotalTimeoutMultiplier`. */
  writeMultiplier: number;
  /** `WriteTotalTimeoutConstant`. */
  writeConstant: number;
}

/**
 * The modem input lines (`GetCommModemStatus`).
 *
 * @example Wait until the device is ready to receive
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5");
 * while (!port.modemStatus().cts) await port.waitEvent(["cts"], { timeout: 5000 });
 * ```
 */
export interface ModemStatus {
  /** Clear To Send. */
  cts: boolean;
  /** Data Set Ready. */
  dsr: boolean;
  /** Ring Indicator. */
  ri: boolean;
  /** Data Carrier Detect (RLSD). */
  dcd: boolean;
}

/**
 * A line error that `ClearCommError` reports.
 *
 * @example Count framing errors (a baud rate mismatch, often)
 * ```ts
 * import { type LineError, SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5");
 * const errors: LineError[] = port.clearErrors().errors;
 * if (errors.includes("framing")) console.log("check the baud rate");
 * ```
 */
export type LineError = "rx-overflow" | "overrun" | "parity" | "framing" | "break";

/**
 * The state `ClearCommError` reports (and clears).
 *
 * @example See what is queued each way
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5");
 * const { inQueue, outQueue, hold } = port.clearErrors();
 * console.log(`${inQueue} bytes to read, ${outQueue} to send`, hold.cts ? "(held by CTS)" : "");
 * ```
 */
export interface CommStatus {
  /** The line errors since the last call. */
  errors: LineError[];
  /** Bytes received and not yet read. */
  inQueue: number;
  /** Bytes queued and not yet sent. */
  outQueue: number;
  /** Why transmission is held, if it is. */
  hold: { cts: boolean; dsr: boolean; dcd: boolean; xoff: boolean; xoffSent: boolean };
}

/**
 * An event `WaitCommEvent` can wait for.
 *
 * @example Wait for a byte or a ring
 * ```ts
 * import { type CommEvent, SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM5");
 * const happened: CommEvent[] = await port.waitEvent(["rxchar", "ring"]);
 * if (happened.includes("ring")) console.log("incoming call");
 * ```
 */
export type CommEvent =
  | "rxchar"
  | "rxflag"
  | "txempty"
  | "cts"
  | "dsr"
  | "dcd"
  | "break"
  | "error"
  | "ring";

const EVENT_BITS: Record<CommEvent, number> = {
  rxchar: EV_RXCHAR,
  rxflag: EV_RXFLAG,
  txempty: EV_TXEMPTY,
  cts: EV_CTS,
  dsr: EV_DSR,
  dcd: EV_RLSD,
  break: EV_BREAK,
  error: EV_ERR,
  ring: EV_RING,
};

const eventsSchema = z.array(
  z.enum(Object.keys(EVENT_BITS) as [CommEvent, ...CommEvent[]], {
    error: `must be one of ${Object.keys(EVENT_BITS).join(", ")}`,
  }),
).min(1, { error: "must name at least one event" });

// ---------------------------------------------------------------------------------------------
// Overlapped operations

/** One overlapped slot: an operation of the I/O core, one at a time. */
class Slot {
  readonly op = new OverlappedOp();
  busy: Promise<void> = Promise.resolve();

  /** Runs `fn` after the slot's previous operation ended. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.busy;
    let done!: () => void;
    this.busy = new Promise((r) => (done = r));
    try {
      await before;
      return await fn();
    } finally {
      done();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SerialPort

/**
 * An open serial (or parallel) port. Reads and writes are overlapped: each waits on an event on
 * a worker thread, so the event loop stays free; a timeout or an AbortSignal cancels the
 * operation with `CancelIoEx`. One read and one write may be in flight at the same time; further
 * reads (or writes) queue behind them.
 *
 * @example Configure and stream
 * ```ts
 * import { SerialPort } from "./serial.ts";
 * using port = SerialPort.open("COM3", { baudRate: 57600, parity: "even", flowControl: "rts-cts" });
 * for await (const chunk of port.readable) console.log(chunk.length);
 * ```
 */
export class SerialPort implements Disposable, AsyncDisposable {
  readonly #name: string;
  readonly #path: string;
  #handle: OwnedHandle;
  #read: Slot;
  #write: Slot;
  #event: Slot;
  #control: Slot;
  #pending = 0;
  #closing = false;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array>;
  readonly #aborts = new Set<AbortController>();

  private constructor(name: string, path: string, handle: OwnedHandle) {
    this.#name = name;
    this.#path = path;
    this.#handle = handle;
    this.#read = new Slot();
    this.#write = new Slot();
    this.#event = new Slot();
    this.#control = new Slot();
  }

  /**
   * Opens a port for reading and writing (exclusively, as Windows opens communication devices)
   * and applies the line settings.
   *
   * @param name `COM5`, `LPT1`, or a device path such as `\\.\COM12`.
   * @param options Line settings and timeouts; see {@linkcode SerialOptions} for the defaults.
   * @returns The open port.
   * @throws {TypeError} For a bad name or option.
   * @throws {RangeError} For an option out of range (e.g. a baud rate of 10).
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is no such port,
   * `ERROR_ACCESS_DENIED` when another process has it open, or the error of `SetCommState`.
   *
   * @example Open a port at 115200 baud
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using port = SerialPort.open("COM5", { baudRate: 115200, dataBits: 8, parity: "none" });
   * ```
   */
  static open(name: string, options?: SerialOptions): SerialPort {
    const path = portPath(name);
    const opts = parseArg(openOptionsSchema, options, "options") ?? {};
    const context = `Cannot open port "${name}"`;
    const raw = checkHandle(
      kernel32().CreateFileW(
        wide(path),
        (GENERIC_READ | GENERIC_WRITE) >>> 0,
        0,
        null,
        OPEN_EXISTING,
        FILE_FLAG_OVERLAPPED,
        null,
      ),
      "CreateFileW",
      context,
    );
    const port = new SerialPort(name, path, new OwnedHandle(raw));
    try {
      if (opts.configure !== false) {
        port.configure({
          baudRate: opts.baudRate ?? 9600,
          dataBits: opts.dataBits ?? 8,
          parity: opts.parity ?? "none",
          stopBits: opts.stopBits ?? 1,
          flowControl: opts.flowControl ?? "none",
        });
        port.setTimeouts({
          readInterval: opts.readInterval ?? 1,
          readMultiplier: 0,
          readConstant: 0,
          writeMultiplier: 0,
          writeConstant: opts.writeTimeout ?? 0,
        });
      }
    } catch (e) {
      port.close();
      throw e;
    }
    return port;
  }

  /** The name the port was opened with. */
  get name(): string {
    return this.#name;
  }

  /** The device path (`\\.\COM5`). */
  get path(): string {
    return this.#path;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * The raw file handle, for FFI calls. Valid until `close()`.
   *
   * @throws {Deno.errors.BadResource} When the port is closed.
   */
  get unsafeHandle(): Deno.PointerObject {
    if (this.#closing) throw new Deno.errors.BadResource(`Port "${this.#name}" is closed`);
    return this.#handle.unsafeHandle;
  }

  #context(what: string): string {
    return `Cannot ${what} on port "${this.#name}"`;
  }

  /**
   * Reads the line settings (`GetCommState`).
   *
   * @returns The settings.
   * @throws {Win32Error} When the device has no DCB (e.g. a parallel port).
   */
  settings(): SerialSettings {
    return dcbSettings(this.#getDcb());
  }

  #getDcb(): Uint8Array<ArrayBuffer> {
    const dcb = DCB.alloc({ DCBlength: DCB.size });
    checkBool(
      kernel32().GetCommState(this.unsafeHandle, dcb),
      "GetCommState",
      this.#context("read settings"),
    );
    return dcb;
  }

  /**
   * Changes line settings (`GetCommState`, then `SetCommState` with the given fields changed).
   *
   * @param settings The settings to change; others keep their values.
   * @throws {TypeError} For a bad setting.
   * @throws {RangeError} For a setting out of range.
   * @throws {Win32Error} When the device rejects the settings.
   *
   * @example Change the settings of an open port
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using port = SerialPort.open("COM5");
   * port.configure({ baudRate: 19200, parity: "odd" });
   * ```
   */
  configure(settings: Partial<SerialSettings>): void {
    const s = parseArg(settingsSchema, settings, "settings");
    const dcb = this.#getDcb();
    applySettings(dcb, s);
    checkBool(
      kernel32().SetCommState(this.unsafeHandle, dcb),
      "SetCommState",
      this.#context("apply settings"),
    );
  }

  /**
   * Reads the raw `COMMTIMEOUTS`.
   *
   * @returns The timeouts.
   */
  timeouts(): CommTimeouts {
    const t = COMMTIMEOUTS.alloc();
    checkBool(
      kernel32().GetCommTimeouts(this.unsafeHandle, t),
      "GetCommTimeouts",
      this.#context("read timeouts"),
    );
    const v = COMMTIMEOUTS.read(t);
    return {
      readInterval: v.ReadIntervalTimeout,
      readMultiplier: v.ReadTotalTimeoutMultiplier,
      readConstant: v.ReadTotalTimeoutConstant,
      writeMultiplier: v.WriteTotalTimeoutMultiplier,
      writeConstant: v.WriteTotalTimeoutConstant,
    };
  }

  /**
   * Sets the raw `COMMTIMEOUTS` (`SetCommTimeouts`). The per-call `timeout` of
   * {@linkcode SerialPort.read} works on top of these.
   *
   * @param timeouts The fields to change; others keep their values.
   * @throws {RangeError} For a value outside 0 to 2^32 - 1.
   */
  setTimeouts(timeouts: Partial<CommTimeouts>): void {
    const dword = z.number().int({ error: "must be a whole number" })
      .min(0, { error: "must not be negative" })
      .max(0xffff_ffff, { error: "must be at most 2^32 - 1" });
    const t = parseArg(
      z.object({
        readInterval: dword.optional(),
        readMultiplier: dword.optional(),
        readConstant: dword.optional(),
        writeMultiplier: dword.optional(),
        writeConstant: dword.optional(),
      }).strict(),
      timeouts,
      "timeouts",
    );
    const now = this.timeouts();
    const merged = { ...now, ...t };
    const bytes = COMMTIMEOUTS.alloc({
      ReadIntervalTimeout: merged.readInterval,
      ReadTotalTimeoutMultiplier: merged.readMultiplier,
      ReadTotalTimeoutConstant: merged.readConstant,
      WriteTotalTimeoutMultiplier: merged.writeMultiplier,
      WriteTotalTimeoutConstant: merged.writeConstant,
    });
    checkBool(
      kernel32().SetCommTimeouts(this.unsafeHandle, bytes),
      "SetCommTimeouts",
      this.#context("set timeouts"),
    );
  }

  /**
   * Runs one overlapped operation on a slot through the I/O core (`_io.ts`): `start` issues the
   * call; its completion packet gives the byte count and status. On timeout or abort the
   * operation is cancelled with `CancelIoEx` and its packet awaited (never
   * `GetOverlappedResult(bWait)` on this thread).
   */
  #overlapped(
    slot: Slot,
    fn: string,
    what: string,
    start: (h: Deno.PointerObject, ov: Uint8Array<ArrayBuffer>) => number,
    options: IoOptions,
  ): Promise<{ count: number; timedOut: boolean; deviceTimeout: boolean }> {
    return slot.exclusive(async () => {
      const handle = this.unsafeHandle;
      const abort = new AbortController();
      this.#aborts.add(abort);
      const onUserAbort = () => abort.abort(options.signal!.reason);
      options.signal?.addEventListener("abort", onUserAbort, { once: true });
      this.#pending++;
      try {
        options.signal?.throwIfAborted();
        const result = await slot.op.run(handle, (ov) => start(handle, ov), {
          signal: abort.signal,
          timeout: options.timeout,
          context: this.#context(what),
          returnCancelled: true,
        });
        if (result.cancelled === "abort") {
          if (options.signal?.aborted) throw options.signal.reason;
          throw new Deno.errors.BadResource(`Port "${this.#name}" was closed`);
        }
        const code = result.error;
        // A device-side timeout (COMMTIMEOUTS; Wine ends an interval timeout with STATUS_TIMEOUT)
        // is not a failure: the bytes that came before it are in the count.
        const deviceTimeout = code === ERROR_TIMEOUT || code === ERROR_SEM_TIMEOUT;
        if (code !== 0 && !deviceTimeout && result.cancelled !== "timeout") {
          throw win32Error(fn, code, { context: this.#context(what) });
        }
        return { count: result.bytes, timedOut: result.cancelled === "timeout", deviceTimeout };
      } finally {
        options.signal?.removeEventListener("abort", onUserAbort);
        this.#aborts.delete(abort);
        this.#pending--;
        this.#maybeRelease();
      }
    });
  }

  /**
   * Reads the bytes that arrive, up to `buffer.length`: the read ends when the buffer is full or
   * when the line has been quiet for the `readInterval` after some bytes came.
   *
   * @param buffer Where to put the bytes.
   * @param options Timeout (milliseconds, default none) and AbortSignal.
   * @returns The number of bytes read (at least 1).
   * @throws {Deno.errors.TimedOut} When no byte arrived within the timeout.
   * @throws {Deno.errors.BadResource} When the port is closed meanwhile.
   * @throws The signal's reason when aborted.
   *
   * @example Read with a timeout
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using port = SerialPort.open("COM5");
   * const buffer = new Uint8Array(1024);
   * const n = await port.read(buffer, { timeout: 1000 });
   * ```
   */
  async read(buffer: Uint8Array, options?: IoOptions): Promise<number> {
    if (!(buffer instanceof Uint8Array) || buffer.length === 0) {
      throw new TypeError('Invalid argument "buffer": must be a non-empty Uint8Array');
    }
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    for (;;) {
      const { count, timedOut } = await this.#overlapped(
        this.#read,
        "ReadFile",
        "read",
        (h, ov) => kernel32().ReadFile(h, buffer, Math.min(buffer.length, 0xffff_ffff), null, ov),
        opts,
      );
      if (count > 0) return count;
      if (timedOut) {
        throw new Deno.errors.TimedOut(
          `No data on port "${this.#name}" within ${opts.timeout} ms`,
        );
      }
      // A read that ended with no byte (a device-side timeout): read again.
    }
  }

  /**
   * Writes all of `data`.
   *
   * @param data The bytes, or text (written as UTF-8).
   * @param options Timeout (milliseconds, default none) and AbortSignal.
   * @returns The number of bytes written (all of them).
   * @throws {Deno.errors.TimedOut} When the bytes were not all accepted within the timeout.
   * @throws {Win32Error} When the device fails.
   *
   * @example Write a line
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using port = SerialPort.open("COM5");
   * await port.write(new TextEncoder().encode("hello\n"));
   * ```
   */
  async write(data: Uint8Array | string, options?: IoOptions): Promise<number> {
    if (typeof data === "string") data = new TextEncoder().encode(data);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError('Invalid argument "data": must be a Uint8Array or a string');
    }
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    const deadline = opts.timeout === undefined || opts.timeout === Infinity
      ? Infinity
      : performance.now() + opts.timeout;
    let offset = 0;
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + 0x100_0000);
      const left = deadline - performance.now();
      const { count, timedOut, deviceTimeout } = await this.#overlapped(
        this.#write,
        "WriteFile",
        "write",
        (h, ov) => kernel32().WriteFile(h, chunk, chunk.length, null, ov),
        {
          timeout: deadline === Infinity ? undefined : Math.max(0, Math.floor(left)),
          signal: opts.signal,
        },
      );
      offset += count;
      if (deviceTimeout && offset < data.length) {
        // The port's own write timeout (SerialOptions.writeTimeout, COMMTIMEOUTS) elapsed.
        throw new Deno.errors.TimedOut(
          `Port "${this.#name}" took only ${offset} of ${data.length} bytes before its write timeout`,
        );
      }
      if (timedOut || (count === 0 && performance.now() >= deadline)) {
        throw new Deno.errors.TimedOut(
          `Port "${this.#name}" took only ${offset} of ${data.length} bytes within ${opts.timeout} ms`,
        );
      }
    }
    return data.length;
  }

  /**
   * The bytes received, as a stream. Cancelling the stream cancels the pending read; it ends when
   * the port is closed.
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    if (this.#readable) return this.#readable;
    const abort = new AbortController();
    this.#readable = new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          const n = await this.read(buffer, { signal: abort.signal });
          controller.enqueue(buffer.slice(0, n));
        } catch (e) {
          if (abort.signal.aborted) return;
          if (e instanceof Deno.errors.BadResource) controller.close();
          else controller.error(e);
        }
      },
      cancel: (reason) => abort.abort(reason),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** A stream that writes each chunk to the port. */
  get writable(): WritableStream<Uint8Array> {
    if (this.#writable) return this.#writable;
    this.#writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.flush(),
    });
    return this.#writable;
  }

  /**
   * Discards buffered bytes and aborts pending operations (`PurgeComm`).
   *
   * @param which `"input"`, `"output"` or `"both"` (the default).
   */
  purge(which: "input" | "output" | "both" = "both"): void {
    parseArg(z.enum(["input", "output", "both"]), which, "which");
    const flags = (which !== "output" ? PURGE_RXABORT | PURGE_RXCLEAR : 0) |
      (which !== "input" ? PURGE_TXABORT | PURGE_TXCLEAR : 0);
    checkBool(kernel32().PurgeComm(this.unsafeHandle, flags), "PurgeComm", this.#context("purge"));
  }

  /**
   * Waits until every queued byte has been sent (`NtFlushBuffersFile`, what `FlushFileBuffers`
   * calls, on a worker thread: a device flush has no overlapped form, and the native call returns
   * its status, which a worker thread's `GetLastError` would not give us).
   *
   * @throws {Win32Error} When the device fails (function `FlushFileBuffers`, with its code).
   */
  async flush(): Promise<void> {
    const handle = this.unsafeHandle;
    this.#pending++;
    try {
      const status = await ntdll().NtFlushBuffersFileAsync(handle, new Uint8Array(16));
      checkNtStatus(status, "FlushFileBuffers", this.#context("flush"));
    } finally {
      this.#pending--;
      this.#maybeRelease();
    }
  }

  /**
   * Holds the line in the break state (`SetCommBreak`) or releases it (`ClearCommBreak`).
   *
   * @param on `true` to start the break, `false` to end it.
   */
  setBreak(on: boolean): void {
    parseArg(z.boolean({ error: "must be a boolean" }), on, "on");
    const k = kernel32();
    if (on) checkBool(k.SetCommBreak(this.unsafeHandle), "SetCommBreak", this.#context("break"));
    else checkBool(k.ClearCommBreak(this.unsafeHandle), "ClearCommBreak", this.#context("break"));
  }

  /**
   * Sends a break of the given length.
   *
   * @param duration Milliseconds (default 250).
   */
  async sendBreak(duration = 250): Promise<void> {
    parseArg(msSchema, duration, "duration");
    this.setBreak(true);
    try {
      await new Promise((r) => setTimeout(r, duration));
    } finally {
      this.setBreak(false);
    }
  }

  /**
   * Raises or lowers DTR (`EscapeCommFunction(SETDTR | CLRDTR)`).
   *
   * @param on The line's new state.
   * @throws {Win32Error} When the device has no such line (`ERROR_NOT_SUPPORTED` on a pty under
   * Wine).
   */
  setDtr(on: boolean): void {
    parseArg(z.boolean({ error: "must be a boolean" }), on, "on");
    checkBool(
      kernel32().EscapeCommFunction(this.unsafeHandle, on ? SETDTR : CLRDTR),
      "EscapeCommFunction",
      this.#context("set DTR"),
    );
  }

  /**
   * Raises or lowers RTS (`EscapeCommFunction(SETRTS | CLRRTS)`).
   *
   * @param on The line's new state.
   * @throws {Win32Error} When the device has no such line.
   */
  setRts(on: boolean): void {
    parseArg(z.boolean({ error: "must be a boolean" }), on, "on");
    checkBool(
      kernel32().EscapeCommFunction(this.unsafeHandle, on ? SETRTS : CLRRTS),
      "EscapeCommFunction",
      this.#context("set RTS"),
    );
  }

  /**
   * Reads the modem input lines (`GetCommModemStatus`).
   *
   * @returns CTS, DSR, RI and DCD.
   * @throws {Win32Error} When the device has no modem lines (`ERROR_NOT_SUPPORTED` on a pty
   * under Wine).
   */
  modemStatus(): ModemStatus {
    const bits = new Uint32Array(1);
    checkBool(
      kernel32().GetCommModemStatus(this.unsafeHandle, bits),
      "GetCommModemStatus",
      this.#context("read modem lines"),
    );
    const v = bits[0];
    return {
      cts: (v & MS_CTS_ON) !== 0,
      dsr: (v & MS_DSR_ON) !== 0,
      ri: (v & MS_RING_ON) !== 0,
      dcd: (v & MS_RLSD_ON) !== 0,
    };
  }

  /**
   * Reports and clears the line errors, with the queue sizes (`ClearCommError`).
   *
   * @returns The status.
   */
  clearErrors(): CommStatus {
    const errors = new Uint32Array(1);
    const stat = COMSTAT.alloc();
    checkBool(
      kernel32().ClearCommError(this.unsafeHandle, errors, stat),
      "ClearCommError",
      this.#context("read the line status"),
    );
    const s = COMSTAT.read(stat);
    const e = errors[0];
    const list: LineError[] = [];
    if (e & CE_RXOVER) list.push("rx-overflow");
    if (e & CE_OVERRUN) list.push("overrun");
    if (e & CE_RXPARITY) list.push("parity");
    if (e & CE_FRAME) list.push("framing");
    if (e & CE_BREAK) list.push("break");
    const bit = (name: keyof typeof COMSTAT_BITS) => {
      const [shift, width] = COMSTAT_BITS[name];
      return getBits(s.flags, shift, width) !== 0;
    };
    return {
      errors: list,
      inQueue: s.cbInQue,
      outQueue: s.cbOutQue,
      hold: {
        cts: bit("fCtsHold"),
        dsr: bit("fDsrHold"),
        dcd: bit("fRlsdHold"),
        xoff: bit("fXoffHold"),
        xoffSent: bit("fXoffSent"),
      },
    };
  }

  /**
   * Waits for one of the given events (`SetCommMask` + overlapped `WaitCommEvent`), leaving the
   * event loop free.
   *
   * @param events The events to wait for.
   * @param options Timeout (milliseconds) and AbortSignal.
   * @returns The events that happened.
   * @throws {Deno.errors.TimedOut} When none happened within the timeout.
   * @throws {Win32Error} When the device cannot report events (under Wine, a pty reports
   * `ERROR_OPERATION_ABORTED`, as it has no modem-status ioctl; and with a modem-line event
   * (`cts`, `dsr`, `ring`, `dcd`) in the mask, Wine's `WaitCommEvent` on a pty does not return
   * at all, so do not ask a pty for those under Wine).
   */
  async waitEvent(events: CommEvent[], options?: IoOptions): Promise<CommEvent[]> {
    const list = parseArg(eventsSchema, events, "events");
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    const mask = list.reduce((m, e) => m | EVENT_BITS[e], 0);
    checkBool(
      kernel32().SetCommMask(this.unsafeHandle, mask),
      "SetCommMask",
      this.#context("set the event mask"),
    );
    const happened = new Uint32Array(1);
    const { timedOut } = await this.#overlapped(
      this.#event,
      "WaitCommEvent",
      "wait for events",
      (h, ov) => kernel32().WaitCommEvent(h, happened, ov),
      opts,
    );
    if (timedOut) {
      throw new Deno.errors.TimedOut(
        `No event on port "${this.#name}" within ${opts.timeout} ms`,
      );
    }
    return (Object.keys(EVENT_BITS) as CommEvent[]).filter((e) =>
      (happened[0] & EVENT_BITS[e]) !== 0
    );
  }

  /**
   * Issues one buffered device control with no input and `out` as its output buffer, overlapped
   * on the control slot.
   *
   * @returns The bytes the driver filled (`lpBytesReturned`), checked to be within `out`.
   */
  async #ioctl(
    code: number,
    ioctl: string,
    what: string,
    out: Uint8Array<ArrayBuffer>,
    options: IoOptions,
  ): Promise<number> {
    let result;
    try {
      result = await this.#overlapped(
        this.#control,
        "DeviceIoControl",
        what,
        (h, ov) => kernel32().DeviceIoControl(h, code, null, 0, out, out.length, null, ov),
        options,
      );
    } catch (e) {
      if (e instanceof Win32Error && UNANSWERED_IOCTL.has(e.code)) {
        throw win32Error("DeviceIoControl", e.code, {
          context:
            `${
              this.#context(what)
            }: the driver does not answer ${ioctl} (not a parallel port, or a parallel-port ` +
            `driver without this request; Wine has none)`,
          cause: e,
        });
      }
      throw e;
    }
    if (result.timedOut) {
      throw new Deno.errors.TimedOut(
        `Port "${this.#name}" did not answer ${ioctl} within ${options.timeout} ms`,
      );
    }
    if (result.count > out.length) {
      throw new RangeError(
        `${
          this.#context(what)
        }: the driver reported ${result.count} bytes for a ${out.length}-byte buffer`,
      );
    }
    return result.count;
  }

  /**
   * Reads a parallel port's status lines (`IOCTL_PAR_QUERY_INFORMATION`): busy, paper empty,
   * selected, off line, power off, not connected. Open the port with `{ configure: false }`.
   *
   * @param options Timeout (milliseconds, default none) and AbortSignal.
   * @returns The decoded status (see `parallel_codec.ts`).
   * @throws {Win32Error} When the driver does not answer the request (a serial port, a
   * parallel-port driver without it, or any port under Wine, which has no parallel-port driver),
   * with the reason in the message; or when the device fails.
   * @throws {Deno.errors.TimedOut} When the driver did not answer within the timeout.
   *
   * @example Is the printer ready?
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using lpt = SerialPort.open("LPT1", { configure: false });
   * const status = await lpt.parallelStatus({ timeout: 1000 });
   * if (status.paperEmpty) console.log("out of paper");
   * ```
   */
  async parallelStatus(options?: IoOptions): Promise<ParallelStatus> {
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    const what = "read the parallel-port status";
    const out = new Uint8Array(1);
    const count = await this.#ioctl(
      IOCTL_PAR_QUERY_INFORMATION,
      "IOCTL_PAR_QUERY_INFORMATION",
      what,
      out,
      opts,
    );
    if (count < 1) {
      throw new RangeError(`${this.#context(what)}: the driver returned no status byte`);
    }
    return decodeParallelStatus(out[0]);
  }

  /**
   * Reads the IEEE 1284 device ID of the device on a parallel port
   * (`IOCTL_PAR_QUERY_DEVICE_ID_SIZE`, then `IOCTL_PAR_QUERY_DEVICE_ID`) and parses its
   * `MFG`/`MDL`/`CMD` keys. Open the port with `{ configure: false }`.
   *
   * @param options Timeout (milliseconds, default none, for each of the two requests) and
   * AbortSignal.
   * @returns The parsed device ID (see `parallel_codec.ts`).
   * @throws {Win32Error} When the driver does not answer (as for
   * {@linkcode SerialPort.parallelStatus}), or the device does not send an ID.
   * @throws {RangeError} When the driver reports a size of 0 or over 64 KiB.
   * @throws {Deno.errors.TimedOut} When the driver did not answer within the timeout.
   *
   * @example Which printer is attached?
   * ```ts
   * import { SerialPort } from "./serial.ts";
   * using lpt = SerialPort.open("LPT1", { configure: false });
   * const id = await lpt.deviceId({ timeout: 2000 });
   * console.log(id.manufacturer, id.model, id.commandSet.join(","));
   * ```
   */
  async deviceId(options?: IoOptions): Promise<DeviceId> {
    const opts: IoOptions = parseArg(ioOptionsArg, options, "options") ?? {};
    const what = "read the IEEE 1284 device ID";
    const sizeOut = new Uint8Array(4);
    const got = await this.#ioctl(
      IOCTL_PAR_QUERY_DEVICE_ID_SIZE,
      "IOCTL_PAR_QUERY_DEVICE_ID_SIZE",
      what,
      sizeOut,
      opts,
    );
    if (got < 4) {
      throw new RangeError(`${this.#context(what)}: the driver returned ${got} of 4 size bytes`);
    }
    const size = new DataView(sizeOut.buffer).getUint32(0, true);
    if (size === 0 || size > MAX_DEVICE_ID_BYTES + 1) {
      throw new RangeError(
        `${this.#context(what)}: the driver reported a device ID of ${size} bytes ` +
          `(expected 1 to ${MAX_DEVICE_ID_BYTES + 1})`,
      );
    }
    const out = new Uint8Array(size);
    const count = await this.#ioctl(
      IOCTL_PAR_QUERY_DEVICE_ID,
      "IOCTL_PAR_QUERY_DEVICE_ID",
      what,
      out,
      opts,
    );
    return decodeDeviceIdBuffer(out, count);
  }

  #maybeRelease(): void {
    if (!this.#closing || this.#pending > 0) return;
    this.#handle.close();
  }

  /**
   * Cancels pending operations (they reject with `Deno.errors.BadResource`) and closes the port;
   * a second call does nothing. The handle is released once the cancelled operations have ended.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const abort of this.#aborts) {
      abort.abort(new Deno.errors.BadResource(`Port "${this.#name}" was closed`));
    }
    if (this.#pending > 0) kernel32().CancelIoEx(this.#handle.unsafeHandle, null);
    this.#maybeRelease();
  }

  /** Closes the port. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the port and waits until its pending operations have ended. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await Promise.all([this.#read.busy, this.#write.busy, this.#event.busy, this.#control.busy]);
  }
}
