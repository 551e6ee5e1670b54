import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import {
  reconcile,
  observeClaim,
  observePod,
  type Observed,
  type ObservedPod,
} from '../../../src/operator/reconcile.js';
import { podName, pvcName } from '../../../src/api/pod.js';
import { desiredPod, specHashAnnotation } from '../../../src/operator/podTemplate.js';

const now = new Date('2026-11-26T12:00:00Z');
const settings = { defaultImage: 'codemate-session:test' };

function codemate(spec: Partial<CodeMate['spec']> = {}, status?: CodeMate['status']): CodeMate {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name: 'pr-1', namespace: 'team', uid: 'uid-1', generation: 3 },
    spec: {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 1 },
      github: { tokenSecretRef: { name: 'gh', key: 'token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic', key: 'token' } },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const secretsOk = { gh: { exists: true, keys: ['token'] }, anthropic: { exists: true, keys: ['token'] } };

function pod(cm: CodeMate, overrides: Partial<ObservedPod> = {}): ObservedPod {
  return {
    name: podName(cm),
    phase: 'Running',
    deleting: false,
    ready: true,
    specHash: desiredPod(cm, settings).metadata.annotations[specHashAnnotation],
    ...overrides,
  };
}

function observed(o: Partial<Observed> = {}): Observed {
  return { pods: [], secrets: secretsOk, ...o };
}

const condition = (plan: ReturnType<typeof reconcile>, type: string) =>
  plan.status.conditions?.find((c) => c.type === type);

describe('reconcile: phase transitions', () => {
  const cm = codemate();
  const cases: Array<{
    name: string;
    cm?: CodeMate;
    observed: Observed;
    phase: string;
    actions: string[];
    podReady: string;
  }> = [
    {
      name: 'no pod, secrets present → create the pod',
      observed: observed(),
      phase: 'Starting',
      actions: ['createPod'],
      podReady: 'False',
    },
    {
      name: 'missing secret → Pending, no pod',
      observed: observed({ secrets: { gh: { exists: false, keys: [] }, anthropic: secretsOk.anthropic } }),
      phase: 'Pending',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'pod pending → Starting',
      observed: observed({ pods: [pod(cm, { phase: 'Pending', ready: false })] }),
      phase: 'Starting',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'pod running but not ready → Starting',
      observed: observed({ pods: [pod(cm, { ready: false })] }),
      phase: 'Starting',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'pod ready → Running',
      observed: observed({ pods: [pod(cm)] }),
      phase: 'Running',
      actions: [],
      podReady: 'True',
    },
    {
      name: 'pod failed → Failed, pod kept for its logs',
      observed: observed({
        pods: [
          pod(cm, {
            phase: 'Failed',
            ready: false,
            terminated: { reason: 'Error', exitCode: 3, message: 'clone failed' },
          }),
        ],
      }),
      phase: 'Failed',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'session exited → Failed',
      observed: observed({ pods: [pod(cm, { phase: 'Succeeded', ready: false })] }),
      phase: 'Failed',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'spec changed → delete the pod to roll it',
      observed: observed({ pods: [pod(cm, { specHash: 'old' })] }),
      phase: 'Starting',
      actions: ['deletePod'],
      podReady: 'False',
    },
    {
      name: 'old pod terminating → wait',
      observed: observed({ pods: [pod(cm, { deleting: true })] }),
      phase: 'Starting',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'suspend with a pod → delete it, Suspended',
      cm: codemate({ suspend: true }),
      observed: observed({ pods: [pod(codemate({ suspend: true }))] }),
      phase: 'Suspended',
      actions: ['deletePod'],
      podReady: 'False',
    },
    {
      name: 'suspend without a pod → Suspended',
      cm: codemate({ suspend: true }),
      observed: observed(),
      phase: 'Suspended',
      actions: [],
      podReady: 'False',
    },
    {
      name: 'storage without a claim → create claim and pod',
      cm: codemate({ storage: { size: '5Gi' } }),
      observed: observed(),
      phase: 'Starting',
      actions: ['createPvc', 'createPod'],
      podReady: 'False',
    },
    {
      name: 'a stray owned pod under another name is deleted',
      observed: observed({
        pods: [pod(cm), { name: 'codemate-pr-1-old', phase: 'Running', deleting: false, ready: true }],
      }),
      phase: 'Running',
      actions: ['deletePod'],
      podReady: 'True',
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const plan = reconcile(c.cm ?? cm, c.observed, settings, now);
      expect(plan.status.phase).toBe(c.phase);
      expect(plan.actions.map((a) => a.type)).toEqual(c.actions);
      expect(condition(plan, 'PodReady')?.status).toBe(c.podReady);
      expect(condition(plan, 'Ready')?.status).toBe(c.phase === 'Running' ? 'True' : 'False');
      expect(plan.status.observedGeneration).toBe(3);
      for (const cond of plan.status.conditions ?? []) expect(cond.observedGeneration).toBe(3);
    });
  }
});

