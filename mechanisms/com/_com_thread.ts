/**
 * The COM thread: the objects winipc serves over COM (`serveObject`'s objects with their
 * connection points, `registerClass`'s class factories and the objects they make, the event
 * sinks `onEvent` hands to another process's connection point) are reached by other apartments
 * through a worker thread of their own, a single-threaded apartment that blocks in
 * `MsgWaitForMultipleObjectsEx` while idle (`_com_thread_worker.ts`). A call from another process
 * wakes it at once; the user's code still runs on the main thread, with no sleep on the path and
 * no CPU spent while idle.
 *
 * Why: the main thread's apartment receives calls as window messages, which arrive only while
 * that thread is inside a message function, so it had to be polled (`_pump.ts`: a 1 ms timer,
 * about 20% of a core idle under Wine, 15.6 ms per wake on a stock Windows timer). A worker can
 * block on its own queue. The objects' implementations (their vtables of `Deno.UnsafeCallback`s)
 * stay on the main thread; the COM thread holds a wrapper for each object that goes out to
 * other apartments (one per object, so identity holds), registered in the Running Object Table,
 * with `CoRegisterClassObject`, or marshalled for the main thread to pass out. A wrapper's vtable
 * is the COM thread's own callbacks:
 *
 * - `QueryInterface`, `AddRef`, `Release` are answered there: the wrapper answers for the same
 *   interfaces as its object and keeps one reference of the object while anything holds it (given
 *   back, through an event-loop message, when the last one goes);
 * - every other method is handed to the main thread: the call's slot and raw arguments go into a
 *   request block in shared memory, and the main thread is woken twice: a message posted to a
 *   message-only window of its own reaches it inside a modal loop (while it waits in an outgoing
 *   COM call of its own, e.g. calling its own served object through the Running Object Table, or
 *   a remote that calls back during the call; the message is in the DDE range, which COM's modal
 *   loop dispatches, see `WM_COM_CALL`), and `Atomics.notify` reaches its idle event loop,
 *   parked in `Atomics.waitAsync` (which does not keep the process alive). Whichever comes first
 *   takes the request; the main thread runs the object's own vtable method (so `inCallback` and
 *   `releaseAfterCallbacks` hold as before), writes the HRESULT and sets the request's event.
 *   Meanwhile the COM thread waits in `CoWaitForMultipleHandles`, which dispatches the calls
 *   that arrive in its apartment meanwhile, so calls nest (each depth has its own block).
 *
 * Interface pointers crossing between the two apartments are converted. Coming in (the
 * `VT_DISPATCH`/`VT_UNKNOWN` arguments of `Invoke`, `Advise`'s sink): a wrapper of our own
 * becomes its object's main pointer; any other (a proxy) is marshalled into a stream on the COM
 * thread and unmarshalled on the main thread for the call's duration (re-marshalling a proxy
 * gives the remote object's own reference, so the main thread's calls go straight to it). Going
 * out (`Invoke`'s result, `FindConnectionPoint`, `GetConnectionPointContainer`,
 * `CreateInstance`): one of main's served objects or facets becomes its wrapper; another object
 * is marshalled the other way. An object whose implementation lives in the main thread's
 * apartment but is not one winipc serves (an in-process COM object created on the main thread
 * and returned from a served method) is reached that way only while the main thread pumps (while
 * it is inside an outgoing call); `ITypeInfo`s from `CreateDispTypeInfo` have no apartment and
 * are handed over as they are.
 *
 * When the main thread passes one of its served objects to another process as an argument of an
 * outgoing call, it passes a main-apartment proxy of the wrapper ({@linkcode exportObject}), so
 * the callbacks go to the COM thread, also after the call.
 *
 * Commands (register or revoke in the Running Object Table, register or revoke a class object,
 * export a wrapper) go the other way: the main thread writes them into shared memory, sets an
 * event the COM thread waits on (idle, or in `CoWaitForMultipleHandles` while a request of its
 * own is out: a handler may register or export), and waits with `Atomics.wait`, answering the
 * requests the command causes meanwhile.
 *
 * The worker is a `node:worker_threads` Worker, unref'd; {@linkcode holdProcess} keeps the process
 * alive while something is registered or connected (as the pump's lease did).
 *
 * Measured 2026-12-02 with deno.exe 2.9.6 under Wine 10 on a 2-core VM loaded by other test runs
 * (`tools/com_wake/run.ts`, mode `library` against `pump`, the way `serveObject` served before;
 * 40 calls each after 150–200 ms idle, in the same run): idle CPU 10 ms in 5 s against 930–1,050
 * ms (19–21% of a core); idle call p50 5,985 and 6,252 µs against 4,993 and 5,053 µs in two runs
 * on the quieter machine (22,335 against 12,762 µs in a run under heavy load): two more thread
 * wake-ups (this thread, then the main thread), as the prototype measured. Calling one's own
 * object (`self`) and a remote that calls back during the call (`nest`) work.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { win32Error, withLastError } from "../../ffi/error.ts";
import { kernel32 } from "../../ffi/kernel32.ts";
import { IID_IDispatch, IID_IUnknown, ole32, vcall } from "../../ffi/ole32.ts";
import { wide } from "../../ffi/strings.ts";
import { HWND_MESSAGE, PM_REMOVE, user32, WNDCLASSEXW, WNDPROC } from "../../ffi/user32.ts";
import {
  BIG,
  BIG_COUNT,
  BLOCK,
  BLOCK_SIZE,
  COMMAND,
  type ComThreadPosted,
  CTL,
  CTL_INTS,
  FACET,
  MAX_DEPTH,
  MAX_IN,
  OUT,
  OUT_PARAMS,
  REQUEST,
  SLOTS,
  WM_COM_CALL,
} from "./_com_thread_layout.ts";
import { isProxy, queryInterface } from "./_base.ts";
import { checkHr, E_FAIL } from "./errors.ts";

export { FACET } from "./_com_thread_layout.ts";

/**
 * One of main's objects as the COM thread's wrappers see it: its main pointer (the object's
 * identity), its facets, the IID of the outgoing interface it answers as an event sink, whether
 * it is a class factory, and which facet the pointer described is.
 */
