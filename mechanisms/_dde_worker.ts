/**
 * The thread of one {@linkcode DdeClient} conversation: a Deno Worker that owns the DDEML client
 * instance and makes its synchronous calls ({@linkcode DdeConversation}).
 *
 * `DdeConnect` broadcasts `WM_DDE_INITIATE` with `SendMessage` to every top-level window of the
 * session, and a transaction waits in DDEML's modal loop: a window whose thread does not pump (a
 * hung application) holds them up, for as long as it hangs (measured under Wine 10: a
 * `DdeConnect` waited 39.5 s for a window whose thread slept 40 s). Made here, those waits stop
 * this thread only; the main thread's event loop runs on, and the client gives up at its timeout.
 * DDEML windows belong to the thread that made them, so when this Worker ends, they go with it
 * (a failed `DdeConnect` leaves one behind under Wine).
 *
 * Protocol: the main thread posts {@linkcode DdeRequest}s; this thread answers each with a
 * {@linkcode DdeReply} of the same `id`, and posts advise updates and the end of each loop as
 * {@linkcode DdeEvent}s.
 *
 * @module
 */
import { type DdeAdvise, DdeConversation, DdeError, type DdeFormat } from "./dde.ts";

/** An error as it crosses between the threads. */
export type DdeWireError =
  | { kind: "dde"; functionName: string; code: number; message: string }
  | { kind: "closed"; message: string }
  | { kind: "reset"; message: string }
  | { kind: "other"; name: string; message: string };

/** A request to this thread, without its `id`. */
export type DdeRequestBody =
  | { op: "connect"; service: string; topic: string; timeout: number }
  | { op: "request"; item: string; formats: number[]; timeout: number }
  | { op: "poke"; item: string; value: string | Uint8Array; format?: DdeFormat; timeout: number }
  | { op: "execute"; command: string; timeout: number }
  | {
    op: "advise";
    loop: number;
    item: string;
    hot?: boolean;
    format?: DdeFormat;
    timeout: number;
  }
  | { op: "services"; timeout: number }
  | { op: "stop"; loop: number }
  | { op: "close" };

/** A request to this thread. */
export type DdeRequest = DdeRequestBody & { id: number };

/** The answer to the request of the same `id`. */
export type DdeReply =
  | { id: number; ok: true; value?: unknown }
  | { id: number; ok: false; error: DdeWireError };

/** An advise update, or the end of an advise loop. */
export type DdeEvent =
  | {
    event: "advise";
    loop: number;
    topic: string;
    item: string;
    bytes: Uint8Array<ArrayBuffer> | null;
    format: number;
  }
  | { event: "end"; loop: number; error?: DdeWireError }
  | { event: "ready" };

declare const self: {
  onmessage: ((event: MessageEvent<DdeRequest>) => void) | null;
  postMessage(message: DdeReply | DdeEvent): void;
  close(): void;
};

let conv: DdeConversation | undefined;
const loops = new Map<number, AsyncIterableIterator<DdeAdvise>>();

function wire(e: unknown): DdeWireError {
  if (e instanceof DdeError) {
    return { kind: "dde", functionName: e.functionName, code: e.code, message: e.message };
  }
  if (e instanceof Deno.errors.BadResource) return { kind: "closed", message: e.message };
  if (e instanceof Deno.errors.ConnectionReset) return { kind: "reset", message: e.message };
  const error = e instanceof Error ? e : new Error(String(e));
  return { kind: "other", name: error.name, message: error.message };
}

function open(): DdeConversation {
  if (!conv) throw new Deno.errors.BadResource("DDE conversation is closed");
  return conv;
}

async function pumpLoop(loop: number, it: AsyncIterableIterator<DdeAdvise>): Promise<void> {
  try {
    for await (const update of it) {
      self.postMessage({
        event: "advise",
        loop,
        topic: update.topic,
        item: update.item,
        bytes: update.data?.bytes ?? null,
        format: update.data?.format ?? 0,
      });
    }
    self.postMessage({ event: "end", loop });
  } catch (e) {
    self.postMessage({ event: "end", loop, error: wire(e) });
  } finally {
    loops.delete(loop);
  }
}

self.onmessage = (event) => {
  const m = event.data;
  try {
    switch (m.op) {
      case "connect": {
        conv = DdeConversation.connect(m.service, m.topic, { timeout: m.timeout });
        const hconv = BigInt(Deno.UnsafePointer.value(conv.unsafeHandle));
        self.postMessage({ id: m.id, ok: true, value: { hconv } });
        return;
      }
      case "request": {
        const data = open().requestData(m.item, { formats: m.formats, timeout: m.timeout });
        self.postMessage({ id: m.id, ok: true, value: { bytes: data.bytes, format: data.format } });
        return;
      }
      case "poke":
        open().poke(m.item, m.value, { format: m.format, timeout: m.timeout });
        break;
      case "execute":
        open().execute(m.command, { timeout: m.timeout });
        break;
      case "advise": {
        const it = open().advise(m.item, { hot: m.hot, format: m.format, timeout: m.timeout });
        loops.set(m.loop, it);
        pumpLoop(m.loop, it);
        break;
      }
      case "services":
        self.postMessage({
          id: m.id,
          ok: true,
          value: DdeConversation.services({ timeout: m.timeout }),
        });
        return;
      case "stop":
        loops.get(m.loop)?.return?.();
        break;
      case "close":
        for (const it of loops.values()) it.return?.();
        conv?.close();
        conv = undefined;
        self.postMessage({ id: m.id, ok: true });
        self.close();
        return;
    }
    self.postMessage({ id: m.id, ok: true });
  } catch (e) {
    self.postMessage({ id: m.id, ok: false, error: wire(e) });
  }
};

self.postMessage({ event: "ready" });
