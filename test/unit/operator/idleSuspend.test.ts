import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  codeMateSpecSchema,
  durationMs,
  durationPattern,
  parseSpec,
  suspendedByAnnotation,
  wakeRequestedAnnotation,
  type CodeMate,
} from '../../../src/api/codemate.js';
import { podName } from '../../../src/api/pod.js';
import { desiredPod, specHashAnnotation, taskSha } from '../../../src/operator/podTemplate.js';
import {
  reconcile,
  suspendedMessage,
  type Action,
  type ObservedPod,
} from '../../../src/operator/reconcile.js';

const now = new Date('2026-11-29T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const settings = { defaultImage: 'codemate-session:test' };
const secrets = { gh: { exists: true, keys: ['token'] }, anthropic: { exists: true, keys: ['token'] } };

function codemate(
  spec: Partial<CodeMate['spec']> = {},
  status: CodeMate['status'] = {},
  annotations?: Record<string, string>,
): CodeMate {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: {
      name: 'pr-1',
      namespace: 'team',
      uid: 'uid-1',
      generation: 2,
      resourceVersion: '41',
      ...(annotations ? { annotations } : {}),
    },
    spec: {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 1 },
      github: { tokenSecretRef: { name: 'gh', key: 'token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic', key: 'token' } },
      lifecycle: { onPullRequestClosed: 'Keep', idleSuspendAfter: '2h' },
      ...spec,
    },
    status,
  };
}

function runningPod(cm: CodeMate, overrides: Partial<ObservedPod> = {}): ObservedPod {
  return {
    name: podName(cm),
    phase: 'Running',
    deleting: false,
    ready: true,
    readySince: ago(3 * 3600),
    specHash: desiredPod(cm, settings).metadata.annotations[specHashAnnotation],
    ...overrides,
  };
}

const plan = (cm: CodeMate, pods: ObservedPod[] = [runningPod(cm)]) =>
  reconcile(cm, { pods, secrets }, settings, now);
const lifecycle = (actions: Action[]) => actions.filter((a) => a.type === 'suspend' || a.type === 'resume');

describe('spec.lifecycle.idleSuspendAfter: durations', () => {
  const valid = ['90s', '30m', '2h', '1h30m', '1h30m15s', '2m30s', '1h15s'];
  const invalid = ['', '2', '30M', '1.5h', '30m1h', 'h', '-1h', '2 h', '1d'];
  const crdPattern = new RegExp(durationPattern);

  it.each(valid)('accepts %s', (d) => {
    expect(crdPattern.test(d)).toBe(true);
    expect(codeMateSpecSchema.shape.lifecycle.unwrap().shape.idleSuspendAfter.safeParse(d).success).toBe(
      true,
    );
  });
  it.each(invalid)('refuses %j', (d) => {
    expect(crdPattern.test(d)).toBe(false);
  });
  it('reads Go-style durations', () => {
    expect(durationMs('90s')).toBe(90_000);
    expect(durationMs('30m')).toBe(1_800_000);
    expect(durationMs('1h30m')).toBe(5_400_000);
    expect(durationMs('1h30m15s')).toBe(5_415_000);
  });
  it('refuses a zero duration', () => {
    const spec = codemate({ lifecycle: { onPullRequestClosed: 'Keep', idleSuspendAfter: '0s' } }).spec;
    expect(parseSpec(spec).ok).toBe(false);
    expect(z.string().regex(crdPattern).safeParse('0s').success).toBe(true); // the CRD lets it through
  });
});

describe('reconcile: idle suspend', () => {
  it('suspends a session idle for longer than idleSuspendAfter, marked as the operator’s', () => {
    const cm = codemate({}, { phase: 'Running', session: { state: 'idle', since: ago(2 * 3600 + 1) } });
    const p = plan(cm);
    expect(lifecycle(p.actions)).toEqual([
      {
        type: 'suspend',
        by: 'idle',
        reason: 'the session was idle for 2h (spec.lifecycle.idleSuspendAfter)',
      },
    ]);
    expect(p.actions.map((a) => a.type)).not.toContain('deletePod'); // the next reconcile, on spec.suspend
  });

  it('looks again when the idle time is over, not before', () => {
    const cm = codemate({}, { phase: 'Running', session: { state: 'idle', since: ago(3600) } });
    const p = plan(cm);
    expect(lifecycle(p.actions)).toEqual([]);
    expect(p.requeueAfterMs).toBe(3600_000);
  });

  it('counts idle from the pod’s readiness when the report is older (a report of the pod before a suspend)', () => {
    const cm = codemate({}, { phase: 'Running', session: { state: 'idle', since: ago(5 * 3600) } });
    const p = plan(cm, [runningPod(cm, { readySince: ago(60) })]);
    expect(lifecycle(p.actions)).toEqual([]);
    expect(p.requeueAfterMs).toBe(2 * 3600_000 - 60_000);
  });

  it.each([
    ['working', { state: 'working' as const, since: ago(5 * 3600) }],
    ['blocked', { state: 'blocked' as const, since: ago(5 * 3600) }],
    ['not reported', {}],
  ])('never suspends a session that is %s', (_name, session) => {
    const p = plan(codemate({}, { phase: 'Running', session }));
    expect(lifecycle(p.actions)).toEqual([]);
  });

  it('does nothing without idleSuspendAfter', () => {
    const cm = codemate(
      { lifecycle: { onPullRequestClosed: 'Keep' } },
      { phase: 'Running', session: { state: 'idle', since: ago(30 * 86400) } },
    );
    expect(lifecycle(plan(cm).actions)).toEqual([]);
    expect(plan(cm).requeueAfterMs).toBeUndefined();
  });

  it('does not suspend a pod that is not running the current spec', () => {
    const cm = codemate({}, { phase: 'Running', session: { state: 'idle', since: ago(5 * 3600) } });
    const p = plan(cm, [runningPod(cm, { specHash: 'old' })]);
    expect(lifecycle(p.actions)).toEqual([]);
  });
});

