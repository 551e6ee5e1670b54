/**
 * Review comments by thread, in the sandbox with the real session: a review with three comments in two
 * threads reaches the model as ONE message holding both threads and their hunks, exactly once, whether
 * the webhook's five deliveries (four comments first, then the review) or the poll find it first; a
 * thread that the session answered last is left out.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec } from '../../src/api/message.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { expectedAtModel, promptsReaching, promptsWith, receivedPrompts } from '../helpers/modelLog.js';
import {
  podShell,
  sessionPod,
  sessionSettled,
  startGitHubSandbox,
  type GitHubSandbox,
} from '../helpers/sandbox.js';
import { replayDelivery, reviewDeliveries } from '../helpers/webhook.js';

const binDir = inject('binDir');
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const bob = { login: 'bob', id: 902 };
const namespace = 'threads';
let stateDir: string;
let kube: Kube;
let sandboxEnv: Record<string, string>;

type Message = KubeObject & { spec: MessageSpec; status?: { phase?: string; reason?: string } };
const messages = () => kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace);
const codemate = (name: string) =>
  kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace);

const replay = (event: string, payload: unknown) =>
  replayDelivery({ dir: stateDir, env: sandboxEnv, event, payload });

const loginHunk = '@@ -10,3 +10,4 @@ export function login() {\n   const user = read();\n+  redirect(user);';
const errorHunk =
  '@@ -30,2 +30,5 @@ export function handle() {\n+  if (!ok) {\n+    throw new Error(code);\n+  }';

/**
 * On pull request `n`: bob's earlier thread on src/login.ts (bob is not trusted), then alice's review with three comments in
 * two threads (two replies in bob's thread, a new thread on src/errors.ts lines 31-33), and a fourth in
 * one more thread, which the session answers right away, before anything sees the review.
 */
function reviewOn(n: number) {
  // bob is not trusted: his review awaits an approval, and his words reach the session only as alice's thread.
  const earlier = gh.submitReview('o', 'r', n, bob, {
    association: 'NONE',
    comments: [{ body: `Why redirect here? (pr ${n})`, path: 'src/login.ts', line: 12, diffHunk: loginHunk }],
  });
  const root = earlier.commentIds[0]!;
  const review = gh.submitReview('o', 'r', n, alice, {
    body: `Two threads need work (pr ${n}).`,
    state: 'CHANGES_REQUESTED',
    comments: [
      { body: `Still unclear: explain the redirect (pr ${n}).`, inReplyTo: root },
      {
        body: `Handle the error case (pr ${n}).`,
        path: 'src/errors.ts',
        startLine: 31,
        line: 33,
        diffHunk: errorHunk,
      },
      { body: `And add a test for it (pr ${n}).`, inReplyTo: root },
      { body: `Answered already (pr ${n}).`, path: 'README.md', line: 3 },
    ],
  });
  const [, errors, , answered] = review.commentIds as [number, number, number, number];
  gh.reviewComment('o', 'r', n, session, `Fixed the README (pr ${n}).`, 'OWNER', { inReplyTo: answered });
  return { earlier: earlier.reviewId, review: review.reviewId, root, errors, comments: review.commentIds };
}

