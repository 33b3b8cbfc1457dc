/**
 * The documentation audit: reads the public API with `deno doc --json` (mod.ts and every sub-path
 * export of deno.json except `./ffi`, the raw layer, and `./cli`) and reports
 *
 * - `missing-jsdoc`: an exported symbol, or a public member of one, without a JSDoc description;
 * - `missing-example`: an exported symbol without an `@example`;
 * - `untitled-example`: an exported symbol whose examples have no title (`@example Title`
 *   followed by a ```ts block);
 * - `pointer-type`: a public signature (function, class member, interface property, type alias,
 *   variable) that exposes a raw pointer type (`Deno.PointerValue`, `Deno.PointerObject`,
 *   `Deno.UnsafePointer`, `Deno.UnsafeCallback`, ...) or a `bigint`/`number` documented as a raw
 *   pointer or handle, other than through a member named `unsafe*` (`unsafeHandle`);
 * - `internal-public`: a public member of an exported class tagged `@internal` (a constructor or
 *   method users must not call is private, protected, `#`-named, or reached through a
 *   module-private hook);
 * - `doc-lint`: an error of `deno doc --lint` (a private type in a public signature, ...) that
 *   the rules above do not already report;
 * - `example-type`: an example that does not type-check (`deno check --doc` over the files that
 *   declare the audited symbols).
 *
 * Private (`#x` and `private`) members are not public and are not read.
 *
 * Usage: `deno run -A tools/doc_audit.ts` prints one line per finding and exits 1 when there is
 * any; tests/docs_test.ts runs {@linkcode auditDocs}.
 *
 * @module
 */

/** What a finding is about. */
export type Rule =
  | "missing-jsdoc"
  | "missing-example"
  | "untitled-example"
  | "pointer-type"
  | "internal-public"
  | "doc-lint"
  | "example-type";

/** One problem in the public API's documentation or signatures. */
export interface Finding {
  /** The rule it breaks. */
  rule: Rule;
  /** The file that declares the symbol, relative to the repository (`mechanisms/shm.ts`). */
  file: string;
  /** The line of the declaration (1-based). */
  line: number;
  /** The symbol, with the member after a dot (`SharedView.constructor`). */
  symbol: string;
  /** What is wrong. */
  message: string;
}

/** Sub-path exports that are not audited: the raw FFI layer and the CLI. */
export const SKIPPED_EXPORTS: readonly string[] = ["./ffi", "./cli"];

/** Types that are raw pointers, callbacks or libraries. */
const POINTER_TYPES = new Set([
  "PointerValue",
  "PointerObject",
  "UnsafePointer",
  "UnsafeCallback",
  "UnsafePointerView",
  "UnsafeFnPointer",
  "DynamicLibrary",
]);

/** A `bigint`/`number` whose documentation says this is a raw pointer or handle. */
const HANDLE_WORDS = /\bpointers?\b|\bhandles?\b|\bHWND\b|\bSOCKET\b|\bHGLOBAL\b|ownership of/i;

/**
 * Deliberate exceptions to `pointer-type`, by `file#symbol`, each with its reason.
 */
export const ALLOWED_HANDLES: Readonly<Record<string, string>> = {
  "mechanisms/window_messages.ts#WindowHandle":
    "an HWND is a window's session-wide identity (what FindWindowW returns and WM_COPYDATA names " +
    "as its sender), not an address: user32 validates it on every call, and a stale or made-up " +
    "one fails with ERROR_INVALID_WINDOW_HANDLE",
};

// The parts of `deno doc --json` that the audit reads.
interface JsDoc {
  doc?: string;
  tags?: { kind: string; name?: string; doc?: string }[];
}
interface Location {
  filename: string;
  line: number;
}
interface Declaration {
  location: Location;
  kind: string;
  declarationKind?: string;
  jsDoc?: JsDoc;
  // deno-lint-ignore no-explicit-any
  def?: any;
}
interface DocSymbol {
  name: string;
  declarations: Declaration[];
}
interface DocOutput {
  nodes: Record<string, { symbols?: DocSymbol[] }>;
}
interface Member {
  name: string;
  jsDoc?: JsDoc;
  accessibility?: string;
  location?: Location;
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
}