export interface Described {
  main: Deno.PointerObject;
  container: Deno.PointerObject | null;
  point: Deno.PointerObject | null;
  sinkIid: Uint8Array<ArrayBuffer> | null;
  factory: boolean;
  facet: number;
}

const describers: ((pointer: bigint) => Described | undefined)[] = [];

/** Adds a way to recognise main's served objects (server.ts: objects, class.ts: factories). */
export function addDescriber(describe: (pointer: bigint) => Described | undefined): void {
  describers.push(describe);
}

function describe(pointer: bigint): Described | undefined {
  for (const d of describers) {
    const found = d(pointer);
    if (found) return found;
  }
  return undefined;
}

/**
 * How an `IDispatch` of the main thread's apartment goes out: one of main's served objects as
 * itself; any other object implemented in this apartment (an in-process COM object made on the
 * main thread) as a wrapper of its `IDispatch` alone, so it is reached without the main thread
 * pumping; a proxy (of another apartment or process) not at all (undefined: it is marshalled as
 * it is, and re-marshalling a proxy gives the remote object's own reference).
 */
function describeOutgoing(pointer: bigint): Described | undefined {
  const served = describe(pointer);
  if (served) return served;
  const p = Deno.UnsafePointer.create(pointer);
  if (!p || isProxy(p)) return undefined;
  return { main: p, container: null, point: null, sinkIid: null, factory: false, facet: 0 };
}

/** The five values of a group (see `BIG` in the layout). */
function groupValues(d: Described): bigint[] {
  const value = (p: Deno.PointerValue) => BigInt(Deno.UnsafePointer.value(p));
  return [
    value(d.main),
    value(d.container),
    value(d.point),
    d.sinkIid ? value(Deno.UnsafePointer.of(d.sinkIid)) : 0n,
    d.factory ? 1n : 0n,
  ];
}

interface Thread {
  ctl: Int32Array<SharedArrayBuffer>;
  big: BigInt64Array<SharedArrayBuffer>;
  commandEvent: Deno.PointerObject;
  hwnd: Deno.PointerObject;
}

