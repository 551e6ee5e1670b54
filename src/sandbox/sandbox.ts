import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CodemateError } from '../api/errors.js';
import { Kube, type KubeObject } from '../clients/kube.js';
import { gitRewriteEnv, type SandboxRuntime } from '../config/index.js';
import { binarySetAt, type BinarySet } from './binaries.js';
import {
  components,
  executableOf,
  identityOf,
  modelServerComponent,
  modelServerUrl,
  operatorComponent,
  podRuntimeComponent,
  portNames,
  webhookComponent,
  webhookUrl,
  sandboxNodeName,
  sandboxPaths,
  type Component,
  type ComponentContext,
  type ComponentName,
  type SandboxPaths,
  type SandboxPorts,
  type SessionSettings,
} from './components.js';
import { mountsUnder } from './hostState.js';
import { writeAdminKubeconfig } from './kubeconfig.js';
import { acquireLock } from './lock.js';
import { nodeBinarySetAt, type NodeBinarySet } from './nodeBinaries.js';
import type { ContainerdEndpoint } from './ociImage.js';
import { ensurePki, pkiAt } from './pki.js';
import { freePort, isPortFree } from '../clients/ports.js';
import { waitFor } from './probe.js';
import { containerdComponent, containerdEndpoint, kubeletComponent } from './realNode.js';
import { applySessionEnvPolicy } from './sessionEnv.js';
import { inspectPidFile, isAlive, removePidFile, startDetached, stopProcess } from '../clients/processes.js';

interface SandboxState {
  version: 1;
  binDir: string;
  ports: SandboxPorts;
  /** The components this sandbox runs, in start order. */
  components: ComponentName[];
  /** Absent in sandboxes made before there was a choice: those ran processes. */
  runtime?: SandboxRuntime;
  /** The real node's programs (runtime containerd). */
  nodeBinDir?: string;
}

/**
 * The control plane, plus CodeMate's own processes unless left out: all of them (`workloads`), or only
 * its operator and webhook (`operator`), so that a chart's run instead. With the containerd runtime, a
 * real node (containerd, kubelet) joins before kwok, and no local pod runtime runs: pods go to the real
 * node.
 */
function selectComponents(workloads: boolean, runtime: SandboxRuntime, operator = true): Component[] {
  const controlPlane = components.filter((c) => c.name !== 'kwok');
  const kwok = components.filter((c) => c.name === 'kwok');
  const node = runtime === 'containerd' ? [containerdComponent, kubeletComponent] : [];
  const cluster = [...controlPlane, ...node, ...kwok];
  if (!workloads) return cluster;
  return [
    ...cluster,
    modelServerComponent,
    ...(operator ? [operatorComponent, webhookComponent] : []),
    ...(runtime === 'process' ? [podRuntimeComponent] : []),
  ];
}

/** Where the sandbox webhook listens and where its secret is, when the sandbox runs one. */
function webhookOf(
  state: SandboxState,
  paths: SandboxPaths,
): { webhook?: { url: string; secretFile: string } } {
  if (!state.components.includes(webhookComponent.name)) return {};
  return { webhook: { url: webhookUrl(state.ports), secretFile: paths.webhookSecret } };
}

function componentsOf(state: SandboxState): Component[] {
  return selectComponents(true, runtimeOf(state)).filter((c) => state.components.includes(c.name));
}

function runtimeOf(state: SandboxState): SandboxRuntime {
  return state.runtime ?? 'process';
}

function nodeBinsOf(state: SandboxState): NodeBinarySet | undefined {
  return state.nodeBinDir ? nodeBinarySetAt(state.nodeBinDir) : undefined;
}

/**
 * The runtime `dev up` is to use: the one asked for, else the one of the sandbox in `stateDir`, else the
 * process runtime. Another runtime than the one a running sandbox uses is refused.
 */
export async function sandboxRuntimeFor(
  stateDir: string,
  requested: SandboxRuntime | undefined,
): Promise<SandboxRuntime> {
  const paths = sandboxPaths(path.resolve(stateDir));
  const state = await readState(paths);
  const current = state ? runtimeOf(state) : undefined;
  if (!requested) return current ?? 'process';
  if (state && current !== requested && (await anyRunning(paths, state))) {
    throw new CodemateError(
      `the sandbox in ${paths.dir} is running with the ${current} runtime, not ${requested}`,
      {
        hint: `run \`codemate dev down\` first, then \`codemate dev up --runtime ${requested}\``,
      },
    );
  }
  return requested;
}

