/**
 * Raw bindings to ws2_32.dll (Windows Sockets 2), the socket address structs, and the one place
 * where a failed socket call becomes a {@linkcode Win32Error} named by `WSAGetLastError`.
 *
 * `SOCKET` is `UINT_PTR`, declared `"usize"` (a `bigint` in JavaScript); `INVALID_SOCKET` is
 * `~0`. `WSAStartup` runs once, lazily, on the first call to {@linkcode ws2}.
 *
 * Sockets made with `WSA_FLAG_OVERLAPPED` do their I/O with `WSARecv`/`WSASend`/`WSARecvFrom`/
 * `WSASendTo` and the extension functions `AcceptEx`/`ConnectEx` (found at run time with
 * {@linkcode wsaExtension}), completed through an I/O completion port; `WSAGetOverlappedResult`
 * turns a completed operation's status into a WSA error code (`WSAECONNRESET`, where
 * `GetOverlappedResult` says `ERROR_NETNAME_DELETED`). `WSAPoll` (synchronous) and `WSAPollAsync`
 * (`nonblocking: true`) stay declared for callers that wait for readiness.
 *
 * @module
 */
import { checkCode, win32Error } from "./error.ts";
import { lazyLibrary } from "./library.ts";
import { StructLayout } from "./struct.ts";

