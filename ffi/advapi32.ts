/**
 * Raw bindings to advapi32.dll: security descriptors.
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  /** BOOL ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR StringSecurityDescriptor, DWORD StringSDRevision, PSECURITY_DESCRIPTOR *SecurityDescriptor, PULONG SecurityDescriptorSize) */
  ConvertStringSecurityDescriptorToSecurityDescriptorW: {
    parameters: ["buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** LSTATUS RegOpenKeyExW(HKEY hKey, LPCWSTR lpSubKey, DWORD ulOptions, REGSAM samDesired, PHKEY phkResult) */
  RegOpenKeyExW: { parameters: ["pointer", "buffer", "u32", "u32", "buffer"], result: "i32" },
  /** LSTATUS RegEnumValueW(HKEY hKey, DWORD dwIndex, LPWSTR lpValueName, LPDWORD lpcchValueName, LPDWORD lpReserved, LPDWORD lpType, LPBYTE lpData, LPDWORD lpcbData) */
  RegEnumValueW: {
    parameters: ["pointer", "u32", "buffer", "buffer", "pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** LSTATUS RegCloseKey(HKEY hKey) */
  RegCloseKey: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The advapi32.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Lazily opened
 * ```ts
 * import { advapi32 } from "./advapi32.ts";
 * if (Deno.build.os === "windows") {
 *   console.log(typeof advapi32().ConvertStringSecurityDescriptorToSecurityDescriptorW);
 * }
 * ```
 */
export const advapi32: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "advapi32.dll",
  symbols,
);

/** The only SDDL revision, `SDDL_REVISION_1`. */
export const SDDL_REVISION_1 = 1;

/** The predefined key `HKEY_LOCAL_MACHINE`. */
export const HKEY_LOCAL_MACHINE: Deno.PointerObject = Deno.UnsafePointer.create(0x8000_0002n)!;
/** Registry access right: read. */
export const KEY_READ = 0x2_0019;
/** Registry value type: a NUL-terminated UTF-16 string. */
export const REG_SZ = 1;
