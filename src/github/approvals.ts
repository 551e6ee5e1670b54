/**
 * Whether a trusted person's 👍 or `/codemate approve` approves a comment that waits for approval
 * (docs/approvals.md). Pure: the poller gathers the comment as GitHub shows it now and who approved it
 * when, and records what this returns. An approval holds for the exact text the message carries, and
 * only if the approver saw that text: a comment edited after it was recorded, or after the approval, is
 * not approved on GitHub (`codemate approve`, which shows the recorded text, still can).
 */
import type { GitHubItem } from '../api/github.js';
import { bodySha256, type Approval, type CodeMateMessage } from '../api/message.js';
import { messageBody } from './items.js';

/** A trusted person's 👍 on the comment, or a `/codemate approve` of theirs on the pull request. */
export interface ApprovalCandidate {
  by: string;
  via: 'reaction' | 'comment';
  /** When the reaction or the approving comment was made. */
  at: string;
  url?: string | undefined;
}

export type ApprovalCheck = { approval: Approval } | { refused: string } | { none: true };

export function checkApproval(
  message: CodeMateMessage,
  comment: GitHubItem | undefined,
  candidates: readonly ApprovalCandidate[],
): ApprovalCheck {
  if (candidates.length === 0) return { none: true };
  if (!comment) return { refused: 'the comment is gone from GitHub' };
  const hash = bodySha256(message.spec.body);
  if (bodySha256(messageBody(comment.body)) !== hash) {
    return {
      refused:
        'the comment was edited after CodeMate recorded it, so what the approver saw is not what would be ' +
        'delivered; ask for a new comment, or read the recorded text and run `codemate approve`',
    };
  }
  const created = time(comment.createdAt);
  const edited = comment.updatedAt && comment.updatedAt !== comment.createdAt ? time(comment.updatedAt) : 0;
  const valid = candidates
    .filter((c) => time(c.at) >= created && time(c.at) > edited)
    .sort((a, b) => time(a.at) - time(b.at));
  const first = valid[0];
  if (!first) {
    return { refused: 'every approval predates the comment or its last edit; approve it again' };
  }
  return {
    approval: {
      decision: 'Approved',
      by: first.by,
      via: first.via,
      at: new Date(time(first.at)).toISOString(),
      bodySha256: hash,
      ...(first.url ? { url: first.url } : {}),
    },
  };
}

function time(iso: string): number {
  return new Date(iso).getTime();
}