describe('reconcile: details', () => {
  it('names the missing secret and key, and recovers once they exist', () => {
    const cm = codemate();
    const missingKey = reconcile(
      cm,
      observed({ secrets: { gh: { exists: true, keys: ['other'] }, anthropic: secretsOk.anthropic } }),
      settings,
      now,
    );
    expect(condition(missingKey, 'SecretsResolved')).toMatchObject({
      status: 'False',
      reason: 'SecretMissing',
      message: 'secret "gh" has no key "token" (spec.github.tokenSecretRef)',
    });
    expect(missingKey.events).toContainEqual(
      expect.objectContaining({ type: 'Warning', reason: 'SecretMissing' }),
    );
    expect(missingKey.requeueAfterMs).toBeGreaterThan(0);

    const recovered = reconcile({ ...cm, status: missingKey.status }, observed(), settings, now);
    expect(condition(recovered, 'SecretsResolved')?.status).toBe('True');
    expect(recovered.actions.map((a) => a.type)).toEqual(['createPod']);
  });

  it('does not repeat the secret warning while nothing changed', () => {
    const cm = codemate();
    const o = observed({ secrets: {} });
    const first = reconcile(cm, o, settings, now);
    const second = reconcile({ ...cm, status: first.status }, o, settings, new Date(now.getTime() + 10_000));
    expect(second.events).toEqual([]);
    expect(second.status).toEqual(first.status);
  });

  it('keeps lastTransitionTime while a condition holds', () => {
    const cm = codemate();
    const running = reconcile(cm, observed({ pods: [pod(cm)] }), settings, now);
    const later = reconcile(
      { ...cm, status: running.status },
      observed({ pods: [pod(cm)] }),
      settings,
      new Date(now.getTime() + 60_000),
    );
    expect(condition(later, 'PodReady')?.lastTransitionTime).toBe(now.toISOString());
  });

  it('reports the failure reason from the container state', () => {
    const cm = codemate();
    const plan = reconcile(
      cm,
      observed({
        pods: [
          pod(cm, {
            phase: 'Failed',
            ready: false,
            terminated: { reason: 'Error', exitCode: 3, message: 'repository not found' },
          }),
        ],
      }),
      settings,
      now,
    );
    expect(plan.status.message).toBe(
      `session pod ${podName(cm)} failed: Error, exit code 3, repository not found`,
    );
    expect(plan.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'SessionFailed' }));
  });

  it('keeps the claim while suspended', () => {
    const cm = codemate({ suspend: true, storage: { size: '1Gi' } });
    const plan = reconcile(cm, observed({ pvc: { name: pvcName(cm) } }), settings, now);
    expect(plan.actions).toEqual([]);
    expect(plan.status.message).toContain('workspace claim is kept');
  });
});

