/**
 * Raw bindings to rpcrt4.dll: the Microsoft RPC runtime at the level below MIDL stubs (bindings,
 * interface registration, `RPC_MESSAGE` buffers).
 *
 * @module
 */
import { lazyLibrary } from "./library.ts";
import { StructLayout } from "./struct.ts";

const symbols = {
  /** RPC_STATUS RpcServerUseProtseqEpW(RPC_WSTR Protseq, unsigned int MaxCalls, RPC_WSTR Endpoint, void *SecurityDescriptor) */
  RpcServerUseProtseqEpW: { parameters: ["buffer", "u32", "buffer", "pointer"], result: "i32" },
  /** RPC_STATUS RpcServerRegisterIf2(RPC_IF_HANDLE IfSpec, UUID *MgrTypeUuid, RPC_MGR_EPV *MgrEpv, unsigned int Flags, unsigned int MaxCalls, unsigned int MaxRpcSize, RPC_IF_CALLBACK_FN *IfCallbackFn) */
  RpcServerRegisterIf2: {
    parameters: ["buffer", "pointer", "pointer", "u32", "u32", "u32", "pointer"],
    result: "i32",
  },
  /** RPC_STATUS RpcServerUnregisterIf(RPC_IF_HANDLE IfSpec, UUID *MgrTypeUuid, unsigned int WaitForCallsToComplete) */
  RpcServerUnregisterIf: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  /**
   * RpcServerUnregisterIf on a worker thread: with `WaitForCallsToComplete` it waits for calls
   * in flight, whose dispatch callbacks need the main thread, so it must not run there.
   */
  RpcServerUnregisterIfAsync: {
    name: "RpcServerUnregisterIf",
    parameters: ["buffer", "pointer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  /** RPC_STATUS RpcBindingFromStringBindingW(RPC_WSTR StringBinding, RPC_BINDING_HANDLE *Binding) */
  RpcBindingFromStringBindingW: { parameters: ["buffer", "buffer"], result: "i32" },
  /** RPC_STATUS RpcBindingFree(RPC_BINDING_HANDLE *Binding) */
  RpcBindingFree: { parameters: ["buffer"], result: "i32" },
  /** RPC_STATUS I_RpcGetBuffer(RPC_MESSAGE *Message) */
  I_RpcGetBuffer: { parameters: ["pointer"], result: "i32" },
  /** RPC_STATUS I_RpcSendReceive(RPC_MESSAGE *Message) — on a worker thread. */
  I_RpcSendReceiveAsync: {
    name: "I_RpcSendReceive",
    parameters: ["pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** RPC_STATUS I_RpcFreeBuffer(RPC_MESSAGE *Message) */
  I_RpcFreeBuffer: { parameters: ["pointer"], result: "i32" },
  /** RPC_STATUS I_RpcBindingInqTransportType(RPC_BINDING_HANDLE Binding, unsigned int *Type) */
  I_RpcBindingInqTransportType: { parameters: ["pointer", "buffer"], result: "i32" },
  /** RPC_STATUS I_RpcBindingInqLocalClientPID(RPC_BINDING_HANDLE Binding, unsigned long *Pid) */
  I_RpcBindingInqLocalClientPID: { parameters: ["pointer", "buffer"], result: "i32" },
  /** RPC_STATUS RpcBindingServerFromClient(RPC_BINDING_HANDLE ClientBinding, RPC_BINDING_HANDLE *ServerBinding) */
  RpcBindingServerFromClient: { parameters: ["pointer", "buffer"], result: "i32" },
  /** RPC_STATUS RpcBindingToStringBindingW(RPC_BINDING_HANDLE Binding, RPC_WSTR *StringBinding) */
  RpcBindingToStringBindingW: { parameters: ["pointer", "buffer"], result: "i32" },
  /** RPC_STATUS RpcStringFreeW(RPC_WSTR *String) */
  RpcStringFreeW: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * The rpcrt4.dll symbols, opened on first use.
 *
 * @returns The symbol table's functions.
 *
 * @example Lazily opened
 * ```ts
 * import { rpcrt4 } from "./rpcrt4.ts";
 * if (Deno.build.os === "windows") console.log(typeof rpcrt4().I_RpcGetBuffer);
 * ```
 */
export const rpcrt4: () => Deno.DynamicLibrary<typeof symbols>["symbols"] = lazyLibrary(
  "rpcrt4.dll",
  symbols,
);

/** `RPC_SYNTAX_IDENTIFIER`: a GUID and a version (20 bytes). */
const SYNTAX = new StructLayout({ guid: ["u8", 16], major: "u16", minor: "u16" } as const);

/** `RPC_SERVER_INTERFACE` / `RPC_CLIENT_INTERFACE` (96 bytes on x64). */
export const RPC_INTERFACE: StructLayout<{
  Length: "u32";
  InterfaceId: typeof SYNTAX;
  TransferSyntax: typeof SYNTAX;
  DispatchTable: "pointer";
  RpcProtseqEndpointCount: "u32";
  RpcProtseqEndpoint: "pointer";
  DefaultManagerEpv: "pointer";
  InterpreterInfo: "pointer";
  Flags: "u32";
}> = new StructLayout(
  {
    Length: "u32",
    InterfaceId: SYNTAX,
    TransferSyntax: SYNTAX,
    DispatchTable: "pointer",
    RpcProtseqEndpointCount: "u32",
    RpcProtseqEndpoint: "pointer",
    DefaultManagerEpv: "pointer",
    InterpreterInfo: "pointer",
    Flags: "u32",
  } as const,
);

/** `RPC_DISPATCH_TABLE` (24 bytes on x64). */
export const RPC_DISPATCH_TABLE: StructLayout<{
  DispatchTableCount: "u32";
  DispatchTable: "pointer";
  Reserved: "isize";
}> = new StructLayout(
  {
    DispatchTableCount: "u32",
    DispatchTable: "pointer",
    Reserved: "isize",
  } as const,
);

/** `RPC_MESSAGE` (80 bytes on x64). */
export const RPC_MESSAGE: StructLayout<{
  Handle: "pointer";
  DataRepresentation: "u32";
  Buffer: "pointer";
  BufferLength: "u32";
  ProcNum: "u32";
  TransferSyntax: "pointer";
  RpcInterfaceInformation: "pointer";
  ReservedForRuntime: "pointer";
  ManagerEpv: "pointer";
  ImportContext: "pointer";
  RpcFlags: "u32";
}> = new StructLayout(
  {
    Handle: "pointer",
    DataRepresentation: "u32",
    Buffer: "pointer",
    BufferLength: "u32",
    ProcNum: "u32",
    TransferSyntax: "pointer",
    RpcInterfaceInformation: "pointer",
    ReservedForRuntime: "pointer",
    ManagerEpv: "pointer",
    ImportContext: "pointer",
    RpcFlags: "u32",
  } as const,
);

/** The NDR transfer syntax, 8A885D04-1CEB-11C9-9FE8-08002B104860 version 2.0. */
export const NDR_TRANSFER_SYNTAX_GUID = "8a885d04-1ceb-11c9-9fe8-08002b104860";
/** `RPC_IF_AUTOLISTEN`: the interface listens as soon as it is registered. */
export const RPC_IF_AUTOLISTEN = 0x0001;
/**
 * `RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH`: the security callback decides for unauthenticated
 * calls too (without it the runtime refuses them before the callback).
 */
export const RPC_IF_ALLOW_CALLBACKS_WITH_NO_AUTH = 0x0010;
/** `RPC_IF_ALLOW_LOCAL_ONLY`: the runtime refuses calls from other machines. */
export const RPC_IF_ALLOW_LOCAL_ONLY = 0x0020;
/** `TRANSPORT_TYPE_CN`: a connection-oriented transport (ncacn_np, ncacn_ip_tcp). */
export const TRANSPORT_TYPE_CN = 0x01;
/** `TRANSPORT_TYPE_DG`: a datagram transport. */
export const TRANSPORT_TYPE_DG = 0x02;
/** `TRANSPORT_TYPE_LPC`: local RPC (ncalrpc). */
export const TRANSPORT_TYPE_LPC = 0x04;
/** `RPC_S_ACCESS_DENIED` (the same number as `ERROR_ACCESS_DENIED`). */
export const RPC_S_ACCESS_DENIED = 5;
/** `RPC_C_LISTEN_MAX_CALLS_DEFAULT`. */
export const RPC_C_LISTEN_MAX_CALLS_DEFAULT = 1234;
/** `RPC_C_PROTSEQ_MAX_REQS_DEFAULT`. */
export const RPC_C_PROTSEQ_MAX_REQS_DEFAULT = 10;
/** `NDR_LOCAL_DATA_REPRESENTATION`: little-endian, ASCII, IEEE floats. */
export const NDR_LOCAL_DATA_REPRESENTATION = 0x10;