/**
 * The files the audit reads: mod.ts and the sub-path exports of deno.json but the skipped ones.
 *
 * @param root The repository's folder.
 * @returns Paths relative to `root`, mod.ts first.
 */
export async function auditedEntryPoints(root: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`)) as {
    exports: Record<string, string>;
  };
  return Object.entries(config.exports)
    .filter(([key]) => !SKIPPED_EXPORTS.includes(key))
    .map(([, path]) => path.replace(/^\.\//, ""));
}

/** Options of {@linkcode auditDocs}. */
export interface AuditOptions {
  /** The repository's folder (default: the parent of this file's folder). */
  root?: string;
  /** The files to read, relative to `root` (default: {@linkcode auditedEntryPoints}). */
  files?: string[];
}

/**
 * Runs the audit.
 *
 * @param options Where the repository is and which files to read.
 * @returns The findings, sorted by file and line.
 */
export async function auditDocs(options: AuditOptions = {}): Promise<Finding[]> {
  const root = options.root ?? repoRoot();
  const files = options.files ?? await auditedEntryPoints(root);
  const rootPrefix = `${root.replace(/\/$/, "")}/`;
  const json = await deno(root, ["doc", "--json", ...files]);
  if (!json.success) throw new Error(`deno doc --json failed: ${json.stderr}`);
  const doc = JSON.parse(json.stdout) as DocOutput;
  const findings = auditDocOutput(doc, root);
  // deno doc --lint: what JSR checks (private types in public signatures, missing return types);
  // a missing JSDoc that the audit reported already is not repeated
  const lint = await deno(root, ["doc", "--lint", ...files]);
  for (const lintFinding of parseDocLint(lint.stdout + lint.stderr, rootPrefix)) {
    const known = findings.some((f) =>
      f.rule === "missing-jsdoc" && lintFinding.message.startsWith("missing-jsdoc") &&
      f.file === lintFinding.file && f.line === lintFinding.line
    );
    if (!known) findings.push(lintFinding);
  }
  // deno check --doc: every example type-checks, in each file that declares an audited symbol
  const declaring = new Set(files);
  for (const node of Object.values(doc.nodes)) {
    for (const symbol of node.symbols ?? []) {
      for (const d of symbol.declarations) {
        const file = d.kind === "reference" ? d.def.target.filename : d.location.filename;
        if (file.startsWith(`file://${rootPrefix}`)) {
          declaring.add(decodeURIComponent(file.slice(`file://${rootPrefix}`.length)));
        }
      }
    }
  }
  const check = await deno(root, ["check", "--doc", "--quiet", ...[...declaring].sort()]);
  if (!check.success) findings.push(...parseDocCheck(check.stdout + check.stderr, rootPrefix));
  return findings.sort(byPlace);
}

/** Runs this Deno with arguments in the repository, without colours. */
async function deno(
  root: string,
  args: string[],
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    success: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/**
 * The type errors in the output of `deno check --doc`, each placed on the line of the example
 * where it is.
 *
 * @param output What it printed (without colours).
 * @param rootPrefix The repository's folder with a final `/`, to make file names relative.
 * @returns One `example-type` finding per error (one in all when the output cannot be read).
 */
export function parseDocCheck(output: string, rootPrefix: string): Finding[] {
  const found: Finding[] = [];
  const pattern =
    /^(TS\d+) \[ERROR\]: (.*)\n(?:(?!TS\d+ \[ERROR\]).*\n)*?\s*at file:\/\/(.*?)#(\d+)-\d+\.\w+:(\d+):\d+/gm;
  for (const m of output.matchAll(pattern)) {
    const file = m[3].startsWith(rootPrefix) ? m[3].slice(rootPrefix.length) : m[3];
    found.push({
      rule: "example-type",
      file,
      line: Number(m[4]) + Number(m[5]) - 1,
      symbol: "@example",
      message: `${m[1]}: ${m[2]}`,
    });
  }
  if (found.length === 0) {
    found.push({
      rule: "example-type",
      file: "(deno check --doc)",
      line: 0,
      symbol: "@example",
      message: output.trim().split("\n").slice(0, 20).join("\n"),
    });
  }
  return found;
}

/**
 * The errors in the output of `deno doc --lint`.
 *
 * @param output What it printed (without colours).
 * @param rootPrefix The repository's folder with a final `/`, to make file names relative.
 * @returns One `doc-lint` finding per error.
 */
export function parseDocLint(output: string, rootPrefix: string): Finding[] {
  const found: Finding[] = [];
  const pattern = /^error\[([\w-]+)\]: (.*)\n\s*--> (.*):(\d+):\d+\n(?:.*\n){0,2}?\s*\d+ \|(.*)$/gm;
  for (const m of output.matchAll(pattern)) {
    const file = m[3].startsWith(rootPrefix) ? m[3].slice(rootPrefix.length) : m[3];
    found.push({
      rule: "doc-lint",
      file,
      line: Number(m[4]),
      // the symbol as the message names it (`public type 'x' ...`), else the source line
      symbol: m[2].match(/'([^']+)'/)?.[1] ?? m[5].trim(),
      message: `${m[1]}: ${m[2]}`,
    });
  }
  if (found.length === 0 && /^error\[/m.test(output)) {
    throw new Error(`Cannot read the output of deno doc --lint:\n${output}`);
  }
  return found;
}

function byPlace(a: Finding, b: Finding): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.symbol.localeCompare(b.symbol) ||
    a.rule.localeCompare(b.rule);
}

