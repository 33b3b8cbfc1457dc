import assert from "node:assert/strict";
import { repoPath, winTest } from "./_helpers.ts";

async function runExample(name: string, env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", repoPath(`examples/${name}`)],
    stdin: "null",
    env,
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${name} failed: ${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

winTest("examples/shm.ts reads what its second process wrote", async () => {
  assert.equal(await runExample("shm.ts"), "read: hello from process <pid>\n");
});

winTest("examples/channel.ts makes 10,000 round trips", async () => {
  assert.equal(
    await runExample("channel.ts"),
    "10000 round trips, sum of the echoed numbers: 49995000\n",
  );
});

winTest("examples/pubsub.ts fans 100 samples out to 3 subscriber processes", async () => {
  assert.equal(
    await runExample("pubsub.ts"),
    "3 subscribers each summed the 100 samples: 4950, 4950, 4950\n",
  );
});

winTest("examples/rpc.ts calls a typed procedure and sees a bad call rejected", async () => {
  const out = (await runExample("rpc.ts")).split("\n");
  assert.equal(out[0], "hello, Ada");
  assert.match(out[1], /^rejected: Invalid params for greet: name: /);
});

winTest("examples/socket.ts echoes through a ws2_32 server in another process", async () => {
  assert.equal(await runExample("socket.ts"), "echoed: ping over ws2_32\n");
});

winTest("examples/http.ts downloads with WinINet", async () => {
  assert.equal(
    await runExample("http.ts"),
    "status 200, 1048576 bytes, progress reached 1048576\n",
  );
});

winTest("examples/com.ts drives Scripting.Dictionary and a served object", async () => {
  assert.equal(
    await runExample("com.ts"),
    "dictionary has 2 keys\nthe other process says: HELLO\n",
  );
});

winTest("examples/msrpc.ts calls Microsoft RPC in another process", async () => {
  assert.equal(await runExample("msrpc.ts"), "6 x 7 = 42 (computed in another process)\n");
});

const comA = Deno.env.get("WINIPC_TEST_COM_A");
const comB = Deno.env.get("WINIPC_TEST_COM_B");
Deno.test({
  name: "examples/serial.ts sends a line across a port pair",
  ignore: Deno.build.os !== "windows" || !comA || !comB,
  async fn() {
    const out = await runExample("serial.ts", { WINIPC_DEMO_COM: `${comA},${comB}` });
    assert.equal(out, "received: hello over the wire\n");
  },
});

winTest("examples/pipe.ts transacts with a pipe server in another process", async () => {
  assert.equal(await runExample("pipe.ts"), "you said: hello\n");
});

winTest("examples/mailslot.ts reads one note from each of three writer processes", async () => {
  assert.equal(
    await runExample("mailslot.ts"),
    "note from writer 1\nnote from writer 2\nnote from writer 3\n",
  );
});

winTest("examples/copydata.ts sends WM_COPYDATA to a window in another process", async () => {
  assert.equal(await runExample("copydata.ts"), "the receiver counted 26 characters\n");
});

winTest("examples/clipboard.ts: text set here is read by another process", async () => {
  assert.equal(
    await runExample("clipboard.ts"),
    "the other process read: héllo ✓ from the clipboard example\n",
  );
});

winTest("examples/dde.ts requests and pokes a DDE item served by another process", async () => {
  assert.equal(await runExample("dde.ts"), "price: 1.0832\nafter poke: 1.0901\n");
});
