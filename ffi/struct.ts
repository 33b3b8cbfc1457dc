/**
 * C struct layouts for x64 Windows, computed by the C rules: each field at its natural alignment,
 * the struct padded to its largest alignment. Offsets and sizes are checked in tests against the
 * sizes Win32 documents (`SECURITY_ATTRIBUTES` is 24 bytes, `OVERLAPPED` 32, ...).
 *
 * @module
 */

/** A scalar field type. `pointer`, `usize` and `isize` are 8 bytes on x64. */
export type Scalar =
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "u64"
  | "i64"
  | "usize"
  | "isize"
  | "f32"
  | "f64"
  | "pointer";

/** A field: a scalar, a nested struct, or a fixed array of scalars (`["u16", 32]`). */
export type FieldType = Scalar | StructLayout<FieldMap> | readonly [Scalar, number];

/** The fields of a struct, in declaration order. */
export type FieldMap = { readonly [name: string]: FieldType };

/** The JavaScript value of a scalar field. */
export type ScalarValue<T extends Scalar> = T extends "u64" | "i64" | "usize" | "isize" ? bigint
  : T extends "pointer" ? Deno.PointerValue
  : number;

/** The JavaScript value of a field. */
export type FieldValue<T> = T extends Scalar ? ScalarValue<T>
  : T extends StructLayout<infer F> ? StructValues<F>
  : T extends readonly [infer S extends Scalar, number] ? ScalarValue<S>[]
  : never;

/** The values of a struct's fields, as {@linkcode StructLayout.read} returns them. */
export type StructValues<F extends FieldMap> = { -readonly [K in keyof F]: FieldValue<F[K]> };

const SCALAR_SIZE: Record<Scalar, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  usize: 8,
  isize: 8,
  f64: 8,
  pointer: 8,
};

function sizeAlign(type: FieldType): [size: number, align: number] {
  if (typeof type === "string") return [SCALAR_SIZE[type], SCALAR_SIZE[type]];
  if (type instanceof StructLayout) return [type.size, type.align];
  const [scalar, count] = type as readonly [Scalar, number];
  return [SCALAR_SIZE[scalar] * count, SCALAR_SIZE[scalar]];
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function readScalar(
  view: DataView,
  offset: number,
  type: Scalar,
): number | bigint | Deno.PointerValue {
  switch (type) {
    case "u8":
      return view.getUint8(offset);
    case "i8":
      return view.getInt8(offset);
    case "u16":
      return view.getUint16(offset, true);
    case "i16":
      return view.getInt16(offset, true);
    case "u32":
      return view.getUint32(offset, true);
    case "i32":
      return view.getInt32(offset, true);
    case "f32":
      return view.getFloat32(offset, true);
    case "f64":
      return view.getFloat64(offset, true);
    case "u64":
    case "usize":
      return view.getBigUint64(offset, true);
    case "i64":
    case "isize":
      return view.getBigInt64(offset, true);
    case "pointer":
      return Deno.UnsafePointer.create(view.getBigUint64(offset, true));
  }
}

function writeScalar(view: DataView, offset: number, type: Scalar, value: unknown): void {
  switch (type) {
    case "u8":
      return view.setUint8(offset, Number(value));
    case "i8":
      return view.setInt8(offset, Number(value));
    case "u16":
      return view.setUint16(offset, Number(value), true);
    case "i16":
      return view.setInt16(offset, Number(value), true);
    case "u32":
      return view.setUint32(offset, Number(value), true);
    case "i32":
      return view.setInt32(offset, Number(value), true);
    case "f32":
      return view.setFloat32(offset, Number(value), true);
    case "f64":
      return view.setFloat64(offset, Number(value), true);
    case "u64":
    case "usize":
      return view.setBigUint64(offset, BigInt(value as bigint | number), true);
    case "i64":
    case "isize":
      return view.setBigInt64(offset, BigInt(value as bigint | number), true);
    case "pointer": {
      const raw = typeof value === "bigint" || typeof value === "number"
        ? BigInt(value)
        : Deno.UnsafePointer.value(value as Deno.PointerValue);
      return view.setBigUint64(offset, BigInt.asUintN(64, BigInt(raw)), true);
    }
  }
}

/**
 * The layout of a C struct: its size, alignment and field offsets, and reading and writing of
 * its fields in a byte buffer.
 *
 * @typeParam F The field map.
 *
 * @example SECURITY_ATTRIBUTES
 * ```ts
 * import { StructLayout } from "./struct.ts";
 * const SECURITY_ATTRIBUTES = new StructLayout({
 *   nLength: "u32",
 *   lpSecurityDescriptor: "pointer",
 *   bInheritHandle: "i32",
 * });
 * SECURITY_ATTRIBUTES.size; // 24
 * const bytes = SECURITY_ATTRIBUTES.alloc({ nLength: 24, bInheritHandle: 1 });
 * ```
 */
export class StructLayout<F extends FieldMap> {
  /** The fields, as declared. */
  readonly fields: F;
  /** `sizeof` the struct, including trailing padding. */
  readonly size: number;
  /** The struct's alignment (its largest field alignment). */
  readonly align: number;
  readonly #offsets: Record<string, number> = {};

  /**
   * Lays out the fields: each at the next offset its alignment allows, as a C compiler does.
   *
   * @param fields The fields in declaration order.
   */
  constructor(fields: F) {
    this.fields = fields;
    let offset = 0;
    let maxAlign = 1;
    for (const [name, type] of Object.entries(fields)) {
      const [size, align] = sizeAlign(type);
      offset = alignUp(offset, align);
      this.#offsets[name] = offset;
      offset += size;
      maxAlign = Math.max(maxAlign, align);
    }
    this.align = maxAlign;
    this.size = alignUp(offset, maxAlign);
  }

  /**
   * The byte offset of a field (`offsetof`).
   *
   * @param name The field's name.
   * @returns Its offset from the start of the struct.
   */
  offsetOf(name: keyof F & string): number {
    return this.#offsets[name];
  }

  /**
   * Allocates a zeroed struct and writes the given fields.
   *
   * @param values Fields to set; the rest stay zero.
   * @returns The struct's bytes.
   */
  alloc(values: Partial<StructValues<F>> = {}): Uint8Array<ArrayBuffer> {
    const bytes = new Uint8Array(this.size);
    this.write(bytes, values);
    return bytes;
  }

  /**
   * Writes fields into a buffer holding this struct at `base`.
   *
   * @param bytes The buffer.
   * @param values Fields to set; others are left as they are.
   * @param base The struct's offset in the buffer.
   */
  write(bytes: Uint8Array, values: Partial<StructValues<F>>, base = 0): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) continue;
      const type = this.fields[name];
      if (type === undefined) throw new TypeError(`Unknown struct field "${name}"`);
      const at = base + this.#offsets[name];
      if (typeof type === "string") writeScalar(view, at, type, value);
      else if (type instanceof StructLayout) type.write(bytes, value as never, at);
      else {
        const [scalar, count] = type as readonly [Scalar, number];
        const items = value as unknown[];
        if (items.length > count) {
          throw new RangeError(`Struct field "${name}" holds ${count} items: got ${items.length}`);
        }
        items.forEach((item, i) => writeScalar(view, at + i * SCALAR_SIZE[scalar], scalar, item));
      }
    }
  }

  /**
   * Reads every field of the struct at `base`.
   *
   * @param bytes The buffer.
   * @param base The struct's offset in the buffer.
   * @returns The field values.
   */
  read(bytes: Uint8Array, base = 0): StructValues<F> {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: Record<string, unknown> = {};
    for (const [name, type] of Object.entries(this.fields)) {
      const at = base + this.#offsets[name];
      if (typeof type === "string") out[name] = readScalar(view, at, type);
      else if (type instanceof StructLayout) out[name] = type.read(bytes, at);
      else {
        const [scalar, count] = type as readonly [Scalar, number];
        out[name] = Array.from(
          { length: count },
          (_, i) => readScalar(view, at + i * SCALAR_SIZE[scalar], scalar),
        );
      }
    }
    return out as StructValues<F>;
  }
}

