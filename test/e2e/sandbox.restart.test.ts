/**
 * The sandbox survives its own faults the way a cluster survives a node's: a pod runtime killed with
 * SIGKILL adopts the sessions it ran, status taken away by someone else is reasserted, an apiserver
 * outage long enough for the node-lifecycle controller to mark every pod not ready heals by itself, and a
 * sandbox started again takes its node over at once.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { isAlive, processesWithEnv } from '../../src/clients/processes.js';
import { podMarkerEnv } from '../../src/podRuntime/sessionProcess.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { makeOrigin } from '../helpers/session.js';

const binDir = inject('binDir');
const namespace = 'restarts';
let stateDir: string;
let podsDir: string;
let originRoot: string;
let origin: string;
let kube: Kube;

interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
}
type Pod = KubeObject & {
  spec: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: Condition[];
    containerStatuses?: Array<{
      ready?: boolean;
      started?: boolean;
      state?: { terminated?: { exitCode: number } };
    }>;
  };
};
type Lease = KubeObject & { spec?: { holderIdentity?: string; renewTime?: string } };
interface StatusJson {
  components: Array<{ name: string; state: string; pid?: number }>;
}

const dev = (args: string[]) =>
  runCli(['dev', ...args, '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir } });
const componentPid = async (name: string) =>
  (JSON.parse((await dev(['status', '-o', 'json'])).stdout) as StatusJson).components.find(
    (c) => c.name === name,
  )?.pid;
const getCodeMate = (name: string) =>
  kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
const getPod = (name: string) => kube.get<Pod>('v1', 'Pod', name, namespace);
const condition = (pod: Pod, type: string) => pod.status?.conditions?.find((c) => c.type === type);
const isReady = (pod: Pod) => pod.status?.phase === 'Running' && condition(pod, 'Ready')?.status === 'True';
const getLease = () =>
  kube.get<Lease>('coordination.k8s.io/v1', 'Lease', 'codemate-sandbox', 'kube-node-lease');

async function startSession(name: string): Promise<string> {
  await kube.create(
    codemateObject(namespace, name, {
      // A branch of its own: one CodeMate writes to a branch, and these sessions run side by side.
      repository: { url: `file://${origin}`, branch: `feature-${name}` },
      task: `session ${name}`,
    }),
  );
  const cm = await eventually(
    () => getCodeMate(name),
    (c) => c.status?.phase === 'Running',
    { what: `${name} Running`, timeoutMs: 90_000 },
  );
  // kwok's pod-ready stage calls a pod ready before anything runs in it: wait for the session's own
  // readiness probe, then for the pod to say so.
  const pod = cm.status!.podName!;
  const base = await baseOf(pod);
  const workspace = path.join(base, 'ws');
  await eventually(
    () =>
      new Promise<number | null>((resolve) =>
        spawn(path.join(repoRoot, 'setup', 'scripts', 'codemate-ready'), [], {
          env: {
            PATH: process.env.PATH,
            TMUX_TMPDIR: path.join(base, 't'),
            CODEMATE_WORKSPACE: workspace,
            CODEMATE_STATE_DIR: path.join(workspace, '.codemate'),
          },
          stdio: 'ignore',
        }).on('close', resolve),
      ),
    (code) => code === 0,
    { what: `${name} passing its readiness probe`, timeoutMs: 60_000 },
  );
  await eventually(() => getPod(pod), isReady, { what: `${pod} Ready` });
  return pod;
}

/** The directory the pod runtime runs a pod in. */
async function baseOf(podName: string): Promise<string> {
  return path.join(podsDir, (await getPod(podName)).metadata.uid!.slice(0, 13));
}

/**
 * Every process of every local session of this sandbox, by its pod directory: those that carry the
 * runtime's marker, and those whose working directory is inside a pod directory.
 */
function sessionProcesses(): Map<string, number[]> {
  const byBase = new Map<string, Set<number>>();
  const add = (base: string, pid: number) => byBase.set(base, (byBase.get(base) ?? new Set()).add(pid));
  for (const { pid, value } of processesWithEnv(podMarkerEnv, (v) => v.startsWith(podsDir + path.sep)))
    add(value, pid);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || !isAlive(pid)) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (!cwd.startsWith(podsDir + path.sep)) continue;
    const [dir] = path.relative(podsDir, cwd).split(path.sep);
    if (dir) add(path.join(podsDir, dir), pid);
  }
  return new Map([...byBase].map(([base, pids]) => [base, [...pids]]));
}

function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * The entrypoint scripts running for a pod directory (not their momentary forks). More than one for a
 * pod, or any for a pod that is gone, is an orphan.
 */
function entrypoints(base: string): number[] {
  const scripts = new Set(
    (sessionProcesses().get(base) ?? []).filter((pid) => argvOf(pid)[1]?.endsWith('/codemate-entrypoint')),
  );
  return [...scripts].filter((pid) => !scripts.has(parentOf(pid) ?? 0));
}

