/**
 * The shared memory between the main thread and the COM thread (`_com_thread.ts`,
 * `_com_thread_worker.ts`), and the interfaces the COM thread's wrappers forward.
 *
 * @module
 */

/** Indexes of the `Int32Array` control words. */
export const CTL = {
  /** Worker → main: bumped with every request and every finished command; main waits on it. */
  mainWake: 0,
  /** The COM thread is up (1), or failed to start (2). */
  ready: 1,
  /** Main → worker: the number of the command waiting (see `done`). */
  commandSeq: 2,
  /** Worker → main: the number of the command that finished last. */
  done: 3,
  /** The command (see {@linkcode COMMAND}). */
  commandKind: 4,
  /** The command's HRESULT. */
  commandResult: 5,
  /** The first of {@linkcode MAX_DEPTH} request states, one per nesting depth (see `REQUEST`). */
  requests: 8,
} as const;

/**
 * How many requests may nest: a call that arrives while main answers another (from main itself,
 * from a callback's peer, or a concurrent client, which the COM thread's wait dispatches) nests.
 * Deeper calls are refused with `RPC_E_CALL_REJECTED`.
 */
export const MAX_DEPTH = 64;
export const CTL_INTS = CTL.requests + MAX_DEPTH;

/** The state of a request slot: free, handed to main, taken by main. */
export const REQUEST = { free: 0, posted: 1, taken: 2 } as const;

/** Commands of the main thread, run on the COM thread. */
export const COMMAND = {
  /** Register a served object in the Running Object Table: group, name → cookie. */
  rotRegister: 1,
  /** Revoke a Running Object Table registration: cookie. */
  rotRevoke: 2,
  /** `CoRegisterClassObject` of a class factory: group, CLSID → cookie. */
  classRegister: 3,
  /** `CoRevokeClassObject`: cookie. */
  classRevoke: 4,
  /** Marshal a wrapper into a stream for the main thread: group, facet, IID → stream. */
  export: 5,
  /**
   * The process is ending: leave the apartment (`CoUninitialize`, while this isolate still runs
   * the wrappers' callbacks) and end the thread; skipped while a call is out.
   */
  quit: 6,
} as const;

/**
 * The `BigInt64Array` after the control words: the command's arguments and results, then one
 * request block per depth.
 *
 * A group (the identity of one main-thread object and its facets) is written as five values:
 * the object's main pointer, its IConnectionPointContainer and IConnectionPoint facets (0 when it
 * has no events), the address of the 16 bytes of the outgoing interface's IID it also answers
 * as an event sink (0 when none), and 1 for a class factory.
 */
export const BIG = {
  /** Command arguments: a group (5), the facet, then two more values. */
  commandArgs: 0,
  /** Command results: the cookie or stream. */
  commandOut: 8,
  /** The first request block. */
  blocks: 16,
} as const;

/** Offsets in a request block. */
export const BLOCK = {
  /** The vtable slot called. */
  slot: 0,
  /** The facet called (see {@linkcode FACET}). */
  facet: 1,
  /** The main thread's pointer of the facet: the object the call is for. */
  target: 2,
  /** The arguments after `this`, raw. */
  args: 3, // up to 8
  /** The HRESULT main returned. */
  result: 11,
  /** The event main sets when done. */
  event: 12,
  /**
   * The interface pointer main returns through an out-parameter, converted by the COM thread
   * after the call, 9 values: the mode (see {@linkcode OUT}), where it is (an address), the value
   * (main's pointer, or the stream), the object's group (5 values, see `BIG`), and the facet.
   */
  out: 13, // 9 values: mode, address, value, group (5), facet
  /** How many interface arguments the COM thread marshalled for main. */
  inCount: 22,
  /**
   * Interface arguments, 4 values each: where (0: argument index, 1: memory address), the index
   * or address, the stream, and the IID (0 IDispatch, 1 IUnknown).
   */
  in: 23,
} as const;

/** The most interface arguments of one call the COM thread marshals for main. */
export const MAX_IN = 64;
export const BLOCK_SIZE = BLOCK.in + 4 * MAX_IN;
export const BIG_COUNT = BIG.blocks + MAX_DEPTH * BLOCK_SIZE;

