/**
 * Raw bindings to ws2_32.dll (Windows Sockets 2), the socket address structs, and the one place
 * where a failed socket call becomes a {@linkcode Win32Error} named by `WSAGetLastError`.
 *
 * `SOCKET` is `UINT_PTR`, declared `"usize"` (a `bigint` in JavaScript); `INVALID_SOCKET` is
 * `~0`. `WSAStartup` runs once, lazily, on the first call to {@linkcode ws2}.
 *
 * Readiness is waited for with `WSAPoll`, declared twice: `WSAPoll` (synchronous, for a zero
 * timeout) and `WSAPollAsync` (`nonblocking: true`, on a worker thread). `WSAPoll` returns its own
 * count or `SOCKET_ERROR`; the async form's error code is the worker's, so callers re-poll
 * synchronously to learn it.
 *
 * @module
 */
import { Win32Error } from "./error.ts";
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
    if (code !== 0) throw new Win32Error("WSAStartup", code, { context: "Cannot start Winsock" });
    started = true;
  }
  return lib;
}

/**
 * Ends this process's use of Winsock (`WSACleanup`) if {@linkcode ws2} started it. Sockets still
 * open become invalid. The next {@linkcode ws2} call starts Winsock again.
 */
export function wsaCleanup(): void {
  if (!started) return;
  started = false;
  rawWs2().WSACleanup();
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
  if (result === SOCKET_ERROR) throw new Win32Error(functionName, wsaLastError(), { context });
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
  if (socket === INVALID_SOCKET) throw new Win32Error(functionName, wsaLastError(), { context });
  return socket;
}

// ---- structs ----

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
