/**
 * The sandbox's local pod runtime: kwok plays pods without running anything, so this runs each session
 * pod's entrypoint as a local process with the pod's environment (secret references resolved), in a
 * directory of its own with its own tmux socket. kwok's Exec, Logs and Attach objects map `kubectl exec`,
 * `kubectl logs` and `kubectl attach` on the pod to that process.
 *
 * It behaves like a kubelet where that matters to CodeMate:
 * - it probes readiness for as long as the pod runs, and reasserts the pod's Ready and ContainersReady
 *   conditions and container status whenever the apiserver holds something else (on pod and node events
 *   and every `resyncMs`), paced so that a writer fighting it cannot make it loop;
 * - when the process exits, the pod's status says so; when the pod goes away, so does every process of it;
 * - sessions outlive the runtime (see sessionProcess.ts): a runtime that starts again adopts the sessions
 *   that still run, and reports the ones that ended meanwhile.
 */
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { podRuntimeBackoff } from '../config/defaults.js';
import { gitRewriteEnv } from '../config/index.js';
import { errorFields, type Logger } from '../observability/log.js';
import { on, runController, type RunningController } from '../runtime/controller.js';
import { PermanentError, TemporaryError } from '../runtime/errors.js';
import { informerSupervision, watch, type Watched } from '../runtime/informers.js';
import { WorkQueue } from '../runtime/queue.js';
import { labels, sessionContainer } from '../api/pod.js';
import {
  isTerminal,
  statusPatch,
  StatusWritePacer,
  type ObservedPod,
  type SessionTruth,
} from './podStatus.js';
import {
  ensureDirs,
  podDirs,
  podMarkerEnv,
  readRecords,
  SessionProcess,
  stopSessionProcesses,
  type PodDirs,
  type SessionExit,
} from './sessionProcess.js';
import { processesWithEnv } from '../clients/processes.js';

export { criLine } from './sessionProcess.js';

export const imageScriptsDir = '/opt/codemate/bin';

type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
};
type Volume = { name: string; persistentVolumeClaim?: { claimName: string } };
interface Probe {
  exec?: { command?: string[] };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
export type Pod = KubeObject & {
  spec: {
    nodeName?: string;
    containers: Array<{
      name: string;
      image?: string;
      command?: string[];
      env?: EnvVar[];
      readinessProbe?: Probe;
    }>;
    volumes?: Volume[];
  };
  status?: ObservedPod['status'];
};
type Node = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };
type Claim = KubeObject & { spec: { volumeName?: string }; status?: { phase?: string } };
type PersistentVolume = KubeObject & { spec: { hostPath?: { path: string } } };

export interface PodRuntimeOptions {
  kube: Kube;
  /** Where pod directories live. */
  dir: string;
  /** setup/scripts: what /opt/codemate/bin is in the image. */
  scriptsDir: string;
  pluginsDir: string;
  logger: Logger;
  /**
   * Sandbox only: `PREFIX=REPLACEMENT` makes git in every session fetch REPLACEMENT... for PREFIX...
   * (git's url.<base>.insteadOf), e.g. https://github.com/=file:///srv/repos/ so that a CodeMate can name
   * its GitHub URL (which the poller needs) while the clone comes from a local repository.
   */
  gitRewrite?: string | undefined;
  /** The Messages API sessions' Claude Code talks to (ANTHROPIC_BASE_URL). */
  anthropicBaseUrl?: string | undefined;
  /** The claude program sessions run, put first on their PATH; the image has it at /usr/local/bin. */
  claude?: string | undefined;
  /** How often every local pod's status is compared with the truth even without an event. */
  resyncMs?: number;
}

