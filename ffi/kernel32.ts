/**
 * Raw bindings to kernel32.dll: errors, handles, file mappings, synchronisation objects.
 *
 * Each parameter is annotated with its C name and type. `HANDLE`s and other pointers are
 * `"pointer"`; strings (`LPCWSTR`) and out-parameters are `"buffer"` (a `Uint16Array` from
 * {@linkcode wide} or a `BigUint64Array(1)` / `Uint32Array(1)` out-slot). Symbols whose name ends
 * in `Async` are the same C function declared `nonblocking: true`: they run on a worker thread and
 * return a Promise, so their `GetLastError` is not this thread's (see the design's FFI facts).
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";

const symbols = {
  // ---- errors ----
  /** DWORD GetLastError(void) */
  GetLastError: { parameters: [], result: "u32" },
  /** void SetLastError(DWORD dwErrCode) */
  SetLastError: { parameters: ["u32"], result: "void" },
  /** DWORD FormatMessageW(DWORD dwFlags, LPCVOID lpSource, DWORD dwMessageId, DWORD dwLanguageId, LPWSTR lpBuffer, DWORD nSize, va_list *Arguments) */
  FormatMessageW: {
    parameters: ["u32", "pointer", "u32", "u32", "buffer", "u32", "pointer"],
    result: "u32",
  },
  /** HLOCAL LocalFree(HLOCAL hMem) */
  LocalFree: { parameters: ["pointer"], result: "pointer" },

  // ---- handles and processes ----
  /** BOOL CloseHandle(HANDLE hObject) */
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  /** HANDLE GetCurrentProcess(void) */
  GetCurrentProcess: { parameters: [], result: "pointer" },
  /** DWORD GetCurrentProcessId(void) */
  GetCurrentProcessId: { parameters: [], result: "u32" },
  /** DWORD GetCurrentThreadId(void) */
  GetCurrentThreadId: { parameters: [], result: "u32" },
  /** HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId) */
  OpenProcess: { parameters: ["u32", "i32", "u32"], result: "pointer" },
  /** BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode) */
  GetExitCodeProcess: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL GetHandleInformation(HANDLE hObject, LPDWORD lpdwFlags) */
  GetHandleInformation: { parameters: ["pointer", "buffer"], result: "i32" },
  /** void GetSystemInfo(LPSYSTEM_INFO lpSystemInfo) */
  GetSystemInfo: { parameters: ["buffer"], result: "void" },

  // ---- file mappings ----
  /** HANDLE CreateFileMappingW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpAttributes, DWORD flProtect, DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCWSTR lpName) */
  CreateFileMappingW: {
    parameters: ["pointer", "buffer", "u32", "u32", "u32", "buffer"],
    result: "pointer",
  },
  /** HANDLE OpenFileMappingW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName) */
  OpenFileMappingW: { parameters: ["u32", "i32", "buffer"], result: "pointer" },
  /** LPVOID MapViewOfFile(HANDLE hFileMappingObject, DWORD dwDesiredAccess, DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap) */
  MapViewOfFile: { parameters: ["pointer", "u32", "u32", "u32", "usize"], result: "pointer" },
  /** BOOL UnmapViewOfFile(LPCVOID lpBaseAddress) */
  UnmapViewOfFile: { parameters: ["pointer"], result: "i32" },
  /** BOOL FlushViewOfFile(LPCVOID lpBaseAddress, SIZE_T dwNumberOfBytesToFlush) */
  FlushViewOfFile: { parameters: ["pointer", "usize"], result: "i32" },

  // ---- synchronisation objects ----
  /** HANDLE CreateMutexW(LPSECURITY_ATTRIBUTES lpMutexAttributes, BOOL bInitialOwner, LPCWSTR lpName) */
  CreateMutexW: { parameters: ["buffer", "i32", "buffer"], result: "pointer" },
  /** HANDLE OpenMutexW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName) */
  OpenMutexW: { parameters: ["u32", "i32", "buffer"], result: "pointer" },
  /** BOOL ReleaseMutex(HANDLE hMutex) */
  ReleaseMutex: { parameters: ["pointer"], result: "i32" },
  /** HANDLE CreateEventW(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset, BOOL bInitialState, LPCWSTR lpName) */
  CreateEventW: { parameters: ["buffer", "i32", "i32", "buffer"], result: "pointer" },
  /** HANDLE OpenEventW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName) */
  OpenEventW: { parameters: ["u32", "i32", "buffer"], result: "pointer" },
  /** BOOL SetEvent(HANDLE hEvent) */
  SetEvent: { parameters: ["pointer"], result: "i32" },
  /** BOOL ResetEvent(HANDLE hEvent) */
  ResetEvent: { parameters: ["pointer"], result: "i32" },
  /** HANDLE CreateSemaphoreW(LPSECURITY_ATTRIBUTES lpSemaphoreAttributes, LONG lInitialCount, LONG lMaximumCount, LPCWSTR lpName) */
  CreateSemaphoreW: { parameters: ["buffer", "i32", "i32", "buffer"], result: "pointer" },
  /** HANDLE OpenSemaphoreW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName) */
  OpenSemaphoreW: { parameters: ["u32", "i32", "buffer"], result: "pointer" },
  /** BOOL ReleaseSemaphore(HANDLE hSemaphore, LONG lReleaseCount, LPLONG lpPreviousCount) */
  ReleaseSemaphore: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  /** DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds) */
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32" },
  /** WaitForSingleObject on a worker thread. */
  WaitForSingleObjectAsync: {
    name: "WaitForSingleObject",
    parameters: ["pointer", "u32"],
    result: "u32",
    nonblocking: true,
  },
  /** DWORD WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds) */
  WaitForMultipleObjects: { parameters: ["u32", "buffer", "i32", "u32"], result: "u32" },
  /** WaitForMultipleObjects on a worker thread. */
  WaitForMultipleObjectsAsync: {
    name: "WaitForMultipleObjects",
    parameters: ["u32", "buffer", "i32", "u32"],
    result: "u32",
    nonblocking: true,
  },

  // ---- global memory (the clipboard's currency) and modules ----
  /** HGLOBAL GlobalAlloc(UINT uFlags, SIZE_T dwBytes) */
  GlobalAlloc: { parameters: ["u32", "usize"], result: "pointer" },
  /** LPVOID GlobalLock(HGLOBAL hMem) */
  GlobalLock: { parameters: ["pointer"], result: "pointer" },
  /** BOOL GlobalUnlock(HGLOBAL hMem) */
  GlobalUnlock: { parameters: ["pointer"], result: "i32" },
  /** SIZE_T GlobalSize(HGLOBAL hMem) */
  GlobalSize: { parameters: ["pointer"], result: "usize" },
  /** HGLOBAL GlobalFree(HGLOBAL hMem) */
  GlobalFree: { parameters: ["pointer"], result: "pointer" },
  /** HMODULE GetModuleHandleW(LPCWSTR lpModuleName) */
  GetModuleHandleW: { parameters: ["buffer"], result: "pointer" },
  /** void Sleep(DWORD dwMilliseconds) */
  Sleep: { parameters: ["u32"], result: "void" },
  /** Sleep on a worker thread: a timer that does not depend on the event loop's resolution. */
  SleepAsync: { name: "Sleep", parameters: ["u32"], result: "void", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The kernel32.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Read the current process id
 * ```ts
 * import { kernel32 } from "./kernel32.ts";
 * if (Deno.build.os === "windows") console.log(kernel32().GetCurrentProcessId());
 * ```
 */
export const kernel32: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "kernel32.dll",
  symbols,
);

