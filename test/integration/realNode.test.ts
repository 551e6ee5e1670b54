/**
 * The containerd runtime end to end: `dev up --runtime containerd` joins a real kubelet + containerd node,
 * a restricted non-root pod runs on it from an image made here (scratch + Debian's busybox-static),
 * exec, exit codes and logs go through the apiserver to the real kubelet, and `dev down` leaves the host
 * as it found it: iptables, mounts, sysctls, cgroups, network addresses and the host paths a kubelet or
 * containerd makes are compared before and after.
 *
 * It needs root, Debian's busybox-static, and the node's packages (dev up installs those); it is
 * skipped otherwise. One containerd sandbox runs per host, so nothing else may run one meanwhile.
 */
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { isAlive } from '../../src/clients/processes.js';
import { execInPod, readPodLogs } from '../../src/clients/exec.js';
import { importImage, writeOciArchive } from '../../src/sandbox/ociImage.js';
import { sandboxContainerd } from '../../src/sandbox/sandbox.js';
import { realNodeName, sandboxNodeName } from '../../src/sandbox/components.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';

const run = promisify(execFile);
const busybox = '/bin/busybox';
const isRoot = process.getuid?.() === 0;
const hasBusybox = await access(busybox, fsConstants.X_OK).then(
  () => true,
  () => false,
);

/** iptables-save without comments and counters, and without tables that hold nothing (see below). */
async function iptables(family: 'iptables' | 'ip6tables'): Promise<string> {
  const { stdout } = await run(`${family}-save`);
  const tables = stdout
    .replace(/\[\d+:\d+\]/g, '')
    .split(/^(?=\*)/m)
    .map((t) => t.replace(/^#.*\n/gm, '').trim())
    .filter(Boolean);
  // A table the node brought is emptied by dev down but stays loaded in the kernel: only its builtin
  // chains with policy ACCEPT are left, which filter nothing, and it is not counted as a difference.
  return tables.filter((t) => !/^\*\S+\n(:[A-Z]+ ACCEPT \n?)*COMMIT$/.test(t)).join('\n');
}

/**
 * /proc/mounts, without the storage of buildah and podman (/var/lib/containers), which image builds
 * on this shared machine mount and unmount at any time and which the sandbox never touches.
 */
async function mounts(): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8'))
    .split('\n')
    .filter((line) => line && !line.split(' ')[1]!.startsWith('/var/lib/containers/'));
}

/** Values change on their own (counters, random numbers, the last pid): not state the node could leave. */
const volatileSysctl =
  /^(kernel\/random\/|kernel\/ns_last_pid|kernel\/pty\/nr|.*\/neigh\/|net\/ipv[46]\/route\/|net\/netfilter\/nf_conntrack_count)/;

/**
 * Every readable sysctl under kernel/, vm/ and net/ (but per-interface settings of other interfaces than
 * all and default, which come and go with the interfaces).
 */
async function sysctls(): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join('/proc/sys', rel), { withFileTypes: true })) {
      const name = path.join(rel, entry.name);
      if (volatileSysctl.test(name)) continue;
      if (/^net\/ipv[46]\/conf\/[^/]+$/.test(name) && !/\/(all|default)$/.test(name)) continue;
      if (entry.isDirectory()) await walk(name);
      else {
        const value = await readFile(path.join('/proc/sys', name), 'utf8').catch(() => undefined);
        if (value !== undefined) values[name] = value.trim();
      }
    }
  };
  for (const top of ['kernel', 'vm', 'net']) await walk(top);
  return values;
}

/** Top-level cgroups of every hierarchy. */
async function cgroups(): Promise<string[]> {
  const found: string[] = [];
  for (const h of await readdir('/sys/fs/cgroup', { withFileTypes: true })) {
    if (!h.isDirectory()) continue;
    for (const c of await readdir(path.join('/sys/fs/cgroup', h.name), { withFileTypes: true })) {
      if (c.isDirectory()) found.push(`${h.name}/${c.name}`);
    }
  }
  return found.sort();
}

/** Host paths that a kubelet or containerd makes by default, and which of them exist. */
async function hostPaths(): Promise<Record<string, boolean>> {
  const paths = [
    '/run/containerd',
    '/run/netns',
    '/var/run/nri',
    '/var/lib/cni',
    '/var/lib/kubelet',
    '/var/lib/containerd',
    '/var/log/pods',
    '/etc/cni',
    '/opt/cni',
    '/opt/containerd',
  ];
  const found: Record<string, boolean> = {};
  for (const p of paths)
    found[p] = await access(p).then(
      () => true,
      () => false,
    );
  return found;
}

