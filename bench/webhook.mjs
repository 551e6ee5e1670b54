#!/usr/bin/env node
// Benchmark: the `codemate webhook` server, in one run on one private sandbox.
//
// 1. Ack: acknowledged deliveries per second (10 connections, as fast as they go) and the ack latency
//    at an offered 1,000 deliveries/s, with autocannon. Every request is a fresh issue_comment delivery
//    (a real payload from @octokit/webhooks-examples, a unique comment id, signed) on a pull request that
//    one CodeMate follows, so each 2xx from CodeMate is a CodeMateMessage written to the apiserver.
//    Baselines in the same run: a bare fastify receiver that verifies the signature, parses the JSON
//    and answers 202 (bench/webhook-bare-receiver.mjs); and, as the storage floor, the same messages
//    created straight on the apiserver over keep-alive connections. The operator is NOT running in this
//    part: it would try to deliver every stored message, and that work would compete for the same two
//    cores and blur what the webhook itself costs.
// 2. Pane: webhook → text acknowledged in the session, p50/p99 over N deliveries one after another, with
//    the sandbox's operator and local pod runtime. Baseline in the same run, interleaved: the very message
//    the webhook would have written, created directly (what bench/delivery-latency.mjs measures). The
//    difference is the webhook hop: HTTP, signature, routing and the create call.
//
// Usage: npm run build && node bench/webhook.mjs [--seconds 15] [--connections 10] [--rate 1000]
//        [--deliveries 200] [--cpu-prof DIR]
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Kube } from '../dist/clients/kube.js';
import { cacheDir, readEnv } from '../dist/config/index.js';
import { resolveBinaries } from '../dist/sandbox/binaries.js';
import { resolveClaudeCode } from '../dist/sandbox/claudeCode.js';
import { freePort } from '../dist/clients/ports.js';
import { sandboxDown, sandboxUp } from '../dist/sandbox/sandbox.js';
import {
  deliveries,
  followingCodeMate,
  localOrigin,
  messageOf,
  sessionReady,
  startGitHubStub,
} from './github-fixture.mjs';
import {
  quantile,
  summary,
  until,
  sleep,
  writeResults,
  namespaceWithSecrets,
  requireProjectNode,
} from './stats.mjs';

requireProjectNode();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const options = {
  seconds: arg('seconds', 15),
  connections: arg('connections', 10),
  rate: arg('rate', 1000),
  deliveries: arg('deliveries', 200),
};
// --cpu-prof DIR: the ack part's `codemate webhook` writes a V8 CPU profile there when it stops.
const cpuProfDir = process.argv.includes('--cpu-prof')
  ? process.argv[process.argv.indexOf('--cpu-prof') + 1]
  : undefined;

// ---------------------------------------------------------------------------------------------- stats
const ratio = (a, b) => +(a / b).toFixed(2);

// ------------------------------------------------------------------------------------------ processes
async function waitReady(url, what) {
  await until(async () => (await fetch(url)).ok, what, 60_000);
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  return exited;
}

async function startBareReceiver(secret) {
  const child = fork(path.join(root, 'bench', 'webhook-bare-receiver.mjs'), [], {
    env: { ...process.env, GITHUB_WEBHOOK_SECRET: secret },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`bare receiver exited ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/webhook/github` };
}

/** `codemate webhook` with its default log level; its JSON logs go to a file, as a container's would. */
async function startCodemateWebhook(secret, kubeconfig, logFile, profileDir) {
  const port = await freePort();
  const log = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      path.join(root, 'bin', 'codemate.js'),
      'webhook',
      `--kubeconfig=${kubeconfig}`,
      '--host=127.0.0.1',
      `--port=${port}`,
    ],
    { env: { ...process.env, GITHUB_WEBHOOK_SECRET: secret }, stdio: ['ignore', log, log] },
  );
  await waitReady(`http://127.0.0.1:${port}/readyz`, 'codemate webhook ready');
  return { child, url: `http://127.0.0.1:${port}/webhook/github` };
}

// -------------------------------------------------------------------------------------------- cluster

/** Sends deliveries until the webhook's informer has seen the login and one is stored (201). */
async function firstStored(url, next) {
  return until(async () => {
    const d = next();
    const res = await fetch(url, { method: 'POST', headers: d.headers, body: d.body });
    const answer = await res.json();
    return res.status === 201 && answer.outcomes[0].message;
  }, 'the webhook to store a delivery');
}

/** How many CodeMateMessages a namespace holds, from one page of one (remainingItemCount). */
async function countMessages(kube, ns) {
  const res = await kube.raw(`/apis/codemate.io/v1alpha1/namespaces/${ns}/codematemessages?limit=1`);
  const list = JSON.parse(res.body);
  return list.items.length + (list.metadata.remainingItemCount ?? 0);
}

async function deleteNamespace(kube, ns) {
  await kube.delete('v1', 'Namespace', ns);
  await until(
    async () => (await kube.raw(`/api/v1/namespaces/${ns}`)).status === 404,
    `namespace ${ns} deleted`,
    300_000,
  );
}