/**
 * Whether `dev up` runs the sandbox's own operator and webhook: as asked (`--operator`, `--no-operator`),
 * else as the running sandbox in `stateDir` does (one started with `--no-operator` for a chart keeps it),
 * else yes.
 */
export async function sandboxOperatorFor(stateDir: string, requested: boolean | undefined): Promise<boolean> {
  if (requested !== undefined) return requested;
  const paths = sandboxPaths(path.resolve(stateDir));
  const state = await readState(paths);
  if (!state || !state.components.includes(modelServerComponent.name) || !(await anyRunning(paths, state)))
    return true;
  return state.components.includes(operatorComponent.name);
}

async function anyRunning(paths: SandboxPaths, state: SandboxState): Promise<boolean> {
  for (const c of selectComponents(true, runtimeOf(state))) {
    const identity = identityOf(c, binarySetAt(state.binDir), nodeBinsOf(state));
    if ((await inspectPidFile(paths.pidFile(c.name), identity)).kind === 'running') return true;
  }
  return false;
}

/** The containerd of a running sandbox with the containerd runtime, to import images into. */
export async function sandboxContainerd(stateDir: string): Promise<ContainerdEndpoint> {
  const paths = sandboxPaths(path.resolve(stateDir));
  const state = await readState(paths);
  if (!state)
    throw new CodemateError(`no sandbox in ${paths.dir}`, {
      hint: 'run `codemate dev up --runtime containerd`',
    });
  return containerdEndpoint({ paths, nodeBins: nodeBinsOf(state) });
}

export interface SandboxUpOptions {
  stateDir: string;
  bins: BinarySet;
  /** A fixed apiserver port; a free one is chosen otherwise. */
  apiserverPort?: number | undefined;
  onProgress?: (text: string) => void;
  onWarning?: (text: string) => void;
  /** How long each component may take to become healthy. */
  readyTimeoutMs?: number;
  /** Also install the CRDs and run the CodeMate operator (default true). */
  workloads?: boolean;
  /**
   * Run the sandbox's own operator and webhook (default true); false leaves them to the Helm chart's,
   * whose pods the local pod runtime runs.
   */
  operator?: boolean;
  /** What session pods run (the pod runtime's settings). */
  sessions?: SessionSettings;
  /** What runs pods (default process); containerd needs `nodeBins`. */
  runtime?: SandboxRuntime;
  nodeBins?: NodeBinarySet | undefined;
}

export interface SandboxUpResult {
  paths: SandboxPaths;
  ports: SandboxPorts;
  /** The sandbox webhook, when it runs: where to send deliveries and the file with its secret. */
  webhook?: { url: string; secretFile: string };
  started: ComponentName[];
  alreadyRunning: ComponentName[];
}

/**
 * Starts every sandbox component that is not already running, in order, and waits until each is
 * healthy. Running it again is safe: running components are kept, stale pid files are reported and
 * replaced, and the kubeconfig stays valid.
 */
