import { describe, expect, it } from 'vitest';
import { errorPolicy, PermanentError, TemporaryError } from '../../../src/runtime/errors.js';

const now = new Date('2026-01-01T00:00:00Z');

describe('errorPolicy', () => {
  it.each([
    ['a temporary error without a time: the key backoff', new TemporaryError('busy'), { kind: 'temporary' }],
    [
      'a temporary error with a delay: that delay',
      new TemporaryError('busy', { retryAfterMs: 1500 }),
      { kind: 'temporary', retryAfterMs: 1500 },
    ],
    [
      'a temporary error with a time: until then',
      new TemporaryError('busy', { at: new Date(now.getTime() + 4000) }),
      { kind: 'temporary', retryAfterMs: 4000 },
    ],
    [
      'a temporary error whose time has passed: at once',
      new TemporaryError('busy', { at: new Date(now.getTime() - 4000) }),
      { kind: 'temporary', retryAfterMs: 0 },
    ],
    ['a permanent error: never again', new PermanentError('invalid'), { kind: 'permanent' }],
    ['any other error: unexpected', new Error('socket hang up'), { kind: 'unexpected' }],
    ['a thrown non-error: unexpected', 'boom', { kind: 'unexpected' }],
  ])('%s', (_name, error, decision) => {
    expect(errorPolicy(error, now)).toEqual(decision);
  });

  it('keeps the cause and the name', () => {
    const cause = new Error('409');
    const error = new TemporaryError('behind', { retryAfterMs: 1, cause });
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('TemporaryError');
    expect(new PermanentError('no').name).toBe('PermanentError');
  });
});
