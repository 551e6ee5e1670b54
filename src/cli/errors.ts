/**
 * The error vocabulary of the CLI. Every command throws one of these (or lets an unexpected error escape);
 * `exitCodeFor` in main.ts is the single place that turns them into exit codes.
 */

export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the user can act on: `message` names what failed, `hint` says what to do next. */
export class CodemateError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CodemateError';
    this.hint = options.hint;
  }
}

/** Bad flags, arguments or configuration: exit code 2. */
export class UsageError extends CodemateError {
  constructor(message: string, options: { hint?: string } = {}) {
    super(message, options);
    this.name = 'UsageError';
  }
}
