// The documentation audit (tools/doc_audit.ts) over the public API: mod.ts and every sub-path
// export but ./ffi and ./cli. It runs `deno doc`, so on Linux only (the Wine run skips it).
import assert from "node:assert/strict";
import { auditDocs, type Finding, formatFinding } from "../tools/doc_audit.ts";
import { onWindows } from "./_helpers.ts";

/** The lead's module: its findings are reported in a test of their own. */
const CHANNEL = "mechanisms/channel.ts";

let findings: Promise<Finding[]> | undefined;
/** One audit for the tests of this file (deno doc over the whole API takes a few seconds). */
function audit(): Promise<Finding[]> {
  return findings ??= auditDocs();
}

function report(list: Finding[]): string {
  return `${list.length} finding(s):\n${list.map(formatFinding).join("\n")}`;
}

Deno.test({
  name:
    "docs: every export has JSDoc and a titled @example that type-checks, and no raw pointer type (but channel.ts)",
  ignore: onWindows,
  fn: async () => {
    const rest = (await audit()).filter((f) => f.file !== CHANNEL);
    assert.deepEqual(rest, [], report(rest));
  },
});

Deno.test({
  name: `docs: ${CHANNEL} has JSDoc, a titled @example and no raw pointer type on every export`,
  ignore: onWindows,
  fn: async () => {
    const channel = (await audit()).filter((f) => f.file === CHANNEL);
    assert.deepEqual(channel, [], report(channel));
  },
});

Deno.test({
  name: "docs: the audit finds each kind of problem in a sample module",
  ignore: onWindows,
  fn: async () => {
    const sample = await auditDocs({ files: ["tests/fixtures/doc_audit_sample.ts"] });
    assert.deepEqual(
      sample.map((f) => `${f.line} ${f.rule} ${f.symbol}`),
      [
        "22 missing-example NO_EXAMPLE",
        "33 untitled-example untitled",
        "35 missing-example undocumented",
        "35 missing-jsdoc undocumented",
        "46 pointer-type RawHandle",
        "63 missing-jsdoc Holder.constructor",
        "63 pointer-type Holder.constructor",
        "73 pointer-type Holder.address",
        "87 missing-jsdoc Holder.close",
        "103 doc-lint configure",
        "113 example-type @example",
        "132 internal-public Inner.constructor",
        "143 internal-public Inner.settle",
      ],
      report(sample),
    );
    const pointer = sample.find((f) => f.rule === "pointer-type" && f.line === 63);
    assert.equal(pointer?.message, "exposes Deno.PointerObject");
    // unsafeHandle, the private member and the #field are allowed; `read` returns a count
    assert.ok(!sample.some((f) => /unsafeHandle|secret|pointer|read/.test(f.symbol)));
    // a protected or private member tagged @internal is not public
    assert.ok(!sample.some((f) => /hidden|quiet/.test(f.symbol)));
    assert.equal(
      sample.find((f) => f.rule === "doc-lint")?.message,
      "private-type-ref: public type 'configure' references private type 'Settings'",
    );
    assert.match(
      sample.find((f) => f.rule === "example-type")?.message ?? "",
      /^TS2345: Argument of type 'string' is not assignable to parameter of type 'number'/,
    );
  },
});

Deno.test({
  name: "docs: deno doc --lint passes over every export of deno.json (./ffi and ./cli included)",
  ignore: onWindows,
  fn: async () => {
    const root = new URL("../", import.meta.url);
    const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
    const entries = Object.values(config.exports as Record<string, string>);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--lint", ...entries],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text);
  },
});