/**
 * Audits the output of `deno doc --json`.
 *
 * @param doc The parsed output.
 * @param root The repository's folder, to make file names relative.
 * @returns The findings, sorted by file and line.
 */
export function auditDocOutput(doc: DocOutput, root: string): Finding[] {
  const rootUrl = new URL(`file://${root.replace(/\/?$/, "/")}`).href;
  const relative = (filename: string) =>
    filename.startsWith(rootUrl) ? decodeURIComponent(filename.slice(rootUrl.length)) : filename;
  const findings = new Map<string, Finding>();
  const keyOf = (f: Finding) => `${f.rule}|${f.file}|${f.line}|${f.symbol}`;
  // deno doc --json counts lines from 0
  const add = (f: Finding) => findings.set(keyOf(f), { ...f, line: f.line + 1 });
  const seen = new Set<string>();
  const targets: Location[] = [];
  // types that public signatures name, and the non-exported ones deno doc documented because
  // some signature names them: those count only when a public signature does
  const named = new Set<string>();
  const privates: { symbol: DocSymbol; declaration: Declaration }[] = [];

  const visitSymbol = (symbol: DocSymbol, prefix = "") => {
    const decls = symbol.declarations.filter((d) => {
      if (d.kind === "reference") {
        targets.push(d.def.target);
        return false;
      }
      if (d.declarationKind === "private") {
        privates.push({ symbol, declaration: d });
        return false;
      }
      return d.kind !== "import";
    });
    if (decls.length === 0) return;
    const key = `${decls[0].location.filename}:${decls[0].location.line}`;
    if (seen.has(key)) return;
    seen.add(key);
    const name = prefix + symbol.name;
    const file = relative(decls[0].location.filename);
    const line = decls[0].location.line;
    // documentation: on any of the declarations (overloads carry it on the first)
    const docs = decls.map((d) => d.jsDoc).filter((j): j is JsDoc => j !== undefined);
    if (!docs.some((j) => j.doc?.trim())) {
      add({ rule: "missing-jsdoc", file, line, symbol: name, message: "no JSDoc description" });
    }
    const examples = docs.flatMap((j) => j.tags ?? []).filter((t) => t.kind === "example");
    if (examples.length === 0) {
      add({ rule: "missing-example", file, line, symbol: name, message: "no @example" });
    } else if (!examples.some((t) => exampleTitle(t.doc ?? "") !== null)) {
      add({
        rule: "untitled-example",
        file,
        line,
        symbol: name,
        message: "no @example has a title (`@example Title` then a ```ts block)",
      });
    }
    for (const d of decls) {
      const where = { file: relative(d.location.filename), line: d.location.line };
      for (const exposure of exposures(d, symbol.name, named)) {
        const id = `${where.file}#${exposure.symbol}`;
        if (ALLOWED_HANDLES[id] !== undefined) continue;
        add({
          rule: "pointer-type",
          file: where.file,
          line: exposure.line ?? where.line,
          symbol: exposure.symbol,
          message: exposure.message,
        });
      }
      for (const member of undocumentedMembers(d)) {
        add({
          rule: "missing-jsdoc",
          file: relative(member.location?.filename ?? d.location.filename),
          line: member.location?.line ?? d.location.line,
          symbol: `${name}.${member.name}`,
          message: "public member without a JSDoc description",
        });
      }
      if (d.kind === "class") {
        for (const member of publicMembers(d)) {
          if (member.accessibility === "protected") continue;
          if (!member.jsDoc?.tags?.some((t) => t.kind === "internal")) continue;
          add({
            rule: "internal-public",
            file: relative(member.location?.filename ?? d.location.filename),
            line: member.location?.line ?? d.location.line,
            symbol: `${name}.${member.name}`,
            message: "public member tagged @internal: make it private, or drop the tag",
          });
        }
      }
      if (d.kind === "namespace") {
        for (const element of d.def?.elements ?? []) visitSymbol(element, `${name}.`);
      }
    }
  };

  for (const node of Object.values(doc.nodes)) {
    for (const symbol of node.symbols ?? []) visitSymbol(symbol);
  }
  for (const { symbol, declaration } of privates) {
    if (!named.has(symbol.name)) continue;
    const where = {
      file: relative(declaration.location.filename),
      line: declaration.location.line,
    };
    for (const exposure of exposures(declaration, symbol.name, new Set())) {
      const message =
        `${exposure.message} (a type that is not exported, named by a public signature)`;
      add({ rule: "pointer-type", ...where, symbol: exposure.symbol, message });
    }
  }
  for (const target of targets) {
    if (!seen.has(`${target.filename}:${target.line}`)) {
      throw new Error(
        `A re-export points at ${relative(target.filename)}:${target.line + 1}, ` +
          "which deno doc did not document: add its module to the audited files",
      );
    }
  }
  return [...findings.values()].sort(byPlace);
}

