#!/usr/bin/env node
// Benchmark: time from CodeMate create to session-pod create, for 1, 100 and 1,000 CodeMates, next to a
// bare pod create on the same apiserver in the same run; and the operator's RSS with 1,000 CodeMates.
// Usage: npm run build && node bench/operator-scale.mjs [--sizes 1,100,1000] [--out bench/results/operator-scale.json]
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { Kube } from '../dist/clients/kube.js';
import { cacheDir, readEnv } from '../dist/config/index.js';
import { resolveBinaries } from '../dist/sandbox/binaries.js';
import { freePort } from '../dist/clients/ports.js';
import { sandboxDown, sandboxUp } from '../dist/sandbox/sandbox.js';
import { summary, namespaceWithSecrets } from './stats.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const sizes = arg('sizes', '1,100,1000').split(',').map(Number);
const out = arg('out', path.join(root, 'bench', 'results', 'operator-scale.json'));
const concurrency = 16;

const env = readEnv();
const bins = await resolveBinaries({ binDir: env.CODEMATE_BIN_DIR, cacheDir: cacheDir(env) });
const stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-'));
const { paths } = await sandboxUp({ stateDir, bins, workloads: false });
const kube = Kube.load({ kubeconfig: paths.kubeconfig });
const kc = new KubeConfig();
kc.loadFromFile(paths.kubeconfig);

async function inBatches(items, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Watches pods in a namespace and resolves each name's first sighting time. */
async function podSightings(namespace, keyOf) {
  const seen = new Map();
  const waiters = new Map();
  const request = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (type, pod) => {
      const key = keyOf(pod);
      if (type !== 'ADDED' || !key || seen.has(key)) return;
      seen.set(key, performance.now());
      waiters.get(key)?.(seen.get(key));
    },
    () => {},
  );
  return {
    when: (key) => (seen.has(key) ? Promise.resolve(seen.get(key)) : new Promise((r) => waiters.set(key, r))),
    stop: () => request.abort(),
  };
}

async function barePods(n) {
  const namespace = `bare-${n}`;
  await namespaceWithSecrets(kube, namespace);
  const watch = await podSightings(namespace, (p) => p.metadata.name);
  const latencies = [];
  const started = performance.now();
  await inBatches([...Array(n).keys()], async (i) => {
    const t0 = performance.now();
    await kube.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p-${i}`, namespace },
      spec: { containers: [{ name: 'session', image: 'codemate-session:bench' }] },
    });
    latencies.push((await watch.when(`p-${i}`)) - t0);
  });
  const wall = performance.now() - started;
  watch.stop();
  return { ...summary(latencies), wallMs: Math.round(wall) };
}

async function codemates(n, operatorPid) {
  const namespace = `cm-${n}`;
  await namespaceWithSecrets(kube, namespace);
  const watch = await podSightings(namespace, (p) => p.metadata.labels?.['codemate.io/name']);
  const latencies = [];
  const started = performance.now();
  await inBatches([...Array(n).keys()], async (i) => {
    const t0 = performance.now();
    await kube.create({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: `s-${i}`, namespace },
      spec: {
        repository: { url: 'https://github.com/example/project.git', branch: `b-${i}` },
        github: { tokenSecretRef: { name: 'github-token' } },
        anthropic: { apiKeySecretRef: { name: 'anthropic-key' } },
      },
    });
    latencies.push((await watch.when(`s-${i}`)) - t0);
  });
  const wall = performance.now() - started;
  watch.stop();
  const status = await readFile(`/proc/${operatorPid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return {
    ...summary(latencies),
    wallMs: Math.round(wall),
    operatorRssMiB: +(kb('VmRSS') / 1024).toFixed(1),
    operatorPeakRssMiB: +(kb('VmHWM') / 1024).toFixed(1),
  };
}

const healthPort = await freePort();
const operator = spawn(
  process.execPath,
  [
    path.join(root, 'bin', 'codemate.js'),
    'operator',
    `--kubeconfig=${paths.kubeconfig}`,
    '--no-leader-elect',
    `--health-port=${healthPort}`,
    '--log-level=warn',
  ],
  { stdio: 'ignore' },
);
for (let i = 0; ; i++) {
  const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
  if (ready) break;
  if (i > 300) throw new Error('operator did not become ready');
  await new Promise((r) => setTimeout(r, 100));
}
const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  concurrency,
  sizes: {},
};
try {
  for (const n of sizes) {
    const bare = await barePods(n);
    const cm = await codemates(n, operator.pid);
    results.sizes[n] = { barePodCreate: bare, codemateToPod: cm, ratioP50: +(cm.p50 / bare.p50).toFixed(2) };
    console.log(JSON.stringify({ n, bare, codemate: cm }));
  }
} finally {
  operator.kill('SIGTERM');
  await sandboxDown(stateDir);
  await rm(stateDir, { recursive: true, force: true });
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
console.log(`wrote ${out}`);
