/**
 * The CLI's exit codes. The errors themselves live in the shared floor (src/api/errors.ts) so that config
 * and the servers can throw them too; they are re-exported here for the commands.
 */
export { CodemateError, UsageError } from '../api/errors.js';

export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
