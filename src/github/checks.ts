/**
 * The pull request monitor's notices (pure): a CI run that failed on the pull request's head, and the
 * pull request leaving draft. Each becomes one CodeMateMessage with a deterministic name, so that the
 * poller finding it twice, a poll the webhook requested and one on the timer, or a second replica,
 * collide on the name (409) instead of telling the session twice:
 * - `<codemate>-ci-<runId>-<attempt>`: one per failed workflow run attempt, so a re-run (a new attempt)
 *   or a new push (new runs) that fails again is a new message, and a passing run is none;
 * - `<codemate>-rfr-<pullRequest>`: once per pull request, also recorded in status.github.readyForReview.
 */
import type { CodeMate } from '../api/codemate.js';
import type { JobLog, WorkflowJob, WorkflowRun } from '../api/github.js';
import {
  buildMessage,
  inHistory,
  messageBodyLimit,
  messageName,
  type CodeMateMessage,
} from '../api/message.js';
import { fenceFor, logCharLimit, logTail, stripControl } from './ciLog.js';

/** Conclusions that mean the run failed. `cancelled`, `skipped`, `neutral` and `action_required` do not. */
export const failingConclusions = ['failure', 'timed_out', 'startup_failure'] as const;
/** The failed jobs whose logs one CI message holds; the others are named, with their links. */
export const ciLogJobs = 3;

export function isFailing(conclusion: string | null | undefined): boolean {
  return (failingConclusions as readonly string[]).includes(conclusion ?? '');
}

/** A run attempt's id in message names, status and history: `<runId>-<attempt>`. */
export function ciRunId(run: Pick<WorkflowRun, 'id' | 'runAttempt'>): string {
  return `${run.id}-${run.runAttempt}`;
}

export function ciMessageName(cm: CodeMate, run: Pick<WorkflowRun, 'id' | 'runAttempt'>): string {
  return messageName(cm.metadata.name, 'ci_failure', ciRunId(run));
}

/**
 * The runs on `headSha` that completed with a failure and that the session has not been told of (their
 * message deleted by retention counts as told), oldest first. Runs of an earlier head are not news: the
 * session has pushed since.
 */
export function failedRuns(cm: CodeMate, runs: readonly WorkflowRun[], headSha: string): WorkflowRun[] {
  return runs
    .filter((r) => r.headSha === headSha && r.status === 'completed' && isFailing(r.conclusion))
    .filter((r) => !inHistory(cm.status?.history, 'ci_failure', ciRunId(r), r.updatedAt))
    .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt) || a.id - b.id);
}

/** The failed jobs of a run attempt, in GitHub's order. */
export function failedJobs(jobs: readonly WorkflowJob[]): WorkflowJob[] {
  return jobs.filter((j) => isFailing(j.conclusion));
}

/**
 * The CI message's body: what failed, where, the end of each failed job's log (or why it is missing),
 * and what to do. A missing log never holds the message back.
 */
export function formatCiFailure(
  run: WorkflowRun,
  jobs: readonly WorkflowJob[],
  logs: ReadonlyMap<number, JobLog | undefined>,
  pullRequest: number,
): string {
  const failed = failedJobs(jobs);
  const withLogs = failed.slice(0, ciLogJobs);
  const share = Math.floor(logCharLimit / Math.max(1, withLogs.length));
  const lines = [
    `The workflow "${oneLine(run.name)}" failed on pull request #${pullRequest} ` +
      `(commit ${run.headSha.slice(0, 12)}, run ${run.id}, attempt ${run.runAttempt}: ${run.conclusion}).`,
    'Find the cause, fix it, commit and push the fix. If the failure is not caused by this pull request, ' +
      'say so in a comment on the pull request instead.',
    '',
    failed.length === 0 ? 'Failed jobs: none reported by GitHub.' : 'Failed jobs:',
    ...failed.map(
      (j) =>
        `- ${oneLine(j.name)} (${j.conclusion})` +
        `${j.failedSteps.length ? `, failed step${j.failedSteps.length > 1 ? 's' : ''}: ${j.failedSteps.map(oneLine).join(', ')}` : ''}` +
        `${j.htmlUrl ? `: ${j.htmlUrl}` : ''}`,
    ),
  ];
  for (const job of withLogs) {
    const log = logs.get(job.id);
    const tail = log ? logTail(log.text, { maxChars: share, truncatedHead: log.truncatedHead }) : '';
    lines.push('');
    if (!tail) {
      lines.push(
        `The log of job "${oneLine(job.name)}" could not be fetched; read it at ${job.htmlUrl ?? run.htmlUrl}.`,
      );
      continue;
    }
    const fence = fenceFor(tail);
    lines.push(`The end of the log of job "${oneLine(job.name)}":`, `${fence}text`, tail, fence);
  }
  return lines.join('\n').slice(0, messageBodyLimit);
}

export function ciFailureMessage(
  cm: CodeMate,
  run: WorkflowRun,
  jobs: readonly WorkflowJob[],
  logs: ReadonlyMap<number, JobLog | undefined>,
  pullRequest: number,
): CodeMateMessage {
  return buildMessage(cm, ciMessageName(cm, run), {
    source: {
      type: 'ci_failure',
      id: ciRunId(run),
      url: run.htmlUrl,
      pullRequest,
      createdAt: run.updatedAt,
    },
    body: formatCiFailure(run, jobs, logs, pullRequest),
    trust: { allowed: true, reason: "GitHub's own check result for the followed pull request" },
  });
}

export function readyForReviewName(cm: CodeMate, pullRequest: number): string {
  return messageName(cm.metadata.name, 'ready_for_review', String(pullRequest));
}

/**
 * True when the pull request has just left draft and the session was not asked yet: the poll before saw
 * it as a draft (status.pullRequest.draft), this one does not, and status.github.readyForReview is unset,
 * so that neither a second poll nor an operator restart asks again.
 */
export function leftDraft(cm: CodeMate, pr: { number: number; draft: boolean; state: string }): boolean {
  return (
    pr.state === 'open' &&
    !pr.draft &&
    cm.status?.pullRequest?.number === pr.number &&
    cm.status.pullRequest.draft === true &&
    !cm.status.github?.readyForReview
  );
}

export function readyForReviewMessage(
  cm: CodeMate,
  pr: { number: number; url: string },
  at: string,
): CodeMateMessage {
  return buildMessage(cm, readyForReviewName(cm, pr.number), {
    source: {
      type: 'ready_for_review',
      id: String(pr.number),
      url: pr.url,
      pullRequest: pr.number,
      createdAt: at,
    },
    body:
      `Pull request #${pr.number} left draft and is ready for review. Update its title and description ` +
      '(for example with `gh pr edit`) so that they describe all of its changes: read the whole diff ' +
      'against the base branch, not only your latest commits. Do not change the code for this.',
    trust: { allowed: true, reason: "GitHub's own pull request state for the followed pull request" },
  });
}

/** Names from the repository's files (workflow, job, step) on one line, so they cannot fake a new line. */
function oneLine(text: string): string {
  return stripControl(text).replace(/\s+/g, ' ').trim().slice(0, 200);
}
