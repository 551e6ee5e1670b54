import { randomBytes } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Kube, type KubeObject } from '../clients/kube.js';
import type { ProcessIdentity } from '../clients/processes.js';
import type { SandboxRuntime } from '../config/index.js';
import { cliPath, manifestsDir, sessionScriptsDir } from '../config/packagePaths.js';
import type { BinarySet } from './binaries.js';
import { identityKubeconfig, writeServiceAccountKubeconfig } from './identities.js';
import type { NodeBinarySet } from './nodeBinaries.js';
import type { Pki } from './pki.js';
import { isHealthy, type ProbeTls } from './probe.js';
import type { BinaryName } from './versions.js';

/** The sandbox's processes, in start order. */
export const componentNames = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'storage-provisioner',
  'containerd',
  'kubelet',
  'kwok',
  'model-server',
  'codemate-operator',
  'codemate-webhook',
  'codemate-pod-runtime',
] as const;
export type ComponentName = (typeof componentNames)[number];

export const portNames = [
  'etcd',
  'etcdPeer',
  'apiserver',
  'controllerManager',
  'scheduler',
  'kwok',
  'kubelet',
  'kubeletHealthz',
  'operatorHealth',
  'webhook',
  'modelServer',
] as const;
export type SandboxPorts = Record<(typeof portNames)[number], number>;

export interface SandboxPaths {
  dir: string;
  stateFile: string;
  kubeconfig: string;
  pkiDir: string;
  etcdDataDir: string;
  kwokConfig: string;
  auditPolicy: string;
  /** The secret the sandbox webhook verifies deliveries with. */
  webhookSecret: string;
  logFile(component: string): string;
  pidFile(component: string): string;
}

export function sandboxPaths(dir: string): SandboxPaths {
  return {
    dir,
    stateFile: path.join(dir, 'state.json'),
    kubeconfig: path.join(dir, 'kubeconfig'),
    pkiDir: path.join(dir, 'pki'),
    etcdDataDir: path.join(dir, 'etcd'),
    kwokConfig: path.join(dir, 'kwok.yaml'),
    auditPolicy: path.join(dir, 'audit-policy.yaml'),
    webhookSecret: path.join(dir, 'webhook-secret'),
    logFile: (c) => path.join(dir, 'logs', `${c}.log`),
    pidFile: (c) => path.join(dir, 'run', `${c}.pid`),
  };
}

export interface ComponentContext {
  paths: SandboxPaths;
  ports: SandboxPorts;
  bins: BinarySet;
  pki: Pki;
  runtime: SandboxRuntime;
  /** The real node's programs (runtime containerd). */
  nodeBins?: NodeBinarySet | undefined;
  /** What sessions run: the real Claude Code, and the Messages API it talks to. */
  sessions?: SessionSettings;
  /** The local pod runtime runs the pods of kwok's node (and says when they are ready). */
  localPods?: boolean;
}

export interface SessionSettings {
  /** The claude program (the pinned one in the cache, or CODEMATE_CLAUDE_BIN). */
  claude?: string | undefined;
  /** A real Messages API the user configured (ANTHROPIC_BASE_URL); the sandbox's model server otherwise. */
  anthropicBaseUrl?: string | undefined;
  /** CODEMATE_SANDBOX_GIT_REWRITE, for sessions on the real node (the pod runtime reads it itself). */
  gitRewrite?: string | undefined;
  /** The image session pods run: the built session image, imported into the real node (`--images`). */
  image?: string | undefined;
}

export interface Component {
  name: ComponentName;
  /** A control-plane binary, a program of the real node, or `node` for CodeMate's own CLI. */
  binary: BinaryName | 'node' | 'containerd' | 'kubelet';
  /** Ports the process binds; each must be free before it starts. */
  ports(p: SandboxPorts): number[];
  args(ctx: ComponentContext): string[];
  /** Extra environment for the process. */
  env?(ctx: ComponentContext): Record<string, string>;
  /** Prepares files the process reads at start. */
  prepare?(ctx: ComponentContext): Promise<void>;
  /** The process's own health endpoint. */
  healthy(ctx: ComponentContext): Promise<boolean>;
  /** Waits, once the process is healthy, for what it brings to the cluster. */
  afterStart?(ctx: ComponentContext): Promise<void>;
  /** Runs before `dev down` stops the process, while it and every component before it still run. */
  beforeStop?(ctx: ComponentContext): Promise<void>;
  /** Runs after `dev down` stopped the process, or found it not running. */
  afterStop?(ctx: ComponentContext): Promise<void>;
}

