/**
 * One pod's process on the host (a session, or one of CodeMate's servers from the project's image; the
 * names here say "session" for both), made to outlive the pod runtime that started it, as containers
 * outlive a kubelet restart. Nothing the session needs goes through the runtime's own process:
 *
 * - the entrypoint runs under a small shell that records its exit code in a file;
 * - its stdout and stderr go to files, which the runtime copies into the pod's CRI log from a persisted
 *   offset;
 * - a record (pod.json) names the pod, the process and its start time.
 *
 * A runtime that starts again reads the records and adopts what still runs, or learns from the exit file
 * how it ended. Every process of a session carries CODEMATE_LOCAL_POD in its environment (tmux servers and
 * their panes too), so that stopping a session, or cleaning up one that has no record, leaves no orphan.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, watch, type FSWatcher } from 'node:fs';
import { appendFile, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isSameProcess, liveGroupMembers, processesWithEnv, startTicksOf } from '../clients/processes.js';

/** Set in every session process: the pod's directory. */
export const podMarkerEnv = 'CODEMATE_LOCAL_POD';

/**
 * Runs the entrypoint and records how it ended. The trap keeps this shell alive until the entrypoint has
 * handled the same signal (the runtime signals the whole process group), so the exit code is recorded
 * then too.
 */
const exitRecorder = [
  'exit_file=$1',
  'shift',
  "trap ':' TERM INT",
  '"$@"',
  'code=$?',
  'printf \'%s\\n\' "$code" >"$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"',
  'exit "$code"',
].join('\n');

export interface PodDirs {
  base: string;
  workspace: string;
  home: string;
  tmux: string;
  /** The CRI log that kwok's Logs and Attach read. */
  log: string;
  stdout: string;
  stderr: string;
  offsets: string;
  exit: string;
  record: string;
}

export function podDirs(base: string, workspace = path.join(base, 'ws')): PodDirs {
  return {
    base,
    workspace,
    home: path.join(base, 'home'),
    tmux: path.join(base, 't'),
    log: path.join(base, 'session.log'),
    stdout: path.join(base, 'stdout'),
    stderr: path.join(base, 'stderr'),
    offsets: path.join(base, 'log-offsets.json'),
    exit: path.join(base, 'exit-code'),
    record: path.join(base, 'pod.json'),
  };
}

/** What pod.json holds. No secrets: the pod's resolved environment stays in the process only. */
export interface SessionRecord {
  namespace: string;
  name: string;
  uid: string;
  workspace: string;
  /** The exit recorder's pid, which is also the session's process group. */
  pid: number;
  startTicks: string;
  startedAt: string;
  /** The session-specific environment: HOME, TMUX_TMPDIR, CODEMATE_*; what exec, probes and tmux need. */
  sessionEnv: Record<string, string>;
  /** The host port that stands for each container port (by number), for probes and port-forward. */
  ports?: Record<string, number>;
}

/** A line of a container runtime (CRI) log, the format kwok's Logs reads. */
export function criLine(stream: 'stdout' | 'stderr', line: string, now = new Date()): string {
  return `${now.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')} ${stream} F ${line}\n`;
}

/** A line longer than this is written out even without its newline, as a kubelet splits long lines. */
const maxLineBytes = 64 * 1024;

/**
 * Copies the session's stdout and stderr files into its CRI log. The offsets file says how far each has
 * been copied, so a runtime that starts again continues where the last one stopped. A crash between the
 * two writes repeats at most one batch of lines; none is lost.
 */
