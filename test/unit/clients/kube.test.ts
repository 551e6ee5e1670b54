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

describe('Kube connections', () => {
  it('hands every request of one client the same keep-alive agent, with the token', async () => {
    const kube = Kube.load({ kubeconfig: kubeconfig('a') });
    const first = await kube.connection.authorize();
    const agent = first.agent as { keepAlive?: boolean; options?: { keepAlive?: boolean } };
    expect(agent).toBeDefined();
    expect((await kube.connection.authorize()).agent).toBe(first.agent);
    expect(agent.options?.keepAlive ?? agent.keepAlive).toBe(true);
    expect(first.headers.authorization).toBe('Bearer a');
    expect(first.tls.rejectUnauthorized).toBe(false);
  });

  it('writes a token kubeconfig that reads back as the same cluster with the new identity', async () => {
    const kube = Kube.load({ kubeconfig: kubeconfig('a', 'https://127.0.0.2:6443') });
    const file = path.join(dir, 'sa-kubeconfig');
    writeFileSync(file, kube.tokenKubeconfig('sa-token', 'team'));
    const back = Kube.load({ kubeconfig: file });
    expect(back.server).toBe('https://127.0.0.2:6443');
    expect(back.defaultNamespace).toBe('team');
    expect((await back.connection.authorize()).headers.authorization).toBe('Bearer sa-token');
    expect((await kube.withToken('other').connection.authorize()).headers.authorization).toBe('Bearer other');
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
