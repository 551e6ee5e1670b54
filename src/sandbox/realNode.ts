/**
 * The real node of `dev up --runtime containerd`: containerd 2 and kubelet as sandbox components, joined
 * to the sandbox's apiserver as node `codemate-node`, with everything they keep under `<state>/node/`.
 * See docs/sandbox.md ("Runtimes") and docs/adr/0009-real-node.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { stringify } from 'yaml';
import { CodemateError } from '../api/errors.js';
import { Kube, type KubeObject } from '../clients/kube.js';
import {
  realNodeIp,
  realNodeName,
  type Component,
  type ComponentContext,
  type SandboxPaths,
} from './components.js';
import {
  addLoAddress,
  exists,
  removeEmptyNodeCgroups,
  restoreHost,
  snapshotHost,
  type HostChanges,
} from './hostState.js';
import { writeCertKubeconfig } from './kubeconfig.js';
import { importImage, type ContainerdEndpoint } from './ociImage.js';
import { isHealthy, waitFor } from './probe.js';
import { runProgram } from './runProgram.js';

/** Where Debian's containernetworking-plugins puts the CNI plugins. */
const cniBinDir = '/usr/lib/cni';
/** The pods' network, on a bridge of the sandbox's own. */
const podSubnet = '10.89.0.0/16';
const bridge = 'cmbr0';

export interface NodePaths {
  dir: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  cniConfDir: string;
  cniIpamDir: string;
  kubeletRoot: string;
  kubeletConfig: string;
  kubeletKubeconfig: string;
  podLogsDir: string;
  volumePluginDir: string;
  /** The host as it was before the node first started (hostState.ts). */
  hostSnapshot: string;
}

export function nodePaths(paths: SandboxPaths): NodePaths {
  const dir = path.join(paths.dir, 'node');
  const f = (...parts: string[]) => path.join(dir, ...parts);
  return {
    dir,
    containerdConfig: f('containerd.toml'),
    containerdRoot: f('containerd', 'root'),
    containerdState: f('containerd', 'state'),
    containerdSocket: f('containerd', 'containerd.sock'),
    cniConfDir: f('cni', 'net.d'),
    cniIpamDir: f('cni', 'ipam'),
    kubeletRoot: f('kubelet'),
    kubeletConfig: f('kubelet.yaml'),
    kubeletKubeconfig: f('kubelet.kubeconfig'),
    podLogsDir: f('pod-logs'),
    volumePluginDir: f('volume-plugins'),
    hostSnapshot: f('host-snapshot.json'),
  };
}

/** The sandbox's containerd, for importing images (ociImage.ts). */
export function containerdEndpoint(ctx: Pick<ComponentContext, 'paths' | 'nodeBins'>): ContainerdEndpoint {
  if (!ctx.nodeBins) throw new CodemateError('this sandbox runs no containerd (it uses the process runtime)');
  return { ctr: ctx.nodeBins.ctr, address: nodePaths(ctx.paths).containerdSocket };
}

const hostChanges: HostChanges = {
  loAddress: `${realNodeIp}/32`,
  bridge,
  // Outside the state directory whatever the configuration: containerd's shim sockets and runc state
  // (/run/containerd/{s,runc}), CNI's result cache, and kubelet's device-plugin socket, whose path is fixed.
  paths: [
    '/run/containerd',
    '/var/lib/cni',
    '/var/lib/kubelet',
    '/var/lib/kubelet/device-plugins/kubelet.sock',
  ],
};

/** The Debian packages the node needs, each with a file that shows it is installed. */
const hostPackages: Array<{ name: string; file: string }> = [
  { name: 'runc', file: '/usr/sbin/runc' },
  { name: 'containernetworking-plugins', file: `${cniBinDir}/bridge` },
  { name: 'iptables', file: '/usr/sbin/iptables-save' },
  { name: 'conntrack', file: '/usr/sbin/conntrack' },
  { name: 'iproute2', file: '/usr/sbin/ip' },
  // The pause program is built with gcc -static, which needs libc.a.
  { name: 'gcc', file: '/usr/bin/gcc' },
  { name: 'libc6-dev', file: '/usr/lib/x86_64-linux-gnu/libc.a' },
];

