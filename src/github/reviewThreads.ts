/**
 * A submitted review as one text for the session (pure): its body, then each thread it commented in,
 * with where (`path:line`), the diff hunk, the thread's earlier comments and the review's new ones. A
 * thread in which the session has had the last word since this review is left out. Every piece of
 * GitHub text is quoted line by line (`> `) and every hunk is fenced longer than any backtick run in
 * it, so no body, hunk or path can start a line that looks like this format's own.
 */
import type { GitHubReview, GitHubReviewComment } from '../api/github.js';

export interface ReviewThread {
  /** The thread's first comment: the one to reply to. */
  root: GitHubReviewComment;
  /** Comments in the thread before this review's first one. */
  earlier: GitHubReviewComment[];
  /** This review's comments in the thread. */
  added: GitHubReviewComment[];
}

export interface ReviewThreads {
  threads: ReviewThread[];
  /** Threads this review commented in where the session has replied since. */
  answered: number;
}

/** At most this many lines of a diff hunk: its header and the lines right above the commented one. */
export const hunkLineLimit = 20;
/** At most this many earlier comments of a thread: its first one and the most recent others. */
export const earlierCommentLimit = 10;

const same = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
const byTime = (a: GitHubReviewComment, b: GitHubReviewComment) =>
  a.createdAt.localeCompare(b.createdAt) || a.id - b.id;

/** The first comment of the chain of `in_reply_to_id`, as far as the listing knows it. */
function rootOf(comment: GitHubReviewComment, byId: Map<number, GitHubReviewComment>): GitHubReviewComment {
  let current = comment;
  const seen = new Set<number>();
  while (current.inReplyTo !== null && !seen.has(current.id)) {
    seen.add(current.id);
    const parent = byId.get(current.inReplyTo);
    if (!parent) break;
    current = parent;
  }
  return current;
}

/**
 * The threads that review `reviewId` commented in, from all of the pull request's review comments, in
 * the order of the review's first comment in each. A thread is answered (and left out) when a comment of
 * `selfLogin` is this review's last one in it or came after it.
 */
export function reviewThreads(
  reviewId: number,
  comments: readonly GitHubReviewComment[],
  selfLogin?: string,
): ReviewThreads {
  const byId = new Map(comments.map((c) => [c.id, c]));
  const threads = new Map<number, { root: GitHubReviewComment; thread: GitHubReviewComment[] }>();
  for (const comment of [...comments].sort(byTime)) {
    const root = rootOf(comment, byId);
    const entry = threads.get(root.id) ?? { root, thread: [] };
    entry.thread.push(comment);
    threads.set(root.id, entry);
  }
  const result: ReviewThread[] = [];
  let answered = 0;
  for (const { root, thread } of threads.values()) {
    const added = thread.filter((c) => c.reviewId === reviewId);
    if (added.length === 0) continue;
    const first = thread.indexOf(added[0]!);
    const last = thread.indexOf(added[added.length - 1]!);
    if (thread.slice(last).some((c) => same(c.user?.login, selfLogin))) {
      answered++;
      continue;
    }
    const earlier = thread.slice(0, first);
    result.push({ root, earlier, added });
  }
  result.sort((a, b) => byTime(a.added[0]!, b.added[0]!));
  return { threads: result, answered };
}

/** Line breaks as the session's inject turns them into newlines (U+2028 and U+2029 included). */
const lineBreak = /\r\n|\r|\n|\u2028|\u2029|\u0085/;

/** Untrusted text as a quote: every line behind `> `, so none of it can start a line of the frame. */
export function quote(text: string, indent = ''): string {
  const lines = text.replace(/\s+$/, '').split(lineBreak);
  return lines.map((line) => `${indent}>${line ? ` ${line}` : ''}`).join('\n');
}

/** Untrusted text on one line: no line breaks, no control characters. */
export function inline(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').trim();
}

/** A fenced block that the text cannot close: the fence is longer than any run of backticks in it. */
export function fenced(text: string, info: string, indent = ''): string {
  const lines = text.replace(/\s+$/, '').split(lineBreak);
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [`${indent}${fence}${info}`, ...lines.map((l) => `${indent}${l}`), `${indent}${fence}`].join('\n');
}

