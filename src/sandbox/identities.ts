/**
 * The sandbox runs the operator and the webhook as the ServiceAccounts of their manifests, as a cluster
 * would, so that a permission missing from manifests/*.yaml fails in the sandbox and its tests instead of
 * hiding behind admin rights. Their tokens are long-lived ServiceAccount token Secrets, so that a
 * sandbox left running for days keeps working.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Kube, isNotFound, type KubeObject } from '../clients/kube.js';
import { waitFor } from './probe.js';

/** What a cluster brings or a kubelet runs, which the sandbox does not apply. */
const workloadKinds = new Set([
  'Deployment',
  'Service',
  'Ingress',
  'Certificate',
  'PodDisruptionBudget',
  'Secret',
]);

/** The objects of a manifest that say who its server runs as and what it may do. */
export async function identityObjects(manifest: string): Promise<KubeObject[]> {
  return parseAllDocuments(await readFile(manifest, 'utf8'))
    .map((d) => d.toJSON() as KubeObject)
    .filter((o) => o && !workloadKinds.has(o.kind));
}

export const systemNamespace = 'codemate-system';

/**
 * Applies a manifest's identity objects and writes `file`: a kubeconfig that authenticates as its
 * ServiceAccount `serviceAccount` in codemate-system.
 */
export async function writeServiceAccountKubeconfig(
  admin: Kube,
  options: { manifest: string; serviceAccount: string; file: string; fieldManager: string },
): Promise<void> {
  await admin.apply(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: systemNamespace } },
    options.fieldManager,
  );
  for (const object of await identityObjects(options.manifest))
    await admin.apply(object, options.fieldManager);
  const name = `${options.serviceAccount}-token`;
  await admin.apply(
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: {
        name,
        namespace: systemNamespace,
        annotations: { 'kubernetes.io/service-account.name': options.serviceAccount },
      },
    },
    options.fieldManager,
  );
  // kube-controller-manager's token controller fills the Secret in.
  let token: string | undefined;
  await waitFor(
    async () => {
      const secret = await admin
        .get<KubeObject & { data?: Record<string, string> }>('v1', 'Secret', name, systemNamespace)
        .catch((error: unknown) => {
          if (isNotFound(error)) return undefined;
          throw error;
        });
      token = secret?.data?.token;
      return token !== undefined;
    },
    {
      timeoutMs: 30_000,
      intervalMs: 100,
      describe: () =>
        `the token of ServiceAccount ${systemNamespace}/${options.serviceAccount} was not issued within 30 s`,
    },
  );
  await writeFile(options.file, admin.tokenKubeconfig(Buffer.from(token!, 'base64').toString('utf8')), {
    mode: 0o600,
  });
}

export function identityKubeconfig(dir: string, serviceAccount: string): string {
  return path.join(dir, `${serviceAccount}.kubeconfig`);
}
