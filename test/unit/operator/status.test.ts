import { describe, expect, it } from 'vitest';
import type { CodeMateStatus } from '../../../src/api/codemate.js';
import { shouldRecordObservation, wouldChange } from '../../../src/operator/status.js';

describe('wouldChange (a JSON merge patch against the current object)', () => {
  it('is false for a patch that repeats what is there, and for nulls of absent fields', () => {
    const current = { a: 1, b: { c: 'x', d: [1, 2] } };
    expect(wouldChange(current, { a: 1 })).toBe(false);
    expect(wouldChange(current, { b: { c: 'x' } })).toBe(false);
    expect(wouldChange(current, { b: { d: [1, 2] }, e: null })).toBe(false);
    expect(wouldChange(undefined, { e: null, f: { g: null } })).toBe(false);
    expect(wouldChange(current, { a: undefined })).toBe(false);
  });

  it('is true for a new value, a new field, a cleared field or a changed array', () => {
    const current = { a: 1, b: { c: 'x', d: [1, 2] } };
    expect(wouldChange(current, { a: 2 })).toBe(true);
    expect(wouldChange(current, { b: { c: 'y' } })).toBe(true);
    expect(wouldChange(current, { z: false })).toBe(true);
    expect(wouldChange(current, { b: { c: null } })).toBe(true);
    expect(wouldChange(current, { b: { d: [2, 1] } })).toBe(true);
    expect(wouldChange(current, { b: null })).toBe(true);
    expect(wouldChange({ a: 'x' }, { a: { b: 1 } })).toBe(true);
  });
});

describe('shouldRecordObservation', () => {
  const reportMs = 300_000;
  const checked = '2026-11-29T10:00:00.000Z';
  const status: CodeMateStatus = {
    lastMonitorCheck: checked,
    github: { login: 'bot' },
    pullRequest: { number: 7, url: 'u', state: 'open', draft: false, headSha: 'abc' },
  };
  const seen = (overrides: Partial<{ state: string; headSha: string }> = {}, at = checked) => ({
    lastMonitorCheck: at,
    github: { login: 'bot', error: null, errorReason: null, hint: null },
    pullRequest: { number: 7, url: 'u', state: 'open', draft: false, headSha: 'abc', ...overrides },
  });
  const after = (ms: number) => new Date(Date.parse(checked) + ms);

  it('skips an unchanged poll until lastMonitorCheck is reportMs old', () => {
    expect(shouldRecordObservation(status, seen(), after(60_000), reportMs)).toBe(false);
    expect(shouldRecordObservation(status, seen(), after(reportMs - 1), reportMs)).toBe(false);
    expect(shouldRecordObservation(status, seen(), after(reportMs), reportMs)).toBe(true);
  });

  it('writes at once what changed, whatever the age', () => {
    expect(shouldRecordObservation(status, seen({ headSha: 'def' }), after(1000), reportMs)).toBe(true);
    expect(shouldRecordObservation(status, seen({ state: 'closed' }), after(1000), reportMs)).toBe(true);
    const failing = { ...seen(), github: { login: 'bot', error: 'rate limited' } };
    expect(shouldRecordObservation(status, failing, after(1000), reportMs)).toBe(true);
  });

  it('writes the first poll, a status without a valid check time, and every poll with reportMs 0', () => {
    expect(shouldRecordObservation(undefined, seen(), after(0), reportMs)).toBe(true);
    expect(shouldRecordObservation({ ...status, lastMonitorCheck: 'x' }, seen(), after(0), reportMs)).toBe(
      true,
    );
    expect(shouldRecordObservation(status, seen(), after(1), 0)).toBe(true);
  });
});
