// The clipboard is one per Wine prefix (session). The suite runs test files one after the other,
// and the tests of a file in sequence, so this file's tests do not race clipboard_test.ts.
import assert from "node:assert/strict";
import { rgbaToPng } from "../mechanisms/_clipboard_codecs.ts";
import { runCli, spawnFixture, uniqueName, winTest } from "./_helpers.ts";

winTest("cli: clipboard set --json, then other processes read the text", async () => {
  const text = `héllo ✓ 𝄞 日本語 ${uniqueName("cli-clip")}\tline two`;
  const set = await runCli(["clipboard", "set", text, "--json"]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stderr, "");
  assert.equal(set.stdout.split("\n").length, 2, `one JSON line: ${set.stdout}`);
  assert.deepEqual(JSON.parse(set.stdout), { text });

  // the setting process has exited: its text stays on the clipboard for the next ones
  const get = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(get, { code: 0, stdout: `${JSON.stringify({ text })}\n`, stderr: "" });
  await using reader = spawnFixture("clipboard_peer.ts", ["get-text"]);
  assert.deepEqual(JSON.parse(await reader.line()), { text });
  assert.equal((await reader.finish()).code, 0);

  // a second set replaces it, and without --json prints nothing
  const second = `second ${uniqueName("cli-clip")}`;
  assert.deepEqual(await runCli(["clipboard", "set", second]), {
    code: 0,
    stdout: "",
    stderr: "",
  });
  assert.deepEqual(await runCli(["clipboard", "get"]), {
    code: 0,
    stdout: `${second}\n`,
    stderr: "",
  });
});

winTest("cli: clipboard set --json of an empty text, and bad usage", async () => {
  const empty = await runCli(["clipboard", "set", "", "--json"]);
  assert.deepEqual(empty, { code: 0, stdout: '{"text":""}\n', stderr: "" });
  const got = await runCli(["clipboard", "get", "--json"]);
  assert.deepEqual(JSON.parse(got.stdout), { text: "" });

  const extra = await runCli(["clipboard", "set", "a", "b", "--json"]);
  assert.equal(extra.code, 2);
  assert.equal(extra.stdout, "");
  assert.match(extra.stderr, /^error: too many arguments for 'set'\. Expected 1 argument/);
});

winTest("cli: clipboard set with --html, --image and --files; get --format; formats", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const htmlFile = `${dir}\\fragment.html`;
    await Deno.writeTextFile(htmlFile, "<b>Grüße</b> ✓");
    const pngFile = `${dir}\\image.png`;
    const png = rgbaToPng({ width: 1, height: 2, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) });
    await Deno.writeFile(pngFile, png);
    const set = await runCli([
      "clipboard",
      "set",
      "caption",
      "--html",
      htmlFile,
      "--image",
      pngFile,
      "--files",
      "C:\\a.txt",
      "C:\\b c.txt",
      "--json",
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), {
      text: "caption",
      html: htmlFile,
      image: pngFile,
      files: ["C:\\a.txt", "C:\\b c.txt"],
    });
    // each is read back by another process
    const formats = await runCli(["clipboard", "formats", "--json"]);
    assert.equal(formats.code, 0, formats.stderr);
    const names = formats.stdout.trim().split("\n").map((l) => JSON.parse(l).name);
    for (const name of ["CF_UNICODETEXT", "HTML Format", "PNG", "CF_DIBV5", "CF_HDROP"]) {
      assert.ok(names.includes(name), `${name} in ${names}`);
    }
    const plain = await runCli(["clipboard", "formats"]);
    assert.match(plain.stdout, /^13 CF_UNICODETEXT$/m);
    assert.deepEqual(await runCli(["clipboard", "get"]), {
      code: 0,
      stdout: "caption\n",
      stderr: "",
    });
    assert.deepEqual(await runCli(["clipboard", "get", "--format", "html"]), {
      code: 0,
      stdout: "<b>Grüße</b> ✓\n",
      stderr: "",
    });
    const out = `${dir}\\pasted.png`;
    const get = await runCli(["clipboard", "get", "--format", "png", "--output", out, "--json"]);
    assert.deepEqual(JSON.parse(get.stdout), { format: "png", bytes: png.length, output: out });
    assert.deepEqual(await Deno.readFile(out), png);
    assert.deepEqual(await runCli(["clipboard", "get", "--format", "files"]), {
      code: 0,
      stdout: "C:\\a.txt\nC:\\b c.txt\n",
      stderr: "",
    });
    const files = await runCli(["clipboard", "get", "--format", "files", "--json"]);
    assert.deepEqual(JSON.parse(files.stdout), {
      format: "files",
      paths: ["C:\\a.txt", "C:\\b c.txt"],
      effect: "copy",
    });
    // what the clipboard does not hold is a runtime error; bad usage is exit 2
    await runCli(["clipboard", "set", "only text"]);
    const none = await runCli(["clipboard", "get", "--format", "png"]);
    assert.deepEqual(none, {
      code: 1,
      stdout: "",
      stderr: "error: The clipboard holds no image\n",
    });
    const cases: [string[], RegExp][] = [
      [["clipboard", "get", "--format", "gif"], /must be text, html, png or files/],
      [["clipboard", "set", "x", "--files", "relative.txt"], /must be an absolute Windows path/],
      [["clipboard", "set", "x", "--image", htmlFile], /Invalid argument "png": no PNG signature/],
      [["clipboard", "get", "--format", "files", "--output", out], /--output takes text/],
    ];
    for (const [args, message] of cases) {
      const bad = await runCli(args);
      assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
      assert.equal(bad.stdout, "");
      assert.match(bad.stderr, /^error: /);
      assert.match(bad.stderr, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
