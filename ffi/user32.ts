/**
 * Raw bindings to user32.dll: window classes and windows, the message queue, sent and posted
 * messages, the clipboard, and DDEML (the DDE management library, which lives in user32.dll).
 *
 * Each parameter is annotated with its C name and type. Handles (`HWND`, `HGLOBAL`, `HCONV`,
 * `HSZ`, `HDDEDATA`) are `"pointer"`; `WPARAM` is `"usize"` and `LPARAM`/`LRESULT` are `"isize"`;
 * strings and out-parameters are `"buffer"`. Symbols whose name ends in `Async` are the same C
 * function declared `nonblocking: true`: they run on a worker thread and return a Promise, so
 * their `GetLastError` is not this thread's, and a worker thread has its own (empty) message
 * queue: it cannot see or pump the main thread's.
 *
 * @module
 */
import { lazyLibrary, type ReentrantLibraryInterface } from "./library.ts";
import { StructLayout } from "./struct.ts";

const symbols = {
  // ---- window classes and windows ----
  /** ATOM RegisterClassExW(const WNDCLASSEXW *lpwcx) */
  RegisterClassExW: { parameters: ["buffer"], result: "u16" },
  /** BOOL UnregisterClassW(LPCWSTR lpClassName, HINSTANCE hInstance) */
  UnregisterClassW: { parameters: ["buffer", "pointer"], result: "i32" },
  /** HWND CreateWindowExW(DWORD dwExStyle, LPCWSTR lpClassName, LPCWSTR lpWindowName, DWORD dwStyle, int X, int Y, int nWidth, int nHeight, HWND hWndParent, HMENU hMenu, HINSTANCE hInstance, LPVOID lpParam) */
  CreateWindowExW: {
    parameters: [
      "u32",
      "buffer",
      "buffer",
      "u32",
      "i32",
      "i32",
      "i32",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "pointer",
    callback: true,
  },
  /** BOOL DestroyWindow(HWND hWnd) */
  DestroyWindow: { parameters: ["pointer"], result: "i32", callback: true },
  /** LRESULT DefWindowProcW(HWND hWnd, UINT Msg, WPARAM wParam, LPARAM lParam) */
  DefWindowProcW: {
    parameters: ["pointer", "u32", "usize", "isize"],
    result: "isize",
    callback: true,
  },
  /** BOOL IsWindow(HWND hWnd) */
  IsWindow: { parameters: ["pointer"], result: "i32" },
  /** int GetWindowTextW(HWND hWnd, LPWSTR lpString, int nMaxCount) */
  GetWindowTextW: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int GetClassNameW(HWND hWnd, LPWSTR lpClassName, int nMaxCount) */
  GetClassNameW: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** HWND FindWindowExW(HWND hWndParent, HWND hWndChildAfter, LPCWSTR lpszClass, LPCWSTR lpszWindow) */
  FindWindowExW: { parameters: ["pointer", "pointer", "buffer", "buffer"], result: "pointer" },
  /** HWND FindWindowW(LPCWSTR lpClassName, LPCWSTR lpWindowName) */
  FindWindowW: { parameters: ["buffer", "buffer"], result: "pointer" },
  /** DWORD GetWindowThreadProcessId(HWND hWnd, LPDWORD lpdwProcessId) */
  GetWindowThreadProcessId: { parameters: ["pointer", "buffer"], result: "u32" },
  /** DWORD GetGuiResources(HANDLE hProcess, DWORD uiFlags): GR_GDIOBJECTS 0, GR_USEROBJECTS 1 */
  GetGuiResources: { parameters: ["pointer", "u32"], result: "u32" },

  // ---- the message queue ----
  /** BOOL PeekMessageW(LPMSG lpMsg, HWND hWnd, UINT wMsgFilterMin, UINT wMsgFilterMax, UINT wRemoveMsg) */
  PeekMessageW: {
    parameters: ["buffer", "pointer", "u32", "u32", "u32"],
    result: "i32",
    callback: true,
  },
  /** BOOL GetMessageW(LPMSG lpMsg, HWND hWnd, UINT wMsgFilterMin, UINT wMsgFilterMax); blocks: never on the main thread */
  GetMessageW: { parameters: ["buffer", "pointer", "u32", "u32"], result: "i32", callback: true },
  /** BOOL TranslateMessage(const MSG *lpMsg) */
  TranslateMessage: { parameters: ["buffer"], result: "i32" },
  /** LRESULT DispatchMessageW(const MSG *lpMsg) */
  DispatchMessageW: { parameters: ["buffer"], result: "isize", callback: true },
  /** DWORD GetQueueStatus(UINT flags) */
  GetQueueStatus: { parameters: ["u32"], result: "u32" },
  /** DWORD MsgWaitForMultipleObjects(DWORD nCount, const HANDLE *pHandles, BOOL fWaitAll, DWORD dwMilliseconds, DWORD dwWakeMask) */
  MsgWaitForMultipleObjects: {
    parameters: ["u32", "buffer", "i32", "u32", "u32"],
    result: "u32",
    callback: true,
  },
  /** MsgWaitForMultipleObjects on a worker thread (which sees only its own queue). */
  MsgWaitForMultipleObjectsAsync: {
    name: "MsgWaitForMultipleObjects",
    parameters: ["u32", "buffer", "i32", "u32", "u32"],
    result: "u32",
    nonblocking: true,
  },
  /** DWORD MsgWaitForMultipleObjectsEx(DWORD nCount, const HANDLE *pHandles, DWORD dwMilliseconds, DWORD dwWakeMask, DWORD dwFlags) */
  MsgWaitForMultipleObjectsEx: {
    parameters: ["u32", "buffer", "u32", "u32", "u32"],
    result: "u32",
    callback: true,
  },
  /** BOOL InSendMessage(void) */
  InSendMessage: { parameters: [], result: "i32" },
  /** BOOL ReplyMessage(LRESULT lResult) */
  ReplyMessage: { parameters: ["isize"], result: "i32" },

  // ---- sending and posting ----
  /** LRESULT SendMessageW(HWND hWnd, UINT Msg, WPARAM wParam, LPARAM lParam) */
  SendMessageW: {
    parameters: ["pointer", "u32", "usize", "isize"],
    result: "isize",
    callback: true,
  },
  /** LRESULT SendMessageTimeoutW(HWND hWnd, UINT Msg, WPARAM wParam, LPARAM lParam, UINT fuFlags, UINT uTimeout, PDWORD_PTR lpdwResult) */
  SendMessageTimeoutW: {
    parameters: ["pointer", "u32", "usize", "isize", "u32", "u32", "buffer"],
    result: "isize",
    callback: true,
  },
  /** SendMessageTimeoutW on a worker thread: the event loop runs while the receiver works. */
  SendMessageTimeoutWAsync: {
    name: "SendMessageTimeoutW",
    parameters: ["pointer", "u32", "usize", "isize", "u32", "u32", "buffer"],
    result: "isize",
    nonblocking: true,
  },
  /** BOOL PostMessageW(HWND hWnd, UINT Msg, WPARAM wParam, LPARAM lParam) */
  PostMessageW: { parameters: ["pointer", "u32", "usize", "isize"], result: "i32" },
  /** BOOL PostThreadMessageW(DWORD idThread, UINT Msg, WPARAM wParam, LPARAM lParam) */
  PostThreadMessageW: { parameters: ["u32", "u32", "usize", "isize"], result: "i32" },
  /** UINT RegisterWindowMessageW(LPCWSTR lpString) */
  RegisterWindowMessageW: { parameters: ["buffer"], result: "u32" },
  /** BOOL ChangeWindowMessageFilterEx(HWND hwnd, UINT message, DWORD action, PCHANGEFILTERSTRUCT pChangeFilterStruct) */
  ChangeWindowMessageFilterEx: { parameters: ["pointer", "u32", "u32", "buffer"], result: "i32" },
  /** long BroadcastSystemMessageW(DWORD flags, LPDWORD lpInfo, UINT Msg, WPARAM wParam, LPARAM lParam) */
  BroadcastSystemMessageW: {
    parameters: ["u32", "buffer", "u32", "usize", "isize"],
    result: "i32",
    callback: true,
  },
  /** BroadcastSystemMessageW on a worker thread: a `BSF_QUERY` broadcast waits for each window. */
  BroadcastSystemMessageWAsync: {
    name: "BroadcastSystemMessageW",
    parameters: ["u32", "buffer", "u32", "usize", "isize"],
    result: "i32",
    nonblocking: true,
  },

  // ---- the clipboard ----
  /** BOOL OpenClipboard(HWND hWndNewOwner) */
  OpenClipboard: { parameters: ["pointer"], result: "i32", callback: true },
  /** BOOL CloseClipboard(void) */
  CloseClipboard: { parameters: [], result: "i32", callback: true },
  /** BOOL EmptyClipboard(void) */
  EmptyClipboard: { parameters: [], result: "i32", callback: true },
  /** HANDLE GetClipboardData(UINT uFormat) */
  GetClipboardData: { parameters: ["u32"], result: "pointer", callback: true },
  /** HANDLE SetClipboardData(UINT uFormat, HANDLE hMem) */
  SetClipboardData: { parameters: ["u32", "pointer"], result: "pointer", callback: true },
  /** HWND GetOpenClipboardWindow(void) */
  GetOpenClipboardWindow: { parameters: [], result: "pointer" },
  /** DWORD GetClipboardSequenceNumber(void) */
  GetClipboardSequenceNumber: { parameters: [], result: "u32" },
  /** UINT RegisterClipboardFormatW(LPCWSTR lpszFormat) */
  RegisterClipboardFormatW: { parameters: ["buffer"], result: "u32" },
  /** int GetClipboardFormatNameW(UINT format, LPWSTR lpszFormatName, int cchMaxCount) */
  GetClipboardFormatNameW: { parameters: ["u32", "buffer", "i32"], result: "i32" },
  /** UINT EnumClipboardFormats(UINT format) */
  EnumClipboardFormats: { parameters: ["u32"], result: "u32" },
  /** int CountClipboardFormats(void) */
  CountClipboardFormats: { parameters: [], result: "i32" },
  /** BOOL IsClipboardFormatAvailable(UINT format) */
  IsClipboardFormatAvailable: { parameters: ["u32"], result: "i32" },
  /** BOOL AddClipboardFormatListener(HWND hwnd) */
  AddClipboardFormatListener: { parameters: ["pointer"], result: "i32", callback: true },
  /** BOOL RemoveClipboardFormatListener(HWND hwnd) */
  RemoveClipboardFormatListener: { parameters: ["pointer"], result: "i32", callback: true },

  // ---- DDEML ----
  /** UINT DdeInitializeW(LPDWORD pidInst, PFNCALLBACK pfnCallback, DWORD afCmd, DWORD ulRes) */
  DdeInitializeW: {
    parameters: ["buffer", "function", "u32", "u32"],
    result: "u32",
    callback: true,
  },
  /** BOOL DdeUninitialize(DWORD idInst) */
  DdeUninitialize: { parameters: ["u32"], result: "i32", callback: true },
  /** HSZ DdeCreateStringHandleW(DWORD idInst, LPCWSTR psz, int iCodePage) */
  DdeCreateStringHandleW: { parameters: ["u32", "buffer", "i32"], result: "pointer" },
  /** BOOL DdeFreeStringHandle(DWORD idInst, HSZ hsz) */
  DdeFreeStringHandle: { parameters: ["u32", "pointer"], result: "i32" },
  /** DWORD DdeQueryStringW(DWORD idInst, HSZ hsz, LPWSTR psz, DWORD cchMax, int iCodePage) */
  DdeQueryStringW: { parameters: ["u32", "pointer", "buffer", "u32", "i32"], result: "u32" },
  /** BOOL DdeKeepStringHandle(DWORD idInst, HSZ hsz) */
  DdeKeepStringHandle: { parameters: ["u32", "pointer"], result: "i32" },
  /** int DdeCmpStringHandles(HSZ hsz1, HSZ hsz2) */
  DdeCmpStringHandles: { parameters: ["pointer", "pointer"], result: "i32" },
  /** HCONV DdeConnect(DWORD idInst, HSZ hszService, HSZ hszTopic, PCONVCONTEXT pCC) */
  DdeConnect: {
    parameters: ["u32", "pointer", "pointer", "pointer"],
    result: "pointer",
    callback: true,
  },
  /** BOOL DdeDisconnect(HCONV hConv) */
  DdeDisconnect: { parameters: ["pointer"], result: "i32", callback: true },
  /** HDDEDATA DdeClientTransaction(LPBYTE pData, DWORD cbData, HCONV hConv, HSZ hszItem, UINT wFmt, UINT wType, DWORD dwTimeout, LPDWORD pdwResult) */
  DdeClientTransaction: {
    parameters: ["buffer", "u32", "pointer", "pointer", "u32", "u32", "u32", "buffer"],
    result: "pointer",
    callback: true,
  },
  /** BOOL DdeAbandonTransaction(DWORD idInst, HCONV hConv, DWORD idTransaction) */
  DdeAbandonTransaction: { parameters: ["u32", "pointer", "u32"], result: "i32", callback: true },
  /** HDDEDATA DdeCreateDataHandle(DWORD idInst, LPBYTE pSrc, DWORD cb, DWORD cbOff, HSZ hszItem, UINT wFmt, UINT afCmd) */
  DdeCreateDataHandle: {
    parameters: ["u32", "buffer", "u32", "u32", "pointer", "u32", "u32"],
    result: "pointer",
  },
  /** DWORD DdeGetData(HDDEDATA hData, LPBYTE pDst, DWORD cbMax, DWORD cbOff) */
  DdeGetData: { parameters: ["pointer", "buffer", "u32", "u32"], result: "u32" },
  /** LPBYTE DdeAccessData(HDDEDATA hData, LPDWORD pcbDataSize) */
  DdeAccessData: { parameters: ["pointer", "buffer"], result: "pointer" },
  /** BOOL DdeUnaccessData(HDDEDATA hData) */
  DdeUnaccessData: { parameters: ["pointer"], result: "i32" },
  /** BOOL DdeFreeDataHandle(HDDEDATA hData) */
  DdeFreeDataHandle: { parameters: ["pointer"], result: "i32" },
  /** HDDEDATA DdeNameService(DWORD idInst, HSZ hsz1, HSZ hsz2, UINT afCmd) */
  DdeNameService: {
    parameters: ["u32", "pointer", "pointer", "u32"],
    result: "pointer",
    callback: true,
  },
  /** BOOL DdePostAdvise(DWORD idInst, HSZ hszTopic, HSZ hszItem) */
  DdePostAdvise: { parameters: ["u32", "pointer", "pointer"], result: "i32", callback: true },
  /** UINT DdeGetLastError(DWORD idInst) */
  DdeGetLastError: { parameters: ["u32"], result: "u32" },
} as const satisfies ReentrantLibraryInterface;

/**
 * The user32.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 *
 * @example Find a window by its title
 * ```ts
 * import { user32 } from "./user32.ts";
 * import { wide } from "./strings.ts";
 * if (Deno.build.os === "windows") console.log(user32().FindWindowW(null, wide("Notepad")));
 * ```
 */
export const user32: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "user32.dll",
  symbols,
);

