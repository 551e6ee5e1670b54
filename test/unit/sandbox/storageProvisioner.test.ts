/** The sandbox provisioner's decisions, from objects as the apiserver returns them: which claims, which volume, which to delete. */
import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../../src/runtime/errors.js';
import {
  hostPathVolume,
  isReclaimable,
  selectedNodeOf,
  provisionerName,
  wantsVolume,
  type Claim,
  type HostPathVolume,
} from '../../../src/sandbox/storageProvisioner.js';

const root = '/state/volumes';
const placement = { root, reclaimPolicy: 'Delete', nodeHostname: 'codemate-sandbox' };

function claim(annotations: Record<string, string> = {}, spec: Partial<Claim['spec']> = {}): Claim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: 'codemate-pr-1-workspace',
      namespace: 'team',
      uid: '0b6e3c1a-2f44-4d7e-9a51-6c0f3f2d8e11',
      annotations: {
        'volume.kubernetes.io/storage-provisioner': provisionerName,
        'volume.kubernetes.io/selected-node': 'codemate-sandbox',
        ...annotations,
      },
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
      storageClassName: 'codemate-hostpath',
      volumeMode: 'Filesystem',
      ...spec,
    },
  };
}

describe('wantsVolume', () => {
  it.each([
    { name: 'handed to us by the binder', c: claim(), want: true },
    {
      name: 'not handed to anyone yet',
      c: claim({ 'volume.kubernetes.io/storage-provisioner': '' }),
      want: false,
    },
    {
      name: 'another provisioner',
      c: claim({ 'volume.kubernetes.io/storage-provisioner': 'ebs.csi.aws.com' }),
      want: false,
    },
    { name: 'already bound', c: claim({}, { volumeName: 'pvc-x' }), want: false },
  ])('$name → $want', ({ c, want }) => expect(wantsVolume(c)).toBe(want));

  it('reads the beta annotation when the GA one is absent', () => {
    const c = claim();
    c.metadata.annotations = { 'volume.beta.kubernetes.io/storage-provisioner': provisionerName };
    expect(wantsVolume(c)).toBe(true);
  });

  it('leaves a claim that is being deleted', () => {
    const c = claim();
    c.metadata.deletionTimestamp = '2026-11-29T08:00:00Z';
    expect(wantsVolume(c)).toBe(false);
  });
});

describe('hostPathVolume', () => {
  it('is a standard hostPath volume bound to the claim, on the node the scheduler chose', () => {
    expect(selectedNodeOf(claim())).toBe('codemate-sandbox');
    expect(hostPathVolume(claim(), placement)).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {
        name: 'pvc-0b6e3c1a-2f44-4d7e-9a51-6c0f3f2d8e11',
        annotations: { 'pv.kubernetes.io/provisioned-by': provisionerName },
      },
      spec: {
        capacity: { storage: '5Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: 'codemate-hostpath',
        volumeMode: 'Filesystem',
        hostPath: {
          path: '/state/volumes/pvc-0b6e3c1a-2f44-4d7e-9a51-6c0f3f2d8e11_team_codemate-pr-1-workspace',
          type: 'Directory',
        },
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: 'team',
          name: 'codemate-pr-1-workspace',
          uid: '0b6e3c1a-2f44-4d7e-9a51-6c0f3f2d8e11',
        },
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
      },
    });
  });

  it("keeps the claim's access modes and the class's reclaim policy", () => {
    const volume = hostPathVolume(claim({}, { accessModes: ['ReadWriteOncePod'] }), {
      ...placement,
      reclaimPolicy: 'Retain',
    });
    expect(volume.spec.accessModes).toEqual(['ReadWriteOncePod']);
    expect(volume.spec.persistentVolumeReclaimPolicy).toBe('Retain');
  });

  it('has no node affinity without a selected node (a class with Immediate binding)', () => {
    const c = claim();
    delete c.metadata.annotations!['volume.kubernetes.io/selected-node'];
    expect(selectedNodeOf(c)).toBeUndefined();
    expect(hostPathVolume(c, { root, reclaimPolicy: 'Delete' }).spec.nodeAffinity).toBeUndefined();
  });

  it('refuses block volumes and claims without a size, for good', () => {
    expect(() => hostPathVolume(claim({}, { volumeMode: 'Block' }), placement)).toThrow(PermanentError);
    expect(() => hostPathVolume(claim({}, { resources: {} }), placement)).toThrow(/no storage size/);
  });
});

describe('isReclaimable', () => {
  const released = (change: (v: HostPathVolume) => void = () => {}): HostPathVolume => {
    const volume = { ...hostPathVolume(claim(), placement), status: { phase: 'Released' } };
    change(volume);
    return volume;
  };

  it.each([
    { name: 'ours, Released, Delete', v: released(), want: true },
    { name: 'still Bound', v: released((v) => (v.status = { phase: 'Bound' })), want: false },
    {
      name: 'Retain',
      v: released((v) => (v.spec.persistentVolumeReclaimPolicy = 'Retain')),
      want: false,
    },
    {
      name: "another provisioner's",
      v: released((v) => (v.metadata.annotations = { 'pv.kubernetes.io/provisioned-by': 'other' })),
      want: false,
    },
    {
      name: 'a directory outside ours',
      v: released((v) => (v.spec.hostPath.path = '/home/user')),
      want: false,
    },
    {
      name: 'a path that leaves ours',
      v: released((v) => (v.spec.hostPath.path = `${root}/pvc-x/../..`)),
      want: false,
    },
  ])('$name → $want', ({ v, want }) => expect(isReclaimable(v, root)).toBe(want));
});