async function missingPackages(): Promise<string[]> {
  const missing: string[] = [];
  for (const p of hostPackages) {
    if (!(await exists(p.file))) missing.push(p.name);
  }
  return missing;
}

/**
 * The real node needs root (cgroups, mounts, iptables, network namespaces) and Debian's packages for
 * runc, CNI, iptables and conntrack; as root, missing packages are installed with apt-get.
 */
export async function ensureNodeHost(onProgress: (text: string) => void = () => {}): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new CodemateError('the containerd runtime needs root: it runs kubelet and containerd', {
      hint:
        'run `sudo codemate dev up --runtime containerd` (with the same --state-dir), or use the default ' +
        '`--runtime process`, which needs no root',
    });
  }
  const missing = await missingPackages();
  if (missing.length === 0) return;
  onProgress(`installing ${missing.join(', ')} with apt-get`);
  const apt = (args: string[]) =>
    runProgram('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  try {
    await apt(['update', '-qq']);
    await apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  } catch (error) {
    throw new CodemateError(
      `the containerd runtime needs the Debian packages ${missing.join(', ')}, and apt-get could not install them: ${(error as Error).message}`,
      { hint: `install them (\`apt-get install ${missing.join(' ')}\`), then run \`codemate dev up\` again` },
    );
  }
  const still = await missingPackages();
  if (still.length > 0) {
    throw new CodemateError(`apt-get finished, but ${still.join(', ')} are still missing`, {
      hint: `install them by hand (\`apt-get install ${still.join(' ')}\`)`,
    });
  }
}

/** Whether something accepts connections on a unix socket. */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function containerdConfig(node: NodePaths, pauseImage: string): string {
  const q = (s: string) => JSON.stringify(s);
  // Version 3, which containerd 2.4 migrates with a warning: in version 4 the ttrpc socket no longer
  // follows the grpc address and would be /run/containerd/containerd.sock.ttrpc, outside the state dir.
  return `version = 3
root = ${q(node.containerdRoot)}
state = ${q(node.containerdState)}

[grpc]
  address = ${q(node.containerdSocket)}

[plugins.'io.containerd.internal.v1.opt']
  path = ${q(path.join(node.dir, 'containerd', 'opt'))}

# NRI would listen on /var/run/nri/nri.sock; nothing here uses it.
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = ${q(pauseImage)}

[plugins.'io.containerd.cri.v1.runtime']
  # The machine lacks CAP_SYS_RESOURCE: containers may not get a lower OOM score than containerd's.
  restrict_oom_score_adj = true
  # Network namespaces go under the state directory, so dev down finds every one of them.
  netns_mounts_under_state_dir = true

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = [${q(cniBinDir)}]
  conf_dir = ${q(node.cniConfDir)}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
`;
}

