/**
 * The session's registry of shared-memory objects, which `listServices()` reads: a small named
 * mapping (`Local\winipc-pubsub-registry`, 128 entries of 512 bytes) where pub/sub services and
 * channels write their name when they open. Each process that registers keeps the registry open
 * for as long as its object is open, so the registry lives as long as anything is in it.
 *
 * An entry is `[state, name length, kind, 0]` (Int32) and the name in UTF-16 from byte 16.
 * `state` goes EMPTY → WRITING → READY with compare-exchange, so two processes never take the same
 * entry. Kind 0 is a pub/sub service (what entries written before kinds existed hold), 1 a
 * channel.
 *
 * Entries are not removed on close (a process may die without closing): an entry whose mapping no
 * longer exists, because every process that had it open closed it or ended, is pruned by whoever
 * lists the registry, and by a process that finds the registry full. Pruning claims the entry,
 * looks for the mapping once more and only then frees it, so an object opened again meanwhile
 * keeps its entry (at worst it is listed twice, which the lister merges).
 *
 * The registry is written by any process of the session: everything read from it is checked, and
 * a damaged entry is skipped (and pruned once its name names no mapping).
 *
 * @module
 */
import { Win32Error } from "../ffi/error.ts";
import { SharedMemory } from "./shm.ts";

const REGISTRY_NAME = "Local\\winipc-pubsub-registry";
/** Entries in the registry. */
export const REGISTRY_ENTRIES = 128;
const ENTRY_BYTES = 512;
/** The longest name an entry holds, in UTF-16 code units. */
export const ENTRY_NAME_UNITS = (ENTRY_BYTES - 16) / 2; // 248
const ENTRY_EMPTY = 0;
const ENTRY_WRITING = 1;
const ENTRY_READY = 2;

/** What a registry entry names. */
export type RegistryKind = "pubsub" | "channel";
const KIND_CODES: Record<RegistryKind, number> = { pubsub: 0, channel: 1 };

/** One READY entry, as read. */
export interface RegistryEntry {
  /** The entry's index. */
  index: number;
  /** The name it holds. */
  name: string;
  /** The kind it says. */
  kind: RegistryKind;
}

/**
 * Opens the registry, creating it when no process has it open.
 *
 * @returns The registry mapping; keep it open while the registered object is open.
 */
export async function openRegistry(): Promise<SharedMemory> {
  return await SharedMemory.createOrOpen(REGISTRY_NAME, {
    size: REGISTRY_ENTRIES * ENTRY_BYTES,
  });
}

/**
 * Opens the registry if some process has it open.
 *
 * @returns The mapping, or `undefined` when there is none (nothing registered now).
 */
export function openExistingRegistry(): SharedMemory | undefined {
  return tryOpen(REGISTRY_NAME);
}

/**
 * Opens a mapping by name, or says that it does not exist.
 *
 * @param name The mapping's name.
 * @returns The mapping, or `undefined` on `ERROR_FILE_NOT_FOUND`.
 */
export function tryOpen(name: string): SharedMemory | undefined {
  try {
    return SharedMemory.open(name);
  } catch (e) {
    if (e instanceof Win32Error && e.code === 2) return undefined;
    throw e;
  }
}

function words(registry: SharedMemory): Int32Array<ArrayBuffer> {
  return registry.view.int32Array(0, (REGISTRY_ENTRIES * ENTRY_BYTES) / 4);
}

/** The name of entry `i` (checked: a length out of range is `undefined`). */
function entryName(registry: SharedMemory, i: number): string | undefined {
  const view = registry.view;
  const base = i * ENTRY_BYTES;
  const length = view.getInt32(base + 4);
  if (!(length > 0 && length <= ENTRY_NAME_UNITS)) return undefined;
  const units = new Uint16Array(length);
  for (let k = 0; k < length; k++) units[k] = view.dataView.getUint16(base + 16 + k * 2, true);
  return String.fromCharCode(...units);
}

