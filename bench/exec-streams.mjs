#!/usr/bin/env node
// Benchmark: what an open session stream costs the operator. Each running session holds two long-lived
// execs (the channel, `codemate-inject --serve`, and the report, `codemate-report --watch`); the
// operator-scale benchmark's pods refuse exec, so its figures hold none. This opens N execs with the
// operator's own exec client (src/clients/exec.ts), from this process, into kwok pods whose exec runs a
// host command that prints a line and then waits, and reports this process's RSS and V8 heap before and
// with them open: the memory of one open stream, client side. Then the CPU time one exec costs it when the
// node refuses it, as every exec into operator-scale's pods is refused.
// Usage: npm run bench:exec-streams [-- --streams 1000 --pods 100]
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { Kube } from '../dist/clients/kube.js';
import { openExec } from '../dist/clients/exec.js';
import { cacheDir, readEnv } from '../dist/config/index.js';
import { resolveBinaries } from '../dist/sandbox/binaries.js';
import { sandboxDown, sandboxUp } from '../dist/sandbox/sandbox.js';
import { requireProjectNode, rssMiB, sleep, until, writeResults } from './stats.mjs';

requireProjectNode();

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const streams = arg('streams', 1000);
const pods = arg('pods', 100);
const namespace = 'streams';

async function memory() {
  globalThis.gc?.();
  await sleep(500);
  globalThis.gc?.();
  const { rss } = await rssMiB();
  const { heapUsed, heapTotal, external } = process.memoryUsage();
  const mib = (b) => +(b / 1048576).toFixed(1);
  return {
    rssMiB: rss,
    heapUsedMiB: mib(heapUsed),
    heapTotalMiB: mib(heapTotal),
    externalMiB: mib(external),
  };
}

const env = readEnv();
const bins = await resolveBinaries({ binDir: env.CODEMATE_BIN_DIR, cacheDir: cacheDir(env) });
const stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-'));
const { paths } = await sandboxUp({ stateDir, bins, workloads: false });
const opened = [];
try {
  const kube = Kube.load({ kubeconfig: paths.kubeconfig });
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  // kwok runs an exec into these pods as a host command.
  await kube.create({
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterExec',
    metadata: { name: 'streams' },
    spec: { selector: { matchNamespaces: [namespace] }, execs: [{ local: { workDir: os.tmpdir() } }] },
  });
  for (let i = 0; i < pods; i++) {
    await kube.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p-${i}`, namespace },
      spec: { containers: [{ name: 'session', image: 'codemate-session:bench' }] },
    });
  }
  await until(
    async () => {
      const { items } = await kube.http.request('GET', `/api/v1/namespaces/${namespace}/pods`, {});
      return items.filter((p) => p.status?.phase === 'Running').length === pods;
    },
    'pods running',
    120_000,
  );

  // One stream first: the exec client's modules load and its connection setup is warm.
  const open = async (i) => {
    let ready;
    const first = new Promise((r) => (ready = r));
    const stream = await openExec(
      kube,
      namespace,
      `p-${i % pods}`,
      ['sh', '-c', 'echo ready; exec sleep 86400'],
      {
        container: 'session',
        onStdout: () => ready(),
        onStderr: () => undefined,
      },
    );
    await first;
    opened.push(stream);
  };
  await open(0);
  const before = await memory();
  const started = performance.now();
  for (let i = 1; i <= streams; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, streams + 1 - i) }, (_, k) => open(i + k)));
  }
  const openSeconds = (performance.now() - started) / 1000;
  const withStreams = await memory();

  // What an exec the node refuses costs this process: the operator-scale pods refuse every exec, and the
  // operator retries their channels and reports with backoff. CPU time (user + system) per attempt.
  const refusedNamespace = 'refused';
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: refusedNamespace } });
  await kube.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: refusedNamespace },
    spec: { containers: [{ name: 'session', image: 'codemate-session:bench' }] },
  });
  await until(async () => {
    const pod = await kube.http.request('GET', `/api/v1/namespaces/${refusedNamespace}/pods/p`, {});
    return pod.status?.phase === 'Running';
  }, 'refused pod running');
  const attempt = () =>
    openExec(kube, refusedNamespace, 'p', ['true'], {
      container: 'session',
      onStdout: () => undefined,
      onStderr: () => undefined,
    }).then(
      (s) => s.closed,
      () => undefined,
    );
  for (let i = 0; i < 20; i++) await attempt();
  const refusedAttempts = 500;
  const cpuBefore = process.cpuUsage();
  const refusedStarted = performance.now();
  for (let i = 0; i < refusedAttempts; i++) await attempt();
  const cpu = process.cpuUsage(cpuBefore);
  const refused = {
    attempts: refusedAttempts,
    cpuMsPerAttempt: +((cpu.user + cpu.system) / 1000 / refusedAttempts).toFixed(2),
    wallMsPerAttempt: +((performance.now() - refusedStarted) / refusedAttempts).toFixed(2),
  };
  const n = opened.length - 1;
  const perStreamKiB = (field) => +(((withStreams[field] - before[field]) * 1024) / n).toFixed(1);
  await writeResults('exec-streams', {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    streams: n,
    pods,
    openSeconds: +openSeconds.toFixed(1),
    before,
    withStreams,
    perStream: { rssKiB: perStreamKiB('rssMiB'), heapUsedKiB: perStreamKiB('heapUsedMiB') },
    refused,
  });
} finally {
  for (const s of opened) s.close();
  await sandboxDown(stateDir);
  await rm(stateDir, { recursive: true, force: true });
}
process.exit(0);