/** Audit only deletions, at metadata level: enough to say who removed an object, and small. */
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [delete, deletecollection]
  - level: None
`;

/**
 * The node that kwok plays. Untainted with the process runtime, so kube-scheduler places ordinary pods on
 * it; tainted with the containerd runtime, so that they go to the real node.
 */
export const sandboxNodeName = 'codemate-sandbox';

/** The real node of the containerd runtime (src/sandbox/realNode.ts). */
export const realNodeName = 'codemate-node';

/**
 * The real node's address: kubelet refuses a loopback node IP, and these machines have no dummy network
 * device, so `dev up` adds it to `lo` as a /32 (and `dev down` removes it).
 */
export const realNodeIp = '10.99.0.1';

async function adminTls(pki: Pki): Promise<ProbeTls> {
  return {
    ca: await readFile(pki.caCert),
    cert: await readFile(pki.adminCert),
    key: await readFile(pki.adminKey),
  };
}

export const components: readonly Component[] = [
  {
    name: 'etcd',
    binary: 'etcd',
    ports: (p) => [p.etcd, p.etcdPeer],
    args: ({ paths, ports }) => [
      '--name=default',
      `--data-dir=${paths.etcdDataDir}`,
      `--listen-client-urls=http://127.0.0.1:${ports.etcd}`,
      `--advertise-client-urls=http://127.0.0.1:${ports.etcd}`,
      `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
      // A throwaway sandbox: durability costs more than it is worth here.
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
    ],
    healthy: ({ ports }) => isHealthy(`http://127.0.0.1:${ports.etcd}/health`),
  },
  {
    name: 'kube-apiserver',
    binary: 'kube-apiserver',
    ports: (p) => [p.apiserver],
    args: ({ paths, ports, pki }) => [
      `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // The Node authorizer and NodeRestriction confine the real node's kubelet to its own node and pods.
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      // kwok's node advertises 127.0.0.1 as its InternalIP; without --kubelet-certificate-authority the
      // apiserver accepts kwok's self-signed serving certificate for exec, attach and logs.
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      // A real kubelet authenticates the apiserver by this certificate and asks it (webhook) what it may do.
      `--kubelet-client-certificate=${pki.apiserverKubeletClientCert}`,
      `--kubelet-client-key=${pki.apiserverKubeletClientKey}`,
      '--endpoint-reconciler-type=none',
      // Who deleted what: the first question when a sandbox object vanishes.
      `--audit-policy-file=${paths.auditPolicy}`,
      `--audit-log-path=${paths.logFile('audit')}`,
      '--audit-log-maxsize=50',
      '--audit-log-maxbackup=1',
    ],
    prepare: async ({ paths }) => writeFile(paths.auditPolicy, auditPolicy),
    healthy: async ({ ports, pki }) =>
      isHealthy(`https://127.0.0.1:${ports.apiserver}/readyz`, await adminTls(pki)),
  },
  {
    name: 'kube-controller-manager',
    binary: 'kube-controller-manager',
    // CodeMate's CRDs exist before the garbage collector starts, so it follows them from its first sync
    // instead of after its next discovery refresh. The users' roles come with them, as in a cluster.
    prepare: async ({ paths }) => {
      const kube = Kube.load({ kubeconfig: paths.kubeconfig });
      await installCrds(kube);
      await applyManifest(kube, 'user-rbac.yaml');
    },
    ports: (p) => [p.controllerManager],
    args: ({ paths, ports, pki }) => [
      `--kubeconfig=${paths.kubeconfig}`,
      `--authentication-kubeconfig=${paths.kubeconfig}`,
      `--authorization-kubeconfig=${paths.kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.controllerManager}`,
      '--leader-elect=false',
      // Garbage collection (ownerReferences cascade), namespace deletion, default ServiceAccounts, and the
      // node lifecycle that lifts the not-ready taint once kwok reports the node Ready, and ClusterRole
      // aggregation (codemate-view and codemate-edit into view, edit and admin). For storage: the PV binder
      // (without it a pod with a claim is unschedulable, "pod has unbound immediate PersistentVolumeClaims",
      // and nothing asks the storage-provisioner for a volume), and the claim and volume protection that
      // let a deleted claim go once no pod uses it and a volume once no claim is bound to it. The root-CA
      // publisher writes kube-root-ca.crt into every namespace, which a real kubelet needs for any pod that
      // mounts a projected ServiceAccount token. The Deployment and ReplicaSet controllers make the pods
      // of Deployments: a chart's (docs/sandbox.md: the chart in the sandbox), and with a real node the
      // operator and the webhook from their manifests, as in a cluster.
      '--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,node-lifecycle-controller,clusterrole-aggregation-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller,root-ca-certificate-publisher-controller',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
    ],
    healthy: ({ ports }) =>
      isHealthy(`https://127.0.0.1:${ports.controllerManager}/healthz`, { insecure: true }),
  },
  {
    name: 'kube-scheduler',
    binary: 'kube-scheduler',
    ports: (p) => [p.scheduler],
    args: ({ paths, ports }) => [
      `--kubeconfig=${paths.kubeconfig}`,
      `--authentication-kubeconfig=${paths.kubeconfig}`,
      `--authorization-kubeconfig=${paths.kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.scheduler}`,
      '--leader-elect=false',
    ],
    healthy: ({ ports }) => isHealthy(`https://127.0.0.1:${ports.scheduler}/healthz`, { insecure: true }),
  },
  {
    // The default StorageClass and the hostPath volumes behind it (storageProvisioner.ts): part of the
    // cluster, like a CSI driver, so PVC-backed sessions work in every runtime and in the tests' sandbox.
    name: 'storage-provisioner',
    binary: 'node',
    ports: () => [],
    ...readyMarker((paths) => volumesDir(paths)),
    args: ({ paths }) => [
      cliPath,
      'dev',
      'storage-provisioner',
      `--kubeconfig=${paths.kubeconfig}`,
      `--dir=${volumesDir(paths)}`,
    ],
  },
  {
    name: 'kwok',
    binary: 'kwok',
    ports: (p) => [p.kwok],
    prepare: writeKwokConfig,
    // kwok runs `kubectl exec` commands on the host; bare names like codemate-inject resolve through its
    // PATH, as they would through the image's.
    env: () => ({ PATH: `${sessionScriptsDir}:${process.env.PATH ?? '/usr/bin:/bin'}` }),
    args: ({ paths, ports }) => [
      `--kubeconfig=${paths.kubeconfig}`,
      `--config=${paths.kwokConfig}`,
      // Only its own node: the real node of the containerd runtime is its kubelet's.
      `--manage-single-node=${sandboxNodeName}`,
      '--enable-crds=Exec,ClusterExec,Logs,ClusterLogs,Attach,ClusterAttach,PortForward,ClusterPortForward',
      `--node-name=${sandboxNodeName}`,
      '--node-ip=127.0.0.1',
      `--node-port=${ports.kwok}`,
      `--server-address=127.0.0.1:${ports.kwok}`,
      '--node-lease-duration-seconds=40',
      '--cidr=10.244.0.0/16',
    ],
    healthy: ({ ports }) => isHealthy(`http://127.0.0.1:${ports.kwok}/healthz`),
  },
];

