/**
 * Shared memory: named file mappings backed by the paging file (`CreateFileMappingW`,
 * `OpenFileMappingW`, `MapViewOfFile`), read and written through a typed array over the mapped
 * memory, with no FFI call per access.
 *
 * Two ways to meet:
 * - client/server: the server calls {@linkcode SharedMemory.create}, clients
 *   {@linkcode SharedMemory.open};
 * - peer to peer: every peer calls {@linkcode SharedMemory.createOrOpen}; exactly one of them
 *   creates the mapping and runs `init`, and the others wait until it has finished.
 *
 * Pair a mapping with a {@linkcode Mutex} (from `sync.ts`) when several processes write it.
 *
 * @example Client and server
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * // server
 * using shm = SharedMemory.create("Local\\prices", { size: 4096 });
 * shm.view.writeText(0, "EURUSD 1.0832");
 * // client, in another process
 * using peer = SharedMemory.open("Local\\prices", { access: "read-only" });
 * console.log(peer.view.readText(0)); // "EURUSD 1.0832"
 * ```
 *
 * @module
 */
import { z } from "zod";
import { checkBool, checkHandle, win32Error, withLastError } from "../ffi/error.ts";
import { OwnedHandle } from "../ffi/handle.ts";
import {
  FILE_MAP_READ,
  FILE_MAP_WRITE,
  kernel32,
  PAGE_READWRITE,
  SEC_COMMIT,
} from "../ffi/kernel32.ts";
import { ntdll } from "../ffi/ntdll.ts";
import { SecurityAttributes, type SecurityOptions } from "../ffi/security.ts";
import { wide, wideOrNull } from "../ffi/strings.ts";
import { splitDword, SYSTEM_INFO } from "../ffi/struct.ts";
import {
  type IoOptions,
  ioOptionsSchema,
  mappingSizeSchema,
  MAX_OBJECT_NAME,
  objectNameSchema,
  offsetSchema,
  parseArg,
  securitySchema,
  signalSchema,
  timeoutSchema,
} from "./_validate.ts";
import { Mutex, type MutexGuard } from "./sync.ts";

export type { SecurityOptions } from "../ffi/security.ts";

const ERROR_ALREADY_EXISTS = 183;
const ERROR_FILE_NOT_FOUND = 2;
/**
 * Milliseconds a peer waits for the holder of the init lock to create the mapping. A peer that
 * holds it creates the mapping at once; a holder that has not after this long is not a peer
 * (another program took the name first).
 */
const SQUAT_GRACE_MS = 2000;
/** `SECTION_QUERY`: lets NtQuerySection read an opened mapping's size. */
const SECTION_QUERY = 0x0001;
/** The suffix of the mutex that serialises {@linkcode SharedMemory.createOrOpen}. */
const INIT_LOCK_SUFFIX = "#winipc-init";

/**
 * How a mapping or view may be accessed.
 *
 * @example A reader that can never write by mistake
 * ```ts
 * import { type MappingAccess, SharedMemory } from "./shm.ts";
 * const access: MappingAccess = "read-only";
 * using shm = SharedMemory.open("Local\\board", { access });
 * console.log(shm.view.readText(0));
 * ```
 */
export type MappingAccess = "read-write" | "read-only";

/**
 * Options of {@linkcode SharedMemory.create}.
 *
 * @example 8 GiB, readable and writable only by its owner
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * using shm = SharedMemory.create("Local\\big", {
 *   size: 8n << 30n,
 *   security: { sddl: "D:P(A;;GA;;;OW)" },
 * });
 * ```
 */
export interface CreateSharedMemoryOptions {
  /** Size in bytes (number or bigint; sizes beyond 4 GiB work). Required. */
  size: number | bigint;
  /** Inheritance and access control of the new mapping. Default: the creator's default DACL. */
  security?: SecurityOptions;
}

/**
 * Options of {@linkcode SharedMemory.open}.
 *
 * @example Open a mapping another process created, read-only
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * using shm = SharedMemory.open("Local\\board", { access: "read-only" });
 * ```
 */
