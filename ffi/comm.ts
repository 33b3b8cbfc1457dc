/**
 * Structs and constants of the Win32 communications API (serial and parallel ports): `DCB`,
 * `COMMTIMEOUTS`, `COMSTAT`, and helpers for the C bitfields packed into their flag DWORDs.
 *
 * The functions themselves (`GetCommState`, `SetCommState`, ...) are in kernel32.ts.
 *
 * @module
 */
import { StructLayout } from "./struct.ts";

/**
 * Reads a bitfield from a 32-bit word (MSVC packs bitfields from the least significant bit).
 *
 * @param word The DWORD holding the bitfields.
 * @param shift The field's first bit.
 * @param width The field's width in bits.
 * @returns The field's value.
 *
 * @example
 * ```ts
 * import { getBits } from "./comm.ts";
 * getBits(0b1100, 2, 2); // 3
 * ```
 */
export function getBits(word: number, shift: number, width: number): number {
  return (word >>> shift) & ((1 << width) - 1);
}

/**
 * Writes a bitfield into a 32-bit word.
 *
 * @param word The DWORD holding the bitfields.
 * @param shift The field's first bit.
 * @param width The field's width in bits.
 * @param value The new value (must fit in `width` bits).
 * @returns The new word, as an unsigned 32-bit number.
 * @throws {RangeError} When the value does not fit.
 *
 * @example
 * ```ts
 * import { setBits } from "./comm.ts";
 * setBits(0, 4, 2, 2); // 32
 * ```
 */
export function setBits(word: number, shift: number, width: number, value: number): number {
  const mask = (1 << width) - 1;
  if (!Number.isInteger(value) || value < 0 || value > mask) {
    throw new RangeError(`Bitfield value ${value} does not fit in ${width} bits`);
  }
  return ((word & ~(mask << shift)) | (value << shift)) >>> 0;
}

/** `DCB` (28 bytes): the flag bitfields are in `flags`, see {@linkcode DCB_BITS}. */
export const DCB: StructLayout<{
  DCBlength: "u32";
  BaudRate: "u32";
  flags: "u32";
  wReserved: "u16";
  XonLim: "u16";
  XoffLim: "u16";
  ByteSize: "u8";
  Parity: "u8";
  StopBits: "u8";
  XonChar: "i8";
  XoffChar: "i8";
  ErrorChar: "i8";
  EofChar: "i8";
  EvtChar: "i8";
  wReserved1: "u16";
}> = new StructLayout(
  {
    DCBlength: "u32",
    BaudRate: "u32",
    flags: "u32",
    wReserved: "u16",
    XonLim: "u16",
    XoffLim: "u16",
    ByteSize: "u8",
    Parity: "u8",
    StopBits: "u8",
    XonChar: "i8",
    XoffChar: "i8",
    ErrorChar: "i8",
    EofChar: "i8",
    EvtChar: "i8",
    wReserved1: "u16",
  } as const,
);

/** The bitfields of `DCB.flags`, as `[shift, width]`, in the order `winbase.h` declares them. */
export const DCB_BITS = {
  fBinary: [0, 1],
  fParity: [1, 1],
  fOutxCtsFlow: [2, 1],
  fOutxDsrFlow: [3, 1],
  fDtrControl: [4, 2],
  fDsrSensitivity: [6, 1],
  fTXContinueOnXoff: [7, 1],
  fOutX: [8, 1],
  fInX: [9, 1],
  fErrorChar: [10, 1],
  fNull: [11, 1],
  fRtsControl: [12, 2],
  fAbortOnError: [14, 1],
} as const satisfies Record<string, readonly [number, number]>;

/** A name of a `DCB.flags` bitfield. */
export type DcbFlag = keyof typeof DCB_BITS;

/**
 * Reads one `DCB` flag bitfield.
 *
 * @param flags `DCB.flags`.
 * @param name The bitfield.
 * @returns Its value.
 *
 * @example
 * ```ts
 * import { dcbFlag } from "./comm.ts";
 * dcbFlag(0x1001, "fRtsControl"); // 1
 * ```
 */
