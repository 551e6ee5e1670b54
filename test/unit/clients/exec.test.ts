import { describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../../src/clients/exec.js';

describe('exitCodeOf', () => {
  it("reads success, a kubelet ExitCode cause, and kwok's Go-style message", () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '42' }] },
      }),
    ).toBe(42);
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'InternalError',
        message:
          'Internal error occurred: error executing command in container: cmd wait: sh -c exit 3: exit status 3',
      }),
    ).toBe(3);
  });

  it('returns -1 when no exit code can be known', () => {
    expect(exitCodeOf({ status: 'Failure', message: 'container not found' })).toBe(-1);
  });
});
