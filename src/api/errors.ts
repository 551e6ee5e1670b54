/**
 * The error vocabulary every layer shares. Commands, servers and the sandbox throw one of these (or let an
 * unexpected error escape); the CLI's `exitCodeFor` is the single place that turns them into exit codes.
 */

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
