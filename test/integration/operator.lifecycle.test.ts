import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import { pvcName } from '../../src/api/pod.js';
import { isNotFound, statusMessage, type KubeObject } from '../../src/clients/kube.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import {
  codemateObject,
  httpGet,
  operatorKubeconfig,
  secretObject,
  startOperator,
  type OperatorProcess,
} from '../helpers/operator.js';

const cluster = useCluster('oplife');
let operator: OperatorProcess;

type Pod = KubeObject & {
  spec: {
    containers: Array<{
      image: string;
      env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
      securityContext: object;
    }>;
    securityContext: object;
    volumes: Array<Record<string, unknown>>;
  };
  status?: { phase?: string };
};

beforeAll(async () => {
  const kubeconfig = await operatorKubeconfig(cluster.kube);
  operator = await startOperator({ kubeconfig, namespace: cluster.namespace });
  await eventually(
    () => httpGet(`http://127.0.0.1:${operator.healthPort}/readyz`),
    (r) => r.status === 200,
    {
      what: `operator ready; logs:\n${operator.logs()}`,
    },
  );
});

afterAll(async () => {
  await operator?.stop();
});

const get = (name: string) =>
  cluster.kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, cluster.namespace);
const condition = (cm: CodeMate, type: string) => cm.status?.conditions?.find((c) => c.type === type);
const podsOf = async (name: string) =>
  cluster.kube.list<Pod>('v1', 'Pod', cluster.namespace, { labelSelector: `codemate.io/name=${name}` });

async function createSecrets(): Promise<void> {
  const { kube, namespace } = cluster;
  for (const [name, value] of [
    ['github-token', 'ghp_test'],
    ['anthropic-key', 'sk-ant-test'],
  ] as const) {
    await kube.apply(secretObject(namespace, name, { token: value }), 'codemate-tests');
  }
}

async function waitForPhase(name: string, phase: string, timeoutMs = 30_000): Promise<CodeMate> {
  return eventually(
    () => get(name),
    (cm) => cm.status?.phase === phase,
    {
      what: `CodeMate ${name} phase ${phase}`,
      timeoutMs,
    },
  );
}

