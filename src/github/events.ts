/**
 * From GitHub webhook events to what they mean for sessions (pure). New comments on pull requests become
 * the same items the poller finds; a submitted review and its review comments ask for a poll, which
 * builds the review's one message with its threads from the API; pull requests opening, reopening and
 * closing change which session follows which pull request; everything else is acknowledged and ignored,
 * with the reason.
 */
import { toItem as item, type GitHubItem, type RawItem } from '../api/github.js';

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
      action: 'opened' | 'reopened' | 'closed';
      repository: string;
      pullRequest: number;
      headRef?: string;
    }
  | { kind: 'ping' }
  | { kind: 'ignored'; reason: string };

interface PullRequestPayload {
  number: number;
  head?: { ref?: string; repo?: { full_name?: string } | null };
}

interface Payload {
  action?: string;
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
      if (!payload.pull_request) return { kind: 'ignored', reason: `${event} has no pull_request` };
      return {
        kind: 'pull_request',
        action: payload.action as 'opened' | 'reopened' | 'closed',
        repository,
        pullRequest: payload.pull_request.number,
        ...headRefOf(payload.pull_request, repository),
      };
    default:
      return { kind: 'ignored', reason: `${event} is not routed` };
  }
}