export interface OpenSharedMemoryOptions {
  /** `"read-write"` (default) or `"read-only"`: the rights asked of `OpenFileMappingW`. */
  access?: MappingAccess;
}

/**
 * Options of {@linkcode SharedMemory.createOrOpen}.
 *
 * @example The first peer writes a header; the others wait up to 5 s for it
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * using shm = await SharedMemory.createOrOpen("Local\\ring", {
 *   size: 1 << 20,
 *   init: (view) => view.setUint32(0, 0x52494e47), // "RING"
 *   timeout: 5000,
 * });
 * ```
 */
export interface CreateOrOpenSharedMemoryOptions extends CreateSharedMemoryOptions, IoOptions {
  /**
   * Runs once, in the peer that created the mapping, before any other peer can open it. It gets
   * the whole view. Other peers' `createOrOpen` resolves only after it has returned (a promise it
   * returns is awaited; any other value is ignored).
   */
  init?: (view: SharedView) => unknown;
  /** Milliseconds to wait for a peer that is initialising. Default 10,000. */
  timeout?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode SharedMemory.map}.
 *
 * @example Map 64 KiB at an offset of 5 GiB
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * using shm = SharedMemory.open("Local\\big");
 * using window = shm.map({ offset: 5n << 30n, length: 65536, access: "read-only" });
 * ```
 */
export interface MapOptions {
  /** Where the view starts in the mapping, in bytes (any value; winipc aligns it). Default 0. */
  offset?: number | bigint;
  /** The view's length in bytes. Default: to the end of the mapping. */
  length?: number;
  /** `"read-write"` (default when the mapping allows it) or `"read-only"`. */
  access?: MappingAccess;
}

/**
 * Text encodings of {@linkcode SharedView.readText} and {@linkcode SharedView.writeText}.
 *
 * @example Share text with a program that reads UTF-16 (wchar_t)
 * ```ts
 * import { SharedMemory, type TextEncoding } from "./shm.ts";
 * const encoding: TextEncoding = "utf-16le";
 * using shm = SharedMemory.create("Local\\status", { size: 4096 });
 * shm.view.writeText(0, "prêt ✓", { encoding });
 * shm.view.readText(0, { encoding }); // "prêt ✓"
 * ```
 */
export type TextEncoding = "utf-8" | "utf-16le";

const accessSchema = z.enum(["read-write", "read-only"], {
  error: 'must be "read-write" or "read-only"',
});

const createSchema = z.object({ size: mappingSizeSchema, security: securitySchema }).strict();
const openSchema = z.object({ access: accessSchema.optional() }).strict().optional();
const createOrOpenSchema = z.object({
  size: mappingSizeSchema,
  security: securitySchema,
  init: z.custom<(view: SharedView) => unknown>((v) => typeof v === "function", {
    error: "must be a function",
  }).optional(),
  timeout: timeoutSchema.optional(),
  signal: signalSchema,
}).strict();
const waitSchema = ioOptionsSchema;
const initNameSchema = objectNameSchema.refine(
  (s) => s.length + INIT_LOCK_SUFFIX.length <= MAX_OBJECT_NAME,
  { error: `must be at most ${MAX_OBJECT_NAME - INIT_LOCK_SUFFIX.length} characters` },
);
const mapSchema = z.object({
  offset: offsetSchema.optional(),
  length: z.number().int({ error: "must be an integer" })
    .min(1, { error: "must be at least 1 byte" }).optional(),
  access: accessSchema.optional(),
}).strict().optional();
const encodingSchema = z.enum(["utf-8", "utf-16le"], { error: 'must be "utf-8" or "utf-16le"' })
  .optional();

let granularity: number | undefined;
/** The allocation granularity (64 KiB on x64): view offsets must be multiples of it. */
function allocationGranularity(): number {
  if (granularity === undefined) {
    const info = new Uint8Array(SYSTEM_INFO.size);
    kernel32().GetSystemInfo(info);
    granularity = SYSTEM_INFO.read(info).dwAllocationGranularity;
  }
  return granularity;
}

/** Section attributes (`SEC_*`) that NtQuerySection reports for a section of another kind. */
const SEC_FILE = 0x0080_0000;
const SEC_IMAGE = 0x0100_0000;
const SEC_RESERVE = 0x0400_0000;

/**
 * The size of a mapping another process made, from the section object itself
 * (`SectionBasicInformation`), after checking its kind: only a section backed by the paging file
 * with every page committed (`SEC_COMMIT`) is accepted. A `SEC_RESERVE` section's pages fault on
 * first touch, and a file-backed or image section is not what this module maps; a process that
 * squats the name with one would crash its peers.
 */
function sectionSize(handle: Deno.PointerObject, name: string | null): bigint {
  const info = new BigInt64Array(3); // { PVOID BaseAddress; ULONG Attributes; LARGE_INTEGER Size }
  const status = ntdll().NtQuerySection(handle, 0, info, 24n, null);
  if (status !== 0) {
    throw new Error(
      `Cannot read the size of a file mapping: NtQuerySection failed with NTSTATUS 0x${
        (status >>> 0).toString(16)
      }`,
    );
  }
  const attributes = Number(info[1] & 0xffff_ffffn);
  const kind = attributes & SEC_RESERVE
    ? "SEC_RESERVE (its pages are not committed)"
    : attributes & SEC_IMAGE
    ? "SEC_IMAGE (an executable image)"
    : attributes & SEC_FILE
    ? "file-backed"
    : attributes & SEC_COMMIT
    ? undefined
    : `of attributes 0x${attributes.toString(16)}`;
  if (kind !== undefined) {
    throw new Error(
      `Cannot open file mapping "${name}": it is a ${kind} section, not a paging-file section with every page committed`,
    );
  }
  return info[2];
}

/** Whether a mapping of that name exists (one we may not open counts). */
function mappingExists(name: string): boolean {
  const wideName = wide(name);
  const [raw, code] = withLastError(() => kernel32().OpenFileMappingW(SECTION_QUERY, 0, wideName));
  if (raw === null) return code !== ERROR_FILE_NOT_FOUND;
  kernel32().CloseHandle(raw);
  return true;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");
const utf16Decoder = new TextDecoder("utf-16le");

/**
 * A named (or unnamed) file mapping backed by the paging file. It lives while any process holds a
 * handle to it. Owns its handle and the views made by {@linkcode SharedMemory.map}.
 *
 * @example A server creates the mapping, clients open it
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * // server
 * using board = SharedMemory.create("Local\\board", { size: 4096 });
 * board.view.writeText(0, "hello");
 * // client, in another process
 * using seen = SharedMemory.open("Local\\board");
 * console.log(seen.view.readText(0)); // "hello"
 * ```
 */
