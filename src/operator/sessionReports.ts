/**
 * The session's state and usage, from the session to where people look: one long-lived exec of
 * `codemate-report --watch` per running session tells the operator each change of the hooks' state and,
 * after each turn, the tokens the transcripts hold. This module writes them, coalesced:
 * - status.session (state, since, last message) and status.usage on the CodeMate;
 * - one commit status, `codemate/session`, on the pull request's head; in App mode a check run of that
 *   name instead (GitHub lets only Apps write check runs);
 * - the budget notice, once, when status.usage reaches spec.budget.maxTokens.
 *
 * A write goes at once when something changed and the last write is at least the minimum interval old;
 * otherwise one goes when the interval is over, with the latest state (docs/adr/0017-session-state.md).
 */
import {
  budgetExhausted,
  budgetWords,
  githubAppMode,
  sessionRunning,
  type CodeMate,
  type Usage,
} from '../api/codemate.js';
import { buildMessage, messageName } from '../api/message.js';
import { sessionContainer } from '../api/pod.js';
import { openExec, type ExecStream } from '../clients/exec.js';
import type { CheckRunWrite, GitHub } from '../clients/github.js';
import { isConflict, isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { parseRepository } from '../github/repository.js';
import { reportOpens } from '../config/defaults.js';
import { errorFields, type Logger } from '../observability/log.js';
import { backoffDelay, Spreader } from '../runtime/rate.js';
import { group, plural, version } from '../api/names.js';
import type { GitHubClients } from './githubClients.js';
import {
  checkRunFor,
  checkRunName,
  commitStatusFor,
  parseReportLine,
  sameUsage,
  sessionStateOf,
  usageAfter,
  usageGrowth,
  writeDelayMs,
  type ReportedDay,
  type ReportedUsage,
  type SessionState,
  type ShownState,
} from './sessionReport.js';

export interface SessionReportsOptions {
  kube: Kube;
  logger: Logger;
  github: GitHubClients;
  codemate: (namespace: string, name: string) => CodeMate | undefined;
  /** The least time between two writes for one CodeMate (config: sessionStatusIntervalSeconds). */
  minIntervalMs: number;
  /** Tokens and turns the sessions used since the last call, summed over CodeMates (metrics). */
  onUsage?: (growth: ReturnType<typeof usageGrowth>) => void;
  /** Each write, by target and result (metrics). */
  onWrite?: (target: 'kubernetes' | 'github', result: 'success' | 'error') => void;
  /** Starts the report in a pod; by default one exec of `codemate-report --watch`. */
  openReport?: (namespace: string, pod: string, onStdout: (chunk: Buffer) => void) => Promise<ExecStream>;
}

interface Entry {
  namespace: string;
  name: string;
  stream?: ExecStream | undefined;
  /** The pod the stream reads (or is opening into). */
  pod?: string | undefined;
  /** No stream is opened into the pod again before this time (after a failure). */
  retryAt?: number;
  failures: number;
  state?: ShownState | undefined;
  since?: string;
  usage?: ReportedUsage;
  /** Today's count (UTC), for the daily budget. */
  day?: ReportedDay;
  lastMessage?: string;
  /** A commit status (or check run) GitHub refused: not tried again until the state or the head changes. */
  refusedCommit?: string;
  /**
   * App mode: the check run of the head last written (or found there after a restart), and whether it is
   * completed: a completed one is updated to another conclusion, but a new one is made for working.
   */
  checkRun?: { sha: string; id: number; completed: boolean } | undefined;
  /** What was last written, so that nothing is written twice. */
  written: { state?: string | null; usage?: Usage; commit?: string };
  lastWriteAt?: number;
  timer?: NodeJS.Timeout | undefined;
  writing?: boolean;
}

/**
 * A stream that ends or cannot open is opened again after 1 s, doubling up to 10 minutes: a session
 * image without codemate-report (or a pod that cannot exec) must not cost a thousand execs a minute.
 */
const retryBaseMs = 1000;
const retryMaxMs = 600_000;

export class SessionReports {
  private readonly entries = new Map<string, Entry>();
  private readonly opens = new Spreader(reportOpens.burst, reportOpens.perSecond);
  private stopped = false;

  constructor(private readonly options: SessionReportsOptions) {}

  /** A CodeMate changed (or was deleted): open or close its stream, and write what changed. */
  sync(namespace: string, name: string): void {
    if (this.stopped) return;
    const key = `${namespace}/${name}`;
    const cm = this.options.codemate(namespace, name);
    let entry = this.entries.get(key);
    if (!cm) {
      if (entry) this.forget(key, entry);
      return;
    }
    if (!entry) {
      entry = { namespace, name, failures: 0, written: {} };
      this.entries.set(key, entry);
    }
    const phase = cm.status?.phase;
    const pod = cm.status?.podName;
    if (sessionRunning(phase) && pod) {
      if (entry.pod !== pod) {
        this.close(entry);
        entry.pod = pod;
        entry.failures = 0;
        delete entry.retryAt;
      }
      this.open(key, entry);
    } else {
      this.close(entry);
      entry.pod = undefined;
      const shown: ShownState | undefined =
        phase === 'Suspended' ? 'suspended' : phase === 'Failed' ? 'failed' : undefined;
      if (shown && entry.state !== shown) this.observe(entry, shown);
    }
    this.schedule(key, entry);
  }

  /** A message was delivered: the next write names it. */
  delivered(namespace: string, codemate: string, message: string): void {
    const entry = this.entries.get(`${namespace}/${codemate}`);
    if (entry) entry.lastMessage = message;
  }

  /** Each running session's state, for the metrics. */
  stateCounts(): Record<SessionState, number> {
    const counts: Record<SessionState, number> = { working: 0, idle: 0, blocked: 0 };
    for (const entry of this.entries.values()) {
      if (entry.stream && (entry.state === 'working' || entry.state === 'idle' || entry.state === 'blocked'))
        counts[entry.state]++;
    }
    return counts;
  }

  stop(): void {
    this.stopped = true;
    for (const [key, entry] of this.entries) this.forget(key, entry);
  }

  private forget(key: string, entry: Entry): void {
    this.close(entry);
    clearTimeout(entry.timer);
    this.entries.delete(key);
  }

  private observe(entry: Entry, state: ShownState): void {
    entry.state = state;
    delete entry.refusedCommit;
    entry.since = new Date().toISOString();
  }

  private open(key: string, entry: Entry): void {
    const pod = entry.pod;
    if (!pod || entry.stream || (entry.retryAt !== undefined && Date.now() < entry.retryAt)) return;
    let buffered = '';
    const opening: { stream?: ExecStream } = {};
    entry.stream = undefined;
    const ended = (why: string) => {
      if (entry.stream !== opening.stream || entry.pod !== pod) return;
      entry.stream = undefined;
      entry.failures++;
      const delay = backoffDelay(entry.failures, retryBaseMs, retryMaxMs);
      entry.retryAt = Date.now() + delay;
      this.options.logger.debug({ codemate: key, pod, retryInMs: delay }, `session report ended: ${why}`);
      setTimeout(() => this.sync(entry.namespace, entry.name), delay).unref();
    };
    // Marks the entry as opening, so that a second sync does not open another.
    entry.retryAt = Number.MAX_SAFE_INTEGER;
    const onStdout = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      let changed = false;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        changed = this.read(entry, buffered.slice(0, nl)) || changed;
        buffered = buffered.slice(nl + 1);
      }
      if (changed) this.schedule(key, entry);
    };
    const start =
      this.options.openReport ??
      ((namespace: string, target: string, out: (chunk: Buffer) => void) =>
        openExec(this.options.kube, namespace, target, ['codemate-report', '--watch'], {
          container: sessionContainer,
          onStdout: out,
          onStderr: () => undefined,
        }));
    const begin = () => {
      // Another pod, a forgotten CodeMate or a stopped term has its own state by now.
      if (this.stopped || entry.pod !== pod || this.entries.get(key) !== entry) return;
      start(entry.namespace, pod, onStdout).then(
        (stream) => this.opened(key, entry, pod, stream, opening, ended),
        (error: unknown) => {
          opening.stream = undefined;
          entry.stream = undefined;
          ended((error as Error).message);
        },
      );
    };
    // Like the session channels, at a bounded rate: a thousand sessions turning Running at once would
    // otherwise open a thousand execs at once.
    const wait = this.opens.take();
    if (wait === 0) begin();
    else setTimeout(begin, wait).unref();
  }

  private opened(
    key: string,
    entry: Entry,
    pod: string,
    stream: ExecStream,
    opening: { stream?: ExecStream },
    ended: (why: string) => void,
  ): void {
    opening.stream = stream;
    if (this.stopped || entry.pod !== pod || this.entries.get(key) !== entry) {
      stream.stdin.end('\n');
      stream.close();
      return;
    }
    entry.stream = stream;
    delete entry.retryAt;
    void stream.closed.then((code) => ended(`the exec ended (exit code ${code})`));
  }

  /** One line of the report; true when it changed what is shown. */
  private read(entry: Entry, raw: string): boolean {
    const line = parseReportLine(raw);
    if (line.kind === 'ready') entry.failures = 0;
    if (line.kind === 'state') {
      const state = sessionStateOf(line.state);
      if (!state || state === entry.state) return false;
      this.observe(entry, state);
      return true;
    }
    if (line.kind === 'usage') {
      entry.usage = line.usage;
      return true;
    }
    if (line.kind === 'day') {
      entry.day = line.day;
      return true;
    }
    return false;
  }

  private close(entry: Entry): void {
    const stream = entry.stream;
    entry.stream = undefined;
    if (!stream) return;
    // An empty line ends the watch: under kwok, closing the exec does not end the process (adr/0002).
    if (stream.stdin.writable) stream.stdin.end('\n');
    stream.close();
  }

  /** Writes now when the interval allows, else once it is over (with whatever is latest then). */
  private schedule(key: string, entry: Entry): void {
    if (entry.timer || entry.writing || this.stopped) return;
    const delay = writeDelayMs(entry.lastWriteAt, Date.now(), this.options.minIntervalMs);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      void this.publish(key, entry);
    }, delay);
    entry.timer.unref();
  }

  private async publish(key: string, entry: Entry): Promise<void> {
    const cm = this.options.codemate(entry.namespace, entry.name);
    if (!cm || this.entries.get(key) !== entry) return;
    entry.writing = true;
    let wrote = false;
    try {
      wrote = (await this.writeStatus(cm, entry)) || wrote;
      wrote = (await this.writeGitHubState(cm, entry)) || wrote;
    } finally {
      entry.writing = false;
      if (wrote) entry.lastWriteAt = Date.now();
    }
    // What changed while the writes ran goes after the interval.
    if (wrote && this.pending(cm, entry)) this.schedule(key, entry);
  }

  /** Whether something is still unwritten (a commit status GitHub refused waits for the next change). */
  private pending(cm: CodeMate, entry: Entry): boolean {
    const session = this.sessionFields(entry);
    if (session && session.state !== this.recordedState(cm, entry)) return true;
    const commit = this.commitKey(cm, entry);
    if (commit && commit !== entry.written.commit && commit !== entry.refusedCommit) return true;
    const before = this.recordedUsage(cm, entry);
    return !!entry.usage && !sameUsage(usageAfter(before, entry.usage, new Date(), entry.day), before);
  }

  /** The state last written, or recorded in the status (by this operator before a restart). */
  private recordedState(cm: CodeMate, entry: Entry): string | null | undefined {
    if (entry.written.state !== undefined) return entry.written.state;
    return cm.status?.session ? (cm.status.session.state ?? null) : undefined;
  }

  private recordedUsage(cm: CodeMate, entry: Entry): Usage | undefined {
    return entry.written.usage ?? cm.status?.usage;
  }

  /** status.session: only a running session has a state; the last message stays. */
  private sessionFields(
    entry: Entry,
  ): { state: SessionState | null; since: string | null; lastMessage?: string } | undefined {
    if (!entry.state) return undefined;
    const running = entry.state === 'working' || entry.state === 'idle' || entry.state === 'blocked';
    return {
      state: running ? (entry.state as SessionState) : null,
      since: running ? (entry.since ?? null) : null,
      ...(entry.lastMessage ? { lastMessage: entry.lastMessage } : {}),
    };
  }

  /**
   * status.session and status.usage, in one patch, when the state or the counts changed. The last message
   * rides along: a delivery alone is no change (its turn's state is).
   */
  private async writeStatus(cm: CodeMate, entry: Entry): Promise<boolean> {
    const patch: Record<string, unknown> = {};
    const session = this.sessionFields(entry);
    if (session && session.state !== this.recordedState(cm, entry)) patch.session = session;
    const before = this.recordedUsage(cm, entry);
    const usage = entry.usage ? usageAfter(before, entry.usage, new Date(), entry.day) : undefined;
    if (usage && !sameUsage(usage, before)) patch.usage = usage;
    if (Object.keys(patch).length === 0) return false;
    try {
      await this.options.kube.patchStatus(
        { group, version, plural, namespace: entry.namespace, name: entry.name },
        patch,
      );
      this.options.onWrite?.('kubernetes', 'success');
    } catch (error) {
      this.options.onWrite?.('kubernetes', 'error');
      if (isNotFound(error)) return false;
      this.options.logger.warn(
        { codemate: `${entry.namespace}/${entry.name}`, ...errorFields(error) },
        'could not record the session state',
      );
      return true;
    }
    if (session) entry.written.state = session.state;
    if (usage && patch.usage) {
      this.options.onUsage?.(usageGrowth(before, usage));
      entry.written.usage = usage;
      await this.noticeBudget(cm, usage);
    }
    return true;
  }

  /**
   * Tells the session once that its budget is used up: a message named after the limit (and the day, for
   * the daily one), so that the same limit never tells it twice (409), and a raised one reached again, or
   * the next day's, tells it again.
   */
  private async noticeBudget(cm: CodeMate, usage: Usage): Promise<void> {
    const spent = budgetExhausted({ spec: cm.spec, status: { ...cm.status, usage } });
    if (!spent) return;
    const words = budgetWords(spent);
    const id = spent.period === 'day' ? `${spent.date}-${spent.max}` : String(spent.max);
    const notice = buildMessage(cm, messageName(cm.metadata.name, 'budget', id), {
      source: { type: 'budget', createdAt: new Date().toISOString() },
      body:
        `the ${words.budget} tokens of this session is used up: ${spent.used} of ${spent.max} tokens ` +
        `(input, cache creation and output). New messages wait (${words.release}). Finish the step you ` +
        'are in, leave the work in a state others can pick up, and stop.',
    });
    try {
      await this.options.kube.create(notice as unknown as KubeObject);
      this.options.logger.info(
        { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, ...spent },
        'token budget used up; the session is told',
      );
    } catch (error) {
      if (!isConflict(error)) {
        this.options.logger.warn(
          { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, ...errorFields(error) },
          'could not tell the session that its budget is used up',
        );
      }
    }
  }

  /** What the commit status shows: the head commit and the state; undefined when there is none. */
  private commitKey(cm: CodeMate, entry: Entry): string | undefined {
    const sha = cm.status?.pullRequest?.headSha;
    if (!entry.state || !sha || !parseRepository(cm.spec.repository.url)) return undefined;
    return `${sha}|${entry.state}`;
  }

  /**
   * The state on the pull request's head, when the state or the head changed: the commit status, or in
   * App mode the check run.
   */
  private async writeGitHubState(cm: CodeMate, entry: Entry): Promise<boolean> {
    const key = this.commitKey(cm, entry);
    const sha = cm.status?.pullRequest?.headSha;
    const repo = parseRepository(cm.spec.repository.url);
    if (!key || !sha || !repo || !entry.state) return false;
    if (entry.written.commit === key || entry.refusedCommit === key) return false;
    const codemate = { name: cm.metadata.name, namespace: cm.metadata.namespace };
    const lastMessage = entry.lastMessage ?? cm.status?.session?.lastMessage;
    const url = cm.status?.pullRequest?.url;
    const app = githubAppMode(cm.spec);
    try {
      const { gh, appId } = await this.options.github.forCodeMate(cm);
      if (app) {
        const run = checkRunFor(entry.state, codemate, lastMessage, url);
        await this.writeCheckRun(gh, repo, sha, run, entry, appId);
      } else {
        const status = commitStatusFor(entry.state, codemate, lastMessage);
        await gh.setCommitStatus(repo.owner, repo.repo, sha, {
          ...status,
          ...(url ? { targetUrl: url } : {}),
        });
      }
      this.options.onWrite?.('github', 'success');
      entry.written.commit = key;
      delete entry.refusedCommit;
    } catch (error) {
      this.options.onWrite?.('github', 'error');
      entry.refusedCommit = key;
      this.options.logger.warn(
        { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, ...errorFields(error) },
        `could not set the codemate/session ${app ? 'check run' : 'commit status'}`,
      );
    }
    return true;
  }

  /**
   * One write of the check run on `sha`: an update of the head's check run, or a new one for a new head,
   * or for working after a completed state (GitHub does not reopen a completed check run). The first
   * write after the operator started (or took the lead) looks up the head's newest check run of this name
   * and App, so that a run left in progress is completed, not left beside a new one; a new head's run is
   * known to be new.
   */
  private async writeCheckRun(
    gh: GitHub,
    repo: { owner: string; repo: string },
    sha: string,
    run: CheckRunWrite,
    entry: Entry,
    appId: number | undefined,
  ): Promise<void> {
    let known = entry.checkRun?.sha === sha ? entry.checkRun : undefined;
    if (!entry.checkRun) {
      const found = await gh.latestCheckRun(repo.owner, repo.repo, sha, checkRunName, appId);
      if (found) known = { sha, id: found.id, completed: found.status === 'completed' };
    }
    const completed = run.status === 'completed';
    const written =
      known && (completed || !known.completed)
        ? await gh.updateCheckRun(repo.owner, repo.repo, known.id, run)
        : await gh.createCheckRun(repo.owner, repo.repo, sha, run);
    entry.checkRun = { sha, id: written.id, completed };
  }
}
