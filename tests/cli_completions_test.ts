import assert from "node:assert/strict";
import { runCli } from "./_helpers.ts";

const onLinux = Deno.build.os === "linux";

Deno.test({
  name: "winipc completions bash completes groups, verbs and options in a real bash",
  ignore: !onLinux,
  async fn() {
    const script = await runCli(["completions", "bash"]);
    assert.equal(script.code, 0, script.stderr);
    const complete = async (...words: string[]) => {
      const program = `${script.stdout}
COMP_WORDS=(winipc ${words.map((w) => `'${w}'`).join(" ")})
COMP_CWORD=${words.length}
_winipc
printf '%s\\n' "\${COMPREPLY[@]}"`;
      const out = await new Deno.Command("bash", { args: ["-c", program] }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).trim().split("\n").sort();
    };
    assert.deepEqual(await complete("sh"), ["shm"]);
    assert.deepEqual(await complete("shm", ""), [
      "--help",
      "list",
      "publish",
      "read",
      "serve",
      "subscribe",
      "write",
    ]);
    assert.deepEqual(await complete("shm", "serve", "board", "--si"), ["--size"]);
    assert.ok((await complete("")).includes("rpc"));
  },
});

Deno.test("winipc completions for zsh, fish and PowerShell name every verb; a bad shell exits 2", async () => {
  for (const shell of ["zsh", "fish", "powershell"]) {
    const out = await runCli(["completions", shell]);
    assert.equal(out.code, 0, out.stderr);
    for (const word of ["shm", "serve", "--size", "rpc", "bench", "--mechanism"]) {
      // fish names long options without their dashes: -l 'size'
      const expected = shell === "fish" && word.startsWith("--") ? `-l '${word.slice(2)}'` : word;
      assert.ok(out.stdout.includes(expected), `${shell} script mentions ${expected}`);
    }
  }
  const bad = await runCli(["completions", "tcsh"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "error: Invalid <shell>: must be bash, zsh, fish or powershell\n");
});
