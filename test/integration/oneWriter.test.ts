/**
 * One writer per branch, against a real apiserver and the operator as its ServiceAccount: a second
 * CodeMate on the same repository and branch reports Conflict naming the first and gets no pod; when the
 * first is deleted, it starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { KubeObject } from '../../src/clients/kube.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import {
  codemateObject,
  httpGet,
  operatorKubeconfig,
  secretObject,
  startOperator,
  type OperatorProcess,
} from '../helpers/operator.js';

const cluster = useCluster('onewriter');
let operator: OperatorProcess;

beforeAll(async () => {
  const { kube, namespace } = cluster;
  operator = await startOperator({ kubeconfig: await operatorKubeconfig(kube), namespace });
  await eventually(
    () => httpGet(`http://127.0.0.1:${operator.healthPort}/readyz`),
    (r) => r.status === 200,
    { what: 'operator ready' },
  );
  for (const name of ['github-token', 'anthropic-key']) {
    await kube.create(secretObject(namespace, name, { token: 'x' }));
  }
});

afterAll(async () => {
  await operator?.stop();
});

const get = (name: string) =>
  cluster.kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, cluster.namespace);
const podsOf = (name: string) =>
  cluster.kube.list('v1', 'Pod', cluster.namespace, { labelSelector: `codemate.io/name=${name}` });
const conflict = (cm: CodeMate) => cm.status?.conditions?.find((c) => c.type === 'Conflict');

describe('one writer per branch', () => {
  it('the second CodeMate on a branch reports Conflict and has no pod, until the first is deleted', async () => {
    const { kube, namespace } = cluster;
    const on = (url: string) => ({
      repository: { url, branch: 'feature/login' },
      monitoring: { enabled: false },
    });
    await kube.create(codemateObject(namespace, 'first', on('https://github.com/example/project.git')));
    await eventually(
      () => get('first'),
      (cm) => cm.status?.phase === 'Running',
      {
        what: 'first Running',
        timeoutMs: 30_000,
      },
    );
    // The same repository, written another way.
    await kube.create(codemateObject(namespace, 'second', on('git@github.com:Example/project')));
    const second = await eventually(
      () => get('second'),
      (cm) => conflict(cm)?.status === 'True',
      {
        what: 'second reports Conflict',
        timeoutMs: 30_000,
      },
    );
    expect(conflict(second)?.message).toContain(`${namespace}/first`);
    expect(second.status?.phase).toBe('Pending');
    expect(conflict((await get('first')) as CodeMate)).toBeUndefined();
    // Past a few reconciles, still no pod.
    await eventually(
      () => get('second'),
      (cm) => (cm.status?.conditions?.length ?? 0) > 0 && cm.status?.observedGeneration === 1,
      {
        what: 'second reconciled',
      },
    );
    await new Promise((r) => setTimeout(r, 3000));
    expect(await podsOf('second')).toEqual([]);

    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'first', namespace);
    const started = await eventually(
      () => get('second'),
      (cm) => cm.status?.phase === 'Running',
      {
        what: 'second Running once first is gone',
        timeoutMs: 45_000,
      },
    );
    expect(conflict(started)).toMatchObject({ status: 'False', reason: 'SoleWriter' });
    expect(await podsOf('second')).toHaveLength(1);
  });
});
