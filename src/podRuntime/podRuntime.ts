/**
 * The sandbox's local pod runtime: kwok plays pods without running anything, so this runs each pod on
 * kwok's node as a local process, as hostPrograms.ts says (sessions from the session image's scripts,
 * CodeMate's servers from the project's image), with the pod's environment (secret, ConfigMap and field
 * references resolved), in a directory of its own with its own tmux socket. kwok's Exec, Logs and Attach
 * objects map `kubectl exec`, `kubectl logs` and `kubectl attach` on the pod to that process, and its
 * PortForward objects map `kubectl port-forward` to the host ports that stand for the container's ports.
 * A pod it cannot run is reported as a kubelet reports a container it cannot create.
 *
 * A server pod gets what its container would have from a kubelet, translated to a host process:
 * - its ServiceAccount's credentials as KUBECONFIG (a token from the TokenRequest API, bound to the pod as
 *   a kubelet's projected token is), instead of the token volume it cannot mount;
 * - a free host port for each container port, since two replicas share one host: an environment value
 *   that is exactly a container port's number becomes its host port (the chart passes its servers' ports
 *   so), and probes and port-forward use the host port;
 * - its Secret, ConfigMap and emptyDir volumes as directories in the pod's directory: an environment
 *   value under a mount path points into them instead.
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
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { podRuntimeBackoff } from '../config/defaults.js';
import { gitRewriteEnv } from '../config/index.js';
import { errorFields, type Logger } from '../observability/log.js';
import { on, runController, type RunningController } from '../runtime/controller.js';
import { PermanentError, TemporaryError } from '../runtime/errors.js';
import { informerSupervision, watch, type Watched } from '../runtime/informers.js';
import { WorkQueue } from '../runtime/queue.js';
import { freePort } from '../clients/ports.js';
import { hostProgram, imageScriptsDir, type HostProgram } from './hostPrograms.js';
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

/**
 * How long a server pod's ServiceAccount token lasts. Its process reads KUBECONFIG once, so the token is
 * not refreshed as a kubelet refreshes a projected one; being bound to the pod, it dies with the pod anyway.
 */
const serverTokenSeconds = 365 * 24 * 3600;

type KeyRef = { name: string; key: string; optional?: boolean };
type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: KeyRef;
    configMapKeyRef?: KeyRef;
    fieldRef?: { fieldPath: string };
  };
};
type KeyItems = { items?: Array<{ key: string; path: string }>; optional?: boolean };
type Volume = {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  secret?: KeyItems & { secretName: string };
  configMap?: KeyItems & { name: string };
  emptyDir?: object;
  projected?: { sources?: Array<{ serviceAccountToken?: object }> };
};
interface Probe {
  exec?: { command?: string[] };
  httpGet?: { path?: string; port: number | string };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}
type Container = {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  readinessProbe?: Probe;
};
export type Pod = KubeObject & {
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    automountServiceAccountToken?: boolean;
    containers: Container[];
    volumes?: Volume[];
  };
  status?: ObservedPod['status'];
};
type Node = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };
type Claim = KubeObject & { spec: { volumeName?: string }; status?: { phase?: string } };
type PersistentVolume = KubeObject & { spec: { hostPath?: { path: string } } };

