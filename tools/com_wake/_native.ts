// The few Win32 functions the com-thread prototype needs that ffi/ does not declare yet.
const user32Symbols = {
  SendNotifyMessageW: { parameters: ["pointer", "u32", "usize", "isize"], result: "i32" },
} as const;

const ole32Symbols = {
  CoWaitForMultipleHandles: {
    parameters: ["u32", "u32", "u32", "buffer", "buffer"],
    result: "i32",
    callback: true,
  },
  CoMarshalInterThreadInterfaceInStream: {
    parameters: ["buffer", "pointer", "buffer"],
    result: "i32",
  },
  CoGetInterfaceAndReleaseStream: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
    callback: true,
  },
} as const;

let user32Library: Deno.DynamicLibrary<typeof user32Symbols> | undefined;
let ole32Library: Deno.DynamicLibrary<typeof ole32Symbols> | undefined;

/** user32 functions missing from ffi/user32.ts, opened once per isolate. */
export function extraUser32(): Deno.DynamicLibrary<typeof user32Symbols>["symbols"] {
  return (user32Library ??= Deno.dlopen("user32.dll", user32Symbols)).symbols;
}

/** ole32 functions missing from ffi/ole32.ts, opened once per isolate. */
export function extraOle32(): Deno.DynamicLibrary<typeof ole32Symbols>["symbols"] {
  return (ole32Library ??= Deno.dlopen("ole32.dll", ole32Symbols)).symbols;
}

/** The hand-off message to the main thread's window: wParam is the request block. */
export const WM_COM_CALL = 0x8000 + 0x31;

/**
 * A request block (BigUint64Array, in the Worker's memory, read by the main thread through its
 * address): the vtable slot, its arguments after `this` as raw 64-bit values, the result, the
 * event to set when done, and up to 8 interface arguments marshalled for the main thread
 * (their index in rgvarg and the stream).
 */
export const REQ = {
  slot: 0,
  args: 1, // 9 slots
  result: 10,
  event: 11,
  streams: 12, // count, then pairs from 13
  size: 13 + 16,
} as const;

/** The parameters after `this` of IDispatch's methods 3 to 6. */
export const SLOT_PARAMETERS: Record<number, Deno.NativeType[]> = {
  3: ["pointer"],
  4: ["u32", "u32", "pointer"],
  5: ["pointer", "pointer", "u32", "u32", "pointer"],
  6: ["i32", "pointer", "u32", "u16", "pointer", "pointer", "pointer", "pointer"],
};
