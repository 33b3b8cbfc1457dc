/**
 * The procedures `winipc rpc serve` offers: `echo`, `add` and `sha256`.
 *
 * @module
 */
import { z } from "zod";
import { defineProcedures, type Handlers } from "../mechanisms/rpc.ts";

/** Schemas of the built-in procedures. */
export const builtinProcedures = defineProcedures({
  /** Returns its parameters as given. */
  echo: {
    params: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]),
    result: z.unknown(),
  },
  /** `[a, b]` or `{ a, b }`: their sum. */
  add: {
    params: z.union([
      z.tuple([z.number(), z.number()]),
      z.object({ a: z.number(), b: z.number() }),
    ]),
    result: z.number(),
  },
  /** `[text]` or `{ text }`: the SHA-256 of its UTF-8 bytes, in hex. */
  sha256: {
    params: z.union([z.tuple([z.string()]), z.object({ text: z.string() })]),
    result: z.string().regex(/^[0-9a-f]{64}$/),
  },
});

/** Implementations of the built-in procedures. */
export const builtinHandlers: Handlers<typeof builtinProcedures> = {
  echo: (params) => params,
  add: (params) => Array.isArray(params) ? params[0] + params[1] : params.a + params.b,
  sha256: async (params) => {
    const text = Array.isArray(params) ? params[0] : params.text;
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  },
};
