/**
 * GitHub App mode in the sandbox: a CodeMate with no token Secret runs as the fake GitHub's App. Its
 * session clones and pushes over git HTTP with an installation token of its own (the fake enforces the
 * token's repository, permissions and expiry); comments arrive by the App's webhook and by the poll; a
 * token renewed during the session is what the next push uses, without a restart; the session's state
 * is a check run `codemate/session` on the pull request's head, not a commit status; and a comment whose
 * delivery failed while the webhook was down is redelivered once it is back, before any poll, once.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec } from '../../src/api/message.js';
import { sessionPermissions } from '../../src/clients/githubApp.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { podShell, sessionPod, startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';
import { askUserToken } from '../../src/sandbox/modelServer.js';
import { modelSpeed, promptsReaching } from '../helpers/modelLog.js';
import { commentOnPullRequestPayload } from '../helpers/webhook.js';

const binDir = inject('binDir');
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;
let stateDir: string;
const namespace = 'github-app';
const alice = { login: 'alice', id: 901 };
const appId = 4242;
/** Short-lived tokens, so that the test sees renewals: renewed at half-life, every 15 s. */
const tokenSeconds = 30;
/** The environment `dev up` ran with, to run it again after the webhook's outage. */
let upEnv: Record<string, string>;
const dev = (args: string[]) =>
  runCli(['dev', ...args, '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir, ...upEnv } });

type Message = KubeObject & { spec: MessageSpec; status?: { phase?: string } };
type Secret = KubeObject & {
  data?: Record<string, string>;
  metadata: { ownerReferences?: Array<{ name: string }> };
};
const messages = () => kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace);
const codemate = () =>
  kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'app-7', namespace);
const tokenSecret = async () => {
  const name = (await codemate()).status?.github?.sessionToken?.secretName;
  if (!name) throw new Error('no session token Secret in status yet');
  return kube.get<Secret>('v1', 'Secret', name, namespace);
};
const secretToken = async () => Buffer.from((await tokenSecret()).data!.token!, 'base64').toString();
const shell = () => podShell(binDir, path.join(stateDir, 'kubeconfig'), namespace);
const delivered = (name: string) =>
  eventually(messages, (ms) => ms.some((m) => m.metadata.name === name && m.status?.phase === 'Delivered'), {
    what: `${name} delivered`,
    timeoutMs: 30_000,
  });

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, { login: 'pat-user', id: 900 }, async (fake, repos) => {
    const { privateKey } = fake.createApp(appId, 'codemate-e2e');
    fake.installApp('o', ['o/r'], { ...sessionPermissions });
    fake.installationTokenSeconds = tokenSeconds;
    const keyFile = path.join(repos, 'app.private-key.pem');
    await writeFile(keyFile, privateKey, { mode: 0o600 });
    upEnv = {
      GITHUB_API_URL: fake.url,
      // The sessions clone o/r over the fake's git HTTP, which checks installation tokens.
      CODEMATE_SANDBOX_GIT_REWRITE: `https://github.com/=${fake.serveGit(repos)}`,
      CODEMATE_GITHUB_APP_ID: String(appId),
      CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
      CODEMATE_GITHUB_REDELIVERY_SECONDS: '5',
      CODEMATE_MONITOR_REPORT_SECONDS: '0',
      // One second between the session state's writes, so the test's changes, seconds apart, are each written.
      CODEMATE_SESSION_STATUS_INTERVAL_SECONDS: '1',
    };
    return upEnv;
  });
  ({ gh, kube, stateDir } = sandbox);
  const secret = (await readFile(sandbox.env.GITHUB_WEBHOOK_SECRET_FILE!, 'utf8')).trim();
  gh.setAppWebhook(sandbox.env.CODEMATE_WEBHOOK_URL!, secret);
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  // No token Secret: App mode. A poll interval far longer than the test, so a poll is one we ask for.
  await kube.create(
    codemateObject(namespace, 'app-7', {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
      github: { user: { name: 'CodeMate', email: 'codemate@example.com' } },
      monitoring: { intervalSeconds: 600 },
    }),
  );
  await eventually(
    codemate,
    (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === 'codemate-e2e[bot]',
    {
      what: 'CodeMate Running as the App’s bot',
      timeoutMs: 90_000,
      describe: (cm) => JSON.stringify(cm.status),
    },
  );
});

afterAll(async () => {
  await modelSpeed(stateDir, { chunkDelayMs: 0, chunks: 3 }).catch(() => undefined);
  await sandbox?.stop();
});

