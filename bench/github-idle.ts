/**
 * Benchmark: GitHub requests charged against the rate limit per idle CodeMate-hour. An idle pull request
 * is polled every 60 s (the default), so an hour is 60 polls of the same four requests the poller makes:
 * the pull request and its issue comments, review comments and reviews.
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

async function hour(cache: ConditionalCache): Promise<{ charged: number; cached: number; requests: number }> {
  const gh = new FakeGitHub();
  await gh.start();
  gh.addToken('token', { login: 'codemate-bot', id: 1 });
  gh.addPull('o', 'r', 7, 'feature');
  gh.comment('o', 'r', 7, { login: 'alice', id: 2 }, 'an old comment');
  gh.reviewComment('o', 'r', 7, { login: 'alice', id: 2 }, 'an old review comment');
  gh.review('o', 'r', 7, { login: 'alice', id: 2 }, 'an old review');
  const client = new GitHub({ token: 'token', baseUrl: gh.url, cache });
  for (let i = 0; i < polls; i++) {
    await client.pullRequest('o', 'r', 7);
    await client.issueComments('o', 'r', 7);
    await client.reviewComments('o', 'r', 7);
    await client.reviews('o', 'r', 7);
  }
  await gh.stop();
  const charged = gh.charged();
  return { charged, cached: gh.requests.length - charged, requests: gh.requests.length };
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
  steadyStateChargedPerHour: etag.charged - 4,
};
console.log(JSON.stringify(results, null, 2));
const out = path.join(process.cwd(), 'bench', 'results', 'github-idle.json');
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