/** The program a component runs, as it appears in /proc/<pid>/cmdline. */
export function executableOf(
  component: Component,
  bins: BinarySet,
  nodeBins: NodeBinarySet | undefined,
): string {
  if (component.binary === 'node') return process.execPath;
  if (component.binary === 'containerd' || component.binary === 'kubelet') {
    if (!nodeBins) throw new Error(`${component.name} needs the real node's programs`);
    return nodeBins[component.binary];
  }
  return bins.path(component.binary);
}

/** What identifies a component's running process (its pid file's): its program, or the CLI that Node runs. */
export function identityOf(
  component: Component,
  bins: BinarySet,
  nodeBins: NodeBinarySet | undefined,
): ProcessIdentity {
  const command = executableOf(component, bins, nodeBins);
  return component.binary === 'node' ? { command, script: cliPath } : { command };
}

/** Runs a CodeMate server as the ServiceAccount its manifest declares. */
function asServiceAccount(manifest: string, serviceAccount: string) {
  return ({ paths }: ComponentContext) =>
    writeServiceAccountKubeconfig(Kube.load({ kubeconfig: paths.kubeconfig }), {
      manifest: path.join(manifestsDir, manifest),
      serviceAccount,
      file: identityKubeconfig(paths.dir, serviceAccount),
      fieldManager: 'codemate-sandbox',
    });
}

