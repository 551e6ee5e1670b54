/**
 * Every object the manifests hold is valid for the real apiserver (server-side dry run: schema, defaults
 * and admission), except kinds whose CRDs a cluster brings along (cert-manager's Certificate).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../src/clients/kube.js';
import { repoRoot } from '../helpers/cli.js';
import { expectDryRunAccepts, useCluster } from '../helpers/cluster.js';

const cluster = useCluster('manifests');
const objectsOf = (file: string) =>
  parseAllDocuments(readFileSync(path.join(repoRoot, 'manifests', file), 'utf8'))
    .map((d) => d.toJSON() as KubeObject)
    .filter(Boolean);
const thirdParty = new Set(['cert-manager.io/v1']);

describe('manifests', () => {
  it.each(['crd.yaml', 'operator.yaml', 'webhook.yaml', 'user-rbac.yaml', 'examples/webhook-secret.yaml'])(
    '%s passes a server-side dry run',
    async (file) => {
      const objects = objectsOf(file);
      expect(objects.length).toBeGreaterThan(0);
      // The namespace must exist for namespaced objects to be checked; the dry run would not create it.
      await cluster.kube.apply(
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'codemate-system' } },
        'codemate-tests',
      );
      await expectDryRunAccepts(cluster.kube, objects, thirdParty);
    },
  );

  it('the session NetworkPolicy passes too, in the namespace it is applied to', async () => {
    const objects = objectsOf('session-networkpolicy.yaml');
    expect(objects.map((o) => o.kind)).toEqual(['NetworkPolicy']);
    for (const object of objects) {
      await cluster.kube.apply(
        { ...object, metadata: { ...object.metadata, namespace: cluster.namespace } },
        'codemate-tests',
        { dryRun: true },
      );
    }
  });

  it('the example CodeMate passes too', async () => {
    for (const object of objectsOf('examples/codemate.yaml')) {
      await cluster.kube.apply(
        { ...object, metadata: { ...object.metadata, namespace: cluster.namespace } },
        'codemate-tests',
        {
          dryRun: true,
        },
      );
    }
  });
});