// ---- layouts shared by several mechanisms ----

/** `SECURITY_ATTRIBUTES` (24 bytes on x64). */
export const SECURITY_ATTRIBUTES: StructLayout<{
  nLength: "u32";
  lpSecurityDescriptor: "pointer";
  bInheritHandle: "i32";
}> = new StructLayout(
  {
    nLength: "u32",
    lpSecurityDescriptor: "pointer",
    bInheritHandle: "i32",
  } as const,
);

/** `OVERLAPPED` (32 bytes on x64); the `Offset`/`OffsetHigh` pair shares its place with `Pointer`. */
export const OVERLAPPED: StructLayout<{
  Internal: "usize";
  InternalHigh: "usize";
  Offset: "u32";
  OffsetHigh: "u32";
  hEvent: "pointer";
}> = new StructLayout(
  {
    Internal: "usize",
    InternalHigh: "usize",
    Offset: "u32",
    OffsetHigh: "u32",
    hEvent: "pointer",
  } as const,
);

/** `SYSTEM_INFO` (48 bytes on x64). */
export const SYSTEM_INFO: StructLayout<{
  wProcessorArchitecture: "u16";
  wReserved: "u16";
  dwPageSize: "u32";
  lpMinimumApplicationAddress: "pointer";
  lpMaximumApplicationAddress: "pointer";
  dwActiveProcessorMask: "usize";
  dwNumberOfProcessors: "u32";
  dwProcessorType: "u32";
  dwAllocationGranularity: "u32";
  wProcessorLevel: "u16";
  wProcessorRevision: "u16";
}> = new StructLayout(
  {
    wProcessorArchitecture: "u16",
    wReserved: "u16",
    dwPageSize: "u32",
    lpMinimumApplicationAddress: "pointer",
    lpMaximumApplicationAddress: "pointer",
    dwActiveProcessorMask: "usize",
    dwNumberOfProcessors: "u32",
    dwProcessorType: "u32",
    dwAllocationGranularity: "u32",
    wProcessorLevel: "u16",
    wProcessorRevision: "u16",
  } as const,
);

/**
 * Splits a 64-bit size or offset into the high and low DWORDs that Win32 takes separately
 * (`dwMaximumSizeHigh`/`dwMaximumSizeLow`, `dwFileOffsetHigh`/`dwFileOffsetLow`).
 *
 * @param value A value from 0 to 2^64 - 1.
 * @returns `[high, low]`, each from 0 to 2^32 - 1.
 * @throws {RangeError} When the value is negative or above 2^64 - 1.
 *
 * @example 5 GiB
 * ```ts
 * import { splitDword } from "./struct.ts";
 * splitDword(5n * 1024n ** 3n); // [1, 1073741824]
 * ```
 */
export function splitDword(value: bigint | number): [high: number, low: number] {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`Value does not fit in 64 bits: ${v}`);
  }
  return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
}
