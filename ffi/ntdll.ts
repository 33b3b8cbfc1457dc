/**
 * Raw bindings to ntdll.dll: the few native calls whose status is their own return value, so a
 * `nonblocking` call (on a worker thread, whose `GetLastError` is not ours) keeps its status.
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  /** NTSTATUS NtFlushBuffersFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock), on a worker thread */
  NtFlushBuffersFileAsync: {
    name: "NtFlushBuffersFile",
    parameters: ["pointer", "buffer"],
    result: "u32",
    nonblocking: true,
  },
  /** NTSTATUS NtQuerySystemInformation(SYSTEM_INFORMATION_CLASS Class, PVOID Info, ULONG Length, PULONG ReturnLength) */
  NtQuerySystemInformation: { parameters: ["u32", "buffer", "u32", "buffer"], result: "u32" },
  /** ULONG RtlNtStatusToDosError(NTSTATUS Status) */
  RtlNtStatusToDosError: { parameters: ["u32"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The ntdll.dll symbols, opened on first use.
 *
 * @example Turn an NTSTATUS into its Win32 error code
 * ```ts
 * import { ntdll } from "./ntdll.ts";
 * if (Deno.build.os === "windows") {
 *   console.log(ntdll().RtlNtStatusToDosError(0xc000014b)); // 109, ERROR_BROKEN_PIPE
 * }
 * ```
 */
export const ntdll: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "ntdll.dll",
  symbols,
);
