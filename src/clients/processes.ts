import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

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

/**
 * When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat). With the pid it names
 * one process for good: a pid that is reused later has another start time.
 */
export function startTicksOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start at field 3, the state.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and is still the process that started at `startTicks`. */
export function isSameProcess(pid: number, startTicks: string): boolean {
  return isAlive(pid) && startTicksOf(pid) === startTicks;
}

/**
 * Live processes whose initial environment has `name` set to a value that `accept` takes, with that
 * value. Every process a session starts inherits its environment, tmux servers and their panes included,
 * so this finds them even after they left the session's process group.
 */
export function processesWithEnv(
  name: string,
  accept: (value: string) => boolean,
): Array<{ pid: number; value: string }> {
  const prefix = `${name}=`;
  const found: Array<{ pid: number; value: string }> = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    const item = environ.split('\0').find((e) => e.startsWith(prefix));
    if (item === undefined) continue;
    const value = Buffer.from(item.slice(prefix.length), 'latin1').toString('utf8');
    if (accept(value) && isAlive(pid)) found.push({ pid, value });
  }
  return found;
}

/** Live (not zombie) processes in process group `pgid`. */
export function liveGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(pid);
    } catch {
      /* gone meanwhile */
    }
  }
  return members;
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
/**
 * What a pid file's process must be to count as the one it records: started from `command` (argv[0]),
 * or, for a `script` run by Node, any `node` running that script, since a sandbox started by a pinned
 * Node is stopped as well by another (the system's).
 */
export interface ProcessIdentity {
  command: string;
  script?: string;
}

function isProcess(pid: number, expected: ProcessIdentity): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  if (!expected.script) return argv[0] === expected.command;
  return path.basename(argv[0] ?? '') === 'node' && argv[1] === expected.script;
}

export async function inspectPidFile(file: string, expected: ProcessIdentity): Promise<PidState> {
  const pid = await readPidFile(file);
  if (pid === undefined) return { kind: 'none' };
  if (isAlive(pid) && isProcess(pid, expected)) return { kind: 'running', pid };
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
