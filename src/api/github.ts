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
}

/** A comment or review as GitHub's REST API and webhooks both send it. */
export interface RawItem {
  id: number;
  body?: string | null;
  user: { login: string; type?: string } | null;
  author_association: string;
  html_url: string;
}

export function toItem(raw: RawItem, createdAt: string | null | undefined): GitHubItem {
  return {
    id: raw.id,
    body: raw.body ?? '',
    user: raw.user ? { login: raw.user.login, type: raw.user.type } : null,
    authorAssociation: raw.author_association,
    htmlUrl: raw.html_url,
    createdAt: createdAt ?? new Date(0).toISOString(),
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