async function sessionsAndNode(codemates: string[]): Promise<{ pods: boolean[]; node?: string }> {
  const pods = await Promise.all(
    codemates.map(async (name) => getPod((await getCodeMate(name)).status!.podName!)),
  );
  const node = await kube.get<Pod>('v1', 'Node', 'codemate-sandbox');
  return { pods: pods.map(isReady), node: condition(node, 'Ready')?.status };
}

/** The node-lifecycle controller's record of marking a pod not ready. */
async function nodeNotReadyEvents(since: Date): Promise<KubeObject[]> {
  const events = await kube.list<
    KubeObject & { reason?: string; lastTimestamp?: string; eventTime?: string }
  >('v1', 'Event', namespace);
  return events.filter(
    (e) =>
      e.reason === 'NodeNotReady' &&
      new Date(String(e.lastTimestamp ?? e.eventTime ?? 0)).getTime() >= since.getTime() - 1000,
  );
}

/** The pod runtime's status writes since `since`, by pod key, from its log. */
async function statusWritesSince(since: Date): Promise<string[]> {
  const log = await readFile(path.join(stateDir, 'logs', 'codemate-pod-runtime.log'), 'utf8');
  return log
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as { msg?: string; time?: string; pod?: string };
      } catch {
        return {};
      }
    })
    .filter(
      (e) => e.msg === 'pod status set from the local session' && Date.parse(e.time ?? '') >= since.getTime(),
    )
    .map((e) => e.pod!);
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cm-restart-'));
  podsDir = path.join(stateDir, 'pods');
  originRoot = await mkdtemp(path.join(os.tmpdir(), 'cm-origin-'));
  origin = await makeOrigin(originRoot);
  const up = await dev(['up']);
  expect(up.code, up.stderr).toBe(0);
  kube = Kube.load({ kubeconfig: path.join(stateDir, 'kubeconfig') });
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  for (const name of ['github-token', 'anthropic-key'])
    await kube.create(secretObject(namespace, name, { token: 'x' }));
});