export async function sandboxUp(options: SandboxUpOptions): Promise<SandboxUpResult> {
  const paths = sandboxPaths(path.resolve(options.stateDir));
  const progress = options.onProgress ?? (() => {});
  const warn = options.onWarning ?? (() => {});
  await mkdir(path.dirname(paths.logFile('x')), { recursive: true });
  await mkdir(path.dirname(paths.pidFile('x')), { recursive: true });
  const release = await acquireLock(path.join(paths.dir, 'sandbox.lock'), () =>
    progress(`waiting for another codemate process that is changing the sandbox in ${paths.dir}`),
  );
  try {
    const runtime = options.runtime ?? 'process';
    if (runtime === 'containerd' && !options.nodeBins)
      throw new Error('the containerd runtime needs the real node programs (nodeBins)');
    const selected = selectComponents(options.workloads ?? true, runtime, options.operator ?? true);
    const running = await runningComponents(paths, options.bins, options.nodeBins, selected);
    if (options.operator === false) {
      const own = [operatorComponent, webhookComponent];
      const competing = await runningComponents(paths, options.bins, options.nodeBins, own);
      if (competing.size > 0) {
        throw new CodemateError(`the sandbox in ${paths.dir} runs its own ${[...competing].join(' and ')}`, {
          hint: 'run `codemate dev down` first, then `codemate dev up --no-operator`',
        });
      }
    }
    const state = await loadOrCreateState(paths, options, running.size > 0, selected);
    const pki = await ensurePki(paths.pkiDir);
    await writeAdminKubeconfig(paths.kubeconfig, pki, state.ports.apiserver);
    const ctx: ComponentContext = {
      paths,
      ports: state.ports,
      bins: options.bins,
      pki,
      runtime,
      nodeBins: options.nodeBins,
      ...(options.sessions ? { sessions: options.sessions } : {}),
      localPods: selected.includes(podRuntimeComponent),
    };
    const started: ComponentName[] = [];
    const alreadyRunning: ComponentName[] = [];

    for (const component of selected) {
      const pidState = await inspectPidFile(
        paths.pidFile(component.name),
        identityOf(component, options.bins, options.nodeBins),
      );
      if (pidState.kind === 'running' && (await component.healthy(ctx))) {
        alreadyRunning.push(component.name);
        continue;
      }
      if (pidState.kind === 'running') {
        warn(`${component.name} (pid ${pidState.pid}) is running but not healthy; restarting it`);
        await stopProcess(pidState.pid);
      }
      if (pidState.kind === 'stale') {
        warn(
          `stale pid file ${paths.pidFile(component.name)}: ${component.name} (pid ${pidState.pid}) is no longer running; starting it again`,
        );
        await removePidFile(paths.pidFile(component.name));
      }
      if (component.name === 'kwok') await bootstrapKwok(paths, options.bins, runtime);
      await movePortsTaken(component, ctx, state, options.apiserverPort, warn);
      progress(`starting ${component.name}`);
      await startComponent(component, ctx, options.readyTimeoutMs ?? 60_000);
      await component.afterStart?.(ctx);
      started.push(component.name);
      if (component.name === 'kwok') {
        progress('waiting for the sandbox node and default service account');
        await waitForWorkloads(paths);
      }
    }
    if (runtime === 'containerd' && (options.workloads ?? true)) {
      // Pods cannot reach the host's loopback, nor GitHub: tell sessions where the model and the git
      // origin are (sessionEnv.ts), as the local pod runtime does for its processes.
      await applySessionEnvPolicy(Kube.load({ kubeconfig: paths.kubeconfig }), {
        ANTHROPIC_BASE_URL: options.sessions?.anthropicBaseUrl ?? modelServerUrl(state.ports, runtime),
        ...gitRewriteEnv(options.sessions?.gitRewrite),
      });
    }
    return { paths, ports: state.ports, started, alreadyRunning, ...webhookOf(state, paths) };
  } finally {
    await release();
  }
}

async function runningComponents(
  paths: SandboxPaths,
  bins: BinarySet,
  nodeBins: NodeBinarySet | undefined,
  selected: Component[],
): Promise<Set<ComponentName>> {
  const running = new Set<ComponentName>();
  for (const c of selected) {
    if ((await inspectPidFile(paths.pidFile(c.name), identityOf(c, bins, nodeBins))).kind === 'running')
      running.add(c.name);
  }
  return running;
}