/** The environment a kubelet would give the container, with secret references resolved. */
export async function resolveEnv(kube: Kube, pod: Pod, env: EnvVar[]): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  const secrets = new Map<string, Record<string, string>>();
  for (const v of env) {
    if (v.value !== undefined) resolved[v.name] = v.value;
    else if (v.valueFrom?.secretKeyRef) {
      const { name, key, optional } = v.valueFrom.secretKeyRef;
      if (!secrets.has(name)) {
        const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
          'v1',
          'Secret',
          name,
          pod.metadata.namespace,
        );
        secrets.set(name, secret.data ?? {});
      }
      const data = secrets.get(name)![key];
      if (data === undefined && !optional) throw new Error(`secret ${name} has no key ${key}`);
      if (data !== undefined) resolved[v.name] = Buffer.from(data, 'base64').toString('utf8');
    } else if (v.valueFrom?.fieldRef) {
      const field = v.valueFrom.fieldRef.fieldPath;
      if (field === 'metadata.namespace') resolved[v.name] = pod.metadata.namespace ?? '';
      if (field === 'metadata.name') resolved[v.name] = pod.metadata.name ?? '';
    }
  }
  return resolved;
}

/** A pod the runtime runs (or ran): its process, and what the probes last said. */
interface LocalPod {
  key: string;
  uid: string;
  session: SessionProcess;
  /** Undefined until the first probe has answered. */
  ready: boolean | undefined;
  exit: SessionExit | undefined;
  /** kwok's Exec, Logs and Attach objects are in place. */
  mapped: boolean;
  /**
   * The pod's resourceVersion that the last status write was computed from. Until the cache holds a newer
   * one, that write is still on its way back through the watch, and writing again would only repeat it.
   */
  writtenFrom: string | undefined;
  probing: { stop(): void };
}

export class LocalPodRuntime {
  private readonly queue = new WorkQueue(podRuntimeBackoff);
  private readonly pods: Watched<Pod>;
  private readonly nodes: Watched<Node>;
  private readonly local = new Map<string, LocalPod>();
  private readonly pacer = new StatusWritePacer();
  private running: RunningController | undefined;

