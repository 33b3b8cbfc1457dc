/**
 * `SECURITY_ATTRIBUTES` built from options: handle inheritance and an SDDL security descriptor.
 *
 * @module
 */
import { advapi32, SDDL_REVISION_1, TOKEN_QUERY, TokenUser } from "./advapi32.ts";
import { checkBool } from "./error.ts";
import { kernel32 } from "./kernel32.ts";
import { readWide, wide } from "./strings.ts";
import { SECURITY_ATTRIBUTES } from "./struct.ts";

/**
 * Security of a new kernel object.
 *
 * @example A mutex only its owner may open, inherited by child processes
 * ```ts
 * import { Mutex } from "../mod.ts";
 * using lock = Mutex.create("Local\\jobs.lock", {
 *   security: { sddl: "D:P(A;;GA;;;OW)", inheritable: true },
 * });
 * ```
 */
export interface SecurityOptions {
  /** Whether child processes inherit the handle (`bInheritHandle`). Default `false`. */
  inheritable?: boolean;
  /**
   * A security descriptor in SDDL, e.g. `"D:P(A;;GA;;;OW)"` (the owner only). Default: none,
   * so the object gets the default DACL of the creator's token.
   */
  sddl?: string;
}

/**
 * `SECURITY_ATTRIBUTES` for a call, and the descriptor memory they point to. Dispose it after the
 * call that used it.
 */
export class SecurityAttributes implements Disposable {
  /** The struct's bytes, or `null` when no option was set (the Win32 default). */
  readonly bytes: Uint8Array<ArrayBuffer> | null;
  #descriptor: Deno.PointerValue;

  /**
   * Builds the attributes (and the security descriptor of the SDDL, when one is given).
   *
   * @param options Inheritance and SDDL.
   * @throws {Win32Error} When the SDDL string is not valid.
   */
  constructor(options: SecurityOptions = {}) {
    this.#descriptor = null;
    if (!options.inheritable && options.sddl === undefined) {
      this.bytes = null;
      return;
    }
    if (options.sddl !== undefined) {
      const out = new BigUint64Array(1);
      checkBool(
        advapi32().ConvertStringSecurityDescriptorToSecurityDescriptorW(
          wide(options.sddl),
          SDDL_REVISION_1,
          out,
          null,
        ),
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        `Invalid security descriptor "${options.sddl}"`,
      );
      this.#descriptor = Deno.UnsafePointer.create(out[0]);
    }
    this.bytes = SECURITY_ATTRIBUTES.alloc({
      nLength: SECURITY_ATTRIBUTES.size,
      lpSecurityDescriptor: this.#descriptor,
      bInheritHandle: options.inheritable ? 1 : 0,
    });
  }

  /** Frees the descriptor. */
  [Symbol.dispose](): void {
    if (this.#descriptor) kernel32().LocalFree(this.#descriptor);
    this.#descriptor = null;
  }
}

let userSid: string | undefined;

/**
 * The SID of the user this process runs as, in string form (`S-1-5-21-...`), read from the
 * process token (`OpenProcessToken`, `GetTokenInformation(TokenUser)`, `ConvertSidToStringSidW`).
 * Cached after the first call.
 *
 * @returns The SID string.
 * @throws {Win32Error} When the token cannot be read.
 *
 * @example An SDDL that lets only this user in
 * ```ts
 * import { currentUserSid } from "./security.ts";
 * if (Deno.build.os === "windows") console.log(`D:P(A;;GA;;;${currentUserSid()})`);
 * ```
 */
export function currentUserSid(): string {
  if (userSid !== undefined) return userSid;
  const k = kernel32();
  const a = advapi32();
  const token = new BigUint64Array(1);
  checkBool(
    a.OpenProcessToken(k.GetCurrentProcess(), TOKEN_QUERY, token),
    "OpenProcessToken",
    "Cannot read the process token",
  );
  const tokenHandle = Deno.UnsafePointer.create(token[0]);
  try {
    // TOKEN_USER { SID_AND_ATTRIBUTES User { PSID Sid; DWORD Attributes; } } + the SID itself.
    const info = new Uint8Array(256);
    const length = new Uint32Array(1);
    checkBool(
      a.GetTokenInformation(tokenHandle, TokenUser, info, info.length, length),
      "GetTokenInformation",
      "Cannot read the process token's user",
    );
    const sid = Deno.UnsafePointer.create(new BigUint64Array(info.buffer, 0, 1)[0]);
    const out = new BigUint64Array(1);
    checkBool(a.ConvertSidToStringSidW(sid, out), "ConvertSidToStringSidW", "Cannot format a SID");
    const text = Deno.UnsafePointer.create(out[0]);
    userSid = readWide(text, 256);
    k.LocalFree(text);
    return userSid;
  } finally {
    k.CloseHandle(tokenHandle);
  }
}