/** The end of a diff hunk that leads to the commented line, under the hunk's `@@` header. */
export function trimHunk(hunk: string): string {
  const lines = hunk.replace(/\s+$/, '').split(lineBreak);
  if (lines.length <= hunkLineLimit) return lines.join('\n');
  const header = lines[0]!.startsWith('@@') ? [lines[0]!] : [];
  const tail = lines.slice(lines.length - (hunkLineLimit - header.length - 1));
  const omitted = lines.length - header.length - tail.length;
  return [...header, `… ${omitted} lines of the hunk omitted …`, ...tail].join('\n');
}

/** Where a comment points: `path:line`, `path:start-end`, or the whole file; and whether it is outdated. */
export function locationOf(c: GitHubReviewComment): string {
  const path = inline(c.path);
  if (c.subjectType === 'file') return `${path} (the whole file)`;
  const outdated = c.line === null;
  const end = outdated ? c.originalLine : c.line;
  const start = outdated ? c.originalStartLine : c.startLine;
  const lines = end === null ? '' : start !== null && start !== end ? `:${start}-${end}` : `:${end}`;
  const side = c.side === 'LEFT' ? ' in the base version (removed lines)' : '';
  return outdated
    ? `${path}${lines}${side} (outdated: the code changed since; ${lines ? 'the line numbers are those of the commit it was written on' : 'it no longer points at a line'})`
    : `${path}${lines}${side}`;
}

const states: Record<string, string> = {
  APPROVED: 'approved',
  CHANGES_REQUESTED: 'changes requested',
  COMMENTED: 'commented',
  DISMISSED: 'dismissed',
};

function author(c: GitHubReviewComment, selfLogin: string | undefined): string {
  const login = inline(c.user?.login ?? 'ghost');
  if (same(login, selfLogin)) return `@${login} (you)`;
  return `@${login} (${inline(c.authorAssociation || 'NONE')})`;
}

function comment(c: GitHubReviewComment, selfLogin: string | undefined): string {
  return `  ${author(c, selfLogin)}, ${inline(c.createdAt)}:\n${quote(c.body || '(no text)', '  ')}`;
}

/**
 * The message body for a review: undefined when it has nothing to say (no body and no thread left).
 * The frame's header (who wrote it, trusted or not, where) comes from frameBody in src/api/message.ts.
 */
export function formatReview(
  review: GitHubReview,
  found: ReviewThreads,
  selfLogin?: string,
): string | undefined {
  const body = review.body.trim();
  const { threads, answered } = found;
  if (!body && threads.length === 0) return undefined;
  const parts: string[] = [`Review: ${states[review.state] ?? inline(review.state.toLowerCase())}.`];
  if (body) parts.push(`Review body:\n${quote(body)}`);
  const skipped = answered
    ? ` (${answered} more ${answered === 1 ? 'thread' : 'threads'} left out: you replied there after this review)`
    : '';
  if (threads.length > 0) {
    parts.push(
      `${threads.length} review ${threads.length === 1 ? 'thread' : 'threads'}${skipped}. ` +
        'Reply in a thread with `gh api repos/{owner}/{repo}/pulls/<n>/comments/<comment>/replies`.',
    );
  } else if (skipped) {
    parts.push(`No review threads${skipped}.`);
  }
  threads.forEach((thread, i) => {
    const lines = [
      `Thread ${i + 1} of ${threads.length}: ${locationOf(thread.root)}, comment ${thread.root.id}`,
      `  Diff hunk:`,
      fenced(trimHunk(thread.root.diffHunk), 'diff', '  '),
    ];
    if (thread.earlier.length > 0) {
      let earlier = thread.earlier;
      let omitted = '';
      if (earlier.length > earlierCommentLimit) {
        const dropped = earlier.length - earlierCommentLimit;
        omitted = `  … ${dropped} more earlier ${dropped === 1 ? 'comment' : 'comments'} omitted …`;
        earlier = [earlier[0]!, ...earlier.slice(earlier.length - earlierCommentLimit + 1)];
      }
      lines.push('  Earlier in this thread:');
      lines.push(...earlier.slice(0, 1).map((c) => comment(c, selfLogin)));
      if (omitted) lines.push(omitted);
      lines.push(...earlier.slice(1).map((c) => comment(c, selfLogin)));
    }
    lines.push(`  New in this review:`, ...thread.added.map((c) => comment(c, selfLogin)));
    parts.push(lines.join('\n'));
  });
  return parts.join('\n\n');
}