export function dcbFlag(flags: number, name: DcbFlag): number {
  const [shift, width] = DCB_BITS[name];
  return getBits(flags, shift, width);
}

/**
 * Writes one `DCB` flag bitfield.
 *
 * @param flags `DCB.flags`.
 * @param name The bitfield.
 * @param value Its new value.
 * @returns The new `DCB.flags`.
 *
 * @example
 * ```ts
 * import { withDcbFlag } from "./comm.ts";
 * withDcbFlag(0, "fOutxCtsFlow", 1); // 4
 * ```
 */
export function withDcbFlag(flags: number, name: DcbFlag, value: number): number {
  const [shift, width] = DCB_BITS[name];
  return setBits(flags, shift, width, value);
}

/** `COMMTIMEOUTS` (20 bytes). Times in milliseconds; `MAXDWORD` has special meanings. */
export const COMMTIMEOUTS: StructLayout<{
  ReadIntervalTimeout: "u32";
  ReadTotalTimeoutMultiplier: "u32";
  ReadTotalTimeoutConstant: "u32";
  WriteTotalTimeoutMultiplier: "u32";
  WriteTotalTimeoutConstant: "u32";
}> = new StructLayout(
  {
    ReadIntervalTimeout: "u32",
    ReadTotalTimeoutMultiplier: "u32",
    ReadTotalTimeoutConstant: "u32",
    WriteTotalTimeoutMultiplier: "u32",
    WriteTotalTimeoutConstant: "u32",
  } as const,
);

/** `COMSTAT` (12 bytes): hold flags bitfields in `flags`, then the queue byte counts. */
export const COMSTAT: StructLayout<{ flags: "u32"; cbInQue: "u32"; cbOutQue: "u32" }> =
  new StructLayout({ flags: "u32", cbInQue: "u32", cbOutQue: "u32" } as const);

/** The bitfields of `COMSTAT.flags`, as `[shift, width]`. */
export const COMSTAT_BITS = {
  fCtsHold: [0, 1],
  fDsrHold: [1, 1],
  fRlsdHold: [2, 1],
  fXoffHold: [3, 1],
  fXoffSent: [4, 1],
  fEof: [5, 1],
  fTxim: [6, 1],
} as const satisfies Record<string, readonly [number, number]>;

/** `MAXDWORD`. */
export const MAXDWORD = 0xffff_ffff;

// Parity (DCB.Parity)
/** No parity bit. */
export const NOPARITY = 0;
/** Odd parity. */
export const ODDPARITY = 1;
/** Even parity. */
export const EVENPARITY = 2;
/** Parity bit always 1. */
export const MARKPARITY = 3;
/** Parity bit always 0. */
export const SPACEPARITY = 4;

// Stop bits (DCB.StopBits)
/** One stop bit. */
export const ONESTOPBIT = 0;
/** One and a half stop bits. */
export const ONE5STOPBITS = 1;
/** Two stop bits. */
export const TWOSTOPBITS = 2;

// fDtrControl / fRtsControl
/** DTR (or RTS) line off. */
export const DTR_CONTROL_DISABLE = 0;
/** DTR line on. */
export const DTR_CONTROL_ENABLE = 1;
/** DTR handshaking. */
export const DTR_CONTROL_HANDSHAKE = 2;
/** RTS line off. */
export const RTS_CONTROL_DISABLE = 0;
/** RTS line on. */
export const RTS_CONTROL_ENABLE = 1;
/** RTS handshaking (hardware flow control with CTS). */
export const RTS_CONTROL_HANDSHAKE = 2;
/** RTS on while bytes are queued for sending. */
export const RTS_CONTROL_TOGGLE = 3;

// PurgeComm flags
/** Abort pending overlapped writes. */
export const PURGE_TXABORT = 0x0001;
/** Abort pending overlapped reads. */
export const PURGE_RXABORT = 0x0002;
/** Clear the output buffer. */
export const PURGE_TXCLEAR = 0x0004;
/** Clear the input buffer. */
export const PURGE_RXCLEAR = 0x0008;