/** Symbols of ntdll.dll that kernel32 has no documented twin for. */
const ntSymbols = {
  /** NTSTATUS NtQuerySection(HANDLE SectionHandle, SECTION_INFORMATION_CLASS InformationClass, PVOID InformationBuffer, SIZE_T InformationBufferSize, PSIZE_T ResultLength) */
  NtQuerySection: { parameters: ["pointer", "i32", "buffer", "usize", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The ntdll.dll symbols winipc uses (the size of a section opened by name), opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Lazily opened
 * ```ts
 * import { ntdll } from "./kernel32.ts";
 * if (Deno.build.os === "windows") console.log(typeof ntdll().NtQuerySection);
 * ```
 */
export const ntdll: () => Deno.DynamicLibrary<typeof ntSymbols>["symbols"] = lazyLibrary(
  "ntdll.dll",
  ntSymbols,
);

// ---- constants ----
/** `INFINITE` for wait functions. */
export const INFINITE = 0xffff_ffff;
/** The wait completed because the object was signalled. */
export const WAIT_OBJECT_0 = 0x0000_0000;
/** A mutex's previous owner ended without releasing it; the caller now owns it. */
export const WAIT_ABANDONED = 0x0000_0080;
/** The wait's timeout elapsed. */
export const WAIT_TIMEOUT = 0x0000_0102;
/** The wait failed; see GetLastError. */
export const WAIT_FAILED = 0xffff_ffff;

/** Page protection: read only. */
export const PAGE_READONLY = 0x02;
/** Page protection: read and write. */
export const PAGE_READWRITE = 0x04;
/** Section attribute: reserve, commit pages on first touch. */
export const SEC_COMMIT = 0x0800_0000;

/** File-mapping access right: write (implies read for views). */
export const FILE_MAP_WRITE = 0x0002;
/** File-mapping access right: read. */
export const FILE_MAP_READ = 0x0004;
/** File-mapping access right: all. */
export const FILE_MAP_ALL_ACCESS = 0x000f_001f;

/** Standard right: wait on the object. */
export const SYNCHRONIZE = 0x0010_0000;
/** Mutex access: all rights. */
export const MUTEX_ALL_ACCESS = 0x001f_0001;
/** Event access: modify state (SetEvent, ResetEvent). */
export const EVENT_MODIFY_STATE = 0x0002;
/** Event access: all rights. */
export const EVENT_ALL_ACCESS = 0x001f_0003;
/** Semaphore access: modify state (ReleaseSemaphore). */
export const SEMAPHORE_MODIFY_STATE = 0x0002;
/** Semaphore access: all rights. */
export const SEMAPHORE_ALL_ACCESS = 0x001f_0003;
/** Process access: query limited information (exit code). */
export const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
/** `GlobalAlloc`: movable memory (what the clipboard requires). */
export const GMEM_MOVEABLE = 0x0002;
/** `GlobalAlloc`: zero-initialised. */
export const GMEM_ZEROINIT = 0x0040;
/** GetExitCodeProcess's value while the process runs. */
export const STILL_ACTIVE = 259;
