import { execFile } from 'node:child_process';
import net from 'node:net';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CodeMate } from '../../src/api/codemate.js';
import { Kube, type KubeObject } from '../../src/clients/kube.js';
import { runCli } from './cli.js';
import { eventually } from './cluster.js';
import { FakeGitHub } from './fakeGitHub.js';
import { secretObject } from './operator.js';
import { makeOrigin } from './session.js';

const run = promisify(execFile);

/** The session's tmux pane, read the way a user would: `kubectl exec <pod> -- tmux capture-pane`. */
export async function sessionPane(options: {
  binDir: string;
  kubeconfig: string;
  namespace: string;
  pod: string;
  lines?: number;
}): Promise<string> {
  const { stdout } = await run(path.join(options.binDir, 'kubectl'), [
    '--kubeconfig',
    options.kubeconfig,
    '-n',
    options.namespace,
    'exec',
    options.pod,
    '--',
    'tmux',
    'capture-pane',
    '-p',
    '-J',
    '-t',
    'claude-code',
    '-S',
    `-${options.lines ?? 500}`,
  ]);
  return stdout;
}

/** Runs a bash script in a session pod of `namespace` through `kubectl exec`; resolves with stdout. */
export function podShell(binDir: string, kubeconfig: string, namespace: string) {
  return async (pod: string, script: string): Promise<string> =>
    (
      await run(path.join(binDir, 'kubectl'), [
        '--kubeconfig',
        kubeconfig,
        '-n',
        namespace,
        'exec',
        pod,
        '--',
        'bash',
        '-c',
        script,
      ])
    ).stdout;
}

/** The name of a CodeMate's session pod, from its status. */
export async function sessionPod(kube: Kube, namespace: string, codemate: string): Promise<string> {
  const cm = await kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', codemate, namespace);
  if (!cm.status?.podName) throw new Error(`CodeMate ${namespace}/${codemate} has no pod in its status`);
  return cm.status.podName;
}

export interface GitHubSandbox {
  gh: FakeGitHub;
  stateDir: string;
  kube: Kube;
  /** What `eval "$(codemate dev up)"` exports: KUBECONFIG, CODEMATE_WEBHOOK_URL, GITHUB_WEBHOOK_SECRET_FILE. */
  env: Record<string, string>;
  /** The directory that holds the git origin o/r.git, which the sessions clone. */
  repos: string;
  /**
   * Another open pull request on o/r, #number with head `branch`, in the fake GitHub and in the git
   * origin the sessions clone (refs/pull/<number>/head, at #7's head), so a session can check it out.
   */
  addPull(number: number, branch?: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A sandbox whose operator talks to a fake GitHub holding pull request o/r#7 (head `feature`), whose
 * session token belongs to `session`, and whose sessions clone o/r from a local repository.
 */
export async function startGitHubSandbox(
  binDir: string,
  session: { login: string; id: number },
  /**
   * More environment for `dev up`, e.g. the operator's CODEMATE_MESSAGE_RETENTION; or a function that
   * makes it from the started fake GitHub and the directory of the git origins (e.g. to serve them over
   * the fake's git HTTP).
   */
  extraEnv:
    Record<string, string> | ((gh: FakeGitHub, repos: string) => Promise<Record<string, string>>) = {},
  /** More arguments for `dev up`, e.g. `--no-operator` or `--runtime containerd --images`. */
  upArgs: string[] = [],
): Promise<GitHubSandbox> {
  const gh = new FakeGitHub();
  await gh.start();
  gh.addToken('ghp-session-token', session);
  gh.addPull('o', 'r', 7, 'feature');
  // The CodeMates name github.com/o/r (which the poller needs); git in the session clones a local copy.
  const repos = await mkdtemp(path.join(os.tmpdir(), 'cm-repos-'));
  const origin = await makeOrigin(repos);
  await mkdir(path.join(repos, 'o'));
  await rename(origin, path.join(repos, 'o', 'r.git'));
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cm-gh-'));
  const up = await runCli(['dev', 'up', '--state-dir', stateDir, ...upArgs], {
    env: {
      CODEMATE_BIN_DIR: binDir,
      GITHUB_API_URL: gh.url,
      CODEMATE_SANDBOX_GIT_REWRITE: `https://github.com/=file://${repos}/`,
      // Every poll writes status.lastMonitorCheck: the tests tell a poll by it.
      CODEMATE_MONITOR_REPORT_SECONDS: '0',
      ...(typeof extraEnv === 'function' ? await extraEnv(gh, repos) : extraEnv),
    },
    // The real node's first start builds the images: minutes, not seconds.
    timeoutMs: 900_000,
  });
  if (up.code !== 0) {
    // What did start must not outlive the test: one containerd sandbox runs per host.
    await runCli(['dev', 'down', '--purge', '--state-dir', stateDir], { env: { CODEMATE_BIN_DIR: binDir } });
    await gh.stop();
    await rm(repos, { recursive: true, force: true });
    throw new Error(`codemate dev up failed: ${up.stderr}`);
  }
  const env = Object.fromEntries(
    [...up.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  return {
    gh,
    stateDir,
    kube: Kube.load({ kubeconfig: path.join(stateDir, 'kubeconfig') }),
    env,
    repos,
    addPull: async (number, branch = `pr-${number}`) => {
      gh.addPull('o', 'r', number, branch);
      const origin = path.join(repos, 'o', 'r.git');
      await run('git', ['-C', origin, 'update-ref', `refs/pull/${number}/head`, 'refs/pull/7/head']);
    },
    stop: async () => {
      await runCli(['dev', 'down', '--purge', '--state-dir', stateDir], {
        env: { CODEMATE_BIN_DIR: binDir },
      });
      await gh.stop();
      await rm(repos, { recursive: true, force: true });
    },
  };
}

/**
 * Forwards TCP connections to `host`'s ephemeral port onto 127.0.0.1:`port`, so that pods, which cannot
 * reach the host's loopback, reach a test server there (e.g. the fake GitHub) at the node's address.
 */
export async function forwardToLoopback(
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A namespace for a test's CodeMates, with the secrets they name (github-token, anthropic-key). */
export async function sessionNamespace(kube: Kube, namespace: string, githubToken: string): Promise<void> {
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: githubToken }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
}

/**
 * Waits until a CodeMate's session has ended its turns and says so on the pull request: status.session
 * idle, the turns counted, and its last `codemate/session` commit status idle. From then on, an idle
 * session writes nothing to GitHub, so a test can count what else is charged.
 */
export async function sessionSettled(kube: Kube, gh: FakeGitHub, namespace: string, name: string) {
  await eventually(
    () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace),
    (cm) => {
      const last = gh.statuses
        .filter((st) => st.context === 'codemate/session' && st.sha === cm.status?.pullRequest?.headSha)
        .at(-1);
      return (
        cm.status?.session?.state === 'idle' &&
        (cm.status.usage?.turns ?? 0) >= 1 &&
        !!last?.description?.startsWith('idle')
      );
    },
    { what: `the session of ${name} idle on its pull request`, timeoutMs: 60_000 },
  );
}
