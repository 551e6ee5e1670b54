import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kube } from '../clients/kube.js';
import { createLogger } from '../observability/log.js';
import { terminationSignal } from '../runtime/shutdown.js';
import { sessionPluginsDir, sessionScriptsDir } from '../config/packagePaths.js';
import { LocalPodRuntime } from './podRuntime.js';

/** `codemate dev pod-runtime`: runs until SIGTERM, then stops every local pod. */
export async function runPodRuntime(options: {
  dir: string;
  /** The node whose pods it runs. */
  nodeName: string;
  kubeconfig?: string | undefined;
  context?: string | undefined;
  gitRewrite?: string | undefined;
  /** The Messages API sessions' Claude Code talks to. */
  anthropicBaseUrl?: string | undefined;
  /** The claude program sessions run, put first on their PATH. */
  claude?: string | undefined;
}) {
  const logger = createLogger({ name: 'codemate-pod-runtime' });
  await mkdir(options.dir, { recursive: true });
  const runtime = new LocalPodRuntime({
    kube: Kube.load({ kubeconfig: options.kubeconfig, context: options.context }),
    dir: options.dir,
    nodeName: options.nodeName,
    scriptsDir: sessionScriptsDir,
    pluginsDir: sessionPluginsDir,
    gitRewrite: options.gitRewrite,
    anthropicBaseUrl: options.anthropicBaseUrl,
    claude: options.claude,
    logger,
  });
  await runtime.start();
  await writeFile(path.join(options.dir, '.ready'), `${process.pid}\n`);
  logger.info({ dir: options.dir }, 'local pod runtime started');
  await terminationSignal();
  await runtime.stop();
  logger.info('local pod runtime stopped');
}