class LogCopier {
  private offsets = { stdout: 0, stderr: 0 };
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dirs: PodDirs) {}

  async start(): Promise<void> {
    const saved = await readFile(this.dirs.offsets, 'utf8').catch(() => undefined);
    try {
      if (saved) this.offsets = { ...this.offsets, ...(JSON.parse(saved) as typeof this.offsets) };
    } catch {
      // A torn offsets file: copying again from the start repeats lines but loses none.
    }
    for (const file of [this.dirs.stdout, this.dirs.stderr]) {
      try {
        this.watchers.push(watch(file, () => void this.copy()));
      } catch {
        /* polled below */
      }
    }
    // inotify misses nothing on a local disk, but a timer costs little and covers every other case.
    this.timer = setInterval(() => void this.copy(), 1000);
    this.timer.unref();
    await this.copy();
  }

  /** Stops copying; resolves once no copy is under way, after which nothing writes the log. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearInterval(this.timer);
    await this.running;
  }

  /** Copies what is new; concurrent calls fold into one more pass. */
  copy(final = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass(final).catch(() => {});
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(final: boolean): Promise<void> {
    let out = '';
    const next = { ...this.offsets };
    for (const stream of ['stdout', 'stderr'] as const) {
      const handle = await open(this.dirs[stream], 'r').catch(() => undefined);
      if (!handle) continue;
      try {
        const { size } = await handle.stat();
        if (size <= next[stream]) continue;
        const buffer = Buffer.alloc(Math.min(size - next[stream], 4 * 1024 * 1024));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, next[stream]);
        const chunk = buffer.subarray(0, bytesRead);
        // Whole lines only, unless the line is long or the process is gone.
        let end = chunk.lastIndexOf(0x0a) + 1;
        if (end === 0 && (final || chunk.length >= maxLineBytes)) end = chunk.length;
        if (end === 0) continue;
        const now = new Date();
        for (const line of chunk.subarray(0, end).toString('utf8').replace(/\n$/, '').split('\n'))
          out += criLine(stream, line, now);
        next[stream] += end;
      } finally {
        await handle.close();
      }
    }
    if (!out) return;
    await appendFile(this.dirs.log, out);
    this.offsets = next;
    await writeAtomically(this.dirs.offsets, JSON.stringify(next));
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

export interface SessionExit {
  exitCode: number;
  /** The last line the entrypoint wrote on stderr: a kubelet's termination message. */
  message: string;
  finishedAt: string;
}

/**
 * A running (or ended) session process: started here, or adopted from an earlier runtime. `exited`
 * settles once the process is gone, with how it ended.
 */
export class SessionProcess {
  readonly exited: Promise<SessionExit>;
  private readonly logs: LogCopier;
  private readonly logsStarted: Promise<void>;
  private stopping = false;
  private exitTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly record: SessionRecord,
    readonly dirs: PodDirs,
    child: ChildProcess | undefined,
  ) {
    this.logs = new LogCopier(dirs);
    this.logsStarted = this.logs.start();
    this.exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      if (child) {
        child.on('exit', (code, signal) => resolve({ code, signal }));
        return;
      }
      // Not our child: no exit event, so watch the pid (and its start time, against pid reuse).
      const check = () => {
        if (isSameProcess(record.pid, record.startTicks)) return;
        clearInterval(this.exitTimer);
        resolve({ code: null, signal: null });
      };
      this.exitTimer = setInterval(check, 500);
      check();
    }).then(async ({ code, signal }) => {
      await this.logsStarted.catch(() => {});
      await this.logs.copy(true);
      await this.logs.stop();
      return {
        exitCode: await recordedExitCode(dirs.exit, code, signal),
        message: await lastLine(dirs.stderr).catch(() => ''),
        finishedAt: new Date().toISOString(),
      };
    });
  }

  /** Starts the entrypoint in its own process group, with its output and exit code going to files. */
  static async start(options: {
    dirs: PodDirs;
    pod: { namespace: string; name: string; uid: string };
    script: string;
    args: string[];
    /** The whole environment of the entrypoint. */
    env: NodeJS.ProcessEnv;
    sessionEnv: Record<string, string>;
    ports?: Record<string, number>;
  }): Promise<SessionProcess> {
    const { dirs } = options;
    await rm(dirs.exit, { force: true });
    const stdout = openSync(dirs.stdout, 'a');
    const stderr = openSync(dirs.stderr, 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        'bash',
        ['-c', exitRecorder, 'codemate-pod', dirs.exit, options.script, ...options.args],
        {
          cwd: dirs.workspace,
          env: { ...options.env, [podMarkerEnv]: dirs.base },
          detached: true,
          stdio: ['ignore', stdout, stderr],
        },
      );
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => resolve());
      });
    } finally {
      closeSync(stdout);
      closeSync(stderr);
    }
    const record: SessionRecord = {
      ...options.pod,
      workspace: dirs.workspace,
      pid: child.pid!,
      startTicks: startTicksOf(child.pid!) ?? '',
      startedAt: new Date().toISOString(),
      sessionEnv: { ...options.sessionEnv, [podMarkerEnv]: dirs.base },
      ...(options.ports ? { ports: options.ports } : {}),
    };
    await writeAtomically(dirs.record, JSON.stringify(record, null, 2) + '\n');
    const session = new SessionProcess(record, dirs, child);
    await session.logsStarted;
    return session;
  }

  /** Takes over a session an earlier runtime started, running or not. */
  static async adopt(record: SessionRecord, dirs: PodDirs): Promise<SessionProcess> {
    const session = new SessionProcess(record, dirs, undefined);
    await session.logsStarted;
    return session;
  }

  /** Whether the process still runs (an adopted one is checked against its start time). */
  get running(): boolean {
    return isSameProcess(this.record.pid, this.record.startTicks);
  }

  /** The environment for commands run in the session: probes, exec, tmux. */
  commandEnv(): NodeJS.ProcessEnv {
    return { ...this.record.sessionEnv, PATH: this.record.sessionEnv.PATH ?? process.env.PATH };
  }

  /**
   * Stops the session: SIGTERM to its process group, SIGKILL after 10 s; then its tmux server, then any
   * process still carrying its marker. Removes its directory.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    // First the record: a runtime that dies during the stop must not take the stopped session for one
    // that exited by itself. A directory without a record is cleaned up by the next runtime.
    await rm(this.dirs.record, { force: true });
    await stopSessionProcesses(this.dirs.base, this.record.pid, this.commandEnv());
    // The process is gone, so this settles (within the exit poll) once the last output is copied.
    await Promise.race([this.exited, pause(5000)]);
    await this.logs.stop();
    await rm(this.dirs.base, { recursive: true, force: true, maxRetries: 5 });
  }

  /**
   * After the entrypoint has exited: what it left behind (its tmux server, say) goes too, as a
   * container's processes go with its cgroup. The directory stays for the logs.
   */
  async killLeftovers(): Promise<void> {
    await stopSessionProcesses(this.dirs.base, this.record.pid, this.commandEnv(), 2000);
  }

  get isStopping(): boolean {
    return this.stopping;
  }
}

