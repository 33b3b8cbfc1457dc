// Windows Sockets: a ws2_32 TCP echo server in another process, and a client.
// Run: deno run -A examples/socket.ts
import { connect, listen } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

if (Deno.args[0] === "peer") {
  await using listener = await listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`${listener.addr.port}`);
  await using conn = await listener.accept();
  await conn.readable.pipeTo(conn.writable); // echo until the client closes
} else {
  const peer = startPeer(import.meta.filename!);
  const port = Number(await firstLine(peer));
  await using conn = await connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("ping over ws2_32"));
  await conn.closeWrite();
  console.log(`echoed: ${await new Response(conn.readable).text()}`);
  await peer.status;
}
