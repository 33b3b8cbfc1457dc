/**
 * Helpers shared by the DDE tests.
 *
 * @module
 */
import { DdeClient, DdeError } from "../mechanisms/dde.ts";

/**
 * Waits until a DDE service answers on the topic (a server in another process has registered
 * it).
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
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      DdeClient.connect(service, topic).close();
      return;
    } catch (e) {
      if (!(e instanceof DdeError) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
