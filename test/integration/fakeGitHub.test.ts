import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('injects rate limits and server errors, and refuses bad tokens', async () => {
    gh.fail({ kind: 'rateLimit', status: 403, resetInSeconds: 2 });
    const limited = await get('/user');
    expect(limited.status).toBe(403);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    gh.fail({ kind: 'status', status: 502 });
    expect((await get('/user')).status).toBe(502);
    expect((await fetch(`${gh.url}/user`, { headers: { authorization: 'token nope' } })).status).toBe(401);
  });
});
