/**
 * The COM thread (see `_com_thread.ts`): a worker whose thread is a single-threaded apartment.
 * It holds a wrapper for each main-thread object that other apartments reach: registered in the
 * Running Object Table, as a class object, or marshalled for the main thread to pass out. A
 * wrapper's vtable is this worker's own callbacks, so a call that arrives wakes this thread, which
 * blocks in `MsgWaitForMultipleObjectsEx` while idle. IUnknown's methods are answered here; every
 * other method is handed to the main thread, which runs the object's own vtable, while this thread
 * waits in `CoWaitForMultipleHandles`, which dispatches the calls that arrive meanwhile (a call
 * back into this apartment while main answers, from main itself or from another process).
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { INFINITE, kernel32 } from "../../ffi/kernel32.ts";
import { IID_IDispatch, IID_IUnknown, ole32, vcall } from "../../ffi/ole32.ts";
import { MWMO_INPUTAVAILABLE, PM_REMOVE, QS_ALLINPUT, user32 } from "../../ffi/user32.ts";
import { wide } from "../../ffi/strings.ts";
import {
  BIG,
  BIG_COUNT,
  BLOCK,
  BLOCK_SIZE,
  COMMAND,
  type ComThreadPosted,
  type ComThreadStart,
  CTL,
  CTL_INTS,
  FACET,
  MAX_DEPTH,
  MAX_IN,
  OUT,
  REQUEST,
  SLOTS,
  VTABLE_SIZE,
  WM_COM_CALL,
} from "./_com_thread_layout.ts";

const S_OK = 0;
const E_NOINTERFACE = 0x8000_4002 | 0;
const E_NOTIMPL = 0x8000_4001 | 0;
const E_POINTER = 0x8000_4003 | 0;
const E_FAIL = 0x8000_4005 | 0;
/** RPC_E_CALL_REJECTED: requests nested deeper than MAX_DEPTH. */
const RPC_E_CALL_REJECTED = 0x8001_0001 | 0;
const ROTFLAGS_REGISTRATIONKEEPSALIVE = 1;
const CLSCTX_LOCAL_SERVER = 4;
const REGCLS_MULTIPLEUSE = 1;
const VT_DISPATCH = 9;
const VT_UNKNOWN = 13;
const VARIANT_SIZE = 24;

const IID_IConnectionPointContainer = iid(0xb196b284, 0xbab4, 0x101a, 0xb69c00aa00341d07n);
const IID_IConnectionPoint = iid(0xb196b286, 0xbab4, 0x101a, 0xb69c00aa00341d07n);
const IID_IClassFactory = iid(0x00000001, 0, 0, 0xc000000000000046n);

function iid(a: number, b: number, c: number, d: bigint): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint32(0, a, true);
  v.setUint16(4, b, true);
  v.setUint16(6, c, true);
  v.setBigUint64(8, d, false);
  return out;
}

/** One main-thread object as other apartments see it: a wrapper per facet, one count. */
interface Group {
  main: bigint;
  container: bigint;
  point: bigint;
  sinkIid: Uint8Array | null;
  factory: boolean;
  refs: number;
  /** The wrappers' memory (first 8 bytes: the vtable), per facet. */
  wrappers: (Uint8Array<ArrayBuffer> | undefined)[];
}

parentPort!.once("message", (start: ComThreadStart) => {
  const ctl = new Int32Array(start.control, 0, CTL_INTS);
  try {
    run(start, ctl);
  } catch (error) {
    // Before it is up, the main thread waits for it: say it failed, at once.
    if (Atomics.load(ctl, CTL.ready) === 0) {
      Atomics.store(ctl, CTL.ready, 2);
      Atomics.notify(ctl, CTL.ready);
    }
    throw error;
  }
});

