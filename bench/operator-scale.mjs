#!/usr/bin/env node
// Benchmark: time from CodeMate create to session-pod create, for 1, 100 and 1,000 CodeMates, next to a
// bare pod create and to the floor (the CodeMate, its pod and its status written directly, no operator)
// on the same apiserver in the same run; the operator's RSS at start and with 1,000
// CodeMates; its CPU once they are idle; and what it asked of GitHub (a stand-in with ETags).
// Usage: npm run build && node bench/operator-scale.mjs [--sizes 1,100,1000] [--idle-seconds 60]
//   [--workers 4] [--cpu-prof DIR] [--heap-snapshot DIR] [--node-options "..."] [--malloc-arena-max N]
//   [--out bench/results/operator-scale.json]
import { spawn } from 'node:child_process';
import http from 'node:http';
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
import { reconcile } from '../dist/operator/reconcile.js';
import { statusPatch } from '../dist/operator/execute.js';
import { summary, namespaceWithSecrets, requireProjectNode, rssMiB, until } from './stats.mjs';

requireProjectNode();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const sizes = arg('sizes', '1,100,1000').split(',').map(Number);
const out = arg('out', path.join(root, 'bench', 'results', 'operator-scale.json'));
const concurrency = 16;
const idleSeconds = Number(arg('idle-seconds', '60'));
const workers = arg('workers', undefined);
const cpuProfDir = arg('cpu-prof', undefined);
const heapDir = arg('heap-snapshot', undefined);

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

/**
 * Watches pods in a namespace and resolves each name's first sighting time. Under a burst the apiserver
 * closes watchers that fall behind ("unresponsive"), as it may any watch: like a reflector, watch again
 * from the last resourceVersion seen.
 */
async function podSightings(namespace, keyOf) {
  const seen = new Map();
  const waiters = new Map();
  let resourceVersion;
  let request;
  let stopped = false;
  let rewatches = 0;
  const start = async () => {
    request = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
      (type, pod) => {
        resourceVersion = pod?.metadata?.resourceVersion ?? resourceVersion;
        const key = keyOf(pod);
        if (type !== 'ADDED' || !key || seen.has(key)) return;
        seen.set(key, performance.now());
        waiters.get(key)?.(seen.get(key));
      },
      () => {
        if (stopped) return;
        rewatches += 1;
        start().catch(() => setTimeout(() => start(), 100));
      },
    );
  };
  await start();
  return {
    when: (key) =>
      seen.has(key)
        ? Promise.resolve(seen.get(key))
        : new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`${namespace}: no pod for ${key} after 120 s (${seen.size} seen)`)),
              120_000,
            );
            waiters.set(key, (at) => {
              clearTimeout(timer);
              resolve(at);
            });
          }),
    rewatches: () => rewatches,
    stop: () => {
      stopped = true;
      request.abort();
    },
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

const codemateSpec = (branch) => ({
  repository: { url: 'https://github.com/example/project.git', branch },
  github: { tokenSecretRef: { name: 'github-token' } },
  anthropic: { apiKeySecretRef: { name: 'anthropic-key' } },
});

/**
 * The floor for any operator: the writes a CodeMate cannot do without, made by the benchmark itself
 * with no operator running. The CodeMate create, then the session pod and the first status exactly as
 * the operator's pure reconcile plans them (the same pod template, the same status patch), with no watch,
 * cache, queue or Event in between. Measured like the others: create call → pod seen in a watch.
 * Afterwards the CodeMates and pods are deleted, so that the operator, started later, never sees them.
 */
async function floorWrites(n) {
  const namespace = `floor-${n}`;
  await namespaceWithSecrets(kube, namespace);
  const watch = await podSightings(namespace, (p) => p.metadata.labels?.['codemate.io/name']);
  const secret = { exists: true, keys: ['token'] };
  const observed = { pods: [], secrets: { 'github-token': secret, 'anthropic-key': secret } };
  const cpu = await cpuOfAll(undefined);
  const requests = await apiserverRequests();
  const latencies = [];
  const started = performance.now();
  await inBatches([...Array(n).keys()], async (i) => {
    const t0 = performance.now();
    const cm = await kube.create({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: `s-${i}`, namespace },
      spec: codemateSpec(`f${n}-b${i}`),
    });
    const plan = reconcile(cm, observed, { defaultImage: 'codemate-session:bench' }, new Date());
    const create = plan.actions.find((a) => a.type === 'createPod');
    if (!create) throw new Error(`reconcile planned no pod: ${JSON.stringify(plan.actions)}`);
    await kube.create(create.pod);
    latencies.push((await watch.when(`s-${i}`)) - t0);
    const patch = statusPatch(cm.status, plan.status);
    const ref = { group: 'codemate.io', version: 'v1alpha1', plural: 'codemates', namespace, name: `s-${i}` };
    if (patch) await kube.patchStatus(ref, patch);
  });
  const wall = performance.now() - started;
  watch.stop();
  const result = {
    ...summary(latencies),
    wallMs: Math.round(wall),
    cpuSeconds: cpuSince(cpu, await cpuOfAll(undefined)),
    apiserverRequests: countsSince(requests, await apiserverRequests()),
  };
  await kube.http.request('DELETE', `/apis/codemate.io/v1alpha1/namespaces/${namespace}/codemates`, {});
  await kube.http.request('DELETE', `/api/v1/namespaces/${namespace}/pods?gracePeriodSeconds=0`, {});
  await until(async () => {
    const { items } = await kube.http.request('GET', `/api/v1/namespaces/${namespace}/pods?limit=1`, {});
    return items.length === 0;
  }, `the floor's pods in ${namespace} deleted`);
  return result;
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
      spec: codemateSpec(`n${n}-b${i}`),
    });
    latencies.push((await watch.when(`s-${i}`)) - t0);
  });
  const wall = performance.now() - started;
  watch.stop();
  const { rss, peak } = await rssMiB(operatorPid);
  return { ...summary(latencies), wallMs: Math.round(wall), operatorRssMiB: rss, operatorPeakRssMiB: peak };
}

