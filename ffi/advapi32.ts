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
  /** LSTATUS RegCreateKeyExW(HKEY, LPCWSTR lpSubKey, DWORD Reserved, LPWSTR lpClass, DWORD dwOptions, REGSAM, const LPSECURITY_ATTRIBUTES, PHKEY phkResult, LPDWORD lpdwDisposition) */
  RegCreateKeyExW: {
    parameters: [
      "pointer",
      "buffer",
      "u32",
      "pointer",
      "u32",
      "u32",
      "pointer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  /** LSTATUS RegSetValueExW(HKEY, LPCWSTR lpValueName, DWORD Reserved, DWORD dwType, const BYTE *lpData, DWORD cbData) */
  RegSetValueExW: {
    parameters: ["pointer", "buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  /** LSTATUS RegDeleteKeyW(HKEY hKey, LPCWSTR lpSubKey) */
  RegDeleteKeyW: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL OpenProcessToken(HANDLE ProcessHandle, DWORD DesiredAccess, PHANDLE TokenHandle) */
  OpenProcessToken: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  /** BOOL GetTokenInformation(HANDLE TokenHandle, TOKEN_INFORMATION_CLASS TokenInformationClass, LPVOID TokenInformation, DWORD TokenInformationLength, PDWORD ReturnLength) */
  GetTokenInformation: {
    parameters: ["pointer", "i32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  /** BOOL ConvertSidToStringSidW(PSID Sid, LPWSTR *StringSid) */
  ConvertSidToStringSidW: { parameters: ["pointer", "buffer"], result: "i32" },
  /** DWORD GetSecurityInfo(HANDLE handle, SE_OBJECT_TYPE ObjectType, SECURITY_INFORMATION SecurityInfo, PSID *ppsidOwner, PSID *ppsidGroup, PACL *ppDacl, PACL *ppSacl, PSECURITY_DESCRIPTOR *ppSecurityDescriptor) */
  GetSecurityInfo: {
    parameters: ["pointer", "i32", "u32", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "u32",
  },
  /** BOOL ConvertSecurityDescriptorToStringSecurityDescriptorW(PSECURITY_DESCRIPTOR SecurityDescriptor, DWORD RequestedStringSDRevision, SECURITY_INFORMATION SecurityInformation, LPWSTR *StringSecurityDescriptor, PULONG StringSecurityDescriptorLen) */
  ConvertSecurityDescriptorToStringSecurityDescriptorW: {
    parameters: ["pointer", "u32", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL ImpersonateNamedPipeClient(HANDLE hNamedPipe) */
  ImpersonateNamedPipeClient: { parameters: ["pointer"], result: "i32" },
  /** BOOL RevertToSelf(void) */
  RevertToSelf: { parameters: [], result: "i32" },
  /** BOOL OpenThreadToken(HANDLE ThreadHandle, DWORD DesiredAccess, BOOL OpenAsSelf, PHANDLE TokenHandle) */
  OpenThreadToken: { parameters: ["pointer", "u32", "i32", "buffer"], result: "i32" },
  /** BOOL LookupAccountSidW(LPCWSTR lpSystemName, PSID Sid, LPWSTR Name, LPDWORD cchName, LPWSTR ReferencedDomainName, LPDWORD cchReferencedDomainName, PSID_NAME_USE peUse) */
  LookupAccountSidW: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
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
/** HKEY_CURRENT_USER. */
export const HKEY_CURRENT_USER: Deno.PointerObject = Deno.UnsafePointer.create(0x8000_0001n)!;
/** Read and write access to a key. */
export const KEY_ALL_ACCESS = 0xf_003f;
/** RegCreateKeyExW's disposition: the key did not exist. */
export const REG_CREATED_NEW_KEY = 1;
/** Registry value type: a NUL-terminated UTF-16 string. */
export const REG_SZ = 1;
/** Token access right: query. */
export const TOKEN_QUERY = 0x0008;
/** TOKEN_INFORMATION_CLASS: the token's user (a `TOKEN_USER`). */
export const TokenUser = 1;
/** SE_OBJECT_TYPE: a kernel object (event, pipe, mapping, ...). */
export const SE_KERNEL_OBJECT = 6;
/** SECURITY_INFORMATION: the DACL. */
export const DACL_SECURITY_INFORMATION = 0x0000_0004;
/** SECURITY_INFORMATION: the owner. */
export const OWNER_SECURITY_INFORMATION = 0x0000_0001;
/** TOKEN_INFORMATION_CLASS: the default owner of objects the token creates (a `TOKEN_OWNER`). */
export const TokenOwner = 4;
/** `OpenThreadToken` fails with this when the thread is not impersonating. */
export const ERROR_NO_TOKEN = 1008;