describe('reconcile: what the poller found on GitHub', () => {
  it('reports the linked pull request and the token login as conditions, or that they are not known yet', () => {
    const unknown = reconcile(codemate(), observed({ pods: [pod(codemate())] }), settings, now);
    expect(condition(unknown, 'PullRequestLinked')).toMatchObject({
      status: 'False',
      reason: 'NoPullRequestYet',
    });
    expect(condition(unknown, 'GitHubAuthenticated')).toMatchObject({
      status: 'Unknown',
      reason: 'NotCheckedYet',
    });
    const known = codemate({}, { pullRequest: { number: 1, state: 'open' }, github: { login: 'bot' } });
    const plan = reconcile(known, observed({ pods: [pod(known)] }), settings, now);
    expect(condition(plan, 'PullRequestLinked')).toMatchObject({
      status: 'True',
      message: 'following pull request #1 (open)',
    });
    expect(condition(plan, 'GitHubAuthenticated')).toMatchObject({
      status: 'True',
      message: expect.stringContaining('@bot'),
    });
    expect(plan.status.phase).toBe('Running');

    const rejected = codemate(
      {},
      { github: { error: 'GitHub rejected the token in secret gh (key token): 401' } },
    );
    expect(condition(reconcile(rejected, observed(), settings, now), 'GitHubAuthenticated')).toMatchObject({
      status: 'False',
      reason: 'TokenRejected',
      message: expect.stringContaining('secret gh'),
    });
    const off = codemate({ monitoring: { enabled: false, intervalSeconds: 60, delivery: 'Immediate' } });
    expect(condition(reconcile(off, observed(), settings, now), 'GitHubAuthenticated')).toMatchObject({
      status: 'Unknown',
      reason: 'MonitoringDisabled',
    });
  });

  it('marks a kept session Completed once its pull request is merged or closed, and Running again on reopen', () => {
    for (const state of ['merged', 'closed']) {
      const cm = codemate({}, { phase: 'Running', pullRequest: { number: 1, state } });
      const plan = reconcile(cm, observed({ pods: [pod(cm)] }), settings, now);
      expect(plan.status.phase).toBe('Completed');
      expect(plan.status.message).toContain(`pull request #1 is ${state}`);
      expect(condition(plan, 'Ready')).toMatchObject({ status: 'True', reason: 'Completed' });
      expect(plan.actions).toEqual([]);
      expect(plan.events.map((e) => e.reason)).toEqual(['Completed']);
    }
    const reopened = codemate({}, { phase: 'Completed', pullRequest: { number: 1, state: 'open' } });
    expect(reconcile(reopened, observed({ pods: [pod(reopened)] }), settings, now).status.phase).toBe(
      'Running',
    );
    // Under Suspend or Delete the plan changes the object (below); the session is not "kept", so not Completed.
    for (const policy of ['Suspend', 'Delete'] as const) {
      const cm = codemate(
        { lifecycle: { onPullRequestClosed: policy } },
        { pullRequest: { number: 1, state: 'merged' } },
      );
      expect(reconcile(cm, observed({ pods: [pod(cm)] }), settings, now).status.phase).toBe('Running');
    }
    // A session that is not running is not Completed: Suspend and failures keep their own phase.
    const suspended = codemate({ suspend: true }, { pullRequest: { number: 1, state: 'merged' } });
    expect(reconcile(suspended, observed(), settings, now).status.phase).toBe('Suspended');
  });
});