const symbols = {
  // ---- start-up and errors ----
  /** int WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData) */
  WSAStartup: { parameters: ["u16", "buffer"], result: "i32" },
  /** int WSACleanup(void) */
  WSACleanup: { parameters: [], result: "i32" },
  /** int WSAGetLastError(void) */
  WSAGetLastError: { parameters: [], result: "i32" },

  // ---- sockets ----
  /** SOCKET socket(int af, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "usize" },
  /** SOCKET WSASocketW(int af, int type, int protocol, LPWSAPROTOCOL_INFOW lpProtocolInfo, GROUP g, DWORD dwFlags) */
  WSASocketW: {
    parameters: ["i32", "i32", "i32", "pointer", "u32", "u32"],
    result: "usize",
  },
  /** int bind(SOCKET s, const struct sockaddr *name, int namelen) */
  bind: { parameters: ["usize", "buffer", "i32"], result: "i32" },
  /** int listen(SOCKET s, int backlog) */
  listen: { parameters: ["usize", "i32"], result: "i32" },
  /** SOCKET accept(SOCKET s, struct sockaddr *addr, int *addrlen) */
  accept: { parameters: ["usize", "buffer", "buffer"], result: "usize" },
  /** int connect(SOCKET s, const struct sockaddr *name, int namelen) */
  connect: { parameters: ["usize", "buffer", "i32"], result: "i32" },
  /** int send(SOCKET s, const char *buf, int len, int flags) */
  send: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32" },
  /** int recv(SOCKET s, char *buf, int len, int flags) */
  recv: { parameters: ["usize", "buffer", "i32", "i32"], result: "i32" },
  /** int sendto(SOCKET s, const char *buf, int len, int flags, const struct sockaddr *to, int tolen) */
  sendto: {
    parameters: ["usize", "buffer", "i32", "i32", "buffer", "i32"],
    result: "i32",
  },
  /** int recvfrom(SOCKET s, char *buf, int len, int flags, struct sockaddr *from, int *fromlen) */
  recvfrom: {
    parameters: ["usize", "buffer", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  /** int closesocket(SOCKET s) */
  closesocket: { parameters: ["usize"], result: "i32" },
  /** int shutdown(SOCKET s, int how) */
  shutdown: { parameters: ["usize", "i32"], result: "i32" },
  /** int getsockname(SOCKET s, struct sockaddr *name, int *namelen) */
  getsockname: { parameters: ["usize", "buffer", "buffer"], result: "i32" },
  /** int getpeername(SOCKET s, struct sockaddr *name, int *namelen) */
  getpeername: { parameters: ["usize", "buffer", "buffer"], result: "i32" },
  /** int setsockopt(SOCKET s, int level, int optname, const char *optval, int optlen) */
  setsockopt: { parameters: ["usize", "i32", "i32", "buffer", "i32"], result: "i32" },
  /** int getsockopt(SOCKET s, int level, int optname, char *optval, int *optlen) */
  getsockopt: { parameters: ["usize", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /** int ioctlsocket(SOCKET s, long cmd, u_long *argp) */
  ioctlsocket: { parameters: ["usize", "i32", "buffer"], result: "i32" },

  // ---- overlapped I/O (completed through the I/O completion port of mechanisms/_io.ts) ----
  /** int WSARecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags, LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) */
  WSARecv: {
    parameters: ["usize", "buffer", "u32", "buffer", "buffer", "buffer", "pointer"],
    result: "i32",
  },
  /** int WSASend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags, LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) */
  WSASend: {
    parameters: ["usize", "buffer", "u32", "buffer", "u32", "buffer", "pointer"],
    result: "i32",
  },
  /** int WSARecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags, struct sockaddr *lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) */
  WSARecvFrom: {
    parameters: [
      "usize",
      "buffer",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "pointer",
    ],
    result: "i32",
  },
  /** int WSASendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags, const struct sockaddr *lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) */
  WSASendTo: {
    parameters: ["usize", "buffer", "u32", "buffer", "u32", "buffer", "i32", "buffer", "pointer"],
    result: "i32",
  },
  /** BOOL WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait, LPDWORD lpdwFlags) */
  WSAGetOverlappedResult: {
    parameters: ["usize", "buffer", "buffer", "i32", "buffer"],
    result: "i32",
  },
  /** int WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer, LPVOID lpvOutBuffer, DWORD cbOutBuffer, LPDWORD lpcbBytesReturned, LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) */
  WSAIoctl: {
    parameters: ["usize", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer", "pointer"],
    result: "i32",
  },

  // ---- names ----
  /** INT GetAddrInfoW(PCWSTR pNodeName, PCWSTR pServiceName, const ADDRINFOW *pHints, PADDRINFOW *ppResult) */
  GetAddrInfoW: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  /** GetAddrInfoW on a worker thread (it returns its error code, so nothing is lost). */
  GetAddrInfoWAsync: {
    name: "GetAddrInfoW",
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** VOID FreeAddrInfoW(PADDRINFOW pAddrInfo) */
  FreeAddrInfoW: { parameters: ["pointer"], result: "void" },

  // ---- readiness ----
  /** int WSAPoll(LPWSAPOLLFD fdArray, ULONG fds, INT timeout) */
  WSAPoll: { parameters: ["buffer", "u32", "i32"], result: "i32" },
  /** WSAPoll on a worker thread. */
  WSAPollAsync: {
    name: "WSAPoll",
    parameters: ["buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

const rawWs2 = lazyLibrary("ws2_32.dll", symbols);

let started = false;

/**
 * The ws2_32.dll symbols, opened on first use; the first call also runs `WSAStartup(2.2)`.
 *
 * @returns The symbol table's functions.
 * @throws {UnsupportedPlatformError} On a host that is not Windows.
 * @throws {Win32Error} When `WSAStartup` fails.
 *
 * @example Create and close a socket
 * ```ts
 * import { AF_INET, SOCK_STREAM, ws2 } from "./ws2_32.ts";
 * if (Deno.build.os === "windows") ws2().closesocket(ws2().socket(AF_INET, SOCK_STREAM, 0));
 * ```
 */
export function ws2(): Deno.DynamicLibrary<typeof symbols>["symbols"] {
  const lib = rawWs2();
  if (!started) {
    const data = new Uint8Array(512); // WSADATA is 408 bytes on x64
    const code = lib.WSAStartup(0x0202, data);
    // WSAStartup returns its error; WSAGetLastError is not valid before it succeeds.
    checkCode(code, "WSAStartup", "Cannot start Winsock");
    started = true;
  }
  return lib;
}

/**
 * Reads `WSAGetLastError` now. Call it right after the failing synchronous call.
 *
 * @returns The calling thread's last socket error.
 */
export function wsaLastError(): number {
  return rawWs2().WSAGetLastError();
}

/**
 * Throws the last socket error when an `int` result is `SOCKET_ERROR` (-1).
 *
 * @param result The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing (the message's start).
 * @returns The result, when it is not an error.
 * @throws {Win32Error} When the result is -1.
 */
export function checkSocketResult(result: number, functionName: string, context?: string): number {
  if (result === SOCKET_ERROR) throw win32Error(functionName, wsaLastError(), { context });
  return result;
}

/**
 * Returns the socket, or throws the last socket error when it is `INVALID_SOCKET`.
 *
 * @param socket The call's result.
 * @param functionName The function's name.
 * @param context What winipc was doing.
 * @returns The socket.
 * @throws {Win32Error} When the socket is `INVALID_SOCKET`.
 */
export function checkSocket(socket: bigint, functionName: string, context?: string): bigint {
  if (socket === INVALID_SOCKET) throw win32Error(functionName, wsaLastError(), { context });
  return socket;
}

/** The signature of `AcceptEx` (mswsock), reached through {@linkcode wsaExtension}. */
const ACCEPT_EX = {
  /** BOOL AcceptEx(SOCKET sListenSocket, SOCKET sAcceptSocket, PVOID lpOutputBuffer, DWORD dwReceiveDataLength, DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength, LPDWORD lpdwBytesReceived, LPOVERLAPPED lpOverlapped) */
  parameters: ["usize", "usize", "buffer", "u32", "u32", "u32", "buffer", "buffer"],
  result: "i32",
} as const satisfies Deno.ForeignFunction;

/** The signature of `ConnectEx` (mswsock), reached through {@linkcode wsaExtension}. */
const CONNECT_EX = {
  /** BOOL ConnectEx(SOCKET s, const struct sockaddr *name, int namelen, PVOID lpSendBuffer, DWORD dwSendDataLength, LPDWORD lpdwBytesSent, LPOVERLAPPED lpOverlapped) */
  parameters: ["usize", "buffer", "i32", "buffer", "u32", "buffer", "buffer"],
  result: "i32",
} as const satisfies Deno.ForeignFunction;

const EXTENSIONS = {
  AcceptEx: { guid: "b5367df1-cbac-11cf-95ca-00805f48a192", definition: ACCEPT_EX },
  ConnectEx: { guid: "25a207b9-ddf3-4660-8ee9-76e58c74063e", definition: CONNECT_EX },
} as const;

/** The Winsock extension functions {@linkcode wsaExtension} finds. */
export type WsaExtensionName = keyof typeof EXTENSIONS;

/** A GUID's text form as its 16 bytes in memory order. */
function guidBytes(text: string): Uint8Array<ArrayBuffer> {
  const hex = text.replaceAll("-", "");
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, parseInt(hex.slice(0, 8), 16), true);
  view.setUint16(4, parseInt(hex.slice(8, 12), 16), true);
  view.setUint16(6, parseInt(hex.slice(12, 16), 16), true);
  for (let i = 0; i < 8; i++) bytes[8 + i] = parseInt(hex.slice(16 + 2 * i, 18 + 2 * i), 16);
  return bytes;
}

/**
 * Finds a Winsock extension function of a socket's provider
 * (`WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)`), as Windows documents for `AcceptEx` and
 * `ConnectEx`.
 *
 * @param socket A socket of the provider (TCP over IPv4 or IPv6).
 * @param name The function.
 * @returns The function, callable.
 * @throws {Win32Error} When the provider does not have it.
 *
 * @example Find ConnectEx
 * ```ts
 * import { AF_INET, IPPROTO_TCP, SOCK_STREAM, ws2, wsaExtension } from "./ws2_32.ts";
 * if (Deno.build.os === "windows") {
 *   const s = ws2().socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
 *   const connectEx = wsaExtension(s, "ConnectEx");
 *   ws2().closesocket(s);
 * }
 * ```
 */
export function wsaExtension<N extends WsaExtensionName>(
  socket: bigint,
  name: N,
): Deno.UnsafeFnPointer<(typeof EXTENSIONS)[N]["definition"]> {
  const { guid, definition } = EXTENSIONS[name];
  const out = new BigUint64Array(1);
  const returned = new Uint32Array(1);
  const result = ws2().WSAIoctl(
    socket,
    SIO_GET_EXTENSION_FUNCTION_POINTER,
    guidBytes(guid),
    16,
    new Uint8Array(out.buffer),
    8,
    new Uint8Array(returned.buffer),
    null,
    null,
  );
  checkSocketResult(result, "WSAIoctl", `Cannot find the Winsock extension ${name}`);
  const pointer = Deno.UnsafePointer.create(out[0]);
  if (!pointer) throw new Error(`Cannot find the Winsock extension ${name}: a NULL pointer`);
  return new Deno.UnsafeFnPointer(
    pointer as Deno.PointerObject<never>,
    definition as (typeof EXTENSIONS)[N]["definition"],
  );
}

// ---- structs ----

/** `WSABUF` (16 bytes on x64): a length and a pointer to the bytes. */
export const WSABUF: StructLayout<{ len: "u32"; buf: "pointer" }> = new StructLayout(
  { len: "u32", buf: "pointer" } as const,
);

/** `struct sockaddr_in` (16 bytes). `sin_port` and `sin_addr` are in network byte order. */
export const SOCKADDR_IN: StructLayout<{
  sin_family: "u16";
  sin_port: "u16";
  sin_addr: readonly ["u8", 4];
  sin_zero: readonly ["u8", 8];
}> = new StructLayout(
  {
    sin_family: "u16",
    sin_port: "u16",
    sin_addr: ["u8", 4],
    sin_zero: ["u8", 8],
  } as const,
);

/** `struct sockaddr_in6` (28 bytes). `sin6_port` is in network byte order. */
export const SOCKADDR_IN6: StructLayout<{
  sin6_family: "u16";
  sin6_port: "u16";
  sin6_flowinfo: "u32";
  sin6_addr: readonly ["u8", 16];
  sin6_scope_id: "u32";
}> = new StructLayout(
  {
    sin6_family: "u16",
    sin6_port: "u16",
    sin6_flowinfo: "u32",
    sin6_addr: ["u8", 16],
    sin6_scope_id: "u32",
  } as const,
);

/** `SOCKADDR_STORAGE` is 128 bytes: room for any address. */
export const SOCKADDR_STORAGE_SIZE = 128;

/** `ADDRINFOW` (48 bytes on x64). */
export const ADDRINFOW: StructLayout<{
  ai_flags: "i32";
  ai_family: "i32";
  ai_socktype: "i32";
  ai_protocol: "i32";
  ai_addrlen: "usize";
  ai_canonname: "pointer";
  ai_addr: "pointer";
  ai_next: "pointer";
}> = new StructLayout(
  {
    ai_flags: "i32",
    ai_family: "i32",
    ai_socktype: "i32",
    ai_protocol: "i32",
    ai_addrlen: "usize",
    ai_canonname: "pointer",
    ai_addr: "pointer",
    ai_next: "pointer",
  } as const,
);

/** `WSAPOLLFD` (16 bytes on x64). */
export const WSAPOLLFD: StructLayout<{ fd: "usize"; events: "i16"; revents: "i16" }> =
  new StructLayout({ fd: "usize", events: "i16", revents: "i16" } as const);

/**
 * Converts a 16-bit value between host (little-endian) and network byte order (`htons`/`ntohs`).
 *
 * @param value A value from 0 to 65535.
 * @returns The value with its two bytes swapped.
 */
export function byteSwap16(value: number): number {
  return ((value & 0xff) << 8) | ((value >> 8) & 0xff);
}

// ---- constants ----
/** `INVALID_SOCKET`, `(SOCKET)~0`. */
export const INVALID_SOCKET = 0xffff_ffff_ffff_ffffn;
/** `SOCKET_ERROR`. */
export const SOCKET_ERROR = -1;
/** Address family: IPv4. */
export const AF_INET = 2;
/** Address family: IPv6 (23 on Windows, not 10 as on Linux). */
export const AF_INET6 = 23;
/** Address family: any (`getaddrinfo` hint). */
export const AF_UNSPEC = 0;
/** Socket type: stream (TCP). */
export const SOCK_STREAM = 1;
/** Socket type: datagram (UDP). */
export const SOCK_DGRAM = 2;
/** Protocol: TCP. */
export const IPPROTO_TCP = 6;
/** Protocol: UDP. */
export const IPPROTO_UDP = 17;
/** Option level: IPv6. */
export const IPPROTO_IPV6 = 41;
/** Option level: the socket itself. */
export const SOL_SOCKET = 0xffff;
/** `SO_REUSEADDR`: allow binding an address in use. */
export const SO_REUSEADDR = 0x0004;
/** `SO_EXCLUSIVEADDRUSE` (`~SO_REUSEADDR`): nobody else may bind this address. */
export const SO_EXCLUSIVEADDRUSE = ~SO_REUSEADDR;
/** `SO_ERROR`: read and clear the socket's pending error (the outcome of a connect). */
export const SO_ERROR = 0x1007;
/** `SO_LINGER`: what `closesocket` does with unsent data (`struct linger`, two `u_short`s). */
export const SO_LINGER = 0x0080;
/** `SO_BROADCAST`. */
export const SO_BROADCAST = 0x0020;
/** `TCP_NODELAY`: disable Nagle's algorithm. */
export const TCP_NODELAY = 0x0001;
/** `IPV6_V6ONLY`. */
export const IPV6_V6ONLY = 27;
/** `ioctlsocket` command: set non-blocking mode (`FIONBIO`, as a signed `long`). */
export const FIONBIO = 0x8004_667e | 0;
/** `shutdown`: no more receives. */
export const SD_RECEIVE = 0;
/** `shutdown`: no more sends (sends FIN). */
export const SD_SEND = 1;
/** `shutdown`: both. */
export const SD_BOTH = 2;
/** `WSAPoll` event: normal data may be read (or a connection accepted). */
export const POLLRDNORM = 0x0100;
/** `WSAPoll` event: priority band data may be read. */
export const POLLRDBAND = 0x0200;
/** `WSAPoll` event: `POLLRDNORM | POLLRDBAND`. */
export const POLLIN = POLLRDNORM | POLLRDBAND;
/** `WSAPoll` event: normal data may be written (or a connect finished). */
export const POLLWRNORM = 0x0010;
/** `WSAPoll` event: `POLLWRNORM`. */
export const POLLOUT = POLLWRNORM;
/** `WSAPoll` result: an error occurred. */
export const POLLERR = 0x0001;
/** `WSAPoll` result: the peer hung up (or a connect failed). */
export const POLLHUP = 0x0002;
/** `WSAPoll` result: not a socket. */
export const POLLNVAL = 0x0004;
/** `getaddrinfo` flag: the node is a numeric address, do not resolve. */
export const AI_NUMERICHOST = 0x0004;
/** `getaddrinfo` flag: the address is for `bind`. */
export const AI_PASSIVE = 0x0001;
/** `recv`/`send` flag: peek at the data. */
export const MSG_PEEK = 0x2;
/** `WSASocketW` flag: the socket supports overlapped I/O. */
export const WSA_FLAG_OVERLAPPED = 0x01;
/** `WSAIoctl` code: get the address of an extension function by its GUID. */
export const SIO_GET_EXTENSION_FUNCTION_POINTER = 0xc800_0006;
/** `setsockopt`: give a socket accepted by `AcceptEx` its listener's properties. */
export const SO_UPDATE_ACCEPT_CONTEXT = 0x700b;
/** `setsockopt`: make a socket connected by `ConnectEx` a fully connected one. */
export const SO_UPDATE_CONNECT_CONTEXT = 0x7010;
/** `WSA_IO_PENDING` (= `ERROR_IO_PENDING`): an overlapped operation runs in the background. */
export const WSA_IO_PENDING = 997;
/** `WSA_OPERATION_ABORTED` (= `ERROR_OPERATION_ABORTED`): the operation was cancelled. */
export const WSA_OPERATION_ABORTED = 995;
/** `WSAEWOULDBLOCK`: a non-blocking call would block. */
export const WSAEWOULDBLOCK = 10035;
/** `WSAEINPROGRESS`. */
export const WSAEINPROGRESS = 10036;
/** `WSAEMSGSIZE`: a datagram was larger than the buffer. */
export const WSAEMSGSIZE = 10040;
/** `WSAECONNRESET`. */
export const WSAECONNRESET = 10054;
/** `WSAENOTCONN`: the socket is not connected. */
export const WSAENOTCONN = 10057;
/** `WSAEINVAL`. */
export const WSAEINVAL = 10022;
