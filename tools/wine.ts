/**
 * Running the Windows build of Deno: natively on Windows, under Wine elsewhere. Provisions Wine,
 * deno.exe and the project's Wine prefix on first use (tools/provision.sh; idempotent).
 *
 * @module
 */

const root = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/^\/(\w:)/, "$1");

/** The repository's root folder. */
export const repoRoot: string = root.replace(/\/$/, "");

/** Installs what is missing (Linux only). Throws when provisioning fails. */
export async function provision(): Promise<void> {
  if (Deno.build.os === "windows") return;
  const status = await new Deno.Command("bash", {
    args: [`${repoRoot}/tools/provision.sh`],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) throw new Error(`tools/provision.sh failed with code ${status.code}`);
}

/** The environment for deno.exe under Wine. */
export function wineEnv(): Record<string, string> {
  const xdg = `${repoRoot}/.tools/xdg`;
  Deno.mkdirSync(xdg, { recursive: true, mode: 0o700 });
  Deno.chmodSync(xdg, 0o700);
  return {
    WINEPREFIX: Deno.env.get("WINEPREFIX") ?? `${repoRoot}/.wine`,
    WINEDEBUG: "-all",
    XDG_RUNTIME_DIR: xdg,
    NO_COLOR: "1",
  };
}

/**
 * A `Deno.Command` that runs the Windows build of Deno with `args`.
 *
 * @param args deno arguments (`["test", "-A", ...]`).
 * @param options stdout/stderr handling.
 */
export function windowsDeno(
  args: string[],
  options: Pick<Deno.CommandOptions, "stdout" | "stderr" | "stdin"> = {},
): Deno.Command {
  if (Deno.build.os === "windows") {
    return new Deno.Command(Deno.execPath(), { args, cwd: repoRoot, ...options });
  }
  return new Deno.Command("wine", {
    args: [`${repoRoot}/.tools/deno-win/deno.exe`, ...args],
    cwd: repoRoot,
    env: wineEnv(),
    ...options,
  });
}

/**
 * deno.exe under Wine leaves a copy of itself (about 97 MB) as
 * `AppData/Local/deno/node_compat_bin/node.exe.tmp-<pid>` at every start: a full test run would
 * fill gigabytes. This removes those left over (older than 20 s) every 5 s while a run lasts.
 *
 * @returns A function that stops the cleaner after a last sweep.
 */
export function startTempCleaner(): () => void {
  if (Deno.build.os === "windows") return () => {};
  const users = `${wineEnv().WINEPREFIX}/drive_c/users`;
  const sweep = (minAgeMs: number) => {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(users)].map((e) => e.name);
    } catch {
      return; // no prefix yet
    }
    for (const user of names) {
      const dir = `${users}/${user}/AppData/Local/deno/node_compat_bin`;
      try {
        for (const entry of Deno.readDirSync(dir)) {
          if (!entry.name.startsWith("node.exe.tmp-")) continue;
          const path = `${dir}/${entry.name}`;
          const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? Date.now());
          if (age >= minAgeMs) Deno.removeSync(path);
        }
      } catch {
        // the folder is not there (yet), or a file went away meanwhile
      }
    }
  };
  sweep(20_000);
  const timer = setInterval(() => sweep(20_000), 5_000);
  return () => {
    clearInterval(timer);
    sweep(0);
  };
}

/**
 * The lines of a text stream (a child's stdout), trimmed; a last line without a newline too.
 *
 * @param stream The stream.
 */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    let i;
    while ((i = text.indexOf("\n")) >= 0) {
      yield text.slice(0, i).trim();
      text = text.slice(i + 1);
    }
  }
  if (text.trim() !== "") yield text.trim();
}
