/**
 * What a failed reconcile is worth: kopf's TemporaryError and PermanentError, and kube-rs's error_policy.
 * A reconciler throws a TemporaryError when it knows the failure passes (and maybe when), a PermanentError
 * when trying again cannot help until something changes (an event or the resync brings the key back).
 * Anything else is unexpected: retried with the key's exponential backoff, and reported.
 */
export class TemporaryError extends Error {
  /** How long to wait before the next attempt; without it (and without `at`), the key's backoff. */
  readonly retryAfterMs: number | undefined;
  /** When to try again, e.g. a time the reconciler recorded in status. */
  readonly at: Date | undefined;

  constructor(message: string, options: { retryAfterMs?: number; at?: Date; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TemporaryError';
    this.retryAfterMs = options.retryAfterMs;
    this.at = options.at;
  }
}

export class PermanentError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PermanentError';
  }
}

export type ErrorKind = 'temporary' | 'permanent' | 'unexpected';

/** What the runtime does with a key whose reconcile failed. */
export type ErrorDecision =
  /** Try again after retryAfterMs, or after the key's backoff when it is undefined. */
  | { kind: 'temporary'; retryAfterMs?: number }
  /** Stop retrying; the failure is recorded, and the key's next event or resync tries again. */
  | { kind: 'permanent' }
  /** Try again after the key's exponential backoff. */
  | { kind: 'unexpected' };

/** Decides, from the error alone, how to retry; a reconciler may map its own errors first. */
export type ErrorPolicy = (error: unknown, now: Date) => ErrorDecision;

export const errorPolicy: ErrorPolicy = (error, now) => {
  if (error instanceof PermanentError) return { kind: 'permanent' };
  if (error instanceof TemporaryError) {
    const delay = error.at ? error.at.getTime() - now.getTime() : error.retryAfterMs;
    return delay === undefined
      ? { kind: 'temporary' }
      : { kind: 'temporary', retryAfterMs: Math.max(0, delay) };
  }
  return { kind: 'unexpected' };
};