describe('reconcile: the lifecycle when the pull request closes', () => {
  const closedPr = (state: string, number = 1) => ({
    phase: 'Running' as const,
    pullRequest: { number, state },
  });
  const lifecycle = (onPullRequestClosed: 'Keep' | 'Suspend' | 'Delete') => ({
    lifecycle: { onPullRequestClosed },
  });
  const cases: Array<{
    name: string;
    cm: CodeMate;
    pods?: 'running' | 'none';
    phase: string;
    actions: string[];
  }> = [
    {
      name: 'open, Suspend → nothing',
      cm: codemate(lifecycle('Suspend'), closedPr('open')),
      phase: 'Running',
      actions: [],
    },
    {
      name: 'open, Delete → nothing',
      cm: codemate(lifecycle('Delete'), closedPr('open')),
      phase: 'Running',
      actions: [],
    },
    {
      name: 'merged, Keep → Completed',
      cm: codemate(lifecycle('Keep'), closedPr('merged')),
      phase: 'Completed',
      actions: [],
    },
    {
      name: 'merged, no lifecycle → Keep',
      cm: codemate({}, closedPr('merged')),
      phase: 'Completed',
      actions: [],
    },
    {
      name: 'closed, Keep, session not running → not Completed',
      cm: codemate(lifecycle('Keep'), closedPr('closed')),
      pods: 'none',
      phase: 'Starting',
      actions: ['createPod'],
    },
    {
      name: 'merged, Suspend → set spec.suspend',
      cm: codemate(lifecycle('Suspend'), closedPr('merged')),
      phase: 'Running',
      actions: ['suspend'],
    },
    {
      name: 'closed, Suspend, already suspended → nothing more',
      cm: codemate({ ...lifecycle('Suspend'), suspend: true }, closedPr('closed')),
      pods: 'none',
      phase: 'Suspended',
      actions: [],
    },
    {
      name: 'merged, Delete → delete the CodeMate',
      cm: codemate(lifecycle('Delete'), closedPr('merged')),
      phase: 'Running',
      actions: ['deleteCodeMate'],
    },
    {
      name: 'closed, Delete, no pod yet → delete, and create nothing first',
      cm: codemate(lifecycle('Delete'), closedPr('closed')),
      pods: 'none',
      phase: 'Starting',
      actions: ['deleteCodeMate'],
    },
    {
      name: 'closed, but not the pull request the spec names now → nothing',
      cm: codemate(lifecycle('Delete'), closedPr('closed', 2)),
      phase: 'Running',
      actions: [],
    },
  ];
  it.each(cases)('$name', ({ cm, pods, phase, actions }) => {
    const plan = reconcile(cm, observed({ pods: pods === 'none' ? [] : [pod(cm)] }), settings, now);
    expect(plan.status.phase).toBe(phase);
    expect(plan.actions.map((a) => a.type)).toEqual(actions);
  });

  it('says why it suspends or deletes', () => {
    const cm = codemate(lifecycle('Suspend'), closedPr('merged', 1));
    expect(reconcile(cm, observed({ pods: [pod(cm)] }), settings, now).actions).toEqual([
      { type: 'suspend', reason: 'pull request #1 is merged (spec.lifecycle.onPullRequestClosed: Suspend)' },
    ]);
  });

  it('links a branch-only CodeMate to whichever pull request the poller found, closed or not', () => {
    const cm = codemate(
      { ...lifecycle('Suspend'), repository: { url: 'https://github.com/o/r.git', branch: 'feature' } },
      closedPr('closed', 7),
    );
    expect(reconcile(cm, observed({ pods: [pod(cm)] }), settings, now).actions.map((a) => a.type)).toEqual([
      'suspend',
    ]);
  });
});

describe('desired pod', () => {
  it('is restricted, owned, labelled, and takes credentials from secretKeyRefs', () => {
    const cm = codemate({
      github: { tokenSecretRef: { name: 'gh', key: 'pat' }, user: { name: 'Bot', email: 'b@x' } },
    });
    const p = desiredPod(cm, settings);
    expect(p.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'codemate.io/v1alpha1',
        kind: 'CodeMate',
        name: 'pr-1',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(p.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'codemate',
      'codemate.io/name': 'pr-1',
    });
    const spec = p.spec as {
      securityContext: object;
      containers: Array<{ env: Array<{ name: string }>; securityContext: object; image: string }>;
    };
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.containers[0]!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.containers[0]!.image).toBe('codemate-session:test');
    expect(spec.containers[0]!.env).toContainEqual({
      name: 'GITHUB_TOKEN',
      valueFrom: { secretKeyRef: { name: 'gh', key: 'pat' } },
    });
    expect(spec.containers[0]!.env).toContainEqual({ name: 'CODEMATE_GIT_USER_NAME', value: 'Bot' });
    expect(JSON.stringify(p)).not.toMatch(/ghp_|sk-ant/);
  });

  it('has a deterministic, bounded name and a spec hash that follows the spec', () => {
    const long = codemate();
    long.metadata.name = 'x'.repeat(200);
    expect(podName(long).length).toBeLessThanOrEqual(63);
    expect(podName(long)).toBe(podName(long));
    const a = desiredPod(codemate(), settings).metadata.annotations[specHashAnnotation];
    const b = desiredPod(codemate({ image: 'other:1' }), settings).metadata.annotations[specHashAnnotation];
    expect(a).not.toBe(b);
  });
});

