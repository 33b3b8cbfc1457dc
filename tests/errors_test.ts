/**
 * One error family: every error class that a public entry point exports extends `WinipcError`
 * and carries a `code` and its `codeName`. The walk covers every sub-path export of deno.json
 * (but `./cli`, whose module runs the program), so a new error class outside the family, or one
 * this file does not know how to make, fails here.
 *
 * And one place makes them: no source under mechanisms/, cli/, ffi/ or tools/ but ffi/error.ts
 * constructs a `Win32Error` (a failure goes through that module's checks and factories, which
 * read the last error at the right moment); the test names each `file:line` that does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { WinipcError } from "../ffi/error.ts";

const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
const entries = Object.entries(config.exports as Record<string, string>)
  .filter(([path]) => path !== "./cli");

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** How to make one of each class, and the code and name it must then carry. */
const samples: Record<string, { args: unknown[]; code: number | string; codeName: string }> = {
  Win32Error: {
    args: ["CreateFileW", 2, { systemMessage: "not found" }],
    code: 2,
    codeName: "ERROR_FILE_NOT_FOUND",
  },
  ComError: {
    args: ["IDispatch::Invoke", 0x80004002],
    code: 0x80004002,
    codeName: "E_NOINTERFACE",
  },
  DdeError: {
    args: ["DdeConnect", 0x400a, "Cannot connect"],
    code: 0x400a,
    codeName: "DMLERR_NO_CONV_ESTABLISHED",
  },
  RpcError: { args: [-32601, "Method not found: x"], code: -32601, codeName: "MethodNotFound" },
  ProtocolError: { args: ["bad length"], code: "ERR_PROTOCOL", codeName: "ERR_PROTOCOL" },
  PeerGoneError: { args: [1234, "gone"], code: "ERR_PEER_GONE", codeName: "ERR_PEER_GONE" },
  PubSubError: { args: ["unusable"], code: "ERR_PUBSUB", codeName: "ERR_PUBSUB" },
  ClipboardFormatError: {
    args: ["HTML Format", "no StartHTML"],
    code: "ERR_CLIPBOARD_FORMAT",
    codeName: "ERR_CLIPBOARD_FORMAT",
  },
  HttpStatusError: {
    args: ["GET", {
      url: "http://127.0.0.1/",
      status: 404,
      statusText: "",
      headers: new Headers(),
    }],
    code: 404,
    codeName: "HTTP_404",
  },
  StackLimitError: { args: [new RangeError("x")], code: "ERR_STACK_LIMIT", codeName: "" },
  UnsupportedPlatformError: {
    args: ["linux"],
    code: "ERR_UNSUPPORTED_PLATFORM",
    codeName: "ERR_UNSUPPORTED_PLATFORM",
  },
  WinipcError: { args: ["x", "ERR_X"], code: "ERR_X", codeName: "ERR_X" },
  MessageTooLargeError: {
    args: ["\\\\.\\pipe\\x", 100, 10],
    code: "ERR_MESSAGE_TOO_LARGE",
    codeName: "ERR_MESSAGE_TOO_LARGE",
  },
  MsRpcRefusedError: {
    args: ["not local", undefined],
    code: "ERR_RPC_REFUSED",
    codeName: "ERR_RPC_REFUSED",
  },
};

Deno.test("every exported error class is a WinipcError with a code and its name", async () => {
  const found = new Map<string, ErrorClass>();
  for (const [path, file] of entries) {
    const module = await import(new URL(`../${file}`, import.meta.url).href);
    for (const [name, value] of Object.entries(module)) {
      if (typeof value !== "function" || !(value.prototype instanceof Error)) continue;
      assert.ok(
        value === WinipcError || value.prototype instanceof WinipcError,
        `${name} (exported by "${path}") does not extend WinipcError`,
      );
      found.set(name, value as ErrorClass);
    }
  }
  assert.ok(found.size >= 10, `only ${found.size} error classes found`);
  for (const [name, Class] of found) {
    const sample = samples[name];
    assert.ok(sample, `${name}: no sample in tests/errors_test.ts; add one`);
    const error = new Class(...sample.args) as WinipcError;
    assert.equal(error.name, name);
    assert.equal(error.code, sample.code, `${name}.code`);
    if (sample.codeName) assert.equal(error.codeName, sample.codeName, `${name}.codeName`);
    else assert.match(error.codeName, /^[A-Z][A-Z0-9_]+$/, `${name}.codeName`);
    assert.ok(error.message.length > 0, `${name}.message`);
  }
});

/** The folders whose sources may make a `Win32Error` only through `ffi/error.ts`. */
const SOURCE_ROOTS = ["mechanisms", "cli", "ffi", "tools"];
/** The one module allowed to construct it. */
const ERROR_MODULE = "ffi/error.ts";

/** Every `.ts` file under `dir` (a path relative to the repository root), recursively. */
async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(`../${dir}/`, import.meta.url))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sourceFiles(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The 1-based lines of `text` where a `Win32Error` is constructed (`new Win32Error`). */
function constructionLines(text: string): number[] {
  const lines: number[] = [];
  for (const match of text.matchAll(/\bnew\s+Win32Error\b/g)) {
    lines.push(text.slice(0, match.index).split("\n").length);
  }
  return lines;
}

Deno.test("no Win32Error is constructed outside ffi/error.ts: failures go through its checks", async () => {
  const files = (await Promise.all(SOURCE_ROOTS.map(sourceFiles))).flat();
  assert.ok(files.length >= 50, `only ${files.length} source files found: is the walk right?`);
  assert.ok(files.includes(ERROR_MODULE), `${ERROR_MODULE} not found by the walk`);
  const found: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(`../${file}`, import.meta.url));
    const lines = constructionLines(text);
    if (file === ERROR_MODULE) {
      // The detector must see the constructions that are allowed, or it would see none anywhere.
      assert.ok(lines.length > 0, `no "new Win32Error" seen in ${ERROR_MODULE}`);
      continue;
    }
    found.push(...lines.map((line) => `${file}:${line}`));
  }
  assert.deepEqual(
    found,
    [],
    `Win32Error constructed directly (use checkBool, checkHandle, checkPointer, checkNonZero, ` +
      `checkCode, checkNtStatus, win32Error or ntStatusError from ffi/error.ts):\n` +
      found.join("\n"),
  );
});
