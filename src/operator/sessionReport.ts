/**
 * What a session reports about itself, and what the operator makes of it (pure): the lines of
 * `codemate-report --watch` (setup/scripts/codemate-report), the state shown on the pull request, the
 * usage recorded in status.usage, and when the next write may go (docs/session-state.md).
 */
import type { Usage } from '../api/codemate.js';
import { sessionStateName } from '../api/github.js';
import type { CheckRunWrite } from '../clients/github.js';

/** The session's state as status.session.state and the commit status say it. */
export type SessionState = 'working' | 'idle' | 'blocked';
/** What the commit status shows: the session's state, or why there is no session. */
export type ShownState = SessionState | 'failed' | 'suspended';

export interface ReportedUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  turns: number;
  /** The state directory the counts come from; a new one (a pod without storage) starts at zero. */
  workspace: string;
}

export interface ReportedDay {
  date: string;
  tokens: number;
}

export type ReportLine =
  | { kind: 'ready'; version: number }
  | { kind: 'state'; state: string }
  | { kind: 'usage'; usage: ReportedUsage }
  /** The tokens a budget counts of the requests made today (UTC). */
  | { kind: 'day'; day: ReportedDay }
  | { kind: 'tick' }
  | { kind: 'other'; line: string };

export function parseReportLine(line: string): ReportLine {
  const ready = /^codemate-report ready (\d+)$/.exec(line);
  if (ready) return { kind: 'ready', version: Number(ready[1]) };
  const state = /^state ([a-z]+)$/.exec(line);
  if (state) return { kind: 'state', state: state[1]! };
  const usage = /^usage (\d+) (\d+) (\d+) (\d+) (\d+) (\S+)$/.exec(line);
  if (usage) {
    const [input, output, cacheRead, cacheCreation, turns] = usage.slice(1, 6).map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    return {
      kind: 'usage',
      usage: {
        inputTokens: input,
        outputTokens: output,
        cacheReadTokens: cacheRead,
        cacheCreationTokens: cacheCreation,
        turns,
        workspace: usage[6]!,
      },
    };
  }
  const day = /^day (\d{4}-\d\d-\d\d) (\d+)$/.exec(line);
  if (day) return { kind: 'day', day: { date: day[1]!, tokens: Number(day[2]) } };
  if (line === 'tick') return { kind: 'tick' };
  return { kind: 'other', line };
}

/**
 * The hooks' state file (codemate-hook) as a state for people: a session that has started and waits for
 * its first prompt is idle too; `starting` is no state yet.
 */
export function sessionStateOf(raw: string): SessionState | undefined {
  switch (raw) {
    case 'busy':
      return 'working';
    case 'ready':
    case 'idle':
      return 'idle';
    case 'blocked':
      return 'blocked';
    default:
      return undefined;
  }
}

const counted = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheCreationTokens', 'turns'] as const;

/**
 * status.usage after a report: the report's counts on top of what earlier workspaces counted. A report
 * from another workspace than the recorded one (the pod was replaced and its emptyDir with it) carries
 * the recorded totals over, so the usage of a CodeMate never goes back.
 */
export function usageAfter(
  previous: Usage | undefined,
  report: ReportedUsage,
  now: Date,
  day?: ReportedDay,
): Usage {
  const sameWorkspace = previous?.workspace === undefined || previous.workspace === report.workspace;
  const carried = sameWorkspace
    ? (previous?.carried ?? {})
    : Object.fromEntries(counted.map((k) => [k, previous[k] ?? 0]));
  const usage: Usage = { workspace: report.workspace, updatedAt: now.toISOString() };
  for (const k of counted) usage[k] = (carried[k] ?? 0) + report[k];
  if (counted.some((k) => (carried[k] ?? 0) > 0)) usage.carried = carried;
  if (day) {
    // Today's count carries over a new workspace of the same day, as the totals do.
    const before = previous?.today?.date === day.date ? previous.today : undefined;
    const carriedToday = sameWorkspace ? (before?.carried ?? 0) : (before?.tokens ?? 0);
    usage.today = {
      date: day.date,
      tokens: carriedToday + day.tokens,
      ...(carriedToday > 0 ? { carried: carriedToday } : {}),
    };
  } else if (previous?.today) {
    usage.today = previous.today;
  }
  return usage;
}

