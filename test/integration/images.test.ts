/**
 * The images that `codemate dev build --images` builds from the project's Dockerfiles, on bases made here,
 * checked as the manifests use them: a numeric non-root user, the entrypoint the Deployments' args follow,
 * and the programs each one runs, started in the image with buildah (chroot isolation, no container engine).
 * Needs root and buildah (`apt-get install buildah debootstrap`). The first build takes about 3 minutes on
 * 2 cores; later runs find the images in the cache.
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cacheDir, readEnv } from '../../src/config/index.js';
import {
  buildImages,
  loadIntoStorage,
  type BuiltImage,
  type ProjectImages,
} from '../../src/sandbox/images.js';
import { runProgram } from '../../src/sandbox/runProgram.js';
import { claudeCodeVersion } from '../../src/sandbox/versions.js';
import { cliPath, repoRoot } from '../helpers/cli.js';

async function whyNot(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'building images needs root';
  try {
    await runProgram('buildah', ['version']);
    return undefined;
  } catch {
    return 'buildah is not installed (apt-get install buildah debootstrap)';
  }
}
const skipped = await whyNot();

const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: { node: string };
};
const build = () =>
  buildImages({
    cacheDir: cacheDir(readEnv()),
    onProgress: (text) => process.stderr.write(`[images] ${text}\n`),
  });

interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
}

async function configOf(image: BuiltImage): Promise<ImageConfig> {
  const { stdout } = await runProgram('buildah', ['inspect', '--type', 'image', image.id]);
  return (JSON.parse(stdout) as { OCIv1: { config: ImageConfig } }).OCIv1.config;
}

/** A working container of each image (by ID), removed after the tests. */
const containers = new Map<string, string>();

/** Runs a command in a container of the image, as the image's user; returns its stdout. */
async function runIn(image: BuiltImage, ...command: string[]): Promise<string> {
  let container = containers.get(image.id);
  if (!container) {
    await loadIntoStorage(image);
    container = (await runProgram('buildah', ['from', '--pull=never', image.id])).stdout.trim();
    containers.set(image.id, container);
  }
  const { stdout } = await runProgram('buildah', [
    'run',
    '--isolation',
    'chroot',
    container,
    '--',
    ...command,
  ]);
  return stdout.trim();
}

/** The args of the Deployment's container in a manifest, which follow the image's entrypoint. */
async function deploymentArgs(manifest: string): Promise<string[]> {
  const docs = parseAllDocuments(await readFile(path.join(repoRoot, 'manifests', manifest), 'utf8'));
  const deployment = docs
    .map(
      (d) =>
        d.toJSON() as { kind?: string; spec?: { template: { spec: { containers: { args: string[] }[] } } } },
    )
    .find((o) => o?.kind === 'Deployment');
  return deployment!.spec!.template.spec.containers[0]!.args;
}

describe.skipIf(skipped !== undefined)(`the images${skipped ? ` (skipped: ${skipped})` : ''}`, () => {
  let images: ProjectImages;

  beforeAll(async () => {
    const started = performance.now();
    images = await build();
    process.stderr.write(`[images] ready in ${Math.round(performance.now() - started)} ms\n`);
  }, 30 * 60_000);

  afterAll(async () => {
    for (const container of containers.values())
      await runProgram('buildah', ['rm', container]).catch(() => {});
  });

  it('are found in the cache, without building, when nothing changed', async () => {
    const started = performance.now();
    const again = await build();
    const elapsed = performance.now() - started;
    process.stderr.write(`[images] cache hit in ${Math.round(elapsed)} ms\n`);
    expect(again).toEqual(images);
    expect(elapsed).toBeLessThan(1000);
  });

  it('are named as the manifests and the chart name them, each archive holding its image', async () => {
    expect(images.codemate.name).toBe(`ghcr.io/codemate-io/codemate:${pkg.version}`);
    expect(images.session.name).toBe(`ghcr.io/codemate-io/codemate-session:${pkg.version}`);
    for (const image of Object.values(images)) {
      const read = async (member: string) =>
        JSON.parse((await runProgram('tar', ['-xOf', image.archive, member])).stdout) as unknown;
      const index = (await read('index.json')) as {
        manifests: { digest: string; annotations: Record<string, string> }[];
      };
      expect(index.manifests).toHaveLength(1);
      expect(index.manifests[0]!.annotations['org.opencontainers.image.ref.name']).toBe(image.name);
      const manifest = (await read(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`)) as {
        config: { digest: string };
      };
      expect(manifest.config.digest, image.name).toBe(image.id);
    }
  });

  it('the operator and webhook image runs `codemate operator` and `codemate webhook` as uid 1000', async () => {
    const config = await configOf(images.codemate);
    expect(config.User).toBe('1000:1000');
    expect(config.Entrypoint).toEqual(['node', '/app/bin/codemate.js']);
    expect(await deploymentArgs('operator.yaml')).toEqual(['operator']);
    expect(await deploymentArgs('webhook.yaml')).toEqual(['webhook']);
    expect(await runIn(images.codemate, 'id', '-u')).toBe('1000');
    expect(await runIn(images.codemate, 'node', '--version')).toBe(`v${pkg.devDependencies.node}`);
    expect(await runIn(images.codemate, ...config.Entrypoint!, '--version')).toBe(pkg.version);
    for (const verb of ['operator', 'webhook']) {
      expect(await runIn(images.codemate, ...config.Entrypoint!, verb, '--help')).toContain(
        `codemate ${verb}`,
      );
    }
  });

  it('the session image starts codemate-entrypoint as uid 1000, with the pinned Claude Code, tmux, git and gh', async () => {
    const config = await configOf(images.session);
    expect(config.User).toBe('1000:1000');
    expect(config.Entrypoint).toEqual(['/opt/codemate/bin/codemate-entrypoint']);
    expect(await runIn(images.session, 'id', '-u')).toBe('1000');
    expect(await runIn(images.session, 'claude', '--version')).toBe(`${claudeCodeVersion} (Claude Code)`);
    expect(await runIn(images.session, 'tmux', '-V')).toMatch(/^tmux \d/);
    expect(await runIn(images.session, 'git', '--version')).toMatch(/^git version /);
    expect(await runIn(images.session, 'gh', '--version')).toMatch(/^gh version /);
    expect(await runIn(images.session, 'stat', '-c', '%u:%g', '/workspace')).toBe('1000:1000');
  });
});

describe.skipIf(process.getuid?.() !== 0)('codemate dev build --images without root', () => {
  it('refuses to build, and says why', async () => {
    // An empty cache, so that there is something to build; writable by the unprivileged user.
    const cache = await mkdtemp(path.join(os.tmpdir(), 'codemate-images-'));
    try {
      await chmod(cache, 0o777);
      const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
      const run = runProgram('setpriv', [...nobody, process.execPath, cliPath, 'dev', 'build', '--images'], {
        env: { ...process.env, NO_COLOR: '1', HOME: cache, CODEMATE_CACHE_DIR: cache },
      });
      await expect(run).rejects.toThrow(/exited with code 1:[\s\S]*error: building the images needs root/);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
