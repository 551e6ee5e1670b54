/**
 * The only module that imports octokit. It adds what CodeMate needs on top of @octokit/rest: the
 * throttling and retry plugins (rate limits and 5xx are handled there, not hand-rolled), a conditional
 * request cache (a 304 costs nothing against GitHub's rate limit), GITHUB_API_URL for GitHub Enterprise,
 * and counters for charged versus cached requests and the remaining rate limit.
 */
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import {
  toItem,
  toReview,
  toReviewComment,
  type GitHubItem,
  type GitHubReaction,
  type GitHubReview,
  type GitHubReviewComment,
  type GitHubUser,
  type JobLog,
  type WorkflowJob,
  type WorkflowRun,
} from '../api/github.js';

const GitHubOctokit = Octokit.plugin(throttling, retry);

export interface GitHubRequestObserver {
  /** Every response: 'charged' requests count against the rate limit, 'cached' ones were 304s. */
  request(kind: 'charged' | 'cached', status: number): void;
  rateLimit(remaining: number, limit: number): void;
  /** A primary or secondary rate limit was hit; the request waits `retryAfterSeconds` and retries. */
  limited(retryAfterSeconds: number, secondary: boolean): void;
}

interface CacheEntry {
  etag: string;
  data: unknown;
  headers: Record<string, string | number | undefined>;
}

/** ETags and bodies of earlier GET responses, per token and URL; bounded, least recently used first out. */
export class ConditionalCache {
  private readonly entries = new Map<string, CacheEntry>();
  constructor(private readonly max = 2000) {}
  get(key: string): CacheEntry | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }
  set(key: string, entry: CacheEntry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
  get size(): number {
    return this.entries.size;
  }
}

export interface PullRequestState {
  number: number;
  url: string;
  state: 'open' | 'closed' | 'merged';
  headRef: string;
  headSha: string;
  draft: boolean;
  /** owner/repo of the head branch: another one for a fork's pull request; absent when it was deleted. */
  headRepository?: string;
}

/**
 * Where a client's token comes from when it changes: an App's installation token, renewed before it
 * expires. `key` names the identity for the conditional cache, which must outlive each token.
 */
export interface TokenSource {
  key: string;
  token(options?: { refresh?: boolean }): Promise<string>;
}

export interface GitHubOptions {
  /** A personal access token, or a source of installation tokens. */
  token: string | TokenSource;
  /** GITHUB_API_URL; api.github.com when unset. */
  baseUrl?: string | undefined;
  cache: ConditionalCache;
  observer?: GitHubRequestObserver;
  /** How often a rate-limited request may wait and retry (default 2). */
  rateLimitRetries?: number;
  /** Per-request timeout in milliseconds (default 15 s). */
  timeoutMs?: number;
  /** Where octokit's own warnings and errors go; silent when unset. */
  log?: { warn(message: string): void; error(message: string): void };
}

export class GitHub {
  private readonly octokit: InstanceType<typeof GitHubOctokit>;
  private readonly timeoutMs: number;