/** How long the main thread waits for the COM thread to start or run a command, in ms. */
const COMMAND_TIMEOUT_MS = 60_000;
const VT_DISPATCH = 9;
const VT_UNKNOWN = 13;

let thread: Thread | null = null;
let lastCommand = 0;
const keep: unknown[] = [];
const msg = new Uint8Array(48);

function theThread(): Thread {
  if (thread) return thread;
  const u = user32();
  const k = kernel32();
  const procedure = new Deno.UnsafeCallback(WNDPROC, (hwnd, message, wParam, lParam) => {
    if (message === WM_COM_CALL) {
      serveRequest(Number(wParam));
      return 0n;
    }
    return u.DefWindowProcW(hwnd, message, wParam, lParam);
  });
  const className = wide(`winipc.com.${Deno.pid}.${Date.now()}`);
  const instance = k.GetModuleHandleW(null);
  const [atom, classError] = withLastError(() =>
    u.RegisterClassExW(WNDCLASSEXW.alloc({
      cbSize: WNDCLASSEXW.size,
      lpfnWndProc: procedure.pointer,
      hInstance: instance,
      lpszClassName: Deno.UnsafePointer.of(className),
    }))
  );
  if (!atom) {
    procedure.close();
    throw win32Error("RegisterClassExW", classError, { context: "Cannot start the COM thread" });
  }
  const [hwnd, windowError] = withLastError(() =>
    u.CreateWindowExW(0, className, null, 0, 0, 0, 0, 0, HWND_MESSAGE, null, instance, null)
  );
  if (!hwnd) {
    throw win32Error("CreateWindowExW", windowError, { context: "Cannot start the COM thread" });
  }
  const commandEvent = k.CreateEventW(null, 0, 0, null);
  if (!commandEvent) throw new Error("Cannot start the COM thread: CreateEventW failed");
  const control = new SharedArrayBuffer(CTL_INTS * 4 + BIG_COUNT * 8);
  const ctl = new Int32Array(control, 0, CTL_INTS);
  const worker = new Worker(new URL("./_com_thread_worker.ts", import.meta.url));
  worker.unref();
  worker.postMessage({
    control,
    hwnd: BigInt(Deno.UnsafePointer.value(hwnd)),
    commandEvent: BigInt(Deno.UnsafePointer.value(commandEvent)),
  });
  if (Atomics.wait(ctl, CTL.ready, 0, COMMAND_TIMEOUT_MS) === "timed-out") {
    void worker.terminate();
    throw new Error(`The COM thread did not start within ${COMMAND_TIMEOUT_MS} ms`);
  }
  if (Atomics.load(ctl, CTL.ready) !== 1) {
    void worker.terminate();
    throw new Error("The COM thread failed to start (see its error above)");
  }
  // References the COM thread gives back: a wrapper let go of its object.
  worker.on("message", (posted: ComThreadPosted) => {
    for (const pointer of posted.release) {
      vcall(Deno.UnsafePointer.create(pointer)!, 2, [], "u32");
    }
  });
  worker.on("error", (error: unknown) => console.error("winipc: the COM thread failed:", error));
  keep.push(procedure, className);
  const t: Thread = {
    ctl,
    big: new BigInt64Array(control, CTL_INTS * 4, BIG_COUNT),
    commandEvent,
    hwnd,
  };
  thread = t;
  void serve(t);
  globalThis.addEventListener("unload", () => shutDown(t));
  return t;
}

/**
 * When the process ends: the COM thread leaves its apartment and ends, and the main thread's
 * window is destroyed, while both isolates still run their callbacks. Left to the system, the
 * teardown could call them after the isolates are gone (an exit that crashed, seen under Wine).
 */
function shutDown(t: Thread): void {
  try {
    command(COMMAND.quit, [], 2_000);
  } catch {
    // the process ends anyway
  }
  user32().DestroyWindow(t.hwnd);
}

/** Answers the COM thread's requests from the idle event loop, for the life of the process. */
async function serve(t: Thread): Promise<void> {
  for (;;) {
    const seen = Atomics.load(t.ctl, CTL.mainWake);
    serveWaiting(t);
    // The messages of requests taken here are removed (they would be ignored).
    while (user32().PeekMessageW(msg, t.hwnd, WM_COM_CALL, WM_COM_CALL, PM_REMOVE));
    const wait = Atomics.waitAsync(t.ctl, CTL.mainWake, seen);
    if (wait.async) await wait.value;
  }
}

