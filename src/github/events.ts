/**
 * From GitHub webhook events to what they mean for sessions (pure). New comments on pull requests become
 * the same items the poller finds; a submitted review and its review comments ask for a poll, which
 * builds the review's one message with its threads from the API; pull requests opening, reopening and
 * closing change which session follows which pull request; a pull request leaving draft and a check
 * suite, check run or workflow run that failed make its followers poll (src/github/checks.ts); everything
 * else is acknowledged and ignored, with the reason.
 */
import { sessionStateName, toItem as item, type GitHubItem, type RawItem } from '../api/github.js';
import { isFailing } from './checks.js';

export type ItemType = 'issue_comment';

export type RoutedEvent =
  | {
      kind: 'item';
      type: ItemType;
      repository: string;
      pullRequest: number;
      /** The pull request's head branch, when it lives in the same repository (not a fork). */
      headRef?: string;
      item: GitHubItem;
    }
  | {
      /** A submitted review, or one of its comments: the poller builds its message (adr/0013). */
      kind: 'review';
      repository: string;
      pullRequest: number;
      headRef?: string;
      reviewId: number;
      /** Whoever wrote it; the session's own reviews need no poll. */
      author?: string;
    }
  | {
      kind: 'pull_request';
      action: 'opened' | 'reopened' | 'closed' | 'ready_for_review';
      repository: string;
      pullRequest: number;
      headRef?: string;
    }
  | {
      /** A check suite, check run or workflow run completed with a failure: the followers poll its checks. */
      kind: 'checks';
      event: CheckEventName;
      repository: string;
      /** The pull requests GitHub lists for the head (none for a fork's head). */
      pullRequests: number[];
      headRef?: string;
      headSha: string;
      conclusion: string;
    }
  | { kind: 'ping' }
  | { kind: 'ignored'; reason: string };

interface PullRequestPayload {
  number: number;
  head?: { ref?: string; repo?: { full_name?: string } | null };
}

export type CheckEventName = 'check_suite' | 'check_run' | 'workflow_run';

/** What check_suite, check_run and workflow_run payloads say about the commit they ran on. */
interface CheckPayload {
  /** A check run's name. */
  name?: string;
  head_sha?: string;
  head_branch?: string | null;
  conclusion?: string | null;
  pull_requests?: Array<{ number: number }>;
  check_suite?: { head_branch?: string | null };
}

interface Payload {
  action?: string;
  check_suite?: CheckPayload;
  check_run?: CheckPayload;
  workflow_run?: CheckPayload;
  repository?: { full_name?: string };
  issue?: { number: number; pull_request?: unknown };
  pull_request?: PullRequestPayload;
  comment?: RawItem & { created_at: string; pull_request_review_id?: number | null };
  review?: RawItem & { submitted_at?: string | null };
}

/** Branch names only identify a session's branch when the pull request is not from a fork. */
function headRefOf(pr: PullRequestPayload | undefined, repository: string): { headRef?: string } {
  const head = pr?.head;
  if (!head?.ref || head.repo?.full_name?.toLowerCase() !== repository.toLowerCase()) return {};
  return { headRef: head.ref };
}

export function routeEvent(name: string, payload: Payload): RoutedEvent {
  if (name === 'ping') return { kind: 'ping' };
  const repository = payload.repository?.full_name ?? '';
  const event = `${name}.${payload.action ?? ''}`;
  if (!repository) return { kind: 'ignored', reason: `${event} has no repository` };
  switch (event) {
    case 'issue_comment.created':
      if (!payload.issue?.pull_request)
        return { kind: 'ignored', reason: 'a comment on an issue, not a pull request' };
      if (!payload.comment) return { kind: 'ignored', reason: 'issue_comment.created has no comment' };
      return {
        kind: 'item',
        type: 'issue_comment',
        repository,
        pullRequest: payload.issue.number,
        item: item(payload.comment, payload.comment.created_at),
      };
    case 'pull_request_review.submitted':
      if (!payload.review || !payload.pull_request)
        return { kind: 'ignored', reason: `${event} has no review or pull_request` };
      return {
        kind: 'review',
        repository,
        pullRequest: payload.pull_request.number,
        ...headRefOf(payload.pull_request, repository),
        reviewId: payload.review.id,
        ...(payload.review.user ? { author: payload.review.user.login } : {}),
      };
    case 'pull_request_review_comment.created':
      if (!payload.comment?.pull_request_review_id || !payload.pull_request)
        return { kind: 'ignored', reason: `${event} has no comment of a review, or no pull_request` };
      return {
        kind: 'review',
        repository,
        pullRequest: payload.pull_request.number,
        ...headRefOf(payload.pull_request, repository),
        reviewId: payload.comment.pull_request_review_id,
        ...(payload.comment.user ? { author: payload.comment.user.login } : {}),
      };
    case 'pull_request.opened':
    case 'pull_request.reopened':
    case 'pull_request.closed':
    case 'pull_request.ready_for_review':
      if (!payload.pull_request) return { kind: 'ignored', reason: `${event} has no pull_request` };
      return {
        kind: 'pull_request',
        action: payload.action as 'opened' | 'reopened' | 'closed' | 'ready_for_review',
        repository,
        pullRequest: payload.pull_request.number,
        ...headRefOf(payload.pull_request, repository),
      };
    case 'check_suite.completed':
    case 'check_run.completed':
    case 'workflow_run.completed':
      return routeChecks(name as CheckEventName, repository, payload[name as CheckEventName]);
    default:
      return { kind: 'ignored', reason: `${event} is not routed` };
  }
}

/**
 * A completed check suite, check run or workflow run. Only a failure is news (a passing run yields no
 * message), and the webhook holds no GitHub token to read the failed jobs' logs, so the followers of its
 * pull requests, or of its head branch, are asked to poll: the poller reads the runs of the head it
 * follows, which also keeps out runs of any other commit.
 */
function routeChecks(name: CheckEventName, repository: string, check: CheckPayload | undefined): RoutedEvent {
  if (!check?.head_sha) return { kind: 'ignored', reason: `${name}.completed has no ${name}` };
  // CodeMate's own check run (App mode) says what a session does, not what CI found.
  if (name === 'check_run' && check.name === sessionStateName) {
    return { kind: 'ignored', reason: `check_run ${sessionStateName} is the session's own state` };
  }
  const conclusion = check.conclusion ?? '';
  if (!isFailing(conclusion)) {
    return {
      kind: 'ignored',
      reason: `${name} concluded ${conclusion || 'without a conclusion'}: not a failure`,
    };
  }
  const headRef = check.head_branch ?? check.check_suite?.head_branch;
  return {
    kind: 'checks',
    event: name,
    repository,
    pullRequests: (check.pull_requests ?? []).map((p) => p.number),
    ...(headRef ? { headRef } : {}),
    headSha: check.head_sha,
    conclusion,
  };
}