describe('reconcile: the wake', () => {
  const idleSuspended = (wake?: string, storage = true) =>
    codemate(
      { suspend: true, ...(storage ? { storage: { size: '1Gi' } } : {}) },
      { phase: 'Suspended', session: { state: 'idle', since: ago(5 * 3600) } },
      { [suspendedByAnnotation]: 'idle', ...(wake ? { [wakeRequestedAnnotation]: wake } : {}) },
    );

  it('resumes a CodeMate suspended for idleness when a message waits for it', () => {
    const p = plan(idleSuspended('pr-1-ic-7'), []);
    expect(lifecycle(p.actions)).toEqual([
      { type: 'resume', reason: 'message pr-1-ic-7 waits for the session; resuming it' },
    ]);
    expect(p.events).toContainEqual({
      type: 'Normal',
      reason: 'Resuming',
      message: 'message pr-1-ic-7 waits for the session; resuming it',
    });
  });

  it('stays suspended for idleness while no message waits', () => {
    const p = plan(idleSuspended(), []);
    expect(lifecycle(p.actions)).toEqual([]);
    expect(p.status.phase).toBe('Suspended');
    expect(p.status.message).toBe(
      'suspended after 2h idle (spec.lifecycle.idleSuspendAfter); a new message resumes it; the workspace claim is kept',
    );
  });

  it('never resumes a CodeMate a person suspended (no mark), whatever waits', () => {
    const cm = codemate(
      { suspend: true },
      { phase: 'Suspended' },
      { [wakeRequestedAnnotation]: 'pr-1-ic-7' },
    );
    expect(lifecycle(plan(cm, []).actions)).toEqual([]);
  });

  it('clears marks left on a CodeMate that runs again', () => {
    const cm = codemate({}, { phase: 'Running' }, { [suspendedByAnnotation]: 'idle' });
    expect(lifecycle(plan(cm).actions)).toEqual([
      { type: 'resume', reason: 'clearing the marks of an idle suspend' },
    ]);
  });
});

describe('suspended without storage', () => {
  it('says plainly that the workspace is lost, in the status and a Warning event', () => {
    const cm = codemate({ suspend: true }, { phase: 'Running' }, { [suspendedByAnnotation]: 'idle' });
    const p = plan(cm);
    expect(p.status.message).toContain('the workspace is lost');
    expect(p.status.message).toContain('work that was not committed and pushed is gone');
    expect(p.events).toContainEqual({ type: 'Warning', reason: 'Suspended', message: p.status.message });
    expect(suspendedMessage(codemate({ suspend: true }))).toMatch(/^suspended; the workspace is lost/);
  });
});

describe('spec.task: given to one session', () => {
  const task = 'Fix the flaky test.';
  const env = (cm: CodeMate) =>
    (desiredPod(cm, settings).spec.containers as Array<{ env: Array<{ name: string; value?: string }> }>)[0]!
      .env;

  it('records the task once a pod that was given it runs', () => {
    const cm = codemate({ task }, { phase: 'Starting' });
    expect(env(cm)).toContainEqual({ name: 'CODEMATE_TASK', value: task });
    const p = plan(cm);
    expect(p.status.phase).toBe('Running');
    expect(p.status.task).toEqual({ sha: taskSha(task), startedAt: now.toISOString() });
  });

  it('does not record it while no pod runs it', () => {
    const cm = codemate({ task }, { phase: 'Starting' });
    expect(plan(cm, [runningPod(cm, { ready: false })]).status.task).toBeUndefined();
  });

  it('leaves a started task out of the next pod, without rolling the pod that runs', () => {
    const before = codemate({ task }, { phase: 'Starting' });
    const started = codemate(
      { task },
      { phase: 'Running', task: { sha: taskSha(task), startedAt: ago(60) } },
    );
    expect(env(started).map((e) => e.name)).not.toContain('CODEMATE_TASK');
    expect(desiredPod(started, settings).metadata.annotations[specHashAnnotation]).toBe(
      desiredPod(before, settings).metadata.annotations[specHashAnnotation],
    );
    // The pod created before the task was recorded keeps running.
    const p = plan(started, [runningPod(before)]);
    expect(p.actions).toEqual([]);
    expect(p.status.task).toEqual(started.status!.task);
  });

  it('gives a changed task to a new pod', () => {
    const changed = codemate(
      { task: 'Another task.' },
      { phase: 'Running', task: { sha: taskSha(task), startedAt: ago(60) } },
    );
    expect(env(changed)).toContainEqual({ name: 'CODEMATE_TASK', value: 'Another task.' });
    const p = plan(changed, [runningPod(codemate({ task }))]);
    expect(p.actions.map((a) => a.type)).toEqual(['deletePod']);
  });
});
