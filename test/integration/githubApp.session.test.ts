/**
 * The session's side of App mode, with the real entrypoint and the fake GitHub's git over HTTP: it waits
 * for a token that has not expired (a resumed session's old Secret), clones with it, and git's credential
 * helper reads the mounted file on each use, so a renewed token works at the next push in the same
 * session, and an expired one is refused.
 */
import { execFile } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubApp, sessionPermissions } from '../../src/clients/githubApp.js';
import { eventually } from '../helpers/cluster.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';
import {
  cleanup,
  makeOrigin,
  sessionRoot,
  startSession,
  waitUntilReady,
  type Session,
} from '../helpers/session.js';

const run = promisify(execFile);
const gh = new FakeGitHub();
let root: string;
let session: Session | undefined;
let app: GitHubApp;
let installationId: number;
let tokenDir: string;

/** What the kubelet does when the operator renews the Secret: the token and its expiry, replaced. */
async function mount(token: string, expiresAt: string): Promise<void> {
  await writeFile(path.join(tokenDir, 'token.new'), token);
  await rename(path.join(tokenDir, 'token.new'), path.join(tokenDir, 'token'));
  await writeFile(path.join(tokenDir, 'expires-at'), expiresAt);
}
const mint = () =>
  app.installationToken(installationId, { repositories: ['r'], permissions: { ...sessionPermissions } });

beforeAll(async () => {
  await gh.start();
  const { privateKey } = gh.createApp(31, 'cm-session');
  installationId = gh.installApp('o', ['o/r'], { ...sessionPermissions });
  app = new GitHubApp({ appId: 31, privateKey, keySource: 'test' }, { baseUrl: gh.url });
  root = await sessionRoot();
  const origin = await makeOrigin(root);
  await mkdir(path.join(root, 'git', 'o'), { recursive: true });
  await rename(origin, path.join(root, 'git', 'o', 'r.git'));
  gh.serveGit(path.join(root, 'git'));
  tokenDir = path.join(root, 'github');
  await mkdir(tokenDir);
});

afterAll(async () => {
  await session?.stop();
  await gh.stop();
  await cleanup(root);
});

describe('a session in App mode', () => {
  it('waits for an unexpired token, clones with it, and pushes with each renewed token without a restart', async () => {
    // A resumed session's Secret: a token that has expired.
    const old = await mint();
    gh.expireInstallationTokens();
    await mount(old.token, new Date(Date.now() - 60_000).toISOString());
    session = await startSession(root, {
      CODEMATE_REPO_URL: 'https://github.com/o/r.git',
      CODEMATE_BRANCH: 'feature',
      CODEMATE_GITHUB_TOKEN_FILE: path.join(tokenDir, 'token'),
      // As the sandbox does: git reaches github.com at the fake's git HTTP.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `url.${gh.url}/git/.insteadOf`,
      GIT_CONFIG_VALUE_0: 'https://github.com/',
    });
    await eventually(
      async () => session!.output(),
      (out) => out.includes("waiting for the operator's renewed installation token"),
      { what: 'the entrypoint waiting for a renewed token' },
    );
    const first = await mint();
    await mount(first.token, first.expiresAt);
    await waitUntilReady(session);
    expect(session.output()).toContain(
      "authenticating to github.com with the GitHub App's installation token",
    );

    const git = (...args: string[]) => run('git', ['-C', session!.repo, ...args], { env: session!.env });
    await git('commit', '-q', '--allow-empty', '-m', 'one');
    await git('push', '-q', 'origin', 'HEAD:refs/heads/one');
    expect(gh.gitPushes.at(-1)?.token).toBe(first.token);

    // Renewed: the old token expires, and the next push reads the new one from the file.
    gh.expireInstallationTokens();
    const renewed = await mint();
    await mount(renewed.token, renewed.expiresAt);
    await git('commit', '-q', '--allow-empty', '-m', 'two');
    await git('push', '-q', 'origin', 'HEAD:refs/heads/two');
    expect(gh.gitPushes.at(-1)?.token).toBe(renewed.token);

    // An expired token in the file is refused, not retried forever.
    gh.expireInstallationTokens();
    await git('commit', '-q', '--allow-empty', '-m', 'three');
    const refused = await git('push', '-q', 'origin', 'HEAD:refs/heads/three').catch((e: Error) => e);
    expect(String(refused)).toMatch(/401|Authentication failed|Invalid username/);
    // The token never landed in git's configuration.
    const config = await run('git', ['config', '--global', '--list'], { env: session.env });
    expect(config.stdout).not.toContain(renewed.token);
    expect(config.stdout).toContain('codemate-git-credential');
  });
});