  constructor(options: GitHubOptions) {
    const retries = options.rateLimitRetries ?? 2;
    const observer = options.observer;
    const timeoutMs = options.timeoutMs ?? 15_000;
    this.timeoutMs = timeoutMs;
    const source = typeof options.token === 'string' ? undefined : options.token;
    this.octokit = new GitHubOctokit({
      ...(typeof options.token === 'string' ? { auth: options.token } : {}),
      ...(options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/$/, '') } : {}),
      userAgent: 'codemate',
      log: {
        debug: () => {},
        info: () => {},
        warn: (message: string) => options.log?.warn(message),
        // A 304 is how a conditional request succeeds; octokit reports it as a failed request.
        error: (message: string) => {
          if (!/ - 304 /.test(message)) options.log?.error(message);
        },
      },
      request: {
        fetch: (url: string, init: RequestInit) =>
          fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
      },
      throttle: {
        onRateLimit: (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) => {
          observer?.limited(retryAfter, false);
          return retryCount < retries;
        },
        onSecondaryRateLimit: (
          retryAfter: number,
          _options: unknown,
          _octokit: unknown,
          retryCount: number,
        ) => {
          observer?.limited(retryAfter, true);
          return retryCount < retries;
        },
      },
      retry: { doNotRetry: [304, 400, 401, 403, 404, 410, 422, 429, 451] },
    });

    const tokenKey = source ? source.key : (options.token as string).slice(-8);
    this.octokit.hook.wrap('request', async (request, requestOptions) => {
      const isGet = requestOptions.method === 'GET';
      const key = `${tokenKey} ${requestOptions.url} ${JSON.stringify({ ...requestOptions, headers: undefined, request: undefined })}`;
      const cached = isGet ? options.cache.get(key) : undefined;
      if (cached) requestOptions.headers = { ...requestOptions.headers, 'if-none-match': cached.etag };
      // An installation token is asked for each request (the source caches and renews it); a 401 gets one
      // new token and one retry, for a token revoked or expired before its time.
      const authorized = async () => {
        if (!source) return request(requestOptions);
        requestOptions.headers = {
          ...requestOptions.headers,
          authorization: `token ${await source.token()}`,
        };
        try {
          return await request(requestOptions);
        } catch (error) {
          if (!isUnauthorized(error)) throw error;
          const renewed = await source.token({ refresh: true });
          requestOptions.headers = { ...requestOptions.headers, authorization: `token ${renewed}` };
          return request(requestOptions);
        }
      };
      try {
        const response = await authorized();
        observer?.request('charged', response.status);
        this.observeRateLimit(response.headers, observer);
        const etag = response.headers.etag;
        if (isGet && etag) options.cache.set(key, { etag, data: response.data, headers: response.headers });
        return response;
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status === 304 && cached) {
          observer?.request('cached', 304);
          this.observeRateLimit(
            (error as { response?: { headers: Record<string, string> } }).response?.headers,
            observer,
          );
          return {
            status: 200,
            url: requestOptions.url,
            headers: cached.headers,
            data: cached.data,
          } as Awaited<ReturnType<typeof request>>;
        }
        if (status !== undefined) observer?.request('charged', status);
        throw error;
      }
    });
  }

  private observeRateLimit(
    headers: Record<string, unknown> | undefined,
    observer?: GitHubRequestObserver,
  ): void {
    const remaining = Number(headers?.['x-ratelimit-remaining']);
    const limit = Number(headers?.['x-ratelimit-limit']);
    if (Number.isFinite(remaining) && Number.isFinite(limit)) observer?.rateLimit(remaining, limit);
  }

  async whoami(): Promise<GitHubUser> {
    const { data } = await this.octokit.rest.users.getAuthenticated();
    return { login: data.login, type: data.type };
  }

  async pullRequest(owner: string, repo: string, number: number): Promise<PullRequestState> {
    const { data } = await this.octokit.rest.pulls.get({ owner, repo, pull_number: number });
    return {
      number: data.number,
      url: data.html_url,
      state: data.merged || data.merged_at ? 'merged' : (data.state as 'open' | 'closed'),
      headRef: data.head.ref,
      headSha: data.head.sha,
      draft: data.draft ?? false,
      ...(data.head.repo ? { headRepository: data.head.repo.full_name } : {}),
    };
  }

  /** The newest pull request whose head is `branch` in the same repository, open or not. */
  async findPullRequest(owner: string, repo: string, branch: string): Promise<PullRequestState | undefined> {
    const { data } = await this.octokit.rest.pulls.list({
      owner,
      repo,
      head: `${owner}:${branch}`,
      state: 'all',
      per_page: 10,
    });
    const pr = data.sort((a, b) => b.number - a.number)[0];
    return pr
      ? {
          number: pr.number,
          url: pr.html_url,
          state: pr.merged_at ? 'merged' : (pr.state as 'open' | 'closed'),
          headRef: pr.head.ref,
          headSha: pr.head.sha,
          draft: pr.draft ?? false,
        }
      : undefined;
  }

  async issueComments(owner: string, repo: string, number: number): Promise<GitHubItem[]> {
    const items = await this.octokit.paginate(this.octokit.rest.issues.listComments, {
      owner,
      repo,
      issue_number: number,
      per_page: 100,
    });
    return items.map((c) => toItem(c, c.created_at));
  }

  /** Every review comment on the pull request, of every submitted review: threads and their history. */
  async reviewComments(owner: string, repo: string, number: number): Promise<GitHubReviewComment[]> {
    const items = await this.octokit.paginate(this.octokit.rest.pulls.listReviewComments, {
      owner,
      repo,
      pull_number: number,
      per_page: 100,
    });
    return items.map(toReviewComment);
  }

  async reviews(owner: string, repo: string, number: number): Promise<GitHubReview[]> {
    const items = await this.octokit.paginate(this.octokit.rest.pulls.listReviews, {
      owner,
      repo,
      pull_number: number,
      per_page: 100,
    });
    return items.map((r) => toReview(r, r.submitted_at));
  }

  /**
   * The GitHub Actions workflow runs of one commit, newest first: one conditional request (a 304 while
   * nothing changed), whatever the number of runs up to 100.
   */
  async workflowRuns(owner: string, repo: string, headSha: string): Promise<WorkflowRun[]> {
    const { data } = await this.octokit.rest.actions.listWorkflowRunsForRepo({
      owner,
      repo,
      head_sha: headSha,
      per_page: 100,
    });
    return data.workflow_runs.map((r) => ({
      id: r.id,
      name: r.name ?? r.display_title,
      runAttempt: r.run_attempt ?? 1,
      headSha: r.head_sha,
      headBranch: r.head_branch,
      status: r.status,
      conclusion: r.conclusion,
      htmlUrl: r.html_url,
      updatedAt: r.updated_at,
    }));
  }

  /** How many workflows the repository has: none means it has no GitHub Actions CI. */
  async workflowCount(owner: string, repo: string): Promise<number> {
    const { data } = await this.octokit.rest.actions.listRepoWorkflows({ owner, repo, per_page: 1 });
    return data.total_count;
  }

  /** The jobs of one attempt of a workflow run. */
  async workflowJobs(owner: string, repo: string, runId: number, attempt: number): Promise<WorkflowJob[]> {
    const jobs = await this.octokit.paginate(this.octokit.rest.actions.listJobsForWorkflowRunAttempt, {
      owner,
      repo,
      run_id: runId,
      attempt_number: attempt,
      per_page: 100,
    });
    return jobs.map((j) => ({
      id: j.id,
      name: j.name,
      status: j.status,
      conclusion: j.conclusion,
      htmlUrl: j.html_url,
      failedSteps: (j.steps ?? [])
        .filter((s) => s.conclusion === 'failure' || s.conclusion === 'timed_out')
        .map((s) => s.name),
    }));
  }

  /**
   * The end of a job's log: the API answers with a redirect to the log's text, which is read as a stream
   * keeping only its last `maxBytes`, so a log of any size costs bounded memory. The log's host is not
   * GitHub's API: the token is not sent there, only the URL's own signature.
   */
  async jobLogTail(owner: string, repo: string, jobId: number, maxBytes: number): Promise<JobLog> {
    const response = await this.octokit.rest.actions.downloadJobLogsForWorkflowRun({
      owner,
      repo,
      job_id: jobId,
      request: { redirect: 'manual' },
    });
    const location = (response.headers as Record<string, string | undefined>).location;
    if (!location)
      throw new Error(`GitHub answered ${response.status} without a log location for job ${jobId}`);
    const log = await fetch(location, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!log.ok || !log.body) throw new Error(`the log of job ${jobId} answered ${log.status}`);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let truncatedHead = false;
    for await (const chunk of log.body) {
      chunks.push(Buffer.from(chunk as Uint8Array));
      bytes += (chunk as Uint8Array).length;
      while (chunks.length > 1 && bytes - chunks[0]!.length >= maxBytes) {
        bytes -= chunks.shift()!.length;
        truncatedHead = true;
      }
    }
    let kept = Buffer.concat(chunks);
    if (kept.length > maxBytes) {
      kept = kept.subarray(kept.length - maxBytes);
      truncatedHead = true;
    }
    return { text: kept.toString('utf8'), truncatedHead };
  }

  /**
   * Sets one commit status (context `codemate/session`: the session's state on the pull request). GitHub
   * keeps each write; the newest per context is the one shown.
   */
  async setCommitStatus(
    owner: string,
    repo: string,
    sha: string,
    status: {
      state: 'error' | 'failure' | 'pending' | 'success';
      context: string;
      description: string;
      targetUrl?: string;
    },
  ): Promise<void> {
    await this.octokit.rest.repos.createCommitStatus({
      owner,
      repo,
      sha,
      state: status.state,
      context: status.context,
      description: status.description,
      ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
    });
  }

  /**
   * Creates a check run on `sha` (GitHub Apps only: a personal access token gets 403). A conclusion
   * makes it completed.
   */
  async createCheckRun(owner: string, repo: string, sha: string, run: CheckRunWrite): Promise<CheckRun> {
    const now = new Date().toISOString();
    const { data } = await this.octokit.rest.checks.create({
      owner,
      repo,
      head_sha: sha,
      ...checkRunFields(run, now),
      started_at: now,
    });
    return { id: data.id, status: data.status, conclusion: data.conclusion };
  }

  /**
   * Updates a check run. GitHub does not move a completed check run back to in progress: for that, create
   * a new one (the newest of a name is the one the pull request shows).
   */
  async updateCheckRun(owner: string, repo: string, id: number, run: CheckRunWrite): Promise<CheckRun> {
    const { data } = await this.octokit.rest.checks.update({
      owner,
      repo,
      check_run_id: id,
      ...checkRunFields(run, new Date().toISOString()),
    });
    return { id: data.id, status: data.status, conclusion: data.conclusion };
  }

  /**
   * The newest check run named `name` on `ref`, of the App `appId` when given (another App may use the
   * same name); undefined when there is none.
   */
  async latestCheckRun(
    owner: string,
    repo: string,
    ref: string,
    name: string,
    appId?: number,
  ): Promise<CheckRun | undefined> {
    const { data } = await this.octokit.rest.checks.listForRef({
      owner,
      repo,
      ref,
      check_name: name,
      filter: 'latest',
      per_page: 100,
      ...(appId !== undefined ? { app_id: appId } : {}),
    });
    const run = data.check_runs
      .filter((r) => r.name === name && (appId === undefined || r.app?.id === appId))
      .sort((a, b) => b.id - a.id)[0];
    return run ? { id: run.id, status: run.status, conclusion: run.conclusion } : undefined;
  }

  /**
   * The 👍 reactions on an issue comment: one conditional request per page, so a comment that waits for
   * an approval costs nothing while nobody reacts (docs/approvals.md).
   */
  async approvalReactions(owner: string, repo: string, commentId: number): Promise<GitHubReaction[]> {
    const items = await this.octokit.paginate(this.octokit.rest.reactions.listForIssueComment, {
      owner,
      repo,
      comment_id: commentId,
      content: '+1',
      per_page: 100,
    });
    return items.map((r) => ({
      id: r.id,
      content: r.content,
      user: r.user ? { login: r.user.login, type: r.user.type } : null,
      createdAt: r.created_at,
    }));
  }

  /** One issue comment as GitHub shows it now (conditional: a 304 while it is unchanged). */
  async issueComment(owner: string, repo: string, commentId: number): Promise<GitHubItem> {
    const { data } = await this.octokit.rest.issues.getComment({ owner, repo, comment_id: commentId });
    return toItem(data, data.created_at);
  }

  /** A user's base permission on the repository: admin, write, read or none (maintain is write, triage read). */
  async permission(owner: string, repo: string, username: string): Promise<string> {
    try {
      const { data } = await this.octokit.rest.repos.getCollaboratorPermissionLevel({
        owner,
        repo,
        username,
      });
      return data.permission;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return 'none';
      throw error;
    }
  }

  /** Adds 👀 to an issue comment or a review comment (reviews have no reactions). */
  async acknowledge(
    kind: 'issue_comment' | 'review_comment',
    owner: string,
    repo: string,
    id: number,
  ): Promise<void> {
    if (kind === 'issue_comment') {
      await this.octokit.rest.reactions.createForIssueComment({
        owner,
        repo,
        comment_id: id,
        content: 'eyes',
      });
    } else {
      await this.octokit.rest.reactions.createForPullRequestReviewComment({
        owner,
        repo,
        comment_id: id,
        content: 'eyes',
      });
    }
  }
}

/** What CodeMate writes into a check run. */
export interface CheckRunWrite {
  name: string;
  status: 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'neutral' | 'action_required';
  title: string;
  summary: string;
  detailsUrl?: string;
}

/** A check run as GitHub holds it. */
export interface CheckRun {
  id: number;
  status: string;
  conclusion: string | null;
}

function checkRunFields(run: CheckRunWrite, now: string) {
  return {
    name: run.name,
    status: run.status,
    ...(run.conclusion ? { conclusion: run.conclusion, completed_at: now } : {}),
    ...(run.detailsUrl ? { details_url: run.detailsUrl } : {}),
    output: { title: run.title, summary: run.summary },
  };
}

/** GitHub refused the credentials: a revoked, expired or mistyped token. */
export function isUnauthorized(error: unknown): boolean {
  return (error as { status?: unknown } | null)?.status === 401;
}
