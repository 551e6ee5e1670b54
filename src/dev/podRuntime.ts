/**
 * The sandbox's local pod runtime: kwok plays pods without running anything, so this runs each session
 * pod's entrypoint as a local process with the pod's environment (secret references resolved), in a
 * directory of its own with its own tmux socket. kwok's Exec, Logs and Attach objects map `kubectl exec`,
 * `kubectl logs` and `kubectl attach` on the pod to that process. When the process exits, the pod's
 * status says so, as a kubelet's would; when the pod goes away, so does the process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { supervisedInformer, type Informer } from '../clients/informer.js';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import { WorkQueue } from '../operator/queue.js';
import { labels, sessionContainer } from '../operator/session.js';

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
export type Pod = KubeObject & {
  spec: {
    nodeName?: string;
    containers: Array<{ name: string; command?: string[]; env?: EnvVar[] }>;
    volumes?: Volume[];
  };
  status?: { phase?: string };
};

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
}

interface LocalPod {
  uid: string;
  child: ChildProcess;
  log: WriteStream;
  stopping: boolean;
  exited: Promise<void>;
  env: NodeJS.ProcessEnv;
}

/** A line of a container runtime (CRI) log, the format kwok's Logs reads. */
export function criLine(stream: 'stdout' | 'stderr', line: string, now = new Date()): string {
  return `${now.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')} ${stream} F ${line}\n`;
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

function gitRewriteEnv(rewrite: string | undefined): Record<string, string> {
  const [from, to] = rewrite?.split('=') ?? [];
  if (!from || !to) return {};
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `url.${to}.insteadOf`, GIT_CONFIG_VALUE_0: from };
}

