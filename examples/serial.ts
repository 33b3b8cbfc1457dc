// Serial ports: a line sent on one port of a null-modem pair arrives on the other.
// Run: WINIPC_DEMO_COM=COM5,COM6 deno run -A examples/serial.ts
import { SerialPort } from "../mod.ts";

const pair = Deno.env.get("WINIPC_DEMO_COM")?.split(",");
if (pair?.length !== 2) {
  console.log('set WINIPC_DEMO_COM to a null-modem pair, e.g. "COM5,COM6"');
} else {
  await using a = await SerialPort.open(pair[0], { baudRate: 115200 });
  await using b = await SerialPort.open(pair[1], { baudRate: 115200 });
  await a.write(new TextEncoder().encode("hello over the wire\n"));
  const buffer = new Uint8Array(64);
  let text = "";
  while (!text.endsWith("\n")) {
    const n = await b.read(buffer, { timeout: 5000 });
    if (n === 0) throw new Error("nothing arrived");
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  console.log(`received: ${text.trim()}`);
}