/** Network devices and addresses (the node's bridge and veths, its address on lo). */
async function network(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'addr', 'show']);
  return stdout
    .split('\n')
    .map((line) => line.replace(/\s+valid_lft.*$/, ''))
    .filter(Boolean);
}

async function hostState() {
  return {
    iptables: await iptables('iptables'),
    ip6tables: await iptables('ip6tables'),
    mounts: await mounts(),
    sysctls: await sysctls(),
    cgroups: await cgroups(),
    paths: await hostPaths(),
    network: await network(),
  };
}

interface StatusJson {
  runtime: string;
  components: Array<{ name: string; state: string; pid?: number }>;
}

type PodObject = KubeObject & {
  spec: { nodeName?: string };
  status?: { conditions?: Array<{ type: string; status: string }> };
};

describe.skipIf(!isRoot || !hasBusybox)(
  'the containerd runtime (needs root and Debian busybox-static; skipped otherwise)',
  () => {
    const binDir = inject('binDir');
    const image = 'localhost/codemate/busybox:test';
    const namespace = 'real-node';
    let stateDir: string;
    let kube: Kube;
    let before: Awaited<ReturnType<typeof hostState>>;
    const dev = (args: string[]) =>
      runCli(['dev', ...args, '--state-dir', stateDir], {
        env: { CODEMATE_BIN_DIR: binDir },
        timeoutMs: 900_000,
      });

    /** Creates a restricted non-root pod from the test image and waits until it is Ready. */
    async function runRestrictedPod(name: string): Promise<PodObject> {
      await kube.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace },
        spec: {
          // No projected token: the sandbox's controller manager does not publish kube-root-ca.crt.
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 1,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'main',
              image,
              imagePullPolicy: 'Never',
              command: [
                busybox,
                'sh',
                '-c',
                `echo "started as $(${busybox} id -u)"; exec ${busybox} sleep 3600`,
              ],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      });
      return eventually(
        () => kube.get<PodObject>('v1', 'Pod', name, namespace),
        (p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        { timeoutMs: 60_000, what: `pod ${name} Ready` },
      );
    }

    /** dev down, then the host must be as it was before the first dev up. */
    async function expectDownRestoresHost(): Promise<void> {
      const status = JSON.parse((await dev(['status', '-o', 'json'])).stdout) as StatusJson;
      const down = await dev(['down']);
      expect(down.code, down.stderr).toBe(0);
      for (const c of status.components) {
        if (c.pid) expect(isAlive(c.pid), `${c.name} (pid ${c.pid})`).toBe(false);
      }
      const after = await hostState();
      expect(after.iptables).toBe(before.iptables);
      expect(after.ip6tables).toBe(before.ip6tables);
      expect(after.mounts).toEqual(before.mounts);
      // Modules the node loaded (netfilter's, the bridge's) add sysctls; the ones there before must be as
      // they were.
      const known = Object.fromEntries(Object.keys(before.sysctls).map((k) => [k, after.sysctls[k]]));
      expect(known).toEqual(before.sysctls);
      expect(after.cgroups).toEqual(before.cgroups);
      expect(after.paths).toEqual(before.paths);
      expect(after.network).toEqual(before.network);
    }

    beforeAll(async () => {
      stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-rn-'));
      before = await hostState();
      // What a sandbox killed before `dev down` leaves: empty node cgroups, which must not block this one.
      if (!before.cgroups.some((c) => c.endsWith('/kubepods'))) {
        for (const hierarchy of ['pids', 'memory']) {
          const dir = path.join('/sys/fs/cgroup', hierarchy);
          if (existsSync(dir)) await mkdir(path.join(dir, 'kubepods', 'besteffort'), { recursive: true });
        }
      }
      // And its Service rule, which, first in the chain, would send the pods' apiserver traffic nowhere.
      const stale = ['PREROUTING', '-d', '10.0.0.1/32', '-p', 'tcp', '--dport', '443', '-j', 'DNAT'];
      await run('iptables', ['-w', '-t', 'nat', '-A', ...stale, '--to-destination', '127.0.0.1:1']);
      const up = await dev(['up', '--runtime', 'containerd']);
      expect(up.code, up.stderr).toBe(0);
      expect((await run('iptables', ['-w', '-t', 'nat', '-S', 'PREROUTING'])).stdout).not.toContain(
        '127.0.0.1:1\n',
      );
      kube = Kube.load({ kubeconfig: path.join(stateDir, 'kubeconfig') });
    }, 900_000);

    afterAll(async () => {
      // `down --purge` restores the host if a test failed before the last one took the sandbox down, and
      // deletes the state directory, but never one with mounts left under it: that one stays, and so must
      // the failure, because deleting it would reach into whatever is still mounted there.
      const purge = await dev(['down', '--purge']);
      expect(purge.code, purge.stderr).toBe(0);
    }, 180_000);

    it('reports containerd and kubelet, and keeps the runtime until dev down', async () => {
      const status = JSON.parse((await dev(['status', '-o', 'json'])).stdout) as StatusJson;
      expect(status.runtime).toBe('containerd');
      for (const name of ['containerd', 'kubelet']) {
        const c = status.components.find((x) => x.name === name);
        expect(c?.state, name).toBe('running');
        expect(c?.pid).toBeGreaterThan(0);
      }
      expect(status.components.map((c) => c.name)).not.toContain('codemate-pod-runtime');

      const again = await dev(['up']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('sandbox already running');
      const other = await dev(['up', '--runtime', 'process']);
      expect(other.code).toBe(1);
      expect(other.stderr).toContain('is running with the containerd runtime, not process');
      expect(other.stderr).toContain('codemate dev down');
    });

    it('runs a restricted non-root pod on the real node: exec with stdin EOF, exit codes, logs', async () => {
      const archive = path.join(stateDir, 'busybox.oci.tar');
      await writeOciArchive(
        {
          name: image,
          files: [{ source: busybox, target: 'bin/busybox', mode: 0o755 }],
          entrypoint: [busybox],
        },
        archive,
      );
      await importImage(archive, await sandboxContainerd(stateDir));

      await kube.create({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
      });
      const created = Date.now();
      const pod = await runRestrictedPod('restricted');
      console.log(`restricted pod: created to Ready in ${Date.now() - created} ms`);
      expect(pod.spec.nodeName).toBe(realNodeName);

      // kwok never closed stdin (ADR 0002); a kubelet does, so cat ends at EOF.
      const cat = await execInPod(kube, namespace, 'restricted', [busybox, 'cat'], {
        container: 'main',
        stdin: 'through stdin\n',
        timeoutMs: 20_000,
      });
      expect(cat).toEqual({ stdout: 'through stdin\n', stderr: '', exitCode: 0 });

      const status = await execInPod(
        kube,
        namespace,
        'restricted',
        [busybox, 'sh', '-c', `${busybox} grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; exit 7`],
        { container: 'main', timeoutMs: 20_000 },
      );
      expect(status.exitCode).toBe(7);
      expect(status.stdout).toMatch(/CapEff:\s+0000000000000000/);
      expect(status.stdout).toMatch(/NoNewPrivs:\s+1/);

      expect(await readPodLogs(kube, namespace, 'restricted', 'main')).toBe('started as 1000\n');
    });

    it("keeps ordinary pods off kwok's node", async () => {
      const node = await kube.get<KubeObject & { spec?: { taints?: Array<{ key: string }> } }>(
        'v1',
        'Node',
        sandboxNodeName,
      );
      expect(node.spec?.taints?.map((t) => t.key)).toContain('codemate.io/kwok');
    });

    it('dev down stops the node and restores iptables, mounts, sysctls and cgroups', async () => {
      await expectDownRestoresHost();
    }, 180_000);

    it('dev down restores the host after kubelet and containerd were killed with a pod running', async () => {
      const up = await dev(['up']);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toContain('with the containerd runtime');
      // containerd's root outlived dev down: the image is still there.
      await runRestrictedPod('orphaned');
      const status = JSON.parse((await dev(['status', '-o', 'json'])).stdout) as StatusJson;
      for (const name of ['kubelet', 'containerd']) {
        process.kill(status.components.find((c) => c.name === name)!.pid!, 'SIGKILL');
      }
      // Nothing drains the pod now: its shim, its processes, mounts, network and cgroups are left to
      // the restore.
      await expectDownRestoresHost();
      const purge = await dev(['down', '--purge']);
      expect(purge.code, purge.stderr).toBe(0);
    }, 300_000);
  },
);
