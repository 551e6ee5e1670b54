import type { Command } from 'commander';
import { devConfig, modelServerFlagsSchema, parseOrUsage, type DevConfig } from '../../config/index.js';
import { resolveBinaries, type BinarySet } from '../../sandbox/binaries.js';
import { resolveClaudeCode } from '../../sandbox/claudeCode.js';
import { sandboxDown, sandboxStatus, sandboxUp } from '../../sandbox/sandbox.js';
import { runModelServer } from '../../sandbox/modelServer.js';
import { runPodRuntime } from '../../podRuntime/podRuntimeMain.js';
import { CodemateError } from '../errors.js';
import type { CliDeps } from '../main.js';
import { table, type Output } from '../output.js';

export function registerDev(program: Command, deps: CliDeps): void {
  const dev = program
    .command('dev')
    .description('run a local Kubernetes sandbox (etcd, kube-apiserver, controller-manager, scheduler, kwok)')
    .addHelpText(
      'after',
      `
The sandbox runs a real control plane on loopback ports. Its programs are built once from pinned
versions through the Go module proxy and cached; set CODEMATE_BIN_DIR to use prebuilt ones.

Examples:
  $ eval "$(codemate dev up)"
  $ kubectl get nodes
  $ codemate dev status -o json
  $ codemate dev down --purge`,
    );
  const stateDirOption = ['--state-dir <dir>', 'sandbox state directory (env CODEMATE_STATE_DIR)'] as const;

  dev
    .command('up')
    .description('start the sandbox in the background (idempotent) and print `export KUBECONFIG=...`')
    .option(...stateDirOption)
    .option('--apiserver-port <port>', 'serve the apiserver on this loopback port (default: a free one)')
    .addHelpText('after', '\nExample:\n  $ eval "$(codemate dev up)" && kubectl get nodes')
    .action(async (flags: Record<string, unknown>) => runDevUp(devConfig(deps.env, flags), deps.out));

  dev
    .command('down')
    .description('stop every process the sandbox started')
    .option(...stateDirOption)
    .option('--purge', 'also delete the state directory (cluster data, PKI, logs)')
    .addHelpText('after', '\nExample:\n  $ codemate dev down --purge')
    .action(async (flags: Record<string, unknown>) => runDevDown(devConfig(deps.env, flags), deps.out));

  dev
    .command('status')
    .description('report each sandbox component; exits 1 unless all are running')
    .option(...stateDirOption)
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText('after', '\nExample:\n  $ codemate dev status -o json | jq .components')
    .action(async (flags: Record<string, unknown>) => runDevStatus(devConfig(deps.env, flags), deps.out));

  dev
    .command('pod-runtime', { hidden: true })
    .description('run session pods of the sandbox as local processes (started by `dev up`)')
    .requiredOption('--dir <dir>', 'where pod directories live')
    .option('--anthropic-base-url <url>', "the Messages API for sessions' Claude Code")
    .option('--claude <path>', 'the claude program sessions run')
    .action(async (flags: { dir: string; anthropicBaseUrl?: string; claude?: string }, command: Command) => {
      const global = command.optsWithGlobals() as { kubeconfig?: string; context?: string };
      await runPodRuntime({
        dir: flags.dir,
        kubeconfig: global.kubeconfig ?? deps.env.KUBECONFIG,
        context: global.context,
        gitRewrite: deps.env.CODEMATE_SANDBOX_GIT_REWRITE,
        anthropicBaseUrl: flags.anthropicBaseUrl,
        claude: flags.claude,
      });
    });

  dev
    .command('model-server', { hidden: true })
    .description('serve a local Anthropic Messages API for sandbox sessions (started by `dev up`)')
    .requiredOption('--port <port>', 'the loopback port to listen on')
    .action(async (flags: { port: string }) => {
      const { port } = parseOrUsage(modelServerFlagsSchema, flags, 'flags');
      await runModelServer({ port });
    });

  dev
    .command('build')
    .description(
      'build (or find) the control-plane binaries and the pinned Claude Code CLI; print the binaries directory',
    )
    .addHelpText('after', '\nExample:\n  $ export CODEMATE_BIN_DIR="$(codemate dev build)"')
    .action(async () => runDevBuild(devConfig(deps.env, {}), deps.out));
}

async function binaries(config: DevConfig, out: Output): Promise<BinarySet> {
  const progress = out.progress('looking for control-plane binaries');
  try {
    const bins = await resolveBinaries({
      binDir: config.binDir,
      cacheDir: config.cacheDir,
      onProgress: (text) => progress.update(text),
    });
    progress.succeed(`control-plane binaries: ${bins.dir}`);
    return bins;
  } catch (error) {
    progress.fail('control-plane binaries unavailable');
    throw error;
  }
}

export async function runDevBuild(config: DevConfig, out: Output): Promise<void> {
  const bins = await binaries(config, out);
  await claudeCode(config, out);
  out.data(bins.dir);
}

async function claudeCode(config: DevConfig, out: Output): Promise<string> {
  const progress = out.progress('looking for Claude Code');
  try {
    const claude = await resolveClaudeCode({
      claudeBin: config.claudeBin,
      cacheDir: config.cacheDir,
      onProgress: (text) => progress.update(text),
    });
    progress.succeed(`Claude Code: ${claude}`);
    return claude;
  } catch (error) {
    progress.fail('Claude Code unavailable');
    throw error;
  }
}

export async function runDevUp(config: DevConfig, out: Output): Promise<void> {
  const bins = await binaries(config, out);
  const claude = await claudeCode(config, out);
  const progress = out.progress('starting the sandbox');
  try {
    const result = await sandboxUp({
      stateDir: config.stateDir,
      bins,
      apiserverPort: config.apiserverPort,
      sessions: { claude, anthropicBaseUrl: config.anthropicBaseUrl },
      onProgress: (text) => progress.update(text),
      onWarning: (text) => out.warn(text),
    });
    progress.succeed(
      result.started.length === 0
        ? `sandbox already running (apiserver https://127.0.0.1:${result.ports.apiserver})`
        : `sandbox running (apiserver https://127.0.0.1:${result.ports.apiserver}; started ${result.started.join(', ')})`,
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
    out.info(`KUBECONFIG=${status.kubeconfig}`);
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