async function loadOrCreateState(
  paths: SandboxPaths,
  options: SandboxUpOptions,
  anyRunning: boolean,
  selected: Component[],
): Promise<SandboxState> {
  const previous = await readState(paths);
  const names = selected.map((c) => c.name);
  if (previous && anyRunning) {
    if (options.apiserverPort && options.apiserverPort !== previous.ports.apiserver) {
      throw new CodemateError(
        `the sandbox in ${paths.dir} is already running with its apiserver on port ${previous.ports.apiserver}`,
        { hint: 'run `codemate dev down` first to move it to another port' },
      );
    }
    const runtime = options.runtime ?? 'process';
    if (runtimeOf(previous) !== runtime) {
      throw new CodemateError(
        `the sandbox in ${paths.dir} is running with the ${runtimeOf(previous)} runtime, not ${runtime}`,
        { hint: `run \`codemate dev down\` first, then \`codemate dev up --runtime ${runtime}\`` },
      );
    }
    const state = { ...previous, components: names, ports: { ...previous.ports } };
    for (const key of portNames) state.ports[key] ??= await distinctFreePort(state.ports);
    await writeFile(paths.stateFile, JSON.stringify(state, null, 2) + '\n');
    return state;
  }
  if (options.apiserverPort && !(await isPortFree(options.apiserverPort))) {
    throw portInUse(options.apiserverPort, 'kube-apiserver');
  }
  const ports = { ...previous?.ports } as SandboxPorts;
  if (options.apiserverPort) ports.apiserver = options.apiserverPort;
  // Ports recorded by an earlier run may have been taken since; pick new ones for those (not for a
  // port the user asked for, which startComponent reports instead).
  for (const key of portNames) {
    if (key === 'apiserver' && options.apiserverPort) continue;
    const taken = ports[key] === undefined || !(await isPortFree(ports[key]));
    const shared = portNames.slice(0, portNames.indexOf(key)).some((other) => ports[other] === ports[key]);
    if (taken || shared) ports[key] = await distinctFreePort(ports);
  }
  const state: SandboxState = {
    version: 1,
    binDir: options.bins.dir,
    ports,
    components: names,
    runtime: options.runtime ?? 'process',
    ...(options.nodeBins ? { nodeBinDir: options.nodeBins.dir } : {}),
  };
  await writeFile(paths.stateFile, JSON.stringify(state, null, 2) + '\n');
  return state;
}

/**
 * A free port that none of `ports` holds yet: nothing listens on the ones chosen before it until their
 * components start, so freePort alone can hand the same port out twice.
 */
async function distinctFreePort(ports: Partial<SandboxPorts>): Promise<number> {
  const chosen = new Set(Object.values(ports));
  for (;;) {
    const port = await freePort();
    if (!chosen.has(port)) return port;
  }
}

