/**
 * Issue 11's operator defects, end to end in the sandbox: messages wait for an absent session instead of
 * failing, retries back off whatever wakes them, retention never brings a delivered comment back (not
 * even to a replacement pod), and a changed poll interval applies at once.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pollRequestedAnnotation, type CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage, MessageStatus } from '../../src/api/message.js';
import { supervisedInformer } from '../../src/clients/informer.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { promptsReaching } from '../helpers/modelLog.js';
import { podShell, startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';

const binDir = inject('binDir');
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const namespace = 'delivery';
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;

type Message = CodeMateMessage & KubeObject;
type CM = CodeMate & KubeObject;

const getCm = (name: string) => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
const messagesOf = async (codemate: string) =>
  (await kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace)).filter(
    (m) => m.spec.codemate === codemate,
  );

/** A bash script in a session pod of the test's namespace, through kubectl exec. */
const podExec = (pod: string, script: string) =>
  podShell(binDir, path.join(sandbox.stateDir, 'kubeconfig'), namespace)(pod, script);

/** What reached the model through the sessions' real Claude Code, one entry per occurrence of `token`. */
const received = (token: string, count = 1) => promptsReaching(sandbox.stateDir, token, { count });

async function running(name: string): Promise<CM> {
  return eventually(
    () => getCm(name),
    (cm) => cm.status?.phase === 'Running' && !!cm.status.podName && !!cm.status.github?.login,
    { what: `CodeMate ${name} Running`, timeoutMs: 60_000, describe: (cm) => JSON.stringify(cm.status) },
  );
}

async function createCodeMate(name: string, pullRequest: number, spec: Record<string, unknown> = {}) {
  await sandbox.addPull(pullRequest, `branch-${pullRequest}`);
  await kube.create(
    codemateObject(namespace, name, {
      repository: { url: 'https://github.com/o/r.git', branch: `branch-${pullRequest}`, pullRequest },
      monitoring: { intervalSeconds: 2 },
      ...spec,
    }),
  );
}

const specPatch = (name: string, spec: Record<string, unknown>): KubeObject =>
  ({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace },
    spec,
  }) as KubeObject;

function cliMessage(codemate: string, uid: string, name: string, body: string): KubeObject {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMateMessage',
    metadata: {
      name,
      namespace,
      ownerReferences: [
        { apiVersion: 'codemate.io/v1alpha1', kind: 'CodeMate', name: codemate, uid, controller: true },
      ],
    },
    spec: { codemate, source: { type: 'cli', author: 'tester', createdAt: new Date().toISOString() }, body },
  } as KubeObject;
}

