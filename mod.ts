/**
 * winipc: every classic Windows inter-process communication mechanism for Deno, as pure FFI
 * bindings to the system DLLs, with a safe, typed API.
 *
 * Importing this module works on every platform; calling a mechanism on a host that is not
 * Windows (or the Windows build of Deno under Wine) throws {@linkcode UnsupportedPlatformError}.
 *
 * @example Shared memory between two processes
 * ```ts
 * import { Mutex, SharedMemory } from "@winipc/winipc";
 *
 * using shm = await SharedMemory.createOrOpen("Local\\demo", {
 *   size: 4096,
 *   init: (view) => view.writeText(0, "hello"),
 * });
 * using mutex = Mutex.createOrOpen("Local\\demo.lock");
 * {
 *   using _guard = await mutex.lock({ timeout: 1000 });
 *   console.log(shm.view.readText(0));
 * }
 * ```
 *
 * @module
 */
export {
  type CreateOrOpenSharedMemoryOptions,
  type CreateSharedMemoryOptions,
  type MapOptions,
  type MappingAccess,
  type OpenSharedMemoryOptions,
  SharedMemory,
  SharedView,
  type TextEncoding,
} from "./mechanisms/shm.ts";
export {
  CHANNEL_LAYOUT_VERSION,
  channelInfo,
  type ChannelOpOptions,
  PeerGoneError,
  ProtocolError,
  ShmChannel,
  type ShmChannelCreateOptions,
  type ShmChannelInfo,
  type ShmChannelOpenOptions,
} from "./mechanisms/channel.ts";
export {
  connectShm,
  listenShm,
  type ShmConnectionOptions,
  ShmListener,
} from "./mechanisms/shm_listener.ts";
export {
  listServices,
  LoanedSample,
  type OverflowPolicy,
  Publisher,
  type PublisherOptions,
  PUBSUB_LAYOUT_VERSION,
  PubSubError,
  type PubSubServiceInfo,
  type PubSubServiceOptions,
  type PubSubWaitOptions,
  ReceivedSample,
  type ShmServiceInfo,
  Subscriber,
  type SubscriberOptions,
} from "./mechanisms/pubsub.ts";
export {
  type CallOptions,
  defineProcedures,
  type Handlers,
  type Infer,
  type MessageConnection,
  type Procedures,
  type ProcedureSchema,
  RpcClient,
  type RpcClientOptions,
  RpcError,
  RpcErrorCode,
  RpcServer,
  type RpcServerOptions,
  type RpcTransport,
  type Schema,
  type SchemaIssue,
  serveConnection,
  type ServeOptions,
  type TcpConnectAddress,
  type TcpListenAddress,
} from "./mechanisms/rpc.ts";
export {
  type MsRpcCaller,
  MsRpcClient,
  type MsRpcClientOptions,
  type MsRpcEndpoint,
  type MsRpcProcedure,
  MsRpcRefusedError,
  MsRpcServer,
  type MsRpcServerOptions,
  NdrReader,
  NdrWriter,
} from "./mechanisms/msrpc.ts";
export {
  Event,
  type EventOptions,
  KernelObject,
  Mutex,
  MutexGuard,
  type MutexOptions,
  Semaphore,
  type SemaphoreOptions,
  type WaitOptions,
} from "./mechanisms/sync.ts";
export {
  connect,
  type ConnectOptions,
  type DatagramOptions,
  DatagramSocket,
  type DatagramTarget,
  listen,
  listenDatagram,
  type ListenOptions,
  type NetAddr,
  TcpConn,
  TcpListener,
} from "./mechanisms/socket.ts";
export {
  download,
  downloadFile,
  type DownloadFileResult,
  type DownloadOptions,
  type HttpDownload,
  HttpStatusError,
  type Progress,
  type ResponseInfo,
  type TransferOptions,
  upload,
  type UploadOptions,
  type UploadResult,
} from "./mechanisms/http.ts";
export {
  type CommEvent,
  type CommStatus,
  type CommTimeouts,
  decodeDeviceIdBuffer,
  decodeParallelStatus,
  decodeRawDeviceId,
  type DeviceId,
  type FlowControl,
  type LineError,
  listPorts,
  type ModemStatus,
  type ParallelStatus,
  type Parity,
  parseDeviceId,
  portPath,
  type SerialOptions,
  SerialPort,
  type SerialSettings,
  type StopBits,
} from "./mechanisms/serial.ts";
export {
  type Apartment,
  classId,
  type ClassOptions,
  ClassRegistration,
  type ComAuth,
  ComError,
  type ComErrorOptions,
  type ComObject,
  ComRegistration,
  ComUnknown,
  type ComValue,
  createObject,
  type CreateObjectOptions,
  Dispatch,
  type EventConnection,
  events,
  getObject,
  hresultName,
  initCom,
  type MemberInfo,
  onEvent,
  raiseEvent,
  registerClass,
  serveObject,
  type ServeOptions as ComServeOptions,
  type ServerContext,
  setProxyBlanket,
} from "./mechanisms/com.ts";
export {
  callNamedPipe,
  type CallNamedPipeOptions,
  DEFAULT_MAX_MESSAGE_BYTES,
  type ImpersonationLevel,
  listPipes,
  MessageTooLargeError,
  NamedPipeClient,
  type NamedPipeConnectOptions,
  NamedPipeServer,
  type NamedPipeServerOptions,
  type PeekResult,
  type PipeAccess,
  PipeConnection,
  type PipeInfo,
  type PipeMode,
  pipePath,
  type PipeUser,
  type ReadMessageOptions,
  type TransactOptions,
} from "./mechanisms/pipe.ts";
export {
  ChildProcess,
  type ChildStatus,
  createPipe,
  type CreatePipeOptions,
  PipeReader,
  PipeWriter,
  quoteArgument,
  spawnChild,
  type SpawnChildOptions,
  type StdioMode,
} from "./mechanisms/anonymous_pipe.ts";
export {
  DEFAULT_MAILSLOT_MAX_MESSAGE,
  type MailslotInfo,
  type MailslotMessagesOptions,
  mailslotPath,
  MailslotReader,
  type MailslotReaderOptions,
  type MailslotReadOptions,
  MailslotWriter,
  sendMailslot,
} from "./mechanisms/mailslot.ts";
export {
  BROADCAST_QUERY_DENY,
  broadcastMessage,
  type BroadcastOptions,
  CopyDataMessage,
  findWindow,
  type FindWindowOptions,
  findWindows,
  type MessageFilterResult,
  type MessageParam,
  type MessageParams,
  MessageWindow,
  type MessageWindowOptions,
  postMessage,
  queryBroadcast,
  registerWindowMessage,
  sendCopyData,
  type SendCopyDataOptions,
  sendMessage,
  type SendMessageOptions,
  type SendOptions,
  StackLimitError,
  type WindowHandle,
  type WindowMessage,
  windowOwner,
  type WindowTarget,
  windowTitle,
} from "./mechanisms/copydata.ts";
export * as clipboard from "./mechanisms/clipboard.ts";
export {
  type DdeAdvise,
  type DdeAdviseOptions,
  DdeClient,
  type DdeConnectOptions,
  DdeData,
  DdeError,
  type DdeFormat,
  type DdeRequestOptions,
  DdeServer,
  type DdeServerHandlers,
  type DdeTransactionOptions,
} from "./mechanisms/dde.ts";
export type { IoOptions } from "./mechanisms/_validate.ts";
export type { SecurityOptions } from "./ffi/security.ts";
export { errorName, Win32Error, WinipcError } from "./ffi/error.ts";

export { isWindows, UnsupportedPlatformError } from "./ffi/library.ts";
