// Shared memory between two processes: a mapping, a mutex around it, an event to signal.
// Run: deno run -A examples/shm.ts
import { Event, Mutex, SharedMemory } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

const name = `Local\\example-shm-${Deno.args[1] ?? Deno.pid}`;
if (Deno.args[0] === "peer") {
  using shm = SharedMemory.open(name);
  using lock = Mutex.open(`${name}.lock`);
  using written = Event.open(`${name}.written`);
  await lock.withLock(() => shm.view.writeText(0, `hello from process ${Deno.pid}`));
  written.set();
  console.log("ready");
} else {
  using shm = SharedMemory.create(name, { size: 4096 });
  using _lock = Mutex.create(`${name}.lock`);
  using written = Event.create(`${name}.written`);
  const peer = startPeer(import.meta.filename!, String(Deno.pid));
  await firstLine(peer);
  await written.wait({ timeout: 10_000 });
  console.log(`read: ${shm.view.readText(0).replace(/\d+/, "<pid>")}`);
  await peer.status;
}
