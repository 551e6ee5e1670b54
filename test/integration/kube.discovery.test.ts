/**
 * The light client's discovery against the real apiserver: a kind asked for before its CRD is
 * established is found once it is, by the same client (the sandbox waits for kwok's CRDs this way).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Kube } from '../../src/clients/kube.js';
import { eventually, useCluster } from '../helpers/cluster.js';

const cluster = useCluster('discovery');
const group = `d${cluster.namespace.replace(/[^a-z0-9]/g, '')}.codemate.test`;

function crd(kind: string) {
  const plural = `${kind.toLowerCase()}s`;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

afterAll(async () => {
  for (const kind of ['Gadget', 'Widget'])
    await cluster.kube.delete(
      'apiextensions.k8s.io/v1',
      'CustomResourceDefinition',
      `${kind.toLowerCase()}s.${group}`,
    );
});

describe('discovery', () => {
  it('finds a kind whose CRD was established after the client first looked at its group', async () => {
    const kube = Kube.load({ kubeconfig: cluster.kubeconfig });
    const list = (kind: string) => kube.list(`${group}/v1`, kind, cluster.namespace);
    const served = (kind: string) =>
      list(kind).then(
        () => true,
        () => false,
      );
    await cluster.kube.create(crd('Gadget'));
    // The group is served with Gadget only: the client has discovered it without Widget.
    await eventually(
      () => served('Gadget'),
      (ok) => ok,
      { what: 'Gadget served' },
    );
    await expect(list('Widget')).rejects.toThrow(/does not serve kind Widget/);
    await cluster.kube.create(crd('Widget'));
    await eventually(
      () => served('Widget'),
      (ok) => ok,
      {
        what: 'Widget served to the same client',
        timeoutMs: 20_000,
      },
    );
  });
});
