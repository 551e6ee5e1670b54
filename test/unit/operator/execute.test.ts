import { describe, expect, it } from 'vitest';
import { statusPatch } from '../../../src/operator/execute.js';

const condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Running',
  message: 'ok',
  lastTransitionTime: 't',
};

describe('statusPatch', () => {
  it('sends only the fields the reconcile owns, never the poller’s', () => {
    const current = {
      phase: 'Running',
      pullRequest: { number: 7, state: 'merged' },
      github: { login: 'bot' },
    };
    // The reconcile ran on a cached copy that still said "open".
    const next = { phase: 'Running', pullRequest: { number: 7, state: 'open' }, lastMonitorCheck: 'old' };
    expect(statusPatch(current, next)).toBeUndefined();
    expect(statusPatch(current, { ...next, phase: 'Completed' })).toEqual({ phase: 'Completed' });
  });

  it('sees no change when only the key order differs', () => {
    const stored = { conditions: [condition], phase: 'Running', podName: 'p' };
    const reordered = {
      podName: 'p',
      phase: 'Running',
      conditions: [Object.fromEntries(Object.entries(condition).reverse())],
    };
    expect(statusPatch(stored, reordered)).toBeUndefined();
  });

  it('sets a dropped field to null', () => {
    expect(statusPatch({ phase: 'Running', podName: 'p' }, { phase: 'Suspended' })).toEqual({
      phase: 'Suspended',
      podName: null,
    });
  });
});
