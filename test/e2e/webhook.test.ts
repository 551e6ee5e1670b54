/**
 * The whole webhook path in the sandbox: a signed delivery, sent with `codemate webhook replay` to the
 * webhook `dev up` runs, puts the comment in the session's tmux pane without waiting for a poll; the
 * same delivery three times plus the poller finding the same comment paste it once; and a pull request
 * event makes the poller act at once.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec } from '../../src/api/message.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { expectedAtModel, promptsReaching, receivedPrompts } from '../helpers/modelLog.js';
import { podShell, sessionPod, startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';
import { commentOnPullRequestPayload, example, replayDelivery } from '../helpers/webhook.js';

const binDir = inject('binDir');
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const namespace = 'webhooks';
let stateDir: string;
let kube: Kube;
/** What `eval "$(codemate dev up)"` exports: the kubeconfig, the webhook URL and its secret file. */
let sandboxEnv: Record<string, string>;

type Message = KubeObject & { spec: MessageSpec; status?: { phase?: string } };
const messages = () => kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace);
const codemate = () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'pr-7', namespace);

const replay = (event: string, payload: unknown, delivery?: string) =>
  replayDelivery({ dir: stateDir, env: sandboxEnv, event, payload, ...(delivery ? { delivery } : {}) });

const commentPayload = (id: number) => commentOnPullRequestPayload(gh.url, id);

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, stateDir, kube, env: sandboxEnv } = sandbox);
  expect(Object.keys(sandboxEnv).sort()).toEqual([
    'CODEMATE_WEBHOOK_URL',
    'GITHUB_WEBHOOK_SECRET_FILE',
    'KUBECONFIG',
  ]);
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  // A poll interval far longer than the test: anything that reaches the session early came by webhook.
  await kube.create(
    codemateObject(namespace, 'pr-7', {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
      monitoring: { intervalSeconds: 600 },
      lifecycle: { onPullRequestClosed: 'Suspend' },
    }),
  );
  await eventually(
    codemate,
    (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === 'codemate-bot',
    { what: 'CodeMate Running, with its first poll done', timeoutMs: 60_000 },
  );
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('GitHub webhooks reach the session at once', () => {
  let id: number;

  it('a signed comment delivery puts the text before the model with no poll in between', async () => {
    const polledAt = (await codemate()).status?.lastMonitorCheck;
    id = gh.comment('o', 'r', 7, alice, 'Webhook says: please rename the helper.', 'MEMBER');
    const payload = await commentPayload(id);
    const delivery = randomUUID();
    const first = await replay('issue_comment', payload, delivery);
    expect(first).toMatchObject({
      status: 'stored',
      outcomes: [{ result: 'created', message: `pr-7-ic-${id}` }],
    });
    // GitHub's Redeliver, twice: answered from the webhook's memory.
    for (let i = 0; i < 2; i++)
      expect(await replay('issue_comment', payload, delivery)).toMatchObject({ replay: true });

    const stored = await eventually(
      messages,
      (ms) => ms.find((m) => m.metadata.name === `pr-7-ic-${id}`)?.status?.phase === 'Delivered',
      { what: 'webhook comment delivered', timeoutMs: 20_000 },
    );
    const prompts = await promptsReaching(stateDir, `[codemate message=pr-7-ic-${id}]`);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain('Webhook says: please rename the helper.');
    // Exactly the framed text, after the TUI's documented normalisation.
    const expected = await expectedAtModel(
      kube,
      podShell(binDir, path.join(stateDir, 'kubeconfig'), namespace),
      namespace,
      await sessionPod(kube, namespace, 'pr-7'),
      stored.find((m) => m.metadata.name === `pr-7-ic-${id}`)!,
    );
    expect((await receivedPrompts(stateDir)).filter((p) => p === expected)).toHaveLength(1);
    expect((await codemate()).status?.lastMonitorCheck).toBe(polledAt);
    await eventually(
      async () => gh.reactions,
      (r) => r.some((x) => x.id === id && x.content === 'eyes'),
      { what: '👀 reaction' },
    );
  });

  it('when the poller then finds the same comment, it is still one message and one paste', async () => {
    const polledAt = (await codemate()).status?.lastMonitorCheck;
    const seen = gh.requests.length;
    const reopened = example('pull_request', 'reopened') as Record<string, Record<string, unknown>>;
    reopened.repository!.full_name = 'o/r';
    reopened.pull_request!.number = 7;
    expect(await replay('pull_request', reopened)).toMatchObject({
      status: 'poll-requested',
      codemates: [`${namespace}/pr-7`],
    });
    // The poll request is served at once, not in ten minutes.
    await eventually(codemate, (cm) => cm.status?.lastMonitorCheck !== polledAt, {
      what: 'a poll',
      timeoutMs: 15_000,
    });
    const requests = gh.requests.slice(seen).map((r) => r.path);
    expect(requests.some((p) => p.includes('/issues/7/comments'))).toBe(true);

    expect((await messages()).filter((m) => m.metadata.name?.endsWith(`-ic-${id}`))).toHaveLength(1);
    expect(await promptsReaching(stateDir, `[codemate message=pr-7-ic-${id}]`)).toHaveLength(1);
  });

  it('a closed pull request applies the lifecycle policy at once: Suspend suspends, Keep completes', async () => {
    // Another pull request: pr-7 writes to #7's branch, and one CodeMate writes to a branch.
    await sandbox.addPull(9, 'keep');
    await kube.create(
      codemateObject(namespace, 'keep-9', {
        repository: { url: 'https://github.com/o/r.git', pullRequest: 9 },
        monitoring: { intervalSeconds: 600 },
      }),
    );
    const keep = () =>
      kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'keep-9', namespace);
    // The poller records what it saw (status.github); the reconcile that follows turns it into
    // conditions. Wait for both, not the first alone.
    const conditionsOf = (cm: CodeMate) =>
      Object.fromEntries((cm.status?.conditions ?? []).map((c) => [c.type, c.status]));
    const linked = await eventually(
      keep,
      (cm) =>
        cm.status?.phase === 'Running' &&
        cm.status.github?.login === 'codemate-bot' &&
        conditionsOf(cm).GitHubAuthenticated === 'True' &&
        conditionsOf(cm).PullRequestLinked === 'True',
      { what: 'keep-9 Running, with its first poll done and reconciled', timeoutMs: 60_000 },
    );
    expect(conditionsOf(linked)).toMatchObject({
      PullRequestLinked: 'True',
      GitHubAuthenticated: 'True',
      Ready: 'True',
    });
    for (const number of [7, 9]) {
      gh.close('o', 'r', number, true);
      const closed = example('pull_request', 'closed') as Record<string, Record<string, unknown>>;
      closed.repository!.full_name = 'o/r';
      closed.pull_request!.number = number;
      await replay('pull_request', closed);
    }
    const suspended = await eventually(
      codemate,
      (cm) => cm.spec.suspend === true && cm.status?.pullRequest?.state === 'merged',
      { what: 'suspended on merge', timeoutMs: 20_000 },
    );
    expect(suspended.status?.pullRequest?.number).toBe(7);
    const completed = await eventually(keep, (cm) => cm.status?.phase === 'Completed', {
      what: 'keep-9 Completed',
      timeoutMs: 20_000,
    });
    expect(completed.spec.suspend).toBeUndefined();
    expect(completed.status?.message).toContain('pull request #9 is merged; the session is kept');
    // A kept session still takes comments.
    const after = gh.comment('o', 'r', 9, alice, 'After the merge: please write the release note.', 'MEMBER');
    await replay('issue_comment', await commentOnPullRequestPayload(gh.url, after, undefined, 9));
    await eventually(
      messages,
      (ms) => ms.find((m) => m.metadata.name === `keep-9-ic-${after}`)?.status?.phase === 'Delivered',
      { what: 'comment delivered to the Completed session', timeoutMs: 20_000 },
    );
    expect(await readFile(sandboxEnv.GITHUB_WEBHOOK_SECRET_FILE!, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
  });
});