/**
 * A GitHub stand-in for the poller: no CodeMate's branch has a pull request. Answers carry an ETag and a
 * matching If-None-Match gets a 304, which GitHub does not charge, so `charged` counts what a real
 * GitHub would have counted against the rate limit.
 */
async function githubStandIn() {
  const counts = { requests: 0, charged: 0 };
  /** The branches whose pull request was looked up: each CodeMate's first poll asks for its own. */
  const branches = new Set();
  const server = http.createServer((req, res) => {
    req.resume();
    counts.requests += 1;
    const head = new URL(req.url, 'http://x').searchParams.get('head');
    if (head) branches.add(head);
    const body = req.url.startsWith('/user') ? { login: 'codemate-bot', id: 1, type: 'User' } : [];
    const etag = `"${req.url.startsWith('/user') ? 'u' : 'e'}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      return res.end();
    }
    counts.charged += 1;
    res.writeHead(200, {
      'content-type': 'application/json',
      etag,
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-ratelimit-resource': 'core',
    });
    res.end(JSON.stringify(body));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    polled: () => branches.size,
    close: () => server.close(),
  };
}

/** The process's CPU time (user + system) in seconds, from /proc/<pid>/stat. */
async function cpuSeconds(pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** CPU seconds of the operator and of each control-plane process: where a phase's time went. */
async function cpuOfAll(operatorPid) {
  const out = operatorPid ? { operator: await cpuSeconds(operatorPid) } : {};
  for (const c of ['kube-apiserver', 'etcd', 'kwok', 'kube-scheduler', 'kube-controller-manager']) {
    const pid = Number(await readFile(path.join(stateDir, 'run', `${c}.pid`), 'utf8').catch(() => '0'));
    out[c] = pid ? await cpuSeconds(pid).catch(() => 0) : 0;
  }
  return out;
}
/** The apiserver's own count of the requests it served, by verb and resource (its /metrics). */
async function apiserverRequests() {
  const { body } = await kube.raw('/metrics');
  const counts = {};
  for (const line of body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.verb === 'WATCH' || labels.verb === 'CONNECT' ? false : !labels.resource) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}
const countsSince = (before, after) =>
  Object.fromEntries(
    Object.keys(after)
      .map((k) => [k, after[k] - (before[k] ?? 0)])
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]),
  );

const cpuSince = (before, after) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, +(after[k] - before[k]).toFixed(1)]));

/** The operator's own account of its memory (its /metrics): V8's heap, and what lives outside it. */
async function operatorMemory() {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const mib = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`codemate_operator_${name} `));
    return line ? +(Number(line.split(' ')[1]) / 1048576).toFixed(1) : undefined;
  };
  return {
    heapTotalMiB: mib('nodejs_heap_size_total_bytes'),
    heapUsedMiB: mib('nodejs_heap_size_used_bytes'),
    externalMiB: mib('nodejs_external_memory_bytes'),
  };
}

/**
 * What the operator container of manifests/operator.yaml sets for Node and for the C library
 * (NODE_OPTIONS, MALLOC_ARENA_MAX): run it as it is deployed.
 */
async function deployedRuntimeEnv() {
  const { parseAllDocuments } = await import('yaml');
  const docs = parseAllDocuments(await readFile(path.join(root, 'manifests', 'operator.yaml'), 'utf8'));
  for (const doc of docs.map((d) => d.toJSON())) {
    const container = doc?.kind === 'Deployment' ? doc.spec.template.spec.containers[0] : undefined;
    if (!container) continue;
    const pick = (name) => container.env?.find((e) => e.name === name)?.value;
    return { NODE_OPTIONS: pick('NODE_OPTIONS') ?? '', MALLOC_ARENA_MAX: pick('MALLOC_ARENA_MAX') };
  }
  return { NODE_OPTIONS: '' };
}
const runtimeEnv = await deployedRuntimeEnv();
const nodeOptions = arg('node-options', runtimeEnv.NODE_OPTIONS);
const mallocArenaMax = arg('malloc-arena-max', runtimeEnv.MALLOC_ARENA_MAX);

// The floor of each size first, before the operator starts: it must never see these CodeMates.
const floors = {};
for (const n of sizes) {
  floors[n] = await floorWrites(n);
  console.log(JSON.stringify({ n, floor: floors[n] }));
}

const github = await githubStandIn();
const healthPort = await freePort();
const nodeFlags = [
  ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
  ...(heapDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`] : []),
];
const operator = spawn(
  process.execPath,
  [
    ...nodeFlags,
    path.join(root, 'bin', 'codemate.js'),
    'operator',
    `--kubeconfig=${paths.kubeconfig}`,
    '--no-leader-elect',
    `--health-port=${healthPort}`,
    '--log-level=warn',
    ...(workers ? [`--workers=${workers}`] : []),
  ],
  {
    stdio: 'ignore',
    env: {
      ...process.env,
      GITHUB_API_URL: github.url,
      NODE_OPTIONS: nodeOptions,
      ...(mallocArenaMax ? { MALLOC_ARENA_MAX: mallocArenaMax } : {}),
    },
  },
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
// At start: ready, and settled (the first GC and lazy work done).
await new Promise((r) => setTimeout(r, 3000));
const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  concurrency,
  workers: workers ? Number(workers) : 'default',
  nodeOptions,
  mallocArenaMax: mallocArenaMax ?? 'default',
  operatorStartRssMiB: (await rssMiB(operator.pid)).rss,
  operatorStartMemory: await operatorMemory(),
  sizes: {},
};
try {
  for (const n of sizes) {
    let cpu = await cpuOfAll(operator.pid);
    let requests = await apiserverRequests();
    const bare = await barePods(n);
    let after = await cpuOfAll(operator.pid);
    let afterRequests = await apiserverRequests();
    bare.cpuSeconds = cpuSince(cpu, after);
    bare.apiserverRequests = countsSince(requests, afterRequests);
    cpu = after;
    requests = afterRequests;
    const charged = github.counts.charged;
    const cm = await codemates(n, operator.pid);
    cm.githubChargedDuringBurst = github.counts.charged - charged;
    cm.cpuSeconds = cpuSince(cpu, await cpuOfAll(operator.pid));
    cm.apiserverRequests = countsSince(requests, await apiserverRequests());
    cm.operatorMemory = await operatorMemory();
    results.sizes[n] = {
      barePodCreate: bare,
      floorWrites: floors[n],
      codemateToPod: cm,
      ratioP50: +(cm.p50 / bare.p50).toFixed(2),
      ratioWall: +(cm.wallMs / bare.wallMs).toFixed(2),
      floorRatioWall: +(floors[n].wallMs / bare.wallMs).toFixed(2),
      ratioWallToFloor: +(cm.wallMs / floors[n].wallMs).toFixed(2),
      ratioP50ToFloor: +(cm.p50 / floors[n].p50).toFixed(2),
    };
    console.log(JSON.stringify({ n, bare, codemate: cm }));
  }
  if (idleSeconds > 0) {
    // Idle: every CodeMate has its pod. Wait out the rest of the burst's work: the first polls, which
    // the operator spreads (every CodeMate's branch looked up once, and then 20 s more), then sample.
    const settleStarted = performance.now();
    const total = sizes.reduce((a, b) => a + b, 0);
    while (github.polled() < total && performance.now() - settleStarted < 900_000) {
      await new Promise((r) => setTimeout(r, 1000));
    }
    await new Promise((r) => setTimeout(r, 20_000));
    const settledAfterSeconds = Math.round((performance.now() - settleStarted) / 1000);
    const before = {
      cpu: await cpuSeconds(operator.pid),
      at: performance.now(),
      apiRequests: await apiserverRequests(),
      ...github.counts,
    };
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const cpu = (await cpuSeconds(operator.pid)) - before.cpu;
    const seconds = (performance.now() - before.at) / 1000;
    results.idle = {
      codemates: sizes.reduce((a, b) => a + b, 0),
      settledAfterSeconds,
      seconds: +seconds.toFixed(1),
      cpuPercentOfOneCore: +((100 * cpu) / seconds).toFixed(2),
      apiserverRequests: countsSince(before.apiRequests, await apiserverRequests()),
      githubRequests: github.counts.requests - before.requests,
      githubCharged: github.counts.charged - before.charged,
      operatorRssMiB: (await rssMiB(operator.pid)).rss,
      operatorMemory: await operatorMemory(),
    };
    console.log(JSON.stringify({ idle: results.idle }));
  }
  if (heapDir) {
    operator.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 20_000));
  }
} finally {
  operator.kill('SIGTERM');
  if (operator.exitCode === null) await new Promise((r) => operator.once('exit', r));
  github.close();
  await sandboxDown(stateDir);
  await rm(stateDir, { recursive: true, force: true });
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify(results, null, 2) + '\n');
console.log(`wrote ${out}`);