/** Whether two usages count the same (when they were written does not matter). */
export function sameUsage(a: Usage | undefined, b: Usage | undefined): boolean {
  return (
    a?.workspace === b?.workspace &&
    a?.today?.date === b?.today?.date &&
    a?.today?.tokens === b?.today?.tokens &&
    counted.every((k) => (a?.[k] ?? 0) === (b?.[k] ?? 0)) &&
    counted.every((k) => (a?.carried?.[k] ?? 0) === (b?.carried?.[k] ?? 0))
  );
}

/** How much each count grew from one usage to the next (for the metrics); never negative. */
export function usageGrowth(
  before: Usage | undefined,
  after: Usage,
): Record<(typeof counted)[number], number> {
  return Object.fromEntries(
    counted.map((k) => [k, Math.max(0, (after[k] ?? 0) - (before?.[k] ?? 0))]),
  ) as Record<(typeof counted)[number], number>;
}

/** The context of the one commit status CodeMate writes on the pull request's head. */
export const commitStatusContext = sessionStateName;

const shown: Record<ShownState, { state: 'error' | 'failure' | 'pending' | 'success'; words: string }> = {
  working: { state: 'pending', words: 'working: a turn is running' },
  idle: { state: 'success', words: 'idle: waiting for input' },
  blocked: { state: 'failure', words: 'blocked: a dialog needs a person' },
  failed: { state: 'error', words: 'failed: the session stopped' },
  suspended: { state: 'success', words: 'suspended' },
};

/**
 * The commit status for a state: GitHub's state (pending while a turn runs, failure while a dialog
 * waits for a person, error when the session failed, success otherwise), and a description of at most
 * 140 characters with the last message handled and how to attach.
 */
export function commitStatusFor(
  state: ShownState,
  codemate: { name: string; namespace: string },
  lastMessage: string | undefined,
): { state: 'error' | 'failure' | 'pending' | 'success'; context: string; description: string } {
  const attach = `codemate attach ${codemate.name} -n ${codemate.namespace}`;
  const words = shown[state].words;
  const last = lastMessage ? `; last: ${lastMessage}` : '';
  let description = `${words}${last} · ${attach}`;
  if (description.length > 140) description = `${words} · ${attach}`;
  if (description.length > 140) description = `${description.slice(0, 139)}…`;
  return { state: shown[state].state, context: commitStatusContext, description };
}

/**
 * How long the next write must wait: none at all when the last one is at least `minIntervalMs` old, so a
 * change is written at once, and a session that flaps is written at most once per interval, with its
 * latest state.
 */
export function writeDelayMs(lastWriteAt: number | undefined, now: number, minIntervalMs: number): number {
  if (lastWriteAt === undefined) return 0;
  return Math.max(0, lastWriteAt + minIntervalMs - now);
}

/** The name of the one check run CodeMate keeps on the pull request's head in App mode. */
export const checkRunName = commitStatusContext;

/**
 * The check run for a state, in App mode (docs/session-state.md). It mirrors the commit status so that a
 * required `codemate/session` check holds a merge back exactly when the commit status would: a running
 * turn is `in_progress` (pending); idle is `success`; a dialog waiting for a person is `action_required`
 * (failure), whose link is the pull request; a failed session is `failure` (error); suspended is
 * `neutral` (success: passing, and grey, since no session runs). Every state but working is completed,
 * so a check run never stays in progress while nothing runs.
 */
export function checkRunFor(
  state: ShownState,
  codemate: { name: string; namespace: string },
  lastMessage: string | undefined,
  detailsUrl: string | undefined,
): CheckRunWrite {
  const conclusions: Record<ShownState, CheckRunWrite['conclusion']> = {
    working: undefined,
    idle: 'success',
    // GitHub asks for a details_url with action_required: without one, failure holds a merge the same way.
    blocked: detailsUrl ? 'action_required' : 'failure',
    failed: 'failure',
    suspended: 'neutral',
  };
  const conclusion = conclusions[state];
  const attach = `codemate attach ${codemate.name} -n ${codemate.namespace}`;
  const summary = [
    ...(lastMessage ? [`Last message handled: \`${lastMessage}\``] : []),
    `Attach to the session: \`${attach}\``,
  ].join('\n\n');
  return {
    name: checkRunName,
    status: conclusion ? 'completed' : 'in_progress',
    ...(conclusion ? { conclusion } : {}),
    title: shown[state].words,
    summary,
    ...(detailsUrl ? { detailsUrl } : {}),
  };
}
