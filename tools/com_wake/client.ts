// The calling process of the measurement (see run.ts).
// `client.ts latency <count> <name>...`: `count` rounds; in each, every object gets one
// `ping` after an idle 150 to 200 ms; prints `<name> <µs>` per call.
// `client.ts nest <name>`: calls `nest(obj)` with an object of ours whose `back()` calls the
// server's `ping` (a call into the server while the server's own outgoing call waits); prints
// `nest <result>` or `nest error <message>`.
import { getObject } from "../../mechanisms/com.ts";

const [what, ...rest] = Deno.args;
if (what === "latency") {
  const [countText, ...names] = rest;
  const objects = names.map((n) => getObject(n));
  for (const o of objects) o.ping(0); // connect the proxies first
  for (let round = 0; round < Number(countText); round++) {
    for (let i = 0; i < objects.length; i++) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 50));
      const t0 = performance.now();
      const got = objects[i].ping(round);
      const us = (performance.now() - t0) * 1000;
      if (got !== round + 1) throw new Error(`${names[i]}: ping(${round}) gave ${got}`);
      console.log(`${names[i]} ${us.toFixed(0)}`);
    }
  }
} else if (what === "nest") {
  using server = getObject(rest[0]);
  try {
    console.log(`nest ${server.nest({ back: () => server.ping(99) })}`);
  } catch (e) {
    console.log(`nest error ${(e as Error).message.split("\n")[0]}`);
  }
}
