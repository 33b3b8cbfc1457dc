/**
 * Starts this same example again as its second process: `deno run -A <example> peer ...args`.
 *
 * @module
 */

/**
 * Spawns the example's peer and returns it; its stdout is piped.
 *
 * @param script The example's `import.meta.filename`.
 * @param args Arguments after `peer`.
 */
export function startPeer(script: string, ...args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, "peer", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Reads the peer's first line (it prints "ready" when it is). */
export async function firstLine(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  return text.split("\n")[0];
}