describe('reconcile: a pod that waits for its claim or a node says why', () => {
  const cm = codemate({ storage: { size: '5Gi' } });
  const claim = pvcName(cm);
  const pending = pod(cm, { phase: 'Pending', ready: false });
  const cases: Array<{
    name: string;
    observed: Observed;
    phase: string;
    reason: string;
    message: string;
    podReadyMessage?: string;
  }> = [
    {
      name: 'no StorageClass at all',
      observed: observed({
        pods: [
          {
            ...pending,
            unschedulable: '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
          },
        ],
        pvc: { name: claim, phase: 'Pending' },
      }),
      phase: 'Pending',
      reason: 'ClaimNotBound',
      message: `claim ${claim} has no StorageClass and the cluster has no default one, so no volume will be provisioned for it; set spec.storage.storageClassName to a class from \`kubectl get storageclass\`, or create a PersistentVolume for the claim; the scheduler says: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.`,
    },
    {
      name: 'a class that does not exist, or has no provisioner that answers',
      observed: observed({
        pods: [pending],
        pvc: { name: claim, phase: 'Pending', storageClassName: 'fast' },
      }),
      phase: 'Pending',
      reason: 'ClaimNotBound',
      message: `claim ${claim} is not bound to a volume of StorageClass fast yet; if this lasts, check that the class exists and its provisioner runs (kubectl describe pvc ${claim})`,
    },
    {
      name: 'handed to a provisioner that has not answered',
      observed: observed({
        pods: [pending],
        pvc: {
          name: claim,
          phase: 'Pending',
          storageClassName: 'codemate-hostpath',
          provisioner: 'codemate.io/hostpath',
        },
      }),
      phase: 'Pending',
      reason: 'ClaimNotBound',
      message: `waiting for provisioner codemate.io/hostpath to create a volume for claim ${claim}; if this lasts, check that the provisioner runs (kubectl describe pvc ${claim})`,
    },
    {
      name: 'a claim whose volume is gone',
      observed: observed({ pods: [pending], pvc: { name: claim, phase: 'Lost' } }),
      phase: 'Pending',
      reason: 'ClaimNotBound',
      message: `claim ${claim} lost its volume; its files are gone unless the volume comes back (kubectl describe pvc ${claim})`,
    },
    {
      name: 'bound claim, no node fits',
      observed: observed({
        pods: [{ ...pending, unschedulable: '0/1 nodes are available: 1 Insufficient memory.' }],
        pvc: { name: claim, phase: 'Bound' },
      }),
      phase: 'Pending',
      reason: 'Unschedulable',
      message: `pod ${pending.name} cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory.`,
    },
    {
      name: 'bound claim, pod placed and starting',
      observed: observed({ pods: [pending], pvc: { name: claim, phase: 'Bound' } }),
      phase: 'Starting',
      reason: 'NotReady',
      message: `pod ${pending.name} is Pending`,
      podReadyMessage: `pod ${pending.name} is not ready`,
    },
  ];
  it.each(cases)('$name → $phase ($reason)', (c) => {
    const plan = reconcile(cm, c.observed, settings, now);
    expect(plan.status.phase).toBe(c.phase);
    expect(plan.status.message).toBe(c.message);
    expect(condition(plan, 'PodReady')).toMatchObject({
      status: 'False',
      reason: c.reason,
      message: c.podReadyMessage ?? c.message,
    });
    expect(condition(plan, 'Ready')).toMatchObject({ status: 'False', reason: c.phase });
    expect(plan.actions).toEqual([]);
    expect(plan.requeueAfterMs).toBeGreaterThan(0);
  });

  it('a running pod is not judged by its claim', () => {
    const plan = reconcile(
      cm,
      observed({ pods: [pod(cm)], pvc: { name: claim, phase: 'Pending' } }),
      settings,
      now,
    );
    expect(plan.status.phase).toBe('Running');
  });
});