function cniConfig(node: NodePaths): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'codemate',
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          // Pods reach the package registries through the host, as the session's git and npm need.
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: podSubnet }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: node.cniIpamDir,
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(ctx: ComponentContext, node: NodePaths): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: realNodeIp,
    port: ctx.ports.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: ctx.ports.kubeletHealthz,
    tlsCertFile: ctx.pki.kubeletServingCert,
    tlsPrivateKeyFile: ctx.pki.kubeletServingKey,
    // The apiserver presents its kubelet client certificate; tokens are checked with the apiserver.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: ctx.pki.caCert },
    },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${node.containerdSocket}`,
    cgroupDriver: 'cgroupfs',
    // These machines mount cgroup v1 controllers, with v2 beside them (hybrid).
    failCgroupV1: false,
    failSwapOn: false,
    // The machine lacks CAP_SYS_RESOURCE, which kubelet's default of -999 needs.
    oomScoreAdj: 0,
    podLogsDir: node.podLogsDir,
    volumePluginDir: node.volumePluginDir,
    clusterDomain: 'cluster.local',
    resolvConf: '/etc/resolv.conf',
    // A shared developer machine: evict only when really short.
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
    },
    // Images are imported, not pulled: one that kubelet collected could not come back.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
  });
}

export const containerdComponent: Component = {
  name: 'containerd',
  binary: 'containerd',
  ports: () => [],
  prepare: async (ctx) => {
    const node = nodePaths(ctx.paths);
    await mkdir(node.dir, { recursive: true, mode: 0o700 });
    // Another kubelet on this host (another sandbox's) owns /kubepods; two would fight over it. Empty
    // ones are what a sandbox killed before `dev down` left, and go.
    const foreign = (await exists(node.hostSnapshot)) ? [] : await removeEmptyNodeCgroups();
    if (foreign.length > 0) {
      throw new CodemateError(
        `another kubelet or container runtime uses this host's cgroups (${foreign.join(', ')})`,
        {
          hint:
            'one containerd sandbox runs per host: `codemate dev down` the other one (its --state-dir), ' +
            'or stop the kubelet that made them',
        },
      );
    }
    // Left by a sandbox killed before `dev down`: not part of the host to restore.
    if (!(await exists(node.hostSnapshot))) await removeServiceRules();
    await snapshotHost(node.hostSnapshot, hostChanges);
    await addLoAddress(hostChanges.loAddress);
    await mkdir(node.cniConfDir, { recursive: true });
    await mkdir(node.cniIpamDir, { recursive: true });
    await writeFile(path.join(node.cniConfDir, '10-codemate.conflist'), cniConfig(node));
    await writeFile(node.containerdConfig, containerdConfig(node, ctx.nodeBins!.pauseImage));
  },
  // The runc shim is next to containerd; runc, iptables and the CNI plugins come from Debian.
  env: (ctx) => ({ PATH: `${ctx.nodeBins!.dir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` }),
  args: (ctx) => ['--config', nodePaths(ctx.paths).containerdConfig],
  healthy: (ctx) => socketAnswers(nodePaths(ctx.paths).containerdSocket),
  afterStart: (ctx) => importImage(ctx.nodeBins!.pauseArchive, containerdEndpoint(ctx)),
  afterStop: (ctx) => {
    const node = nodePaths(ctx.paths);
    return restoreHost(node.hostSnapshot, {
      changes: hostChanges,
      nodeDir: node.dir,
      processMarker: node.containerdSocket,
    });
  },
};

/** The ClusterIP of the `kubernetes` Service: the first address of `--service-cluster-ip-range`. */
const kubernetesServiceIp = '10.0.0.1';

/**
 * In-cluster clients (KUBERNETES_SERVICE_HOST/PORT, which kubelet sets to the `kubernetes` Service) reach
 * the apiserver, which listens on the host's loopback only: a DNAT rule takes the Service's address to it,
 * and `route_localnet` lets the kernel route pod traffic to 127.0.0.1. The sandbox runs no kube-proxy;
 * this is the one Service rule it needs. `dev down` restores both (hostState.ts).
 */
async function routeKubernetesService(apiserverPort: number): Promise<void> {
  await writeFile('/proc/sys/net/ipv4/conf/all/route_localnet', '1\n');
  await removeServiceRules(apiserverPort);
  const rule = serviceRule(`127.0.0.1:${apiserverPort}`);
  const exists = await runProgram('iptables', ['-w', '-t', 'nat', '-C', ...rule]).then(
    () => true,
    () => false,
  );
  if (!exists) await runProgram('iptables', ['-w', '-t', 'nat', '-A', ...rule]);
}

/** The DNAT rule that takes the `kubernetes` Service's address to `destination`. */
function serviceRule(destination: string): string[] {
  return [
    'PREROUTING',
    '-d',
    `${kubernetesServiceIp}/32`,
    '-p',
    'tcp',
    '--dport',
    '443',
    '-j',
    'DNAT',
    '--to-destination',
    destination,
  ];
}