async function recordedExitCode(file: string, code: number | null, signal: string | null): Promise<number> {
  const text = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (code !== null) return code;
  // Killed before it could record anything (SIGKILL), or by a signal we were told about.
  return signal === 'SIGTERM' ? 143 : 137;
}

async function lastLine(file: string): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 8192);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return lines.at(-1) ?? '';
  } finally {
    await handle.close();
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
}

/** The processes of the session whose directory is `base`, wherever they are in the process tree. */
export function sessionProcesses(base: string): number[] {
  return processesWithEnv(podMarkerEnv, (value) => value === base).map((p) => p.pid);
}

/**
 * Stops everything a session runs: its process group (SIGTERM, then SIGKILL after `graceMs`), its tmux
 * server, and whatever else still carries its marker.
 */
export async function stopSessionProcesses(
  base: string,
  pgid: number | undefined,
  env: NodeJS.ProcessEnv,
  graceMs = 10_000,
): Promise<void> {
  // A recorded pid may be reused once the session is gone: signal the group only while it holds a
  // process of this session.
  const groupAlive = () => {
    if (pgid === undefined) return false;
    const ours = new Set(sessionProcesses(base));
    return liveGroupMembers(pgid).some((pid) => ours.has(pid));
  };
  if (groupAlive()) {
    signalGroup(pgid!, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (groupAlive() && Date.now() < deadline) await pause(100);
    if (groupAlive()) signalGroup(pgid!, 'SIGKILL');
  }
  // The tmux server left the process group when it daemonized; stop it through its socket.
  await new Promise<void>((resolve) => {
    const tmux = spawn('tmux', ['kill-server'], { env, stdio: 'ignore' });
    const timer = setTimeout(() => tmux.kill('SIGKILL'), 5000);
    tmux.on('error', () => resolve());
    tmux.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  for (let attempt = 0; attempt < 50; attempt++) {
    const left = sessionProcesses(base);
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, attempt < 10 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await pause(100);
  }
}

/** The pod directories under `dir` with their records; a directory without a readable record has none. */
export async function readRecords(
  dir: string,
): Promise<Array<{ base: string; record: SessionRecord | undefined }>> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: Array<{ base: string; record: SessionRecord | undefined }> = [];
  for (const entry of entries) {
    // Pod directories are named by the first 13 characters of the pod's uid.
    if (!entry.isDirectory() || !/^[0-9a-f]{8}-[0-9a-f]{4}$/.test(entry.name)) continue;
    const base = path.join(dir, entry.name);
    const text = await readFile(path.join(base, 'pod.json'), 'utf8').catch(() => undefined);
    let record: SessionRecord | undefined;
    try {
      record = text ? (JSON.parse(text) as SessionRecord) : undefined;
    } catch {
      record = undefined;
    }
    found.push({ base, record });
  }
  return found;
}

export async function ensureDirs(dirs: PodDirs): Promise<void> {
  for (const d of [dirs.workspace, dirs.home, dirs.tmux]) await mkdir(d, { recursive: true });
}