/** Runs every request handed over and not taken yet, the deepest first. */
function serveWaiting(t: Thread): void {
  for (let d = MAX_DEPTH - 1; d >= 0; d--) {
    if (Atomics.load(t.ctl, CTL.requests + d) === REQUEST.posted) serveRequest(d);
  }
}

/** Runs the request of depth `d`, unless another path took it first. */
function serveRequest(d: number): void {
  const t = thread;
  if (!t || d < 0 || d >= MAX_DEPTH) return;
  const wanted = Atomics.compareExchange(t.ctl, CTL.requests + d, REQUEST.posted, REQUEST.taken);
  if (wanted !== REQUEST.posted) return;
  const b = BIG.blocks + d * BLOCK_SIZE;
  let hr = E_FAIL;
  try {
    hr = runRequest(t.big, b);
  } catch (error) {
    console.error("winipc: a COM call could not be run:", error);
  }
  t.big[b + BLOCK.result] = BigInt(hr);
  kernel32().SetEvent(Deno.UnsafePointer.create(BigInt.asUintN(64, t.big[b + BLOCK.event])));
}

const address = (p: Deno.PointerValue) => BigInt(Deno.UnsafePointer.value(p));
const readPointer = (at: bigint) =>
  new DataView(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(at)!, 8))
    .getBigUint64(0, true);
const writePointer = (at: bigint, value: bigint) =>
  new DataView(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(at)!, 8))
    .setBigUint64(0, value, true);

function typed(t: Deno.NativeType, v: bigint): unknown {
  if (t === "pointer") return Deno.UnsafePointer.create(v);
  if (t === "i32") return Number(BigInt.asIntN(32, v));
  if (t === "u16") return Number(BigInt.asUintN(16, v));
  return Number(BigInt.asUintN(32, v));
}

const methods = new Map<string, (...args: unknown[]) => number>();

/** Calls vtable slot `slot` of `target` (one of main's own objects) with the raw arguments. */
function callSlot(
  target: Deno.PointerObject,
  slot: number,
  types: Deno.NativeType[],
  raw: bigint[],
): number {
  const table = new Deno.UnsafePointerView(target).getBigUint64(0);
  const fn = new Deno.UnsafePointerView(Deno.UnsafePointer.create(table)!).getBigUint64(slot * 8);
  const key = `${fn}:${types.join(",")}`;
  let method = methods.get(key);
  if (!method) {
    const pointer = new Deno.UnsafeFnPointer(
      Deno.UnsafePointer.create(fn) as Deno.PointerObject<Deno.ForeignFunction>,
      { parameters: ["pointer", ...types], result: "i32", callback: true } as Deno.ForeignFunction,
    );
    method = pointer.call.bind(pointer) as (...args: unknown[]) => number;
    methods.set(key, method);
  }
  return method(target, ...types.map((t, i) => typed(t, raw[i])));
}

function runRequest(big: BigInt64Array, b: number): number {
  const slot = Number(big[b + BLOCK.slot]);
  const facet = Number(big[b + BLOCK.facet]);
  const target = Deno.UnsafePointer.create(BigInt.asUintN(64, big[b + BLOCK.target]));
  const types = SLOTS[facet]?.[slot];
  if (!types || !target) return E_FAIL;
  const raw = types.map((_, i) => BigInt.asUintN(64, big[b + BLOCK.args + i]));
  const count = Math.min(Number(big[b + BLOCK.inCount]), MAX_IN);
  const swaps: { at: bigint | null; original: bigint; proxy: bigint }[] = [];
  const ole = ole32();
  try {
    // Interface arguments the COM thread marshalled: proxies of this apartment for the call.
    for (let n = 0; n < count; n++) {
      const at = b + BLOCK.in + 4 * n;
      const location = BigInt.asUintN(64, big[at + 1]);
      const out = new BigUint64Array(1);
      const unmarshalled = ole.CoGetInterfaceAndReleaseStream(
        Deno.UnsafePointer.create(BigInt.asUintN(64, big[at + 2])),
        big[at + 3] === 1n ? IID_IUnknown : IID_IDispatch,
        out,
      );
      const proxy = unmarshalled < 0 ? 0n : out[0];
      if (big[at] === 0n) {
        const i = Number(location);
        swaps.push({ at: null, original: raw[i], proxy });
        raw[i] = proxy;
      } else {
        swaps.push({ at: location, original: readPointer(location), proxy });
        writePointer(location, proxy);
      }
    }
    const hr = callSlot(target, slot, types, raw);
    if (hr >= 0) convertOut(big, b, facet, slot, raw);
    return hr;
  } finally {
    for (const s of swaps) {
      if (s.at !== null) writePointer(s.at, s.original);
      if (s.proxy) vcall(Deno.UnsafePointer.create(s.proxy)!, 2, [], "u32");
    }
  }
}

