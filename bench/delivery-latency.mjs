#!/usr/bin/env node
// Benchmark: delivery latency, from CodeMateMessage create to the session's acknowledgement (the text is
// in the pane and Claude's UserPromptSubmit hook saw it), p50 and p99 over N messages sent one after
// another. Baseline in the same run: the same text through one direct exec of codemate-inject, which is
// what the message path costs without its apiserver write and watch event.
// Usage: npm run build && node bench/delivery-latency.mjs [--messages 200]
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { execInPod } from '../dist/clients/exec.js';
import { Kube } from '../dist/clients/kube.js';
import { cacheDir, readEnv } from '../dist/config/index.js';
import { resolveBinaries } from '../dist/sandbox/binaries.js';
import { resolveClaudeCode } from '../dist/sandbox/claudeCode.js';
import { sandboxDown, sandboxUp } from '../dist/sandbox/sandbox.js';
import {
  quantile,
  summary,
  until,
  writeResults,
  namespaceWithSecrets,
  requireProjectNode,
} from './stats.mjs';

requireProjectNode();

const run = promisify(execFile);
const i = process.argv.indexOf('--messages');
const n = i > 0 ? Number(process.argv[i + 1]) : 200;
const ns = 'bench';

const env = readEnv();
const bins = await resolveBinaries({ binDir: env.CODEMATE_BIN_DIR, cacheDir: cacheDir(env) });
// Sessions run the real Claude Code, talking to the sandbox's model server.
const claude = await resolveClaudeCode({ claudeBin: env.CODEMATE_CLAUDE_BIN, cacheDir: cacheDir(env) });
const stateDir = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-'));
const repo = await mkdtemp(path.join(os.tmpdir(), 'codemate-bench-repo-'));
await run('git', ['init', '-q', '-b', 'main', repo]);
await run('git', [
  '-C',
  repo,
  '-c',
  'user.name=b',
  '-c',
  'user.email=b@b',
  'commit',
  '-q',
  '--allow-empty',
  '-m',
  'init',
]);

try {
  const { paths } = await sandboxUp({ stateDir, bins, sessions: { claude } });
  const kube = Kube.load({ kubeconfig: paths.kubeconfig });
  await namespaceWithSecrets(kube, ns);
  const cm = await kube.create({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name: 'bench', namespace: ns },
    spec: {
      repository: { url: `file://${repo}`, branch: 'main' },
      github: { tokenSecretRef: { name: 'github-token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic-key' } },
      monitoring: { enabled: false },
    },
  });
  const running = await until(async () => {
    const c = await kube.get('codemate.io/v1alpha1', 'CodeMate', 'bench', ns);
    return c.status?.phase === 'Running' && c.status;
  }, 'session running');
  const pod = running.podName;
  // kwok reports the pod Ready before the local runtime has the session up; ask the session itself.
  await until(
    async () =>
      (await execInPod(kube, ns, pod, ['codemate-ready'], { container: 'session', timeoutMs: 10_000 }))
        .exitCode === 0,
    'session ready',
  );

  const direct = [];
  for (let k = 0; k < n; k++) {
    const text = `Message from bench via codemate inject:\n\ndirect ${k}`;
    const t0 = performance.now();
    const r = await execInPod(
      kube,
      ns,
      pod,
      ['codemate-inject', '--bytes', String(Buffer.byteLength(text)), `direct-${k}`],
      {
        container: 'session',
        stdin: text,
        timeoutMs: 60_000,
      },
    );
    if (r.exitCode !== 0) throw new Error(`direct inject ${k} exited ${r.exitCode}: ${r.stderr}`);
    direct.push(performance.now() - t0);
  }

  const viaMessage = [];
  for (let k = 0; k < n; k++) {
    const name = `bench-cli-${k}`;
    const t0 = performance.now();
    await kube.create({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMateMessage',
      metadata: {
        name,
        namespace: ns,
        ownerReferences: [
          { apiVersion: 'codemate.io/v1alpha1', kind: 'CodeMate', name: 'bench', uid: cm.metadata.uid },
        ],
      },
      spec: { codemate: 'bench', source: { type: 'cli', author: 'bench' }, body: `message ${k}` },
    });
    await until(
      async () =>
        (await kube.get('codemate.io/v1alpha1', 'CodeMateMessage', name, ns)).status?.phase === 'Delivered',
      name,
    );
    viaMessage.push(performance.now() - t0);
  }
  const results = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    directExec: summary(direct),
    viaCodeMateMessage: summary(viaMessage),
    ratioP50: +(quantile(viaMessage, 0.5) / quantile(direct, 0.5)).toFixed(2),
  };
  await writeResults('delivery-latency', results);
} finally {
  await sandboxDown(stateDir);
  await rm(stateDir, { recursive: true, force: true });
  await rm(repo, { recursive: true, force: true });
}
