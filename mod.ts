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
  callNamedPipe,
  type CallNamedPipeOptions,
  type IoOptions,
  NamedPipeClient,
  type NamedPipeConnectOptions,
  NamedPipeServer,
  type NamedPipeServerOptions,
  type PeekResult,
  PipeConnection,
  type PipeMode,
  pipePath,
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
  type MailslotInfo,
  mailslotPath,
  MailslotReader,
  type MailslotReaderOptions,
  type MailslotReadOptions,
  MailslotWriter,
  sendMailslot,
} from "./mechanisms/mailslot.ts";
export type { SecurityOptions } from "./ffi/security.ts";
export { errorName, Win32Error } from "./ffi/error.ts";
export { isWindows, UnsupportedPlatformError } from "./ffi/library.ts";
