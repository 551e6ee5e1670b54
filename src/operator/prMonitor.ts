/**
 * The poller's step after the comment lists: the pull request's CI runs and its draft state
 * (src/github/checks.ts decides, this fetches). It costs no charged request on an idle pull request: the
 * draft flag and the head come with the pull request the poller reads anyway, and the runs of the head
 * are one conditional request, a free 304 while nothing changes. Jobs and logs are read only for a failed
 * run that has no message yet. What it notified goes to status.github, which the poller writes.
 */
import type { CodeMate } from '../api/codemate.js';
import type { JobLog } from '../api/github.js';
import type { CodeMateMessage } from '../api/message.js';
import type { GitHub, PullRequestState } from '../clients/github.js';
import { logTailBytes } from '../github/ciLog.js';
import {
  ciFailureMessage,
  ciLogJobs,
  ciMessageName,
  failedJobs,
  failedRuns,
  leftDraft,
  readyForReviewMessage,
  readyForReviewName,
} from '../github/checks.js';
import type { RepositoryRef } from '../github/repository.js';
import { errorFields, type Logger } from '../observability/log.js';
import type { GitHubObservation } from './status.js';

export interface MonitorDeps {
  logger: Logger;
  hasMessage: (namespace: string, name: string) => boolean;
  create: (message: CodeMateMessage) => Promise<void>;
}

type Notices = Pick<NonNullable<GitHubObservation['github']>, 'ci' | 'readyForReview'>;

export async function pollChecksAndDraft(
  deps: MonitorDeps,
  cm: CodeMate,
  gh: GitHub,
  repo: RepositoryRef,
  pr: PullRequestState,
  now: string,
): Promise<Notices> {
  return {
    ...(await readyForReview(deps, cm, pr, now)),
    ...(pr.state === 'open' ? await ciFailures(deps, cm, gh, repo, pr, now) : {}),
  };
}

async function readyForReview(
  deps: MonitorDeps,
  cm: CodeMate,
  pr: PullRequestState,
  now: string,
): Promise<Notices> {
  if (!leftDraft(cm, pr)) return {};
  const name = readyForReviewName(cm, pr.number);
  if (!deps.hasMessage(cm.metadata.namespace, name)) await deps.create(readyForReviewMessage(cm, pr, now));
  return { readyForReview: { message: name, notifiedAt: now } };
}

async function ciFailures(
  deps: MonitorDeps,
  cm: CodeMate,
  gh: GitHub,
  repo: RepositoryRef,
  pr: PullRequestState,
  now: string,
): Promise<Notices> {
  const ci = cm.status?.github?.ci;
  if (ci?.noneDetectedAt && ci.noneDetectedOn === pr.headSha) return {};
  const runs = await gh.workflowRuns(repo.owner, repo.repo, pr.headSha);
  if (runs.length === 0) {
    // No run on this head: either CI has not started yet, or the repository has none. That is asked
    // once per head and recorded: a push that adds a workflow is a new head, which is asked again.
    if ((await gh.workflowCount(repo.owner, repo.repo)) === 0) {
      return { ci: { noneDetectedAt: now, noneDetectedOn: pr.headSha } };
    }
    return {};
  }
  let notices: Notices = ci?.noneDetectedAt ? { ci: { noneDetectedAt: null, noneDetectedOn: null } } : {};
  for (const run of failedRuns(cm, runs, pr.headSha)) {
    const name = ciMessageName(cm, run);
    if (deps.hasMessage(cm.metadata.namespace, name)) continue;
    const jobs = await gh.workflowJobs(repo.owner, repo.repo, run.id, run.runAttempt);
    const logs = new Map<number, JobLog | undefined>();
    for (const job of failedJobs(jobs).slice(0, ciLogJobs)) {
      logs.set(
        job.id,
        await gh.jobLogTail(repo.owner, repo.repo, job.id, logTailBytes).catch((error: unknown) => {
          deps.logger.warn(
            { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, job: job.id, ...errorFields(error) },
            'could not fetch a failed job log; the CI message goes without it',
          );
          return undefined;
        }),
      );
    }
    await deps.create(ciFailureMessage(cm, run, jobs, logs, pr.number));
    notices = {
      ci: {
        ...notices.ci,
        lastNotified: {
          runId: run.id,
          attempt: run.runAttempt,
          workflow: run.name,
          conclusion: run.conclusion ?? '',
          headSha: run.headSha,
          url: run.htmlUrl,
          message: name,
          notifiedAt: now,
        },
      },
    };
  }
  return notices;
}