/** Prepares the interface pointer a method returned for the COM thread (see `OUT`). */
function convertOut(
  big: BigInt64Array,
  b: number,
  facet: number,
  slot: number,
  raw: bigint[],
): void {
  const index = OUT_PARAMS[facet]?.[slot];
  if (index === undefined || !raw[index]) return;
  let at = raw[index];
  let unknown = false;
  if (facet === FACET.dispatch && slot === 6) {
    const vt = new Deno.UnsafePointerView(Deno.UnsafePointer.create(at)!).getUint16(0);
    if (vt !== VT_DISPATCH && vt !== VT_UNKNOWN) return;
    unknown = vt === VT_UNKNOWN;
    at += 8n;
  }
  let value = readPointer(at);
  if (!value) return;
  if (unknown && !describe(value)) {
    // An IUnknown of this apartment with an IDispatch goes out as a wrapper of that.
    const p = Deno.UnsafePointer.create(value)!;
    if (!isProxy(p)) {
      const [dispatch] = queryInterface(p, IID_IDispatch);
      if (dispatch) {
        vcall(p, 2, [], "u32");
        value = address(dispatch);
        writePointer(at, value);
      }
    }
  }
  const out = b + BLOCK.out;
  big[out + 1] = BigInt.asIntN(64, at);
  const described = describeOutgoing(value);
  if (described) {
    big[out] = BigInt(OUT.wrap);
    big[out + 2] = BigInt.asIntN(64, value);
    groupValues(described).forEach((v, i) => big[out + 3 + i] = BigInt.asIntN(64, v));
    big[out + 8] = BigInt(described.facet);
    return;
  }
  // Another object: marshalled for the COM thread; the reference returned goes with it.
  const stream = new BigUint64Array(1);
  const pointer = Deno.UnsafePointer.create(value)!;
  const hr = ole32().CoMarshalInterThreadInterfaceInStream(
    unknown ? IID_IUnknown : IID_IDispatch,
    pointer,
    stream,
  );
  vcall(pointer, 2, [], "u32");
  if (hr < 0) {
    writePointer(at, 0n);
    return;
  }
  big[out] = BigInt(unknown ? OUT.streamUnknown : OUT.streamDispatch);
  big[out + 2] = BigInt.asIntN(64, stream[0]);
}

/**
 * Runs one command on the COM thread and waits for it, answering meanwhile the requests it causes.
 */
function command(
  kind: number,
  args: bigint[],
  timeout = COMMAND_TIMEOUT_MS,
): { hr: number; out: bigint } {
  const t = theThread();
  args.forEach((a, i) => t.big[BIG.commandArgs + i] = BigInt.asIntN(64, a));
  t.ctl[CTL.commandKind] = kind;
  const seq = ++lastCommand;
  Atomics.store(t.ctl, CTL.commandSeq, seq);
  kernel32().SetEvent(t.commandEvent);
  const deadline = performance.now() + timeout;
  for (;;) {
    const seen = Atomics.load(t.ctl, CTL.mainWake);
    if (Atomics.load(t.ctl, CTL.done) === seq) {
      return { hr: t.ctl[CTL.commandResult], out: BigInt.asUintN(64, t.big[BIG.commandOut]) };
    }
    serveWaiting(t);
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`The COM thread did not answer within ${COMMAND_TIMEOUT_MS} ms`);
    Atomics.wait(t.ctl, CTL.mainWake, seen, left);
  }
}

