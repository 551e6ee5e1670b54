/**
 * Idle suspend that wakes on a comment (issue 19, item 4), end to end in the sandbox with the real Claude
 * Code TUI against the local model server: a session idle for spec.lifecycle.idleSuspendAfter is
 * suspended (its pod goes, its claim stays), a trusted comment resumes it, the comment reaches the model
 * once, and the first task (spec.task) does not run again. Without storage, the suspend says plainly
 * that the workspace is lost, and the new pod is not given the task either.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { modelRequests, promptsReaching, promptsWith } from '../helpers/modelLog.js';
import { codemateObject } from '../helpers/operator.js';
import { podShell, sessionNamespace, startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';

const binDir = inject('binDir');
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const namespace = 'idle-suspend';
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;

type CM = CodeMate & KubeObject;
type Message = CodeMateMessage & KubeObject;
type Event = KubeObject & {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject?: { name?: string };
};

const getCm = (name: string) => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
const podsOf = (name: string) =>
  kube.list<KubeObject>('v1', 'Pod', namespace, { labelSelector: `codemate.io/name=${name}` });
const podExec = (pod: string, script: string) =>
  podShell(binDir, path.join(sandbox.stateDir, 'kubeconfig'), namespace)(pod, script);
/** The task the session pod of a CodeMate was given: its container's CODEMATE_TASK. */
async function podTask(name: string): Promise<string | undefined> {
  const [pod] = await kube.list<
    KubeObject & { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } }
  >('v1', 'Pod', namespace, { labelSelector: `codemate.io/name=${name}` });
  return pod!.spec.containers[0]!.env?.find((e) => e.name === 'CODEMATE_TASK')?.value;
}
const cli = (args: string[]) =>
  runCli([...args, '-n', namespace], { env: { KUBECONFIG: path.join(sandbox.stateDir, 'kubeconfig') } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function running(name: string): Promise<CM> {
  return eventually(
    () => getCm(name),
    (cm) => cm.status?.phase === 'Running' && !!cm.status.podName && !cm.spec.suspend,
    { what: `CodeMate ${name} Running`, timeoutMs: 90_000, describe: (cm) => JSON.stringify(cm.status) },
  );
}

async function suspendedForIdleness(name: string): Promise<CM> {
  return eventually(
    () => getCm(name),
    (cm) =>
      cm.status?.phase === 'Suspended' &&
      cm.metadata.annotations?.['codemate.io/suspended-by'] === 'idle' &&
      !cm.status.podName,
    {
      what: `CodeMate ${name} suspended for idleness`,
      timeoutMs: 90_000,
      describe: (cm) => JSON.stringify({ annotations: cm.metadata.annotations, status: cm.status }),
    },
  );
}

async function create(name: string, pullRequest: number, task: string, spec: Record<string, unknown>) {
  await sandbox.addPull(pullRequest, `branch-${pullRequest}`);
  await kube.create(
    codemateObject(namespace, name, {
      repository: { url: 'https://github.com/o/r.git', branch: `branch-${pullRequest}`, pullRequest },
      monitoring: { intervalSeconds: 2 },
      lifecycle: { idleSuspendAfter: '12s' },
      task,
      ...spec,
    }),
  );
}

/** The comment's message, once delivered. */
async function delivered(name: string): Promise<Message> {
  return eventually(
    () => kube.get<Message>('codemate.io/v1alpha1', 'CodeMateMessage', name, namespace),
    (m) => m.status?.phase === 'Delivered',
    { what: `message ${name} delivered`, timeoutMs: 120_000, describe: (m) => JSON.stringify(m.status) },
  ).catch(async (error: unknown) => {
    const cm = await getCm(name.replace(/-ic-.*$/, ''));
    throw new Error(
      `${String(error)}; CodeMate: ${JSON.stringify({ a: cm.metadata.annotations, s: cm.status })}`,
    );
  });
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, kube } = sandbox);
  await sessionNamespace(kube, namespace, 'ghp-session-token');
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('idle suspend', () => {
  it('suspends an idle session with storage; a comment resumes it with its workspace, once, and the task does not run again', async () => {
    const task = 'First task idle-task-keeps: look around the repository.';
    await create('keeps', 51, task, { storage: { size: '1Gi' } });
    const first = await running('keeps');
    await promptsReaching(sandbox.stateDir, 'idle-task-keeps', { timeoutMs: 60_000 });
    // Work that is not committed: it must be there after the resume.
    await podExec(first.status!.podName!, 'echo "draft 51" > "$CODEMATE_WORKSPACE/repo/notes-51.txt"');
    const oldPod = (await podsOf('keeps'))[0]!.metadata.uid;

    const suspended = await suspendedForIdleness('keeps');
    expect(suspended.spec.suspend).toBe(true);
    expect(suspended.status?.message).toContain('idleSuspendAfter');
    expect(suspended.status?.message).toContain('the workspace claim is kept');
    await eventually(
      () => podsOf('keeps'),
      (pods) => pods.length === 0,
      { what: 'the session pod gone' },
    );
    const claims = await kube.list('v1', 'PersistentVolumeClaim', namespace, {
      labelSelector: 'codemate.io/name=keeps',
    });
    expect(claims).toHaveLength(1);
    const described = await cli(['describe', 'keeps']);
    expect(described.stdout).toContain('Suspended:     yes, after 12s idle: a new message resumes it');

    const comment = gh.comment('o', 'r', 51, alice, 'Wake up: comment idle-comment-keeps.', 'MEMBER');
    const message = await delivered(`keeps-ic-${comment}`);
    expect(message.status?.attempts).toBe(1);
    const resumed = await getCm('keeps');
    expect(resumed.spec.suspend).toBe(false);
    expect(resumed.metadata.annotations?.['codemate.io/suspended-by']).toBeUndefined();
    const [pod] = await podsOf('keeps');
    expect(pod!.metadata.uid).not.toBe(oldPod);

    // The workspace is the one the session left, and the comment reached the resumed conversation once.
    expect(
      (await podExec(resumed.status!.podName!, 'cat "$CODEMATE_WORKSPACE/repo/notes-51.txt"')).trim(),
    ).toBe('draft 51');
    const withComment = await promptsReaching(sandbox.stateDir, 'idle-comment-keeps');
    const atComment = (await modelRequests(sandbox.stateDir)).find((r) =>
      r.userTexts.some((t) => t.includes('idle-comment-keeps')),
    );
    expect(JSON.stringify(atComment?.body)).toContain('idle-task-keeps'); // the conversation was resumed
    await sleep(3000); // an observation window: nothing more may reach the model
    expect(await promptsWith(sandbox.stateDir, 'idle-comment-keeps')).toHaveLength(withComment.length);
    expect(withComment).toHaveLength(1);
    expect(await promptsWith(sandbox.stateDir, 'idle-task-keeps')).toHaveLength(1);
    expect(resumed.status?.task?.sha).toBeTruthy();
    expect(await podTask('keeps')).toBeUndefined();
  });

  it('without storage, says the workspace is lost, and the next pod is not given the task; a person’s suspend is not undone by a comment', async () => {
    const task = 'First task idle-task-loses: look around the repository.';
    await create('loses', 52, task, {});
    await running('loses');
    await promptsReaching(sandbox.stateDir, 'idle-task-loses', { timeoutMs: 60_000 });
    expect(await podTask('loses')).toBe(task);

    const suspended = await suspendedForIdleness('loses');
    expect(suspended.status?.message).toContain('the workspace is lost');
    expect(suspended.status?.task?.sha).toBeTruthy();
    const warning = await eventually(
      () => kube.list<Event>('v1', 'Event', namespace),
      (events) =>
        events.some(
          (e) => e.involvedObject?.name === 'loses' && e.reason === 'Suspended' && e.type === 'Warning',
        ),
      { what: 'the Suspended warning event' },
    );
    expect(
      warning.find((e) => e.involvedObject?.name === 'loses' && e.reason === 'Suspended')?.message,
    ).toContain('work that was not committed and pushed is gone');

    const comment = gh.comment('o', 'r', 52, alice, 'Wake up: comment idle-comment-loses.', 'MEMBER');
    await delivered(`loses-ic-${comment}`);
    expect(await podTask('loses')).toBeUndefined();
    const withComment = await promptsReaching(sandbox.stateDir, 'idle-comment-loses');
    await sleep(3000);
    expect(withComment).toHaveLength(1);
    expect(await promptsWith(sandbox.stateDir, 'idle-comment-loses')).toHaveLength(1);
    expect(await promptsWith(sandbox.stateDir, 'idle-task-loses')).toHaveLength(1);

    // Idle again, suspended again; then a person suspends it: a comment no longer resumes it.
    await suspendedForIdleness('loses');
    const own = await cli(['suspend', 'loses']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stderr).toContain('no longer resume it');
    expect(own.stderr).toContain('work that was not committed and pushed is lost');
    const later = gh.comment('o', 'r', 52, alice, 'Still there? comment idle-later-loses.', 'MEMBER');
    const waiting = await eventually(
      () => kube.get<Message>('codemate.io/v1alpha1', 'CodeMateMessage', `loses-ic-${later}`, namespace),
      (m) => m.status?.reason === 'WaitingForSession',
      { what: 'the comment waiting for the suspended session', timeoutMs: 30_000 },
    );
    expect(waiting.status?.phase).toBe('Pending');
    await sleep(5000); // an observation window: the CodeMate must stay suspended
    const kept = await getCm('loses');
    expect(kept.spec.suspend).toBe(true);
    expect(kept.status?.phase).toBe('Suspended');
    expect(kept.metadata.annotations?.['codemate.io/suspended-by']).toBeUndefined();
    expect(await podsOf('loses')).toHaveLength(0);
    expect((await cli(['describe', 'loses'])).stdout).toContain('`codemate resume` resumes it');
    // `codemate resume` does; the comment is delivered then, once.
    expect((await cli(['resume', 'loses'])).code).toBe(0);
    await delivered(`loses-ic-${later}`);
    await promptsReaching(sandbox.stateDir, 'idle-later-loses');
    expect(await promptsWith(sandbox.stateDir, 'idle-later-loses')).toHaveLength(1);
  });
});
