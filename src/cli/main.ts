import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { readEnv, type Env } from '../config/index.js';
import { registerCompletion } from './commands/completion.js';
import { registerDev } from './commands/dev.js';
import { registerOperator } from './commands/operator.js';
import { registerSessions } from './commands/sessions.js';
import { registerWebhook } from './commands/webhook.js';
import { CodemateError, ExitCode, UsageError } from './errors.js';
import { createOutput, type Output } from './output.js';

export interface CliDeps {
  env: Env;
  out: Output;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(deps: CliDeps): Command {
  const program = new Command('codemate')
    .description('Kubernetes-native Claude Code sessions for branches and pull requests.')
    .version(packageVersion(), '-v, --version', 'print the codemate version')
    .helpOption('-h, --help', 'show help for a command')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context to use')
    .option('-n, --namespace <ns>', "namespace (default: the context's)")
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => deps.out.stdout.write(s),
      writeErr: (s) => deps.out.stderr.write(s),
      outputError: (s, write) => write(deps.out.color.red(s)),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ codemate create --repo https://github.com/acme/api.git --pr 123 --wait
  $ codemate list
  $ codemate inject pr-123 "Please rebase on main"
  $ codemate dev up                 # start a local Kubernetes sandbox
  $ eval "$(codemate dev up)"       # ...and point kubectl and codemate at it
  $ codemate dev status             # what is running
  $ codemate dev down               # stop everything the sandbox started

Docs: docs/README.md`,
    );
  registerSessions(program, deps);
  registerDev(program, deps);
  registerOperator(program, deps);
  registerWebhook(program, deps);
  registerCompletion(program, deps);
  for (const command of program.commands) command.exitOverride().configureOutput(program.configureOutput());
  return program;
}

/** The single place that turns errors into exit codes and messages. */
export function exitCodeFor(error: unknown, out: Output): ExitCode {
  if (error instanceof CommanderError) {
    if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code))
      return ExitCode.ok;
    // commander has already printed its message.
    return ExitCode.usage;
  }
  if (error instanceof CodemateError) {
    out.info(`${out.color.red('error:')} ${error.message}`);
    if (error.hint) out.info(`${out.color.dim('hint:')} ${error.hint}`);
    return error instanceof UsageError ? ExitCode.usage : ExitCode.failure;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  out.info(`${out.color.red('error:')} unexpected failure: ${message}`);
  out.info('hint: this is a bug in codemate; please report it with the command you ran');
  return ExitCode.failure;
}

export async function run(argv: string[], deps?: Partial<CliDeps>): Promise<number> {
  let out = deps?.out ?? createOutput();
  try {
    const env = deps?.env ?? readEnv();
    out = deps?.out ?? createOutput({ noColor: env.NO_COLOR !== undefined });
    await buildProgram({ env, out }).parseAsync(argv);
    return ExitCode.ok;
  } catch (error) {
    return exitCodeFor(error, out);
  }
}