/**
 * The title of an `@example`: its first line, unless the example starts with its code block.
 *
 * @param doc The example's text.
 * @returns The title, or `null` for an untitled example.
 */
export function exampleTitle(doc: string): string | null {
  const first = doc.trimStart().split("\n", 1)[0].trim();
  return first === "" || first.startsWith("```") ? null : first;
}

/**
 * One line per finding: `file:line  rule  symbol: message`.
 *
 * @param finding The finding.
 * @returns The line.
 */
export function formatFinding(finding: Finding): string {
  return `${finding.file}:${finding.line}  ${finding.rule}  ${finding.symbol}: ${finding.message}`;
}

function repoRoot(): string {
  return decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
}

/** The members of a class or interface declaration that are public. */
function publicMembers(d: Declaration): Member[] {
  if (d.kind !== "class" && d.kind !== "interface") return [];
  const def = d.def ?? {};
  const members: Member[] = [
    ...(def.constructors ?? []).map((m: Member) => ({ ...m, name: "constructor" })),
    ...(def.methods ?? []),
    ...(def.properties ?? []),
    ...(def.callSignatures ?? []).map((m: Member) => ({ ...m, name: "(call)" })),
    ...(def.indexSignatures ?? []).map((m: Member) => ({ ...m, name: "[index]" })),
  ];
  return members.filter((m) => m.accessibility !== "private" && !m.name.startsWith("#"));
}

/**
 * Public members without a description (an accessor pair needs it on one of the two). Members
 * tagged `@internal` are not for users and need none, as for `deno doc --lint`.
 */
function undocumentedMembers(d: Declaration): Member[] {
  const members = publicMembers(d).filter((m) =>
    m.name !== "[index]" && !m.jsDoc?.tags?.some((t) => t.kind === "internal")
  );
  const documented = new Set(members.filter((m) => m.jsDoc?.doc?.trim()).map((m) => m.name));
  return members.filter((m) => !documented.has(m.name));
}

interface Exposure {
  symbol: string;
  message: string;
  /** The member's line, when it is a member. */
  line?: number;
}

