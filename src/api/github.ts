/**
 * The comments and reviews CodeMate reads from GitHub, in one shape whether they came from a REST listing
 * (src/clients/github.ts) or a webhook payload (src/github/events.ts). Pure.
 */

export interface GitHubUser {
  login: string;
  type?: string | undefined;
}

export interface GitHubItem {
  id: number;
  body: string;
  user: GitHubUser | null;
  authorAssociation: string;
  htmlUrl: string;
  createdAt: string;
  /** When its text last changed, where GitHub says (comments): an approval must not predate an edit. */
  updatedAt?: string;
}

/**
 * The name CodeMate shows a session's state under on the pull request's head: the context of its commit
 * status, or the name of its check run in App mode.
 */
export const sessionStateName = 'codemate/session';

/** A comment or review as GitHub's REST API and webhooks both send it. */
export interface RawItem {
  id: number;
  body?: string | null;
  user: { login: string; type?: string } | null;
  author_association: string;
  html_url: string;
  updated_at?: string | null;
}

export function toItem(raw: RawItem, createdAt: string | null | undefined): GitHubItem {
  return {
    id: raw.id,
    body: raw.body ?? '',
    user: raw.user ? { login: raw.user.login, type: raw.user.type } : null,
    authorAssociation: raw.author_association,
    htmlUrl: raw.html_url,
    createdAt: createdAt ?? new Date(0).toISOString(),
    ...(raw.updated_at ? { updatedAt: raw.updated_at } : {}),
  };
}

/** A submitted (or, to its own author, pending) pull request review. */
export interface GitHubReview extends GitHubItem {
  /** APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING. */
  state: string;
}

export function toReview(
  raw: RawItem & { state: string },
  submittedAt: string | null | undefined,
): GitHubReview {
  return { ...toItem(raw, submittedAt), state: raw.state };
}

/**
 * A comment on a pull request's diff. Every one belongs to a review (a lone reply makes GitHub create a
 * COMMENTED review for it) and to a thread: the comment it replies to, followed to the first one.
 */
export interface GitHubReviewComment extends GitHubItem {
  reviewId: number | null;
  inReplyTo: number | null;
  path: string;
  diffHunk: string;
  /** The line in the pull request's current diff; null when the comment is outdated. */
  line: number | null;
  startLine: number | null;
  /** The line in the commit the comment was written on. */
  originalLine: number | null;
  originalStartLine: number | null;
  /** LEFT: the line is in the base (a removed line); RIGHT: in the head. */
  side: string | null;
  /** `file` for a comment on a whole file, which has no line. */
  subjectType: string | null;
}

export interface RawReviewComment extends RawItem {
  created_at: string;
  pull_request_review_id: number | null;
  in_reply_to_id?: number | undefined;
  path: string;
  diff_hunk: string;
  line?: number | null | undefined;
  start_line?: number | null | undefined;
  original_line?: number | null | undefined;
  original_start_line?: number | null | undefined;
  side?: string | null | undefined;
  subject_type?: string | null | undefined;
}

export function toReviewComment(raw: RawReviewComment): GitHubReviewComment {
  return {
    ...toItem(raw, raw.created_at),
    reviewId: raw.pull_request_review_id ?? null,
    inReplyTo: raw.in_reply_to_id ?? null,
    path: raw.path,
    diffHunk: raw.diff_hunk,
    line: raw.line ?? null,
    startLine: raw.start_line ?? null,
    originalLine: raw.original_line ?? null,
    originalStartLine: raw.original_start_line ?? null,
    side: raw.side ?? null,
    subjectType: raw.subject_type ?? null,
  };
}

/** A GitHub Actions workflow run, one attempt of it, as the poller reads it. */
export interface WorkflowRun {
  id: number;
  /** The workflow's name. */
  name: string;
  runAttempt: number;
  headSha: string;
  headBranch: string | null;
  status: string | null;
  conclusion: string | null;
  htmlUrl: string;
  /** When it last changed: for a completed run, when it completed. */
  updatedAt: string;
}

/** A job of a workflow run attempt; its id is also its check run's id. */
export interface WorkflowJob {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  htmlUrl: string | null;
  /** The names of its steps that failed. */
  failedSteps: string[];
}

/** The end of a job's log as fetched: `truncatedHead` when the log was longer than what was read. */
export interface JobLog {
  text: string;
  truncatedHead: boolean;
}

/** A reaction on a comment, as the approval check reads it. */
export interface GitHubReaction {
  id: number;
  content: string;
  user: GitHubUser | null;
  createdAt: string;
}
