/**
 * The fake GitHub's App endpoints, driven by the real clients: JWTs signed by @octokit/auth-app,
 * installations, scoped installation tokens whose permissions and expiry are enforced (on the REST API
 * and on git over HTTP), and hook deliveries whose redelivery really sends again.
 */
import { execFile } from 'node:child_process';
import { sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionalCache, GitHub } from '../../src/clients/github.js';
import { describeAppError, GitHubApp, sessionPermissions } from '../../src/clients/githubApp.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';
import { makeOrigin, scripts } from '../helpers/session.js';
import { eventually } from '../helpers/cluster.js';

const run = promisify(execFile);
const gh = new FakeGitHub();
let keys: { privateKey: string; otherKey: string };
let installationId: number;
let root: string;
const context = { appId: 77, keySource: 'test key', repository: 'o/r', web: 'https://github.com' };

beforeAll(async () => {
  await gh.start();
  keys = gh.createApp(77, 'codemate-test');
  installationId = gh.installApp('o', ['o/r'], { ...sessionPermissions });
  gh.installApp('ro', ['ro/r'], { contents: 'read', metadata: 'read' });
  root = await mkdtemp(path.join(os.tmpdir(), 'cm-app-'));
  const origin = await makeOrigin(root);
  await mkdir(path.join(root, 'git', 'o'), { recursive: true });
  await rename(origin, path.join(root, 'git', 'o', 'r.git'));
  gh.serveGit(path.join(root, 'git'));
});
afterAll(async () => {
  await gh.stop();
  await rm(root, { recursive: true, force: true });
});

const app = (privateKey = keys.privateKey) =>
  new GitHubApp({ appId: 77, privateKey, keySource: 'test key' }, { baseUrl: gh.url });