export class LocalPodRuntime {
  private readonly queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 10_000 });
  private readonly pods: Informer<Pod>;
  private readonly local = new Map<string, LocalPod>();
  private workers: Array<Promise<void>> = [];

  constructor(private readonly options: PodRuntimeOptions) {
    this.pods = supervisedInformer<Pod>(options.kube, {
      apiVersion: 'v1',
      kind: 'Pod',
      plural: 'pods',
      labelSelector: `${labels.managedBy}=codemate,${labels.component}=session`,
      onEvent: (_e, pod) => this.queue.add(`${pod.metadata.namespace}/${pod.metadata.name}`),
      onRestart: (error) => options.logger.warn(errorFields(error), 'pod watch broke; restarting it'),
    });
  }

  async start(): Promise<void> {
    await this.pods.start();
    for (let i = 0; i < 2; i++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.pods.stop();
    await Promise.all([...this.local.keys()].map((key) => this.stopLocal(key)));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.sync(key);
        this.queue.forget(key);
      } catch (error) {
        this.options.logger.error({ pod: key, ...errorFields(error) }, 'local pod sync failed');
        this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    const pod = this.pods.get(name, namespace);
    const running = this.local.get(key);
    if (!pod || pod.metadata.deletionTimestamp || (running && running.uid !== pod.metadata.uid)) {
      if (running) await this.stopLocal(key);
      if (!pod || pod.metadata.deletionTimestamp) return;
    }
    if (
      this.local.has(key) ||
      !pod.spec.nodeName ||
      pod.status?.phase === 'Failed' ||
      pod.status?.phase === 'Succeeded'
    )
      return;
    await this.startLocal(key, pod);
  }

  private podDirs(pod: Pod) {
    const base = path.join(this.options.dir, pod.metadata.uid!.slice(0, 13));
    const claim = pod.spec.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName;
    // A claim outlives its pods, so its directory is keyed by the claim, like a volume.
    const workspace = claim
      ? path.join(this.options.dir, 'claims', pod.metadata.namespace!, claim)
      : path.join(base, 'ws');
    return {
      base,
      workspace,
      home: path.join(base, 'home'),
      tmux: path.join(base, 't'),
      log: path.join(base, 'session.log'),
    };
  }

  private async startLocal(key: string, pod: Pod): Promise<void> {
    const container = pod.spec.containers.find((c) => c.name === sessionContainer);
    const command = container?.command?.[0];
    if (!container || !command?.startsWith(`${imageScriptsDir}/`)) return;
    const dirs = this.podDirs(pod);
    for (const d of [dirs.workspace, dirs.home, dirs.tmux]) await mkdir(d, { recursive: true });
    const stateDir = path.join(dirs.workspace, '.codemate');
    const sessionEnv: Record<string, string> = {
      HOME: dirs.home,
      TMUX_TMPDIR: dirs.tmux,
      CODEMATE_WORKSPACE: dirs.workspace,
      CODEMATE_STATE_DIR: stateDir,
      CLAUDE_CONFIG_DIR: path.join(dirs.workspace, '.claude'),
      CODEMATE_PLUGINS_DIR: this.options.pluginsDir,
      PATH: `${this.options.scriptsDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      ...gitRewriteEnv(this.options.gitRewrite),
    };
    const env = { ...(await resolveEnv(this.options.kube, pod, container.env ?? [])), ...sessionEnv };
    await this.mapKubectl(pod, dirs, sessionEnv);

    const log = createWriteStream(dirs.log, { flags: 'a' });
    const script = path.join(this.options.scriptsDir, path.basename(command));
    const child = spawn(script, container.command!.slice(1), {
      cwd: dirs.workspace,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastLine = '';
    for (const [stream, name] of [
      [child.stdout!, 'stdout'],
      [child.stderr!, 'stderr'],
    ] as const) {
      let partial = '';
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          log.write(criLine(name, line));
          if (name === 'stderr' && line.trim()) lastLine = line.trim();
        }
      });
    }
    const local: LocalPod = {
      uid: pod.metadata.uid!,
      child,
      log,
      stopping: false,
      env,
      exited: new Promise((resolve) =>
        child.on('exit', (code, signal) => {
          void this.onExit(key, pod, local, code, signal, lastLine).finally(resolve);
        }),
      ),
    };
    this.local.set(key, local);
    this.options.logger.info({ pod: key, pid: child.pid, dir: dirs.base }, 'started session pod locally');
    await this.setReady(pod, false);
    void this.watchReadiness(key, pod, local);
  }

  /** kwok Exec, Logs and Attach for this pod, owned by it so they go with it. */
  private async mapKubectl(
    pod: Pod,
    dirs: ReturnType<LocalPodRuntime['podDirs']>,
    env: Record<string, string>,
  ) {
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

  private async watchReadiness(key: string, pod: Pod, local: LocalPod): Promise<void> {
    while (this.local.get(key) === local && !local.stopping && local.child.exitCode === null) {
      const ok = await new Promise<boolean>((resolve) =>
        spawn(path.join(this.options.scriptsDir, 'codemate-ready'), [], {
          env: local.env,
          stdio: 'ignore',
        }).on('close', (c) => resolve(c === 0)),
      );
      if (ok) return this.setReady(pod, true);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  private async setReady(pod: Pod, ready: boolean): Promise<void> {
    const status = ready ? 'True' : 'False';
    const now = new Date().toISOString();
    await this.patchStatus(pod, {
      conditions: [
        { type: 'Ready', status, lastTransitionTime: now },
        { type: 'ContainersReady', status, lastTransitionTime: now },
      ],
    });
  }

  private async onExit(
    key: string,
    pod: Pod,
    local: LocalPod,
    code: number | null,
    signal: string | null,
    lastLine: string,
  ) {
    local.log.end();
    if (local.stopping) return;
    this.local.delete(key);
    this.options.logger.info({ pod: key, code, signal }, 'session process exited');
    const exitCode = code ?? 137;
    await this.patchStatus(pod, {
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date().toISOString() }],
      containerStatuses: [
        {
          name: sessionContainer,
          image: 'local',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: {
            terminated: {
              exitCode,
              reason: exitCode === 0 ? 'Completed' : 'Error',
              message: lastLine.slice(0, 1024),
              finishedAt: new Date().toISOString(),
            },
          },
        },
      ],
    });
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

  private async stopLocal(key: string): Promise<void> {
    const local = this.local.get(key);
    if (!local) return;
    local.stopping = true;
    this.local.delete(key);
    const group = -local.child.pid!;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(group, sig);
      } catch {
        /* gone */
      }
    };
    signal('SIGTERM');
    const killer = setTimeout(() => signal('SIGKILL'), 10_000);
    await local.exited;
    clearTimeout(killer);
    // The session's tmux server is not in the process group; stop it through its socket.
    await new Promise((resolve) =>
      spawn('tmux', ['kill-server'], { env: local.env, stdio: 'ignore' }).on('close', resolve),
    );
    const base = path.join(this.options.dir, local.uid.slice(0, 13));
    await rm(base, { recursive: true, force: true });
    this.options.logger.info({ pod: key }, 'stopped local session pod');
  }
}
