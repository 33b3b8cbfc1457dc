/**
 * Internal helpers of `pipe.ts`: token users and account names, the thread's impersonation state,
 * the owner check of a pipe client (`currentUserOnly`), and the pipe file system's directory
 * entries. Not part of the public API (tests import it).
 *
 * @module
 */
import { advapi32, ERROR_NO_TOKEN, TOKEN_QUERY, TokenUser } from "../ffi/advapi32.ts";
import { checkBool, lastError, Win32Error, win32Error } from "../ffi/error.ts";
import { kernel32, PROCESS_QUERY_LIMITED_INFORMATION } from "../ffi/kernel32.ts";
import { currentUserSid } from "../ffi/security.ts";
import { fromWide, readWide } from "../ffi/strings.ts";

const ERROR_INSUFFICIENT_BUFFER = 122;
const ERROR_NONE_MAPPED = 1332;

/**
 * A user account: its SID, and its name and domain where the system can name it.
 *
 * @example Print who a pipe's client is
 * ```ts
 * import type { PipeConnection, PipeUser } from "./pipe.ts";
 * declare const conn: PipeConnection;
 * const user: PipeUser = conn.clientUser();
 * console.log(`${user.domain}\\${user.name} (${user.sid})`);
 * ```
 */
export interface PipeUser {
  /** The SID in string form, e.g. `S-1-5-21-...-1001`. */
  sid: string;
  /** The account's name (`LookupAccountSidW`), or `undefined` when the SID has no name here. */
  name: string | undefined;
  /** The account's domain (or computer) name, or `undefined` with `name`. */
  domain: string | undefined;
}

/** The string form of the SID at `sid`. */
function sidString(sid: Deno.PointerObject): string {
  const out = new BigUint64Array(1);
  checkBool(
    advapi32().ConvertSidToStringSidW(sid, out),
    "ConvertSidToStringSidW",
    "Cannot format a SID",
  );
  const text = Deno.UnsafePointer.create(out[0]);
  try {
    return readWide(text, 256);
  } finally {
    kernel32().LocalFree(text);
  }
}

/** The account name and domain of the SID at `sid`, or `undefined`s when it has none. */
function accountOf(sid: Deno.PointerObject): { name?: string; domain?: string } {
  const a = advapi32();
  let nameLength = 256;
  let domainLength = 256;
  for (let round = 0; round < 2; round++) {
    const name = new Uint16Array(nameLength);
    const domain = new Uint16Array(domainLength);
    const nl = new Uint32Array([nameLength]);
    const dl = new Uint32Array([domainLength]);
    const use = new Uint32Array(1);
    if (a.LookupAccountSidW(null, sid, name, nl, domain, dl, use)) {
      return { name: fromWide(name, nl[0]), domain: fromWide(domain, dl[0]) };
    }
    const code = lastError();
    if (code === ERROR_NONE_MAPPED) return {};
    if (code !== ERROR_INSUFFICIENT_BUFFER) {
      throw win32Error("LookupAccountSidW", code, { context: "Cannot name an account" });
    }
    nameLength = Math.max(nameLength, nl[0]);
    domainLength = Math.max(domainLength, dl[0]);
  }
  return {};
}

/**
 * The user of a token (`GetTokenInformation(TokenUser)`), named through `LookupAccountSidW`.
 *
 * @param token A token handle with `TOKEN_QUERY` access.
 * @returns The user.
 * @throws {Win32Error} When the token cannot be read.
 */