// ---- callback definitions ----

/**
 * `LRESULT CALLBACK WindowProc(HWND hwnd, UINT uMsg, WPARAM wParam, LPARAM lParam)`.
 *
 * The result is declared `i64` rather than `isize` (the same on x64): when the JavaScript body
 * cannot even start (a stack overflow, see `mechanisms/_pump.ts`), Deno 2.9 answers 0 for an
 * `i64` callback but panics for an `isize` one.
 */
export const WNDPROC = {
  parameters: ["pointer", "u32", "usize", "isize"],
  result: "i64",
} as const satisfies Deno.UnsafeCallbackDefinition;

/** `HDDEDATA CALLBACK DdeCallback(UINT uType, UINT uFmt, HCONV hconv, HSZ hsz1, HSZ hsz2, HDDEDATA hdata, ULONG_PTR dwData1, ULONG_PTR dwData2)` */
export const PFNCALLBACK = {
  parameters: ["u32", "u32", "pointer", "pointer", "pointer", "pointer", "usize", "usize"],
  result: "pointer",
} as const satisfies Deno.UnsafeCallbackDefinition;

// ---- structs ----

/** `WNDCLASSEXW` (80 bytes on x64). */
export const WNDCLASSEXW: StructLayout<{
  cbSize: "u32";
  style: "u32";
  lpfnWndProc: "pointer";
  cbClsExtra: "i32";
  cbWndExtra: "i32";
  hInstance: "pointer";
  hIcon: "pointer";
  hCursor: "pointer";
  hbrBackground: "pointer";
  lpszMenuName: "pointer";
  lpszClassName: "pointer";
  hIconSm: "pointer";
}> = new StructLayout(
  {
    cbSize: "u32",
    style: "u32",
    lpfnWndProc: "pointer",
    cbClsExtra: "i32",
    cbWndExtra: "i32",
    hInstance: "pointer",
    hIcon: "pointer",
    hCursor: "pointer",
    hbrBackground: "pointer",
    lpszMenuName: "pointer",
    lpszClassName: "pointer",
    hIconSm: "pointer",
  } as const,
);

