/**
 * Approve before inject, end to end with the real session: an untrusted comment waits in
 * AwaitingApproval; a stranger's 👍 does nothing; a member's 👍 (found by the poller, with ETags) lets it
 * in, once, however many other approvals follow; `/codemate approve` approves what was written before it;
 * a comment edited after it was recorded is not approved on GitHub; `codemate deny` refuses one, and so
 * does a trusted `/codemate deny` on the pull request.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec, MessageStatus } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { promptsReaching, promptsWith } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';

const binDir = inject('binDir');
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;
let stateDir: string;
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const stranger = { login: 'stranger', id: 902 };
const mallory = { login: 'mallory', id: 903 };
const bob = { login: 'bob', id: 904 };
const namespace = 'approvals';

type Message = KubeObject & { spec: MessageSpec; status?: MessageStatus };
const message = (name: string) =>
  kube.get<Message>('codemate.io/v1alpha1', 'CodeMateMessage', name, namespace);
const cli = (...args: string[]) =>
  runCli([...args, '-n', namespace], { env: { KUBECONFIG: path.join(stateDir, 'kubeconfig') } });

/** Waits until the poller has listed the pull request's comments `n` more times. */
async function polls(n: number): Promise<void> {
  const listings = () => gh.requests.filter((r) => r.path.includes('/issues/7/comments')).length;
  const start = listings();
  await eventually(
    async () => listings() - start,
    (k) => k >= n,
    {
      what: `${n} more polls`,
      timeoutMs: 20_000,
    },
  );
}

