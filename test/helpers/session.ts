import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { resolveClaudeCode } from '../../src/sandbox/claudeCode.js';
import { startModelServer, type ModelServer } from '../../src/sandbox/modelServer.js';
import { eventually } from './cluster.js';
import { repoRoot } from './cli.js';
import { promptsReceived } from './model.js';

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
  /** The local model server the real Claude Code talks to. */
  model: ModelServer | undefined;
  /** Claude's session id (CODEMATE_SESSION_ID), which names `<pasted_content id>`. */
  sessionId: string;
  output(): string;
  exited: Promise<number | null>;
  tmux(...args: string[]): Promise<string>;
  inject(
    id: string,
    body: string | Buffer,
    options?: { args?: string[]; env?: NodeJS.ProcessEnv },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The prompts that reached the model, in order (promptsReceived of the model server's log). */
  prompts(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface SessionOptions {
  /** A model server of the test's own; by default each session starts one, and stops it with itself. */
  model?: ModelServer;
}

/** A key in Anthropic's format for the local model server, which accepts any. */
export const testApiKey = 'sk-ant-api03-codemate-local-test-key-0123456789abcdef';

let claudeBin: Promise<string> | undefined;
/** The pinned Claude Code from the cache (installed on first use), or CODEMATE_CLAUDE_BIN. */
export function claudeCode(): Promise<string> {
  claudeBin ??= (async () => {
    const env = readEnv();
    return resolveClaudeCode({ cacheDir: cacheDir(env), claudeBin: env.CODEMATE_CLAUDE_BIN });
  })();
  return claudeBin;
}

/** A fresh directory whose path stays short: tmux socket paths are limited to about 100 bytes. */
export async function sessionRoot(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'cms-'));
}

/**
 * Runs the real entrypoint against `env`, with its own HOME, workspace and tmux socket, and the real
 * Claude Code pointed at a local model server.
 */
export async function startSession(
  root: string,
  env: NodeJS.ProcessEnv,
  options: SessionOptions = {},
): Promise<Session> {
  const workspace = path.join(root, 'ws');
  const home = path.join(root, 'home');
  const tmuxDir = path.join(root, 't');
  for (const dir of [workspace, home, tmuxDir]) await mkdir(dir, { recursive: true });
  const model = options.model ?? (await startModelServer());
  const claude: NodeJS.ProcessEnv = {
    PATH: `${path.dirname(await claudeCode())}:${process.env.PATH}`,
    ANTHROPIC_API_KEY: testApiKey,
    ANTHROPIC_BASE_URL: model.url,
    DISABLE_TELEMETRY: '1',
  };
  const sessionEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    TMUX_TMPDIR: tmuxDir,
    CODEMATE_WORKSPACE: workspace,
    CODEMATE_PLUGINS_DIR: path.join(repoRoot, 'plugins'),
    CODEMATE_SESSION_ID: randomUUID(),
    ...claude,
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
    model,
    sessionId: sessionEnv.CODEMATE_SESSION_ID!,
    output: () => output,
    exited,
    tmux,
    inject: (id, body, options = {}) =>
      new Promise((resolve, reject) => {
        const p = spawn(path.join(scripts, 'codemate-inject'), [...(options.args ?? []), id], {
          env: { ...sessionEnv, ...options.env },
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
        // An inject that refuses its arguments exits before it reads: EPIPE is its answer, not an error.
        p.stdin.on('error', () => undefined);
        p.stdin.end(body);
      }),
    prompts: async () => promptsReceived(model.requests),
    stop: async () => {
      const panes = await tmux('list-panes', '-a', '-F', '#{pane_pid}').catch(() => '');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await run('tmux', ['kill-server'], { env: sessionEnv }).catch(() => undefined);
      // Claude still writes its files as it exits; the test's cleanup must not race it.
      for (const pid of panes.split('\n').filter(Boolean).map(Number)) {
        await eventually(
          async () => {
            try {
              process.kill(pid, 0);
              return false;
            } catch {
              return true;
            }
          },
          (gone) => gone,
          { what: `process ${pid} of the session gone`, intervalMs: 50, timeoutMs: 10_000 },
        );
      }
      if (model && !options.model) await model.close();
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

/** Waits until the turn that the last submit started has ended (the Stop hook). */
export async function turnEnded(session: Session): Promise<void> {
  await eventually(
    () => readFile(path.join(session.stateDir, 'session-state'), 'utf8'),
    (state) => state.trim() === 'idle',
    { what: 'the turn ended', intervalMs: 50 },
  );
}

/** The prompts that reached the model after the first `before`, once `count` of them have and the turn ended. */
export async function promptsSince(session: Session, before: number, count: number): Promise<string[]> {
  await eventually(
    () => session.prompts(),
    (p) => p.length >= before + count,
    { what: `${count} prompt(s) at the model`, intervalMs: 50, timeoutMs: 30_000 },
  );
  await turnEnded(session);
  return (await session.prompts()).slice(before);
}

export async function cleanup(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
}
