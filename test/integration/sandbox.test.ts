import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { isAlive } from '../../src/clients/processes.js';
import { binaryNames } from '../../src/sandbox/versions.js';
import { runCli } from '../helpers/cli.js';

interface StatusJson {
  exists: boolean;
  components: Array<{ name: string; state: string; pid?: number; port?: number }>;
  webhook?: { url: string; secretFile: string };
}

const binDir = inject('binDir');
const dirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function dev(args: string[], stateDir: string, env: NodeJS.ProcessEnv = {}) {
  return runCli(['dev', ...args, '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir, ...env } });
}

async function status(stateDir: string): Promise<StatusJson> {
  return JSON.parse((await dev(['status', '-o', 'json'], stateDir)).stdout) as StatusJson;
}

afterAll(async () => {
  for (const dir of dirs) {
    await runCli(['dev', 'down', '--purge', '--state-dir', dir], { env: { CODEMATE_BIN_DIR: binDir } });
    await rm(dir, { recursive: true, force: true });
  }
});

describe('codemate dev', () => {
  it('is idempotent: a second `up` keeps the running sandbox, and `down` stops every process it started', async () => {
    const stateDir = await tempDir('codemate-sb-');
    const first = await dev(['up'], stateDir);
    expect(first.code, first.stderr).toBe(0);
    const webhook = (await status(stateDir)).components.find((c) => c.name === 'codemate-webhook')!;
    expect((await stat(path.join(stateDir, 'webhook-secret'))).mode & 0o777).toBe(0o600);
    expect(first.stderr).toContain(
      `webhook: http://127.0.0.1:${webhook.port}/webhook/github (secret in ${path.join(stateDir, 'webhook-secret')})`,
    );
    expect(first.stdout).toBe(
      [
        `export KUBECONFIG=${path.join(stateDir, 'kubeconfig')}`,
        `export CODEMATE_WEBHOOK_URL=http://127.0.0.1:${webhook.port}/webhook/github`,
        `export GITHUB_WEBHOOK_SECRET_FILE=${path.join(stateDir, 'webhook-secret')}`,
        '',
      ].join('\n'),
    );
    const before = await status(stateDir);
    expect(before.components.map((c) => [c.name, c.state])).toEqual([
      ['etcd', 'running'],
      ['kube-apiserver', 'running'],
      ['kube-controller-manager', 'running'],
      ['kube-scheduler', 'running'],
      ['storage-provisioner', 'running'],
      ['kwok', 'running'],
      ['model-server', 'running'],
      ['codemate-operator', 'running'],
      ['codemate-webhook', 'running'],
      ['codemate-pod-runtime', 'running'],
    ]);

    const second = await dev(['up'], stateDir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toContain('sandbox already running');
    expect((await status(stateDir)).components.map((c) => c.pid)).toEqual(
      before.components.map((c) => c.pid),
    );

    const down = await dev(['down'], stateDir);
    expect(down.code, down.stderr).toBe(0);
    for (const c of before.components)
      expect(isAlive(c.pid!), `${c.name} (pid ${c.pid}) still alive`).toBe(false);
    const after = await dev(['status'], stateDir);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('not running: etcd (stopped)');

    const again = await dev(['down'], stateDir);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to stop');
  });

  it('reports a stale pid file and starts that component again', async () => {
    const stateDir = await tempDir('codemate-sb-');
    expect((await dev(['up'], stateDir)).code).toBe(0);
    const kwok = (await status(stateDir)).components.find((c) => c.name === 'kwok')!;
    process.kill(kwok.pid!, 'SIGKILL');
    const up = await dev(['up'], stateDir);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(
      `stale pid file ${path.join(stateDir, 'run', 'kwok.pid')}: kwok (pid ${kwok.pid}) is no longer running`,
    );
    const now = (await status(stateDir)).components.find((c) => c.name === 'kwok')!;
    expect(now.state).toBe('running');
    expect(now.pid).not.toBe(kwok.pid);
  });

  it('refuses a port already in use, says which, and starts nothing', async () => {
    const stateDir = await tempDir('codemate-sb-');
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const up = await dev(['up', '--apiserver-port', String(port)], stateDir);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain(`port ${port} on 127.0.0.1, needed by kube-apiserver, is already in use`);
      expect(up.stderr).toContain('hint:');
      const s = await status(stateDir);
      expect(s.components.filter((c) => c.state === 'running')).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('names a missing binary in CODEMATE_BIN_DIR', async () => {
    const stateDir = await tempDir('codemate-sb-');
    const partial = await tempDir('codemate-bins-');
    for (const name of binaryNames.filter((n) => n !== 'kwok'))
      await symlink(path.join(binDir, name), path.join(partial, name));
    await symlink(path.join(binDir, 'kwok-data'), path.join(partial, 'kwok-data'));
    const up = await dev(['up'], stateDir, { CODEMATE_BIN_DIR: partial });
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`error: CODEMATE_BIN_DIR=${partial} lacks kwok`);
  });

  it('explains what to do when neither cached binaries nor Go are available', async () => {
    const stateDir = await tempDir('codemate-sb-');
    const emptyCache = await tempDir('codemate-cache-');
    const noGo = await tempDir('codemate-path-');
    await mkdir(noGo, { recursive: true });
    const up = await runCli(['dev', 'up', '--state-dir', stateDir], {
      env: { CODEMATE_BIN_DIR: '', CODEMATE_CACHE_DIR: emptyCache, PATH: noGo },
    });
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(
      'the control-plane binaries are not cached and Go is not available to build them',
    );
    expect(up.stderr).toContain('install Go 1.26 or newer');
  });

  it('rejects a malformed port as a usage error', async () => {
    const up = await dev(['up', '--apiserver-port', 'http'], await tempDir('codemate-sb-'));
    expect(up.code).toBe(2);
    expect(up.stderr).toContain('--apiserver-port: must be a port number');
  });

  it('keeps the kubeconfig private to the user', async () => {
    const stateDir = await tempDir('codemate-sb-');
    expect((await dev(['up'], stateDir)).code).toBe(0);
    const kubeconfig = await readFile(path.join(stateDir, 'kubeconfig'), 'utf8');
    expect(kubeconfig).toContain('client-key-data');
    const { stat } = await import('node:fs/promises');
    expect((await stat(path.join(stateDir, 'kubeconfig'))).mode & 0o077).toBe(0);
  });
});
