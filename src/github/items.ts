/**
 * From GitHub items to CodeMateMessages (pure): deterministic names, the trust verdict, and the owner
 * reference that makes a message go with its CodeMate.
 */
import type { CodeMate } from '../api/codemate.js';
import {
  buildMessage,
  inHistory,
  messageBodyLimit,
  messageName,
  type CodeMateMessage,
  type SourceType,
} from '../api/message.js';
import type { GitHubItem as Item, GitHubReview, GitHubReviewComment } from '../api/github.js';
import { formatReview, reviewThreads } from './reviewThreads.js';
import { approvalCommand, judge, trustPolicyOf } from './trust.js';

export type { Item };

export function messageFor(
  cm: CodeMate,
  type: Exclude<SourceType, 'cli'>,
  item: Item,
  pullRequest: number,
  selfLogin?: string,
  body = item.body,
): CodeMateMessage {
  const author = item.user ?? { login: 'ghost' };
  const verdict = judge(author, item.authorAssociation, trustPolicyOf(cm.spec), selfLogin);
  return buildMessage(cm, messageName(cm.metadata.name, type, String(item.id)), {
    source: {
      type,
      id: String(item.id),
      url: item.htmlUrl,
      author: author.login,
      association: item.authorAssociation,
      pullRequest,
      createdAt: item.createdAt,
    },
    body: messageBody(body),
    trust: {
      allowed: verdict.allowed,
      reason: verdict.reason,
      ...(verdict.approvable ? { approvable: true } : {}),
    },
  });
}

const truncation = '\n\n[… cut here: the message reached its size limit; read the rest on GitHub]';

/** The body a message holds for an item's text: cut at the size limit. */
export function messageBody(body: string): string {
  return body.length <= messageBodyLimit
    ? body
    : body.slice(0, messageBodyLimit - truncation.length) + truncation;
}

/**
 * A submitted review as one message, named after the review (`<codemate>-rv-<reviewId>`): its body and
 * the threads it commented in, from all of the pull request's review comments (see reviewThreads.ts).
 * The review's author decides trust. Undefined when the review leaves the session nothing to read.
 */
export function reviewMessageFor(
  cm: CodeMate,
  review: GitHubReview,
  comments: readonly GitHubReviewComment[],
  pullRequest: number,
  selfLogin?: string,
): CodeMateMessage | undefined {
  const body = formatReview(review, reviewThreads(review.id, comments, selfLogin), selfLogin);
  return body === undefined ? undefined : messageFor(cm, 'review', review, pullRequest, selfLogin, body);
}

/**
 * Why an item is not a new message for this CodeMate, or undefined when it is one: an approval command
 * is an instruction to CodeMate, not text for the session (trust.ts); items written before
 * the CodeMate existed are history, and so are items whose messages were delivered and then deleted by
 * retention (status.history), so that a listing or a redelivery never brings them back.
 */
export function notNewBecause(
  cm: CodeMate,
  type: Exclude<SourceType, 'cli'>,
  item: Item,
): string | undefined {
  if (type === 'issue_comment' && approvalCommand(item.body))
    return 'a /codemate approve or deny command, not a message';
  const created = cm.metadata.creationTimestamp ? new Date(cm.metadata.creationTimestamp).getTime() : 0;
  if (new Date(item.createdAt).getTime() < created - 1000) return 'written before the CodeMate was created';
  if (inHistory(cm.status?.history, type, String(item.id), item.createdAt)) {
    return 'delivered before; its message was deleted by retention';
  }
  return undefined;
}