/** `MSG` (48 bytes on x64). */
export const MSG: StructLayout<{
  hwnd: "pointer";
  message: "u32";
  wParam: "usize";
  lParam: "isize";
  time: "u32";
  ptX: "i32";
  ptY: "i32";
  lPrivate: "u32";
}> = new StructLayout(
  {
    hwnd: "pointer",
    message: "u32",
    wParam: "usize",
    lParam: "isize",
    time: "u32",
    ptX: "i32",
    ptY: "i32",
    lPrivate: "u32",
  } as const,
);

/** `COPYDATASTRUCT` (24 bytes on x64). */
export const COPYDATASTRUCT: StructLayout<{
  dwData: "usize";
  cbData: "u32";
  lpData: "pointer";
}> = new StructLayout({ dwData: "usize", cbData: "u32", lpData: "pointer" } as const);

// ---- constants: windows and messages ----
/** `HWND_MESSAGE`, the parent of message-only windows: `(HWND)-3`. */
export const HWND_MESSAGE: Deno.PointerObject = Deno.UnsafePointer.create(
  0xffff_ffff_ffff_fffdn,
)!;
/** `HWND_BROADCAST`: every top-level window, `(HWND)0xffff`. */
export const HWND_BROADCAST: Deno.PointerObject = Deno.UnsafePointer.create(0xffffn)!;