/** Counts the status writes of each message while it runs, from a watch. */
function countWrites(): { writes: Map<string, number>; stop(): Promise<void>; start(): Promise<void> } {
  const writes = new Map<string, number>();
  const informer = supervisedInformer<Message>(kube, {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMateMessage',
    plural: 'codematemessages',
    namespace,
    onEvent: (event, m) => {
      if (event === 'update') writes.set(m.metadata.name, (writes.get(m.metadata.name) ?? 0) + 1);
    },
  });
  return { writes, start: () => informer.start(), stop: () => informer.stop() };
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session, { CODEMATE_MESSAGE_RETENTION: '2' });
  ({ gh, kube } = sandbox);
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('messages wait for their session, and retries back off', () => {
  it('while the CodeMate is suspended, messages wait in Pending with the reason, written once, then arrive in order', async () => {
    await createCodeMate('susp', 21);
    const cm = await running('susp');
    await kube.mergePatch(specPatch('susp', { suspend: true }));
    await eventually(
      () => getCm('susp'),
      (c) => c.status?.phase === 'Suspended',
      { what: 'Suspended' },
    );
    const counter = countWrites();
    await counter.start();
    const names = ['susp-cli-1', 'susp-cli-2', 'susp-cli-3'];
    for (const [i, name] of names.entries()) {
      await kube.create(cliMessage('susp', cm.metadata.uid!, name, `queued while suspended ${i + 1}`));
    }
    const waiting = await eventually(
      () => messagesOf('susp'),
      (ms) => ms.length === 3 && ms.every((m) => m.status?.reason === 'WaitingForSession'),
      {
        what: 'three messages waiting for the session',
        describe: (ms) => JSON.stringify(ms.map((m) => m.status)),
      },
    );
    for (const m of waiting) {
      expect(m.status).toMatchObject({ phase: 'Pending', reason: 'WaitingForSession' });
      expect(m.status?.message).toContain('Suspended');
      expect(m.status?.attempts ?? 0).toBe(0);
    }
    // Several poll intervals and CodeMate status writes later, nothing more was written: no spin.
    const polled = (await getCm('susp')).status?.lastMonitorCheck;
    await eventually(
      () => getCm('susp'),
      (c) => c.status?.lastMonitorCheck !== polled,
      { what: 'another poll', timeoutMs: 20_000 },
    );
    await new Promise((r) => setTimeout(r, 5000)); // an observation window, not a wait for a condition
    expect(Object.fromEntries(counter.writes)).toEqual(Object.fromEntries(names.map((n) => [n, 1])));

    await kube.mergePatch(specPatch('susp', { suspend: false }));
    await running('susp');
    await eventually(
      () => messagesOf('susp'),
      (ms) => ms.every((m) => m.status?.phase === 'Delivered'),
      {
        what: 'all delivered after resume',
        timeoutMs: 60_000,
        describe: (ms) => JSON.stringify(ms.map((m) => m.status)),
      },
    );
    await counter.stop();
    // In order, each once; prompts queued together reach the model in one request.
    const got = await received('queued while suspended', 3);
    expect(got.map((p) => /queued while suspended (\d)/.exec(p)?.[1])).toEqual(['1', '2', '3']);
  });

  it('a session blocked on a dialog is retried with backoff, not hundreds of execs, and gets the text once unblocked', async () => {
    await createCodeMate('blocked', 22);
    const cm = await running('blocked');
    const pod = cm.status!.podName!;
    // kwok marks a new pod Ready for a moment before the local pod runtime says it is not: wait until
    // Claude Code has started (its SessionStart hook wrote the state), or that hook would undo the dialog.
    await eventually(
      () => podExec(pod, 'cat "$CODEMATE_STATE_DIR/session-state" 2>/dev/null || true'),
      (state) => /^(ready|idle)$/m.test(String(state)),
      { what: 'Claude Code started in the session', timeoutMs: 60_000 },
    );
    await podExec(pod, 'printf "blocked\\n" > "$CODEMATE_STATE_DIR/session-state"');
    const started = Date.now();
    await kube.create(cliMessage('blocked', cm.metadata.uid!, 'blocked-cli-1', 'sent while blocked'));
    const blocked = await eventually(
      () => messagesOf('blocked'),
      (ms) => ms[0]?.status?.reason === 'SessionBlocked' && (ms[0].status.attempts ?? 0) >= 3,
      { what: 'three blocked attempts', timeoutMs: 30_000, describe: (ms) => JSON.stringify(ms[0]?.status) },
    );
    const status = blocked[0]!.status as MessageStatus;
    const elapsedS = (Date.now() - started) / 1000;
    // 1, 2, 4 s doubling with equal jitter: the third attempt comes no sooner than 1.5 s after the first.
    expect(
      new Date(status.lastAttemptAt!).getTime() - new Date(status.firstAttemptAt!).getTime(),
    ).toBeGreaterThanOrEqual(1400);
    expect(status.attempts!).toBeLessThanOrEqual(2 + Math.log2(elapsedS + 1));
    expect(status.nextAttemptAt).toBeTruthy();
    await podExec(pod, 'printf "idle\\n" > "$CODEMATE_STATE_DIR/session-state"');
    const done = await eventually(
      () => messagesOf('blocked'),
      (ms) => ms[0]?.status?.phase === 'Delivered',
      { what: 'delivered once unblocked', timeoutMs: 60_000 },
    );
    expect(done[0]!.status!.attempts!).toBeLessThanOrEqual(8);
    expect(await received('sent while blocked')).toHaveLength(1);
  });
});