export interface PodRuntimeOptions {
  kube: Kube;
  /** The node whose pods this runtime runs (kwok's). */
  nodeName: string;
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

/** The keys of a Secret or ConfigMap of the pod's namespace, decoded; each object is read once. */
function keyReader(kube: Kube, namespace: string | undefined) {
  const read = new Map<string, Promise<Record<string, string> | undefined>>();
  return (kind: 'Secret' | 'ConfigMap', name: string): Promise<Record<string, string> | undefined> => {
    const id = `${kind}/${name}`;
    if (!read.has(id)) {
      read.set(
        id,
        kube.get<KubeObject & { data?: Record<string, string> }>('v1', kind, name, namespace).then(
          ({ data = {} }) =>
            kind === 'ConfigMap'
              ? data
              : Object.fromEntries(
                  Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
                ),
          (error: unknown) => {
            if (isNotFound(error)) return undefined;
            throw error;
          },
        ),
      );
    }
    return read.get(id)!;
  };
}

const fieldPaths: Record<string, (pod: Pod) => string | undefined> = {
  'metadata.name': (pod) => pod.metadata.name,
  'metadata.namespace': (pod) => pod.metadata.namespace,
  'metadata.uid': (pod) => pod.metadata.uid,
  'spec.nodeName': (pod) => pod.spec.nodeName,
  'spec.serviceAccountName': (pod) => pod.spec.serviceAccountName,
};

/** The environment a kubelet would give the container, with Secret, ConfigMap and field references resolved. */
export async function resolveEnv(kube: Kube, pod: Pod, env: EnvVar[]): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  const keysOf = keyReader(kube, pod.metadata.namespace);
  for (const v of env) {
    const ref = v.valueFrom?.secretKeyRef ?? v.valueFrom?.configMapKeyRef;
    if (v.value !== undefined) resolved[v.name] = v.value;
    else if (ref) {
      const kind = v.valueFrom?.secretKeyRef ? 'Secret' : 'ConfigMap';
      const keys = await keysOf(kind, ref.name);
      const data = keys?.[ref.key];
      if (data === undefined && !ref.optional) {
        throw new TemporaryError(
          `${kind.toLowerCase()} ${ref.name} ${keys ? `has no key ${ref.key}` : 'does not exist'}`,
        );
      }
      if (data !== undefined) resolved[v.name] = data;
    } else if (v.valueFrom?.fieldRef) {
      const field = fieldPaths[v.valueFrom.fieldRef.fieldPath];
      if (!field) throw new PermanentError(`fieldRef ${v.valueFrom.fieldRef.fieldPath} is not supported`);
      resolved[v.name] = field(pod) ?? '';
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
      // Every pod: the ones bound to this runtime's node are picked in sync, as a kubelet picks its own.
      { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
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
    if (!pod || pod.metadata.deletionTimestamp || pod.spec.nodeName !== this.options.nodeName) return;
    if (!local) {
      if (isTerminal(pod.status?.phase)) return;
      const started = await this.startLocal(key, pod);
      if ('unsupported' in started) return this.reportUnsupported(key, pod, started.unsupported);
      local = started;
    }
    if (!local.mapped) {
      await this.mapKubectl(pod, local.session);
      local.mapped = true;
    }
    await this.refreshSessionSecrets(pod, local);
    return this.reassertStatus(pod, local);
  }

  /** A pod this runtime cannot run: not ready, its container waiting with the reason, as a kubelet says. */
  private async reportUnsupported(
    key: string,
    pod: Pod,
    message: string,
  ): Promise<{ requeueAfterMs?: number } | undefined> {
    // kwok's pod-ready stage moves it to Running first; a Pending pod would be marked ready again.
    if (pod.status?.phase !== 'Running') return;
    const patch = statusPatch(pod, { state: 'unsupported', message }, new Date());
    if (!patch) return;
    const wait = this.pacer.waitMs(key, Date.now());
    if (wait > 0) return { requeueAfterMs: wait };
    await this.patchStatus(pod, patch);
    this.pacer.wrote(key, Date.now());
    this.options.logger.warn({ pod: key, reason: message }, 'pod not run: the local runtime cannot run it');
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

  private async startLocal(key: string, pod: Pod): Promise<LocalPod | { unsupported: string }> {
    const [container, ...others] = pod.spec.containers;
    if (!container || others.length > 0) {
      return { unsupported: "the sandbox's process runtime runs pods of exactly one container" };
    }
    const run = hostProgram(container, this.options.scriptsDir);
    if ('unsupported' in run) return run;
    const refused = run.program.kind === 'server' ? unmountable(pod, container) : undefined;
    if (refused) return { unsupported: refused };
    const dirs = await this.podDirsOf(pod);
    await ensureDirs(dirs);
    const start =
      run.program.kind === 'session'
        ? await this.sessionStart(pod, container, dirs)
        : await this.serverStart(pod, container, dirs, run.program);
    const session = await SessionProcess.start({
      dirs,
      pod: { namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! },
      script: run.program.command,
      args: run.program.args,
      ...start,
    });
    this.options.logger.info(
      { pod: key, pid: session.record.pid, dir: dirs.base, kind: run.program.kind },
      'started pod locally',
    );
    return this.track(key, pod, session);
  }

  /** What a session's process gets: the session image's environment, mapped to the pod's directory. */
  private async sessionStart(pod: Pod, container: Container, dirs: PodDirs) {
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
    // Its Secret volumes (App mode's installation token) as directories, as a server's; the workspace is
    // the pod directory's own.
    const mounts = await this.materializeVolumes(pod, sessionVolumes(container), dirs);
    const resolved = await resolveEnv(this.options.kube, pod, container.env ?? []);
    const containerEnv = Object.fromEntries(
      Object.entries(resolved).map(([k, v]) => [k, underMounts(v, mounts)]),
    );
    const env = { ...containerEnv, ...sessionEnv };
    return { env, sessionEnv };
  }

  /**
   * What a server's process gets (see the top of this file): its ServiceAccount as KUBECONFIG, host ports
   * for its container ports, and its volumes as directories, with the environment pointing at them.
   */
  private async serverStart(pod: Pod, container: Container, dirs: PodDirs, program: HostProgram) {
    const ports: Record<string, number> = {};
    for (const { containerPort } of container.ports ?? []) ports[containerPort] = await freePort();
    const mounts = await this.materializeVolumes(pod, container, dirs);
    const kubeconfig = path.join(dirs.base, 'kubeconfig');
    const automount = pod.spec.automountServiceAccountToken !== false;
    if (automount) {
      const token = await this.options.kube.serviceAccountToken(
        pod.metadata.namespace!,
        pod.spec.serviceAccountName ?? 'default',
        serverTokenSeconds,
        { name: pod.metadata.name!, uid: pod.metadata.uid! },
      );
      await writeFile(kubeconfig, this.options.kube.tokenKubeconfig(token, pod.metadata.namespace!), {
        mode: 0o600,
      });
    }
    const translate = (value: string): string => {
      if (/^\d+$/.test(value) && ports[value] !== undefined) return String(ports[value]);
      return underMounts(value, mounts);
    };
    const containerEnv = Object.fromEntries(
      Object.entries(await resolveEnv(this.options.kube, pod, container.env ?? [])).map(([k, v]) => [
        k,
        translate(v),
      ]),
    );
    const sessionEnv: Record<string, string> = {
      HOME: dirs.home,
      // tmux is not the server's, but stopping a pod runs `tmux kill-server`: on the pod's own socket.
      TMUX_TMPDIR: dirs.tmux,
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(automount ? { KUBECONFIG: kubeconfig } : {}),
    };
    return { env: { ...program.env, ...containerEnv, ...sessionEnv }, sessionEnv, ports };
  }

  /**
   * Writes the container's Secret and ConfigMap volumes into the pod's directory and makes its emptyDirs
   * there; returns each mount path with its directory. The ServiceAccount token volume is left out: the
   * process gets KUBECONFIG instead.
   */
  private async materializeVolumes(
    pod: Pod,
    container: Container,
    dirs: PodDirs,
  ): Promise<Array<[string, string]>> {
    const keysOf = keyReader(this.options.kube, pod.metadata.namespace);
    const mounts: Array<[string, string]> = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
      if (volume?.projected?.sources?.some((source) => source.serviceAccountToken)) continue;
      const dir = path.join(dirs.base, 'volumes', mount.name);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      mounts.push([mount.mountPath.replace(/\/$/, ''), dir]);
      const source = volume?.secret
        ? { kind: 'Secret' as const, name: volume.secret.secretName, ...volume.secret }
        : volume?.configMap
          ? { kind: 'ConfigMap' as const, ...volume.configMap }
          : undefined;
      // An emptyDir: the directory is all (unmountable() refused every other kind).
      if (!source) continue;
      const data = await keysOf(source.kind, source.name);
      if (!data) {
        if (source.optional) continue;
        throw new TemporaryError(
          `${source.kind.toLowerCase()} ${source.name} of volume ${mount.name} does not exist`,
        );
      }
      const items = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (data[item.key] === undefined)
          throw new TemporaryError(`${source.kind.toLowerCase()} ${source.name} has no key ${item.key}`);
        const file = path.join(dir, item.path);
        await mkdir(path.dirname(file), { recursive: true });
        // Replaced whole, as a kubelet swaps a volume's files: a reader never sees half a new value.
        await writeFile(`${file}.new`, data[item.key]!, { mode: 0o600 });
        await rename(`${file}.new`, file);
      }
    }
    return mounts;
  }

  /**
   * A kubelet updates a running pod's Secret volumes when the Secrets change: so does this, at each sync
   * of a running session (every resync), which is how a renewed installation token reaches it.
   */
  private async refreshSessionSecrets(pod: Pod, local: LocalPod): Promise<void> {
    const [container] = pod.spec.containers;
    if (local.exit || !container) return;
    const run = hostProgram(container, this.options.scriptsDir);
    if ('unsupported' in run || run.program.kind !== 'session') return;
    const volumes = sessionVolumes(container);
    const hasSecret = volumes.volumeMounts?.some(
      (m) => pod.spec.volumes?.find((v) => v.name === m.name)?.secret,
    );
    if (hasSecret) await this.materializeVolumes(pod, volumes, local.session.dirs);
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
    const container = pod.spec.containers[0];
    const spec = container?.readinessProbe;
    const check = probeCheck(container, local.session, this.options.scriptsDir);
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
      const ok = check ? await check(timeoutMs) : true;
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

  /**
   * kwok Exec, Logs and Attach for this pod, and PortForward when it has ports, owned by it so they go
   * with it.
   */
  private async mapKubectl(pod: Pod, session: SessionProcess) {
    const { dirs } = session;
    const env = session.record.sessionEnv;
    const metadata = {
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name!, uid: pod.metadata.uid! }],
    };
    const containers = [pod.spec.containers[0]!.name];
    const forwards = Object.entries(session.record.ports ?? {}).map(([containerPort, hostPort]) => ({
      ports: [Number(containerPort)],
      target: { address: '127.0.0.1', port: hostPort },
    }));
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
      ...(forwards.length > 0
        ? [{ apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'PortForward', metadata, spec: { forwards } }]
        : []),
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

/** A session container's mounts other than its workspace, which is the pod directory's own. */
function sessionVolumes(container: Container): Container {
  return { ...container, volumeMounts: container.volumeMounts?.filter((m) => m.name !== 'workspace') };
}

/** A value under a mount path points into the directory that stands for the mount on the host. */
function underMounts(value: string, mounts: Array<[string, string]>): string {
  for (const [mountPath, dir] of mounts) {
    if (value === mountPath || value.startsWith(`${mountPath}/`)) return dir + value.slice(mountPath.length);
  }
  return value;
}

/** Why a server's volumes cannot be given to it on the host, if one cannot. */
function unmountable(pod: Pod, container: Container): string | undefined {
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
    const serviceAccount = volume?.projected?.sources?.some((source) => source.serviceAccountToken);
    if (volume && (volume.secret || volume.configMap || volume.emptyDir || serviceAccount)) continue;
    return `volume ${mount.name} is not a Secret, ConfigMap or emptyDir volume (or the ServiceAccount token), the kinds the sandbox's process runtime gives a server`;
  }
  return undefined;
}

/**
 * The container's readiness check on the host: an exec probe runs the command (the session image's
 * scripts from setup/scripts) in the session's environment; an httpGet probe asks the host port that
 * stands for its port. Undefined: no probe, so ready once running.
 */
function probeCheck(
  container: Container | undefined,
  session: SessionProcess,
  scriptsDir: string,
): ((timeoutMs: number) => Promise<boolean>) | undefined {
  const spec = container?.readinessProbe;
  if (spec?.exec?.command?.length) {
    const command = spec.exec.command.map((arg, i) =>
      i === 0 && arg.startsWith(`${imageScriptsDir}/`) ? path.join(scriptsDir, path.basename(arg)) : arg,
    );
    return (timeoutMs) => runProbe(command, session.commandEnv(), timeoutMs);
  }
  if (spec?.httpGet) {
    const { port, path: urlPath = '/' } = spec.httpGet;
    const containerPort =
      typeof port === 'number' ? port : container?.ports?.find((p) => p.name === port)?.containerPort;
    const hostPort = containerPort === undefined ? undefined : session.record.ports?.[containerPort];
    // A probe on a port the container does not declare never passes, as it never would in a cluster.
    if (hostPort === undefined) return async () => false;
    return (timeoutMs) =>
      fetch(`http://127.0.0.1:${hostPort}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs) }).then(
        (res) => res.status >= 200 && res.status < 400,
        () => false,
      );
  }
  return undefined;
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
