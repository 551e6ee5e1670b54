import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './cli.js';
import { eventually } from './cluster.js';

const run = promisify(execFile);
export const scripts = path.join(repoRoot, 'setup', 'scripts');

/**
 * A local "origin": a bare repository with main, a feature branch, and a pull-request ref
 * (refs/pull/7/head) the way GitHub serves them.
 */
export async function makeOrigin(root: string): Promise<string> {
  const src = path.join(root, 'src');
  const git = (...args: string[]) => run('git', ['-C', src, ...args]);
  await run('git', ['init', '-q', '-b', 'main', src]);
  await git('config', 'user.email', 'dev@example.com');
  await git('config', 'user.name', 'Dev');
  await git('commit', '-q', '--allow-empty', '-m', 'init');
  await git('checkout', '-q', '-b', 'feature');
  await run('sh', ['-c', `echo feature > ${src}/feature.txt`]);
  await git('add', '.');
  await git('commit', '-q', '-m', 'feature');
  await git('checkout', '-q', '-b', 'pr-head', 'main');
  await run('sh', ['-c', `echo pr > ${src}/pr.txt`]);
  await git('add', '.');
  await git('commit', '-q', '-m', 'pr');
  await git('checkout', '-q', 'main');
  const origin = path.join(root, 'origin.git');
  await run('git', ['clone', '-q', '--bare', src, origin]);
  const prHead = (await git('rev-parse', 'pr-head')).stdout.trim();
  await run('git', ['-C', origin, 'update-ref', 'refs/pull/7/head', prHead]);
  await run('git', ['-C', origin, 'branch', '-q', '-D', 'pr-head']);
  return origin;
}

export interface Session {
  root: string;
  workspace: string;
  stateDir: string;
  repo: string;
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  tmux(...args: string[]): Promise<string>;
  inject(
    id: string,
    body: string | Buffer,
    options?: { args?: string[] },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Prompts the stand-in received, verbatim. */
  prompts(): Promise<string[]>;
  stop(): Promise<void>;
}

/** A fresh directory whose path stays short: tmux socket paths are limited to about 100 bytes. */
export async function sessionRoot(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'cms-'));
}

/** Runs the real entrypoint against `env`, with its own HOME, workspace and tmux socket. */
export async function startSession(root: string, env: NodeJS.ProcessEnv): Promise<Session> {
  const workspace = path.join(root, 'ws');
  const home = path.join(root, 'home');
  const tmuxDir = path.join(root, 't');
  for (const dir of [workspace, home, tmuxDir]) await mkdir(dir, { recursive: true });
  const sessionEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    TMUX_TMPDIR: tmuxDir,
    CODEMATE_WORKSPACE: workspace,
    CODEMATE_PLUGINS_DIR: path.join(repoRoot, 'plugins'),
    CODEMATE_STAND_IN: '1',
    CODEMATE_ENTER_DELAY: '0.1',
    ...env,
  };
  const stateDir = path.join(workspace, '.codemate');
  const child = spawn(path.join(scripts, 'codemate-entrypoint'), [], {
    env: sessionEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const tmux = async (...args: string[]) => (await run('tmux', args, { env: sessionEnv })).stdout;
  const session: Session = {
    root,
    workspace,
    stateDir,
    repo: path.join(workspace, 'repo'),
    env: sessionEnv,
    child,
    output: () => output,
    exited,
    tmux,
    inject: (id, body, options = {}) =>
      new Promise((resolve, reject) => {
        const p = spawn(path.join(scripts, 'codemate-inject'), [...(options.args ?? []), id], {
          env: sessionEnv,
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
        p.stdin.end(body);
      }),
    prompts: async () =>
      (await readFile(path.join(stateDir, 'stand-in-prompts.jsonl'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { prompt: string }).prompt),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await run('tmux', ['kill-server'], { env: sessionEnv }).catch(() => undefined);
    },
  };
  return session;
}

export async function waitUntilReady(session: Session): Promise<void> {
  await eventually(
    () =>
      new Promise<number>((resolve) =>
        spawn(path.join(scripts, 'codemate-ready'), [], { env: session.env }).on('close', (c) =>
          resolve(c ?? -1),
        ),
      ),
    (code) => code === 0,
    { what: `session ready; output:\n${session.output()}`, timeoutMs: 20_000 },
  );
}

export async function cleanup(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
}
