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
import { beforeLibraryLoad, lazyLibrary } from "./library.ts";

/**
 * The kernel32.dll functions winipc declares, as `Deno.dlopen` takes them ({@linkcode kernel32}
 * opens them).
 *
 * @example Look up how a function is declared
 * ```ts
 * import { kernel32Symbols } from "./kernel32.ts";
 * console.log(kernel32Symbols.CloseHandle.parameters); // ["pointer"]
 * ```
 */
export const kernel32Symbols = {
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
  /** HMODULE GetModuleHandleW(LPCWSTR lpModuleName) */
  GetModuleHandleW: { parameters: ["buffer"], result: "pointer" },
  /** HLOCAL LocalFree(HLOCAL hMem) */
  LocalFree: { parameters: ["pointer"], result: "pointer" },

  // ---- handles and processes ----
  /** BOOL CloseHandle(HANDLE hObject) */
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  /** HANDLE GetCurrentProcess(void) */
  GetCurrentProcess: { parameters: [], result: "pointer" },
  /** BOOL GetProcessHandleCount(HANDLE hProcess, PDWORD pdwHandleCount) */
  GetProcessHandleCount: { parameters: ["pointer", "buffer"], result: "i32" },
  /** DWORD GetCurrentProcessId(void) */
  GetCurrentProcessId: { parameters: [], result: "u32" },
  /** HANDLE GetCurrentThread(void): a pseudo handle of the calling thread */
  GetCurrentThread: { parameters: [], result: "pointer" },
  /** DWORD GetCurrentThreadId(void) */
  GetCurrentThreadId: { parameters: [], result: "u32" },
  /** HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId) */
  OpenProcess: { parameters: ["u32", "i32", "u32"], result: "pointer" },
  /** BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode) */
  GetExitCodeProcess: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL GetProcessTimes(HANDLE hProcess, LPFILETIME lpCreationTime, LPFILETIME lpExitTime, LPFILETIME lpKernelTime, LPFILETIME lpUserTime) */
  GetProcessTimes: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
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
  /** HANDLE CreateWaitableTimerExW(LPSECURITY_ATTRIBUTES lpTimerAttributes, LPCWSTR lpTimerName, DWORD dwFlags, DWORD dwDesiredAccess) */
  CreateWaitableTimerExW: { parameters: ["buffer", "buffer", "u32", "u32"], result: "pointer" },
  /** BOOL SetWaitableTimer(HANDLE hTimer, const LARGE_INTEGER *lpDueTime, LONG lPeriod, PTIMERAPCROUTINE pfnCompletionRoutine, LPVOID lpArgToCompletionRoutine, BOOL fResume) */
  SetWaitableTimer: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "i32"],
    result: "i32",
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

  // ---- files and overlapped I/O ----
  /** HANDLE CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode, LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes, HANDLE hTemplateFile) */
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "buffer", "u32", "u32", "pointer"],
    result: "pointer",
  },
  /** BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead, LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped) */
  ReadFile: { parameters: ["pointer", "buffer", "u32", "buffer", "buffer"], result: "i32" },
  /** ReadFile on a worker thread (for synchronous handles such as anonymous pipes). */
  ReadFileAsync: {
    name: "ReadFile",
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** BOOL WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite, LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped) */
  WriteFile: { parameters: ["pointer", "buffer", "u32", "buffer", "buffer"], result: "i32" },
  /** WriteFile on a worker thread (for synchronous handles such as anonymous pipes). */
  WriteFileAsync: {
    name: "WriteFile",
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** BOOL GetOverlappedResult(HANDLE hFile, LPOVERLAPPED lpOverlapped, LPDWORD lpNumberOfBytesTransferred, BOOL bWait) */
  GetOverlappedResult: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "i32" },
  /** BOOL CancelIoEx(HANDLE hFile, LPOVERLAPPED lpOverlapped) */
  CancelIoEx: { parameters: ["pointer", "buffer"], result: "i32" },
  /** HANDLE CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort, ULONG_PTR CompletionKey, DWORD NumberOfConcurrentThreads) */
  CreateIoCompletionPort: { parameters: ["pointer", "pointer", "usize", "u32"], result: "pointer" },
  /** BOOL PostQueuedCompletionStatus(HANDLE CompletionPort, DWORD dwNumberOfBytesTransferred, ULONG_PTR dwCompletionKey, LPOVERLAPPED lpOverlapped) */
  PostQueuedCompletionStatus: { parameters: ["pointer", "u32", "usize", "pointer"], result: "i32" },
  /** BOOL DeviceIoControl(HANDLE hDevice, DWORD dwIoControlCode, LPVOID lpInBuffer, DWORD nInBufferSize, LPVOID lpOutBuffer, DWORD nOutBufferSize, LPDWORD lpBytesReturned, LPOVERLAPPED lpOverlapped) */
  DeviceIoControl: {
    parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags) */
  SetFileCompletionNotificationModes: { parameters: ["pointer", "u8"], result: "i32" },
  /** BOOL FlushFileBuffers(HANDLE hFile) */
  FlushFileBuffers: { parameters: ["pointer"], result: "i32" },
  /** FlushFileBuffers on a worker thread (on a pipe it waits until the peer has read everything). */
  FlushFileBuffersAsync: {
    name: "FlushFileBuffers",
    parameters: ["pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** DWORD QueryDosDeviceW(LPCWSTR lpDeviceName, LPWSTR lpTargetPath, DWORD ucchMax) */
  QueryDosDeviceW: { parameters: ["buffer", "buffer", "u32"], result: "u32" },

  // ---- communications devices (serial and parallel ports) ----
  /** BOOL GetCommState(HANDLE hFile, LPDCB lpDCB) */
  GetCommState: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL SetCommState(HANDLE hFile, LPDCB lpDCB) */
  SetCommState: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL GetCommTimeouts(HANDLE hFile, LPCOMMTIMEOUTS lpCommTimeouts) */
  GetCommTimeouts: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL SetCommTimeouts(HANDLE hFile, LPCOMMTIMEOUTS lpCommTimeouts) */
  SetCommTimeouts: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL PurgeComm(HANDLE hFile, DWORD dwFlags) */
  PurgeComm: { parameters: ["pointer", "u32"], result: "i32" },
  /** BOOL EscapeCommFunction(HANDLE hFile, DWORD dwFunc) */
  EscapeCommFunction: { parameters: ["pointer", "u32"], result: "i32" },
  /** BOOL GetCommModemStatus(HANDLE hFile, LPDWORD lpModemStat) */
  GetCommModemStatus: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL ClearCommError(HANDLE hFile, LPDWORD lpErrors, LPCOMSTAT lpStat) */
  ClearCommError: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** BOOL SetCommMask(HANDLE hFile, DWORD dwEvtMask) */
  SetCommMask: { parameters: ["pointer", "u32"], result: "i32" },
  /** BOOL GetCommMask(HANDLE hFile, LPDWORD lpEvtMask) */
  GetCommMask: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL WaitCommEvent(HANDLE hFile, LPDWORD lpEvtMask, LPOVERLAPPED lpOverlapped) */
  WaitCommEvent: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** BOOL SetCommBreak(HANDLE hFile) */
  SetCommBreak: { parameters: ["pointer"], result: "i32" },
  /** BOOL ClearCommBreak(HANDLE hFile) */
  ClearCommBreak: { parameters: ["pointer"], result: "i32" },
  /** BOOL SetupComm(HANDLE hFile, DWORD dwInQueue, DWORD dwOutQueue) */
  SetupComm: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  /** BOOL SetHandleInformation(HANDLE hObject, DWORD dwMask, DWORD dwFlags) */
  SetHandleInformation: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  /** HANDLE GetStdHandle(DWORD nStdHandle) */
  GetStdHandle: { parameters: ["u32"], result: "pointer" },
  /** BOOL DuplicateHandle(HANDLE hSourceProcessHandle, HANDLE hSourceHandle, HANDLE hTargetProcessHandle, LPHANDLE lpTargetHandle, DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwOptions) */
  DuplicateHandle: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "u32", "i32", "u32"],
    result: "i32",
  },

  // ---- named pipes ----
  /** HANDLE CreateNamedPipeW(LPCWSTR lpName, DWORD dwOpenMode, DWORD dwPipeMode, DWORD nMaxInstances, DWORD nOutBufferSize, DWORD nInBufferSize, DWORD nDefaultTimeOut, LPSECURITY_ATTRIBUTES lpSecurityAttributes) */
  CreateNamedPipeW: {
    parameters: ["buffer", "u32", "u32", "u32", "u32", "u32", "u32", "buffer"],
    result: "pointer",
  },
  /** BOOL ConnectNamedPipe(HANDLE hNamedPipe, LPOVERLAPPED lpOverlapped) */
  ConnectNamedPipe: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL DisconnectNamedPipe(HANDLE hNamedPipe) */
  DisconnectNamedPipe: { parameters: ["pointer"], result: "i32" },
  /** BOOL WaitNamedPipeW(LPCWSTR lpNamedPipeName, DWORD nTimeOut) */
  WaitNamedPipeW: { parameters: ["buffer", "u32"], result: "i32" },
  /** WaitNamedPipeW on a worker thread. */
  WaitNamedPipeWAsync: {
    name: "WaitNamedPipeW",
    parameters: ["buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  /** BOOL PeekNamedPipe(HANDLE hNamedPipe, LPVOID lpBuffer, DWORD nBufferSize, LPDWORD lpBytesRead, LPDWORD lpTotalBytesAvail, LPDWORD lpBytesLeftThisMessage) */
  PeekNamedPipe: {
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL TransactNamedPipe(HANDLE hNamedPipe, LPVOID lpInBuffer, DWORD nInBufferSize, LPVOID lpOutBuffer, DWORD nOutBufferSize, LPDWORD lpBytesRead, LPOVERLAPPED lpOverlapped) */
  TransactNamedPipe: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL CallNamedPipeW(LPCWSTR lpNamedPipeName, LPVOID lpInBuffer, DWORD nInBufferSize, LPVOID lpOutBuffer, DWORD nOutBufferSize, LPDWORD lpBytesRead, DWORD nTimeOut) */
  CallNamedPipeW: {
    parameters: ["buffer", "buffer", "u32", "buffer", "u32", "buffer", "u32"],
    result: "i32",
  },
  /** CallNamedPipeW on a worker thread (its last error stays on that thread). */
  CallNamedPipeWAsync: {
    name: "CallNamedPipeW",
    parameters: ["buffer", "buffer", "u32", "buffer", "u32", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  /** BOOL SetNamedPipeHandleState(HANDLE hNamedPipe, LPDWORD lpMode, LPDWORD lpMaxCollectionCount, LPDWORD lpCollectDataTimeout) */
  SetNamedPipeHandleState: {
    parameters: ["pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL GetNamedPipeInfo(HANDLE hNamedPipe, LPDWORD lpFlags, LPDWORD lpOutBufferSize, LPDWORD lpInBufferSize, LPDWORD lpMaxInstances) */
  GetNamedPipeInfo: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL GetNamedPipeClientProcessId(HANDLE Pipe, PULONG ClientProcessId) */
  GetNamedPipeClientProcessId: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL GetNamedPipeServerProcessId(HANDLE Pipe, PULONG ServerProcessId) */
  GetNamedPipeServerProcessId: { parameters: ["pointer", "buffer"], result: "i32" },
  /** HANDLE FindFirstFileW(LPCWSTR lpFileName, LPWIN32_FIND_DATAW lpFindFileData) */
  FindFirstFileW: { parameters: ["buffer", "buffer"], result: "pointer" },
  /** BOOL FindNextFileW(HANDLE hFindFile, LPWIN32_FIND_DATAW lpFindFileData) */
  FindNextFileW: { parameters: ["pointer", "buffer"], result: "i32" },
  /** BOOL FindClose(HANDLE hFindFile) */
  FindClose: { parameters: ["pointer"], result: "i32" },
  /** BOOL GetComputerNameW(LPWSTR lpBuffer, LPDWORD nSize) */
  GetComputerNameW: { parameters: ["buffer", "buffer"], result: "i32" },

  // ---- anonymous pipes and child processes ----
  /** BOOL CreatePipe(PHANDLE hReadPipe, PHANDLE hWritePipe, LPSECURITY_ATTRIBUTES lpPipeAttributes, DWORD nSize) */
  CreatePipe: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  /** BOOL CreateProcessW(LPCWSTR lpApplicationName, LPWSTR lpCommandLine, LPSECURITY_ATTRIBUTES lpProcessAttributes, LPSECURITY_ATTRIBUTES lpThreadAttributes, BOOL bInheritHandles, DWORD dwCreationFlags, LPVOID lpEnvironment, LPCWSTR lpCurrentDirectory, LPSTARTUPINFOW lpStartupInfo, LPPROCESS_INFORMATION lpProcessInformation) */
  CreateProcessW: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  /** BOOL TerminateProcess(HANDLE hProcess, UINT uExitCode) */
  TerminateProcess: { parameters: ["pointer", "u32"], result: "i32" },
  /** BOOL InitializeProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList, DWORD dwAttributeCount, DWORD dwFlags, PSIZE_T lpSize) */
  InitializeProcThreadAttributeList: {
    parameters: ["buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  /** BOOL UpdateProcThreadAttribute(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList, DWORD dwFlags, DWORD_PTR Attribute, PVOID lpValue, SIZE_T cbSize, PVOID lpPreviousValue, PSIZE_T lpReturnSize) */
  UpdateProcThreadAttribute: {
    parameters: ["buffer", "u32", "usize", "buffer", "usize", "pointer", "pointer"],
    result: "i32",
  },
  /** void DeleteProcThreadAttributeList(LPPROC_THREAD_ATTRIBUTE_LIST lpAttributeList) */
  DeleteProcThreadAttributeList: { parameters: ["buffer"], result: "void" },

  // ---- mailslots ----
  /** HANDLE CreateMailslotW(LPCWSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout, LPSECURITY_ATTRIBUTES lpSecurityAttributes) */
  CreateMailslotW: { parameters: ["buffer", "u32", "u32", "buffer"], result: "pointer" },
  /** BOOL GetMailslotInfo(HANDLE hMailslot, LPDWORD lpMaxMessageSize, LPDWORD lpNextSize, LPDWORD lpMessageCount, LPDWORD lpReadTimeout) */
  GetMailslotInfo: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** BOOL SetMailslotInfo(HANDLE hMailslot, DWORD lReadTimeout) */
  SetMailslotInfo: { parameters: ["pointer", "u32"], result: "i32" },
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
export const kernel32: () => Deno.DynamicLibrary<typeof kernel32Symbols>["symbols"] = lazyLibrary(
  "kernel32.dll",
  kernel32Symbols,
);

beforeLibraryLoad("kernel32.dll", () => kernel32());

/** kernel32.dll symbols that Wine 10 does not export: opened on their own, so their absence fails
 * only the call that needs them. */
const kernel32ExtraSymbols = {
  /** BOOL GetNamedPipeClientComputerNameW(HANDLE Pipe, LPWSTR ClientComputerName, ULONG ClientComputerNameLength) */
  GetNamedPipeClientComputerNameW: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * kernel32.dll symbols that some systems lack (Wine 10 has no `GetNamedPipeClientComputerNameW`),
 * opened on first use apart from {@linkcode kernel32}.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 * @throws {Error} When a symbol is missing (the loader's error is the `cause`).
 *
 * @example Lazily opened
 * ```ts
 * import { kernel32Extra } from "./kernel32.ts";
 * if (Deno.build.os === "windows") console.log(typeof kernel32Extra);
 * ```
 */
export const kernel32Extra: () => Deno.DynamicLibrary<typeof kernel32ExtraSymbols>["symbols"] =
  lazyLibrary("kernel32.dll", kernel32ExtraSymbols);

// ---- constants ----
/** `INFINITE` for wait functions. */
export const INFINITE = 0xffff_ffff;
/**
 * `CREATE_WAITABLE_TIMER_HIGH_RESOLUTION` (Windows 10 1803 and later): a timer that fires on time
 * without raising the system's timer resolution; older systems refuse the flag.
 */
export const CREATE_WAITABLE_TIMER_HIGH_RESOLUTION = 0x0000_0002;
/** `TIMER_ALL_ACCESS`. */
export const TIMER_ALL_ACCESS = 0x001f_0003;
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

// ---- files, pipes, processes, mailslots ----
/** CreateFileW attribute: normal. */
export const FILE_ATTRIBUTE_NORMAL = 0x80;
/** Access right: read. */
export const GENERIC_READ = 0x8000_0000;
/** Access right: write. */
export const GENERIC_WRITE = 0x4000_0000;
/** Share mode: others may read. */
export const FILE_SHARE_READ = 0x0000_0001;
/** Share mode: others may write. */
export const FILE_SHARE_WRITE = 0x0000_0002;
/** CreateFileW disposition: open only if it exists. */
export const OPEN_EXISTING = 3;
/** CreateFileW flag: the handle does overlapped (asynchronous) I/O. */
export const FILE_FLAG_OVERLAPPED = 0x4000_0000;
/** CreateFileW flag: the `SECURITY_*` impersonation bits below are present. */
export const SECURITY_SQOS_PRESENT = 0x0010_0000;
/** Impersonation level offered to a pipe server: identification only. */
export const SECURITY_IDENTIFICATION = 0x0001_0000;
/** Pipe open mode: data flows both ways. */
export const PIPE_ACCESS_DUPLEX = 0x0000_0003;
/** `PIPE_ACCESS_INBOUND`: the server end only reads (clients only write). */
export const PIPE_ACCESS_INBOUND = 0x0000_0001;
/** Pipe open mode: fail when a pipe of this name exists already. */
export const FILE_FLAG_FIRST_PIPE_INSTANCE = 0x0008_0000;
/** Pipe type: a byte stream. */
export const PIPE_TYPE_BYTE = 0x0000_0000;
/** Pipe type: messages. */
export const PIPE_TYPE_MESSAGE = 0x0000_0004;
/** Read mode: bytes. */
export const PIPE_READMODE_BYTE = 0x0000_0000;
/** Read mode: messages. */
export const PIPE_READMODE_MESSAGE = 0x0000_0002;
/** Blocking mode (the one to use with overlapped I/O). */
export const PIPE_WAIT = 0x0000_0000;
/** Refuse clients from other machines. */
export const PIPE_REJECT_REMOTE_CLIENTS = 0x0000_0008;
/** GetNamedPipeInfo flag: this is the server end. */
export const PIPE_SERVER_END = 0x0000_0001;
/** nMaxInstances: as many as resources allow. */
export const PIPE_UNLIMITED_INSTANCES = 255;
/** WaitNamedPipeW: wait as long as the server's default time-out. */
export const NMPWAIT_USE_DEFAULT_WAIT = 0;
/** SetHandleInformation flag: child processes inherit the handle. */
export const HANDLE_FLAG_INHERIT = 0x0000_0001;
/** GetStdHandle: standard input. */
export const STD_INPUT_HANDLE = 0xffff_fff6;
/** GetStdHandle: standard output. */
export const STD_OUTPUT_HANDLE = 0xffff_fff5;
/** GetStdHandle: standard error. */
export const STD_ERROR_HANDLE = 0xffff_fff4;
/** DuplicateHandle: same access as the source. */
export const DUPLICATE_SAME_ACCESS = 0x0000_0002;
/** STARTUPINFOW flag: hStdInput, hStdOutput and hStdError are set. */
export const STARTF_USESTDHANDLES = 0x0000_0100;
/** CreateProcessW flag: lpStartupInfo is a STARTUPINFOEXW. */
export const EXTENDED_STARTUPINFO_PRESENT = 0x0008_0000;
/** CreateProcessW flag: no console window for a console program. */
export const CREATE_NO_WINDOW = 0x0800_0000;
/** CreateProcessW flag: lpEnvironment is UTF-16. */
export const CREATE_UNICODE_ENVIRONMENT = 0x0000_0400;
/** The attribute that limits the handles a child inherits. */
export const PROC_THREAD_ATTRIBUTE_HANDLE_LIST = 0x0002_0002;
/** CreateMailslotW / SetMailslotInfo: reads wait forever. */
export const MAILSLOT_WAIT_FOREVER = 0xffff_ffff;
/** GetMailslotInfo's lpNextSize when no message waits. */
export const MAILSLOT_NO_MESSAGE = 0xffff_ffff;
