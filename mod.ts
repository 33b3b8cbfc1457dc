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
  Event,
  type EventOptions,
  Mutex,
  MutexGuard,
  type MutexOptions,
  Semaphore,
  type SemaphoreOptions,
  type WaitOptions,
} from "./mechanisms/sync.ts";
export {
  broadcastMessage,
  CopyDataMessage,
  findWindow,
  type FindWindowOptions,
  findWindows,
  MessageWindow,
  type MessageWindowOptions,
  postMessage,
  registerWindowMessage,
  sendCopyData,
  type SendCopyDataOptions,
  sendMessage,
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
export type { SecurityOptions } from "./ffi/security.ts";
export { errorName, Win32Error } from "./ffi/error.ts";
export { isWindows, UnsupportedPlatformError } from "./ffi/library.ts";