describe('the fake GitHub as a GitHub App sees it', () => {
  it('knows the App, its installations, and which one covers a repository', async () => {
    expect(await app().identity()).toMatchObject({ slug: 'codemate-test', botLogin: 'codemate-test[bot]' });
    expect(await app().installationFor('o', 'r')).toBe(installationId);
    const listed = await fetch(`${gh.url}/app/installations`, {
      headers: { authorization: `Bearer ${(await jwt()).token}` },
    });
    const body = (await listed.json()) as Array<{ id: number }>;
    expect(listed.status, JSON.stringify(body)).toBe(200);
    expect(body.map((i) => i.id)).toContain(installationId);
  });

  it('refuses a key that is not the App’s, and a repository it is not installed on', async () => {
    const bad = await app(keys.otherKey)
      .installationFor('o', 'r')
      .catch((e: unknown) => e);
    expect(describeAppError(bad, context)).toMatchObject({ reason: 'AppKeyRejected' });
    const missing = await app()
      .installationFor('elsewhere', 'r')
      .catch((e: unknown) => e);
    expect(describeAppError(missing, { ...context, repository: 'elsewhere/r' })).toMatchObject({
      reason: 'AppNotInstalled',
      message: 'GitHub App 77 is not installed on elsewhere/r',
    });
    const garbage = await app('not a key')
      .identity()
      .catch((e: unknown) => e);
    expect(describeAppError(garbage, context).reason).toBe('AppKeyRejected');
  });

  it('issues scoped tokens, refuses permissions not granted, and lets tokens expire', async () => {
    const token = await app().installationToken(installationId, {
      repositories: ['r'],
      permissions: { ...sessionPermissions },
    });
    expect(token.permissions).toEqual(sessionPermissions);
    const pull = (t: string, repo = 'o/r') =>
      fetch(`${gh.url}/repos/${repo}/pulls?state=all`, { headers: { authorization: `token ${t}` } });
    expect((await pull(token.token)).status).toBe(200);
    expect((await pull(token.token, 'x/y')).status).toBe(404);
    const readOnly = gh.installApp('ro2', ['ro2/r'], { contents: 'read', metadata: 'read' });
    const refused = await app()
      .installationToken(readOnly, { permissions: { ...sessionPermissions } })
      .catch((e: unknown) => e);
    expect(describeAppError(refused, context).reason).toBe('AppPermissionMissing');
    gh.expireInstallationTokens();
    expect((await pull(token.token)).status).toBe(401);
  });

  it('a client on installation tokens renews once on a 401 and retries, keeping its ETags', async () => {
    gh.addPull('o', 'r', 9, 'renew');
    const refreshes: boolean[] = [];
    let current = await app().installationToken(installationId);
    const client = new GitHub({
      baseUrl: gh.url,
      cache: new ConditionalCache(),
      token: {
        key: `installation ${installationId}`,
        token: async ({ refresh = false } = {}) => {
          refreshes.push(refresh);
          if (refresh) current = await app().installationToken(installationId);
          return current.token;
        },
      },
    });
    expect((await client.pullRequest('o', 'r', 9)).headRef).toBe('renew');
    // Revoked before its time: the next request gets 401, a new token, and succeeds; a 304 still.
    gh.expireInstallationTokens();
    expect((await client.pullRequest('o', 'r', 9)).headRef).toBe('renew');
    expect(refreshes).toEqual([false, false, true]);
    // 401, the new token (201), the retry: a 304.
    expect(gh.requests.slice(-3).map((r) => r.status)).toEqual([401, 201, 304]);
    // A token that a refresh cannot mend fails after one retry, not in a loop.
    gh.expireInstallationTokens();
    const stuck = new GitHub({
      baseUrl: gh.url,
      cache: new ConditionalCache(),
      token: { key: 'stuck', token: async () => current.token },
    });
    await expect(stuck.pullRequest('o', 'r', 9)).rejects.toMatchObject({ status: 401 });
  });

  it('serves git over HTTP with the token’s permissions and expiry', async () => {
    const dir = await mkdtemp(path.join(root, 'clone-'));
    const tokenFile = path.join(dir, 'token');
    const env = {
      ...process.env,
      HOME: dir,
      GIT_TERMINAL_PROMPT: '0',
      CODEMATE_GITHUB_TOKEN_FILE: tokenFile,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `credential.${gh.url}.helper`,
      GIT_CONFIG_VALUE_0: `!${path.join(scripts, 'codemate-git-credential')}`,
    };
    const git = (...args: string[]) => run('git', args, { env, cwd: dir });
    const mint = async (permissions: Record<string, string>) =>
      (await app().installationToken(installationId, { repositories: ['r'], permissions })).token;

    await writeFile(tokenFile, await mint({ contents: 'read', metadata: 'read' }));
    await git('clone', '-q', `${gh.url}/git/o/r`, 'r');
    await git(
      '-C',
      'r',
      '-c',
      'user.name=T',
      '-c',
      'user.email=t@x',
      'commit',
      '-q',
      '--allow-empty',
      '-m',
      'x',
    );
    const denied = await git('-C', 'r', 'push', '-q', 'origin', 'HEAD:refs/heads/from-test').catch(
      (e: Error) => e,
    );
    expect(String(denied)).toMatch(/403|denied/);

    await writeFile(tokenFile, await mint({ contents: 'write', metadata: 'read' }));
    await git('-C', 'r', 'push', '-q', 'origin', 'HEAD:refs/heads/from-test');
    expect(gh.gitPushes.at(-1)).toMatchObject({ repository: 'o/r' });

    gh.expireInstallationTokens();
    const expired = await git('-C', 'r', 'push', '-q', 'origin', 'HEAD:refs/heads/again').catch(
      (e: Error) => e,
    );
    expect(String(expired)).toMatch(/401|Authentication failed|Invalid username/);
  });

  it('records deliveries, lists them, and redelivers a failed one with the same GUID', async () => {
    const received: Array<{ guid: string; event: string; signature: string }> = [];
    /** A webhook on `port` that records what reaches it. */
    const receiver = async (port: number): Promise<Server> => {
      const server = createServer((req, res) => {
        received.push({
          guid: String(req.headers['x-github-delivery']),
          event: String(req.headers['x-github-event']),
          signature: String(req.headers['x-hub-signature-256']),
        });
        req.resume();
        req.on('end', () => res.writeHead(202).end('{}'));
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      return server;
    };
    let server: Server | undefined = await receiver(0);
    const port = (server.address() as { port: number }).port;
    gh.setAppWebhook(`http://127.0.0.1:${port}/webhook/github`, 's3cret');
    const ok = await gh.deliver('issue_comment', { action: 'created' });
    expect(ok.status).toBe(202);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const lost = await gh.deliver('issue_comment', { action: 'created' });
    expect(lost.status).toBe(0);

    const since = new Date(Date.now() - 60_000);
    const listed = await app().deliveries(since, 10);
    expect(listed.map((d) => [d.guid, d.statusCode])).toEqual([
      [lost.guid, 0],
      [ok.guid, 202],
    ]);
    expect(await app().deliveryPayload(listed[0]!.id)).toMatchObject({
      installation: { id: installationId },
    });

    const again = await receiver(port);
    try {
      await app().redeliver(listed[0]!.id);
      await eventually(
        async () => received.map((r) => r.guid),
        (guids) => guids.includes(lost.guid),
        { what: 'the redelivery' },
      );
      expect(received.find((r) => r.guid === lost.guid)?.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect((await app().deliveries(since, 10))[0]).toMatchObject({ guid: lost.guid, redelivery: true });
    } finally {
      await new Promise<void>((resolve) => again.close(() => resolve()));
    }
  });
});

/** A JWT as GitHub wants it (RS256, iss = App id, at most ten minutes): the test's own, for a raw call. */
async function jwt(): Promise<{ token: string }> {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iat: now - 30, exp: now + 540, iss: 77 })}`;
  const signature = sign('RSA-SHA256', Buffer.from(unsigned), keys.privateKey).toString('base64url');
  return { token: `${unsigned}.${signature}` };
}