describe('observeClaim', () => {
  it('extracts phase, class and the provisioner the binder asked', () => {
    expect(
      observeClaim({
        metadata: {
          name: 'c',
          annotations: { 'volume.kubernetes.io/storage-provisioner': 'codemate.io/hostpath' },
        },
        spec: { storageClassName: 'codemate-hostpath' },
        status: { phase: 'Pending' },
      }),
    ).toEqual({
      name: 'c',
      phase: 'Pending',
      storageClassName: 'codemate-hostpath',
      provisioner: 'codemate.io/hostpath',
    });
    expect(observeClaim({ metadata: { name: 'c' } })).toEqual({ name: 'c' });
  });
});

describe('observePod', () => {
  it("keeps the scheduler's message while the pod is unschedulable", () => {
    const observedPod = observePod({
      metadata: { name: 'p' },
      status: {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/1 nodes are available',
          },
        ],
      },
    });
    expect(observedPod.unschedulable).toBe('0/1 nodes are available');
    expect(
      observePod({
        metadata: { name: 'p' },
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
      }).unschedulable,
    ).toBeUndefined();
  });

  it('extracts phase, readiness, deletion and the session container state', () => {
    expect(
      observePod({
        metadata: {
          name: 'p',
          deletionTimestamp: '2026-01-01T00:00:00Z',
          annotations: { [specHashAnnotation]: 'h' },
        },
        status: {
          phase: 'Failed',
          conditions: [{ type: 'Ready', status: 'False' }],
          containerStatuses: [{ name: 'session', state: { terminated: { reason: 'Error', exitCode: 1 } } }],
        },
      }),
    ).toEqual({
      name: 'p',
      phase: 'Failed',
      deleting: true,
      specHash: 'h',
      ready: false,
      terminated: { reason: 'Error', exitCode: 1 },
    });
  });
});

describe('the token budget', () => {
  const usage = { inputTokens: 900, outputTokens: 150, cacheReadTokens: 50_000, cacheCreationTokens: 0 };
  it('says why messages wait once the budget is used up, and nothing without a budget', () => {
    const spent = reconcile(codemate({ budget: { maxTokens: 1000 } }, { usage }), observed(), settings, now);
    expect(condition(spent, 'WithinBudget')).toMatchObject({
      status: 'False',
      reason: 'BudgetExhausted',
      message: expect.stringContaining('used 1050 tokens of its token budget of 1000') as string,
    });
    const room = reconcile(codemate({ budget: { maxTokens: 2000 } }, { usage }), observed(), settings, now);
    expect(condition(room, 'WithinBudget')).toMatchObject({ status: 'True', reason: 'UnderBudget' });
    const today = { ...usage, today: { date: '2026-11-26', tokens: 700 } };
    const daily = reconcile(
      codemate({ budget: { maxTokensPerDay: 600 } }, { usage: today }),
      observed(),
      settings,
      now,
    );
    expect(condition(daily, 'WithinBudget')).toMatchObject({
      status: 'False',
      message: expect.stringContaining(
        '700 tokens on 2026-11-26 (UTC) of its daily token budget of 600',
      ) as string,
    });
    const nextDay = reconcile(
      codemate({ budget: { maxTokensPerDay: 600 } }, { usage: today }),
      observed(),
      settings,
      new Date('2026-11-27T00:00:01Z'),
    );
    expect(condition(nextDay, 'WithinBudget')).toMatchObject({ status: 'True' });
    const none = reconcile(codemate({}, spent.status), observed(), settings, now);
    expect(condition(none, 'WithinBudget')).toBeUndefined();
  });
});
