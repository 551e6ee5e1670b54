/**
 * The entry point: builds the program (program.ts), runs it, and is the single place that turns errors
 * into exit codes and messages.
 */
import { CommanderError } from 'commander';
import type { Env } from '../config/index.js';
import { CodemateError, ExitCode, UsageError } from './errors.js';
import { createOutput, type Output } from './output.js';
import { buildProgram } from './program.js';

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

export async function run(argv: string[], deps: { env?: Env; out?: Output } = {}): Promise<number> {
  const out = deps.out ?? createOutput();
  let env: Promise<Env> | undefined;
  const loadEnv = () =>
    (env ??= deps.env ? Promise.resolve(deps.env) : import('../config/index.js').then((c) => c.readEnv()));
  try {
    await buildProgram({ out, env: loadEnv }).parseAsync(argv);
    return ExitCode.ok;
  } catch (error) {
    return exitCodeFor(error, out);
  }
}