function entryKind(registry: SharedMemory, i: number): RegistryKind | undefined {
  const code = registry.view.getInt32(i * ENTRY_BYTES + 8);
  return (Object.keys(KIND_CODES) as RegistryKind[]).find((k) => KIND_CODES[k] === code);
}

/**
 * The READY entries, in index order. A READY entry whose name or kind is damaged is left out
 * (and freed when its name names no mapping).
 *
 * @param registry The registry.
 * @returns The entries.
 */
export function registryEntries(registry: SharedMemory): RegistryEntry[] {
  const w = words(registry);
  const out: RegistryEntry[] = [];
  for (let i = 0; i < REGISTRY_ENTRIES; i++) {
    if (Atomics.load(w, (i * ENTRY_BYTES) / 4) !== ENTRY_READY) continue;
    const name = entryName(registry, i);
    const kind = entryKind(registry, i);
    if (name === undefined || kind === undefined) {
      // damaged: nothing to look up by it, free it unless someone is rewriting it
      Atomics.compareExchange(w, (i * ENTRY_BYTES) / 4, ENTRY_READY, ENTRY_EMPTY);
      continue;
    }
    out.push({ index: i, name, kind });
  }
  return out;
}

/**
 * Frees an entry whose mapping no longer exists: claims it (READY → WRITING), looks for the
 * mapping once more, then frees it (→ EMPTY) or gives it back (→ READY).
 *
 * @param registry The registry.
 * @param entry The entry, as {@linkcode registryEntries} read it.
 * @returns Whether the entry was freed.
 */
export function prune(registry: SharedMemory, entry: RegistryEntry): boolean {
  const w = words(registry);
  const at = (entry.index * ENTRY_BYTES) / 4;
  if (Atomics.compareExchange(w, at, ENTRY_READY, ENTRY_WRITING) !== ENTRY_READY) return false;
  // Claimed: nobody rewrites it now. Is it still the entry we read, and is its mapping gone?
  let free = false;
  try {
    if (entryName(registry, entry.index) !== entry.name) return false;
    let shm: SharedMemory | undefined;
    try {
      shm = tryOpen(entry.name);
    } catch (e) {
      // A name no mapping can have (a damaged entry) names nothing: free it.
      if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
    }
    free = shm === undefined;
    shm?.close();
    return free;
  } finally {
    Atomics.store(w, at, free ? ENTRY_EMPTY : ENTRY_READY);
  }
}

/**
 * Adds an object to the registry unless an entry with its name and kind is there. When the
 * registry is full, prunes the entries of objects that are gone and tries once more; a registry
 * still full only hides the object from `listServices()` (the object itself works).
 *
 * @param registry The registry.
 * @param name The object's name (at most {@linkcode ENTRY_NAME_UNITS} code units).
 * @param kind What it is.
 * @returns Whether the object is (now) in the registry.
 */
export function register(registry: SharedMemory, name: string, kind: RegistryKind): boolean {
  if (name.length === 0 || name.length > ENTRY_NAME_UNITS) return false;
  if (registryEntries(registry).some((e) => e.name === name && e.kind === kind)) return true;
  if (claimAndWrite(registry, name, kind)) return true;
  for (const entry of registryEntries(registry)) prune(registry, entry);
  return claimAndWrite(registry, name, kind);
}

function claimAndWrite(registry: SharedMemory, name: string, kind: RegistryKind): boolean {
  const w = words(registry);
  const view = registry.view;
  for (let i = 0; i < REGISTRY_ENTRIES; i++) {
    const at = (i * ENTRY_BYTES) / 4;
    if (Atomics.compareExchange(w, at, ENTRY_EMPTY, ENTRY_WRITING) !== ENTRY_EMPTY) continue;
    for (let k = 0; k < name.length; k++) {
      view.dataView.setUint16(i * ENTRY_BYTES + 16 + k * 2, name.charCodeAt(k), true);
    }
    w[at + 1] = name.length;
    w[at + 2] = KIND_CODES[kind];
    w[at + 3] = 0;
    Atomics.store(w, at, ENTRY_READY);
    return true;
  }
  return false;
}
