/**
 * One error family: every error class that a public entry point exports extends `WinipcError`
 * and carries a `code` and its `codeName`. The walk covers every sub-path export of deno.json
 * (but `./cli`, whose module runs the program), so a new error class outside the family, or one
 * this file does not know how to make, fails here.
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