/** The group values of an object, after handing one reference of it to the COM thread. */
function handOver(object: Deno.PointerObject): { group: bigint[]; facet: number } {
  const described = describeOutgoing(address(object));
  if (!described) throw new TypeError("Not an object of this apartment");
  vcall(object, 1, [], "u32"); // the COM thread's wrapper keeps it, or gives it back
  return { group: groupValues(described), facet: described.facet };
}

/**
 * Registers a served object in the Running Object Table under `!name`, through its wrapper.
 *
 * @returns The registration's cookie (for {@linkcode revokeFromRot}).
 */
export function registerInRot(object: Deno.PointerObject, name: string, context: string): number {
  const { group } = handOver(object);
  const text = wide(name);
  const r = command(COMMAND.rotRegister, [
    ...group,
    0n,
    address(Deno.UnsafePointer.of(text)),
    BigInt(text.byteLength),
  ]);
  checkHr(r.hr, "IRunningObjectTable::Register", context);
  return Number(r.out);
}

/** Revokes a registration of {@linkcode registerInRot} (the HRESULT is not checked). */
export function revokeFromRot(cookie: number): void {
  command(COMMAND.rotRevoke, [BigInt(cookie)]);
}

/**
 * Registers a class factory with `CoRegisterClassObject` (`CLSCTX_LOCAL_SERVER`,
 * `REGCLS_MULTIPLEUSE`) through its wrapper.
 *
 * @returns The registration's cookie (for {@linkcode revokeClassObject}).
 */
export function registerClassObject(
  factory: Deno.PointerObject,
  clsid: Uint8Array<ArrayBuffer>,
  context: string,
): number {
  const { group } = handOver(factory);
  const r = command(COMMAND.classRegister, [
    ...group,
    0n,
    address(Deno.UnsafePointer.of(clsid)),
  ]);
  checkHr(r.hr, "CoRegisterClassObject", context);
  return Number(r.out);
}

/** `CoRevokeClassObject` of a registration of {@linkcode registerClassObject}. */
export function revokeClassObject(cookie: number): void {
  command(COMMAND.classRevoke, [BigInt(cookie)]);
}

/**
 * Whether an `IDispatch` of the main thread goes to another apartment through a wrapper
 * ({@linkcode exportObject}): one of main's served objects, or another object implemented in the
 * main thread's apartment; not a proxy.
 */
export function goesThroughWrapper(pointer: Deno.PointerValue): boolean {
  return pointer !== null && describeOutgoing(address(pointer)) !== undefined;
}

/**
 * A proxy in the main thread's apartment of the COM thread's wrapper of an object (owned), to
 * pass to another process: its calls reach the COM thread, also after the outgoing call.
 *
 * @param object One of main's served objects, or another `IDispatch` implemented in the main
 * thread's apartment (see {@linkcode goesThroughWrapper}).
 * @param unknown Marshal as `IUnknown` instead of `IDispatch`.
 */
export function exportObject(object: Deno.PointerObject, unknown = false): Deno.PointerObject {
  const { group, facet } = handOver(object);
  const r = command(COMMAND.export, [...group, BigInt(facet), unknown ? 1n : 0n]);
  checkHr(r.hr, "CoMarshalInterThreadInterfaceInStream", "Cannot pass a served object");
  const out = new BigUint64Array(1);
  checkHr(
    ole32().CoGetInterfaceAndReleaseStream(
      Deno.UnsafePointer.create(r.out),
      unknown ? IID_IUnknown : IID_IDispatch,
      out,
    ),
    "CoGetInterfaceAndReleaseStream",
    "Cannot pass a served object",
  );
  return Deno.UnsafePointer.create(out[0])!;
}

let holds = 0;
let keepAlive: ReturnType<typeof setInterval> | undefined;

/**
 * Keeps the process alive until the returned function is called (once): while something is
 * registered or connected, as the pump's lease did. The COM thread itself never does.
 */
export function holdProcess(): () => void {
  if (holds++ === 0) keepAlive = setInterval(() => {}, 1 << 30);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holds === 0) clearInterval(keepAlive);
  };
}
