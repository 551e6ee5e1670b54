import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';

/** True when `pid` is a live process (zombies count as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The executable a live process was started from (argv[0]), or undefined when it is gone. */
export function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
  } catch {
    return undefined;
  }
}

export interface ProcessSpec {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  pidFile: string;
}

/**
 * Starts a long-lived process in its own process group, detached from ours, with stdout and stderr
 * appended to its log file, and records its pid. The caller may exit; the process lives on.
 */
export async function startDetached(spec: ProcessSpec): Promise<number> {
  const log = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    await writeFile(spec.pidFile, `${pid}\n`);
    return pid;
  } finally {
    closeSync(log);
  }
}

export async function readPidFile(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export type PidState =
  | { kind: 'none' }
  | { kind: 'running'; pid: number }
  /** The pid file names a process that is gone, or that is now some other program. */
  | { kind: 'stale'; pid: number };

/** What a pid file says, checked against the live process table and the expected executable. */
export async function inspectPidFile(file: string, expectedCommand: string): Promise<PidState> {
  const pid = await readPidFile(file);
  if (pid === undefined) return { kind: 'none' };
  if (isAlive(pid) && commandOf(pid) === expectedCommand) return { kind: 'running', pid };
  return { kind: 'stale', pid };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      await waitUntilGone(pid, 5000);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitUntilGone(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

export async function removePidFile(file: string): Promise<void> {
  await rm(file, { force: true });
}
