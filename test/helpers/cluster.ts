import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { Kube, type KubeObject } from '../../src/clients/kube.js';

export interface TestCluster {
  kube: Kube;
  kubeconfig: string;
  /** A namespace of this test file's own, deleted after it. */
  namespace: string;
}

/**
 * Connects a test file to the run's control plane and gives it a fresh namespace. Use it at the top
 * of the file: `const cluster = useCluster('exec');` and read the fields inside tests.
 */
export function useCluster(prefix: string): TestCluster {
  const cluster = { kubeconfig: inject('kubeconfig') } as TestCluster;
  cluster.kube = Kube.load({ kubeconfig: cluster.kubeconfig });
  cluster.namespace = `${prefix}-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    await cluster.kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: cluster.namespace } });
  });
  afterAll(async () => {
    await cluster.kube.delete('v1', 'Namespace', cluster.namespace);
  });
  return cluster;
}

/**
 * Every object passes a server-side dry run (schema, defaults and admission), except kinds of the API
 * versions in `skip`, whose CRDs a cluster brings along (cert-manager's, the Prometheus operator's).
 */
export async function expectDryRunAccepts(
  kube: Kube,
  objects: KubeObject[],
  skip: ReadonlySet<string> = new Set(),
): Promise<void> {
  for (const object of objects) {
    if (skip.has(object.apiVersion)) continue;
    await expect(
      kube.apply(object, 'codemate-tests', { dryRun: true }),
      `${object.kind}/${object.metadata.name}`,
    ).resolves.toBeDefined();
  }
}

/** Polls `read` until `accept` holds; fails with the last value seen when the deadline passes. */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  {
    timeoutMs = 30_000,
    intervalMs = 200,
    what = 'condition',
    describe = (value: T) => JSON.stringify(value),
  }: { timeoutMs?: number; intervalMs?: number; what?: string; describe?: (value: T) => string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await read();
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what} not met within ${timeoutMs} ms; last value: ${last === undefined ? 'none' : describe(last)}${lastError ? `; last error: ${String(lastError)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type { KubeObject };