/** The one prompt for `message` reached the model, exactly as framed, and holds both threads. */
async function expectOnePrompt(cm: string, message: Message, n: number, errors: number, root: number) {
  const marker = `[codemate message=${message.metadata.name}]`;
  const prompts = await promptsReaching(stateDir, marker);
  expect(prompts).toHaveLength(1);
  const text = prompts[0]!;
  expect(text).toContain(`Untrusted GitHub review by @alice (MEMBER) on pull request #${n}`);
  expect(text).toContain('Review: changes requested.');
  expect(text).toContain(`> Two threads need work (pr ${n}).`);
  expect(text).toContain('2 review threads (1 more thread left out: you replied there after this review)');
  expect(text).toContain(`Thread 1 of 2: src/login.ts:12, comment ${root}`);
  expect(text).toContain('+  redirect(user);');
  expect(text).toContain(`@bob (NONE)`);
  expect(text).toContain(`> Why redirect here? (pr ${n})`);
  expect(text).toContain(`> Still unclear: explain the redirect (pr ${n}).`);
  expect(text).toContain(`Thread 2 of 2: src/errors.ts:31-33, comment ${errors}`);
  expect(text).toContain('+    throw new Error(code);');
  expect(text).toContain(`> Handle the error case (pr ${n}).`);
  expect(text).toContain(`> And add a test for it (pr ${n}).`);
  expect(text).not.toContain(`Answered already (pr ${n})`);
  expect(await promptsWith(stateDir, `Still unclear: explain the redirect (pr ${n})`)).toHaveLength(1);
  const expected = await expectedAtModel(
    kube,
    podShell(binDir, path.join(stateDir, 'kubeconfig'), namespace),
    namespace,
    await sessionPod(kube, namespace, cm),
    message,
  );
  expect((await receivedPrompts(stateDir)).filter((p) => p === expected)).toHaveLength(1);
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, stateDir, kube, env: sandboxEnv } = sandbox);
  await sandbox.addPull(8, 'polled');
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  // A poll interval far longer than the test: what reaches `hooked` came through the webhook.
  await kube.create(
    codemateObject(namespace, 'hooked', {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
      monitoring: { intervalSeconds: 600 },
    }),
  );
  await kube.create(
    codemateObject(namespace, 'polled', {
      repository: { url: 'https://github.com/o/r.git', branch: 'polled', pullRequest: 8 },
      monitoring: { intervalSeconds: 2 },
    }),
  );
  for (const name of ['hooked', 'polled']) {
    await eventually(
      () => codemate(name),
      (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === 'codemate-bot',
      { what: `${name} Running, with its first poll done`, timeoutMs: 90_000 },
    );
  }
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('a review reaches the session as one message, by thread', () => {
  it('via the webhook: five deliveries, comments first, make one message with both threads and their hunks', async () => {
    const polledAt = (await codemate('hooked')).status?.lastMonitorCheck;
    const { earlier, review, root, errors } = reviewOn(7);
    const deliveries = reviewDeliveries(
      'o/r',
      { number: 7, head: 'feature' },
      gh.restReview('o', 'r', 7, review),
      gh.restReviewComments('o', 'r', 7, review),
    );
    expect(deliveries.map(([event]) => event)).toEqual([
      ...Array<string>(4).fill('pull_request_review_comment'),
      'pull_request_review',
    ]);
    for (const [event, payload] of deliveries) {
      expect(await replay(event, payload)).toMatchObject({
        status: 'poll-requested',
        review,
        codemates: [`${namespace}/hooked`],
      });
    }
    const name = `hooked-rv-${review}`;
    const stored = await eventually(
      messages,
      (ms) =>
        ms.find((m) => m.metadata.name === name)?.status?.phase === 'Delivered' &&
        ms.find((m) => m.metadata.name === `hooked-rv-${earlier}`)?.status?.phase === 'AwaitingApproval',
      {
        what: "the review delivered, and bob's awaiting approval",
        timeoutMs: 30_000,
        describe: (ms: Message[]) => ms.map((m) => `${m.metadata.name}:${m.status?.phase}`).join(' '),
      },
    );
    // The polls that the deliveries asked for ran at once, not in ten minutes.
    expect((await codemate('hooked')).status?.lastMonitorCheck).not.toBe(polledAt);
    // One message for the review (bob's earlier review is its own), none per comment.
    const mine = stored.filter((m) => m.spec.codemate === 'hooked');
    expect(mine.map((m) => `${m.metadata.name}:${m.status?.phase}`).sort()).toEqual(
      [`hooked-rv-${earlier}:AwaitingApproval`, `${name}:Delivered`].sort(),
    );
    await expectOnePrompt(
      'hooked',
      stored.find((m) => m.metadata.name === name)!,
      7,
      errors,
      root,
    );

    // GitHub's redelivery of all five, and a poll, add nothing.
    const before = (await codemate('hooked')).status?.lastMonitorCheck;
    for (const [event, payload] of deliveries) await replay(event, payload);
    await eventually(
      () => codemate('hooked'),
      (cm) => cm.status?.lastMonitorCheck !== before,
      { what: 'a poll after the redelivery' },
    );
    expect((await messages()).filter((m) => m.metadata.name === name)).toHaveLength(1);
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
  });

  it('via the poll alone: the same review makes one message with both threads, exactly once', async () => {
    const { review, root, errors, comments } = reviewOn(8);
    const name = `polled-rv-${review}`;
    const stored = await eventually(
      messages,
      (ms) => ms.find((m) => m.metadata.name === name)?.status?.phase === 'Delivered',
      { what: 'the polled review delivered', timeoutMs: 30_000 },
    );
    await expectOnePrompt(
      'polled',
      stored.find((m) => m.metadata.name === name)!,
      8,
      errors,
      root,
    );
    // 👀 on the three comments the message carried, not on the one in the thread the session answered.
    const eyes = () => gh.reactions.filter((r) => comments.includes(r.id) && r.content === 'eyes');
    await eventually(
      async () => eyes().length,
      (n) => n >= 3,
      { what: '👀 on the review comments' },
    );
    expect(
      eyes()
        .sort((a, b) => a.id - b.id)
        .map((r) => [r.subject, r.id, r.by]),
    ).toEqual(comments.slice(0, 3).map((id) => ['review_comment', id, 'codemate-bot']));
    // Later polls are 304s: nothing charged, nothing created (once the session's state after its turn is
    // on the pull request).
    await sessionSettled(kube, gh, namespace, 'polled');
    const chargedBefore = gh.charged();
    const requestsBefore = gh.requests.length;
    const count = (await messages()).length;
    await eventually(
      async () => gh.requests.length - requestsBefore,
      (n) => n >= 6,
      { what: 'two more polls', timeoutMs: 15_000 },
    );
    // Which request was charged, if one was: a count alone does not say (seen once in CI, 24 against 23).
    const charged = gh.requests
      .slice(requestsBefore)
      .filter((r) => r.charged)
      .map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(charged).toEqual([]);
    expect(gh.charged()).toBe(chargedBefore);
    expect((await messages()).length).toBe(count);
  });

  it("the session's own replies, and a review whose every thread it answered, make no message", async () => {
    const root = gh.reviewComment('o', 'r', 8, alice, 'Rename the helper.', 'MEMBER', { path: 'src/x.ts' });
    const reply = gh.reviewComment('o', 'r', 8, session, 'Renamed.', 'OWNER', { inReplyTo: root });
    const answered = gh.reviewIdOf('o', 'r', 8, root);
    const own = gh.reviewIdOf('o', 'r', 8, reply);
    // A review after them, so that a poll that saw it has seen both.
    const later = gh.submitReview('o', 'r', 8, alice, { body: 'One more thing.', state: 'COMMENTED' });
    await eventually(messages, (ms) => ms.some((m) => m.metadata.name === `polled-rv-${later.reviewId}`), {
      what: 'the later review',
      timeoutMs: 30_000,
    });
    const names = (await messages()).map((m) => m.metadata.name);
    expect(names).not.toContain(`polled-rv-${answered}`);
    expect(names).not.toContain(`polled-rv-${own}`);
    expect(await promptsWith(stateDir, 'Rename the helper.')).toEqual([]);
  });
});