async function readState(paths: SandboxPaths): Promise<SandboxState | undefined> {
  const text = await readFile(paths.stateFile, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    const state = JSON.parse(text) as SandboxState;
    return state.version === 1 ? state : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A port chosen when the sandbox's state was written may have been taken since, by anything on the host
 * (another sandbox starting at the same time, say): the component gets another free one, recorded in
 * the state (and in the admin kubeconfig for the apiserver). Components start in dependency order, so
 * none that already runs refers to it. A port the user asked for is not moved: startComponent refuses it.
 */
async function movePortsTaken(
  component: Component,
  ctx: ComponentContext,
  state: SandboxState,
  requestedApiserverPort: number | undefined,
  warn: (text: string) => void,
): Promise<void> {
  for (const port of component.ports(ctx.ports)) {
    if (await isPortFree(port)) continue;
    const key = portNames.find((k) => ctx.ports[k] === port);
    if (!key || (key === 'apiserver' && requestedApiserverPort === port)) continue;
    ctx.ports[key] = await distinctFreePort(ctx.ports);
    warn(`port ${port}, chosen for ${component.name}, was taken meanwhile; using ${ctx.ports[key]}`);
    await writeFile(ctx.paths.stateFile, JSON.stringify(state, null, 2) + '\n');
    if (key === 'apiserver') await writeAdminKubeconfig(ctx.paths.kubeconfig, ctx.pki, ctx.ports.apiserver);
  }
}

function portInUse(port: number, component: string): CodemateError {
  return new CodemateError(`port ${port} on 127.0.0.1, needed by ${component}, is already in use`, {
    hint: `find the owner with \`ss -ltnp 'sport = :${port}'\`, stop it, or choose another port (--apiserver-port)`,
  });
}

async function startComponent(component: Component, ctx: ComponentContext, timeoutMs: number): Promise<void> {
  for (const port of component.ports(ctx.ports)) {
    if (!(await isPortFree(port))) throw portInUse(port, component.name);
  }
  await component.prepare?.(ctx);
  const logFile = ctx.paths.logFile(component.name);
  const pid = await startDetached({
    command: executableOf(component, ctx.bins, ctx.nodeBins),
    args: component.args(ctx),
    env: { ...process.env, ...component.env?.(ctx) },
    logFile,
    pidFile: ctx.paths.pidFile(component.name),
  });
  await waitFor(
    async () => {
      if (!isAlive(pid)) throw await componentFailure(component.name, 'exited during start', logFile);
      return component.healthy(ctx);
    },
    {
      timeoutMs,
      describe: async () =>
        (await componentFailure(component.name, `not healthy after ${timeoutMs} ms`, logFile)).message,
    },
  ).catch((error: unknown) => {
    throw error instanceof CodemateError ? error : new CodemateError((error as Error).message);
  });
}

async function componentFailure(name: string, what: string, logFile: string): Promise<CodemateError> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  const tail = log.trim().split('\n').slice(-12).join('\n');
  return new CodemateError(`${name} ${what}; last lines of ${logFile}:\n${tail}`, {
    hint: `read ${logFile} for the full log; \`codemate dev down\` then \`codemate dev up\` starts afresh`,
  });
}

const nodeLeaseNamespace = 'kube-node-lease';

/** Keeps pods off kwok's node when the sandbox has a real one. */
export const kwokNodeTaint = 'codemate.io/kwok';

/**
 * kwok's own CRDs (Exec, Logs, Attach, ...) and the node it plays, and the node's Lease out of the way.
 *
 * A kwok process holds the node's Lease under a random identity. The Lease an earlier kwok left behind
 * (after `dev down`, or a crash) names that identity, so a new kwok treats it as someone else's until it
 * expires, and plays neither the node nor its pods meanwhile: pods bound to the node stay Pending. Only
 * one kwok runs per sandbox and none runs now, so the Lease is stale by definition; without it the new kwok
 * creates its own at once.
 */
async function bootstrapKwok(paths: SandboxPaths, bins: BinarySet, runtime: SandboxRuntime): Promise<void> {
  const kube = Kube.load({ kubeconfig: paths.kubeconfig });
  await kube.delete('coordination.k8s.io/v1', 'Lease', sandboxNodeName, nodeLeaseNamespace);
  for (const file of (await readdir(bins.kwokCrdDir)).filter((f) => f.endsWith('.yaml')).sort()) {
    const crd = parseYaml(await readFile(path.join(bins.kwokCrdDir, file), 'utf8')) as KubeObject;
    await kube.apply(crd, 'codemate-sandbox');
  }
  await kube.apply(
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: sandboxNodeName,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: { 'kubernetes.io/hostname': sandboxNodeName, 'kubernetes.io/os': 'linux', type: 'kwok' },
      },
      // With a real node, pods go there: nothing would run them on kwok's. Applied without the taint (the
      // process runtime), the same field manager takes it away again.
      ...(runtime === 'containerd'
        ? { spec: { taints: [{ key: kwokNodeTaint, value: 'no-runtime', effect: 'NoSchedule' }] } }
        : {}),
    },
    'codemate-sandbox',
  );
  // kwok only serves Exec/Logs/Attach once the apiserver has established their CRDs: about a second,
  // and much longer on a machine busy with other work.
  let lastError = '';
  await waitFor(
    async () => {
      try {
        await kube.list('kwok.x-k8s.io/v1alpha1', 'Exec', 'default');
        return true;
      } catch (error) {
        lastError = (error as Error).message;
        return false;
      }
    },
    { timeoutMs: 120_000, describe: () => '' },
  ).catch(() => {
    throw new CodemateError(`the apiserver did not serve kwok's CRDs within 120 s: ${lastError}`, {
      hint: `see ${paths.logFile('kube-apiserver')}; \`codemate dev down\` and \`dev up\` again`,
    });
  });
}