export class SharedMemory implements Disposable {
  readonly #handle: OwnedHandle;
  readonly #views = new Set<SharedView>();
  #view: SharedView | undefined;
  /** The name, or `null` for an unnamed mapping. */
  readonly name: string | null;
  /**
   * The mapping's size in bytes. For a mapping this object created, the size asked for; for an
   * opened one, the section's size as the kernel reports it, which Wine rounds up to a whole
   * 4 KiB page (the pages past the creator's size are zero).
   */
  readonly size: bigint;
  /** Whether this call created the mapping (`false` when it opened an existing one). */
  readonly created: boolean;
  /** The access this handle has. */
  readonly access: MappingAccess;

  private constructor(
    name: string | null,
    handle: OwnedHandle,
    size: bigint,
    created: boolean,
    access: MappingAccess,
  ) {
    this.name = name;
    this.#handle = handle;
    this.size = size;
    this.created = created;
    this.access = access;
  }

  static #createRaw(
    name: string | null,
    size: bigint,
    security: SecurityOptions | undefined,
  ): SharedMemory {
    using attributes = new SecurityAttributes(security);
    const [high, low] = splitDword(size);
    const context = name === null
      ? `Cannot create file mapping of ${size} bytes`
      : `Cannot create file mapping "${name}" of ${size} bytes`;
    const pagingFile = Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn); // INVALID_HANDLE_VALUE
    const wideName = wideOrNull(name);
    // ERROR_ALREADY_EXISTS on success, the cause on failure
    const [raw, error] = withLastError(() =>
      kernel32().CreateFileMappingW(
        pagingFile,
        attributes.bytes,
        PAGE_READWRITE | SEC_COMMIT,
        high,
        low,
        wideName,
      )
    );
    if (raw === null) throw win32Error("CreateFileMappingW", error, { context });
    const handle = new OwnedHandle(raw);
    const created = error !== ERROR_ALREADY_EXISTS;
    let actual = size;
    if (!created) {
      try {
        actual = sectionSize(raw, name);
      } catch (e) {
        handle.close();
        throw e;
      }
    }
    return new SharedMemory(name, handle, actual, created, "read-write");
  }

  /**
   * Creates a mapping. Fails when one with that name exists already.
   *
   * @param name A name other processes can open (`Local\` and `Global\` prefixes work), or
   * `null` for an unnamed mapping (shared by handle inheritance only).
   * @param options `size` (required) and `security`.
   * @returns The mapping, `created` `true`.
   * @throws {Win32Error} `ERROR_ALREADY_EXISTS` when the name is taken; `ERROR_NOT_ENOUGH_MEMORY`
   * or similar when the size cannot be committed.
   * @throws {RangeError} For a size below 1 byte or of 2^64 and above.
   * @throws {TypeError} For an invalid name.
   *
   * @example A 1 MiB mapping
   * ```ts
   * import { SharedMemory } from "./shm.ts";
   * using shm = SharedMemory.create("Local\\frame", { size: 1 << 20 });
   * shm.view.bytes.fill(0xff);
   * ```
   */
  static create(name: string | null, options: CreateSharedMemoryOptions): SharedMemory {
    const n = name === null ? null : parseArg(objectNameSchema, name, "name");
    const opts = parseArg(createSchema, options, "options");
    const shm = SharedMemory.#createRaw(n, opts.size, opts.security);
    if (!shm.created) {
      shm.close();
      throw win32Error("CreateFileMappingW", ERROR_ALREADY_EXISTS, {
        context: `Cannot create file mapping "${n}"`,
      });
    }
    return shm;
  }

  /**
   * Opens an existing named mapping.
   *
   * @param name The name.
   * @param options `access`: `"read-write"` (default) or `"read-only"`.
   * @returns The mapping; `size` is the size its creator gave it.
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is none; `ERROR_ACCESS_DENIED` when
   * its security does not grant the access.
   *
   * @example Open read-only
   * ```ts
   * import { SharedMemory } from "./shm.ts";
   * using shm = SharedMemory.open("Local\\frame", { access: "read-only" });
   * console.log(shm.size);
   * ```
   */
  static open(name: string, options?: OpenSharedMemoryOptions): SharedMemory {
    const n = parseArg(objectNameSchema, name, "name");
    const access = parseArg(openSchema, options, "options")?.access ?? "read-write";
    const rights = SECTION_QUERY | FILE_MAP_READ | (access === "read-write" ? FILE_MAP_WRITE : 0);
    const raw = checkHandle(
      kernel32().OpenFileMappingW(rights, 0, wide(n)),
      "OpenFileMappingW",
      `Cannot open file mapping "${n}"`,
    );
    const handle = new OwnedHandle(raw);
    try {
      return new SharedMemory(n, handle, sectionSize(raw, n), false, access);
    } catch (e) {
      handle.close();
      throw e;
    }
  }

  /**
   * Opens the named mapping, or creates it when there is none: the peer-to-peer way to meet.
   * Exactly one peer creates it and runs `init`; the others wait (without blocking the event
   * loop) until `init` has returned, then open it. A per-name mutex (`<name>#winipc-init`)
   * serialises the peers, so there is no race.
   *
   * @param name The name (at most 248 characters, to leave room for the lock's suffix).
   * @param options `size`, `init`, `security`, `timeout` and `signal`.
   * @returns The mapping; `created` tells whether this peer created it.
   * @throws {Deno.errors.TimedOut} When another peer holds the lock past `timeout`.
   *
   * @example Peer to peer
   * ```ts
   * import { SharedMemory } from "./shm.ts";
   * using shm = await SharedMemory.createOrOpen("Local\\board", {
   *   size: 4096,
   *   init: (view) => view.writeText(0, "empty board"),
   * });
   * console.log(shm.created, shm.view.readText(0));
   * ```
   */
  static async createOrOpen(
    name: string,
    options: CreateOrOpenSharedMemoryOptions,
  ): Promise<SharedMemory> {
    const n = parseArg(initNameSchema, name, "name");
    const opts = parseArg(createOrOpenSchema, options, "options");
    return await SharedMemory.#underInitLock(n, opts, async () => {
      const shm = SharedMemory.#createRaw(n, opts.size, opts.security);
      if (shm.created && options.init) {
        try {
          await options.init(shm.view);
        } catch (e) {
          shm.close();
          throw e;
        }
      }
      return shm;
    });
  }

  /**
   * Opens an existing named mapping once no peer is inside {@linkcode SharedMemory.createOrOpen}'s
   * `init` for it, so the data it sees is initialised.
   *
   * @param name The name (at most 248 characters).
   * @param options `access`, and `timeout`/`signal` for the wait.
   * @returns The mapping.
   * @throws {Win32Error} `ERROR_FILE_NOT_FOUND` when there is none.
   *
   * @example Wait for the creator's init
   * ```ts
   * import { SharedMemory } from "./shm.ts";
   * using shm = await SharedMemory.openInitialized("Local\\board", { timeout: 5000 });
   * ```
   */
  static async openInitialized(
    name: string,
    options?: OpenSharedMemoryOptions & IoOptions,
  ): Promise<SharedMemory> {
    const n = parseArg(initNameSchema, name, "name");
    const { access, ...wait } = options ?? {};
    const opts = parseArg(waitSchema, wait, "options");
    return await SharedMemory.#underInitLock(n, opts, () => SharedMemory.open(n, { access }));
  }

  static async #underInitLock<T>(
    name: string,
    options: IoOptions & { security?: SecurityOptions },
    fn: () => T | Promise<T>,
  ): Promise<T> {
    const lockName = name + INIT_LOCK_SUFFIX;
    using lock = Mutex.createOrOpen(lockName, { security: options.security });
    // An abandoned lock means a creator died in init: its mapping died with it unless a peer
    // held it, and no peer can have, since every peer opens it under this lock.
    const timeout = options.timeout ?? 10_000;
    const started = performance.now();
    let guard: MutexGuard;
    try {
      guard = await lock.lock({
        timeout: Math.min(timeout, SQUAT_GRACE_MS),
        signal: options.signal,
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.TimedOut) || timeout <= SQUAT_GRACE_MS) throw e;
      if (!mappingExists(name)) {
        throw new Deno.errors.Busy(
          `Cannot set up shared memory "${name}": its init lock "${lockName}" is held by a process that has not created the mapping in ${SQUAT_GRACE_MS} ms (another program holds the name)`,
        );
      }
      // The mapping exists: its creator may still be in init.
      guard = await lock.lock({
        timeout: Math.max(0, timeout - (performance.now() - started)),
        signal: options.signal,
      });
    }
    using _guard = guard;
    return await fn();
  }

  /** The whole mapping as one read-write (or read-only) view, mapped on first use. */
  get view(): SharedView {
    if (!this.#view || this.#view.closed) this.#view = this.map();
    return this.#view;
  }

  /**
   * Maps a view of part (or all) of the mapping. The offset need not be aligned.
   *
   * @param options `offset`, `length`, `access`.
   * @returns The view; closed with the mapping unless closed before.
   * @throws {RangeError} When the range does not fit in the mapping.
   * @throws {TypeError} When asking to write through a read-only mapping.
   *
   * @example A window past 4 GiB
   * ```ts
   * import { SharedMemory } from "./shm.ts";
   * using shm = SharedMemory.create(null, { size: 5n * 1024n ** 3n });
   * using view = shm.map({ offset: 4n * 1024n ** 3n, length: 4096 });
   * view.setUint32(0, 42);
   * ```
   */
  map(options?: MapOptions): SharedView {
    const opts = parseArg(mapSchema, options, "options") ?? {};
    const offset = opts.offset ?? 0n;
    const access = opts.access ?? this.access;
    if (access === "read-write" && this.access === "read-only") {
      throw new TypeError("Cannot map a read-write view: the mapping was opened read-only");
    }
    if (offset >= this.size) {
      throw new RangeError(
        `Invalid argument "options.offset": ${offset} is beyond the mapping's end (${this.size} bytes)`,
      );
    }
    const rest = this.size - offset;
    const length = opts.length === undefined ? rest : BigInt(opts.length);
    if (length > rest) {
      throw new RangeError(
        `Invalid argument "options.length": ${length} bytes at offset ${offset} do not fit in the mapping (${this.size} bytes)`,
      );
    }
    if (length > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(
        `Invalid argument "options.length": a view of ${length} bytes is too large; map a window`,
      );
    }
    const view = mapView(
      this.#handle.unsafeHandle,
      offset,
      Number(length),
      access,
      (v) => this.#views.delete(v),
    );
    this.#views.add(view);
    return view;
  }

  /** The raw handle, for FFI calls. */
  get unsafeHandle(): Deno.PointerObject {
    return this.#handle.unsafeHandle;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * Unmaps every view made from this object, then closes the handle. The mapping itself lives on
   * while another process holds it. A second call does nothing.
   */
  close(): void {
    for (const view of [...this.#views]) view.close();
    this.#handle.close();
  }

  /** Closes the mapping. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// SharedView's constructor takes the mapping's raw handle, so it is private: SharedMemory.map
// makes views through this.
let mapView: (
  mapping: Deno.PointerObject,
  offset: bigint,
  length: number,
  access: MappingAccess,
  onClose: (view: SharedView) => void,
) => SharedView;

/**
 * A mapped view: bytes of a mapping in this process's memory. `bytes` and `dataView` read and write
 * it directly (no FFI call per access); the helpers check bounds and take offsets relative to the
 * view. After `close()` every array over the view is detached (length 0), so a stale reference
 * cannot touch unmapped memory.
 *
 * On a read-only view the write helpers throw; writing through `bytes` there is an access
 * violation that ends the process, as in C.
 *
 * @example Counters that several processes update atomically
 * ```ts
 * import { SharedMemory } from "./shm.ts";
 * using shm = await SharedMemory.createOrOpen("Local\\stats", { size: 4096 });
 * using view = shm.map({ length: 64 });
 * const counters = view.int32Array(0, 16);
 * Atomics.add(counters, 0, 1);
 * ```
 */
export class SharedView implements Disposable {
  static {
    mapView = (...args) => new SharedView(...args);
  }

  #base: Deno.PointerObject | null;
  #buffer: ArrayBuffer;
  #bytes: Uint8Array<ArrayBuffer>;
  #dataView: DataView<ArrayBuffer>;
  readonly #onClose: (view: SharedView) => void;
  /** The view's offset in the mapping. */
  readonly offset: bigint;
  /** The view's length in bytes. */
  readonly length: number;
  /** The view's access. */
  readonly access: MappingAccess;

  /** Maps the view (`MapViewOfFile`); {@linkcode SharedMemory.map} is the way to make one. */
  private constructor(
    mapping: Deno.PointerObject,
    offset: bigint,
    length: number,
    access: MappingAccess,
    onClose: (view: SharedView) => void,
  ) {
    const gran = BigInt(allocationGranularity());
    const aligned = offset - offset % gran;
    const delta = Number(offset - aligned);
    const [high, low] = splitDword(aligned);
    const base = checkHandle(
      kernel32().MapViewOfFile(
        mapping,
        access === "read-write" ? FILE_MAP_WRITE : FILE_MAP_READ,
        high,
        low,
        BigInt(delta + length),
      ),
      "MapViewOfFile",
      `Cannot map ${length} bytes at offset ${offset}`,
    );
    this.#base = base;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(base, length, delta);
    this.#bytes = new Uint8Array(this.#buffer);
    this.#dataView = new DataView(this.#buffer);
    this.#onClose = onClose;
    this.offset = offset;
    this.length = length;
    this.access = access;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#base === null;
  }

  /** The view's bytes, live (writes are seen by every process that maps the same range). */
  get bytes(): Uint8Array<ArrayBuffer> {
    return this.#bytes;
  }

  /** A DataView over the view, live. */
  get dataView(): DataView<ArrayBuffer> {
    return this.#dataView;
  }

  /** The view's memory as an ArrayBuffer (detached by `close()`). */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  #check(offset: number, length: number, writing: boolean): void {
    if (this.#base === null) throw new Deno.errors.BadResource("View is closed");
    if (writing && this.access === "read-only") {
      throw new TypeError("Cannot write: the view is read-only");
    }
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid argument "offset": must be a non-negative integer: ${offset}`);
    }
    if (offset + length > this.length) {
      throw new RangeError(
        `Out of bounds: ${length} bytes at offset ${offset} pass the view's end (${this.length} bytes)`,
      );
    }
  }

  /**
   * Copies bytes out of the view.
   *
   * @param offset Where to start.
   * @param length How many bytes (default: to the end).
   * @returns A copy.
   * @throws {RangeError} When the range passes the view's end.
   */
  read(offset = 0, length: number = this.length - offset): Uint8Array<ArrayBuffer> {
    this.#check(offset, length, false);
    return this.#bytes.slice(offset, offset + length);
  }

  /**
   * Copies bytes into the view.
   *
   * @param offset Where to start.
   * @param data The bytes.
   * @throws {RangeError} When they pass the view's end.
   * @throws {TypeError} On a read-only view.
   */
  write(offset: number, data: Uint8Array): void {
    this.#check(offset, data.length, true);
    this.#bytes.set(data, offset);
  }

  /**
   * Reads text up to the first NUL (or `length` bytes, or the view's end).
   *
   * @param offset Where the text starts.
   * @param options `length`: the most bytes to read; `encoding`: `"utf-8"` (default) or `"utf-16le"`.
   * @returns The text.
   */
  readText(offset = 0, options: { length?: number; encoding?: TextEncoding } = {}): string {
    const encoding = parseArg(encodingSchema, options.encoding, "options.encoding") ?? "utf-8";
    const length = options.length ?? this.length - offset;
    this.#check(offset, length, false);
    const region = this.#bytes.subarray(offset, offset + length);
    let end = region.length;
    if (encoding === "utf-8") {
      const nul = region.indexOf(0);
      if (nul >= 0) end = nul;
      return utf8Decoder.decode(region.subarray(0, end));
    }
    for (let i = 0; i + 1 < region.length; i += 2) {
      if (region[i] === 0 && region[i + 1] === 0) {
        end = i;
        break;
      }
    }
    return utf16Decoder.decode(region.slice(0, end - (end % 2)));
  }

  /**
   * Writes text and, by default, a NUL after it.
   *
   * @param offset Where to write.
   * @param text The text.
   * @param options `nul` (default `true`), `encoding` (`"utf-8"` default, or `"utf-16le"`).
   * @returns The bytes written, the NUL included.
   * @throws {RangeError} When the text passes the view's end.
   */
  writeText(
    offset: number,
    text: string,
    options: { nul?: boolean; encoding?: TextEncoding } = {},
  ): number {
    const encoding = parseArg(encodingSchema, options.encoding, "options.encoding") ?? "utf-8";
    let data: Uint8Array;
    if (encoding === "utf-8") data = utf8.encode(text);
    else {
      const units = wide(text);
      data = new Uint8Array(units.buffer, 0, text.length * 2);
    }
    const nul = options.nul === false ? 0 : encoding === "utf-8" ? 1 : 2;
    this.#check(offset, data.length + nul, true);
    this.#bytes.set(data, offset);
    this.#bytes.fill(0, offset + data.length, offset + data.length + nul);
    return data.length + nul;
  }

  /** Reads an unsigned byte. @param offset Where. @returns The value. */
  getUint8(offset: number): number {
    this.#check(offset, 1, false);
    return this.#dataView.getUint8(offset);
  }
  /** Writes an unsigned byte. @param offset Where. @param value The value. */
  setUint8(offset: number, value: number): void {
    this.#check(offset, 1, true);
    this.#dataView.setUint8(offset, value);
  }
  /** Reads a little-endian u32. @param offset Where. @returns The value. */
  getUint32(offset: number): number {
    this.#check(offset, 4, false);
    return this.#dataView.getUint32(offset, true);
  }
  /** Writes a little-endian u32. @param offset Where. @param value The value. */
  setUint32(offset: number, value: number): void {
    this.#check(offset, 4, true);
    this.#dataView.setUint32(offset, value, true);
  }
  /** Reads a little-endian i32. @param offset Where. @returns The value. */
  getInt32(offset: number): number {
    this.#check(offset, 4, false);
    return this.#dataView.getInt32(offset, true);
  }
  /** Writes a little-endian i32. @param offset Where. @param value The value. */
  setInt32(offset: number, value: number): void {
    this.#check(offset, 4, true);
    this.#dataView.setInt32(offset, value, true);
  }
  /** Reads a little-endian u64. @param offset Where. @returns The value. */
  getBigUint64(offset: number): bigint {
    this.#check(offset, 8, false);
    return this.#dataView.getBigUint64(offset, true);
  }
  /** Writes a little-endian u64. @param offset Where. @param value The value. */
  setBigUint64(offset: number, value: bigint): void {
    this.#check(offset, 8, true);
    this.#dataView.setBigUint64(offset, value, true);
  }
  /** Reads a little-endian f64. @param offset Where. @returns The value. */
  getFloat64(offset: number): number {
    this.#check(offset, 8, false);
    return this.#dataView.getFloat64(offset, true);
  }
  /** Writes a little-endian f64. @param offset Where. @param value The value. */
  setFloat64(offset: number, value: number): void {
    this.#check(offset, 8, true);
    this.#dataView.setFloat64(offset, value, true);
  }

  /**
   * An `Int32Array` over part of the view, for `Atomics` across processes.
   *
   * @param offset A multiple of 4.
   * @param length How many elements.
   * @returns The array (live, detached by `close()`).
   */
  int32Array(offset: number, length: number): Int32Array<ArrayBuffer> {
    if (offset % 4 !== 0) {
      throw new RangeError(`Invalid argument "offset": must be a multiple of 4`);
    }
    this.#check(offset, length * 4, false);
    return new Int32Array(this.#buffer, offset, length);
  }

  /**
   * A `BigInt64Array` over part of the view, for `Atomics` across processes.
   *
   * @param offset A multiple of 8.
   * @param length How many elements.
   * @returns The array (live, detached by `close()`).
   */
  bigInt64Array(offset: number, length: number): BigInt64Array<ArrayBuffer> {
    if (offset % 8 !== 0) {
      throw new RangeError(`Invalid argument "offset": must be a multiple of 8`);
    }
    this.#check(offset, length * 8, false);
    return new BigInt64Array(this.#buffer, offset, length);
  }

  /**
   * The address of the view's first byte, for FFI calls. Valid until `close()`.
   *
   * @returns The pointer.
   */
  get unsafePointer(): Deno.PointerObject {
    if (this.#base === null) throw new Deno.errors.BadResource("View is closed");
    return Deno.UnsafePointer.offset(this.#base, this.#bufferDelta())!;
  }

  #bufferDelta(): number {
    return Number(this.offset % BigInt(allocationGranularity()));
  }

  /** Writes the view's dirty pages to the backing store (`FlushViewOfFile`). */
  flush(): void {
    if (this.#base === null) throw new Deno.errors.BadResource("View is closed");
    checkBool(
      kernel32().FlushViewOfFile(this.unsafePointer, BigInt(this.length)),
      "FlushViewOfFile",
      "Cannot flush view",
    );
  }

  /** Detaches every array over the view and unmaps it; a second call does nothing. */
  close(): void {
    const base = this.#base;
    if (base === null) return;
    this.#base = null;
    this.#buffer.transfer(0); // detaches the external buffer: stale arrays now have length 0
    this.#buffer = new ArrayBuffer(0);
    this.#bytes = new Uint8Array(this.#buffer);
    this.#dataView = new DataView(this.#buffer);
    this.#onClose(this);
    kernel32().UnmapViewOfFile(base);
  }

  /** Unmaps the view. */
  [Symbol.dispose](): void {
    this.close();
  }
}
