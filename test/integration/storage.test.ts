/**
 * The sandbox's storage against the run's control plane: its storage-provisioner, kube-controller-manager's
 * PV binder and the scheduler together give a claim a bound hostPath volume and a directory once a pod
 * uses it, and take both away when the claim goes.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { KubeObject } from '../../src/clients/kube.js';
import type { HostPathVolume } from '../../src/sandbox/storageProvisioner.js';
import { eventually, useCluster } from '../helpers/cluster.js';

const cluster = useCluster('storage');
const volumesDir = path.join(inject('sandboxStateDir'), 'volumes');

type Claim = KubeObject & {
  spec: { storageClassName?: string; volumeName?: string };
  status?: { phase?: string };
};

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

describe('storage-provisioner', () => {
  it('binds a claim to a hostPath volume once a pod uses it, and deletes both with the claim', async () => {
    const { kube, namespace } = cluster;
    const getClaim = () => kube.get<Claim>('v1', 'PersistentVolumeClaim', 'data', namespace);
    await kube.create({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } },
    });
    // The default class, set by admission; WaitForFirstConsumer, so nothing happens before a pod.
    const waiting = await getClaim();
    expect(waiting.spec.storageClassName).toBe('codemate-hostpath');
    expect(waiting.status?.phase).toBe('Pending');

    const created = Date.now();
    await kube.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'user', namespace },
      spec: {
        containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
      },
    });
    const bound = await eventually(getClaim, (c) => c.status?.phase === 'Bound', { what: 'claim Bound' });
    process.stderr.write(`[storage] pod created → claim Bound in ${Date.now() - created} ms\n`);

    const volume = await kube.get<HostPathVolume>('v1', 'PersistentVolume', bound.spec.volumeName!);
    expect(volume.metadata.name).toBe(`pvc-${bound.metadata.uid}`);
    expect(volume.spec).toMatchObject({
      capacity: { storage: '2Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'codemate-hostpath',
      claimRef: { namespace, name: 'data', uid: bound.metadata.uid },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'kubernetes.io/hostname', operator: 'In', values: ['codemate-sandbox'] },
              ],
            },
          ],
        },
      },
    });
    const dir = volume.spec.hostPath.path;
    expect(path.dirname(dir)).toBe(volumesDir);
    expect((await stat(dir)).mode & 0o777).toBe(0o777);
    await eventually(
      () => kube.get<KubeObject & { spec: { nodeName?: string } }>('v1', 'Pod', 'user', namespace),
      (p) => p.spec.nodeName === 'codemate-sandbox',
      { what: 'pod scheduled' },
    );

    // Claim protection keeps the claim while its pod exists; then the volume is Released and reclaimed.
    const deleted = Date.now();
    await kube.delete('v1', 'PersistentVolumeClaim', 'data', namespace);
    await kube.delete('v1', 'Pod', 'user', namespace);
    await eventually(
      async () => {
        const volumes = await kube.list<KubeObject>('v1', 'PersistentVolume');
        return !volumes.some((v) => v.metadata.name === volume.metadata.name) && !(await exists(dir));
      },
      (gone) => gone,
      { what: 'volume and directory deleted' },
    );
    process.stderr.write(
      `[storage] claim deleted → volume and directory gone in ${Date.now() - deleted} ms\n`,
    );
  });
});
