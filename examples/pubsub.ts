// Publish/subscribe over shared memory: one publisher, three subscriber processes, zero copy.
// Run: deno run -A examples/pubsub.ts
import { Publisher, Subscriber } from "../mod.ts";
import { startPeer } from "./_peer.ts";

const name = `Local\\example-pubsub-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  using sub = await Subscriber.open(name);
  let sum = 0;
  for await (const sample of sub) sum += sample.data[0]; // each sample is released as we go on
  console.log(sum);
} else {
  using pub = await Publisher.create(name, { sampleSize: 4096, overflow: "block" });
  const peers = [0, 1, 2].map(() => startPeer(import.meta.filename!, String(Deno.pid)));
  await pub.waitForSubscribers(3); // they join on their own

  for (let i = 0; i < 100; i++) {
    const sample = await pub.loan();
    sample.data[0] = i; // written in place, in the mapping every subscriber reads
    await sample.publish(1);
  }
  pub.close(); // the subscribers' loops end once they have read everything
  const sums = [];
  for (const peer of peers) {
    sums.push(Number(new TextDecoder().decode((await peer.output()).stdout).trim()));
  }
  console.log(`3 subscribers each summed the 100 samples: ${sums.join(", ")}`);
}