export function tokenUser(token: Deno.PointerObject): PipeUser {
  const a = advapi32();
  let info = new Uint8Array(256);
  const length = new Uint32Array(1);
  if (!a.GetTokenInformation(token, TokenUser, info, info.length, length)) {
    const code = lastError();
    if (code !== ERROR_INSUFFICIENT_BUFFER || length[0] > 65536) {
      throw win32Error("GetTokenInformation", code, {
        context: "Cannot read a token's user",
      });
    }
    info = new Uint8Array(length[0]);
    checkBool(
      a.GetTokenInformation(token, TokenUser, info, info.length, length),
      "GetTokenInformation",
      "Cannot read a token's user",
    );
  }
  // TOKEN_USER { SID_AND_ATTRIBUTES User { PSID Sid; DWORD Attributes; } }; the SID follows in
  // the same buffer, so `info` must stay alive while `sid` is used.
  const sid = Deno.UnsafePointer.create(new BigUint64Array(info.buffer, 0, 1)[0]);
  if (sid === null) {
    throw win32Error("GetTokenInformation", 0, { context: "A token's user has no SID" });
  }
  const { name, domain } = accountOf(sid);
  const text = sidString(sid);
  void info;
  return { sid: text, name, domain };
}

/**
 * The token of the calling thread (`OpenThreadToken(..., OpenAsSelf = TRUE)`), or `null` when
 * the thread is not impersonating anyone (`ERROR_NO_TOKEN`). Close it with `CloseHandle`.
 *
 * @returns The token handle, or `null`.
 * @throws {Win32Error} When the token exists but cannot be opened.
 */
export function openThreadToken(): Deno.PointerObject | null {
  const k = kernel32();
  const out = new BigUint64Array(1);
  if (!advapi32().OpenThreadToken(k.GetCurrentThread(), TOKEN_QUERY, 1, out)) {
    const code = lastError();
    if (code === ERROR_NO_TOKEN) return null;
    throw win32Error("OpenThreadToken", code, { context: "Cannot read the thread's token" });
  }
  return Deno.UnsafePointer.create(out[0]);
}

/**
 * The user the calling thread impersonates, or `null` when it does not impersonate.
 *
 * @returns The impersonated user, or `null`.
 */
export function impersonatedUser(): PipeUser | null {
  const token = openThreadToken();
  if (token === null) return null;
  try {
    return tokenUser(token);
  } finally {
    kernel32().CloseHandle(token);
  }
}

/**
 * The user this process runs as (its process token's user).
 *
 * @returns The user.
 */
export function processUser(): PipeUser {
  const k = kernel32();
  const out = new BigUint64Array(1);
  checkBool(
    advapi32().OpenProcessToken(k.GetCurrentProcess(), TOKEN_QUERY, out),
    "OpenProcessToken",
    "Cannot read the process token",
  );
  const token = Deno.UnsafePointer.create(out[0])!;
  try {
    return tokenUser(token);
  } finally {
    k.CloseHandle(token);
  }
}

/**
 * The SID of the user another process runs as, or why it cannot be read.
 *
 * @param pid The process id.
 * @returns `{ sid }`, or `{ error }` with the Win32 error (`ERROR_ACCESS_DENIED` for a process
 *   of another user whose token this user may not query).
 */
export function processUserSid(pid: number): { sid: string } | { error: Win32Error } {
  const k = kernel32();
  const process = k.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
  if (process === null) {
    return { error: win32Error("OpenProcess", lastError(), { context: `process ${pid}` }) };
  }
  try {
    const out = new BigUint64Array(1);
    if (!advapi32().OpenProcessToken(process, TOKEN_QUERY, out)) {
      return {
        error: win32Error("OpenProcessToken", lastError(), { context: `process ${pid}` }),
      };
    }
    const token = Deno.UnsafePointer.create(out[0])!;
    try {
      return { sid: tokenUser(token).sid };
    } catch (e) {
      if (e instanceof Win32Error) return { error: e };
      throw e;
    } finally {
      k.CloseHandle(token);
    }
  } finally {
    k.CloseHandle(process);
  }
}

/**
 * The decision of a `currentUserOnly` client: whether the pipe's server runs as the current
 * user. A server whose user cannot be read (its process token refused, as for another user's
 * process) does not pass.
 *
 * @param path The pipe's path (for the message).
 * @param serverPid The server's process id (`GetNamedPipeServerProcessId`).
 * @param server The server's user SID, or why it could not be read.
 * @param mine The current user's SID.
 * @returns `undefined` when the server passes, or the error to throw.
 */
