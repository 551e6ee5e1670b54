import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeAnswerError, loadConnection } from '../../../src/clients/kubeHttp.js';
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

describe('loadConnection', () => {
  it('reads a token user, a CA file relative to the kubeconfig, and the context namespace', async () => {
    await writeFile(path.join(dir, 'ca.crt'), 'not parsed until a request');
    const file = await kubeconfig({ token: 't' });
    const connection = loadConnection({ kubeconfig: file });
    expect(connection?.cluster.server).toBe('https://127.0.0.1:6443');
    expect(connection?.cluster.ca?.toString()).toBe('not parsed until a request');
    expect(connection?.defaultNamespace).toBe('team');
    expect((await connection?.authorize())?.headers.authorization).toBe('Bearer t');
    expect(loadConnection({ kubeconfig: file, context: 'other' })?.defaultNamespace).toBe('default');
  });

  it('leaves to the SDK what it does not handle', async () => {
    const exec = await kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'x' } });
    const provider = await kubeconfig({ 'auth-provider': { name: 'oidc' } });
    const basic = await kubeconfig({ username: 'a', password: 'b' });
    const token = await kubeconfig({ token: 't' });
    expect(loadConnection({ kubeconfig: exec })).toBeUndefined();
    expect(loadConnection({ kubeconfig: provider })).toBeUndefined();
    expect(loadConnection({ kubeconfig: basic })).toBeUndefined();
    expect(loadConnection({ kubeconfig: token, context: 'missing' })).toBeUndefined();
    expect(loadConnection({ kubeconfig: `${token}${path.delimiter}${exec}` })).toBeUndefined();
    expect(loadConnection({ kubeconfig: path.join(dir, 'absent') })).toBeUndefined();
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

describe('loadConnection in a pod', () => {
  it('is not taken from the environment when a kubeconfig was named', () => {
    const before = { ...process.env };
    process.env.KUBERNETES_SERVICE_HOST = '10.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      expect(loadConnection({ kubeconfig: path.join(dir, 'absent') })).toBeUndefined();
    } finally {
      process.env = before;
    }
  });
});
