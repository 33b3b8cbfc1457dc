/**
 * `winipc completions <shell>`: a completion script for bash, zsh, fish or PowerShell, generated
 * from the command tree itself, so it always matches the commands and options there are.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { z } from "zod";
import { check } from "./_common.ts";

/** A command's words: its subcommands (with descriptions) and its long options. */
interface Node {
  path: string[];
  commands: { name: string; description: string }[];
  options: { flag: string; description: string }[];
}

// deno-lint-ignore no-explicit-any
type AnyCommand = Command<any, any, any>;

function walk(command: AnyCommand, path: string[], out: Node[]): void {
  const visible = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  out.push({
    path,
    commands: visible.map((c) => ({ name: c.name(), description: c.description().split("\n")[0] })),
    options: command.options
      .filter((o) => o.long && !o.hidden)
      .map((o) => ({ flag: o.long!, description: o.description })),
  });
  for (const child of visible) walk(child, [...path, child.name()], out);
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function bash(nodes: Node[]): string {
  const cases = nodes.map((n) =>
    `    ${quote(n.path.join(" "))}) words=${
      quote([...n.commands.map((c) => c.name), ...n.options.map((o) => o.flag), "--help"].join(" "))
    } ;;`
  ).join("\n");
  return `# winipc completion for bash: source <(winipc completions bash)
_winipc() {
  local path="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case "\${path:+$path }$word" in
${nodes.map((n) => `      ${quote(n.path.join(" "))}) ;&`).join("\n")}
      __winipc_never) path="\${path:+$path }$word" ;;
    esac
  done
  local words=""
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "\${COMP_WORDS[COMP_CWORD]}"))
}
complete -F _winipc winipc
`;
}

function zsh(nodes: Node[]): string {
  return `#compdef winipc
# winipc completion for zsh: winipc completions zsh > "\${fpath[1]}/_winipc"
_winipc() {
  local -a args
  local path="\${(j: :)\${(@)words[2,CURRENT-1]:#-*}}"
  case "$path" in
${
    nodes.map((n) =>
      `    ${quote(n.path.join(" "))}) args=(${
        [
          ...n.commands.map((c) => quote(`${c.name}:${c.description}`)),
          ...n.options.map((o) => quote(`${o.flag}:${o.description}`)),
        ].join(" ")
      }) ;;`
    ).join("\n")
  }
  esac
  _describe 'winipc' args
}
_winipc "$@"
`;
}

function fish(nodes: Node[]): string {
  const lines = [
    "# winipc completion for fish: winipc completions fish | source",
    "complete -c winipc -f",
  ];
  for (const n of nodes) {
    const condition = n.path.length === 0
      ? "__fish_use_subcommand"
      : `__fish_seen_subcommand_from ${n.path.at(-1)}`;
    for (const c of n.commands) {
      lines.push(
        `complete -c winipc -n ${quote(condition)} -a ${quote(c.name)} -d ${quote(c.description)}`,
      );
    }
    for (const o of n.options) {
      lines.push(
        `complete -c winipc -n ${quote(condition)} -l ${quote(o.flag.slice(2))} -d ${
          quote(o.description)
        }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

function powershell(nodes: Node[]): string {
  const table = nodes.map((n) =>
    `  ${quote(n.path.join(" "))} = @(${
      [...n.commands.map((c) => c.name), ...n.options.map((o) => o.flag)].map(quote).join(", ")
    })`
  ).join("\n");
  return `# winipc completion for PowerShell: winipc completions powershell | Out-String | Invoke-Expression
$winipcWords = @{
${table}
}
Register-ArgumentCompleter -Native -CommandName winipc -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() } |
    Where-Object { -not $_.StartsWith('-') -and $_ -ne $wordToComplete })
  $path = ($words -join ' ')
  while (-not $winipcWords.ContainsKey($path) -and $path.Length -gt 0) {
    $path = ($path -split ' ' | Select-Object -SkipLast 1) -join ' '
  }
  $winipcWords[$path] | Where-Object { $_ -like "$wordToComplete*" } |
    ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
`;
}

const shells = { bash, zsh, fish, powershell } as const;

/**
 * Adds `completions` to the program.
 *
 * @param program The root command.
 */
export function registerCompletions(program: Command): void {
  program.command("completions")
    .description("print a shell completion script (bash, zsh, fish, powershell)")
    .argument("<shell>", "bash, zsh, fish or powershell")
    .addHelpText(
      "after",
      "\nExamples:\n  source <(winipc completions bash)\n  winipc completions fish | source\n  winipc completions powershell | Out-String | Invoke-Expression",
    )
    .action((rawShell) => {
      const shell = check(
        z.enum(["bash", "zsh", "fish", "powershell"], {
          error: "must be bash, zsh, fish or powershell",
        }),
        rawShell,
        "<shell>",
      );
      const nodes: Node[] = [];
      walk(program as AnyCommand, [], nodes);
      Deno.stdout.writeSync(new TextEncoder().encode(shells[shell](nodes)));
    });
}