/** `WM_NULL`, a message that does nothing. */
export const WM_NULL = 0x0000;
/** `WM_DESTROY` */
export const WM_DESTROY = 0x0002;
/** `WM_CLOSE` */
export const WM_CLOSE = 0x0010;
/** `WM_QUIT` */
export const WM_QUIT = 0x0012;
/** `WM_COPYDATA` */
export const WM_COPYDATA = 0x004a;
/** `WM_CLIPBOARDUPDATE` */
export const WM_CLIPBOARDUPDATE = 0x031d;
/** `WM_USER`, the first private message of a window class. */
export const WM_USER = 0x0400;
/** `WM_APP`, the first private message of an application. */
export const WM_APP = 0x8000;

/** `PeekMessage`: remove the message from the queue. */
export const PM_REMOVE = 0x0001;
/** `PeekMessage`: leave the message in the queue. */
export const PM_NOREMOVE = 0x0000;
/** `MsgWaitForMultipleObjects` wake mask: any message or input. */
export const QS_ALLINPUT = 0x04ff;
/** `GetQueueStatus`: a message sent by another thread or process is waiting. */
export const QS_SENDMESSAGE = 0x0040;
/** `GetQueueStatus`: a posted message is waiting. */
export const QS_POSTMESSAGE = 0x0008;
/** `MsgWaitForMultipleObjectsEx` flag: return when input arrives even if seen before. */
export const MWMO_INPUTAVAILABLE = 0x0004;

