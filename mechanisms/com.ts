/**
 * COM automation: the module lives in `com/` (`com/mod.ts`, one file a subject); this file
 * re-exports it so the import path `mechanisms/com.ts` keeps working.
 *
 * @example Drive Scripting.Dictionary
 * ```ts
 * import { createObject } from "./com.ts";
 * using dict = createObject("Scripting.Dictionary");
 * dict.Add("a", 1);
 * console.log(dict.Count); // 1
 * ```
 *
 * @module
 */
export * from "./com/mod.ts";
