import { describe, expect, it } from 'vitest';
import { budgetExhausted, tokensCounted } from '../../../src/api/codemate.js';
import {
  checkRunFor,
  commitStatusFor,
  parseReportLine,
  sameUsage,
  sessionStateOf,
  usageAfter,
  usageGrowth,
  writeDelayMs,
  type ReportedUsage,
} from '../../../src/operator/sessionReport.js';

const now = new Date('2026-11-29T12:00:00Z');
const report = (over: Partial<ReportedUsage> = {}): ReportedUsage => ({
  inputTokens: 100,
  outputTokens: 20,
  cacheReadTokens: 300,
  cacheCreationTokens: 5,
  turns: 2,
  workspace: 'ws-1',
  ...over,
});

describe('parseReportLine', () => {
  it('reads the lines of codemate-report --watch', () => {
    expect(parseReportLine('codemate-report ready 1')).toEqual({ kind: 'ready', version: 1 });
    expect(parseReportLine('state busy')).toEqual({ kind: 'state', state: 'busy' });
    expect(parseReportLine('usage 100 20 300 5 2 ws-1')).toEqual({ kind: 'usage', usage: report() });
    expect(parseReportLine('tick')).toEqual({ kind: 'tick' });
    expect(parseReportLine('usage 1 2 three')).toEqual({ kind: 'other', line: 'usage 1 2 three' });
  });
});

describe('sessionStateOf', () => {
  it('says working, idle or blocked, and nothing before the session started', () => {
    expect(sessionStateOf('busy')).toBe('working');
    expect(sessionStateOf('ready')).toBe('idle');
    expect(sessionStateOf('idle')).toBe('idle');
    expect(sessionStateOf('blocked')).toBe('blocked');
    expect(sessionStateOf('starting')).toBeUndefined();
  });
});

describe('usageAfter', () => {
  it('records the counts of the workspace', () => {
    expect(usageAfter(undefined, report(), now)).toEqual({
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 300,
      cacheCreationTokens: 5,
      turns: 2,
      workspace: 'ws-1',
      updatedAt: now.toISOString(),
    });
  });

  it('carries the totals over to a new workspace, so the usage never goes back', () => {
    const first = usageAfter(undefined, report(), now);
    const second = usageAfter(
      first,
      report({
        inputTokens: 10,
        outputTokens: 1,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
        turns: 1,
        workspace: 'ws-2',
      }),
      now,
    );
    expect(second).toMatchObject({
      inputTokens: 110,
      outputTokens: 21,
      cacheReadTokens: 300,
      turns: 3,
      workspace: 'ws-2',
    });
    expect(second.carried).toEqual({
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 300,
      cacheCreationTokens: 5,
      turns: 2,
    });
    // The same workspace later: its counts on top of what was carried, once.
    const third = usageAfter(
      second,
      report({
        inputTokens: 50,
        outputTokens: 4,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
        turns: 2,
        workspace: 'ws-2',
      }),
      now,
    );
    expect(third).toMatchObject({ inputTokens: 150, outputTokens: 24, turns: 4 });
  });

  it('is the same usage when only the time differs, and grows by what the turn used', () => {
    const a = usageAfter(undefined, report(), now);
    const b = usageAfter(a, report(), new Date(now.getTime() + 5000));
    expect(sameUsage(a, b)).toBe(true);
    const c = usageAfter(a, report({ inputTokens: 130, turns: 3 }), now);
    expect(sameUsage(a, c)).toBe(false);
    expect(usageGrowth(a, c)).toEqual({
      inputTokens: 30,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      turns: 1,
    });
  });
});

describe('the budget', () => {
  it('counts input, cache creation and output tokens, not cache reads', () => {
    const usage = usageAfter(undefined, report(), now);
    expect(tokensCounted(usage)).toBe(125);
    const spec = { budget: { maxTokens: 125 } };
    expect(budgetExhausted({ spec, status: { usage } })).toEqual({ used: 125, max: 125, period: 'total' });
    expect(budgetExhausted({ spec: { budget: { maxTokens: 126 } }, status: { usage } })).toBeUndefined();
    expect(budgetExhausted({ spec: {}, status: { usage } })).toBeUndefined();
  });
});

