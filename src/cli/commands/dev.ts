/** `codemate dev`: the local sandbox (docs/sandbox.md), and the programs it runs in the background. */
import {
  devConfig,
  modelServerFlagsSchema,
  parseOrUsage,
  storageProvisionerFlagsSchema,
  type DevConfig,
} from '../../config/index.js';
import { resolveBinaries, type BinarySet } from '../../sandbox/binaries.js';
import { resolveClaudeCode } from '../../sandbox/claudeCode.js';
import { resolveHelm } from '../../sandbox/helm.js';
import { resolveNodeBinaries, type NodeBinarySet } from '../../sandbox/nodeBinaries.js';
import { ensureNodeHost } from '../../sandbox/realNode.js';
import { buildImages } from '../../sandbox/images.js';
import { importImage } from '../../sandbox/ociImage.js';
import {
  sandboxContainerd,
  sandboxDown,
  sandboxOperatorFor,
  sandboxRuntimeFor,
  sandboxStatus,
  sandboxUp,
} from '../../sandbox/sandbox.js';
import { runModelServer } from '../../sandbox/modelServer.js';
import { runStorageProvisioner } from '../../sandbox/storageProvisioner.js';
import { runPodRuntime } from '../../podRuntime/podRuntimeMain.js';
import { CodemateError } from '../errors.js';
import { locate, table, type Output } from '../output.js';
import type { Verb } from '../program.js';

export const up: Verb = async ({ flags }, deps) => runDevUp(devConfig(await deps.env(), flags), deps.out);
export const down: Verb = async ({ flags }, deps) => runDevDown(devConfig(await deps.env(), flags), deps.out);
export const status: Verb = async ({ flags }, deps) =>
  runDevStatus(devConfig(await deps.env(), flags), deps.out);
export const build: Verb = async ({ flags }, deps) =>
  runDevBuild(devConfig(await deps.env(), flags), deps.out);

export const podRuntime: Verb = async ({ flags, globals }, deps) => {
  const env = await deps.env();
  await runPodRuntime({
    dir: String(flags.dir),
    nodeName: String(flags.nodeName),
    kubeconfig: (globals.kubeconfig as string | undefined) ?? env.KUBECONFIG,
    context: globals.context as string | undefined,
    gitRewrite: env.CODEMATE_SANDBOX_GIT_REWRITE,
    anthropicBaseUrl: flags.anthropicBaseUrl as string | undefined,
    claude: flags.claude as string | undefined,
  });
};

export const modelServer: Verb = async ({ flags }) => {
  const { port, host } = parseOrUsage(modelServerFlagsSchema, flags, 'flags');
  await runModelServer({ port, host });
};

export const storageProvisioner: Verb = async ({ flags, globals }, deps) => {
  const { dir } = parseOrUsage(storageProvisionerFlagsSchema, flags, 'flags');
  await runStorageProvisioner({
    dir,
    kubeconfig: (globals.kubeconfig as string | undefined) ?? (await deps.env()).KUBECONFIG,
    context: globals.context as string | undefined,
  });
};

const binaries = (config: DevConfig, out: Output): Promise<BinarySet> =>
  locate(
    out,
    'control-plane binaries',
    (onProgress) => resolveBinaries({ binDir: config.binDir, cacheDir: config.cacheDir, onProgress }),
    (bins) => bins.dir,
  );

const nodeBinaries = (config: DevConfig, out: Output): Promise<NodeBinarySet> =>
  locate(
    out,
    'real node (kubelet, containerd, pause)',
    (onProgress) => resolveNodeBinaries({ cacheDir: config.cacheDir, onProgress }),
    (bins) => bins.dir,
  );

const nodeHost = (out: Output): Promise<void> =>
  locate(
    out,
    'root and the packages of the real node',
    (onProgress) => ensureNodeHost(onProgress),
    () => 'ready',
  );

const claudeCode = (config: DevConfig, out: Output): Promise<string> =>
  locate(
    out,
    'Claude Code',
    (onProgress) => resolveClaudeCode({ claudeBin: config.claudeBin, cacheDir: config.cacheDir, onProgress }),
    (file) => file,
  );

const helm = (config: DevConfig, out: Output): Promise<string> =>
  locate(
    out,
    'helm',
    (onProgress) => resolveHelm({ cacheDir: config.cacheDir, onProgress }),
    (file) => file,
  );

export async function runDevBuild(config: DevConfig, out: Output): Promise<void> {
  const bins = await binaries(config, out);
  if (config.runtime === 'containerd') await nodeBinaries(config, out);
  await claudeCode(config, out);
  await helm(config, out);
  out.data(bins.dir);
}