/** How an interface pointer returned by main reaches the caller (`BLOCK.out`). */
export const OUT = {
  /** Nothing to convert (no interface, a failed call, or an object with no apartment). */
  none: 0,
  /** One of main's served objects: the COM thread's wrapper of it (one reference moves). */
  wrap: 1,
  /** Another object: marshalled by main into a stream (IDispatch), unmarshalled here. */
  streamDispatch: 2,
  /** The same with IUnknown. */
  streamUnknown: 3,
} as const;

/** The facets a wrapper can stand for: the index of its vtable. */
export const FACET = { dispatch: 0, container: 1, point: 2, factory: 3 } as const;

/**
 * The parameters after `this` of each forwarded method, per facet and vtable slot. IUnknown's
 * three are answered by the COM thread itself.
 */
export const SLOTS: Record<number, Record<number, Deno.NativeType[]>> = {
  [FACET.dispatch]: {
    3: ["pointer"], // GetTypeInfoCount(UINT*)
    4: ["u32", "u32", "pointer"], // GetTypeInfo(UINT, LCID, ITypeInfo**)
    5: ["pointer", "pointer", "u32", "u32", "pointer"], // GetIDsOfNames
    // Invoke(DISPID, REFIID, LCID, WORD, DISPPARAMS*, VARIANT*, EXCEPINFO*, UINT*)
    6: ["i32", "pointer", "u32", "u16", "pointer", "pointer", "pointer", "pointer"],
  },
  [FACET.container]: {
    // EnumConnectionPoints is answered by the COM thread (E_NOTIMPL, as main does)
    4: ["pointer", "pointer"], // FindConnectionPoint(REFIID, IConnectionPoint**)
  },
  [FACET.point]: {
    3: ["pointer"], // GetConnectionInterface(IID*)
    4: ["pointer"], // GetConnectionPointContainer(IConnectionPointContainer**)
    5: ["pointer", "pointer"], // Advise(IUnknown*, DWORD*)
    6: ["u32"], // Unadvise(DWORD)
    7: ["pointer"], // EnumConnections(IEnumConnections**)
  },
  [FACET.factory]: {
    3: ["pointer", "pointer", "pointer"], // CreateInstance(IUnknown*, REFIID, void**)
    4: ["i32"], // LockServer(BOOL)
  },
};

/** How many slots each facet's vtable has. */
export const VTABLE_SIZE: Record<number, number> = {
  [FACET.dispatch]: 7,
  [FACET.container]: 5,
  [FACET.point]: 8,
  [FACET.factory]: 5,
};

/**
 * Where a method returns an interface pointer: the index of the out-parameter (after `this`),
 * per facet and slot. Invoke's is a VARIANT (pVarResult), checked for VT_DISPATCH/VT_UNKNOWN.
 * GetTypeInfo's ITypeInfo is not converted: `CreateDispTypeInfo` makes an object with no
 * apartment, which the COM thread's stub may call directly.
 */
export const OUT_PARAMS: Record<number, Record<number, number>> = {
  [FACET.dispatch]: { 6: 5 },
  [FACET.container]: { 4: 1 },
  [FACET.point]: { 4: 0 },
  [FACET.factory]: { 3: 2 },
};

/**
 * The main thread's window gets this when a request waits; wParam is its depth. It is posted,
 * and in the DDE range (`WM_DDE_TERMINATE`, whose parameters no one packs): COM's modal loop,
 * which runs while the main thread waits in an outgoing call, dispatches posted messages of that
 * range to any window (besides its own and sent ones). A sent message (`SendNotifyMessageW`)
 * would be dispatched there too, but a handler that runs inside a sent message is in an
 * "input-synchronous call" for COM, which then refuses its outgoing calls
 * (`RPC_E_CANTCALLOUT_ININPUTSYNCCALL`): a callback that calls its caller back would fail.
 */
export const WM_COM_CALL = 0x03e1;

/** What the main thread hands the worker when it starts. */
export interface ComThreadStart {
  control: SharedArrayBuffer;
  /** The main thread's message-only window, for `WM_COM_CALL`. */
  hwnd: bigint;
  /** The auto-reset event that tells the COM thread a command waits. */
  commandEvent: bigint;
}

/** What the COM thread posts to the main thread: references it gave back. */
export interface ComThreadPosted {
  /** Main pointers to `Release` once (a wrapper let go of an object, or an extra reference). */
  release: bigint[];
}
