import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { resolveBinaries } from '../../src/sandbox/binaries.js';
import { sandboxDown, sandboxUp } from '../../src/sandbox/sandbox.js';

/**
 * One real control plane per test run, started with the same code as `codemate dev up`, in a temporary
 * state directory. The integration and e2e projects share it (a run-wide reference count), and it is
 * torn down when the last of them finishes.
 */
interface Shared {
  refs: number;
  ready: Promise<{ stateDir: string; kubeconfig: string; binDir: string }>;
}
const key = Symbol.for('codemate.test.controlPlane');
const registry = globalThis as unknown as Record<symbol, Shared | undefined>;

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    sandboxStateDir: string;
    binDir: string;
  }
}

async function start(): Promise<{ stateDir: string; kubeconfig: string; binDir: string }> {
  const env = readEnv();
  const bins = await resolveBinaries({
    binDir: env.CODEMATE_BIN_DIR,
    cacheDir: cacheDir(env),
    onProgress: (text) => process.stderr.write(`[control plane] ${text}\n`),
  });
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-test-'));
  try {
    // Tests start their own operators (with the manifests' ServiceAccount); the sandbox's would compete.
    const result = await sandboxUp({
      stateDir,
      bins,
      workloads: false,
      onWarning: (t) => process.stderr.write(`[control plane] ${t}\n`),
    });
    return { stateDir, kubeconfig: result.paths.kubeconfig, binDir: bins.dir };
  } catch (error) {
    await sandboxDown(stateDir);
    throw error;
  }
}

/** An interrupted run (Ctrl-C, a CI timeout) still stops its control plane. */
function stopOnSignal(ready: Shared['ready']): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void ready.then(({ stateDir }) => sandboxDown(stateDir)).finally(() => process.exit(130));
    });
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = (registry[key] ??= { refs: 0, ready: start() });
  if (shared.refs === 0) stopOnSignal(shared.ready);
  shared.refs += 1;
  const { stateDir, kubeconfig, binDir } = await shared.ready;
  project.provide('kubeconfig', kubeconfig);
  project.provide('sandboxStateDir', stateDir);
  project.provide('binDir', binDir);
  return async () => {
    shared.refs -= 1;
    if (shared.refs > 0) return;
    registry[key] = undefined;
    await sandboxDown(stateDir);
    await rm(stateDir, { recursive: true, force: true });
  };
}