describe('a CodeMate authenticated as a GitHub App', () => {
  it('runs without a token Secret; its session cloned and pushes with its own installation token', async () => {
    const cm = await codemate();
    expect(cm.spec.github.tokenSecretRef).toBeUndefined();
    const secret = await tokenSecret();
    expect(secret.metadata.ownerReferences?.map((o) => o.name)).toEqual(['app-7']);
    // The clone came over git HTTP, authenticated.
    expect(gh.requests.some((r) => /^\/git\/o\/r(\.git)?\/info\/refs/.test(r.path) && r.status === 200)).toBe(
      true,
    );

    const pod = await sessionPod(kube, namespace, 'app-7');
    await shell()(
      pod,
      'cd "$CODEMATE_WORKSPACE/repo" && git commit -q --allow-empty -m "from the session" && git push -q origin HEAD:refs/heads/app-push-1',
    );
    const push = gh.gitPushes.at(-1)!;
    expect(push.repository).toBe('o/r');
    const issued = gh.issuedInstallationTokens().find((t) => t.token === push.token);
    // Scoped to the one repository and the session's permissions, not the installation's.
    expect(issued).toMatchObject({ repositories: ['o/r'], permissions: sessionPermissions });
  });

  it('takes a comment from the App’s webhook, and another from the poll', async () => {
    const byWebhook = gh.comment('o', 'r', 7, alice, 'Webhook: please rename the helper.', 'MEMBER');
    const sent = await gh.deliver('issue_comment', await commentOnPullRequestPayload(gh.url, byWebhook));
    expect(sent.status).toBe(201);
    await delivered(`app-7-ic-${byWebhook}`);

    const byPoll = gh.comment('o', 'r', 7, alice, 'Poll: and add a test.', 'MEMBER');
    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: {
        name: 'app-7',
        namespace,
        annotations: { 'codemate.io/poll-requested-at': new Date().toISOString() },
      },
    });
    await delivered(`app-7-ic-${byPoll}`);
    // The poll went with an installation token: the bot's 👀 on the comments.
    await eventually(
      async () => gh.reactions,
      (r) => r.some((x) => x.id === byPoll && x.by === 'codemate-e2e[bot]'),
      { what: '👀 by the App’s bot' },
    );
  });

  it('shows the session state as a check run on the head, one write per change, and no commit status', async () => {
    const head = (await codemate()).status!.pullRequest!.headSha!;
    const writes = () => gh.checkRunWrites.filter((w) => w.name === 'codemate/session' && w.sha === head);
    const shown = async () => writes().map((w) => w.conclusion ?? w.status);
    const comment = async (text: string) => {
      const id = gh.comment('o', 'r', 7, alice, text, 'MEMBER');
      const sent = await gh.deliver('issue_comment', await commentOnPullRequestPayload(gh.url, id));
      expect(sent.status).toBe(201);
      return id;
    };
    await eventually(shown, (s) => s.at(-1) === 'success', { what: 'the idle check run', timeoutMs: 30_000 });

    // A slow turn: a new check run in progress (a completed one is not reopened), completed when it ends.
    const before = writes().length;
    await modelSpeed(stateDir, { chunkDelayMs: 300, chunks: 15 });
    await comment('Work on the check run part.');
    await eventually(shown, (s) => s.at(-1) === 'in_progress', {
      what: 'working while the turn runs',
      timeoutMs: 30_000,
      describe: (s) => s.join(),
    });
    await modelSpeed(stateDir, { chunkDelayMs: 0, chunks: 3 });
    await eventually(shown, (s) => s.at(-1) === 'success' && s.length > before + 1, {
      what: 'idle once the turn ended',
      timeoutMs: 30_000,
      describe: (s) => s.join(),
    });
    const turn = writes().slice(before);
    expect(turn.map((w) => [w.method, w.conclusion ?? w.status])).toEqual([
      ['POST', 'in_progress'],
      ['PATCH', 'success'],
    ]);
    expect(turn[1]!.id).toBe(turn[0]!.id);

    // A question for a person: the same run's conclusion, action_required, linked to the pull request.
    const asked = await comment(`Ask me which way to go. ${askUserToken}`);
    await eventually(shown, (s) => s.at(-1) === 'action_required', {
      what: 'blocked on the dialog',
      timeoutMs: 30_000,
      describe: (s) => s.join(),
    });
    const blocked = writes().at(-1)!;
    expect(blocked.detailsUrl).toBe('https://github.com/o/r/pull/7');
    expect(blocked.summary).toContain(`app-7-ic-${asked}`);
    const pod = await sessionPod(kube, namespace, 'app-7');
    const pane = () => shell()(pod, 'tmux capture-pane -p -t claude-code');
    await eventually(pane, (p) => p.includes('Enter to select'), { what: 'the question on the screen' });
    await eventually(
      async () => {
        const p = await pane();
        if (p.includes('Enter to select')) await shell()(pod, 'tmux send-keys -t claude-code Enter');
        return p;
      },
      (p) => !p.includes('Enter to select'),
      { what: 'the question answered', intervalMs: 1000 },
    );
    await eventually(shown, (s) => s.at(-1) === 'success', {
      what: 'idle after the dialog was answered',
      timeoutMs: 30_000,
      describe: (s) => s.join(),
    });

    // One write per change; every write by the App's bot, on the head; none while nothing changes.
    const all = await shown();
    for (let i = 1; i < all.length; i++) expect(all[i], all.join()).not.toBe(all[i - 1]);
    for (const w of writes()) {
      expect(w).toMatchObject({ repo: 'o/r', by: 'codemate-e2e[bot]', appId });
      expect(w.summary).toContain(`codemate attach app-7 -n ${namespace}`);
    }
    const settled = writes().length;
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(writes()).toHaveLength(settled);
    // In App mode the state is not a commit status.
    expect(gh.statuses.filter((st) => st.context === 'codemate/session')).toEqual([]);
  });

  it('uses a token renewed during the session at the next push, without a restart', async () => {
    const pod = await sessionPod(kube, namespace, 'app-7');
    const podBefore = await kube.get<KubeObject & { status?: { startTime?: string } }>(
      'v1',
      'Pod',
      pod,
      namespace,
    );
    const first = await secretToken();
    const firstExpires = gh.issuedInstallationTokens().find((t) => t.token === first)!.expiresAt;
    // The operator renews at half-life; the old token then expires, and the fake refuses it.
    const renewed = await eventually(secretToken, (t) => t !== first, {
      what: 'a renewed token in the Secret',
      timeoutMs: tokenSeconds * 1000,
    });
    await eventually(
      async () => Date.now(),
      (now) => now > firstExpires,
      { what: 'the first token expired', timeoutMs: tokenSeconds * 1000 },
    );
    await shell()(
      pod,
      'cd "$CODEMATE_WORKSPACE/repo" && git commit -q --allow-empty -m "after renewal" && git push -q origin HEAD:refs/heads/app-push-2',
    );
    const push = gh.gitPushes.at(-1)!;
    expect(push.token).not.toBe(first);
    expect([renewed, await secretToken()]).toContain(push.token);
    const podAfter = await kube.get<KubeObject & { status?: { startTime?: string } }>(
      'v1',
      'Pod',
      pod,
      namespace,
    );
    expect(podAfter.metadata.uid).toBe(podBefore.metadata.uid);
    expect(podAfter.status?.startTime).toEqual(podBefore.status?.startTime);
  });

  it('redelivers a comment whose delivery failed while the webhook was down, once it is back, before a poll, once', async () => {
    const status = JSON.parse((await dev(['status', '-o', 'json'])).stdout) as {
      components: Array<{ name: string; pid?: number }>;
    };
    const webhook = status.components.find((c) => c.name === 'codemate-webhook')!.pid!;
    process.kill(webhook, 'SIGTERM');
    await eventually(
      async () => {
        try {
          process.kill(webhook, 0);
          return true;
        } catch {
          return false;
        }
      },
      (alive) => !alive,
      { what: 'the webhook stopped' },
    );
    const polledAt = (await codemate()).status?.lastMonitorCheck;
    const id = gh.comment('o', 'r', 7, alice, 'Sent while the webhook was down.', 'MEMBER');
    const lost = await gh.deliver('issue_comment', await commentOnPullRequestPayload(gh.url, id));
    expect(lost.status).toBe(0);
    const name = `app-7-ic-${id}`;
    expect((await messages()).some((m) => m.metadata.name === name)).toBe(false);

    const up = await dev(['up']);
    expect(up.code, up.stderr).toBe(0);
    await delivered(name);
    const attempts = gh.hookDeliveries.filter((d) => d.guid === lost.guid);
    expect(attempts.map((d) => [d.redelivery, d.statusCode])).toEqual([
      [false, 0],
      [true, 201],
    ]);
    // By redelivery, not by a poll; and once: one message, one prompt at the model, no more attempts.
    expect((await codemate()).status?.lastMonitorCheck).toBe(polledAt);
    expect((await messages()).filter((m) => m.metadata.name === name)).toHaveLength(1);
    expect(await promptsReaching(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
    // Two more passes of the redelivery (every 5 s) ask for nothing more.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(gh.hookDeliveries.filter((d) => d.guid === lost.guid)).toHaveLength(2);
  });
});
