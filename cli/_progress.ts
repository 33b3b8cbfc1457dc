/**
 * The part of cli-progress that winipc uses, typed here: @types/cli-progress would pull in
 * @types/node globally, whose timer types differ from Deno's.
 *
 * @module
 */
import cliProgressModule from "cli-progress";

/** A single progress bar. */
export interface Bar {
  start(total: number, value: number, payload?: Record<string, string>): void;
  update(value: number, payload?: Record<string, string>): void;
  setTotal(total: number): void;
  getTotal(): number;
  stop(): void;
}

/** cli-progress, typed. */
export const cliProgress = cliProgressModule as unknown as {
  SingleBar: new (options: Record<string, unknown>, preset: unknown) => Bar;
  Presets: { shades_classic: unknown };
};
