import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { CliDeps } from '../main.js';

const nameCommands = ['inject', 'attach', 'describe', 'logs', 'delete', 'suspend', 'resume'];

/**
 * A bash completion script generated from the program itself, so it never drifts from the commands and
 * flags. CodeMate names complete from `codemate list -o json` (with jq when present).
 */
export function bashCompletion(program: Command): string {
  const visible = program.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  const words = (c: Command) =>
    [
      ...c.commands.filter((s) => !(s as unknown as { _hidden?: boolean })._hidden).map((s) => s.name()),
      ...c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))),
      '--help',
    ].join(' ');
  const globals = program.options
    .flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)))
    .join(' ');
  const cases = visible
    .map((c) => `    ${[c.name(), ...c.aliases()].join('|')}) opts="${words(c)} ${globals}" ;;`)
    .join('\n');
  return `# bash completion for codemate; load with: source <(codemate completion bash)
_codemate() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local cmd="\${COMP_WORDS[1]}"
  local opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${visible.map((c) => c.name()).join(' ')} ${globals} --help --version" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
  esac
  case "$cmd" in
    ${nameCommands.join('|')})
      if [[ "$cur" != -* ]] && [ "$COMP_CWORD" -eq 2 ]; then
        local names
        names=$(codemate list -o json 2>/dev/null | jq -r '.items[].metadata.name' 2>/dev/null)
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
        return
      fi
      ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _codemate codemate
`;
}

export function registerCompletion(program: Command, deps: CliDeps): void {
  program
    .command('completion')
    .argument('<shell>', 'bash or zsh')
    .description('print a shell completion script')
    .addHelpText(
      'after',
      `
Examples:
  $ source <(codemate completion bash)          # in ~/.bashrc
  $ source <(codemate completion zsh)           # in ~/.zshrc`,
    )
    .action((shell: string) => {
      if (shell === 'bash') deps.out.data(bashCompletion(program));
      else if (shell === 'zsh')
        deps.out.data(`autoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`);
      else throw new UsageError(`unsupported shell "${shell}"; use bash or zsh`);
    });
}
