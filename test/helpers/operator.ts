import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { inject } from 'vitest';
import path from 'node:path';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { writeServiceAccountKubeconfig } from '../../src/sandbox/identities.js';
import { freePort } from '../../src/clients/ports.js';
import { cliPath, repoRoot } from './cli.js';

/**
 * Applies a server's manifest (without its workloads) and returns a kubeconfig that authenticates as its
 * ServiceAccount, so a missing RBAC rule fails the test instead of hiding behind admin rights. The same
 * code runs the sandbox's operator and webhook.
 */
export async function serviceAccountKubeconfig(
  admin: Kube,
  manifest: string,
  serviceAccount: string,
): Promise<string> {
  // Inside the run's sandbox directory, which the harness removes at the end.
  const parent = path.join(inject('sandboxStateDir'), 'test-kubeconfigs');
  await mkdir(parent, { recursive: true });
  const file = path.join(await mkdtemp(path.join(parent, `${serviceAccount}-`)), 'kubeconfig');
  await writeServiceAccountKubeconfig(admin, {
    manifest: path.join(repoRoot, 'manifests', manifest),
    serviceAccount,
    file,
    fieldManager: 'codemate-tests',
  });
  return file;
}

/** A kubeconfig for the same apiserver and CA that authenticates with a bearer token. */
export async function writeTokenKubeconfig(
  kube: Kube,
  token: string,
  file: string,
  namespace?: string,
): Promise<void> {
  await writeFile(file, kube.tokenKubeconfig(token, namespace), { mode: 0o600 });
}

/** The operator's manifest applied; a kubeconfig as its ServiceAccount. */
export const operatorKubeconfig = (admin: Kube) =>
  serviceAccountKubeconfig(admin, 'operator.yaml', 'codemate-operator');

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  logs(): string;
  /** Parsed JSON log lines. */
  records(): Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the built CLI's `codemate operator` as a child process. */
export async function startOperator(options: {
  kubeconfig: string;
  namespace: string;
  leaseName?: string;
  leaderElect?: boolean;
  extraArgs?: string[];
}): Promise<OperatorProcess> {
  const healthPort = await freePort();
  const args = [
    cliPath,
    'operator',
    `--kubeconfig=${options.kubeconfig}`,
    `--watch-namespace=${options.namespace}`,
    `--health-port=${healthPort}`,
    '--session-image=codemate-session:test',
    `--lease-name=${options.leaseName ?? `op-${options.namespace}`}`,
    '--resync-seconds=30',
    ...(options.leaderElect === false ? ['--no-leader-elect'] : []),
    ...(options.extraArgs ?? []),
  ];
  return { ...spawnServer(args, { POD_NAME: '' }, healthPort), healthPort };
}

export type OperatorProcess = ServerProcess & { healthPort: number };

/** Runs the built CLI as a long-lived server process whose JSON logs the test can read. */
export function spawnServer(args: string[], env: NodeJS.ProcessEnv, port: number): ServerProcess {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    port,
    logs: () => output,
    records: () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

export function codemateObject(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace },
    spec: {
      repository: {
        url: 'https://github.com/example/project.git',
        // A branch of its own: one CodeMate writes to a branch (the others report Conflict).
        branch: `feature/${name}`,
        pullRequest: 123,
      },
      github: {
        tokenSecretRef: { name: 'github-token' },
        user: { name: 'Claude Code', email: 'claude@example.com' },
      },
      anthropic: { apiKeySecretRef: { name: 'anthropic-key' } },
      ...spec,
    },
  };
}

export function secretObject(namespace: string, name: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    stringData: data,
  };
}