describe('operator: the phase-1 scenario and every failure path', () => {
  it('secrets + CR → a running session pod with the expected spec; delete → gone', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(codemateObject(namespace, 'pr-123'));
    const cm = await waitForPhase('pr-123', 'Running');
    const [pod] = await podsOf('pr-123');
    expect(pod!.metadata.name).toBe(cm.status?.podName);
    expect(pod!.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'CodeMate', name: 'pr-123', uid: cm.metadata.uid, controller: true }),
    ]);
    expect(pod!.status?.phase).toBe('Running');
    const container = pod!.spec.containers[0]!;
    expect(container.image).toBe('codemate-session:test');
    expect(container.env).toContainEqual({
      name: 'GITHUB_TOKEN',
      valueFrom: { secretKeyRef: { name: 'github-token', key: 'token' } },
    });
    expect(container.env).toContainEqual({
      name: 'ANTHROPIC_API_KEY',
      valueFrom: { secretKeyRef: { name: 'anthropic-key', key: 'token' } },
    });
    expect(container.env).toContainEqual({ name: 'CODEMATE_PR', value: '123' });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod!.spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod!.spec.volumes).toContainEqual({ name: 'workspace', emptyDir: {} });

    // Events are written after the status that reports the phase, so they may trail it a moment.
    await eventually(
      () =>
        kube.list<KubeObject & { reason: string }>('v1', 'Event', namespace, {
          fieldSelector: `involvedObject.name=pr-123`,
        }),
      (events) => ['PodCreated', 'SessionRunning'].every((r) => events.some((e) => e.reason === r)),
      { what: 'PodCreated and SessionRunning events' },
    );

    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'pr-123', namespace);
    await eventually(
      () => podsOf('pr-123'),
      (pods) => pods.length === 0,
      { what: 'session pod garbage-collected' },
    );
  });

  it('a missing secret or key leaves the CR Pending with SecretsResolved=False, and it recovers by itself', async () => {
    const { kube, namespace } = cluster;
    await kube.create(
      codemateObject(namespace, 'needs-secret', {
        github: { tokenSecretRef: { name: 'late-github', key: 'pat' } },
      }),
    );
    let cm = await waitForPhase('needs-secret', 'Pending');
    expect(condition(cm, 'SecretsResolved')).toMatchObject({
      status: 'False',
      reason: 'SecretMissing',
    });
    expect(condition(cm, 'SecretsResolved')?.message).toContain(
      'secret "late-github" (spec.github.tokenSecretRef) not found',
    );
    expect(await podsOf('needs-secret')).toEqual([]);

    await kube.apply(secretObject(namespace, 'late-github', { token: 'wrong key' }), 'codemate-tests');
    cm = await eventually(
      () => get('needs-secret'),
      (c) => (condition(c, 'SecretsResolved')?.message ?? '').includes('no key'),
      {
        what: 'missing key reported',
      },
    );
    expect(condition(cm, 'SecretsResolved')?.message).toContain('secret "late-github" has no key "pat"');

    await kube.apply(secretObject(namespace, 'late-github', { pat: 'ghp_x' }), 'codemate-tests');
    cm = await waitForPhase('needs-secret', 'Running');
    expect(condition(cm, 'SecretsResolved')?.status).toBe('True');
  });

  it('recreates a deleted pod', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(codemateObject(namespace, 'recreate'));
    await waitForPhase('recreate', 'Running');
    const [before] = await podsOf('recreate');
    await kube.delete('v1', 'Pod', before!.metadata.name!, namespace);
    const after = await eventually(
      () => podsOf('recreate'),
      (pods) =>
        pods.length === 1 &&
        pods[0]!.metadata.uid !== before!.metadata.uid &&
        pods[0]!.status?.phase === 'Running',
      { what: 'pod recreated' },
    );
    expect(after[0]!.metadata.name).toBe(before!.metadata.name);
    await waitForPhase('recreate', 'Running');
  });

  it('reports a failed pod as phase Failed with the reason, and keeps the pod for its logs', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(codemateObject(namespace, 'fails'));
    await waitForPhase('fails', 'Running');
    const [pod] = await podsOf('fails');
    // What a kubelet reports when the entrypoint exits non-zero (restartPolicy: Never).
    await kube.patchStatusRaw('v1', 'pods', namespace, pod!.metadata.name!, {
      phase: 'Failed',
      conditions: [{ type: 'Ready', status: 'False' }],
      containerStatuses: [
        {
          name: 'session',
          image: 'codemate-session:test',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: {
            terminated: { reason: 'Error', exitCode: 3, message: 'repository not found: example/project' },
          },
        },
      ],
    });
    const cm = await waitForPhase('fails', 'Failed');
    expect(cm.status?.message).toContain('failed: Error, exit code 3, repository not found: example/project');
    expect(condition(cm, 'PodReady')).toMatchObject({ status: 'False', reason: 'Error' });
    expect(await podsOf('fails')).toHaveLength(1);
    const events = await kube.list<KubeObject & { reason: string; type: string }>('v1', 'Event', namespace, {
      fieldSelector: 'involvedObject.name=fails',
    });
    expect(events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'SessionFailed' }));
  });

  it('rolls the pod when the spec changes', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(codemateObject(namespace, 'rolls'));
    await waitForPhase('rolls', 'Running');
    const [before] = await podsOf('rolls');
    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'rolls', namespace },
      spec: { image: 'codemate-session:v2' },
    });
    const after = await eventually(
      () => podsOf('rolls'),
      (pods) =>
        pods.length === 1 &&
        pods[0]!.metadata.uid !== before!.metadata.uid &&
        pods[0]!.status?.phase === 'Running',
      { what: 'pod rolled' },
    );
    expect(after[0]!.spec.containers[0]!.image).toBe('codemate-session:v2');
    const cm = await waitForPhase('rolls', 'Running');
    expect(cm.status?.observedGeneration).toBe(2);
  });

  it('suspend removes the pod and keeps the claim; resume brings the pod back; delete removes both', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(codemateObject(namespace, 'sleepy', { storage: { size: '1Gi' } }));
    const claims = () =>
      kube.list<KubeObject>('v1', 'PersistentVolumeClaim', namespace, {
        labelSelector: 'codemate.io/name=sleepy',
      });
    await eventually(claims, (c) => c.length === 1, { what: 'workspace claim created' });
    await eventually(
      () => podsOf('sleepy'),
      (p) => p.length === 1,
      { what: 'pod created' },
    );
    const [pod] = await podsOf('sleepy');
    expect(pod!.spec.volumes).toContainEqual({
      name: 'workspace',
      persistentVolumeClaim: { claimName: (await claims())[0]!.metadata.name },
    });

    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'sleepy', namespace },
      spec: { suspend: true },
    });
    const cm = await waitForPhase('sleepy', 'Suspended');
    expect(cm.status?.podName).toBeUndefined();
    await eventually(
      () => podsOf('sleepy'),
      (p) => p.length === 0,
      { what: 'pod removed on suspend' },
    );
    expect(await claims()).toHaveLength(1);

    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'sleepy', namespace },
      spec: { suspend: false },
    });
    await eventually(
      () => podsOf('sleepy'),
      (p) => p.length === 1,
      { what: 'pod back on resume' },
    );

    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'sleepy', namespace);
    await eventually(
      async () => (await claims()).length + (await podsOf('sleepy')).length,
      (n) => n === 0,
      {
        what: 'pod and claim garbage-collected',
      },
    );
  });

  it('a session whose claim cannot be bound is Pending and says why', async () => {
    const { kube, namespace } = cluster;
    await createSecrets();
    await kube.create(
      codemateObject(namespace, 'no-class', { storage: { size: '1Gi', storageClassName: 'missing' } }),
    );
    const cm = await waitForPhase('no-class', 'Pending');
    const claim = pvcName(cm);
    expect(cm.status?.message).toContain(
      `claim ${claim} is not bound to a volume of StorageClass missing yet; if this lasts, check that the class exists and its provisioner runs (kubectl describe pvc ${claim})`,
    );
    const withScheduler = await eventually(
      () => get('no-class'),
      (c) => Boolean(c.status?.message?.includes('the scheduler says:')),
      { what: "the scheduler's reason in the status" },
    );
    expect(withScheduler.status?.message).toContain('pod has unbound immediate PersistentVolumeClaims');
    expect(condition(withScheduler, 'PodReady')).toMatchObject({ status: 'False', reason: 'ClaimNotBound' });
    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'no-class', namespace);
  });

  it('the apiserver rejects an invalid CR with a readable message', async () => {
    const { kube, namespace } = cluster;
    const reject = async (spec: Record<string, unknown>) => {
      const error = await kube.create(codemateObject(namespace, 'invalid', spec)).then(
        () => new Error('the apiserver accepted an invalid CodeMate'),
        (e: unknown) => e,
      );
      return statusMessage(error);
    };
    // CEL rules: a URL with credentials, and neither branch nor pullRequest.
    const cel = await reject({ repository: { url: 'https://ghp_secret@github.com/o/r.git' } });
    expect(cel).toContain('spec.repository.url: Invalid value');
    expect(cel).toContain('must be a git URL without credentials');
    expect(cel).toContain('spec.repository needs a branch or a pullRequest');
    // The OpenAPI schema: bounds and enums.
    const schema = await reject({
      monitoring: { intervalSeconds: 0 },
      lifecycle: { onPullRequestClosed: 'Explode' },
    });
    expect(schema).toContain('spec.monitoring.intervalSeconds');
    expect(schema).toContain('should be greater than or equal to 1');
    expect(schema).toContain('spec.lifecycle.onPullRequestClosed: Unsupported value: "Explode"');
    expect(await get('invalid').catch((e: unknown) => isNotFound(e))).toBe(true);
  });

  it('serves metrics with reconcile counts and sessions by phase', async () => {
    const metrics = await httpGet(`http://127.0.0.1:${operator.healthPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/codemate_reconcile_total\{result="success"\} [1-9]/);
    expect(metrics.body).toMatch(/codemate_sessions\{phase="Running"\} [1-9]/);
    expect(metrics.body).toContain('codemate_workqueue_depth');
    expect(metrics.body).toMatch(/^codemate_leader 1$/m);
  });
});