/** `SendMessageTimeout`: normal; the caller processes sent messages while it waits. */
export const SMTO_NORMAL = 0x0000;
/** `SendMessageTimeout`: the caller does not process other messages while it waits. */
export const SMTO_BLOCK = 0x0001;
/** `SendMessageTimeout`: return at once when the receiver is hung. */
export const SMTO_ABORTIFHUNG = 0x0002;
/** `SendMessageTimeout`: the timeout holds even while the receiver keeps processing messages. */
export const SMTO_NOTIMEOUTIFNOTHUNG = 0x0008;
/** `SendMessageTimeout`: error out when the receiving thread ends. */
export const SMTO_ERRORONEXIT = 0x0020;

/** `BroadcastSystemMessage` recipients: applications. */
export const BSM_APPLICATIONS = 0x0000_0008;
/** `BroadcastSystemMessage` recipients: every desktop (needs `SE_TCB_NAME`). */
export const BSM_ALLDESKTOPS = 0x0000_0010;
/** `BroadcastSystemMessage` flag: send to one window at a time; one may refuse. */
export const BSF_QUERY = 0x0000_0001;
/** `BroadcastSystemMessage` reply that refuses a `BSF_QUERY` broadcast ("DQMB"). */
export const BROADCAST_QUERY_DENY = 0x424d_5144;
/** `BroadcastSystemMessage` flag: post, do not wait. */
export const BSF_POSTMESSAGE = 0x0000_0010;
/** `BroadcastSystemMessage` flag: skip the windows of the calling task. */
export const BSF_IGNORECURRENTTASK = 0x0000_0002;
/** `BroadcastSystemMessage` flag: force a hung receiver to time out. */
export const BSF_FORCEIFHUNG = 0x0000_0020;