function run(start: ComThreadStart, ctl: Int32Array<SharedArrayBuffer>): void {
  const big = new BigInt64Array(start.control, CTL_INTS * 4, BIG_COUNT);
  const k = kernel32();
  const u = user32();
  const ole = ole32();
  const mainWindow = Deno.UnsafePointer.create(start.hwnd);
  const commandEvent = Deno.UnsafePointer.create(start.commandEvent)!;
  const hr = ole.CoInitializeEx(null, 2 /* COINIT_APARTMENTTHREADED */);
  if (hr < 0) {
    Atomics.store(ctl, CTL.ready, 2);
    Atomics.notify(ctl, CTL.ready);
    return;
  }

  const groups = new Map<bigint, Group>(); // main pointer → group
  const wrappers = new Map<bigint, { group: Group; facet: number }>(); // wrapper address → facet
  const events: Deno.PointerObject[] = []; // one per depth, auto-reset
  let depth = 0;
  let quitting = false;
  const msg = new Uint8Array(48);
  /** Main pointers whose reference this thread gives back (posted after each call/command). */
  let toRelease: bigint[] = [];

  const addressOf = (p: Deno.PointerValue) => BigInt(Deno.UnsafePointer.value(p));
  const writePointer = (at: bigint, value: bigint) =>
    new DataView(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(at)!, 8))
      .setBigUint64(0, value, true);
  const sameIid = (riid: Deno.PointerValue, expected: Uint8Array) => {
    if (!riid) return false;
    const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(riid, 16));
    return bytes.every((b, i) => b === expected[i]);
  };

  function flushReleases(): void {
    if (!toRelease.length) return;
    const posted: ComThreadPosted = { release: toRelease };
    toRelease = [];
    parentPort!.postMessage(posted);
  }

  /**
   * The group of a main object, made if new. The caller hands over one reference of the main
   * object: a new group keeps it, an existing one gives it back (it holds its own).
   */
  function adopt(values: BigInt64Array, at: number): Group {
    const main = BigInt.asUintN(64, values[at]);
    const existing = groups.get(main);
    if (existing) {
      toRelease.push(main);
      return existing;
    }
    const sinkAt = BigInt.asUintN(64, values[at + 3]);
    const group: Group = {
      main,
      container: BigInt.asUintN(64, values[at + 1]),
      point: BigInt.asUintN(64, values[at + 2]),
      sinkIid: sinkAt
        ? new Uint8Array(
          Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(sinkAt)!, 16).slice(0),
        )
        : null,
      factory: values[at + 4] !== 0n,
      refs: 0,
      wrappers: [],
    };
    groups.set(main, group);
    return group;
  }

  /** The wrapper of one facet of a group (made on first use), with one more reference. */
  function wrapperOf(group: Group, facet: number): bigint {
    let memory = group.wrappers[facet];
    if (!memory) {
      memory = new Uint8Array(16);
      new DataView(memory.buffer).setBigUint64(0, vtableAddress[facet], true);
      group.wrappers[facet] = memory;
      wrappers.set(addressOf(Deno.UnsafePointer.of(memory)), { group, facet });
    }
    group.refs++;
    return addressOf(Deno.UnsafePointer.of(memory));
  }

  function releaseGroup(group: Group): number {
    const left = --group.refs;
    if (left <= 0) {
      groups.delete(group.main);
      for (const memory of group.wrappers) {
        if (memory) wrappers.delete(addressOf(Deno.UnsafePointer.of(memory)));
      }
      toRelease.push(group.main);
      // Posted after the current call or command; a Release from COM's own bookkeeping while
      // this thread is idle is posted now.
      if (depth === 0) flushReleases();
    }
    return Math.max(0, left);
  }

  /** The main pointer of a facet of a group. */
  function targetOf(group: Group, facet: number): bigint {
    return facet === FACET.container
      ? group.container
      : facet === FACET.point
      ? group.point
      : group.main;
  }

  // ---- IUnknown, answered here ----

  const queryInterface = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "pointer"], result: "i32" } as const,
    (self, riid, out) => {
      if (!out) return E_POINTER;
      const found = wrappers.get(addressOf(self));
      let answer = 0n;
      if (found) {
        const { group, facet } = found;
        if (facet === FACET.factory) {
          if (sameIid(riid, IID_IUnknown) || sameIid(riid, IID_IClassFactory)) {
            answer = wrapperOf(group, facet);
          }
        } else if (facet === FACET.point) {
          if (sameIid(riid, IID_IUnknown) || sameIid(riid, IID_IConnectionPoint)) {
            answer = wrapperOf(group, facet);
          }
        } else if (
          sameIid(riid, IID_IUnknown) || sameIid(riid, IID_IDispatch) ||
          (group.sinkIid && sameIid(riid, group.sinkIid))
        ) {
          answer = wrapperOf(group, FACET.dispatch);
        } else if (group.container && sameIid(riid, IID_IConnectionPointContainer)) {
          answer = wrapperOf(group, FACET.container);
        }
      }
      writePointer(addressOf(out), answer);
      return answer ? S_OK : E_NOINTERFACE;
    },
  );
  const addRef = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const found = wrappers.get(addressOf(self));
      return found ? ++found.group.refs : 0;
    },
  );
  const release = new Deno.UnsafeCallback(
    { parameters: ["pointer"], result: "u32" } as const,
    (self) => {
      const found = wrappers.get(addressOf(self));
      return found ? releaseGroup(found.group) : 0;
    },
  );
  const enumConnectionPoints = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer"], result: "i32" } as const,
    (_self, out) => {
      if (out) writePointer(addressOf(out), 0n);
      return E_NOTIMPL;
    },
  );

  // ---- everything else, handed to the main thread ----

  const raw = (t: Deno.NativeType, v: unknown): bigint =>
    t === "pointer"
      ? addressOf(v as Deno.PointerValue)
      : BigInt.asUintN(64, BigInt(v as number | bigint));

  /** Swaps interface arguments for main: our own wrappers to main pointers, others to streams. */
  function marshalIn(
    b: number,
    facet: number,
    slot: number,
    args: bigint[],
    restore: { at: bigint; value: bigint }[],
  ): void {
    let n = 0;
    const add = (where: 0 | 1, location: bigint, pointer: bigint, unknown: boolean) => {
      const own = wrappers.get(pointer);
      if (own) {
        const mainPointer = targetOf(own.group, own.facet);
        if (where === 0) big[b + BLOCK.args + Number(location)] = BigInt.asIntN(64, mainPointer);
        else {
          restore.push({ at: location, value: pointer });
          writePointer(location, mainPointer);
        }
        return;
      }
      if (n >= MAX_IN) return;
      const stream = new BigUint64Array(1);
      const hr = ole.CoMarshalInterThreadInterfaceInStream(
        unknown ? IID_IUnknown : IID_IDispatch,
        Deno.UnsafePointer.create(pointer),
        stream,
      );
      if (hr < 0) return;
      const at = b + BLOCK.in + 4 * n++;
      big[at] = BigInt(where);
      big[at + 1] = BigInt.asIntN(64, location);
      big[at + 2] = BigInt.asIntN(64, stream[0]);
      big[at + 3] = unknown ? 1n : 0n;
    };
    if (facet === FACET.dispatch && slot === 6 && args[4]) {
      // DISPPARAMS { VARIANTARG *rgvarg; DISPID *rgdispidNamedArgs; UINT cArgs; UINT cNamedArgs }
      const params = new Deno.UnsafePointerView(Deno.UnsafePointer.create(args[4])!);
      const rgvarg = params.getBigUint64(0);
      const count = params.getUint32(16);
      for (let i = 0; rgvarg && i < count && i < 1024; i++) {
        const variant = rgvarg + BigInt(i * VARIANT_SIZE);
        const view = new Deno.UnsafePointerView(Deno.UnsafePointer.create(variant)!);
        const vt = view.getUint16(0);
        const pointer = view.getBigUint64(8);
        if ((vt === VT_DISPATCH || vt === VT_UNKNOWN) && pointer) {
          add(1, variant + 8n, pointer, vt === VT_UNKNOWN);
        }
      }
    } else if (facet === FACET.point && slot === 5 && args[0]) {
      add(0, 0n, args[0], true); // Advise's sink
    }
    big[b + BLOCK.inCount] = BigInt(n);
  }

  /** Converts the interface pointer main returned through an out-parameter (see `OUT`). */
  function convertOut(b: number): void {
    const at = b + BLOCK.out;
    const mode = Number(big[at]);
    if (mode === OUT.none) return;
    const address = BigInt.asUintN(64, big[at + 1]);
    if (mode === OUT.wrap) {
      // The reference main handed over becomes the caller's reference to the wrapper.
      writePointer(address, wrapperOf(adopt(big, at + 3), Number(big[at + 8])));
      return;
    }
    const out = new BigUint64Array(1);
    const hr = ole.CoGetInterfaceAndReleaseStream(
      Deno.UnsafePointer.create(BigInt.asUintN(64, big[at + 2])),
      mode === OUT.streamUnknown ? IID_IUnknown : IID_IDispatch,
      out,
    );
    writePointer(address, hr < 0 ? 0n : out[0]);
  }

  function forward(self: Deno.PointerValue, slot: number, values: unknown[]): number {
    const found = wrappers.get(addressOf(self));
    if (!found) return E_FAIL;
    if (depth >= MAX_DEPTH) return RPC_E_CALL_REJECTED;
    const { group, facet } = found;
    const types = SLOTS[facet][slot];
    const args = types.map((t, i) => raw(t, values[i]));
    const d = depth;
    const b = BIG.blocks + d * BLOCK_SIZE;
    big[b + BLOCK.slot] = BigInt(slot);
    big[b + BLOCK.facet] = BigInt(facet);
    big[b + BLOCK.target] = BigInt.asIntN(64, targetOf(group, facet));
    args.forEach((a, i) => big[b + BLOCK.args + i] = BigInt.asIntN(64, a));
    big[b + BLOCK.out] = BigInt(OUT.none);
    const event = events[d] ??= k.CreateEventW(null, 0, 0, null)!;
    big[b + BLOCK.event] = BigInt.asIntN(64, addressOf(event));
    const restore: { at: bigint; value: bigint }[] = [];
    // The group stays while main runs the call, whatever the call releases.
    group.refs++;
    depth++;
    try {
      marshalIn(b, facet, slot, args, restore);
      Atomics.store(ctl, CTL.requests + d, REQUEST.posted);
      // The message reaches main inside a modal loop of its own (an outgoing COM call); the
      // wake word reaches its idle event loop. Whichever comes first takes the request.
      u.PostMessageW(mainWindow, WM_COM_CALL, BigInt(d), 0n);
      Atomics.add(ctl, CTL.mainWake, 1);
      Atomics.notify(ctl, CTL.mainWake);
      const handles = new BigUint64Array([addressOf(event), addressOf(commandEvent)]);
      const index = new Uint32Array(1);
      for (;;) {
        const waited = ole.CoWaitForMultipleHandles(0, INFINITE, 2, handles, index);
        if (waited < 0) {
          // Not expected; wait on the handles and this thread's queue by hand, so as not to spin
          // (the calls of this apartment arrive as messages).
          index[0] = u.MsgWaitForMultipleObjectsEx(
            2,
            new Uint8Array(handles.buffer),
            INFINITE,
            QS_ALLINPUT,
            MWMO_INPUTAVAILABLE,
          );
          if (index[0] !== 0 && index[0] !== 1) {
            while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
              u.TranslateMessage(msg);
              u.DispatchMessageW(msg);
            }
            continue;
          }
        }
        if (index[0] === 1) {
          runCommand();
          continue;
        }
        break;
      }
      for (const r of restore) writePointer(r.at, r.value);
      const hr = Number(BigInt.asIntN(32, big[b + BLOCK.result]));
      if (hr >= 0) convertOut(b);
      return hr;
    } finally {
      Atomics.store(ctl, CTL.requests + d, REQUEST.free);
      depth--;
      releaseGroup(group);
      if (depth === 0) flushReleases();
    }
  }

  // deno-lint-ignore no-explicit-any
  const keep: Deno.UnsafeCallback<any>[] = [queryInterface, addRef, release, enumConnectionPoints];
  const vtableAddress: bigint[] = [];
  const vtables: BigUint64Array<ArrayBuffer>[] = [];
  for (const facet of [FACET.dispatch, FACET.container, FACET.point, FACET.factory]) {
    const slots: bigint[] = [queryInterface, addRef, release].map((c) => addressOf(c.pointer));
    for (let slot = 3; slot < VTABLE_SIZE[facet]; slot++) {
      const types = SLOTS[facet][slot];
      if (!types) {
        slots.push(addressOf(enumConnectionPoints.pointer));
        continue;
      }
      const callback = new Deno.UnsafeCallback(
        { parameters: ["pointer", ...types], result: "i32" },
        (self: Deno.PointerValue, ...values: unknown[]) => forward(self, slot, values),
      );
      keep.push(callback);
      slots.push(addressOf(callback.pointer));
    }
    const table = new BigUint64Array(slots);
    vtables.push(table);
    vtableAddress[facet] = addressOf(Deno.UnsafePointer.of(table));
  }

  // ---- commands of the main thread ----

  function withRot<T>(fn: (rot: Deno.PointerObject) => T): T | number {
    const out = new BigUint64Array(1);
    const hr = ole.GetRunningObjectTable(0, out);
    if (hr < 0) return hr;
    const rot = Deno.UnsafePointer.create(out[0])!;
    try {
      return fn(rot);
    } finally {
      vcall(rot, 2, [], "u32");
    }
  }

  /** Runs the command waiting (see `COMMAND`); its results go back through shared memory. */
  function runCommand(): void {
    const seq = Atomics.load(ctl, CTL.commandSeq);
    if (seq === Atomics.load(ctl, CTL.done)) return;
    const kind = ctl[CTL.commandKind];
    const args = big.slice(BIG.commandArgs, BIG.commandArgs + 8);
    let hr = S_OK;
    let out = 0n;
    try {
      if (kind === COMMAND.rotRegister || kind === COMMAND.classRegister) {
        const group = adopt(args, 0);
        // This reference is held while the command runs.
        const wrapper = wrapperOf(group, kind === COMMAND.classRegister ? FACET.factory : 0);
        try {
          if (kind === COMMAND.rotRegister) {
            // The name, NUL-terminated UTF-16 in the main thread's memory, and its byte length.
            const name = new Uint8Array(
              Deno.UnsafePointerView.getArrayBuffer(
                Deno.UnsafePointer.create(BigInt.asUintN(64, args[6]))!,
                Number(args[7]),
              ),
            );
            const result = withRot((rot) => {
              const moniker = new BigUint64Array(1);
              const made = ole.CreateItemMoniker(wide("!"), name, moniker);
              if (made < 0) return made;
              const cookie = new Uint32Array(1);
              try {
                const registered = vcall(
                  rot,
                  3,
                  ["u32", "pointer", "pointer", "buffer"],
                  "i32",
                  ROTFLAGS_REGISTRATIONKEEPSALIVE,
                  Deno.UnsafePointer.create(wrapper),
                  Deno.UnsafePointer.create(moniker[0]),
                  cookie,
                ) as number;
                if (registered < 0) return registered;
                out = BigInt(cookie[0]);
                return S_OK;
              } finally {
                vcall(Deno.UnsafePointer.create(moniker[0])!, 2, [], "u32");
              }
            });
            hr = result as number;
          } else {
            const clsid = Deno.UnsafePointer.create(BigInt.asUintN(64, args[6]))!;
            const cookie = new Uint32Array(1);
            hr = ole.CoRegisterClassObject(
              new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(clsid, 16)),
              Deno.UnsafePointer.create(wrapper),
              CLSCTX_LOCAL_SERVER,
              REGCLS_MULTIPLEUSE,
              cookie,
            );
            out = BigInt(cookie[0]);
          }
        } finally {
          releaseGroup(group);
        }
      } else if (kind === COMMAND.rotRevoke) {
        hr = withRot((rot) => vcall(rot, 4, ["u32"], "i32", Number(args[0])) as number) as number;
      } else if (kind === COMMAND.quit) {
        if (depth === 0 && !quitting) {
          quitting = true;
          ole.CoUninitialize();
        }
      } else if (kind === COMMAND.classRevoke) {
        hr = ole.CoRevokeClassObject(Number(args[0]));
      } else if (kind === COMMAND.export) {
        const group = adopt(args, 0);
        const wrapper = wrapperOf(group, Number(args[5]));
        try {
          const stream = new BigUint64Array(1);
          hr = ole.CoMarshalInterThreadInterfaceInStream(
            args[6] ? IID_IUnknown : IID_IDispatch,
            Deno.UnsafePointer.create(wrapper),
            stream,
          );
          out = stream[0];
        } finally {
          releaseGroup(group);
        }
      } else hr = E_FAIL;
    } catch {
      hr = E_FAIL;
    }
    ctl[CTL.commandResult] = hr;
    big[BIG.commandOut] = BigInt.asIntN(64, out);
    Atomics.store(ctl, CTL.done, seq);
    if (depth === 0) flushReleases();
    Atomics.add(ctl, CTL.mainWake, 1);
    Atomics.notify(ctl, CTL.mainWake);
  }

  Atomics.store(ctl, CTL.ready, 1);
  Atomics.notify(ctl, CTL.ready);
  const handles = new BigUint64Array([addressOf(commandEvent)]);
  for (;;) {
    const woke = u.MsgWaitForMultipleObjectsEx(
      1,
      new Uint8Array(handles.buffer),
      INFINITE,
      QS_ALLINPUT,
      MWMO_INPUTAVAILABLE,
    );
    if (woke === 0) runCommand();
    if (quitting) break;
    while (u.PeekMessageW(msg, null, 0, 0, PM_REMOVE)) {
      u.TranslateMessage(msg);
      u.DispatchMessageW(msg);
    }
    void keep;
    void vtables;
  }
}
