// WinINet: download a URL with progress, from a server in another process (Deno's own HTTP).
// Run: deno run -A examples/http.ts
import { download } from "../mod.ts";
import { firstLine, startPeer } from "./_peer.ts";

if (Deno.args[0] === "peer") {
  const body = "x".repeat(1 << 20);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(body),
  );
  console.log(`${server.addr.port}`);
  setTimeout(() => server.shutdown(), 5000);
} else {
  const peer = startPeer(import.meta.filename!);
  const port = await firstLine(peer);
  let last = 0;
  const response = await download(`http://127.0.0.1:${port}/`, {
    onProgress: ({ loaded }) => last = loaded,
  });
  const text = await new Response(response.body).text();
  console.log(`status ${response.status}, ${text.length} bytes, progress reached ${last}`);
  peer.kill();
  await peer.status;
}