export async function runDevUp(config: DevConfig, out: Output): Promise<void> {
  const runtime = await sandboxRuntimeFor(config.stateDir, config.runtime);
  if (runtime === 'containerd') await nodeHost(out);
  const bins = await binaries(config, out);
  const nodeBins = runtime === 'containerd' ? await nodeBinaries(config, out) : undefined;
  const claude = await claudeCode(config, out);
  if (config.images && runtime !== 'containerd') {
    throw new CodemateError('--images needs the containerd runtime: the process runtime runs no images', {
      hint: 'run `codemate dev up --runtime containerd --images` (as root)',
    });
  }
  const images = config.images
    ? await locate(
        out,
        'images',
        (onProgress) => buildImages({ cacheDir: config.cacheDir, onProgress }),
        (built) => `${built.codemate.name}, ${built.session.name}`,
      )
    : undefined;
  const progress = await out.progress('starting the sandbox');
  try {
    const result = await sandboxUp({
      stateDir: config.stateDir,
      bins,
      apiserverPort: config.apiserverPort,
      runtime,
      nodeBins,
      operator: await sandboxOperatorFor(config.stateDir, config.operator),
      sessions: {
        claude,
        anthropicBaseUrl: config.anthropicBaseUrl,
        gitRewrite: config.gitRewrite,
        image: images?.session.name,
      },
      onProgress: (text) => progress.update(text),
      onWarning: (text) => out.warn(text),
    });
    if (images) {
      const containerd = await sandboxContainerd(config.stateDir);
      for (const image of [images.codemate, images.session]) {
        progress.update(`importing ${image.name} into the node's containerd`);
        await importImage(image.archive, containerd);
      }
    }
    progress.succeed(
      result.started.length === 0
        ? `sandbox already running (apiserver https://127.0.0.1:${result.ports.apiserver})`
        : `sandbox running with the ${runtime} runtime (apiserver https://127.0.0.1:${result.ports.apiserver}; started ${result.started.join(', ')})`,
    );
    out.data(`export KUBECONFIG=${result.paths.kubeconfig}`);
    if (result.webhook) {
      // Exported too, so that `codemate webhook replay` in the same shell signs for this sandbox.
      out.info(`webhook: ${result.webhook.url} (secret in ${result.webhook.secretFile})`);
      out.data(`export CODEMATE_WEBHOOK_URL=${result.webhook.url}`);
      out.data(`export GITHUB_WEBHOOK_SECRET_FILE=${result.webhook.secretFile}`);
    }
  } catch (error) {
    progress.fail('the sandbox did not start');
    throw error;
  }
}

export async function runDevDown(config: DevConfig, out: Output): Promise<void> {
  const result = await sandboxDown(config.stateDir, { purge: config.purge });
  for (const s of result.stale) out.warn(`stale pid file for ${s.name}: pid ${s.pid} was not running`);
  if (result.stopped.length === 0) out.info('sandbox is not running; nothing to stop');
  else out.info(`stopped ${result.stopped.map((s) => `${s.name} (pid ${s.pid})`).join(', ')}`);
  if (result.warnings.length > 0) {
    throw new CodemateError(`dev down did not finish:\n${result.warnings.join('\n')}`, {
      hint: 'run `codemate dev down` again: it retries the steps that failed (the host snapshot is kept until the host is restored)',
    });
  }
  if (config.purge) out.info(`deleted ${config.stateDir}`);
}

export async function runDevStatus(config: DevConfig, out: Output): Promise<void> {
  const status = await sandboxStatus(config.stateDir);
  if (config.output === 'json') out.data(JSON.stringify(status, null, 2));
  else if (status.exists) {
    const rows = status.components.map((c) => [
      c.name,
      c.state,
      c.pid ? String(c.pid) : '-',
      String(c.port ?? '-'),
      c.log,
    ]);
    out.data(table([['COMPONENT', 'STATE', 'PID', 'PORT', 'LOG'], ...rows]));
    out.info(`runtime: ${status.runtime}; KUBECONFIG=${status.kubeconfig}`);
    if (status.webhook) out.info(`webhook: ${status.webhook.url} (secret in ${status.webhook.secretFile})`);
  }
  const down = status.components.filter((c) => c.state !== 'running');
  if (!status.exists || down.length > 0) {
    throw new CodemateError(
      status.exists
        ? `not running: ${down.map((c) => `${c.name} (${c.state})`).join(', ')}`
        : `no sandbox in ${status.dir}`,
      { hint: 'run `codemate dev up` to start what is missing' },
    );
  }
}
