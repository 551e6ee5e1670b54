import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { binarySetAt } from '../../src/sandbox/binaries.js';
import { sandboxPaths } from '../../src/sandbox/components.js';
import { readPidFile, stopProcess } from '../../src/clients/processes.js';
import { sandboxDown, sandboxUp } from '../../src/sandbox/sandbox.js';
import { eventually } from '../helpers/cluster.js';
import {
  codemateObject,
  operatorKubeconfig,
  secretObject,
  startOperator,
  type OperatorProcess,
} from '../helpers/operator.js';

// This file restarts the apiserver, so it runs its own control plane instead of the shared one.
const bins = binarySetAt(inject('binDir'));
let stateDir: string;
let kube: Kube;
let operator: OperatorProcess;
const namespace = 'resilience';

const up = () => sandboxUp({ stateDir, bins, workloads: false });

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-resilience-'));
  const { paths } = await up();
  kube = Kube.load({ kubeconfig: paths.kubeconfig });
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  for (const name of ['github-token', 'anthropic-key']) {
    await kube.create(secretObject(namespace, name, { token: 'x' }));
  }
  operator = await startOperator({ kubeconfig: await operatorKubeconfig(kube), namespace });
});

afterAll(async () => {
  await operator?.stop();
  await sandboxDown(stateDir);
  await rm(stateDir, { recursive: true, force: true });
});

type Pod = KubeObject & { status?: { phase?: string } };
const pods = () =>
  kube.list<Pod>('v1', 'Pod', namespace, { labelSelector: 'app.kubernetes.io/managed-by=codemate' });
const running = (name: string) =>
  eventually(
    () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace),
    (cm) => cm.status?.phase === 'Running',
    { what: `CodeMate ${name} Running`, timeoutMs: 60_000 },
  );

const apiserverPid = async () => (await readPidFile(sandboxPaths(stateDir).pidFile('kube-apiserver')))!;

describe('operator resilience', () => {
  it('survives an apiserver crash mid-watch; the 410 relist that follows creates no duplicate pods', async () => {
    await kube.create(codemateObject(namespace, 'before'));
    await running('before');
    const [original] = await pods();

    // Move the cluster's resourceVersion well past what the operator's watches have seen, so that after
    // the restart their resourceVersions are older than the new watch cache: 410 Gone, then a relist.
    for (let i = 0; i < 20; i++) {
      await kube.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `churn-${i}`, namespace: 'default' },
      });
    }
    const pid = await apiserverPid();
    process.kill(pid, 'SIGKILL');
    await eventually(
      async () => operator.logs(),
      (logs) => logs.includes('watch broke; restarting it'),
      {
        what: 'operator noticed the broken watches',
      },
    );
    await up();
    expect(operator.child.exitCode).toBeNull();

    await kube.create(codemateObject(namespace, 'after'));
    await running('after');
    const relisted = operator.records().filter((r) => String(r.msg).startsWith('relisting'));
    expect(relisted.map((r) => r.resource)).toEqual(expect.arrayContaining(['pods', 'codemates']));
    expect(operator.logs()).not.toContain('losing the Lease');

    const all = await pods();
    expect(all.map((p) => p.metadata.labels?.['codemate.io/name']).sort()).toEqual(['after', 'before']);
    expect(all.find((p) => p.metadata.labels?.['codemate.io/name'] === 'before')!.metadata.uid).toBe(
      original!.metadata.uid,
    );

    // The restarted watches still see deletions.
    await kube.delete('v1', 'Pod', original!.metadata.name!, namespace);
    await eventually(
      pods,
      (p) => p.length === 2 && p.every((x) => x.metadata.uid !== original!.metadata.uid),
      {
        what: 'deleted pod recreated after the restart',
      },
    );
  });

  it('an outage longer than the renew deadline: it stops acting, campaigns again, and recovers', async () => {
    await stopProcess(await apiserverPid(), 12_000);
    await eventually(
      async () => operator.logs(),
      (logs) => logs.includes('campaigning again'),
      {
        what: 'operator stepped down',
        timeoutMs: 30_000,
      },
    );
    await up();
    await eventually(
      async () => operator.records().filter((r) => r.msg === 'became leader').length,
      (n) => n === 2,
      {
        what: 'operator leads again',
      },
    );
    await kube.create(codemateObject(namespace, 'later'));
    await running('later');
    expect(operator.child.exitCode).toBeNull();
    const names = (await pods()).map((p) => p.metadata.labels?.['codemate.io/name']).sort();
    expect(names).toEqual(['after', 'before', 'later']);
  });
});
