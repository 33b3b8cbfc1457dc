/**
 * Raw bindings to ntdll.dll: the few native calls whose status is their own return value, and
 * the directory query that lists the named pipe file system. A `nonblocking` call runs on a
 * worker thread, whose `GetLastError` is not ours; and even on this thread the last error can be
 * overwritten between a failing call and the `GetLastError` that reads it (see `lastError` in
 * `error.ts`), so where a wrong code would do harm, the native call that returns its status is
 * used.
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
  /**
   * NTSTATUS NtSetInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock,
   * PVOID FileInformation, ULONG Length, FILE_INFORMATION_CLASS FileInformationClass)
   */
  NtSetInformationFile: {
    parameters: ["pointer", "buffer", "buffer", "u32", "u32"],
    result: "u32",
  },
  /** NTSTATUS NtQueryDirectoryFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation, ULONG Length, FILE_INFORMATION_CLASS FileInformationClass, BOOLEAN ReturnSingleEntry, PUNICODE_STRING FileName, BOOLEAN RestartScan) */
  NtQueryDirectoryFile: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "buffer",
      "buffer",
      "u32",
      "i32",
      "u8",
      "pointer",
      "u8",
    ],
    result: "u32",
  },
  /** NTSTATUS NtQuerySection(HANDLE SectionHandle, SECTION_INFORMATION_CLASS InformationClass, PVOID InformationBuffer, SIZE_T InformationBufferSize, PSIZE_T ResultLength) */
  NtQuerySection: { parameters: ["pointer", "i32", "buffer", "usize", "buffer"], result: "i32" },
  /** NTSTATUS NtQuerySystemInformation(SYSTEM_INFORMATION_CLASS Class, PVOID Info, ULONG Length, PULONG ReturnLength) */
  NtQuerySystemInformation: { parameters: ["u32", "buffer", "u32", "buffer"], result: "u32" },
  /**
   * NTSTATUS NtRemoveIoCompletionEx(HANDLE Port, PFILE_IO_COMPLETION_INFORMATION Information,
   * ULONG Count, PULONG Removed, PLARGE_INTEGER Timeout, BOOLEAN Alertable): what
   * `GetQueuedCompletionStatusEx` calls, with the status as its return value (a timeout of 0 here)
   */
  NtRemoveIoCompletionEx: {
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer", "u8"],
    result: "u32",
  },
  /** NtRemoveIoCompletionEx on a worker thread (the I/O core's one wait; a null timeout: no limit) */
  NtRemoveIoCompletionExAsync: {
    name: "NtRemoveIoCompletionEx",
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer", "u8"],
    result: "u32",
    nonblocking: true,
  },
  /** ULONG RtlNtStatusToDosError(NTSTATUS Status) */
  RtlNtStatusToDosError: { parameters: ["u32"], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `FileCompletionInformation`: associates a handle with a completion port. */
export const FILE_COMPLETION_INFORMATION_CLASS = 30;
/** `FileIoCompletionNotificationInformation`: the handle's completion notification modes. */
export const FILE_IO_COMPLETION_NOTIFICATION_INFORMATION_CLASS = 41;
/** `STATUS_TIMEOUT`: a wait ended at its timeout. */
export const STATUS_TIMEOUT = 0x102;
/** `STATUS_INVALID_PARAMETER`. */
export const STATUS_INVALID_PARAMETER = 0xc000000d;

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
