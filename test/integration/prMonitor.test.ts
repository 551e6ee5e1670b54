/**
 * The poller's CI and draft step against the fake GitHub: which requests it makes, what it creates and
 * what it records, with an in-memory message store (the apiserver's part is the e2e's, test/e2e/ciChecks).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeMate, CodeMateStatus } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import { ConditionalCache, GitHub } from '../../src/clients/github.js';
import { createLogger } from '../../src/observability/log.js';
import { pollChecksAndDraft } from '../../src/operator/prMonitor.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';

const gh = new FakeGitHub();
let client: GitHub;
const repo = { host: 'github.com', owner: 'o', repo: 'r' };
const created = new Map<string, CodeMateMessage>();
const deps = {
  logger: createLogger({ name: 'test', level: 'silent' }),
  hasMessage: (_namespace: string, name: string) => created.has(name),
  create: async (m: CodeMateMessage) => void created.set(m.metadata.name, m),
};
const cm = (number: number, status: CodeMateStatus = {}): CodeMate => ({
  apiVersion: 'codemate.io/v1alpha1',
  kind: 'CodeMate',
  metadata: { name: `pr-${number}`, namespace: 'ns', uid: 'u' },
  spec: {
    repository: { url: 'https://github.com/o/r', pullRequest: number },
    github: { tokenSecretRef: { name: 'gh', key: 'token' } },
    anthropic: { apiKeySecretRef: { name: 'a', key: 'token' } },
  },
  status,
});
const poll = async (codemate: CodeMate) =>
  pollChecksAndDraft(
    deps,
    codemate,
    client,
    repo,
    await client.pullRequest('o', 'r', codemate.spec.repository.pullRequest!),
    '2026-01-01T00:00:00.000Z',
  );

beforeAll(async () => {
  await gh.start();
  gh.addToken('t', { login: 'codemate-bot', id: 1 });
  client = new GitHub({ token: 't', baseUrl: gh.url, cache: new ConditionalCache() });
});
afterAll(() => gh.stop());

describe('pollChecksAndDraft', () => {
  it('finds no CI once per head, asks nothing more on that head, and asks again after a push', async () => {
    gh.addPull('o', 'r', 1, 'no-ci');
    const first = await poll(cm(1));
    const detected = {
      ci: { noneDetectedAt: first.ci!.noneDetectedAt!, noneDetectedOn: first.ci!.noneDetectedOn! },
    };
    expect(first).toEqual({
      ci: { noneDetectedAt: '2026-01-01T00:00:00.000Z', noneDetectedOn: gh.headSha('o', 'r', 1) },
    });
    const seen = gh.requests.length;
    expect(await poll(cm(1, { github: detected }))).toEqual({});
    expect(gh.requests.slice(seen).map((r) => r.path)).toEqual(['/repos/o/r/pulls/1']);

    gh.push('o', 'r', 1);
    const { runId } = gh.failRun('o', 'r', 1, { job: 'first-ci', log: 'added CI, and it fails' });
    const after = await poll(cm(1, { github: detected }));
    expect(after.ci).toMatchObject({
      noneDetectedAt: null,
      noneDetectedOn: null,
      lastNotified: { runId, attempt: 1, message: `pr-1-ci-${runId}-1` },
    });
    expect(created.get(`pr-1-ci-${runId}-1`)?.spec.body).toContain('added CI, and it fails');
  });

  it('creates one message per failed run attempt, none for a passing run, and costs nothing when idle', async () => {
    gh.addPull('o', 'r', 2, 'with-ci');
    const { runId } = gh.failRun('o', 'r', 2, { job: 'unit', log: 'FAIL one' });
    gh.runWorkflow('o', 'r', 2, 'Lint', [{ name: 'eslint', conclusion: 'success', log: 'ok' }]);
    await poll(cm(2));
    expect([...created.keys()].filter((k) => k.startsWith('pr-2-'))).toEqual([`pr-2-ci-${runId}-1`]);

    const charged = gh.charged();
    for (let i = 0; i < 5; i++) expect(await poll(cm(2))).toEqual({});
    expect(gh.charged()).toBe(charged);

    gh.rerun(runId, [{ name: 'unit', conclusion: 'failure', log: 'FAIL two' }]);
    expect((await poll(cm(2))).ci?.lastNotified).toMatchObject({ runId, attempt: 2 });
    expect(created.get(`pr-2-ci-${runId}-2`)?.spec.body).toContain('FAIL two');
    gh.rerun(runId, [{ name: 'unit', conclusion: 'success', log: 'ok' }]);
    expect(await poll(cm(2))).toEqual({});
    expect([...created.keys()].filter((k) => k.startsWith('pr-2-'))).toHaveLength(2);
  });

  it('asks once when the pull request leaves draft', async () => {
    gh.addPull('o', 'r', 3, 'drafty', { draft: true });
    const draft = { pullRequest: { number: 3, draft: true } };
    expect(await poll(cm(3, draft))).not.toHaveProperty('readyForReview');
    gh.markReady('o', 'r', 3);
    const notice = await poll(cm(3, draft));
    expect(notice.readyForReview).toEqual({ message: 'pr-3-rfr-3', notifiedAt: '2026-01-01T00:00:00.000Z' });
    expect(created.get('pr-3-rfr-3')?.spec.source).toMatchObject({
      type: 'ready_for_review',
      pullRequest: 3,
    });
    expect(
      await poll(cm(3, { ...draft, github: { readyForReview: notice.readyForReview } })),
    ).not.toHaveProperty('readyForReview');
  });
});
