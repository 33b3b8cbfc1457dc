/**
 * The limits of the shared-memory channel's options, one definition for the channel and the
 * listener (a value one accepts, the other must not refuse later).
 *
 * @module
 */
import { z } from "zod";
import type { ShmChannel } from "./channel.ts";

/** Microseconds an idle end spins before it sleeps: 0 to 1,000,000. */
export const spinSchema: z.ZodNumber = z.number().min(0, { error: "must not be negative" })
  .max(1_000_000, { error: "must be at most 1,000,000 microseconds" });

/** Bytes of a ring: a power of two from 4 KiB to 1 GiB. */
export const capacitySchema: z.ZodType<number> = z.number().int({ error: "must be an integer" })
  .min(4096, { error: "must be at least 4096 bytes" })
  .max(1 << 30, { error: "must be at most 1 GiB" })
  .refine((n) => (n & (n - 1)) === 0, { error: "must be a power of two" });

/** Whether a ring capacity read from a mapping is one a winipc channel could have written. */
export function validCapacity(n: number): boolean {
  return Number.isInteger(n) && n >= 4096 && n <= 1 << 30 && (n & (n - 1)) === 0;
}

/**
 * Not public API: the channel's internals that the listener uses, set by `ShmChannel`'s static
 * block (its members are private).
 */
export const channelInternals: {
  /**
   * Declares that every frame on the channel's incoming ring has this many bytes, so that a frame
   * a crashed sender claimed and never published can be stepped over (the listener's rendezvous,
   * whose hellos are all one size).
   */
  fixedFrames(channel: ShmChannel, bytes: number): void;
} = {
  fixedFrames() {
    throw new Error("channel.ts is not loaded");
  },
};
