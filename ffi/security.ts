/**
 * `SECURITY_ATTRIBUTES` built from options: handle inheritance and an SDDL security descriptor.
 *
 * @module
 */
import { advapi32, SDDL_REVISION_1 } from "./advapi32.ts";
import { checkBool } from "./error.ts";
import { kernel32 } from "./kernel32.ts";
import { wide } from "./strings.ts";
import { SECURITY_ATTRIBUTES } from "./struct.ts";

/** Security of a new kernel object. */
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