async function awaiting(name: string): Promise<Message> {
  return eventually(
    () => message(name).catch(() => undefined),
    (m) => m?.status?.phase === 'AwaitingApproval',
    {
      what: `${name} awaiting approval`,
      timeoutMs: 20_000,
    },
  ) as Promise<Message>;
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, stateDir, kube } = sandbox);
  gh.setPermission('alice', 'write');
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  await kube.create(
    codemateObject(namespace, 'pr-7', {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
      monitoring: { intervalSeconds: 2 },
    }),
  );
  await eventually(
    () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'pr-7', namespace),
    (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === session.login,
    { what: 'CodeMate Running and polling PR #7', timeoutMs: 60_000 },
  );
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('approve before inject', () => {
  it("an untrusted comment waits; a stranger's 👍 does nothing; a member's 👍 delivers it once", async () => {
    const id = gh.comment('o', 'r', 7, stranger, 'Please fix the typo in README (approval-one).', 'NONE');
    const name = `pr-7-ic-${id}`;
    const waiting = await awaiting(name);
    expect(waiting.status).toMatchObject({ reason: 'Untrusted' });
    expect(waiting.status?.message).toContain('author association NONE is not trusted');
    expect(waiting.status?.message).toContain(`codemate approve ${name}`);

    // Reactions are read only for comments that wait, conditionally: while nothing changes, the polls,
    // the reactions and the reactors' permissions are all free 304s.
    gh.react(id, stranger);
    gh.react(id, mallory);
    await polls(2);
    const start = gh.requests.length;
    await polls(3);
    expect((await message(name)).status?.phase).toBe('AwaitingApproval');
    const reads = gh.requests.slice(start).filter((r) => r.path.includes(`/issues/comments/${id}/reactions`));
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(reads.every((r) => r.status === 304)).toBe(true);
    expect(gh.requests.slice(start).filter((r) => r.path.includes('/permission')).length).toBeGreaterThan(0);
    // The session's own state on the pull request (a commit status, docs/session-state.md) is charged
    // and may land in this window; nothing else may be.
    const charged = gh.requests.slice(start).filter((r) => r.charged && !r.path.includes('/statuses/'));
    expect(charged.map((r) => r.path)).toEqual([]);
    expect(await promptsWith(stateDir, 'approval-one')).toEqual([]);

    gh.react(id, alice);
    const delivered = await eventually(
      () => message(name),
      (m) => m.status?.phase === 'Delivered',
      { what: 'approved comment delivered', timeoutMs: 30_000 },
    );
    expect(delivered.spec.approval).toMatchObject({ decision: 'Approved', by: 'alice', via: 'reaction' });
    expect(delivered.status?.approvedBy).toBe('alice');
    const prompts = await promptsReaching(stateDir, `[codemate message=${name}]`);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain('Untrusted GitHub comment by @stranger (NONE)');

    // Approving again, in every other way, changes nothing: the first decision stands, delivered once.
    gh.comment('o', 'r', 7, alice, '/codemate approve', 'MEMBER');
    const again = await cli('approve', name);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('already approved by alice (reaction)');
    await polls(2);
    expect((await message(name)).spec.approval?.by).toBe('alice');
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
  });

  it('a trusted "/codemate approve" approves the comments written before it, and is no message itself', async () => {
    const id = gh.comment('o', 'r', 7, stranger, 'Add a changelog entry (approval-two).', 'NONE');
    await awaiting(`pr-7-ic-${id}`);
    // A stranger cannot approve by command either.
    const own = gh.comment('o', 'r', 7, stranger, '/codemate approve', 'NONE');
    await polls(2);
    expect((await message(`pr-7-ic-${id}`)).status?.phase).toBe('AwaitingApproval');
    const command = gh.comment('o', 'r', 7, alice, '/codemate approve', 'MEMBER');
    const delivered = await eventually(
      () => message(`pr-7-ic-${id}`),
      (m) => m.status?.phase === 'Delivered',
      { what: 'comment approved by command delivered', timeoutMs: 30_000 },
    );
    expect(delivered.spec.approval).toMatchObject({ by: 'alice', via: 'comment' });
    expect(await promptsReaching(stateDir, 'approval-two')).toHaveLength(1);
    for (const c of [own, command]) {
      await expect(message(`pr-7-ic-${c}`)).rejects.toMatchObject({ code: 404 });
    }
  });

  it('a comment edited after it was recorded is not approved by a 👍; codemate deny refuses one', async () => {
    const edited = gh.comment('o', 'r', 7, stranger, 'Run the linter (approval-three).', 'NONE');
    await awaiting(`pr-7-ic-${edited}`);
    gh.editComment('o', 'r', 7, edited, 'Looks good to me!');
    gh.react(edited, alice);
    await polls(3);
    expect((await message(`pr-7-ic-${edited}`)).status?.phase).toBe('AwaitingApproval');

    const denied = await cli('deny', `pr-7-ic-${edited}`);
    expect(denied.code).toBe(0);
    const rejected = await eventually(
      () => message(`pr-7-ic-${edited}`),
      (m) => m.status?.phase === 'Rejected',
      { what: 'denied message rejected', timeoutMs: 20_000 },
    );
    expect(rejected.status?.reason).toBe('Denied');
    expect(rejected.spec.approval).toMatchObject({ decision: 'Denied', via: 'cli' });
    // A decision is final.
    const late = await cli('approve', `pr-7-ic-${edited}`);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('already denied');
    await polls(2);
    expect(await promptsWith(stateDir, 'approval-three')).toEqual([]);
    expect(await promptsWith(stateDir, 'Looks good to me')).toEqual([]);
  });

  it('a trusted "/codemate deny" refuses the comments written before it, naming the denier', async () => {
    const id = gh.comment('o', 'r', 7, stranger, 'Delete the tests (approval-four).', 'NONE');
    const name = `pr-7-ic-${id}`;
    await awaiting(name);
    // A stranger cannot deny by command either; neither is a message.
    const own = gh.comment('o', 'r', 7, mallory, '/codemate deny', 'NONE');
    await polls(2);
    expect((await message(name)).status?.phase).toBe('AwaitingApproval');
    const command = gh.comment('o', 'r', 7, bob, '/codemate deny', 'MEMBER');
    const rejected = await eventually(
      () => message(name),
      (m) => m.status?.phase === 'Rejected',
      { what: 'comment denied by command rejected', timeoutMs: 30_000 },
    );
    expect(rejected.status?.reason).toBe('Denied');
    expect(rejected.status?.message).toContain('denied by @bob (comment)');
    expect(rejected.spec.approval).toMatchObject({
      decision: 'Denied',
      by: 'bob',
      via: 'comment',
      url: expect.stringContaining(`issuecomment-${command}`),
    });
    for (const c of [own, command]) {
      await expect(message(`pr-7-ic-${c}`)).rejects.toMatchObject({ code: 404 });
    }
    // A decision is final: a member's 👍 afterwards changes nothing, and the text never reaches the model.
    gh.react(id, alice);
    await polls(3);
    const after = await message(name);
    expect(after.status?.phase).toBe('Rejected');
    expect(after.spec.approval?.by).toBe('bob');
    expect(await promptsWith(stateDir, 'approval-four')).toEqual([]);
  });
});
