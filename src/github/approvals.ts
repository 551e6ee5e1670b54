/**
 * Whether a trusted person's 👍, `/codemate approve` or `/codemate deny` decides a comment that waits for
 * approval (docs/approvals.md). Pure: the poller gathers the comment as GitHub shows it now and who
 * decided what when, and records what this returns. An approval holds for the exact text the message
 * carries, and only if the approver saw that text: a comment edited after it was recorded, or after the
 * approval, is not approved on GitHub (`codemate approve`, which shows the recorded text, still can). A
 * denial lets nothing in, so it needs only to come after the comment. The earliest decision stands.
 */
import type { GitHubItem } from '../api/github.js';
import { bodySha256, type Approval, type CodeMateMessage } from '../api/message.js';
import { messageBody } from './items.js';

/** A trusted person's 👍 on the comment, or a `/codemate approve|deny` of theirs on the pull request. */
export interface ApprovalCandidate {
  decision: Approval['decision'];
  by: string;
  via: 'reaction' | 'comment';
  /** When the reaction or the deciding comment was made. */
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
  const hash = bodySha256(message.spec.body);
  // A `/codemate deny` written before the comment is about other comments.
  const created = time(comment?.createdAt ?? message.spec.source.createdAt ?? '');
  const denials = candidates.filter((c) => c.decision === 'Denied' && time(c.at) >= created);
  const approvals = approved(message, comment, hash, candidates);
  // Denials first: of a denial and an approval made at the same time, the denial stands.
  const first = [...denials, ...('valid' in approvals ? approvals.valid : [])].sort(
    (a, b) => time(a.at) - time(b.at),
  )[0];
  if (!first) return 'refused' in approvals ? approvals : { none: true };
  return {
    approval: {
      decision: first.decision,
      by: first.by,
      via: first.via,
      at: new Date(time(first.at)).toISOString(),
      bodySha256: hash,
      ...(first.url ? { url: first.url } : {}),
    },
  };
}

/** The approvals that hold for the recorded text, or why none does. */
function approved(
  message: CodeMateMessage,
  comment: GitHubItem | undefined,
  hash: string,
  candidates: readonly ApprovalCandidate[],
): { valid: ApprovalCandidate[] } | { refused: string } {
  const approvals = candidates.filter((c) => c.decision === 'Approved');
  if (approvals.length === 0) return { valid: [] };
  if (!comment) return { refused: 'the comment is gone from GitHub' };
  if (bodySha256(messageBody(comment.body)) !== hash) {
    return {
      refused:
        'the comment was edited after CodeMate recorded it, so what the approver saw is not what would be ' +
        'delivered; ask for a new comment, or read the recorded text and run `codemate approve`',
    };
  }
  const created = time(comment.createdAt);
  const edited = comment.updatedAt && comment.updatedAt !== comment.createdAt ? time(comment.updatedAt) : 0;
  const valid = approvals.filter((c) => time(c.at) >= created && time(c.at) > edited);
  if (valid.length === 0) {
    return { refused: 'every approval predates the comment or its last edit; approve it again' };
  }
  return { valid };
}

function time(iso: string): number {
  return new Date(iso).getTime();
}
