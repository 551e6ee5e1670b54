/** The CRDs' names as kubectl users type them, against the real apiserver's discovery. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { useCluster } from '../helpers/cluster.js';
import { codemateObject } from '../helpers/operator.js';

const run = promisify(execFile);
const cluster = useCluster('crd-names');
const kubectl = (...args: string[]) =>
  run(path.join(inject('binDir'), 'kubectl'), [
    `--kubeconfig=${cluster.kubeconfig}`,
    '-n',
    cluster.namespace,
    ...args,
  ]);

describe('kubectl names', () => {
  it('finds one CodeMate by its singular, plural and short names, and lists both kinds by category', async () => {
    await cluster.kube.create(codemateObject(cluster.namespace, 'pr-1'));
    await cluster.kube.create({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMateMessage',
      metadata: { name: 'pr-1-cli-1', namespace: cluster.namespace },
      spec: {
        codemate: 'pr-1',
        source: { type: 'cli', id: '1', author: 'me' },
        body: 'hi',
        trust: { allowed: true, reason: 'cli' },
      },
    });
    for (const name of ['codemate', 'codemates', 'cm8', 'codemates.codemate.io']) {
      const { stdout } = await kubectl('get', name, 'pr-1', '-o', 'name');
      expect(stdout.trim()).toBe('codemate.codemate.io/pr-1');
    }
    const { stdout } = await kubectl('get', 'codemate-all', '-o', 'name');
    expect(stdout.trim().split('\n').sort()).toEqual([
      'codemate.codemate.io/pr-1',
      'codematemessage.codemate.io/pr-1-cli-1',
    ]);
  });
});
