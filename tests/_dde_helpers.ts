/**
 * Helpers shared by the DDE tests.
 *
 * @module
 */
import { spawnFixture } from "./_helpers.ts";

/**
 * Waits until a DDE service answers on the topic (a server in another process has registered
 * it). The probing runs in a child process (see tests/fixtures/dde_wait.ts for why: under Wine,
 * failed connects leave windows behind that would hang later DDE tests).
 *
 * @param service The service name.
 * @param topic A topic it serves.
 * @param timeout Milliseconds to wait.
 */
export async function serviceAppears(
  service: string,
  topic: string,
  timeout = 30_000,
): Promise<void> {
  await using probe = spawnFixture("dde_wait.ts", [service, topic, String(timeout)], {
    stderr: "piped",
  });
  const { code, stderr, rest } = await probe.finish();
  if (code !== 0 || rest[0] !== "up") {
    throw new Error(
      `DDE service "${service}" did not appear on topic "${topic}" (exit ${code}): ${stderr}`,
    );
  }
}