describe('retention keeps what was delivered known', () => {
  it('comments whose messages retention deleted are neither re-created, re-reacted nor re-delivered, even to a new pod', async () => {
    await createCodeMate('ret', 23);
    const cm = await running('ret');
    const ids: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const id = gh.comment('o', 'r', 23, alice, `retention comment ${i}`, 'MEMBER');
      ids.push(id);
      // One at a time, so that the comments' times are far enough apart to order them.
      await eventually(
        async () => ({ ms: await messagesOf('ret'), cm: await getCm('ret') }),
        ({ ms, cm }) =>
          ms.some((m) => m.metadata.name === `ret-ic-${id}` && m.status?.phase === 'Delivered') ||
          !!cm.status?.history?.items?.some((e) => e.startsWith(`ic-${id}@`)),
        { what: `comment ${i} delivered`, timeoutMs: 30_000 },
      );
    }
    const kept = await eventually(
      () => messagesOf('ret'),
      (ms) => ms.length === 2,
      { what: 'retention down to 2', timeoutMs: 30_000 },
    );
    expect(kept.map((m) => m.metadata.name).sort()).toEqual([`ret-ic-${ids[3]}`, `ret-ic-${ids[4]}`].sort());
    const history = (await getCm('ret')).status?.history;
    expect(history?.items?.map((e) => e.split('@')[0])).toEqual(ids.slice(0, 3).map((id) => `ic-${id}`));

    // Watch for any re-creation from here on.
    const created: string[] = [];
    const watch = supervisedInformer<Message>(kube, {
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMateMessage',
      plural: 'codematemessages',
      namespace,
      onEvent: (event, m) => {
        if (event === 'add' && m.spec.codemate === 'ret') created.push(m.metadata.name);
      },
    });
    await watch.start();
    created.length = 0; // the initial list
    const pod = cm.status!.podName!;
    const oldUid = (await kube.get('v1', 'Pod', pod, namespace)).metadata.uid;
    await kube.delete('v1', 'Pod', pod, namespace);
    // The replacement has the same deterministic name, and a new uid.
    await eventually(
      async () => ({ cm: await getCm('ret'), pod: await kube.get('v1', 'Pod', pod, namespace) }),
      ({ cm: c, pod: p }) => c.status?.phase === 'Running' && p.metadata.uid !== oldUid,
      { what: 'a new session pod', timeoutMs: 60_000 },
    );
    const replaced = await running('ret');
    // Several polls of the same listing, one of them asked for at once.
    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: {
        name: 'ret',
        namespace,
        annotations: { [pollRequestedAnnotation]: new Date().toISOString() },
      },
    });
    const checked = (await getCm('ret')).status?.lastMonitorCheck;
    for (let n = 0; n < 3; n++) {
      const before = (await getCm('ret')).status?.lastMonitorCheck;
      await eventually(
        () => getCm('ret'),
        (c) => c.status?.lastMonitorCheck !== before,
        { what: `poll ${n + 1} after the pod was replaced`, timeoutMs: 20_000 },
      );
    }
    expect((await getCm('ret')).status?.lastMonitorCheck).not.toBe(checked);
    await watch.stop();
    expect(created).toEqual([]);
    expect((await messagesOf('ret')).length).toBe(2);
    for (const id of ids)
      expect(gh.reactions.filter((r) => r.id === id && r.content === 'eyes')).toHaveLength(1);
    // Delivered once each before the pod was replaced, never again after it.
    for (let i = 1; i <= 5; i++) expect(await received(`retention comment ${i}`)).toHaveLength(1);
    expect(replaced.status?.podName).toBeDefined();
  });
});

