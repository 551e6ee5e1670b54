/**
 * Benchmark: GitHub requests charged against the rate limit per idle CodeMate-hour. An idle pull request
 * is polled every 60 s (the default), so an hour is 60 polls of the same requests the poller makes: the
 * pull request (which also carries its draft flag and head), its issue comments and reviews (review
 * comments are listed only when a new review appears: src/operator/poller.ts), and the GitHub Actions
 * runs of its head (src/operator/prMonitor.ts). The head has a failed run
 * that the session was already told of and a passing one, as a pull request waiting for review has; a
 * second pull request, in a repository without CI, stands for the no-CI case, whose runs are not asked
 * for again on the same head.
 *
 * - **Baseline, in the same run:** the same client with its conditional cache turned off (the naive
 *   design).
 * - **Measured:** the same client with its ETag cache, the operator's default.
 *
 * Both go to the fake GitHub, which charges like GitHub: a 304 costs nothing.
 *
 * Usage: npm run bench:github-idle
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConditionalCache, GitHub } from '../src/clients/github.js';
import { FakeGitHub } from '../test/helpers/fakeGitHub.js';

const polls = 60;

async function hour(
  cache: ConditionalCache,
): Promise<{ charged: number; cached: number; requests: number; firstPollCharged: number }> {
  const gh = new FakeGitHub();
  await gh.start();
  gh.addToken('token', { login: 'codemate-bot', id: 1 });
  gh.addPull('o', 'r', 7, 'feature');
  gh.comment('o', 'r', 7, { login: 'alice', id: 2 }, 'an old comment');
  gh.reviewComment('o', 'r', 7, { login: 'alice', id: 2 }, 'an old review comment');
  gh.review('o', 'r', 7, { login: 'alice', id: 2 }, 'an old review');
  gh.failRun('o', 'r', 7, { job: 'test', log: 'an old failure' });
  gh.runWorkflow('o', 'r', 7, 'Lint', [{ name: 'eslint', conclusion: 'success', log: 'ok' }]);
  gh.addPull('o', 'plain', 8, 'feature', { draft: true });
  const client = new GitHub({ token: 'token', baseUrl: gh.url, cache });
  let noCiOn: string | undefined;
  let firstPollCharged = 0;
  for (let i = 0; i < polls; i++) {
    if (i === 1) firstPollCharged = gh.charged();
    const pr = await client.pullRequest('o', 'r', 7);
    await client.issueComments('o', 'r', 7);
    await client.reviews('o', 'r', 7);
    await client.workflowRuns('o', 'r', pr.headSha);
    // The draft pull request of a repository without CI: the pull request every poll, the runs and the
    // workflows once for its head.
    const draft = await client.pullRequest('o', 'plain', 8);
    if (noCiOn !== draft.headSha) {
      const runs = await client.workflowRuns('o', 'plain', draft.headSha);
      if (runs.length === 0 && (await client.workflowCount('o', 'plain')) === 0) noCiOn = draft.headSha;
    }
  }
  await gh.stop();
  const charged = gh.charged();
  return { charged, cached: gh.requests.length - charged, requests: gh.requests.length, firstPollCharged };
}

const naive = await hour(new ConditionalCache(0));
const etag = await hour(new ConditionalCache());
const results = {
  date: new Date().toISOString(),
  node: process.version,
  pollsPerHour: polls,
  naive,
  etag,
  // The first poll of a freshly started operator fills the cache; steady state is the rest of the hour.
  steadyStateChargedPerHour: etag.charged - etag.firstPollCharged,
};
console.log(JSON.stringify(results, null, 2));
const out = path.join(process.cwd(), 'bench', 'results', 'github-idle.json');
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
