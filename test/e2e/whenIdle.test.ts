/**
 * spec.monitoring.delivery: WhenIdle, end to end in the sandbox (issue 16): comments posted while a slow
 * turn runs wait, then reach the model after it as ONE prompt (one request), in order, each acknowledged
 * once and each message Delivered once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { modelRequests, modelServerUrl, promptsReaching } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { podShell, startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';

const binDir = inject('binDir');
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const namespace = 'when-idle';
let sandbox: GitHubSandbox;
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

/** How slowly the sandbox's model server streams its answers. */
async function modelSpeed(config: { chunkDelayMs: number; chunks: number }): Promise<void> {
  const res = await fetch(`${await modelServerUrl(sandbox.stateDir)}/_config`, {
    method: 'PUT',
    body: JSON.stringify(config),
  });
  expect(res.ok).toBe(true);
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, kube } = sandbox);
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
});

afterAll(async () => {
  await modelSpeed({ chunkDelayMs: 0, chunks: 3 }).catch(() => undefined);
  await sandbox?.stop();
});

describe('delivery: WhenIdle', () => {
  it('three comments posted during a slow turn arrive after it as one prompt, in order, each acknowledged once', async () => {
    await sandbox.addPull(31, 'branch-31');
    await kube.create(
      codemateObject(namespace, 'pr-31', {
        repository: { url: 'https://github.com/o/r.git', branch: 'branch-31', pullRequest: 31 },
        monitoring: { intervalSeconds: 2, delivery: 'WhenIdle' },
      }),
    );
    const cm = await eventually(
      () => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', 'pr-31', namespace),
      (c) => c.status?.phase === 'Running' && !!c.status.podName && c.status.pullRequest?.state === 'open',
      { what: 'CodeMate pr-31 Running', timeoutMs: 60_000, describe: (c) => JSON.stringify(c.status) },
    );
    expect(cm.spec.monitoring?.delivery).toBe('WhenIdle');
    const pod = cm.status!.podName!;
    const state = () => podExec(pod, 'cat "$CODEMATE_STATE_DIR/session-state" 2>/dev/null || true');
    await eventually(state, (s) => /^(ready|idle)$/m.test(s), {
      what: 'Claude Code started in the session',
      timeoutMs: 60_000,
    });

    // A first comment into the idle session starts a turn that streams for about 15 s.
    await modelSpeed({ chunkDelayMs: 500, chunks: 30 });
    const first = gh.comment('o', 'r', 31, alice, 'Start a long piece of work.', 'MEMBER');
    await promptsReaching(sandbox.stateDir, `[codemate message=pr-31-ic-${first}]`);
    expect((await state()).trim()).toBe('busy');

    // Three comments while it streams: they wait, unpasted, for the turn's end.
    const bodies = ['One: rename the handler.', 'Two: add a test for it.', 'Three: update the docs.'];
    const ids: number[] = [];
    for (const body of bodies) ids.push(gh.comment('o', 'r', 31, alice, body, 'MEMBER'));
    const names = ids.map((id) => `pr-31-ic-${id}`);
    const waiting = await eventually(
      () => messagesOf('pr-31'),
      (ms) => names.every((n) => ms.find((m) => m.metadata.name === n)?.status?.reason === 'WaitingForIdle'),
      {
        what: 'three messages waiting for the idle session',
        timeoutMs: 20_000,
        describe: (ms) => JSON.stringify(ms.map((m) => [m.metadata.name, m.status])),
      },
    );
    expect((await state()).trim()).toBe('busy');
    for (const m of waiting.filter((x) => names.includes(x.metadata.name))) {
      expect(m.status).toMatchObject({ phase: 'Pending', reason: 'WaitingForIdle' });
      // Asking a busy session is no attempt.
      expect(m.status?.attempts ?? 0).toBe(0);
    }
    const turnRequests = (await modelRequests(sandbox.stateDir)).filter((r) => r.tools > 0).length;
    await modelSpeed({ chunkDelayMs: 0, chunks: 3 });

    const delivered = await eventually(
      () => messagesOf('pr-31'),
      (ms) => names.every((n) => ms.find((m) => m.metadata.name === n)?.status?.phase === 'Delivered'),
      {
        what: 'the three delivered after the turn',
        timeoutMs: 60_000,
        describe: (ms) => JSON.stringify(ms.map((m) => [m.metadata.name, m.status])),
      },
    );
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
});
