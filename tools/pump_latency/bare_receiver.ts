// The main thread blocks in GetMessageW (its event loop stops): the Deno floor of a wake-up.
import { runWindow } from "./_window_thread.ts";

runWindow(Deno.args[0], (data) => BigInt(data.length), () => console.log("ready"));
