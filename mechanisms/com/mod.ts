/**
 * COM automation: drive automation servers late-bound through `IDispatch`, and expose a
 * TypeScript object to other processes as an `IDispatch` registered in the Running Object Table.
 *
 * Client: {@linkcode createObject} (`CLSIDFromProgID` + `CoCreateInstance`, or
 * `CoCreateInstanceEx` with a host name for DCOM) and {@linkcode getObject} (a Running Object
 * Table lookup by item moniker, like VB's `GetObject`) return a {@linkcode ComObject}: a `Proxy`
 * on which `obj.Method(args)` calls a method and `obj.Property` reads a property (tried first as a
 * property get; a member that is not a property becomes a function). VARIANTs are converted both
 * ways (see {@linkcode ComValue}); `for (const item of obj)` walks `_NewEnum`; a failed call throws
 * {@linkcode ComError} with the HRESULT's name and, for `DISP_E_EXCEPTION`, the server's own
 * source and description. `using obj = ...` releases the reference.
 *
 * Server: {@linkcode serveObject} wraps a TypeScript object in an `IDispatch` (a vtable of
 * `Deno.UnsafeCallback`s) and registers it in the Running Object Table under a name; another
 * process finds it with {@linkcode getObject} and calls its methods through the standard
 * oleaut32 `IDispatch` marshalling. Other processes reach it through a COM thread (a worker in
 * a single-threaded apartment that sleeps until a call arrives, `_com_thread.ts`), which hands
 * each call to the object on the main thread: nothing polls while idle.
 *
 * @example Drive Scripting.Dictionary
 * ```ts
 * import { createObject } from "./mod.ts";
 * using dict = createObject("Scripting.Dictionary");
 * dict.Add("a", 1);
 * dict.Add("b", "two");
 * console.log(dict.Count, dict.Item("b"), dict.Keys()); // 2 "two" ["a", "b"]
 * ```
 *
 * @module
 */
export { ComError, type ComErrorOptions, HRESULT_NAMES, hresultName } from "./errors.ts";
export { type Apartment, initCom } from "./apartment.ts";
export {
  clearVariant,
  type ComValue,
  fromOleDate,
  fromVariant,
  systemTimeToVariantTime,
  toOleDate,
  toVariant,
  variantTimeToSystemTime,
} from "./variant.ts";
export {
  classId,
  type ComAuth,
  type ComObject,
  ComUnknown,
  createObject,
  type CreateObjectOptions,
  Dispatch,
  getObject,
  type MemberInfo,
  type ServerContext,
  setProxyBlanket,
} from "./client.ts";
export {
  ComRegistration,
  IID_WINIPC_EVENTS,
  raiseEvent,
  serveObject,
  type ServeOptions,
} from "./server.ts";
export { type EventConnection, events, onEvent } from "./events.ts";
export { type ClassOptions, ClassRegistration, registerClass } from "./class.ts";
