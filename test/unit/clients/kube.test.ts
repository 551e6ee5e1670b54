import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Kube, isUnreachable } from '../../../src/clients/kube.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cm-kube-'));
function kubeconfig(token: string, server = 'https://127.0.0.1:6443'): string {
  const file = path.join(dir, `${token}-${server.replace(/\W/g, '')}`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  return file;
}

async function agentOf(kube: Kube): Promise<unknown> {
  const options = (await kube.config.applyToFetchOptions({})) as { agent?: unknown };
  return options.agent;
}

describe('Kube connection reuse', () => {
  it('hands every request of one client the same keep-alive agent', async () => {
    const kube = Kube.load({ kubeconfig: kubeconfig('a') });
    const first = (await agentOf(kube)) as { keepAlive?: boolean; options?: { keepAlive?: boolean } };
    expect(first).toBeDefined();
    expect(await agentOf(kube)).toBe(first);
    expect(first.options?.keepAlive ?? first.keepAlive).toBe(true);
  });

  it('keeps connections to different servers apart within one client', async () => {
    const kube = Kube.load({ kubeconfig: kubeconfig('a') });
    const first = await agentOf(kube);
    kube.config.clusters[0] = { ...kube.config.clusters[0]!, server: 'https://127.0.0.2:6443' };
    const other = await agentOf(kube);
    expect(other).not.toBe(first);
    expect(await agentOf(kube)).toBe(other);
  });
});

describe('isUnreachable', () => {
  it('is true for connection failures, also when wrapped, and false for API answers', () => {
    expect(isUnreachable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(
      isUnreachable(
        new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }),
      ),
    ).toBe(true);
    expect(isUnreachable(Object.assign(new Error('Forbidden'), { code: 403 }))).toBe(false);
    expect(isUnreachable(new TypeError('cannot read properties of undefined'))).toBe(false);
    expect(isUnreachable(Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }))).toBe(
      false,
    );
  });
});
