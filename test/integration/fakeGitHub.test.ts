import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionalCache, GitHub } from '../../src/clients/github.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';

const gh = new FakeGitHub();
const auth = { authorization: 'token t-owner' };
const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${gh.url}${path}`, { headers: { ...auth, ...headers } });

beforeAll(async () => {
  await gh.start();
  gh.addToken('t-owner', { login: 'owner', id: 1 });
  gh.addPull('o', 'r', 5, 'feature');
});
afterAll(() => gh.stop());

describe('the fake GitHub', () => {
  it('answers in GitHub’s schema, with ETags whose 304s are not charged', async () => {
    gh.comment('o', 'r', 5, { login: 'alice', id: 2 }, 'hello', 'MEMBER');
    const first = await get('/repos/o/r/issues/5/comments');
    expect(first.status).toBe(200);
    const [comment] = (await first.json()) as Array<{
      body: string;
      user: { login: string };
      author_association: string;
    }>;
    expect(comment).toMatchObject({ body: 'hello', user: { login: 'alice' }, author_association: 'MEMBER' });
    expect(first.headers.get('x-ratelimit-remaining')).toBe('4999');
    const etag = first.headers.get('etag')!;
    const again = await get('/repos/o/r/issues/5/comments', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(gh.requests.at(-1)).toMatchObject({ status: 304, charged: false });
    gh.comment('o', 'r', 5, { login: 'bob', id: 3 }, 'more');
    expect((await get('/repos/o/r/issues/5/comments', { 'if-none-match': etag })).status).toBe(200);
  });

  it('serves pulls, reviews, review comments, the user, and reactions', async () => {
    gh.review('o', 'r', 5, { login: 'alice', id: 2 }, 'needs work');
    const rc = gh.reviewComment('o', 'r', 5, { login: 'alice', id: 2 }, 'nit');
    for (const path of [
      '/user',
      '/repos/o/r/pulls/5',
      '/repos/o/r/pulls?head=o:feature&state=all',
      '/repos/o/r/pulls/5/reviews',
      '/repos/o/r/pulls/5/comments',
    ]) {
      expect((await get(path)).status, path).toBe(200);
    }
    const react = () =>
      fetch(`${gh.url}/repos/o/r/pulls/comments/${rc}/reactions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'eyes' }),
      });
    expect((await react()).status).toBe(201);
    expect((await react()).status).toBe(200);
    expect(gh.reactions).toEqual([{ subject: 'review_comment', id: rc, content: 'eyes', by: 'owner' }]);
  });

  it('holds reviews with comments in threads, replies, ranges and outdated lines, read through the client', async () => {
    gh.addPull('o', 'r', 6, 'threads');
    gh.addToken('t-alice', { login: 'alice', id: 2 });
    const alice = { login: 'alice', id: 2 };
    const first = gh.submitReview('o', 'r', 6, alice, {
      body: 'Two things.',
      state: 'CHANGES_REQUESTED',
      comments: [
        { body: 'Rename it.', path: 'src/a.ts', line: 12, startLine: 10, diffHunk: '@@ -1 +1 @@\n+a' },
        { body: 'Old code.', path: 'src/b.ts', line: 3, outdated: true },
        { body: 'About this file.', path: 'docs/c.md', file: true },
      ],
    });
    const reply = gh.reviewComment('o', 'r', 6, { login: 'owner', id: 1 }, 'Done.', 'OWNER', {
      inReplyTo: first.commentIds[0]!,
    });
    const client = (token: string) => new GitHub({ token, baseUrl: gh.url, cache: new ConditionalCache() });
    const owner = client('t-owner');
    const reviews = await owner.reviews('o', 'r', 6);
    expect(reviews.map((r) => [r.id, r.state, r.body])).toEqual([
      [first.reviewId, 'CHANGES_REQUESTED', 'Two things.'],
      // A lone reply gets its own COMMENTED review, without a body.
      [gh.reviewIdOf('o', 'r', 6, reply), 'COMMENTED', ''],
    ]);
    const comments = await owner.reviewComments('o', 'r', 6);
    expect(
      comments.map((c) => [
        c.id,
        c.reviewId,
        c.inReplyTo,
        c.path,
        c.startLine,
        c.line,
        c.originalLine,
        c.subjectType,
      ]),
    ).toEqual([
      [first.commentIds[0], first.reviewId, null, 'src/a.ts', 10, 12, 12, 'line'],
      [first.commentIds[1], first.reviewId, null, 'src/b.ts', null, null, 3, 'line'],
      [first.commentIds[2], first.reviewId, null, 'docs/c.md', null, null, null, 'file'],
      // A reply sits where the comment it answers does.
      [reply, gh.reviewIdOf('o', 'r', 6, reply), first.commentIds[0], 'src/a.ts', 10, 12, 12, 'line'],
    ]);
    expect(comments[0]!.diffHunk).toBe('@@ -1 +1 @@\n+a');

    // A pending review and its comments are seen by their author only, until submitted.
    const pending = gh.submitReview('o', 'r', 6, alice, {
      state: 'PENDING',
      comments: [{ body: 'Draft.', path: 'src/a.ts', line: 1 }],
    });
    expect((await owner.reviews('o', 'r', 6)).map((r) => r.id)).not.toContain(pending.reviewId);
    expect((await owner.reviewComments('o', 'r', 6)).map((c) => c.id)).not.toContain(pending.commentIds[0]);
    expect((await client('t-alice').reviews('o', 'r', 6)).find((r) => r.id === pending.reviewId)?.state).toBe(
      'PENDING',
    );
    gh.submitPending('o', 'r', 6, pending.reviewId);
    expect((await owner.reviews('o', 'r', 6)).find((r) => r.id === pending.reviewId)?.state).toBe(
      'COMMENTED',
    );
    expect((await owner.reviewComments('o', 'r', 6)).map((c) => c.id)).toContain(pending.commentIds[0]);
  });

  it('injects rate limits and server errors, and refuses bad tokens', async () => {
    gh.fail({ kind: 'rateLimit', status: 403, resetInSeconds: 2 });
    const limited = await get('/user');
    expect(limited.status).toBe(403);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    gh.fail({ kind: 'status', status: 502 });
    expect((await get('/user')).status).toBe(502);
    expect((await fetch(`${gh.url}/user`, { headers: { authorization: 'token nope' } })).status).toBe(401);
  });

  it('serves workflow runs, their attempts, jobs, check suites and check runs on a head, and the draft flag', async () => {
    gh.addPull('o', 'r', 6, 'ci-branch', { draft: true });
    const pull = async () =>
      (await (await get('/repos/o/r/pulls/6')).json()) as { draft: boolean; head: { sha: string } };
    expect(await pull()).toMatchObject({ draft: true, head: { sha: gh.headSha('o', 'r', 6) } });
    gh.markReady('o', 'r', 6);
    expect((await pull()).draft).toBe(false);

    const sha = gh.headSha('o', 'r', 6);
    const { runId, jobIds } = gh.failRun('o', 'r', 6, { job: 'unit', log: 'boom\n' });
    const runs = (await (await get(`/repos/o/r/actions/runs?head_sha=${sha}`)).json()) as {
      workflow_runs: Array<{ id: number; run_attempt: number; conclusion: string; head_sha: string }>;
    };
    expect(runs.workflow_runs).toEqual([
      expect.objectContaining({ id: runId, run_attempt: 1, conclusion: 'failure', head_sha: sha }),
    ]);
    const [rerunJob] = gh.rerun(runId, [{ name: 'unit', conclusion: 'success' }]);
    const jobs = async (attempt: number) =>
      (
        (await (await get(`/repos/o/r/actions/runs/${runId}/attempts/${attempt}/jobs`)).json()) as {
          jobs: Array<{ id: number; name: string; conclusion: string; steps: Array<{ conclusion: string }> }>;
        }
      ).jobs;
    expect(await jobs(1)).toEqual([
      expect.objectContaining({ id: jobIds[0], name: 'unit', conclusion: 'failure' }),
    ]);
    expect(await jobs(2)).toEqual([expect.objectContaining({ id: rerunJob, conclusion: 'success' })]);
    const suites = (await (await get(`/repos/o/r/commits/${sha}/check-suites`)).json()) as {
      check_suites: Array<{ conclusion: string }>;
    };
    expect(suites.check_suites.map((c) => c.conclusion)).toEqual(['failure', 'success']);
    const checkRuns = (await (await get(`/repos/o/r/commits/${sha}/check-runs`)).json()) as {
      check_runs: Array<{ id: number; conclusion: string }>;
    };
    expect(checkRuns.check_runs).toEqual([expect.objectContaining({ id: rerunJob, conclusion: 'success' })]);
    expect((await get('/repos/o/r/actions/workflows')).status).toBe(200);

    // The job log: a charged 302 to a signed URL, which needs no token.
    const redirect = await fetch(`${gh.url}/repos/o/r/actions/jobs/${jobIds[0]}/logs`, {
      headers: auth,
      redirect: 'manual',
    });
    expect(redirect.status).toBe(302);
    expect(gh.requests.at(-1)).toMatchObject({ status: 302, charged: true });
    const location = redirect.headers.get('location')!;
    expect(await (await fetch(location)).text()).toBe('boom\n');
    gh.push('o', 'r', 6);
    expect(gh.headSha('o', 'r', 6)).not.toBe(sha);
  });

  it('is read by the GitHub client: runs, jobs and log tails, with a free 304 on an unchanged head', async () => {
    gh.addPull('o', 'r', 8, 'client-branch');
    const client = new GitHub({ token: 't-owner', baseUrl: gh.url, cache: new ConditionalCache() });
    const sha = (await client.pullRequest('o', 'r', 8)).headSha;
    const log = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');
    const { runId, jobIds } = gh.runWorkflow('o', 'r', 8, 'Build', [
      { name: 'lint', conclusion: 'success', log: 'fine' },
      { name: 'test', conclusion: 'failure', log, failedStep: 'Run npm test' },
    ]);
    expect(await client.workflowRuns('o', 'r', sha)).toEqual([
      expect.objectContaining({
        id: runId,
        name: 'Build',
        runAttempt: 1,
        conclusion: 'failure',
        headSha: sha,
      }),
    ]);
    const charged = gh.charged();
    await client.workflowRuns('o', 'r', sha);
    expect(gh.charged()).toBe(charged);
    expect(gh.requests.at(-1)).toMatchObject({ status: 304, charged: false });
    expect(
      (await client.workflowJobs('o', 'r', runId, 1)).map((j) => [j.name, j.conclusion, j.failedSteps]),
    ).toEqual([
      ['lint', 'success', []],
      ['test', 'failure', ['Run npm test']],
    ]);
    const tail = await client.jobLogTail('o', 'r', jobIds[1]!, 1000);
    expect(tail.truncatedHead).toBe(true);
    expect(tail.text.length).toBeLessThanOrEqual(1000);
    expect(tail.text.endsWith('line 4999')).toBe(true);
    expect(await client.jobLogTail('o', 'r', jobIds[0]!, 1000)).toEqual({
      text: 'fine',
      truncatedHead: false,
    });
    expect(await client.workflowCount('o', 'r')).toBeGreaterThan(0);
    expect(await client.workflowCount('o', 'none')).toBe(0);
  });

  it('answers 404 for a job log that has expired', async () => {
    const client = new GitHub({ token: 't-owner', baseUrl: gh.url, cache: new ConditionalCache() });
    const { jobIds } = gh.failRun('o', 'r', 8, { job: 'gone' });
    await expect(client.jobLogTail('o', 'r', jobIds[0]!, 1000)).rejects.toThrow(/404/);
  });
});