describe('the daily budget', () => {
  const day = { date: '2026-11-29', tokens: 400 };
  it("counts today's tokens, carried over a new workspace of the same day, and not another day's", () => {
    const first = usageAfter(undefined, report(), now, day);
    expect(first.today).toEqual({ date: '2026-11-29', tokens: 400 });
    const moved = usageAfter(first, report({ workspace: 'ws-2' }), now, { date: '2026-11-29', tokens: 50 });
    expect(moved.today).toEqual({ date: '2026-11-29', tokens: 450, carried: 400 });
    const same = usageAfter(moved, report({ workspace: 'ws-2' }), now, { date: '2026-11-29', tokens: 70 });
    expect(same.today).toEqual({ date: '2026-11-29', tokens: 470, carried: 400 });
    const next = usageAfter(same, report({ workspace: 'ws-2' }), now, { date: '2026-11-30', tokens: 0 });
    expect(next.today).toEqual({ date: '2026-11-30', tokens: 0 });
    expect(sameUsage(same, next)).toBe(false);
  });

  it('is spent for the rest of the UTC day it counts', () => {
    const usage = usageAfter(undefined, report(), now, day);
    const spec = { budget: { maxTokensPerDay: 400 } };
    expect(budgetExhausted({ spec, status: { usage } }, now)).toEqual({
      used: 400,
      max: 400,
      period: 'day',
      date: '2026-11-29',
    });
    expect(budgetExhausted({ spec, status: { usage } }, new Date('2026-11-30T00:00:01Z'))).toBeUndefined();
    expect(
      budgetExhausted({ spec: { budget: { maxTokensPerDay: 401 } }, status: { usage } }, now),
    ).toBeUndefined();
  });

  it('reads the day line', () => {
    expect(parseReportLine('day 2026-11-29 400')).toEqual({ kind: 'day', day });
  });
});

describe('commitStatusFor', () => {
  const cm = { name: 'pr-7', namespace: 'team' };
  it("maps each state to GitHub's, with the last message and how to attach", () => {
    expect(commitStatusFor('working', cm, 'pr-7-ic-12')).toEqual({
      state: 'pending',
      context: 'codemate/session',
      description: 'working: a turn is running; last: pr-7-ic-12 · codemate attach pr-7 -n team',
    });
    expect(commitStatusFor('idle', cm, undefined).state).toBe('success');
    expect(commitStatusFor('blocked', cm, undefined).state).toBe('failure');
    expect(commitStatusFor('failed', cm, undefined).state).toBe('error');
    expect(commitStatusFor('suspended', cm, undefined).description).toBe(
      'suspended · codemate attach pr-7 -n team',
    );
  });

  it('stays within the 140 characters GitHub allows', () => {
    const long = { name: 'x'.repeat(60), namespace: 'y'.repeat(60) };
    for (const state of ['working', 'idle', 'blocked'] as const) {
      const d = commitStatusFor(state, long, 'z'.repeat(200)).description;
      expect(d.length).toBeLessThanOrEqual(140);
      expect(d.startsWith(state)).toBe(true);
    }
  });
});

describe('checkRunFor', () => {
  const cm = { name: 'pr-7', namespace: 'team' };
  const pr = 'https://github.com/o/r/pull/7';
  it('is in progress only while a turn runs, completed in every other state', () => {
    expect(checkRunFor('working', cm, 'pr-7-ic-12', pr)).toEqual({
      name: 'codemate/session',
      status: 'in_progress',
      title: 'working: a turn is running',
      summary: 'Last message handled: `pr-7-ic-12`\n\nAttach to the session: `codemate attach pr-7 -n team`',
      detailsUrl: pr,
    });
    const conclusion = (state: Parameters<typeof checkRunFor>[0]) => {
      const run = checkRunFor(state, cm, undefined, pr);
      expect(run.status).toBe('completed');
      return run.conclusion;
    };
    expect(conclusion('idle')).toBe('success');
    expect(conclusion('blocked')).toBe('action_required');
    expect(conclusion('failed')).toBe('failure');
    expect(conclusion('suspended')).toBe('neutral');
    expect(checkRunFor('suspended', cm, undefined, pr).summary).toBe(
      'Attach to the session: `codemate attach pr-7 -n team`',
    );
  });

  it('holds a merge back exactly when the commit status would', () => {
    // GitHub's required checks pass with a success, neutral or skipped check run, and a success status.
    const passes = (state: Parameters<typeof checkRunFor>[0]) => {
      const run = checkRunFor(state, cm, undefined, pr);
      return run.status === 'completed' && ['success', 'neutral', 'skipped'].includes(run.conclusion!);
    };
    for (const state of ['working', 'idle', 'blocked', 'failed', 'suspended'] as const)
      expect(passes(state), state).toBe(commitStatusFor(state, cm, undefined).state === 'success');
  });

  it('is a failure, not action_required, for a dialog when there is no link to give', () => {
    const run = checkRunFor('blocked', cm, undefined, undefined);
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(run.detailsUrl).toBeUndefined();
  });
});

describe('writeDelayMs', () => {
  it('writes a change at once, and at most once per interval under flapping', () => {
    expect(writeDelayMs(undefined, 1000, 10_000)).toBe(0);
    expect(writeDelayMs(0, 10_000, 10_000)).toBe(0);
    expect(writeDelayMs(0, 4000, 10_000)).toBe(6000);
  });
});
