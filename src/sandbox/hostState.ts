/**
 * What the real node changes on the host, recorded before `dev up` starts it and put back by `dev down`:
 * kubelet sets sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, kernel.keys.*) and adds
 * iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY), the bridge CNI plugin turns on ip_forward and
 * adds its bridge and NAT chains, kubelet and runc make the cgroups /kubepods and /k8s.io in every
 * hierarchy, containerd mounts overlays and network namespaces under its state directory, and the sandbox
 * adds the node's address to `lo`.
 *
 * Restoring follows the order that works: processes first (nothing may hold a mount or a cgroup), then
 * mounts, network devices, iptables, sysctls, the address, cgroups and the host paths that were created.
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlive } from '../clients/processes.js';
import { runProgram } from './runProgram.js';

/** The sysctls the node changes, under /proc/sys. */
const nodeSysctls = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/ipv6/conf/all/forwarding',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];

/** Top-level cgroups that kubelet (cgroupfs driver) and runc under containerd's k8s.io namespace make. */
const nodeCgroups = ['kubepods', 'k8s.io'];

const cgroupRoot = '/sys/fs/cgroup';

export interface HostChanges {
  /** The address the node adds to `lo`, as `10.99.0.1/32`. */
  loAddress: string;
  /** The bridge the CNI configuration names. */
  bridge: string;
  /** Host paths the node creates when they are missing (containerd's shim sockets, CNI's cache). */
  paths: string[];
}

interface HostSnapshot {
  iptables: string;
  ip6tables: string;
  sysctls: Record<string, string>;
  loAddress: boolean;
  bridge: boolean;
  /** `<hierarchy>/<name>` for each of nodeCgroups that existed. */
  cgroups: string[];
  /** Which of HostChanges.paths existed. */
  paths: Record<string, boolean>;
}

export async function exists(file: string): Promise<boolean> {
  return access(file, fsConstants.F_OK).then(
    () => true,
    () => false,
  );
}

/** The cgroup hierarchies: one directory per v1 controller mount, and the unified (v2) one. */
async function hierarchies(): Promise<string[]> {
  const entries = await readdir(cgroupRoot, { withFileTypes: true }).catch(() => []);
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => path.join(cgroupRoot, e.name));
  // A pure cgroup v2 host has controllers' files, not directories, at the root.
  return (await exists(path.join(cgroupRoot, 'cgroup.controllers'))) ? [cgroupRoot] : dirs;
}

/** `<hierarchy>/<name>` for each node cgroup that exists now. */
export async function nodeCgroupsPresent(): Promise<string[]> {
  const found: string[] = [];
  for (const hierarchy of await hierarchies()) {
    for (const name of nodeCgroups) {
      if (await exists(path.join(hierarchy, name))) found.push(path.join(hierarchy, name));
    }
  }
  return found;
}

async function processNamed(name: string): Promise<boolean> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) return true;
  }
  return false;
}

/**
 * Removes the node cgroups when no kubelet runs and nothing runs in them runs in them: what a sandbox killed before `dev down` (its state
 * directory gone with it) leaves behind. Returns those that stay because a process still uses them.
 */
export async function removeEmptyNodeCgroups(): Promise<string[]> {
  const present = await nodeCgroupsPresent();
  const inUse: string[] = [];
  for (const cgroup of present) {
    if ((await cgroupProcesses(cgroup)).length > 0) inUse.push(cgroup);
  }
  if (inUse.length > 0 || (await processNamed('kubelet'))) return present;
  for (const cgroup of present) await removeCgroup(cgroup);
  return nodeCgroupsPresent();
}

async function loHasAddress(address: string): Promise<boolean> {
  const { stdout } = await runProgram('ip', ['-o', 'addr', 'show', 'dev', 'lo']);
  return stdout.split(/\s+/).includes(address);
}

async function readSysctls(names: readonly string[]): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const name of names) {
    const value = await readFile(path.join('/proc/sys', name), 'utf8').catch(() => undefined);
    if (value !== undefined) values[name] = value.trim();
  }
  return values;
}

async function takeSnapshot(changes: HostChanges): Promise<HostSnapshot> {
  const paths: Record<string, boolean> = {};
  for (const p of changes.paths) paths[p] = await exists(p);
  return {
    iptables: (await runProgram('iptables-save', [])).stdout,
    ip6tables: (await runProgram('ip6tables-save', [])).stdout,
    sysctls: await readSysctls(nodeSysctls),
    loAddress: await loHasAddress(changes.loAddress),
    bridge: await exists(path.join('/sys/class/net', changes.bridge)),
    cgroups: await nodeCgroupsPresent(),
    paths,
  };
}

