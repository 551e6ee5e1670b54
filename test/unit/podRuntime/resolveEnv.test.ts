import { describe, expect, it } from 'vitest';
import type { Kube } from '../../../src/clients/kube.js';
import { resolveEnv, type Pod } from '../../../src/podRuntime/podRuntime.js';
import { TemporaryError } from '../../../src/runtime/errors.js';

/** The objects a kubelet would read for the pod's environment, and nothing else. */
const objects: Record<string, { data: Record<string, string> }> = {
  'Secret/gh': { data: { token: Buffer.from('ghp-x').toString('base64') } },
  'ConfigMap/settings': { data: { level: 'debug' } },
};
const kube = {
  get: async (_apiVersion: string, kind: string, name: string) => {
    const object = objects[`${kind}/${name}`];
    if (!object) throw Object.assign(new Error('not found'), { code: 404 });
    return object;
  },
} as unknown as Kube;

const pod: Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'op-1', namespace: 'cm', uid: 'u-1' },
  spec: { nodeName: 'codemate-sandbox', serviceAccountName: 'op', containers: [] },
};

describe('resolveEnv', () => {
  it('resolves values, Secret and ConfigMap keys and the fields the chart uses, as a kubelet does', async () => {
    expect(
      await resolveEnv(kube, pod, [
        { name: 'PLAIN', value: 'v' },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'gh', key: 'token' } } },
        { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'level' } } },
        { name: 'MISSING', valueFrom: { configMapKeyRef: { name: 'none', key: 'x', optional: true } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      ]),
    ).toEqual({
      PLAIN: 'v',
      TOKEN: 'ghp-x',
      LEVEL: 'debug',
      POD_NAME: 'op-1',
      POD_NAMESPACE: 'cm',
      NODE: 'codemate-sandbox',
    });
  });

  it('waits for a Secret or key that is not there yet, naming which', async () => {
    const missing = resolveEnv(kube, pod, [
      { name: 'T', valueFrom: { secretKeyRef: { name: 'other', key: 'token' } } },
    ]);
    await expect(missing).rejects.toThrow(TemporaryError);
    await expect(missing).rejects.toThrow('secret other does not exist');
    await expect(
      resolveEnv(kube, pod, [{ name: 'T', valueFrom: { secretKeyRef: { name: 'gh', key: 'nope' } } }]),
    ).rejects.toThrow('secret gh has no key nope');
  });
});