/** `ChangeWindowMessageFilterEx` action: let the message through the window's filter. */
export const MSGFLT_ALLOW = 1;
/** `ChangeWindowMessageFilterEx` action: block the message at the window's filter. */
export const MSGFLT_DISALLOW = 2;
/** `ChangeWindowMessageFilterEx` action: reset the window's filter to the default. */
export const MSGFLT_RESET = 0;
/** `CHANGEFILTERSTRUCT.ExtStatus`: the filter changed as asked (or see the function's docs). */
export const MSGFLTINFO_NONE = 0;
/** `CHANGEFILTERSTRUCT.ExtStatus`: the window's filter already allowed the message. */
export const MSGFLTINFO_ALREADYALLOWED_FORWND = 1;
/** `CHANGEFILTERSTRUCT.ExtStatus`: the window's filter already blocked the message. */
export const MSGFLTINFO_ALREADYDISALLOWED_FORWND = 2;
/** `CHANGEFILTERSTRUCT.ExtStatus`: the message is allowed at a higher scope (the process). */
export const MSGFLTINFO_ALLOWED_HIGHER = 3;

/** Window style: a pop-up (no caption). */
export const WS_POPUP = 0x8000_0000;
/** Extended window style: a tool window (no taskbar button). */
export const WS_EX_TOOLWINDOW = 0x0000_0080;

// ---- constants: the clipboard ----
/** `CF_TEXT`: ANSI text with a NUL. */
export const CF_TEXT = 1;
/** `CF_OEMTEXT`: OEM text with a NUL. */
export const CF_OEMTEXT = 7;
/** `CF_UNICODETEXT`: UTF-16 text with a NUL. */
export const CF_UNICODETEXT = 13;
/** `CF_LOCALE`: the locale of the text. */
export const CF_LOCALE = 16;

// ---- constants: DDEML ----
/** `DdeInitialize`: the application is a client and a server (standard filters). */
export const APPCLASS_STANDARD = 0x0000_0000;
/** `DdeInitialize`: client only. */
export const APPCMD_CLIENTONLY = 0x0000_0010;
/** `DdeInitialize`: no XTYP_CONNECT_CONFIRM etc. registrations. */
export const CBF_SKIP_REGISTRATIONS = 0x0008_0000;
/** `DdeInitialize`: no XTYP_UNREGISTER. */
export const CBF_SKIP_UNREGISTRATIONS = 0x0010_0000;
/** `DdeInitialize`: no XTYP_CONNECT_CONFIRM. */
export const CBF_SKIP_CONNECT_CONFIRMS = 0x0004_0000;
/** `DdeInitialize`: no XTYP_DISCONNECT. */
export const CBF_SKIP_DISCONNECTS = 0x0020_0000;
/** `DdeInitialize`: refuse connections from this instance to itself. */
export const CBF_FAIL_SELFCONNECTIONS = 0x0000_1000;

