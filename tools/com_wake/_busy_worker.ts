// Keeps its process as busy as the polling pump keeps it when idle (a nonblocking Sleep(1) in a
// loop), without touching any message queue: for the `+busy` modes of run.ts, which tell the
// cost of waking a sleeping process apart from the cost of the wake-up path itself.
import { kernel32 } from "../../ffi/kernel32.ts";

for (;;) await kernel32().SleepAsync(1);