describe('poll interval', () => {
  it('a lowered spec.monitoring.intervalSeconds applies at once, not after the old interval', async () => {
    await createCodeMate('interval', 24, { monitoring: { intervalSeconds: 600 } });
    const first = await eventually(
      () => getCm('interval'),
      (c) => !!c.status?.lastMonitorCheck,
      { what: 'the first poll', timeoutMs: 60_000 },
    );
    await kube.mergePatch(specPatch('interval', { monitoring: { intervalSeconds: 3 } }));
    const later = await eventually(
      () => getCm('interval'),
      (c) => c.status?.lastMonitorCheck !== first.status?.lastMonitorCheck,
      { what: 'a poll on the new interval', timeoutMs: 30_000 },
    );
    expect(later.status?.lastMonitorCheck).toBeDefined();
  });
});

describe('the standing channel into each session', () => {
  /** The operator's count of codemate-inject runs that delivered, by path (channel or exec). */
  async function deliveredBy(): Promise<Record<string, number>> {
    const state = JSON.parse(await readFile(path.join(sandbox.stateDir, 'state.json'), 'utf8')) as {
      ports: { operatorHealth: number };
    };
    const text = await (await fetch(`http://127.0.0.1:${state.ports.operatorHealth}/metrics`)).text();
    const counts: Record<string, number> = { channel: 0, exec: 0 };
    for (const m of text.matchAll(/^codemate_delivery_attempts_total\{(.*)\} (\d+)$/gm)) {
      const p = /path="(\w+)"/.exec(m[1]!)?.[1];
      if (p && /result="delivered"/.test(m[1]!)) counts[p] = (counts[p] ?? 0) + Number(m[2]);
    }
    return counts;
  }

  it('carries messages without an exec each; when it breaks, the next goes by exec at once, each exactly once', async () => {
    await createCodeMate('chan', 25);
    const cm = await running('chan');
    const pod = cm.status!.podName!;
    const send = async (name: string, body: string) => {
      await kube.create(cliMessage('chan', cm.metadata.uid!, name, body));
      await eventually(
        () => messagesOf('chan'),
        (ms) => ms.find((m) => m.metadata.name === name)?.status?.phase === 'Delivered',
        { what: `${name} delivered`, timeoutMs: 30_000 },
      );
    };
    // This pod's serve loops (the ones with its state directory): the process runtime runs them all on
    // one host.
    const serves =
      'for p in $(pgrep -f "codemate-inject [-]-serve"); do ' +
      'tr "\\0" "\\n" </proc/$p/environ | grep -qx "CODEMATE_STATE_DIR=$CODEMATE_STATE_DIR" && echo $p; done; true';
    // The channel opens when the session runs; give it its moment, then deliver through it.
    await eventually(
      () => podExec(pod, serves),
      (out) => out.trim() !== '',
      { what: 'the channel open', timeoutMs: 20_000 },
    );
    const before = await deliveredBy();
    await send('chan-cli-1', 'through the channel, one');
    await send('chan-cli-2', 'through the channel, two');
    const after = await deliveredBy();
    expect(after.channel! - before.channel!).toBe(2);
    expect(after.exec! - before.exec!).toBe(0);

    // Kill the session's serve loop (only this pod's: its state directory) as a message arrives.
    await Promise.all([
      send('chan-cli-3', 'while the channel breaks'),
      podExec(pod, `for p in $(${serves}); do kill -9 $p; done; true`),
    ]);
    await send('chan-cli-4', 'after the channel broke');
    for (const body of [
      'through the channel, one',
      'through the channel, two',
      'while the channel breaks',
      'after the channel broke',
    ]) {
      expect(await received(body)).toHaveLength(1);
    }
    const last = await deliveredBy();
    expect(last.channel! + last.exec! - after.channel! - after.exec!).toBe(2);
  });
});