async function waitForWorkloads(paths: SandboxPaths): Promise<void> {
  const kube = Kube.load({ kubeconfig: paths.kubeconfig });
  await waitFor(
    async () => {
      try {
        const node = await kube.get<KubeObject>('v1', 'Node', sandboxNodeName);
        const conditions = (
          node.status as { conditions?: Array<{ type: string; status: string }> } | undefined
        )?.conditions;
        if (!conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return false;
        // The Lease was deleted before kwok started: one that exists now is kwok's, so it plays the node.
        await kube.get('coordination.k8s.io/v1', 'Lease', sandboxNodeName, nodeLeaseNamespace);
        await kube.get('v1', 'ServiceAccount', 'default', 'default');
        return true;
      } catch {
        return false;
      }
    },
    {
      timeoutMs: 60_000,
      describe: () =>
        `node ${sandboxNodeName} not Ready, its Lease not taken by kwok, or no default ServiceAccount within 60 s`,
    },
  );
}

export interface ComponentStatus {
  name: ComponentName;
  state: 'running' | 'stopped' | 'stale' | 'unhealthy';
  pid?: number;
  port?: number;
  log: string;
}

export interface SandboxStatus {
  dir: string;
  kubeconfig: string;
  webhook?: { url: string; secretFile: string };
  exists: boolean;
  runtime?: SandboxRuntime;
  components: ComponentStatus[];
}

/** The context of a sandbox that `dev up` made, as its state file records it. */
function contextOf(paths: SandboxPaths, state: SandboxState): ComponentContext {
  return {
    paths,
    ports: state.ports,
    bins: binarySetAt(state.binDir),
    pki: pkiAt(paths.pkiDir),
    runtime: runtimeOf(state),
    nodeBins: nodeBinsOf(state),
  };
}

/** What each component is doing, from pid files and health endpoints. */
export async function sandboxStatus(stateDir: string): Promise<SandboxStatus> {
  const paths = sandboxPaths(path.resolve(stateDir));
  const state = await readState(paths);
  if (!state) return { dir: paths.dir, kubeconfig: paths.kubeconfig, exists: false, components: [] };
  const ctx = contextOf(paths, state);
  const result: ComponentStatus[] = [];
  for (const c of componentsOf(state)) {
    const pidState = await inspectPidFile(paths.pidFile(c.name), identityOf(c, ctx.bins, ctx.nodeBins));
    const port = c.ports(state.ports)[0];
    const log = paths.logFile(c.name);
    if (pidState.kind === 'none') result.push({ name: c.name, state: 'stopped', port, log });
    else if (pidState.kind === 'stale')
      result.push({ name: c.name, state: 'stale', pid: pidState.pid, port, log });
    else {
      const healthy = await c.healthy(ctx);
      result.push({ name: c.name, state: healthy ? 'running' : 'unhealthy', pid: pidState.pid, port, log });
    }
  }
  return {
    dir: paths.dir,
    kubeconfig: paths.kubeconfig,
    exists: true,
    runtime: ctx.runtime,
    components: result,
    ...webhookOf(state, paths),
  };
}

export interface SandboxDownResult {
  stopped: Array<{ name: ComponentName; pid: number }>;
  stale: Array<{ name: ComponentName; pid: number }>;
  /** Steps around the stops that failed (draining the real node, restoring the host). */
  warnings: string[];
}

/**
 * Stops every component in reverse order, with the real node's steps around its stops (its pods go first;
 * the host is restored after); with `purge`, also deletes the state directory, unless a step failed or
 * something is still mounted under it.
 */
export async function sandboxDown(
  stateDir: string,
  options: { purge?: boolean } = {},
): Promise<SandboxDownResult> {
  const paths = sandboxPaths(path.resolve(stateDir));
  const state = await readState(paths);
  const result: SandboxDownResult = { stopped: [], stale: [], warnings: [] };
  if (state) {
    const ctx = contextOf(paths, state);
    const hook = async (c: Component, which: 'beforeStop' | 'afterStop') => {
      try {
        await c[which]?.(ctx);
      } catch (error) {
        result.warnings.push(`${c.name}: ${(error as Error).message}`);
      }
    };
    for (const c of [...selectComponents(true, ctx.runtime)].reverse()) {
      const pidState = await inspectPidFile(paths.pidFile(c.name), identityOf(c, ctx.bins, ctx.nodeBins));
      if (pidState.kind === 'running') {
        await hook(c, 'beforeStop');
        await stopProcess(pidState.pid);
        result.stopped.push({ name: c.name, pid: pidState.pid });
      } else if (pidState.kind === 'stale') {
        result.stale.push({ name: c.name, pid: pidState.pid });
      }
      await removePidFile(paths.pidFile(c.name));
      await hook(c, 'afterStop');
    }
  }
  // A step that failed may need the state directory (the host snapshot) when `dev down` runs again.
  if (options.purge && result.warnings.length === 0) {
    const mounts = await mountsUnder(paths.dir);
    if (mounts.length > 0) {
      throw new CodemateError(
        `not deleting ${paths.dir}: ${mounts.length} mount(s) are still under it, e.g. ${mounts[0]}`,
        { hint: `unmount them (\`umount ${mounts[0]}\`), then run \`codemate dev down --purge\` again` },
      );
    }
    await rm(paths.dir, { recursive: true, force: true });
  }
  return result;
}