  constructor(private readonly options: PodRuntimeOptions) {
    const supervision = informerSupervision(options.logger);
    this.pods = watch<Pod>(
      options.kube,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        plural: 'pods',
        labelSelector: `${labels.managedBy}=codemate,${labels.component}=session`,
      },
      supervision,
    );
    this.nodes = watch<Node>(options.kube, { apiVersion: 'v1', kind: 'Node', plural: 'nodes' }, supervision);
  }

  /**
   * Starts watching, adopts the sessions an earlier runtime left running (or stops those whose pod is
   * gone) once the first lists are in, and only then starts the workers, so that no pod is started twice.
   */
  async start(): Promise<void> {
    this.running = await runController({
      keyField: 'pod',
      what: 'local pod sync',
      logger: this.options.logger,
      queue: this.queue,
      sources: [
        on(this.pods, (_event, pod) => `${pod.metadata.namespace}/${pod.metadata.name}`),
        // A node that turns Ready again is the moment to reassert what the node-lifecycle controller undid.
        on(this.nodes, () => [...this.local.keys()]),
      ],
      reconcile: (key) => this.sync(key),
      workers: 2,
      resync: { everyMs: this.options.resyncMs ?? 10_000, keys: () => this.local.keys() },
      waitForSync: true,
      beforeWorkers: () => this.adopt(),
    });
  }

  /** Stops the workers and every local session. */
  async stop(): Promise<void> {
    await this.running?.stop();
    await Promise.all(
      [...this.local.values()].map((local) =>
        this.stopLocal(local).catch((error: unknown) =>
          this.options.logger.error(
            { pod: local.key, ...errorFields(error) },
            'stopping a local session failed',
          ),
        ),
      ),
    );
  }

  private async adopt(): Promise<void> {
    const kept = new Set<string>();
    for (const { base, record } of await readRecords(this.options.dir)) {
      const key = record && `${record.namespace}/${record.name}`;
      const pod = key ? this.pods.get(record.name, record.namespace) : undefined;
      const current =
        record &&
        pod &&
        !pod.metadata.deletionTimestamp &&
        pod.metadata.uid === record.uid &&
        !this.local.has(key!);
      if (!current) {
        // Its pod is gone or replaced (or it never got as far as a record): nothing may keep running.
        this.options.logger.info({ pod: key, dir: base }, 'stopping a local session whose pod is gone');
        await stopSessionProcesses(
          base,
          record?.pid,
          { ...record?.sessionEnv, TMUX_TMPDIR: path.join(base, 't'), PATH: process.env.PATH },
          2000,
        );
        await rm(base, { recursive: true, force: true, maxRetries: 5 });
        continue;
      }
      kept.add(base);
      const session = await SessionProcess.adopt(record, podDirs(base, record.workspace));
      const local = this.track(key!, pod, session);
      this.options.logger.info(
        { pod: key, pid: record.pid, running: session.running, dir: base },
        session.running ? 'adopted a running local session' : 'adopted a local session that ended',
      );
      this.queue.add(local.key);
    }
    // Processes of a session whose directory is gone altogether.
    const prefix = this.options.dir + path.sep;
    const strays = new Set(
      processesWithEnv(podMarkerEnv, (v) => v.startsWith(prefix) && !kept.has(v)).map((p) => p.value),
    );
    for (const base of strays) {
      this.options.logger.info({ dir: base }, 'stopping processes of a local session without a directory');
      await stopSessionProcesses(
        base,
        undefined,
        { TMUX_TMPDIR: path.join(base, 't'), PATH: process.env.PATH },
        2000,
      );
    }
  }

  private async sync(key: string): Promise<{ requeueAfterMs?: number } | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const pod = this.pods.get(name, namespace);
    let local = this.local.get(key);
    if (local && (!pod || pod.metadata.deletionTimestamp || local.uid !== pod.metadata.uid)) {
      await this.stopLocal(local);
      local = undefined;
    }
    if (!pod || pod.metadata.deletionTimestamp) return;
    if (!local) {
      if (!pod.spec.nodeName || isTerminal(pod.status?.phase)) return;
      local = await this.startLocal(key, pod);
      if (!local) return;
    }
    if (!local.mapped) {
      await this.mapKubectl(pod, local.session.dirs, local.session.record.sessionEnv);
      local.mapped = true;
    }
    return this.reassertStatus(pod, local);
  }

  /** Writes the pod's status when it differs from the truth, at the pace the pacer allows. */
  private async reassertStatus(pod: Pod, local: LocalPod): Promise<{ requeueAfterMs?: number } | undefined> {
    let truth: SessionTruth;
    if (local.exit) truth = { state: 'exited', ...local.exit };
    else {
      // Until kwok has moved the pod to Running, and until the first probe, there is nothing to assert.
      // While the node is not Ready, the node-lifecycle controller marks its pods not ready on every
      // update; asserting then would be a fight. Its recovery is an event that brings us back here.
      if (pod.status?.phase !== 'Running' || local.ready === undefined) return;
      if (!this.nodeIsReady(pod.spec.nodeName)) return;
      truth = { state: 'running', ready: local.ready, startedAt: local.session.record.startedAt };
    }
    const patch = statusPatch(pod, truth, new Date());
    if (!patch || local.writtenFrom === pod.metadata.resourceVersion) return;
    const wait = this.pacer.waitMs(local.key, Date.now());
    if (wait > 0) return { requeueAfterMs: wait };
    await this.patchStatus(pod, patch);
    local.writtenFrom = pod.metadata.resourceVersion;
    this.pacer.wrote(local.key, Date.now());
    this.options.logger.info(
      {
        pod: local.key,
        ...(truth.state === 'running' ? { ready: truth.ready } : { exitCode: truth.exitCode }),
      },
      'pod status set from the local session',
    );
  }

  private nodeIsReady(nodeName: string | undefined): boolean {
    const node = nodeName ? this.nodes.get(nodeName) : undefined;
    const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
    // No node (or no condition yet): nobody else judges this pod's readiness, so the truth stands.
    return !ready || ready.status === 'True';
  }

  private async podDirsOf(pod: Pod): Promise<PodDirs> {
    const base = path.join(this.options.dir, pod.metadata.uid!.slice(0, 13));
    const claim = pod.spec.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName;
    return podDirs(base, claim ? await this.claimDir(pod.metadata.namespace!, claim) : undefined);
  }

  /**
   * Where a claim's files are, found as a kubelet mounts it: the claim's bound volume, a hostPath (the
   * sandbox's storage-provisioner makes those), which must exist. Until then the pod waits, as a kubelet's
   * would with FailedMount.
   */
  private async claimDir(namespace: string, claimName: string): Promise<string> {
    const { kube } = this.options;
    const claim = await kube.get<Claim>('v1', 'PersistentVolumeClaim', claimName, namespace);
    const volumeName = claim.status?.phase === 'Bound' ? claim.spec.volumeName : undefined;
    if (!volumeName) throw new TemporaryError(`claim ${namespace}/${claimName} is not bound to a volume yet`);
    const volume = await kube.get<PersistentVolume>('v1', 'PersistentVolume', volumeName);
    const dir = volume.spec.hostPath?.path;
    if (!dir) {
      throw new PermanentError(
        `volume ${volumeName} of claim ${namespace}/${claimName} is not a hostPath volume, the only kind the local pod runtime mounts`,
      );
    }
    const isDirectory = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDirectory) throw new TemporaryError(`directory ${dir} of volume ${volumeName} does not exist`);
    return dir;
  }

  private async startLocal(key: string, pod: Pod): Promise<LocalPod | undefined> {
    const container = pod.spec.containers.find((c) => c.name === sessionContainer);
    const command = container?.command?.[0];
    if (!container || !command?.startsWith(`${imageScriptsDir}/`)) return undefined;
    const dirs = await this.podDirsOf(pod);
    await ensureDirs(dirs);
    const stateDir = path.join(dirs.workspace, '.codemate');
    const sessionEnv: Record<string, string> = {
      HOME: dirs.home,
      TMUX_TMPDIR: dirs.tmux,
      CODEMATE_WORKSPACE: dirs.workspace,
      CODEMATE_STATE_DIR: stateDir,
      CLAUDE_CONFIG_DIR: path.join(dirs.workspace, '.claude'),
      CODEMATE_PLUGINS_DIR: this.options.pluginsDir,
      PATH: [
        this.options.scriptsDir,
        ...(this.options.claude ? [path.dirname(this.options.claude)] : []),
        process.env.PATH ?? '/usr/bin:/bin',
      ].join(':'),
      // As the session image sets them (setup/docker/Dockerfile.codemate).
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      ...(this.options.anthropicBaseUrl ? { ANTHROPIC_BASE_URL: this.options.anthropicBaseUrl } : {}),
      ...gitRewriteEnv(this.options.gitRewrite),
    };
    const env = { ...(await resolveEnv(this.options.kube, pod, container.env ?? [])), ...sessionEnv };
    const session = await SessionProcess.start({
      dirs,
      pod: { namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! },
      script: path.join(this.options.scriptsDir, path.basename(command)),
      args: container.command!.slice(1),
      env,
      sessionEnv,
    });
    this.options.logger.info(
      { pod: key, pid: session.record.pid, dir: dirs.base },
      'started session pod locally',
    );
    return this.track(key, pod, session);
  }

  /** Follows a session: probes it while it runs, and records how it ended. */
  private track(key: string, pod: Pod, session: SessionProcess): LocalPod {
    const local: LocalPod = {
      key,
      uid: pod.metadata.uid!,
      session,
      ready: undefined,
      exit: undefined,
      mapped: false,
      writtenFrom: undefined,
      probing: { stop: () => {} },
    };
    this.local.set(key, local);
    local.probing = this.probe(local, pod);
    void session.exited
      .then(async (exit) => {
        local.probing.stop();
        if (session.isStopping || this.local.get(key) !== local) return;
        this.options.logger.info({ pod: key, exitCode: exit.exitCode }, 'session process exited');
        local.exit = exit;
        local.ready = false;
        this.queue.add(key);
        await session.killLeftovers();
      })
      .catch((error: unknown) =>
        this.options.logger.error({ pod: key, ...errorFields(error) }, 'following a session process failed'),
      );
    return local;
  }

  /**
   * The pod's readiness probe, for as long as the session runs: every 500 ms until it first passes (so a
   * session is Ready as soon as it can be), then at the probe's period. `failureThreshold` failures in a
   * row make the pod not ready again.
   */
  private probe(local: LocalPod, pod: Pod): { stop(): void } {
    const spec = pod.spec.containers.find((c) => c.name === sessionContainer)?.readinessProbe;
    const command = spec?.exec?.command?.map((arg, i) =>
      i === 0 && arg.startsWith(`${imageScriptsDir}/`)
        ? path.join(this.options.scriptsDir, path.basename(arg))
        : arg,
    );
    const periodMs = (spec?.periodSeconds ?? 10) * 1000;
    // The sandbox shares a laptop's CPU: a probe is given at least 5 s before it counts as failed.
    const timeoutMs = Math.max(5, spec?.timeoutSeconds ?? 1) * 1000;
    const failureThreshold = spec?.failureThreshold ?? 3;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let failures = 0;
    let everReady = false;
    const set = (ready: boolean) => {
      if (local.ready === ready) return;
      local.ready = ready;
      this.options.logger.info({ pod: local.key, ready }, 'readiness changed');
      this.queue.add(local.key);
    };
    const round = async () => {
      if (stopped || local.exit || !local.session.running) return;
      const ok = command ? await runProbe(command, local.session.commandEnv(), timeoutMs) : true;
      if (stopped) return;
      if (ok) {
        failures = 0;
        everReady = true;
        set(true);
      } else if (!everReady) set(false);
      else if (++failures >= failureThreshold) set(false);
      timer = setTimeout(() => void round(), everReady ? periodMs : 500);
    };
    void round();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  /** kwok Exec, Logs and Attach for this pod, owned by it so they go with it. */
  private async mapKubectl(pod: Pod, dirs: PodDirs, env: Record<string, string>) {
    const metadata = {
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name!, uid: pod.metadata.uid! }],
    };
    const containers = [sessionContainer];
    const objects: KubeObject[] = [
      {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Exec',
        metadata,
        spec: {
          execs: [
            {
              containers,
              local: {
                workDir: dirs.workspace,
                envs: Object.entries(env).map(([name, value]) => ({ name, value })),
              },
            },
          ],
        },
      },
      {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Logs',
        metadata,
        spec: { logs: [{ containers, logsFile: dirs.log, follow: true }] },
      },
      {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Attach',
        metadata,
        spec: { attaches: [{ containers, logsFile: dirs.log }] },
      },
    ];
    for (const object of objects) await this.options.kube.apply(object, 'codemate-pod-runtime');
  }

  private async patchStatus(pod: Pod, status: object): Promise<void> {
    try {
      await this.options.kube.patchStatusRaw(
        'v1',
        'pods',
        pod.metadata.namespace!,
        pod.metadata.name!,
        status,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async stopLocal(local: LocalPod): Promise<void> {
    if (this.local.get(local.key) === local) this.local.delete(local.key);
    this.pacer.forget(local.key);
    local.probing.stop();
    await local.session.stop();
    this.options.logger.info({ pod: local.key }, 'stopped local session pod');
  }
}

async function runProbe(command: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { env, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', () => resolve(false));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}