// ----------------------------------------------------------------------------------- part 1: the ack
/**
 * One autocannon run. Latencies come from its per-response event (floating-point ms, 2xx only) rather
 * than its histogram, which stores whole milliseconds and, with a rate set, back-fills coordinated
 * omission with a 1 ms interval.
 */
async function load(url, next, { seconds, overallRate }) {
  const statuses = {};
  const latencies = [];
  const instance = autocannon({
    url,
    connections: options.connections,
    duration: seconds,
    ...(overallRate ? { overallRate, ignoreCoordinatedOmission: true } : {}),
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const { body, headers } = next();
          return { ...req, method: 'POST', headers, body };
        },
      },
    ],
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status < 300) latencies.push(ms);
  });
  const result = await instance;
  const acked = latencies.length;
  return {
    seconds: result.duration,
    ...(overallRate ? { offeredPerSecond: overallRate } : {}),
    ackedPerSecond: Math.round(acked / result.duration),
    latencyMs: summary(latencies),
    statuses,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/**
 * The storage floor: the messages the webhook would write, created straight on the apiserver with the
 * same concurrency over a keep-alive connection pool, with no webhook in between. It separates what
 * the apiserver and etcd cost from what the webhook process adds on top.
 */
async function apiserverFloor(kube, cm, next) {
  const { tls, headers } = await kube.connection.authorize();
  const agent = new https.Agent({ ...tls, keepAlive: true, maxSockets: options.connections });
  const url = new URL(
    `/apis/codemate.io/v1alpha1/namespaces/${cm.metadata.namespace}/codematemessages`,
    kube.server,
  );
  const create = (body) =>
    new Promise((resolve, reject) => {
      const req = https.request(url, {
        ...tls,
        agent,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
      });
      req.on('response', (res) => res.resume().on('end', () => resolve(res.statusCode)));
      req.on('error', reject);
      req.end(body);
    });
  const statuses = {};
  const latencies = [];
  const started = performance.now();
  const end = started + options.seconds * 1000;
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < end) {
        const body = JSON.stringify(messageOf(cm, next()));
        const t0 = performance.now();
        const status = await create(body);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status < 300) latencies.push(performance.now() - t0);
      }
    }),
  );
  agent.destroy();
  const seconds = (performance.now() - started) / 1000;
  return {
    seconds: +seconds.toFixed(2),
    createdPerSecond: Math.round(latencies.length / seconds),
    latencyMs: summary(latencies),
    statuses,
  };
}

async function measureTarget(label, url, next) {
  await load(url, next, { seconds: 3 }); // warm-up: JIT, connection pools, the informer's first hits
  const max = await load(url, next, { seconds: options.seconds });
  console.log(label, 'max', JSON.stringify(max));
  const atRate = await load(url, next, { seconds: options.seconds, overallRate: options.rate });
  console.log(label, `at ${options.rate}/s`, JSON.stringify(atRate));
  return { max, atRate };
}

async function ackPart(kube, paths, secret) {
  const ns = 'bench-ack';
  await namespaceWithSecrets(kube, ns);
  const cm = await followingCodeMate(kube, ns, 'pr-7');
  const next = deliveries(secret);

  const bare = await startBareReceiver(secret);
  const codemate = await startCodemateWebhook(
    secret,
    paths.kubeconfig,
    paths.logFile('bench-webhook'),
    cpuProfDir,
  );
  try {
    await firstStored(codemate.url, next);
    const bareResult = await measureTarget('bare', bare.url, next);
    const before = await countMessages(kube, ns);
    const cmResult = await measureTarget('codemate', codemate.url, next);
    await sleep(2000); // creates still in flight when autocannon stopped
    const stored = (await countMessages(kube, ns)) - before;
    const floor = await apiserverFloor(kube, cm, next);
    console.log('apiserver floor', JSON.stringify(floor));
    // The measured runs only: each 201 is one message created. The warm-up also stored some, and
    // autocannon drops requests still in flight when it stops (at most one per connection per run),
    // whose messages are stored but not counted as acked.
    const created = ['max', 'atRate'].reduce((n, k) => n + (cmResult[k].statuses[201] ?? 0), 0);
    const warmup = stored - created;
    return {
      operator: 'not running (stored messages are not delivered in this part)',
      connections: options.connections,
      bare: bareResult,
      codemate: cmResult,
      apiserverFloor: floor,
      ratio: {
        maxAckedPerSecond: ratio(cmResult.max.ackedPerSecond, bareResult.max.ackedPerSecond),
        maxAckedPerSecondVsFloor: ratio(cmResult.max.ackedPerSecond, floor.createdPerSecond),
        p50AtRate: ratio(cmResult.atRate.latencyMs.p50, bareResult.atRate.latencyMs.p50),
        p99AtRate: ratio(cmResult.atRate.latencyMs.p99, bareResult.atRate.latencyMs.p99),
      },
      messages: { created201: created, storedIncludingWarmup: stored, warmupAndInFlight: warmup },
    };
  } finally {
    await Promise.all([stop(bare.child), stop(codemate.child)]);
    // Thousands of messages: gone before the operator starts, or it would try to deliver them all.
    await deleteNamespace(kube, ns);
  }
}