export const operatorComponent: Component = {
  name: 'codemate-operator',
  binary: 'node',
  ports: (p) => [p.operatorHealth],
  prepare: asServiceAccount('operator.yaml', 'codemate-operator'),
  args: ({ paths, ports, sessions }) => [
    cliPath,
    'operator',
    `--kubeconfig=${identityKubeconfig(paths.dir, 'codemate-operator')}`,
    '--no-leader-elect',
    `--health-port=${ports.operatorHealth}`,
    `--session-image=${sessions?.image ?? 'codemate-session:dev'}`,
  ],
  healthy: ({ ports }) => isHealthy(`http://127.0.0.1:${ports.operatorHealth}/readyz`),
};

/** The webhook server on a loopback port, with a secret generated once per sandbox. */
export const webhookComponent: Component = {
  name: 'codemate-webhook',
  binary: 'node',
  ports: (p) => [p.webhook],
  prepare: async (ctx) => {
    await asServiceAccount('webhook.yaml', 'codemate-webhook')(ctx);
    const { paths } = ctx;
    // 'wx' keeps an existing secret, so a GitHub webhook or a script set up with it keeps working.
    await writeFile(paths.webhookSecret, `${randomBytes(32).toString('hex')}\n`, {
      mode: 0o600,
      flag: 'wx',
    }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  },
  // Only the sandbox's own secret: not one the user's shell happens to export.
  env: () => ({ GITHUB_WEBHOOK_SECRET: '' }),
  args: ({ paths, ports }) => [
    cliPath,
    'webhook',
    `--kubeconfig=${identityKubeconfig(paths.dir, 'codemate-webhook')}`,
    '--host=127.0.0.1',
    `--port=${ports.webhook}`,
    `--secret-file=${paths.webhookSecret}`,
  ],
  healthy: ({ ports }) => isHealthy(`http://127.0.0.1:${ports.webhook}/readyz`),
};

export function webhookUrl(ports: SandboxPorts): string {
  return `http://127.0.0.1:${ports.webhook}/webhook/github`;
}

/**
 * The local Anthropic Messages API (src/sandbox/modelServer.ts) that sessions' Claude Code talks to when the
 * user configured no real one: no key, no network, and a request log at /_requests for tests.
 */
export const modelServerComponent: Component = {
  name: 'model-server',
  binary: 'node',
  ports: (p) => [p.modelServer],
  args: ({ ports, runtime }) => [
    cliPath,
    'dev',
    'model-server',
    `--port=${ports.modelServer}`,
    `--host=${modelServerHost(runtime)}`,
  ],
  healthy: ({ ports, runtime }) => isHealthy(`${modelServerUrl(ports, runtime)}/healthz`),
};

/**
 * Where the model server listens: loopback for host processes; with a real node, the node's address, which
 * pods reach through their bridge's gateway (the host), as they cannot reach the host's loopback.
 */
export function modelServerHost(runtime: SandboxRuntime): string {
  return runtime === 'containerd' ? realNodeIp : '127.0.0.1';
}

export function modelServerUrl(ports: SandboxPorts, runtime: SandboxRuntime): string {
  return `http://${modelServerHost(runtime)}:${ports.modelServer}`;
}

export const podRuntimeComponent: Component = {
  name: 'codemate-pod-runtime',
  binary: 'node',
  ports: () => [],
  ...readyMarker((paths) => path.join(paths.dir, 'pods')),
  args: ({ paths, ports, sessions }) => [
    cliPath,
    'dev',
    'pod-runtime',
    `--kubeconfig=${paths.kubeconfig}`,
    `--dir=${path.join(paths.dir, 'pods')}`,
    `--node-name=${sandboxNodeName}`,
    `--anthropic-base-url=${sessions?.anthropicBaseUrl ?? modelServerUrl(ports, 'process')}`,
    ...(sessions?.claude ? [`--claude=${sessions.claude}`] : []),
  ],
};

/** Where the storage provisioner keeps one directory per volume. */
export function volumesDir(paths: SandboxPaths): string {
  return path.join(paths.dir, 'volumes');
}

/**
 * The health of a process without a port: a live process that has written `.ready` in its directory
 * counts as healthy. The marker of the process before is removed before it starts.
 */
function readyMarker(dirOf: (paths: SandboxPaths) => string): Pick<Component, 'prepare' | 'healthy'> {
  const marker = (paths: SandboxPaths) => path.join(dirOf(paths), '.ready');
  return {
    prepare: ({ paths }) => rm(marker(paths), { force: true }),
    healthy: async ({ paths }) =>
      readFile(marker(paths), 'utf8').then(
        () => true,
        () => false,
      ),
  };
}

/** Applies CodeMate's CRDs (every document in manifests/crd.yaml) and waits until each is served. */
export async function installCrds(kube: Kube): Promise<void> {
  const crds = await applyManifest(kube, 'crd.yaml');
  const deadline = Date.now() + 30_000;
  for (const crd of crds) {
    for (;;) {
      const current = await kube.get<KubeObject>(
        'apiextensions.k8s.io/v1',
        'CustomResourceDefinition',
        crd.metadata.name!,
      );
      const conditions = (
        current.status as { conditions?: Array<{ type: string; status: string }> } | undefined
      )?.conditions;
      if (conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata.name} not established within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Applies every document of a file in manifests/, and returns them. */
async function applyManifest(kube: Kube, file: string): Promise<KubeObject[]> {
  const objects = parseAllDocuments(await readFile(path.join(manifestsDir, file), 'utf8')).map(
    (d) => d.toJSON() as KubeObject,
  );
  for (const object of objects) await kube.apply(object, 'codemate-sandbox');
  return objects;
}

/**
 * kwok reads its stages from the config file: nodes turn Ready, pods Running, deleted pods go. When the
 * local pod runtime runs the pods, readiness is its to say (from the pods' probes): the pod-ready stage
 * then moves a new pod to Running but not ready, instead of calling it ready before anything runs in it,
 * which would let a Deployment (and `helm install --wait`) count a pod whose process has not started.
 */
async function writeKwokConfig({ paths, bins, localPods }: ComponentContext): Promise<void> {
  const stages = (await readdir(bins.kwokStageDir)).filter((f) => f.endsWith('.yaml')).sort();
  // No KwokConfiguration document: kwok applies its defaults only when the file has none.
  const documents = await Promise.all(
    stages.map(async (f) => {
      const text = await readFile(path.join(bins.kwokStageDir, f), 'utf8');
      return localPods && f === 'pod-ready.yaml' ? notReadyOnStart(text) : text;
    }),
  );
  await writeFile(paths.kwokConfig, documents.map((d) => d.trim()).join('\n---\n') + '\n');
}

/** kwok's pod-ready stage with the pod's Ready and ContainersReady conditions and its containers not ready. */
function notReadyOnStart(stage: string): string {
  const edits: Array<[string, string]> = [
    ['status: "True"\n        type: Ready\n', 'status: "False"\n        type: Ready\n'],
    ['status: "True"\n        type: ContainersReady\n', 'status: "False"\n        type: ContainersReady\n'],
    // The first is .spec.containers' (init containers follow, and stay as kwok has them).
    ['name: {{ .name | Quote }}\n        ready: true\n', 'name: {{ .name | Quote }}\n        ready: false\n'],
  ];
  return edits.reduce((text, [from, to]) => {
    // A kwok whose stage reads otherwise must not pass unnoticed: pods would be called ready again.
    if (!text.includes(from))
      throw new Error(`kwok's pod-ready stage no longer holds ${JSON.stringify(from)}`);
    return text.replace(from, to);
  }, stage);
}