export function serverOwnerError(
  path: string,
  serverPid: number,
  server: { sid: string } | { error: Error },
  mine: string,
): Deno.errors.PermissionDenied | undefined {
  if ("sid" in server && server.sid.toUpperCase() === mine.toUpperCase()) return undefined;
  const who = "sid" in server
    ? `runs as ${server.sid}`
    : `runs as a user this process cannot read (${server.error.message})`;
  return new Deno.errors.PermissionDenied(
    `Cannot connect to pipe "${path}": its server (process ${serverPid}) ${who}, not as the ` +
      `current user ${mine} (currentUserOnly)`,
  );
}

/**
 * Checks that the server of a connected client handle runs as the current user.
 *
 * @param path The pipe's path.
 * @param handle The client's pipe handle.
 * @returns `undefined` when it does, or the error to throw.
 */
export function checkServerOwner(
  path: string,
  handle: Deno.PointerObject,
): Deno.errors.PermissionDenied | Win32Error | undefined {
  const pid = new Uint32Array(1);
  if (!kernel32().GetNamedPipeServerProcessId(handle, pid)) {
    return win32Error("GetNamedPipeServerProcessId", lastError(), {
      context: `Cannot check who serves pipe "${path}"`,
    });
  }
  return serverOwnerError(path, pid[0], processUserSid(pid[0]), currentUserSid());
}

/**
 * One entry of the named pipe file system's directory.
 *
 * @example List the pipes with more than one instance
 * ```ts
 * import { listPipes } from "./pipe.ts";
 * for (const p of listPipes()) if ((p.instances ?? 0) > 1) console.log(p.name);
 * ```
 */
export interface PipeInfo {
  /** The pipe's name, e.g. `jobs`. */
  name: string;
  /** Its path, e.g. `\\.\pipe\jobs`. */
  path: string;
  /** How many instances exist now (the entry's `EndOfFile`), where the system reports it. */
  instances: number | undefined;
  /**
   * The most instances it allows (the entry's `AllocationSize`; -1 for unlimited), where the
   * system reports it.
   */
  maxInstances: number | undefined;
}

/**
 * Decodes a buffer of `FILE_DIRECTORY_INFORMATION` entries (`NtQueryDirectoryFile`'s answer for
 * the pipe file system): `NextEntryOffset` (u32 at 0), `EndOfFile` (i64 at 40, the current
 * instances), `AllocationSize` (i64 at 48, the maximum instances), `FileNameLength` (u32 at 60,
 * in bytes), `FileName` (UTF-16 at 64). Every offset and length is checked against the bytes the
 * system said it wrote.
 *
 * @param bytes The buffer.
 * @param used How many bytes of it the call filled (`IoStatusBlock.Information`).
 * @returns The entries.
 * @throws {RangeError} When an entry's offset or name length runs past `used`.
 */
export function parseDirectoryEntries(bytes: Uint8Array, used: number): PipeInfo[] {
  const end = Math.min(used, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  const entries: PipeInfo[] = [];
  let at = 0;
  for (;;) {
    if (at + 64 > end) throw new RangeError(`A directory entry at ${at} runs past ${end} bytes`);
    const next = view.getUint32(at, true);
    const nameBytes = view.getUint32(at + 60, true);
    if (nameBytes % 2 !== 0 || at + 64 + nameBytes > end) {
      throw new RangeError(
        `A directory entry's name (${nameBytes} bytes at ${at}) runs past ${end}`,
      );
    }
    const units = new Uint16Array(nameBytes / 2);
    for (let i = 0; i < units.length; i++) units[i] = view.getUint16(at + 64 + 2 * i, true);
    const name = fromWide(units, units.length);
    const instances = Number(view.getBigInt64(at + 40, true));
    const maxInstances = Number(view.getBigInt64(at + 48, true));
    entries.push({ name, path: `\\\\.\\pipe\\${name}`, instances, maxInstances });
    if (next === 0) return entries;
    if (next < 64) {
      throw new RangeError(`A directory entry's next offset ${next} at ${at} is not valid`);
    }
    at += next;
  }
}
