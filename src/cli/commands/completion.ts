/**
 * Shell completion. The bash, zsh and fish scripts are thin: on TAB they run `codemate __complete -- WORDS`
 * and offer what it prints. The program itself answers, so completions never drift from the commands
 * and flags, and one implementation serves the three shells. It is a quick path: commander, this file
 * and, for CodeMate names, the light client (clients/kubeHttp.ts); bench/README.md has its latency.
 */
import type { Command, Option } from 'commander';
import { apiVersion, kind } from '../../api/names.js';
import type { KubeObject } from '../../clients/kube.js';
import { connectReader, type ClusterFlags } from '../cluster.js';
import { UsageError } from '../errors.js';
import { nameVerbs } from '../program.js';

/** How long TAB waits for the cluster before it offers nothing: it must not hang the shell. */
const namesTimeoutMs = 1000;

const hidden = (c: Command) => (c as unknown as { _hidden?: boolean })._hidden === true;

/** The command's options and those of every command above it, which commander accepts there too. */
function optionsOf(command: Command): Option[] {
  const options: Option[] = [];
  for (let c: Command | null = command; c; c = c.parent) options.push(...c.options);
  return options;
}

function findOption(command: Command, flag: string): Option | undefined {
  return optionsOf(command).find((o) => o.long === flag || o.short === flag);
}

/**
 * The completions of the last of `words` (the command line after `codemate`; the last word is the one
 * being completed, possibly empty), as the shell should offer them.
 */
export async function complete(program: Command, words: string[]): Promise<string[]> {
  const current = words.at(-1) ?? '';
  const cluster: ClusterFlags = {};
  let command = program;
  let positionals = 0;
  let valueOf: Option | undefined;
  const record = (option: Option, value: string) => {
    const name = option.attributeName();
    if (name === 'namespace' || name === 'context' || name === 'kubeconfig') cluster[name] = value;
  };
  for (const word of words.slice(0, -1)) {
    if (valueOf) {
      record(valueOf, word);
      valueOf = undefined;
    } else if (word.startsWith('-') && word.length > 1) {
      const [flag, value] = word.split(/=(.*)/s, 2) as [string, string | undefined];
      const option = findOption(command, flag);
      if (option && (option.required || option.optional)) {
        if (value === undefined) valueOf = option;
        else record(option, value);
      }
    } else {
      const sub =
        positionals === 0
          ? command.commands.find((c) => c.name() === word || c.aliases().includes(word))
          : undefined;
      if (sub) command = sub;
      else positionals += 1;
    }
  }
  const matching = (candidates: string[]) => candidates.filter((c) => c.startsWith(current));
  if (valueOf) return valueOf.attributeName() === 'namespace' ? matching(await namespaces(cluster)) : [];
  if (current.startsWith('-')) {
    // --version is the program's option; it means nothing after a command.
    const options = optionsOf(command).filter((o) => command === program || o.long !== '--version');
    const flags = options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
    return matching([...flags, '--help']);
  }
  const subcommands = command.commands.filter((c) => !hidden(c));
  if (subcommands.length > 0 && positionals === 0) return matching(subcommands.map((c) => c.name()));
  if (command.parent === program && nameVerbs.includes(command.name()) && positionals === 0)
    return matching(await codemateNames(cluster));
  return [];
}

/** Names from the cluster, or none when it cannot say in time: a TAB never fails loudly. */
async function listNames(
  cluster: ClusterFlags,
  apiVersion: string,
  kind: string,
  namespaced: boolean,
): Promise<string[]> {
  try {
    const c = await connectReader(cluster, { timeoutMs: namesTimeoutMs });
    const items = await c.kube.list<KubeObject>(apiVersion, kind, namespaced ? c.namespace : undefined);
    return items.map((item) => item.metadata.name ?? '').filter(Boolean);
  } catch {
    return [];
  }
}

const codemateNames = (cluster: ClusterFlags) => listNames(cluster, apiVersion, kind, true);
const namespaces = (cluster: ClusterFlags) => listNames(cluster, 'v1', 'Namespace', false);

const scripts: Record<string, string> = {
  bash: `# bash completion for codemate; load with: source <(codemate completion bash)
_codemate() {
  local IFS=$'\\n'
  COMPREPLY=($(codemate __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -F _codemate codemate
`,
  zsh: `#compdef codemate
# zsh completion for codemate; load with: source <(codemate completion zsh)
_codemate() {
  local -a candidates
  candidates=(\${(f)"$(codemate __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)"})
  compadd -- $candidates
}
if ! (( $+functions[compdef] )); then
  autoload -Uz compinit && compinit
fi
compdef _codemate codemate
`,
  fish: `# fish completion for codemate; load with: codemate completion fish | source
function __codemate_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l current (commandline -ct)
    codemate __complete -- $words "$current" 2>/dev/null
end
complete -c codemate -f -a '(__codemate_complete)'
`,
};

/** The script for `shell`; each one asks `codemate __complete` on TAB. */
export function completionScript(shell: string): string {
  const script = scripts[shell];
  if (!script) throw new UsageError(`unsupported shell "${shell}"; use bash or zsh or fish`);
  return script;
}
