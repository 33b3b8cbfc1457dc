/**
 * The DCB codec of serial ports: {@linkcode applySettings} writes a port's line settings into a
 * `DCB` (the structure `GetCommState`/`SetCommState` exchange), {@linkcode dcbSettings} reads
 * them back. `serial.ts` re-exports both.
 *
 * @module
 */
import { z } from "zod";
import {
  DCB,
  dcbFlag,
  DTR_CONTROL_ENABLE,
  RTS_CONTROL_ENABLE,
  RTS_CONTROL_HANDSHAKE,
  withDcbFlag,
} from "../ffi/comm.ts";
import type { FlowControl, Parity, SerialSettings, StopBits } from "./serial.ts";
import { parseArg } from "./_validate.ts";

const PARITY: Parity[] = ["none", "odd", "even", "mark", "space"];
const STOP_BITS: StopBits[] = [1, 1.5, 2];

const settingsShape = {
  baudRate: z.number({ error: "must be a number of bits per second" })
    .int({ error: "must be a whole number of bits per second" })
    .min(50, { error: "must be at least 50" })
    .max(4_000_000, { error: "must be at most 4000000" }),
  dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)], {
    error: "must be 5, 6, 7 or 8",
  }),
  parity: z.enum(PARITY, { error: `must be one of ${PARITY.join(", ")}` }),
  stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)], {
    error: "must be 1, 1.5 or 2",
  }),
  flowControl: z.enum(["none", "rts-cts", "xon-xoff"], {
    error: "must be none, rts-cts or xon-xoff",
  }),
};

export const settingsSchema = z.object({
  baudRate: settingsShape.baudRate.optional(),
  dataBits: settingsShape.dataBits.optional(),
  parity: settingsShape.parity.optional(),
  stopBits: settingsShape.stopBits.optional(),
  flowControl: settingsShape.flowControl.optional(),
}).strict();

/**
 * Writes line settings into a `DCB` (the fields and flag bits `SetCommState` reads), leaving the
 * other fields as they are. Always sets `fBinary` (Windows supports binary mode only).
 *
 * @param dcb A `DCB` as `GetCommState` filled it.
 * @param settings The settings to change.
 * @throws {TypeError} For a bad setting.
 * @throws {RangeError} For a setting out of range.
 *
 * @example Change a DCB's settings
 * ```ts
 * import { DCB } from "../ffi/comm.ts";
 * import { applySettings, dcbSettings } from "./serial.ts";
 * const dcb = DCB.alloc({ DCBlength: DCB.size });
 * applySettings(dcb, { baudRate: 57600, parity: "even" });
 * dcbSettings(dcb).parity; // "even"
 * ```
 */
export function applySettings(dcb: Uint8Array, settings: Partial<SerialSettings>): void {
  const s = parseArg(settingsSchema, settings, "settings");
  const d = DCB.read(dcb);
  let flags = withDcbFlag(d.flags, "fBinary", 1);
  const values: Partial<typeof d> = { DCBlength: DCB.size };
  if (s.baudRate !== undefined) values.BaudRate = s.baudRate;
  if (s.dataBits !== undefined) values.ByteSize = s.dataBits;
  if (s.parity !== undefined) {
    values.Parity = PARITY.indexOf(s.parity);
    flags = withDcbFlag(flags, "fParity", s.parity === "none" ? 0 : 1);
  }
  if (s.stopBits !== undefined) values.StopBits = STOP_BITS.indexOf(s.stopBits);
  if (s.flowControl !== undefined) {
    const rtsCts = s.flowControl === "rts-cts";
    const xon = s.flowControl === "xon-xoff";
    flags = withDcbFlag(flags, "fOutxCtsFlow", rtsCts ? 1 : 0);
    flags = withDcbFlag(flags, "fOutxDsrFlow", 0);
    flags = withDcbFlag(flags, "fRtsControl", rtsCts ? RTS_CONTROL_HANDSHAKE : RTS_CONTROL_ENABLE);
    flags = withDcbFlag(flags, "fDtrControl", DTR_CONTROL_ENABLE);
    flags = withDcbFlag(flags, "fOutX", xon ? 1 : 0);
    flags = withDcbFlag(flags, "fInX", xon ? 1 : 0);
    if (xon) {
      values.XonChar = 0x11;
      values.XoffChar = 0x13;
    }
  }
  values.flags = flags;
  DCB.write(dcb, values);
}

/**
 * Reads the line settings from a `DCB`.
 *
 * @param dcb A `DCB`.
 * @returns The settings it holds.
 *
 * @example Read a DCB's settings
 * ```ts
 * import { DCB } from "../ffi/comm.ts";
 * import { dcbSettings } from "./serial.ts";
 * dcbSettings(DCB.alloc({ BaudRate: 9600, ByteSize: 8 })).baudRate; // 9600
 * ```
 */
export function dcbSettings(dcb: Uint8Array): SerialSettings {
  const d = DCB.read(dcb);
  const flow: FlowControl = dcbFlag(d.flags, "fOutxCtsFlow")
    ? "rts-cts"
    : dcbFlag(d.flags, "fOutX") || dcbFlag(d.flags, "fInX")
    ? "xon-xoff"
    : "none";
  return {
    baudRate: d.BaudRate,
    dataBits: d.ByteSize as 5 | 6 | 7 | 8,
    parity: PARITY[d.Parity] ?? "none",
    stopBits: STOP_BITS[d.StopBits] ?? 1,
    flowControl: flow,
  };
}