/**
 * Deletes the Service rules to any other apiserver port: a sandbox killed before `dev down` leaves its
 * rule behind, and, first in the chain, it would send every pod's apiserver traffic to a closed port.
 * One containerd sandbox runs per host, so any such rule is a leftover.
 */
async function removeServiceRules(keepPort?: number): Promise<void> {
  const { stdout } = await runProgram('iptables', ['-w', '-t', 'nat', '-S', 'PREROUTING']);
  const pattern = new RegExp(
    `^-A PREROUTING -d ${kubernetesServiceIp.replace(/\./g, '\\.')}/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination (\\S+)$`,
  );
  for (const line of stdout.split('\n')) {
    const to = pattern.exec(line.trim());
    if (!to || to[1] === `127.0.0.1:${keepPort}`) continue;
    await runProgram('iptables', ['-w', '-t', 'nat', '-D', ...serviceRule(to[1]!)]);
  }
}

type NodeObject = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };

export const kubeletComponent: Component = {
  name: 'kubelet',
  binary: 'kubelet',
  ports: (p) => [p.kubeletHealthz],
  prepare: async (ctx) => {
    const node = nodePaths(ctx.paths);
    await mkdir(node.kubeletRoot, { recursive: true });
    await writeFile(node.kubeletConfig, kubeletConfig(ctx, node));
    await writeCertKubeconfig(node.kubeletKubeconfig, {
      caCert: ctx.pki.caCert,
      cert: ctx.pki.kubeletClientCert,
      key: ctx.pki.kubeletClientKey,
      user: `system:node:${realNodeName}`,
      apiserverPort: ctx.ports.apiserver,
    });
  },
  args: (ctx) => {
    const node = nodePaths(ctx.paths);
    return [
      `--config=${node.kubeletConfig}`,
      `--kubeconfig=${node.kubeletKubeconfig}`,
      `--root-dir=${node.kubeletRoot}`,
      `--hostname-override=${realNodeName}`,
      `--node-ip=${realNodeIp}`,
      `--node-labels=codemate.io/node=real`,
    ];
  },
  healthy: ({ ports }) => isHealthy(`http://127.0.0.1:${ports.kubeletHealthz}/healthz`),
  afterStart: async ({ paths, ports }) => {
    await routeKubernetesService(ports.apiserver);
    const kube = Kube.load({ kubeconfig: paths.kubeconfig });
    await waitFor(
      async () => {
        const found = await kube.get<NodeObject>('v1', 'Node', realNodeName).catch(() => undefined);
        return found?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      },
      {
        timeoutMs: 120_000,
        intervalMs: 500,
        describe: () =>
          `node ${realNodeName} did not turn Ready within 120 s; read ${paths.logFile('kubelet')}`,
      },
    );
  },
  // Pods go while kubelet and containerd run, so that they tear down the pods' sandboxes, networks
  // and volumes themselves; what is left after that is for restoreHost. Then the Node goes, which would
  // otherwise stay behind, NotReady, for a sandbox that may next run processes; its kubelet, about to
  // stop, does not register it again.
  beforeStop: async ({ paths }) => {
    const kube = Kube.load({ kubeconfig: paths.kubeconfig });
    const onNode = () =>
      kube.list<KubeObject>('v1', 'Pod', undefined, { fieldSelector: `spec.nodeName=${realNodeName}` });
    for (const pod of await onNode()) {
      await kube.delete('v1', 'Pod', pod.metadata.name!, pod.metadata.namespace, { gracePeriodSeconds: 1 });
    }
    await waitFor(async () => (await onNode()).length === 0, {
      timeoutMs: 90_000,
      intervalMs: 500,
      describe: () => `pods on node ${realNodeName} were not gone within 90 s`,
    });
    await kube.delete('v1', 'Node', realNodeName);
  },
};