// ----------------------------------------------------------------------------------- part 2: the pane
/** delivery-latency's acknowledgement: the message's Delivered status, polled every 20 ms. */
async function delivered(kube, ns, name) {
  await until(async () => {
    const phase = (await kube.get('codemate.io/v1alpha1', 'CodeMateMessage', name, ns)).status?.phase;
    if (phase === 'Failed' || phase === 'Rejected') throw new Error(`${name} ${phase}`);
    return phase === 'Delivered';
  }, name);
}

async function viaWebhook(kube, ns, url, d) {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: d.headers, body: d.body });
  const answer = await res.json();
  if (res.status !== 201) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(answer)}`);
  await delivered(kube, ns, answer.outcomes[0].message);
  return performance.now() - t0;
}

/** The same message the webhook would write for this delivery, written directly. */
async function viaDirectCreate(kube, ns, cm, d) {
  const message = messageOf(cm, d);
  const t0 = performance.now();
  await kube.create(message);
  await delivered(kube, ns, message.metadata.name);
  return performance.now() - t0;
}

async function panePart(kube, up, secret, stateDir) {
  const ns = 'bench-pane';
  await namespaceWithSecrets(kube, ns);
  const cm = await followingCodeMate(kube, ns, 'pr-7');
  await sessionReady(kube, ns, 'pr-7');

  // The sandbox runs its own webhook once `dev up` does; until then, one of ours.
  let webhook;
  if (up.webhook) {
    const sandboxSecret = (await readFile(up.webhook.secretFile, 'utf8')).split(/[,\n]/)[0].trim();
    webhook = { url: up.webhook.url, secret: sandboxSecret, server: 'sandbox (dev up)' };
  } else {
    const own = await startCodemateWebhook(
      secret,
      up.paths.kubeconfig,
      path.join(stateDir, 'bench-webhook-2.log'),
    );
    webhook = { url: own.url, secret, server: 'bench child process', child: own.child };
  }
  try {
    const next = deliveries(webhook.secret);
    await delivered(kube, ns, await firstStored(webhook.url, next)); // warm-up, both paths
    await viaDirectCreate(kube, ns, cm, next());
    const direct = [];
    const hooked = [];
    // Interleaved, so that drift over the run (etcd growing, GC, the fake session's history) falls on
    // both paths alike.
    for (let k = 0; k < options.deliveries; k++) {
      direct.push(await viaDirectCreate(kube, ns, cm, next()));
      hooked.push(await viaWebhook(kube, ns, webhook.url, next()));
    }
    return {
      webhookServer: webhook.server,
      directMessage: summary(direct),
      viaWebhook: summary(hooked),
      ratioP50: ratio(quantile(hooked, 0.5), quantile(direct, 0.5)),
      addedP50Ms: +(quantile(hooked, 0.5) - quantile(direct, 0.5)).toFixed(1),
    };
  } finally {
    if (webhook.child) await stop(webhook.child);
  }
}

// --------------------------------------------------------------------------------------------- main
const env = readEnv();
const bins = await resolveBinaries({ binDir: env.CODEMATE_BIN_DIR, cacheDir: cacheDir(env) });
// Sessions run the real Claude Code, talking to the sandbox's model server.
const claude = await resolveClaudeCode({ claudeBin: env.CODEMATE_CLAUDE_BIN, cacheDir: cacheDir(env) });
const stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-'));
const repos = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-repos-'));
const secret = randomBytes(32).toString('hex');
const github = await startGitHubStub();
try {
  // Part 1 on the bare control plane, then the same sandbox brought up with its workloads for part 2.
  const bare = await sandboxUp({ stateDir, bins, workloads: false });
  const kube = Kube.load({ kubeconfig: bare.paths.kubeconfig });
  const ack = await ackPart(kube, bare.paths, secret);

  await localOrigin(repos);
  // Read by the operator (GitHub) and the pod runtime (clone URL) that sandboxUp starts next.
  process.env.GITHUB_API_URL = github.url;
  process.env.CODEMATE_SANDBOX_GIT_REWRITE = `https://github.com/=file://${repos}/`;
  const full = await sandboxUp({ stateDir, bins, workloads: true, sessions: { claude } });
  const pane = { deliveries: options.deliveries, ...(await panePart(kube, full, secret, stateDir)) };
  pane.eyesReactions = github.reactions();

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    ack,
    pane,
  };
  await writeResults('webhook', results);
} finally {
  await sandboxDown(stateDir);
  await github.close();
  await rm(stateDir, { recursive: true, force: true });
  await rm(repos, { recursive: true, force: true });
}