// EscapeCommFunction functions
/** Simulate XOFF received. */
export const SETXOFF = 1;
/** Simulate XON received. */
export const SETXON = 2;
/** Raise RTS. */
export const SETRTS = 3;
/** Lower RTS. */
export const CLRRTS = 4;
/** Raise DTR. */
export const SETDTR = 5;
/** Lower DTR. */
export const CLRDTR = 6;
/** Suspend transmission (break). */
export const SETBREAK = 8;
/** Resume transmission. */
export const CLRBREAK = 9;

// GetCommModemStatus bits
/** Clear To Send is on. */
export const MS_CTS_ON = 0x0010;
/** Data Set Ready is on. */
export const MS_DSR_ON = 0x0020;
/** Ring Indicator is on. */
export const MS_RING_ON = 0x0040;
/** Receive Line Signal Detect (Data Carrier Detect) is on. */
export const MS_RLSD_ON = 0x0080;

// ClearCommError error bits
/** Input buffer overflow. */
export const CE_RXOVER = 0x0001;
/** Character-buffer overrun. */
export const CE_OVERRUN = 0x0002;
/** Parity error. */
export const CE_RXPARITY = 0x0004;
/** Framing error. */
export const CE_FRAME = 0x0008;
/** Break condition. */
export const CE_BREAK = 0x0010;

// SetCommMask / WaitCommEvent events
/** A character was received. */
export const EV_RXCHAR = 0x0001;
/** The event character was received. */
export const EV_RXFLAG = 0x0002;
/** The last character of the output buffer was sent. */
export const EV_TXEMPTY = 0x0004;
/** CTS changed. */
export const EV_CTS = 0x0008;
/** DSR changed. */
export const EV_DSR = 0x0010;
/** RLSD (DCD) changed. */
export const EV_RLSD = 0x0020;
/** A break was detected. */
export const EV_BREAK = 0x0040;
/** A line-status error occurred. */
export const EV_ERR = 0x0080;
/** A ring indicator was detected. */
export const EV_RING = 0x0100;

// Parallel-port device controls (ntddpar.h): CTL_CODE(FILE_DEVICE_PARALLEL_PORT, n,
// METHOD_BUFFERED, FILE_ANY_ACCESS) = 0x16 << 16 | n << 2.
/** `FILE_DEVICE_PARALLEL_PORT`. */
export const FILE_DEVICE_PARALLEL_PORT = 0x16;

/**
 * `CTL_CODE(DeviceType, Function, Method, Access)` of winioctl.h.
 *
 * @param deviceType `FILE_DEVICE_*`.
 * @param fn The function number.
 * @param method `METHOD_*` (0 is `METHOD_BUFFERED`).
 * @param access `FILE_*_ACCESS` (0 is `FILE_ANY_ACCESS`).
 * @returns The control code.
 *
 * @example
 * ```ts
 * import { ctlCode, FILE_DEVICE_PARALLEL_PORT } from "./comm.ts";
 * ctlCode(FILE_DEVICE_PARALLEL_PORT, 1); // 0x160004, IOCTL_PAR_QUERY_INFORMATION
 * ```
 */
export function ctlCode(deviceType: number, fn: number, method = 0, access = 0): number {
  return ((deviceType << 16) | (access << 14) | (fn << 2) | method) >>> 0;
}

/** `IOCTL_PAR_QUERY_INFORMATION`: one status byte (`PAR_QUERY_INFORMATION`). */
export const IOCTL_PAR_QUERY_INFORMATION = 0x160004;
/** `IOCTL_PAR_QUERY_DEVICE_ID`: the IEEE 1284 device ID and a NUL. */
export const IOCTL_PAR_QUERY_DEVICE_ID = 0x16000c;
/** `IOCTL_PAR_QUERY_DEVICE_ID_SIZE`: a ULONG, the buffer size the device ID needs. */
export const IOCTL_PAR_QUERY_DEVICE_ID_SIZE = 0x160010;
/** `IOCTL_PAR_QUERY_RAW_DEVICE_ID`: the device ID with its two length bytes. */
export const IOCTL_PAR_QUERY_RAW_DEVICE_ID = 0x160030;
