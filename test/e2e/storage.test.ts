/**
 * A PVC-backed session in the sandbox, through the CLI: `codemate create --storage` runs on a volume of
 * the sandbox's storage-provisioner, and what the session wrote in its workspace is there again after
 * `codemate suspend` and `codemate resume`.
 */
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { secretObject } from '../helpers/operator.js';
import { podShell, sessionPod } from '../helpers/sandbox.js';
import { makeOrigin } from '../helpers/session.js';

const binDir = inject('binDir');
const ns = 'storage';
let stateDir: string;
let origin: string;
let kubeconfig: string;
let kube: Kube;

const cli = (args: string[]) => runCli([...args, '-n', ns], { env: { KUBECONFIG: kubeconfig } });
const get = () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'keeps', ns);
const phase = (want: string) =>
  eventually(get, (cm) => cm.status?.phase === want, { what: `keeps ${want}`, timeoutMs: 90_000 });
const podsOf = () => kube.list('v1', 'Pod', ns, { labelSelector: 'codemate.io/name=keeps' });
const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The host directory of the CodeMate's claim: its bound volume's hostPath. */
async function volumeDir(): Promise<{ volume: string; dir: string }> {
  const [claim] = await kube.list<KubeObject & { spec: { volumeName?: string } }>(
    'v1',
    'PersistentVolumeClaim',
    ns,
    { labelSelector: 'codemate.io/name=keeps' },
  );
  const volume = await kube.get<KubeObject & { spec: { hostPath: { path: string } } }>(
    'v1',
    'PersistentVolume',
    claim!.spec.volumeName!,
  );
  return { volume: volume.metadata.name!, dir: volume.spec.hostPath.path };
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cm-storage-'));
  origin = await makeOrigin(stateDir + '-repo');
  const up = await runCli(['dev', 'up', '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir } });
  expect(up.code, up.stderr).toBe(0);
  kubeconfig = path.join(stateDir, 'kubeconfig');
  kube = Kube.load({ kubeconfig });
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const name of ['github-token', 'anthropic-key'])
    await kube.create(secretObject(ns, name, { token: 'x' }));
});

afterAll(async () => {
  await runCli(['dev', 'down', '--purge', '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir } });
  await rm(stateDir + '-repo', { recursive: true, force: true });
});

describe('a session with --storage', () => {
  it('keeps its workspace across suspend and resume; delete removes the volume', async () => {
    const created = Date.now();
    const create = await cli([
      'create',
      'keeps',
      '--repo',
      `file://${origin}`,
      '--branch',
      'feature',
      '--storage',
      '1Gi',
      '--wait',
    ]);
    expect(create.code, create.stderr).toBe(0);
    process.stderr.write(`[storage] create --storage → Running in ${Date.now() - created} ms\n`);

    const shell = podShell(binDir, kubeconfig, ns);
    const first = await sessionPod(kube, ns, 'keeps');
    await shell(first, 'echo "written before suspend" > notes.txt');
    const { volume, dir } = await volumeDir();
    // The session's workspace is the volume's directory on the host: the clone and the file are there.
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('written before suspend\n');
    expect(await exists(path.join(dir, 'repo', '.git'))).toBe(true);
    expect(path.dirname(dir)).toBe(path.join(stateDir, 'volumes'));

    const suspended = Date.now();
    expect((await cli(['suspend', 'keeps'])).code).toBe(0);
    await phase('Suspended');
    await eventually(podsOf, (pods) => pods.length === 0, { what: 'pod gone after suspend' });
    process.stderr.write(`[storage] suspend → pod gone in ${Date.now() - suspended} ms\n`);
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('written before suspend\n');

    const resumed = Date.now();
    expect((await cli(['resume', 'keeps'])).code).toBe(0);
    await phase('Running');
    process.stderr.write(`[storage] resume → Running in ${Date.now() - resumed} ms\n`);
    const second = await sessionPod(kube, ns, 'keeps');
    expect(await shell(second, 'cat notes.txt')).toBe('written before suspend\n');
    expect((await shell(second, 'git -C repo rev-parse --abbrev-ref HEAD')).trim()).toBe('feature');
    expect((await volumeDir()).volume).toBe(volume);

    expect((await cli(['delete', 'keeps'])).code).toBe(0);
    await eventually(
      async () =>
        !(await kube.list('v1', 'PersistentVolume')).some((v) => v.metadata.name === volume) &&
        !(await exists(dir)),
      (gone) => gone,
      { what: 'volume and its directory deleted with the CodeMate', timeoutMs: 60_000 },
    );
  });
});