afterAll(async () => {
  await runCli(['dev', 'down', '--purge', '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir } });
  await rm(originRoot, { recursive: true, force: true });
});

describe('sandbox restarts', () => {
  it('a pod runtime killed with SIGKILL adopts its running sessions, reports the ones that ended, and leaves no orphan', async () => {
    const keep = await startSession('keep');
    const ends = await startSession('ends');
    const keepDir = await baseOf(keep);
    const readySince = String(condition(await getPod(keep), 'Ready')!.lastTransitionTime);
    const endsDir = await baseOf(ends);
    const entrypointBefore = entrypoints(keepDir);
    expect(entrypointBefore).toHaveLength(1);

    const runtime = (await componentPid('codemate-pod-runtime'))!;
    process.kill(runtime, 'SIGKILL');
    await eventually(
      async () => isAlive(runtime),
      (alive) => !alive,
      { what: 'pod runtime gone' },
    );
    // While no runtime runs, one session's entrypoint dies: the next runtime must learn how it ended.
    const [entrypoint] = entrypoints(endsDir);
    process.kill(entrypoint!, 'SIGKILL');

    const started = Date.now();
    const up = await dev(['up']);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain('codemate-pod-runtime');

    // The running session was adopted: the same process, no second entrypoint, Ready all along.
    expect(entrypoints(keepDir)).toEqual(entrypointBefore);
    const pod = await eventually(() => getPod(keep), isReady, { what: `${keep} Ready` });
    expect(String(condition(pod, 'Ready')!.lastTransitionTime)).toBe(readySince);
    process.stderr.write(
      `[restart] pod runtime SIGKILL: dev up + ${keep} Ready in ${Date.now() - started} ms\n`,
    );

    // The session that ended meanwhile is reported as a kubelet would, and nothing of it keeps running.
    const failed = await eventually(
      () => getPod(ends),
      (p) => p.status?.phase === 'Failed',
      { what: `${ends} Failed` },
    );
    expect(failed.status!.containerStatuses![0]!.state!.terminated!.exitCode).toBe(137);
    await eventually(
      async () => sessionProcesses().get(endsDir) ?? [],
      (pids) => pids.length === 0,
      { what: `no process left of ${ends}` },
    );

    // Deleting an adopted session stops it, and everything of it.
    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'ends', namespace);
    await kube.delete('codemate.io/v1alpha1', 'CodeMate', 'keep', namespace);
    await eventually(
      async () => [...sessionProcesses().keys()],
      (bases) => bases.length === 0,
      { what: 'no session process left', timeoutMs: 60_000 },
    );
  });

  it('reasserts readiness that another writer took away, as the node-lifecycle controller does', async () => {
    const name = await startSession('marked');
    const pod = await getPod(name);
    // What MarkPodsNotReady writes: only the Ready condition, to False.
    await kube.patchStatusRaw('v1', 'pods', namespace, name, {
      conditions: pod.status!.conditions!.map((c) => (c.type === 'Ready' ? { ...c, status: 'False' } : c)),
    });
    const marked = Date.now();
    await eventually(() => getPod(name), isReady, { what: `${name} Ready again`, timeoutMs: 20_000 });
    process.stderr.write(`[restart] Ready reasserted after ${Date.now() - marked} ms\n`);
  });

  it('pods marked not ready while the node lease was stale are Ready again once the node is, without a write storm', async () => {
    const sessions = ['marked', 'outage0'];
    await startSession('outage0');
    const kwok = (await componentPid('kwok'))!;
    const frozeAt = new Date();
    // kwok stops renewing the node's Lease; after its grace period the node-lifecycle controller marks the
    // node and every pod on it not ready.
    process.kill(kwok, 'SIGSTOP');
    try {
      await eventually(
        () => sessionsAndNode(sessions),
        (s) => s.node !== 'True' && s.pods.every((ready) => !ready),
        { what: 'node and pods marked not ready', timeoutMs: 150_000, intervalMs: 1000 },
      );
    } finally {
      process.kill(kwok, 'SIGCONT');
    }
    const resumed = Date.now();
    await eventually(
      () => sessionsAndNode(sessions),
      (s) => s.node === 'True' && s.pods.every(Boolean),
      { what: 'node and sessions Ready again', timeoutMs: 60_000, intervalMs: 500 },
    );
    process.stderr.write(
      `[restart] stale lease: sessions Ready ${Date.now() - resumed} ms after kwok resumed\n`,
    );
    // Reasserting is paced: a handful of writes per pod, not one per event of the fight.
    const writes = await statusWritesSince(frozeAt);
    for (const name of sessions) {
      const pod = (await getCodeMate(name)).status!.podName!;
      expect(writes.filter((w) => w === `${namespace}/${pod}`).length, pod).toBeLessThanOrEqual(3);
    }
  });

  it('after a 20 s apiserver outage the node and every session are Ready again', async () => {
    const sessions = ['marked', 'outage0', 'outage'];
    await startSession('outage');
    const apiserver = (await componentPid('kube-apiserver'))!;
    const killedAt = new Date();
    process.kill(apiserver, 'SIGKILL');
    // The fault itself: an outage of 20 s, the length that left sessions not ready for good.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    const up = await dev(['up']);
    expect(up.code, up.stderr).toBe(0);
    const back = Date.now();
    // The node-lifecycle controller judges the node by the last heartbeat it saw before the kill: it marks
    // the node's pods not ready, if at all, within its grace period (50 s) and one monitor period (5 s) of
    // that. Pods that are Ready before then prove nothing; after it, or after the marking, they must be.
    const verdictBy = killedAt.getTime() + 60_000;
    let marked: KubeObject[] = [];
    await eventually(
      async () => {
        marked = await nodeNotReadyEvents(killedAt);
        return sessionsAndNode(sessions);
      },
      (s) => s.node === 'True' && s.pods.every(Boolean) && (marked.length > 0 || Date.now() > verdictBy),
      { what: 'node and sessions Ready after the outage', timeoutMs: 150_000, intervalMs: 500 },
    );
    const lease = await getLease();
    expect(Date.now() - Date.parse(String(lease.spec!.renewTime))).toBeLessThan(30_000);
    const podsReady = Date.now();
    for (const name of sessions)
      await eventually(
        () => getCodeMate(name),
        (c) => c.status?.phase === 'Running',
        { what: `${name} Running after the outage`, timeoutMs: 60_000 },
      );
    process.stderr.write(
      `[restart] apiserver outage 20 s: ${marked.length} NodeNotReady events; pods Ready ${podsReady - back} ms and CodeMates Running ${Date.now() - back} ms after dev up\n`,
    );
  });

  it('dev down && dev up takes the node over at once: new sessions do not wait for the old lease', async () => {
    const before = await getLease();
    expect((await dev(['down'])).code).toBe(0);
    // Everything the sandbox ran is gone, sessions included.
    expect([...sessionProcesses().keys()]).toEqual([]);
    const up = await dev(['up']);
    expect(up.code, up.stderr).toBe(0);
    const lease = await getLease();
    expect(lease.spec?.holderIdentity).toBeTruthy();
    expect(lease.spec?.holderIdentity).not.toBe(before.spec?.holderIdentity);

    const created = Date.now();
    await kube.create(
      codemateObject(namespace, 'fresh', {
        repository: { url: `file://${origin}`, branch: 'feature-fresh' },
        task: 'session fresh',
      }),
    );
    const cm = await eventually(
      () => getCodeMate('fresh'),
      (c) => Boolean(c.status?.podName),
      { what: 'fresh has a pod' },
    );
    // kwok plays the pod as soon as it is bound; with the old lease in the way it stayed Pending ~40 s.
    await eventually(
      () => getPod(cm.status!.podName!),
      (p) => p.status?.phase === 'Running',
      { what: 'fresh pod Running', timeoutMs: 15_000 },
    );
    await eventually(
      () => getCodeMate('fresh'),
      (c) => c.status?.phase === 'Running',
      { what: 'fresh Running', timeoutMs: 90_000 },
    );
    process.stderr.write(
      `[restart] dev down/up: new session Running ${Date.now() - created} ms after create\n`,
    );
    // The sessions that ran before come back too.
    for (const name of ['marked', 'outage0', 'outage'])
      await eventually(
        () => getCodeMate(name),
        (c) => c.status?.phase === 'Running',
        { what: `${name} Running after dev up`, timeoutMs: 90_000 },
      );
  });
});
