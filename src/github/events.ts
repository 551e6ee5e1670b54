/**
 * From GitHub webhook events to the items the poller would have found (pure). Only new comments,
 * submitted reviews and new review comments on pull requests reach a session; everything else is
 * acknowledged and ignored.
 */
import { toItem as item, type GitHubItem, type RawItem } from '../clients/github.js';

export type RoutedEvent =
  | {
      kind: 'item';
      type: 'issue_comment' | 'review' | 'review_comment';
      repository: string;
      pullRequest: number;
      item: GitHubItem;
    }
  | { kind: 'ignored'; reason: string };

interface Payload {
  action?: string;
  repository?: { full_name?: string };
  issue?: { number: number; pull_request?: unknown };
  pull_request?: { number: number };
  comment?: RawItem & { created_at: string };
  review?: RawItem & { submitted_at?: string | null };
}

export function routeEvent(name: string, payload: Payload): RoutedEvent {
  const repository = payload.repository?.full_name ?? '';
  const event = `${name}.${payload.action ?? ''}`;
  switch (event) {
    case 'issue_comment.created':
      if (!payload.issue?.pull_request)
        return { kind: 'ignored', reason: 'a comment on an issue, not a pull request' };
      return {
        kind: 'item',
        type: 'issue_comment',
        repository,
        pullRequest: payload.issue.number,
        item: item(payload.comment!, payload.comment!.created_at),
      };
    case 'pull_request_review.submitted':
      if (!payload.review?.body?.trim()) return { kind: 'ignored', reason: 'a review without a body' };
      return {
        kind: 'item',
        type: 'review',
        repository,
        pullRequest: payload.pull_request!.number,
        item: item(payload.review, payload.review.submitted_at),
      };
    case 'pull_request_review_comment.created':
      return {
        kind: 'item',
        type: 'review_comment',
        repository,
        pullRequest: payload.pull_request!.number,
        item: item(payload.comment!, payload.comment!.created_at),
      };
    default:
      return { kind: 'ignored', reason: `${event} is not routed` };
  }
}
