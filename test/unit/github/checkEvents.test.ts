import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import { routeEvent } from '../../../src/github/events.js';
import { branchKey, pullRequestKey, type CodeMateLookup } from '../../../src/webhook/codemates.js';
import { handleChecks } from '../../../src/webhook/handlers/checks.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples') as Array<{
  name: string;
  examples: Array<Record<string, unknown> & { action?: string }>;
}>;
const of = (name: string) => examples.find((e) => e.name === name)!.examples.map((p) => structuredClone(p));
type Check = { conclusion: string | null; head_sha: string; pull_requests: Array<{ number: number }> };

describe('check_suite, check_run and workflow_run with real payloads from @octokit/webhooks-examples', () => {
  for (const name of ['check_suite', 'check_run', 'workflow_run'] as const) {
    it(`${name}: a completed failure asks its pull requests' followers to poll; anything else is ignored`, () => {
      for (const payload of of(name)) {
        const check = payload[name] as Check;
        const event = routeEvent(name, payload as never);
        if (payload.action === 'completed' && check.conclusion === 'failure') {
          expect(event).toMatchObject({
            kind: 'checks',
            event: name,
            repository: (payload.repository as { full_name: string }).full_name,
            pullRequests: check.pull_requests.map((p) => p.number),
            headSha: check.head_sha,
            conclusion: 'failure',
          });
        } else {
          expect(event.kind).toBe('ignored');
        }
      }
      // Each event has completed examples; make one of them a failure when none is.
      const completed = of(name).find((p) => p.action === 'completed')!;
      (completed[name] as Check).conclusion = 'timed_out';
      expect(routeEvent(name, completed as never)).toMatchObject({ kind: 'checks', conclusion: 'timed_out' });
      (completed[name] as Check).conclusion = 'success';
      expect(routeEvent(name, completed as never)).toEqual({
        kind: 'ignored',
        reason: `${name} concluded success: not a failure`,
      });
    });
  }

  it('carries the head branch, so a CodeMate that follows only its branch is found too', () => {
    const payload = of('check_run').find((p) => p.action === 'completed')!;
    (payload.check_run as Check).conclusion = 'failure';
    expect(routeEvent('check_run', payload as never)).toMatchObject({
      headRef: 'changes',
      pullRequests: [2],
    });
  });

  it("ignores CodeMate's own check run (App mode): a failed session is not a CI failure", () => {
    const payload = of('check_run').find((p) => p.action === 'completed')!;
    const run = payload.check_run as Check & { name: string };
    run.conclusion = 'failure';
    run.name = 'codemate/session';
    expect(routeEvent('check_run', payload as never)).toMatchObject({ kind: 'ignored' });
    run.name = 'tests';
    expect(routeEvent('check_run', payload as never)).toMatchObject({ kind: 'checks' });
  });
});

describe('handleChecks', () => {
  const followers = (keys: string[]): CodeMateLookup => ({
    synced: true,
    find: (asked) =>
      keys.some((k) => asked.includes(k))
        ? [{ metadata: { name: 'pr-7', namespace: 'ns' } } as unknown as CodeMate]
        : [],
  });
  const event = {
    kind: 'checks' as const,
    event: 'workflow_run' as const,
    repository: 'O/R',
    pullRequests: [7],
    headRef: 'feature',
    headSha: 'a'.repeat(40),
    conclusion: 'failure',
  };
  const now = () => new Date('2026-01-01T00:00:00Z');

  it('sets the poll request annotation on the followers of the pull request or the branch', async () => {
    for (const key of [pullRequestKey('o/r', 7), branchKey('o/r', 'feature')]) {
      const patched: unknown[] = [];
      const answer = await handleChecks(event, {
        codemates: followers([key]),
        kube: { mergePatch: async (o) => void patched.push(o) },
        now,
      });
      expect(answer).toMatchObject({
        status: 200,
        body: { status: 'poll-requested', codemates: ['ns/pr-7'] },
      });
      expect(patched).toEqual([
        expect.objectContaining({
          metadata: {
            name: 'pr-7',
            namespace: 'ns',
            annotations: { 'codemate.io/poll-requested-at': '2026-01-01T00:00:00.000Z' },
          },
        }),
      ]);
    }
  });

  it('ignores a run no CodeMate follows', async () => {
    const answer = await handleChecks(
      { ...event, pullRequests: [] },
      { codemates: followers([pullRequestKey('o/r', 7)]), kube: { mergePatch: async () => {} }, now },
    );
    expect(answer).toMatchObject({
      status: 202,
      body: { status: 'ignored', reason: 'no CodeMate follows O/R or branch feature' },
    });
  });
});
