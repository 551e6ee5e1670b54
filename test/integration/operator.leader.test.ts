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

const cluster = useCluster('leader');
const started: OperatorProcess[] = [];
let kubeconfig: string;
const leaseName = `leader-${Math.random().toString(36).slice(2, 8)}`;

const launch = async () => {
  const op = await startOperator({ kubeconfig, namespace: cluster.namespace, leaseName });
  started.push(op);
  return op;
};
const becameLeader = (op: OperatorProcess) => op.records().some((r) => r.msg === 'became leader');
const leaderGauge = async (op: OperatorProcess) =>
  /^codemate_leader (\d)$/m.exec((await httpGet(`http://127.0.0.1:${op.healthPort}/metrics`)).body)?.[1];
const running = (name: string) =>
  eventually(
    () =>
      cluster.kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, cluster.namespace),
    (cm) => cm.status?.phase === 'Running',
    { what: `CodeMate ${name} Running`, timeoutMs: 40_000 },
  );
type Lease = KubeObject & { spec?: { holderIdentity?: string } };
const lease = () => cluster.kube.get<Lease>('coordination.k8s.io/v1', 'Lease', leaseName, 'codemate-system');

beforeAll(async () => {
  kubeconfig = await operatorKubeconfig(cluster.kube);
  for (const name of ['github-token', 'anthropic-key']) {
    await cluster.kube.create(secretObject(cluster.namespace, name, { token: 'x' }));
  }
});

afterAll(async () => {
  await Promise.all(started.map((op) => op.stop('SIGKILL')));
});

describe('leader election', () => {
  it('lets only one of two operators act; a killed leader is replaced within about 15 s', async () => {
    const first = await launch();
    await eventually(async () => becameLeader(first), Boolean, { what: 'first operator leads' });
    const second = await launch();
    await eventually(
      () => httpGet(`http://127.0.0.1:${second.healthPort}/readyz`),
      (r) => r.status === 200,
      {
        what: 'standby ready',
      },
    );

    await cluster.kube.create(codemateObject(cluster.namespace, 'one'));
    await running('one');
    expect(await leaderGauge(first)).toBe('1');
    expect(await leaderGauge(second)).toBe('0');
    expect(becameLeader(second)).toBe(false);
    expect(second.logs()).not.toContain('reconciling CodeMates');
    expect(second.logs()).not.toContain('PodCreated');

    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    await eventually(async () => becameLeader(second), Boolean, {
      what: 'standby takes over',
      timeoutMs: 30_000,
    });
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(20_000);
    expect((await lease()).spec?.holderIdentity).toBe(
      second.records().find((r) => r.msg === 'became leader')?.identity,
    );

    await cluster.kube.create(codemateObject(cluster.namespace, 'two'));
    await running('two');
  });

  it('on SIGTERM the leader finishes, releases the Lease, and exits 0; a new replica leads at once', async () => {
    const alive = (op: OperatorProcess) => op.child.exitCode === null && op.child.signalCode === null;
    const leader = started.find((op) => alive(op) && becameLeader(op))!;
    const code = await leader.stop('SIGTERM');
    expect(code).toBe(0);
    expect(leader.logs()).toContain('released the leader lease');
    expect((await lease()).spec?.holderIdentity).toBeUndefined();

    const next = await launch();
    const start = Date.now();
    await eventually(async () => becameLeader(next), Boolean, { what: 'new replica leads' });
    expect(Date.now() - start).toBeLessThan(5_000);
  });
});