/** Records the host once: a snapshot left by a `dev up` that `dev down` never followed is the true one. */
export async function snapshotHost(file: string, changes: HostChanges): Promise<void> {
  if (await exists(file)) return;
  await writeFile(file, JSON.stringify(await takeSnapshot(changes), null, 2) + '\n', { mode: 0o600 });
}

export async function addLoAddress(address: string): Promise<void> {
  if (!(await loHasAddress(address))) await runProgram('ip', ['addr', 'add', address, 'dev', 'lo']);
}

/** Mount points at or under `dir`, deepest first, from /proc/mounts (octal escapes decoded). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/mounts', 'utf8');
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return text
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  const deadline = Date.now() + 5000;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** Processes in a cgroup and every cgroup below it. */
async function cgroupProcesses(dir: string): Promise<number[]> {
  const own = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map(Number);
  const children = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) =>
    e.isDirectory(),
  );
  const below = await Promise.all(children.map((c) => cgroupProcesses(path.join(dir, c.name))));
  return [...own, ...below.flat()];
}

/** Removes a cgroup and the ones below it, deepest first (rmdir is the only way to remove a cgroup). */
async function removeCgroup(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await removeCgroup(path.join(dir, entry.name));
  }
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Tables in iptables-save output: `*filter`, `*nat`, ... */
function tablesOf(save: string): string[] {
  return [...save.matchAll(/^\*(\S+)$/gm)].map((m) => m[1]!);
}

async function restoreIptables(family: 'iptables' | 'ip6tables', snapshot: string): Promise<void> {
  const current = (await runProgram(`${family}-save`, [])).stdout;
  // iptables-restore replaces only the tables it is given; a table the node brought gets emptied.
  for (const table of tablesOf(current).filter((t) => !tablesOf(snapshot).includes(t))) {
    await runProgram(family, ['-t', table, '-F']);
    await runProgram(family, ['-t', table, '-X']);
  }
  if (snapshot.trim()) await runProgram(`${family}-restore`, [], { input: snapshot });
}

/**
 * Puts the host back as the snapshot in `file` found it, after the node's programs have stopped, and
 * removes the snapshot. `nodeDir` holds every mount the node made; `processMarker` is a string on the
 * command line of each leftover process of it (containerd's socket, on every shim's). Each step is
 * attempted; the errors of all are reported together.
 */
export async function restoreHost(
  file: string,
  options: { changes: HostChanges; nodeDir: string; processMarker: string },
): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const snapshot = JSON.parse(text) as HostSnapshot;
  const { changes } = options;
  const errors: string[] = [];
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      errors.push(`${what}: ${(error as Error).message}`);
    }
  };

  await step('stopping leftover shims and containers', async () => {
    const shims: number[] = [];
    for (const entry of await readdir('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(options.processMarker)) shims.push(pid);
    }
    const created = (await nodeCgroupsPresent()).filter((c) => !snapshot.cgroups.includes(c));
    const contained = (await Promise.all(created.map(cgroupProcesses))).flat();
    await killAll([...new Set([...shims, ...contained])]);
  });
  await step('unmounting', async () => {
    for (const mountPoint of await mountsUnder(options.nodeDir)) {
      await runProgram('umount', [mountPoint]).catch(() => runProgram('umount', ['--lazy', mountPoint]));
    }
  });
  if (!snapshot.bridge) {
    await step(`deleting bridge ${changes.bridge}`, async () => {
      if (await exists(path.join('/sys/class/net', changes.bridge)))
        await runProgram('ip', ['link', 'del', changes.bridge]);
    });
  }
  await step('restoring iptables', () => restoreIptables('iptables', snapshot.iptables));
  await step('restoring ip6tables', () => restoreIptables('ip6tables', snapshot.ip6tables));
  await step('restoring sysctls', async () => {
    const now = await readSysctls(Object.keys(snapshot.sysctls));
    for (const [name, value] of Object.entries(snapshot.sysctls)) {
      if (now[name] !== value) await writeFile(path.join('/proc/sys', name), value);
    }
  });
  if (!snapshot.loAddress) {
    await step(`removing ${changes.loAddress} from lo`, async () => {
      if (await loHasAddress(changes.loAddress))
        await runProgram('ip', ['addr', 'del', changes.loAddress, 'dev', 'lo']);
    });
  }
  await step('removing cgroups', async () => {
    for (const cgroup of await nodeCgroupsPresent()) {
      if (!snapshot.cgroups.includes(cgroup)) await removeCgroup(cgroup);
    }
  });
  await step('removing host paths', async () => {
    for (const [p, existed] of Object.entries(snapshot.paths)) {
      if (!existed) await rm(p, { recursive: true, force: true });
    }
  });
  if (errors.length > 0) {
    throw new Error(`the host was not fully restored (the snapshot stays in ${file}):\n${errors.join('\n')}`);
  }
  await rm(file, { force: true });
}