/** `DdeCreateStringHandle` code page: UTF-16. */
export const CP_WINUNICODE = 1200;
/** `DdeNameService`: register the service. */
export const DNS_REGISTER = 0x0001;
/** `DdeNameService`: unregister the service. */
export const DNS_UNREGISTER = 0x0002;
/** `DdeCreateDataHandle`: the server keeps the handle (for several clients). */
export const HDATA_APPOWNED = 0x0001;
/** `DdeClientTransaction` timeout: asynchronous. */
export const TIMEOUT_ASYNC = 0xffff_ffff;

/** A DDE callback's answer to a poke or execute: handled. */
export const DDE_FACK = 0x8000;
/** A DDE callback's answer: busy. */
export const DDE_FBUSY = 0x4000;
/** A DDE callback's answer: not handled. */
export const DDE_FNOTPROCESSED = 0x0000;

/** Transaction flag: the callback may return a data handle. */
const XCLASS_DATA = 0x2000;
/** Transaction flag: the callback returns a DDE_F* flag. */
const XCLASS_FLAGS = 0x4000;
/** Transaction flag: the callback returns a BOOL. */
const XCLASS_BOOL = 0x1000;
/** Transaction flag: notification only. */
const XCLASS_NOTIFICATION = 0x8000;
/** Transaction flag: the type cannot be filtered out. */
const XTYPF_NOBLOCK = 0x0002;

/** `XTYP_ADVDATA`: an advise update reaches the client. */
export const XTYP_ADVDATA = 0x0010 | XCLASS_FLAGS;
/** `XTYP_ADVREQ`: the server is asked for an advised item's data. */
export const XTYP_ADVREQ = 0x0020 | XCLASS_DATA | XTYPF_NOBLOCK;
/** `XTYP_ADVSTART`: start an advise loop. */
export const XTYP_ADVSTART = 0x0030 | XCLASS_BOOL;
/** `XTYP_ADVSTOP`: stop an advise loop. */
export const XTYP_ADVSTOP = 0x0040 | XCLASS_NOTIFICATION;
/** `XTYP_EXECUTE`: run a command. */
export const XTYP_EXECUTE = 0x0050 | XCLASS_FLAGS;
/** `XTYP_CONNECT`: a client asks to connect to a topic. */
export const XTYP_CONNECT = 0x0060 | XCLASS_BOOL | XTYPF_NOBLOCK;
/** `XTYP_CONNECT_CONFIRM`: a conversation was made. */
export const XTYP_CONNECT_CONFIRM = 0x0070 | XCLASS_NOTIFICATION | XTYPF_NOBLOCK;
/** `XTYP_XACT_COMPLETE`: an asynchronous transaction completed. */
export const XTYP_XACT_COMPLETE = 0x0080 | XCLASS_NOTIFICATION;
/** `XTYP_POKE`: write an item. */
export const XTYP_POKE = 0x0090 | XCLASS_FLAGS;
/** `XTYP_REGISTER`: a server registered a service. */
export const XTYP_REGISTER = 0x00a0 | XCLASS_NOTIFICATION | XTYPF_NOBLOCK;
/** `XTYP_REQUEST`: read an item. */
export const XTYP_REQUEST = 0x00b0 | XCLASS_DATA;
/** `XTYP_DISCONNECT`: a conversation ended. */
export const XTYP_DISCONNECT = 0x00c0 | XCLASS_NOTIFICATION | XTYPF_NOBLOCK;
/** `XTYP_UNREGISTER`: a server unregistered a service. */
export const XTYP_UNREGISTER = 0x00d0 | XCLASS_NOTIFICATION | XTYPF_NOBLOCK;
/** `WM_DDE_INITIATE`: a client looks for servers of a service and topic (atoms; 0 is any). */
export const WM_DDE_INITIATE = 0x03e0;
/** `WM_DDE_TERMINATE`: ends a DDE conversation. */
export const WM_DDE_TERMINATE = 0x03e1;
/** `WM_DDE_ACK`: a server answers `WM_DDE_INITIATE` with its service and topic atoms. */
export const WM_DDE_ACK = 0x03e4;
/** `XTYP_WILDCONNECT`: a client asks which topics exist. */
export const XTYP_WILDCONNECT = 0x00e0 | XCLASS_DATA | XTYPF_NOBLOCK;
/** `XTYPF_NODATA`: a warm advise link (notifications without data). */
export const XTYPF_NODATA = 0x0004;
/** `XTYPF_ACKREQ`: the server waits for the client's ack before the next update. */
export const XTYPF_ACKREQ = 0x0008;

