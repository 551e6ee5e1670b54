import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execInPod, readPodLogs } from '../../src/clients/exec.js';
import { isForbidden, isNotFound, type KubeObject } from '../../src/clients/kube.js';
import { sandboxNodeName } from '../../src/sandbox/components.js';
import { eventually, useCluster } from '../helpers/cluster.js';

const cluster = useCluster('cp');

async function runningPod(name: string): Promise<KubeObject> {
  const { kube, namespace } = cluster;
  await kube.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { containers: [{ name: 'main', image: 'example.invalid/none:1' }] },
  });
  return eventually(
    () => kube.get<KubeObject>('v1', 'Pod', name, namespace),
    (p) => (p.status as { phase?: string } | undefined)?.phase === 'Running',
    { what: `pod ${name} Running` },
  );
}

describe('the sandbox control plane', () => {
  it('answers /readyz and reports the pinned version', async () => {
    const ready = await cluster.kube.raw('/readyz');
    expect(ready).toEqual({ status: 200, body: 'ok' });
    const version = JSON.parse((await cluster.kube.raw('/version')).body) as { gitVersion: string };
    expect(version.gitVersion).toBe('v1.36.3');
  });

  it('serves a CustomResourceDefinition once applied', async () => {
    const { kube, namespace } = cluster;
    const group = `${namespace}.example.com`;
    await kube.apply({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } },
                },
              },
            },
          },
        ],
      },
    });
    const widget = await eventually(
      () =>
        kube.create({
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name: 'w', namespace },
          spec: { size: 2 },
        }),
      () => true,
      { what: 'Widget CRD served' },
    );
    expect(widget.metadata.uid).toBeTruthy();
    await expect(
      kube.create({
        apiVersion: `${group}/v1`,
        kind: 'Widget',
        metadata: { name: 'bad', namespace },
        spec: { size: 0 },
      }),
    ).rejects.toMatchObject({ code: 422 });
    await kube.delete('apiextensions.k8s.io/v1', 'CustomResourceDefinition', `widgets.${group}`);
  });

  it('enforces RBAC: a ServiceAccount without rights is forbidden', async () => {
    const { kube, namespace } = cluster;
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nobody', namespace } });
    const nobody = kube.withToken(await kube.serviceAccountToken(namespace, 'nobody'));
    const denied = await nobody.list('v1', 'Secret', namespace).catch((e: unknown) => e);
    expect(isForbidden(denied)).toBe(true);

    await kube.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'read-configmaps', namespace },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
    });
    await kube.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'nobody-reads', namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
      subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace }],
    });
    await eventually(
      () => nobody.list('v1', 'ConfigMap', namespace),
      () => true,
      { what: 'granted list' },
    );
    expect(isForbidden(await nobody.list('v1', 'Secret', namespace).catch((e: unknown) => e))).toBe(true);
  });

  it('collects garbage: deleting an owner removes its dependents', async () => {
    const { kube, namespace } = cluster;
    const owner = await kube.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'owner', namespace },
    });
    await kube.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'dependent',
        namespace,
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid! }],
      },
    });
    await kube.delete('v1', 'ConfigMap', 'owner', namespace);
    await eventually(
      () =>
        kube.get('v1', 'ConfigMap', 'dependent', namespace).then(
          () => false,
          (e: unknown) => isNotFound(e),
        ),
      (gone) => gone,
      { what: 'dependent garbage-collected' },
    );
  });

  it('schedules a pod onto the kwok node and reports it Running', async () => {
    const pod = await runningPod('plain');
    expect((pod.spec as { nodeName?: string }).nodeName).toBe(sandboxNodeName);
  });

  it('execs through the API into a host command mapped by kwok Exec: stdin, stdout and exit codes', async () => {
    const { kube, namespace } = cluster;
    await runningPod('shell');
    await kube.create({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Exec',
      metadata: { name: 'shell', namespace },
      spec: {
        execs: [
          { local: { workDir: os.tmpdir(), envs: [{ name: 'CODEMATE_PROBE', value: 'from-exec-object' }] } },
        ],
      },
    });
    // kwok v0.8 never closes the command's stdin, so read a known length instead of waiting for EOF.
    const input = 'hello through stdin';
    const echoed = await eventually(
      () =>
        execInPod(
          kube,
          namespace,
          'shell',
          ['sh', '-c', `head -c ${input.length}; echo " $CODEMATE_PROBE $(pwd)"`],
          {
            container: 'main',
            stdin: input,
            timeoutMs: 20_000,
          },
        ),
      (r) => r.exitCode === 0,
      { what: 'exec succeeded' },
    );
    expect(echoed.stdout).toBe(`hello through stdin from-exec-object ${os.tmpdir()}\n`);

    const failed = await execInPod(kube, namespace, 'shell', ['sh', '-c', 'echo oops >&2; exit 7'], {
      container: 'main',
      timeoutMs: 20_000,
    });
    expect(failed).toEqual({ stdout: '', stderr: 'oops\n', exitCode: 7 });
  });

  it('reads pod logs from a host file mapped by kwok Logs', async () => {
    const { kube, namespace } = cluster;
    await runningPod('logger');
    // kwok reads the file as a container runtime log (CRI format), as a kubelet would.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'codemate-logs-'));
    const logsFile = path.join(dir, 'main.log');
    await writeFile(
      logsFile,
      '2026-11-26T06:00:00.000000000Z stdout F first line from the host\n' +
        '2026-11-26T06:00:01.000000000Z stderr F second line\n',
    );
    await kube.create({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Logs',
      metadata: { name: 'logger', namespace },
      spec: { logs: [{ containers: ['main'], logsFile }] },
    });
    const logs = await eventually(
      () => readPodLogs(kube, namespace, 'logger', 'main'),
      (t) => t.length > 0,
      {
        what: 'logs served',
      },
    );
    expect(logs).toBe('first line from the host\nsecond line\n');
    await rm(dir, { recursive: true, force: true });
  });
});
