import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeAnswerError, loadReader } from '../../../src/clients/kubeRead.js';
import { isNotFound, statusMessage } from '../../../src/clients/kubeErrors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-kuberead-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function kubeconfig(
  user: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.kubeconfig`);
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority': 'ca.crt' } },
      ],
      users: [{ name: 'u', user }],
      contexts: [
        { name: 'c', context: { cluster: 'c', user: 'u', namespace: 'team' } },
        { name: 'other', context: { cluster: 'c', user: 'u' } },
      ],
      'current-context': 'c',
      ...extra,
    }),
  );
  return file;
}

describe('loadReader', () => {
  it('reads a token user, a CA file relative to the kubeconfig, and the context namespace', async () => {
    await writeFile(path.join(dir, 'ca.crt'), 'not parsed until a request');
    const file = await kubeconfig({ token: 't' });
    const reader = await loadReader({ kubeconfig: file });
    expect(reader?.server).toBe('https://127.0.0.1:6443');
    expect(reader?.defaultNamespace).toBe('team');
    expect((await loadReader({ kubeconfig: file, context: 'other' }))?.defaultNamespace).toBe('default');
  });

  it('leaves to the SDK what it does not handle', async () => {
    const exec = await kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'x' } });
    const provider = await kubeconfig({ 'auth-provider': { name: 'oidc' } });
    const basic = await kubeconfig({ username: 'a', password: 'b' });
    const token = await kubeconfig({ token: 't' });
    expect(await loadReader({ kubeconfig: exec })).toBeUndefined();
    expect(await loadReader({ kubeconfig: provider })).toBeUndefined();
    expect(await loadReader({ kubeconfig: basic })).toBeUndefined();
    expect(await loadReader({ kubeconfig: token, context: 'missing' })).toBeUndefined();
    expect(await loadReader({ kubeconfig: `${token}${path.delimiter}${exec}` })).toBeUndefined();
    expect(await loadReader({ kubeconfig: path.join(dir, 'absent') })).toBeUndefined();
  });
});

describe('KubeAnswerError', () => {
  it("reads as the SDK's errors do: the status, and the apiserver's message", () => {
    const status = JSON.stringify({
      kind: 'Status',
      message: 'codemates.codemate.io "x" not found',
      code: 404,
    });
    expect(isNotFound(new KubeAnswerError(404, status))).toBe(true);
    expect(statusMessage(new KubeAnswerError(404, status))).toBe('codemates.codemate.io "x" not found');
    // A group the apiserver does not serve answers plain text; client-go words it so.
    expect(new KubeAnswerError(404, '404 page not found\n').message).toBe(
      'the server could not find the requested resource',
    );
    expect(new KubeAnswerError(502, '<html>').message).toBe('HTTP 502');
  });
});