/** `DMLERR_NO_ERROR` */
export const DMLERR_NO_ERROR = 0;
/** `DMLERR_ADVACKTIMEOUT`: an advise-start transaction timed out. */
export const DMLERR_ADVACKTIMEOUT = 0x4000;
/** `DMLERR_DATAACKTIMEOUT`: a request transaction timed out. */
export const DMLERR_DATAACKTIMEOUT = 0x4002;
/** `DMLERR_EXECACKTIMEOUT`: an execute transaction timed out. */
export const DMLERR_EXECACKTIMEOUT = 0x4005;
/** `DMLERR_NO_CONV_ESTABLISHED`: no server answered a connect. */
export const DMLERR_NO_CONV_ESTABLISHED = 0x400a;
/** `DMLERR_POKEACKTIMEOUT`: a poke transaction timed out. */
export const DMLERR_POKEACKTIMEOUT = 0x400b;

/** Symbolic names of the DDEML error codes (`DdeGetLastError`, `DdeInitialize`). */
export const DMLERR_NAMES: Readonly<Record<number, string>> = {
  0x0000: "DMLERR_NO_ERROR",
  0x4000: "DMLERR_ADVACKTIMEOUT",
  0x4001: "DMLERR_BUSY",
  0x4002: "DMLERR_DATAACKTIMEOUT",
  0x4003: "DMLERR_DLL_NOT_INITIALIZED",
  0x4004: "DMLERR_DLL_USAGE",
  0x4005: "DMLERR_EXECACKTIMEOUT",
  0x4006: "DMLERR_INVALIDPARAMETER",
  0x4007: "DMLERR_LOW_MEMORY",
  0x4008: "DMLERR_MEMORY_ERROR",
  0x4009: "DMLERR_NOTPROCESSED",
  0x400a: "DMLERR_NO_CONV_ESTABLISHED",
  0x400b: "DMLERR_POKEACKTIMEOUT",
  0x400c: "DMLERR_POSTMSG_FAILED",
  0x400d: "DMLERR_REENTRANCY",
  0x400e: "DMLERR_SERVER_DIED",
  0x400f: "DMLERR_SYS_ERROR",
  0x4010: "DMLERR_UNADVACKTIMEOUT",
  0x4011: "DMLERR_UNFOUND_QUEUE_ID",
};

/** What each DDEML error means, for messages. */
export const DMLERR_TEXT: Readonly<Record<number, string>> = {
  0x4000: "the server did not answer an advise request in time",
  0x4001: "the server is busy",
  0x4002: "the server did not answer a data request in time",
  0x4003: "DDEML was not initialised",
  0x4004: "DDEML was used wrongly for this instance's kind",
  0x4005: "the server did not answer an execute in time",
  0x4006: "a parameter was not valid",
  0x4007: "low memory",
  0x4008: "memory allocation failed",
  0x4009: "the server did not process the transaction",
  0x400a: "no server answered for that service and topic",
  0x400b: "the server did not answer a poke in time",
  0x400c: "a PostMessage failed",
  0x400d: "a synchronous transaction is already in progress",
  0x400e: "the partner ended the conversation",
  0x400f: "an internal DDEML error",
  0x4010: "the server did not answer an advise stop in time",
  0x4011: "an invalid transaction id",
};

/**
 * The symbolic name of a DDEML error code.
 *
 * @param code The code from `DdeGetLastError`.
 * @returns Its name (`DMLERR_NO_CONV_ESTABLISHED`), or `DMLERR_0x<hex>` for an unknown code.
 *
 * @example
 * ```ts
 * import { dmlErrorName } from "./user32.ts";
 * dmlErrorName(0x400a); // "DMLERR_NO_CONV_ESTABLISHED"
 * ```
 */
export function dmlErrorName(code: number): string {
  return DMLERR_NAMES[code] ?? `DMLERR_0x${code.toString(16)}`;
}
