/**
 * spec.monitoring.delivery: WhenIdle, end to end in the sandbox (issue 16): comments posted while a slow
 * turn runs wait, then reach the model after it as ONE prompt (one request), in order, each acknowledged
 * once and each message Delivered once; an operator killed while they wait loses none and doubles none.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { modelRequests, modelSpeed, promptsReaching } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { podShell } from '../helpers/sandbox.js';
import { FaultSandbox } from '../fault/harness.js';

const binDir = inject('binDir');
const alice = { login: 'alice', id: 901 };
const namespace = 'when-idle';
let sandbox: FaultSandbox;
let gh: FakeGitHub;
let kube: Kube;

type Message = CodeMateMessage & KubeObject;
type CM = CodeMate & KubeObject;

const messagesOf = async (codemate: string) =>
  (await kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace)).filter(
    (m) => m.spec.codemate === codemate,
  );
const podExec = (pod: string, script: string) =>
  podShell(binDir, path.join(sandbox.stateDir, 'kubeconfig'), namespace)(pod, script);

/** A CodeMate with delivery WhenIdle whose session has started; its pod and a reader of its state. */
async function whenIdleCodeMate(name: string, pullRequest: number) {
  await sandbox.base.addPull(pullRequest, `branch-${pullRequest}`);
  await kube.create(
    codemateObject(namespace, name, {
      repository: { url: 'https://github.com/o/r.git', branch: `branch-${pullRequest}`, pullRequest },
      monitoring: { intervalSeconds: 2, delivery: 'WhenIdle' },
    }),
  );
  const cm = await eventually(
    () => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, namespace),
    (c) => c.status?.phase === 'Running' && !!c.status.podName && c.status.pullRequest?.state === 'open',
    { what: `CodeMate ${name} Running`, timeoutMs: 60_000, describe: (c) => JSON.stringify(c.status) },
  );
  expect(cm.spec.monitoring?.delivery).toBe('WhenIdle');
  const pod = cm.status!.podName!;
  const state = async () =>
    (await podExec(pod, 'cat "$CODEMATE_STATE_DIR/session-state" 2>/dev/null || true')).trim();
  await eventually(state, (s) => s === 'ready' || s === 'idle', {
    what: 'Claude Code started in the session',
    timeoutMs: 60_000,
  });
  return { pod, state };
}

/** Waits until the messages `names` of `codemate` all wait for the idle session. */
async function allWaiting(codemate: string, names: string[]): Promise<Message[]> {
  const ms = await eventually(
    () => messagesOf(codemate),
    (all) => names.every((n) => all.find((m) => m.metadata.name === n)?.status?.reason === 'WaitingForIdle'),
    {
      what: `${names.length} messages waiting for the idle session`,
      timeoutMs: 20_000,
      describe: (all) => JSON.stringify(all.map((m) => [m.metadata.name, m.status])),
    },
  );
  return ms.filter((m) => names.includes(m.metadata.name));
}

/** Waits until the messages `names` of `codemate` are all Delivered. */
function allDelivered(codemate: string, names: string[]): Promise<Message[]> {
  return eventually(
    () => messagesOf(codemate),
    (all) => names.every((n) => all.find((m) => m.metadata.name === n)?.status?.phase === 'Delivered'),
    {
      what: `${names.length} messages delivered`,
      timeoutMs: 90_000,
      describe: (all) => JSON.stringify(all.map((m) => [m.metadata.name, m.status])),
    },
  );
}

beforeAll(async () => {
  sandbox = await FaultSandbox.start(binDir, {});
  ({ gh, kube } = sandbox);
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
});

afterAll(async () => {
  await modelSpeed(sandbox.stateDir, { chunkDelayMs: 0, chunks: 3 }).catch(() => undefined);
  await sandbox?.stop();
});

