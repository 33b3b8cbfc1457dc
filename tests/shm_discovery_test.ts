// Discovery of shared-memory objects across processes: listServices() and `winipc shm list` show
// the pub/sub services and channels another process has open, and prune the entries of objects
// whose processes are gone.
import assert from "node:assert/strict";
import {
  channelInfo,
  connectShm,
  Event,
  listServices,
  ProtocolError,
  SharedMemory,
  ShmChannel,
  type ShmServiceInfo,
} from "../mod.ts";
import {
  openExistingRegistry,
  REGISTRY_ENTRIES,
  registryEntries,
} from "../mechanisms/_registry.ts";
import { runCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

function find(list: ShmServiceInfo[], name: string): ShmServiceInfo | undefined {
  return list.find((s) => s.name === name);
}

/** The registry entries that hold `name` now (0 when the registry is gone). */
function entriesNamed(name: string): number {
  const registry = openExistingRegistry();
  if (!registry) return 0;
  using _ = registry;
  return registryEntries(registry).filter((e) => e.name === name).length;
}

winTest(
  "listServices and shm list show another process's channel, listener and service; dead ones are pruned",
  async () => {
    const base = uniqueName("disc");
    const ch = `${base}-ch`, ls = `${base}-ls`, ps = `${base}-ps`;
    await using peer = spawnFixture("shm_discovery_peer.ts", [base]);
    await peer.expect("ready");
    const peerPid = peer.child.pid;

    let list = listServices();
    assert.deepEqual(find(list, ch), {
      kind: "channel",
      name: ch,
      creatorPid: peerPid,
      openers: 0,
      capacity: 4096,
    });
    assert.deepEqual(find(list, ls), {
      kind: "channel",
      name: ls,
      creatorPid: peerPid,
      openers: 0,
      capacity: 1 << 16,
    });
    const service = find(list, ps);
    assert.equal(service?.kind, "pubsub");
    assert.equal(service.publisherPid, peerPid);
    assert.equal(service.sampleSize, 64);
    const names = list.map((s) => s.name);
    assert.deepEqual(names, [...names].sort(), "sorted by name");

    // This process opens the channel and connects to the listener.
    await using opener = await ShmChannel.open(ch);
    await using conn = await connectShm(ls);
    assert.equal(new TextDecoder().decode((await conn.receive({ timeout: 30_000 }))!), "hi");
    list = listServices();
    const info = find(list, ch);
    assert.equal(info?.kind === "channel" && info.openers, 1);
    // the per-connection channel is not listed; the listener is
    assert.equal(list.filter((s) => s.name.startsWith(`${ls}#`)).length, 0, JSON.stringify(list));
    assert.ok(find(list, ls));

    // A third process sees the same.
    const text = await runCli(["shm", "list"]);
    assert.equal(text.code, 0, text.stderr);
    const line = text.stdout.split("\n").find((l) => l.startsWith(`${ch}\t`));
    assert.equal(line, `${ch}\tchannel\tcreator ${peerPid}\topeners 1\tcapacity 4096 B`);
    const json = await runCli(["shm", "list", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(records.find((r) => r.name === ch), {
      kind: "channel",
      name: ch,
      creatorPid: peerPid,
      openers: 1,
      capacity: 4096,
    });
    assert.equal(records.find((r) => r.name === ps)?.kind, "pubsub");

    // The peer dies without closing anything.
    peer.child.kill();
    await peer.child.status;
    await conn[Symbol.asyncDispose]();
    list = listServices();
    // the channel lives on (this process has it open), with no creator
    assert.deepEqual(find(list, ch), {
      kind: "channel",
      name: ch,
      creatorPid: 0,
      openers: 1,
      capacity: 4096,
    });
    // nobody has the service or the listener open any more: gone, and their entries pruned
    assert.equal(find(list, ps), undefined);
    assert.equal(find(list, ls), undefined);
    assert.equal(entriesNamed(ps), 0);
    assert.equal(entriesNamed(ls), 0);
    assert.equal(entriesNamed(ch), 1);
    await opener[Symbol.asyncDispose]();
    assert.equal(find(listServices(), ch), undefined, "gone once the last end closed");
  },
);

winTest("a channel closed by its creator leaves the list; its entry is pruned", async () => {
  const base = uniqueName("disc-close");
  await using peer = spawnFixture("shm_discovery_peer.ts", [base]);
  await peer.expect("ready");
  // Hold a listed object of our own so the registry outlives the peer's objects.
  await using keep = await ShmChannel.create(`${base}-keep`, { capacity: 4096 });
  assert.ok(find(listServices(), `${base}-ch`));
  using go = Event.open(`${base}-go`);
  go.set();
  await peer.expect("closed");
  assert.equal((await peer.finish()).code, 0);
  const list = listServices();
  for (const suffix of ["-ch", "-ls", "-ps"]) {
    assert.equal(find(list, base + suffix), undefined, suffix);
    assert.equal(entriesNamed(base + suffix), 0, suffix);
  }
  assert.ok(find(list, keep.name));
});

winTest(
  "a full registry prunes the entries of closed channels, so new ones are listed",
  async () => {
    const base = uniqueName("disc-full");
    // Keeps the registry alive while the others come and go (else each close would drop it).
    await using keep = await ShmChannel.create(`${base}-keep`, { capacity: 4096 });
    const count = REGISTRY_ENTRIES + 12;
    for (let i = 0; i < count; i++) {
      const channel = await ShmChannel.create(`${base}-${i}`, { capacity: 4096 });
      channel.close(); // its entry stays until someone prunes it
    }
    const last = await ShmChannel.create(`${base}-last`, { capacity: 4096 });
    try {
      assert.equal(entriesNamed(last.name), 1, "registered although more were created than fit");
      const list = listServices();
      assert.ok(find(list, last.name));
      assert.ok(find(list, keep.name));
      assert.equal(list.filter((s) => s.name.startsWith(`${base}-`)).length, 2);
    } finally {
      last.close();
    }
  },
);

winTest(
  "listed: false keeps a channel out of the list; channelInfo reads any channel",
  async () => {
    const name = uniqueName("disc-unlisted");
    await using hidden = await ShmChannel.create(name, { capacity: 8192, listed: false });
    assert.equal(find(listServices(), name), undefined);
    assert.deepEqual(channelInfo(name), {
      kind: "channel",
      name,
      creatorPid: Deno.pid,
      openers: 0,
      capacity: 8192,
    });
    await hidden.closeWrite();
    assert.equal(channelInfo(name)?.creatorPid, 0, "a half-closed creator reads as closed");
    assert.equal(channelInfo(uniqueName("disc-missing")), undefined);
    using plain = SharedMemory.create(uniqueName("disc-plain"), { size: 8192 });
    assert.throws(() => channelInfo(plain.name!), ProtocolError);
    await assert.rejects(
      () => ShmChannel.create(uniqueName("disc-bad"), { listed: "yes" as never }),
      /options\.listed/,
    );
  },
);