/** Where a declaration's public signatures expose a pointer. */
function exposures(d: Declaration, name: string, named: Set<string>): Exposure[] {
  const found: Exposure[] = [];
  const check = (
    symbol: string,
    node: unknown,
    doc: string,
    params: Map<string, string>,
    line?: number,
  ) => {
    const pointers = new Set<string>();
    let rawNumber: string | null = null;
    walkTypes(node, (type, paramName) => {
      if (type.kind === "typeRef") {
        const typeName = String(type.value?.typeName ?? "");
        named.add(typeName);
        if (POINTER_TYPES.has(typeName.replace(/^Deno\./, ""))) pointers.add(typeName);
      } else if (type.kind === "keyword" && (type.value === "bigint" || type.value === "number")) {
        const text = paramName === null ? doc : params.get(paramName) ?? "";
        if (HANDLE_WORDS.test(text)) rawNumber ??= type.value;
      }
    });
    if (pointers.size > 0) {
      found.push({ symbol, line, message: `exposes ${[...pointers].join(", ")}` });
    } else if (rawNumber !== null) {
      found.push({
        symbol,
        line,
        message: `exposes a ${rawNumber} documented as a raw pointer or handle`,
      });
    }
  };
  // What documents a value outside the parameters: for a function or method what `@returns`
  // says (its description tells what it does), for anything else its description; and an
  // `@internal` note (`@internal Takes ownership of ...`).
  const docOf = (j: JsDoc | undefined, callable: boolean) =>
    [
      callable ? "" : j?.doc ?? "",
      ...(j?.tags ?? []).filter((t) => t.kind === "return" || t.kind === "internal")
        .map((t) => t.doc ?? ""),
    ].join("\n");
  const paramsOf = (j?: JsDoc) =>
    new Map((j?.tags ?? []).filter((t) => t.kind === "param").map((t) => [t.name!, t.doc ?? ""]));

  if (d.kind === "class" || d.kind === "interface") {
    const members = publicMembers(d);
    // a class whose `unsafeHandle` is a bigint or number: a constructor parameter of that type is
    // the raw handle it adopts
    const handle = members.find((m) => m.name === "unsafeHandle");
    const handleType = handle?.functionDef?.returnType?.repr ?? handle?.tsType?.repr;
    for (const m of members) {
      if (/^unsafe/i.test(m.name)) continue;
      const { jsDoc, location, ...signature } = m;
      const callable = m.kind === "method" || m.name === "constructor" || m.name === "(call)";
      check(
        `${name}.${m.name}`,
        signature,
        docOf(jsDoc, callable),
        paramsOf(jsDoc),
        location?.line,
      );
      if (m.name !== "constructor" || (handleType !== "bigint" && handleType !== "number")) {
        continue;
      }
      const adopted = (m.params ?? []).filter((p: Member) => p.tsType?.repr === handleType);
      if (adopted.length > 0 && !found.some((f) => f.symbol === `${name}.constructor`)) {
        found.push({
          symbol: `${name}.constructor`,
          line: m.location?.line,
          message: `takes the raw handle (a ${handleType}, as unsafeHandle gives it)`,
        });
      }
    }
  } else {
    check(name, d.def, docOf(d.jsDoc, d.kind === "function"), paramsOf(d.jsDoc));
  }
  return found;
}

/**
 * Calls `visit` for every type node under `node`, with the name of the parameter it belongs to
 * (or `null` outside parameters). Skips JSDoc and locations.
 */
function walkTypes(
  node: unknown,
  // deno-lint-ignore no-explicit-any
  visit: (type: any, paramName: string | null) => void,
  paramName: string | null = null,
): void {
  if (Array.isArray(node)) {
    for (const item of node) walkTypes(item, visit, paramName);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const record = node as Record<string, unknown>;
  if (typeof record.repr === "string" && typeof record.kind === "string") visit(record, paramName);
  for (const [key, value] of Object.entries(record)) {
    if (key === "jsDoc" || key === "location") continue;
    if (key === "params" && Array.isArray(value)) {
      for (const p of value as Record<string, unknown>[]) walkTypes(p, visit, paramNameOf(p));
      continue;
    }
    walkTypes(value, visit, paramName);
  }
}

/** A parameter's name (`x`, `x = 1`, `...x`), or `""` for a destructuring pattern. */
function paramNameOf(param: Record<string, unknown>): string {
  if (typeof param.name === "string") return param.name;
  const inner = (param.left ?? param.arg) as Record<string, unknown> | undefined;
  return inner ? paramNameOf(inner) : "";
}

if (import.meta.main) {
  const findings = await auditDocs();
  for (const f of findings) console.log(formatFinding(f));
  console.log(`${findings.length} finding${findings.length === 1 ? "" : "s"}`);
  if (findings.length > 0) Deno.exit(1);
}