describe('delivery: WhenIdle', () => {
  it('three comments posted during a slow turn arrive after it as one prompt, in order, each acknowledged once', async () => {
    const { pod, state } = await whenIdleCodeMate('pr-31', 31);

    // A first comment into the idle session starts a turn that streams for about 15 s.
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 500, chunks: 30 });
    const first = gh.comment('o', 'r', 31, alice, 'Start a long piece of work.', 'MEMBER');
    await promptsReaching(sandbox.stateDir, `[codemate message=pr-31-ic-${first}]`);
    expect(await state()).toBe('busy');

    // Three comments while it streams: they wait, unpasted, for the turn's end.
    const bodies = ['One: rename the handler.', 'Two: add a test for it.', 'Three: update the docs.'];
    const ids: number[] = [];
    for (const body of bodies) ids.push(gh.comment('o', 'r', 31, alice, body, 'MEMBER'));
    const names = ids.map((id) => `pr-31-ic-${id}`);
    const waiting = await allWaiting('pr-31', names);
    expect(await state()).toBe('busy');
    for (const m of waiting) {
      expect(m.status).toMatchObject({ phase: 'Pending', reason: 'WaitingForIdle' });
      // Asking a busy session is no attempt.
      expect(m.status?.attempts ?? 0).toBe(0);
    }
    const turnRequests = (await modelRequests(sandbox.stateDir)).filter((r) => r.tools > 0).length;
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 0, chunks: 3 });

    const delivered = await allDelivered('pr-31', names);
    // Each message its own receipt: Delivered once, at the first attempt, acknowledged by the hook.
    for (const name of names) {
      const m = delivered.find((x) => x.metadata.name === name)!;
      expect(m.status).toMatchObject({ phase: 'Delivered', reason: 'Acknowledged', attempts: 1 });
    }
    const acks = await podExec(pod, 'ls "$CODEMATE_STATE_DIR/acks"');
    for (const name of names) expect(acks.split('\n')).toContain(name);

    // One prompt, in one agent request after the slow turn's, holding the three markers in order, each once.
    for (const name of names) await promptsReaching(sandbox.stateDir, `[codemate message=${name}]`);
    const requests = (await modelRequests(sandbox.stateDir)).filter((r) => r.tools > 0);
    const carrying = requests.filter((r) => r.userTexts.some((t) => names.some((n) => t.includes(n))));
    expect(carrying).toHaveLength(1);
    expect(carrying[0]!.seq).toBeGreaterThan(requests[turnRequests - 1]!.seq);
    const blocks = carrying[0]!.userTexts.filter((t) => names.some((n) => t.includes(n)));
    expect(blocks).toHaveLength(1);
    const positions = names.map((n) => blocks[0]!.indexOf(`[codemate message=${n}]`));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    for (const [i, body] of bodies.entries()) {
      expect(blocks[0]!.indexOf(body)).toBeGreaterThan(positions[i]!);
    }
    for (const name of names) {
      const all = requests.flatMap((r) => r.userTexts).join('\n');
      expect(all.split(`[codemate message=${name}]`)).toHaveLength(2);
    }
  });

  it('an operator killed while they wait loses none and doubles none', async () => {
    const { state } = await whenIdleCodeMate('pr-32', 32);
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 500, chunks: 40 });
    const first = gh.comment('o', 'r', 32, alice, 'Start another long piece of work.', 'MEMBER');
    await promptsReaching(sandbox.stateDir, `[codemate message=pr-32-ic-${first}]`);
    const bodies = ['Restart one.', 'Restart two.', 'Restart three.'];
    const names = bodies.map((body) => `pr-32-ic-${gh.comment('o', 'r', 32, alice, body, 'MEMBER')}`);
    await allWaiting('pr-32', names);
    expect(await state()).toBe('busy');
    await sandbox.kill9('codemate-operator');
    // One more while no operator runs: the new one's poller finds it.
    names.push(
      `pr-32-ic-${gh.comment('o', 'r', 32, alice, 'Posted while the operator was down.', 'MEMBER')}`,
    );
    await sandbox.devUp();
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 0, chunks: 3 });
    await allDelivered('pr-32', names);
    for (const name of names) await promptsReaching(sandbox.stateDir, `[codemate message=${name}]`);
    const requests = (await modelRequests(sandbox.stateDir)).filter((r) => r.tools > 0);
    const all = requests.flatMap((r) => r.userTexts).join('\n');
    // Each exactly once, and the three that waited together in one prompt, in order.
    for (const name of names) expect(all.split(`[codemate message=${name}]`)).toHaveLength(2);
    const block = requests
      .flatMap((r) => r.userTexts)
      .find((t) => t.includes(`[codemate message=${names[0]}]`))!;
    const positions = names.slice(0, 3).map((n) => block.indexOf(`[codemate message=${n}]`));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  }, 300_000);
});
