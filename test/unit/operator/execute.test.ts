import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import type { Kube } from '../../../src/clients/kube.js';
import { executePlan, statusPatch } from '../../../src/operator/execute.js';
import type { Plan } from '../../../src/operator/reconcile.js';

const condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Running',
  message: 'ok',
  lastTransitionTime: 't',
};

describe('statusPatch', () => {
  it('sends only the fields the reconcile owns, never the poller’s', () => {
    const current = {
      phase: 'Running',
      pullRequest: { number: 7, state: 'merged' },
      github: { login: 'bot' },
    };
    // The reconcile ran on a cached copy that still said "open".
    const next = { phase: 'Running', pullRequest: { number: 7, state: 'open' }, lastMonitorCheck: 'old' };
    expect(statusPatch(current, next)).toBeUndefined();
    expect(statusPatch(current, { ...next, phase: 'Completed' })).toEqual({ phase: 'Completed' });
  });

  it('sees no change when only the key order differs', () => {
    const stored = { conditions: [condition], phase: 'Running', podName: 'p' };
    const reordered = {
      podName: 'p',
      phase: 'Running',
      conditions: [Object.fromEntries(Object.entries(condition).reverse())],
    };
    expect(statusPatch(stored, reordered)).toBeUndefined();
  });

  it('sets a dropped field to null', () => {
    expect(statusPatch({ phase: 'Running', podName: 'p' }, { phase: 'Suspended' })).toEqual({
      phase: 'Suspended',
      podName: null,
    });
  });
});

describe('executePlan: the lifecycle actions', () => {
  const cm: CodeMate = {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name: 'pr-1', namespace: 'team', uid: 'uid-1' },
    spec: {
      repository: { url: 'https://github.com/o/r.git', pullRequest: 1 },
      github: { tokenSecretRef: { name: 'gh', key: 'token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic', key: 'token' } },
    },
    status: { phase: 'Running' },
  };
  /** The calls the executor makes, in order: it is the one part that talks to the apiserver. */
  function recordingKube() {
    const calls: unknown[][] = [];
    const record =
      (verb: string) =>
      async (...args: unknown[]) =>
        void calls.push([verb, ...args]);
    const kube = {
      mergePatch: record('mergePatch'),
      delete: record('delete'),
      patchStatus: record('patchStatus'),
    } as unknown as Kube;
    const events = { record: (_cm: CodeMate, event: unknown) => void calls.push(['event', event]) };
    return { kube, calls, events };
  }
  const plan = (actions: Plan['actions']): Plan => ({
    actions,
    events: [{ type: 'Normal', reason: 'Completed', message: 'done' }],
    status: { phase: 'Completed' },
  });

  it('suspend sets spec.suspend, then writes the status and events as usual', async () => {
    const { kube, calls, events } = recordingKube();
    await executePlan(kube, cm, plan([{ type: 'suspend', reason: 'pull request #1 is merged' }]), events);
    expect(calls.map((c) => c[0])).toEqual(['mergePatch', 'patchStatus', 'event']);
    expect(calls[0]![1]).toMatchObject({
      metadata: { name: 'pr-1', namespace: 'team' },
      spec: { suspend: true },
    });
  });

  it('an idle suspend marks the CodeMate as suspended by the operator', async () => {
    const { kube, calls, events } = recordingKube();
    await executePlan(kube, cm, plan([{ type: 'suspend', by: 'idle', reason: 'idle for 2h' }]), events);
    expect(calls[0]![1]).toEqual({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'pr-1', namespace: 'team', annotations: { 'codemate.io/suspended-by': 'idle' } },
      spec: { suspend: true },
    });
  });

  it('resume clears the marks and spec.suspend, on the version the reconcile read', async () => {
    const { kube, calls, events } = recordingKube();
    const suspended = {
      ...cm,
      metadata: { ...cm.metadata, resourceVersion: '41' },
      spec: { ...cm.spec, suspend: true },
    };
    await executePlan(kube, suspended, plan([{ type: 'resume', reason: 'a message waits' }]), events);
    expect(calls[0]![1]).toEqual({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: {
        name: 'pr-1',
        namespace: 'team',
        resourceVersion: '41',
        annotations: { 'codemate.io/suspended-by': null, 'codemate.io/wake-requested-by': null },
      },
      spec: { suspend: false },
    });
  });

  it('a resume that conflicts (a person suspended it since) is retried on a fresh read, not forced', async () => {
    const { kube, events } = recordingKube();
    (kube as unknown as { mergePatch: () => Promise<never> }).mergePatch = () =>
      Promise.reject(Object.assign(new Error('conflict'), { code: 409 }));
    await expect(
      executePlan(kube, cm, plan([{ type: 'resume', reason: 'a message waits' }]), events),
    ).rejects.toMatchObject({ name: 'TemporaryError', retryAfterMs: 500 });
  });

  it('deleteCodeMate deletes it and writes nothing after', async () => {
    const { kube, calls, events } = recordingKube();
    await executePlan(
      kube,
      cm,
      plan([{ type: 'deleteCodeMate', reason: 'pull request #1 is closed' }]),
      events,
    );
    expect(calls).toEqual([['delete', 'codemate.io/v1alpha1', 'CodeMate', 'pr-1', 'team']]);
  });
});
