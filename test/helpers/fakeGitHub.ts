/**
 * A fake GitHub REST API for tests: stateful (users, pull requests with their head and draft state, issue
 * comments, reviews and their review comments in threads, pending reviews, reactions, Actions workflows,
 * workflow runs and their attempts, jobs, job logs behind a redirect, and the check suites and check runs
 * GitHub shows for them), with ETags and 304s that cost nothing, rate-limit headers, and injectable faults
 * (403/429 rate limits, 5xx, slow answers). Every object is built from the example in GitHub's own
 * OpenAPI description (@octokit/openapi), and every response body is validated against that operation's
 * schema before it is sent, so the fake cannot drift from the real API's shapes.
 */
import { spawn } from 'node:child_process';
import {
  createHash,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  verify as verifySignature,
  type KeyObject,
} from 'node:crypto';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Ajv as AjvInstance, ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

const require = createRequire(import.meta.url);
// ajv and ajv-formats are CommonJS with a default export; load them as such.
const { Ajv } = require('ajv') as { Ajv: new (options: object) => AjvInstance };
const addFormats = (require('ajv-formats') as { default: (ajv: AjvInstance) => void }).default;
type Json = Record<string, unknown>;
interface OpenApi {
  paths: Record<
    string,
    Record<
      string,
      {
        responses: Record<
          string,
          {
            content?: Record<
              string,
              { schema: Json; examples?: Record<string, { $ref?: string; value?: unknown }> }
            >;
          }
        >;
      }
    >
  >;
  components: Json & { examples: Record<string, { value: unknown }> };
}

let spec: OpenApi | undefined;
let ajv: AjvInstance | undefined;
const validators = new Map<string, ValidateFunction>();
const specId = 'https://api.github.com/openapi.json';

function openApi(): OpenApi {
  spec ??= require('@octokit/openapi/generated/api.github.com.json') as OpenApi;
  return spec;
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    // ajv reads OpenAPI's `nullable` only beside a `type`; GET /app's schema has it beside an allOf.
    const entries = Object.entries(node as Json).filter(
      ([k]) => k !== 'nullable' || 'type' in (node as Json),
    );
    // A nullable enum allows null, as GitHub sends it (an in-progress check run's `conclusion: null`);
    // ajv checks the enum's values alone.
    const nullableEnum = (node as Json).nullable === true && Array.isArray((node as Json).enum);
    return Object.fromEntries(
      entries.map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' && v.startsWith('#/')
          ? `${specId}${v}`
          : k === 'enum' && nullableEnum && !(v as unknown[]).includes(null)
            ? [...(v as unknown[]), null]
            : rewriteRefs(v),
      ]),
    );
  }
  return node;
}

function validator(path: string, method: string, status: string): ValidateFunction {
  const key = `${method} ${path} ${status}`;
  const known = validators.get(key);
  if (known) return known;
  {
    if (!ajv) {
      ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
      addFormats(ajv);
      ajv.addSchema({ $id: specId, components: rewriteRefs(openApi().components) as Json });
    }
    const schema = response(path, method, status).content!['application/json']!.schema;
    const v = ajv.compile(rewriteRefs(schema) as Json);
    validators.set(key, v);
    return v;
  }
}

/** An operation's response, with a `$ref` to a shared response (e.g. 202 Accepted) followed. */
function response(path: string, method: string, status: string) {
  const r = openApi().paths[path]![method]!.responses[status]! as { $ref?: string; content?: unknown };
  const shared = (openApi().components as { responses?: Record<string, unknown> }).responses;
  return (r.$ref ? shared![r.$ref.split('/').pop()!] : r) as {
    content?: Record<string, { schema: Json }>;
  };
}

/** A deep copy of the example GitHub publishes for an operation's response. */
function example(path: string, method: string, status = '200'): Json {
  const content = openApi().paths[path]![method]!.responses[status]!.content!['application/json']!;
  const first = Object.values(content.examples ?? {})[0]!;
  const value = first.$ref ? openApi().components.examples[first.$ref.split('/').pop()!]!.value : first.value;
  const one = Array.isArray(value) ? value[0] : value;
  return structuredClone(one) as Json;
}

/** A deep copy of the first item of a listing that GitHub wraps as `{ total_count, <key>: [...] }`. */
function listExample(path: string, key: string): Json {
  return structuredClone((example(path, 'get')[key] as Json[])[0]!);
}

/** A check run an App wrote. */
export interface FakeCheckRun {
  id: number;
  repo: string;
  sha: string;
  name: string;
  status: string;
  conclusion: string | null;
  title: string | undefined;
  summary: string | undefined;
  detailsUrl: string | undefined;
  appId: number;
  by: string;
  startedAt: string;
  completedAt: string | null;
}

export interface FakeUser {
  login: string;
  id: number;
  type?: 'User' | 'Bot';
}

interface Item {
  id: number;
  user: FakeUser;
  body: string;
  association: string;
  createdAt: string;
  /** Set when the text was edited (`editComment`). */
  updatedAt?: string;
  state?: string;
}

/** Where a review comment sits. A reply sits where the comment it answers does. */
export interface ReviewCommentPlacement {
  path?: string;
  /** The (last) line commented on; the range's first with `startLine`. */
  line?: number;
  startLine?: number;
  side?: 'LEFT' | 'RIGHT';
  diffHunk?: string;
  /** The code changed since: GitHub then has no current line, only the original one. */
  outdated?: boolean;
  /** A comment on the whole file, which has no line. */
  file?: boolean;
  /** The id of the comment answered, which puts this one in its thread. */
  inReplyTo?: number;
}

interface ReviewCommentItem extends Item {
  reviewId: number;
  inReplyTo?: number;
  path: string;
  line: number;
  startLine?: number;
  side: 'LEFT' | 'RIGHT';
  diffHunk: string;
  outdated: boolean;
  file: boolean;
}

export interface ReviewSubmission {
  body?: string;
  state?: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'PENDING';
  association?: string;
  comments?: Array<ReviewCommentPlacement & { body: string }>;
}

interface Pull {
  number: number;
  head: string;
  headSha: string;
  draft: boolean;
  state: 'open' | 'closed';
  merged: boolean;
  issueComments: Item[];
  reviewComments: ReviewCommentItem[];
  reviews: Item[];
}

/** A job of a fake workflow run: what it concluded and the log it printed. */
export interface FakeJobSpec {
  name: string;
  conclusion: 'success' | 'failure' | 'timed_out' | 'cancelled' | 'skipped';
  /** The job's log text; when unset, its log answers 404, as an expired log does. */
  log?: string;
  /** The step that failed, for a failed job. */
  failedStep?: string;
}

interface Job extends FakeJobSpec {
  id: number;
  attempt: number;
}

interface Run {
  id: number;
  repo: string;
  workflowId: number;
  name: string;
  pull: number;
  headSha: string;
  headBranch: string;
  attempt: number;
  /** One check suite per attempt, as GitHub creates for a re-run. */
  checkSuiteIds: number[];
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  createdAt: string;
  updatedAt: string;
  /** The jobs of each attempt, attempt 1 first. */
  attempts: Job[][];
}

export type Fault =
  | { kind: 'status'; status: 500 | 502 | 503 }
  | { kind: 'rateLimit'; status: 403 | 429; resetInSeconds: number; retryAfter?: boolean }
  | { kind: 'slow'; delayMs: number };

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  /** Counted against the rate limit: GitHub does not count 304s. */
  charged: boolean;
}

/** Validates a response body against GitHub's schema, then sends it with an ETag. */
type Send = (
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  method: string,
  body: unknown,
  status?: number,
) => FastifyReply;

/** Routes that take the App's JWT instead of a token. */
const appRoutePattern = /^\/app(\/|$)|^\/repos\/[^/]+\/[^/]+\/installation$/;

function etagOf(body: string): string {
  return `W/"${createHash('sha1').update(body).digest('hex')}"`;
}

export class FakeGitHub {
  readonly app: FastifyInstance;
  url = '';
  readonly requests: RequestRecord[] = [];
  readonly reactions: Array<{
    subject: 'issue_comment' | 'review_comment';
    id: number;
    content: string;
    by: string;
    /** Who reacted, in full, and when, for the listing: set by `react`. */
    user?: FakeUser;
    createdAt?: string;
    reactionId?: number;
  }> = [];
  /** Commit statuses as they were written, in order (POST /repos/{owner}/{repo}/statuses/{sha}). */
  readonly statuses: Array<{
    repo: string;
    sha: string;
    state: string;
    context: string;
    description: string | undefined;
    targetUrl: string | undefined;
    by: string;
  }> = [];
  /**
   * Check runs written through the API (POST /repos/{owner}/{repo}/check-runs), as they are now; the
   * GitHub Actions jobs' check runs are not here (they come from `addRun`).
   */
  readonly checkRuns: FakeCheckRun[] = [];
  /** Each check run write, in order: a snapshot of the run after it (POST creates, PATCH updates). */
  readonly checkRunWrites: Array<{ method: 'POST' | 'PATCH' } & FakeCheckRun> = [];
  /** Repository permission per login (`setPermission`); everyone else has read, as on a public repository. */
  private readonly permissions = new Map<string, string>();
  private readonly tokens = new Map<string, FakeUser>();
  private readonly pulls = new Map<string, Pull>();
  private readonly workflows = new Map<string, Array<{ id: number; name: string }>>();
  private readonly runs: Run[] = [];
  private readonly faults: Array<{ fault: Fault; path?: RegExp }> = [];
  private nextId = 1000;
  rateLimit = { limit: 5000, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600 };

  constructor() {
    this.app = Fastify({ logger: false });
    this.routes();
  }

  async start(): Promise<string> {
    await this.app.listen({ port: 0, host: '127.0.0.1' });
    const address = this.app.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }

  addToken(token: string, user: FakeUser): void {
    this.tokens.set(token, user);
  }

  // --- GitHub App: JWTs, installations, installation tokens, hook deliveries, git over HTTP ----------

  /** The GitHub App: its id, slug and public key (the test holds the private key), and its webhook. */
  githubApp:
    { id: number; slug: string; publicKey: KeyObject; webhook?: { url: string; secret: string } } | undefined;
  private readonly installations = new Map<
    number,
    { id: number; account: string; repositories: string[]; permissions: Record<string, string> }
  >();
  private readonly installationTokens = new Map<
    string,
    { installationId: number; repositories: string[]; permissions: Record<string, string>; expiresAt: number }
  >();
  /** How long the installation tokens it issues last (GitHub: one hour). */
  installationTokenSeconds = 3600;
  /** The App's webhook deliveries, oldest first, as GitHub keeps them. */
  readonly hookDeliveries: Array<{
    id: number;
    guid: string;
    event: string;
    action: string | null;
    installationId: number | null;
    payload: Json;
    status: string;
    statusCode: number;
    deliveredAt: string;
    redelivery: boolean;
    durationMs: number;
  }> = [];
  /** git pushes it accepted: the repository and the token that pushed. */
  readonly gitPushes: Array<{ repository: string; token: string }> = [];
  private gitRoot: string | undefined;

  /**
   * Registers the GitHub App; answers its private key (PEM), which signs the JWTs it accepts. With
   * `wrongKey`, the answer is another key, which GitHub refuses as it refuses a deleted one.
   */
  createApp(id: number, slug: string): { privateKey: string; otherKey: string } {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.githubApp = { id, slug, publicKey: pair.publicKey };
    const pem = (k: KeyObject) => k.export({ type: 'pkcs1', format: 'pem' }).toString();
    return { privateKey: pem(pair.privateKey), otherKey: pem(other.privateKey) };
  }

  /** Where the App's deliveries go, signed with `secret`. */
  setAppWebhook(url: string, secret: string): void {
    this.githubApp!.webhook = { url, secret };
  }

  /** Installs the App on an account's repositories (owner/repo), granting these permissions. */
  installApp(account: string, repositories: string[], permissions: Record<string, string>): number {
    const id = this.nextId++;
    this.installations.set(id, { id, account, repositories, permissions });
    return id;
  }

  /** The App's bot user, which its installation tokens act as. */
  botUser(): FakeUser {
    return {
      login: `${this.githubApp?.slug ?? 'app'}[bot]`,
      id: 900_000 + (this.githubApp?.id ?? 0),
      type: 'Bot',
    };
  }

  /** The installation tokens issued so far, newest last. */
  issuedInstallationTokens(): Array<{
    token: string;
    repositories: string[];
    permissions: Record<string, string>;
    expiresAt: number;
  }> {
    return [...this.installationTokens.entries()].map(([token, t]) => ({ token, ...t }));
  }

  /** Every installation token issued so far expires now: the next use of one gets 401. */
  expireInstallationTokens(): void {
    for (const t of this.installationTokens.values()) t.expiresAt = Math.min(t.expiresAt, Date.now() - 1);
  }

  /**
   * Serves the bare repositories under `root` (<owner>/<repo>.git) over git's smart HTTP at /git/, as
   * GitHub serves git: Basic credentials `x-access-token:<token>`, an installation token's repositories,
   * permissions (contents: read to fetch, write to push) and expiry enforced, 401 when they are missing
   * or expired, 403 when the permission is.
   */
  serveGit(root: string): string {
    this.gitRoot = root;
    return `${this.url}/git/`;
  }

  /**
   * GitHub sends the App's webhook a delivery of `event`: signed, with a new X-GitHub-Delivery GUID, and
   * recorded with its outcome (a refused connection or a non-2xx answer is a failed delivery).
   */
  async deliver(
    event: string,
    payload: Json,
    installationId?: number,
  ): Promise<{ guid: string; status: number }> {
    const guid = randomUUID();
    const installation = installationId ?? [...this.installations.keys()][0] ?? null;
    const body =
      installation === null
        ? payload
        : { ...payload, installation: { id: installation, node_id: `I_${installation}` } };
    return { guid, status: await this.send(guid, event, body, installation, false) };
  }

  private async send(
    guid: string,
    event: string,
    payload: Json,
    installationId: number | null,
    redelivery: boolean,
  ): Promise<number> {
    const hook = this.githubApp?.webhook;
    if (!hook) throw new Error('the App has no webhook URL');
    const body = JSON.stringify(payload);
    const started = Date.now();
    let statusCode = 0;
    let status = 'failed to connect to host';
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'GitHub-Hookshot/codemate-fake',
          'x-github-event': event,
          'x-github-delivery': guid,
          'x-github-hook-id': '1',
          'x-github-hook-installation-target-type': 'integration',
          'x-github-hook-installation-target-id': String(this.githubApp!.id),
          'x-hub-signature-256': `sha256=${createHmac('sha256', hook.secret).update(body).digest('hex')}`,
        },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      statusCode = res.status;
      status = res.ok ? 'OK' : `Invalid HTTP Response: ${res.status}`;
    } catch {
      // Nothing listens: GitHub records the delivery as failed, with no HTTP status.
    }
    this.hookDeliveries.push({
      id: this.nextId++,
      guid,
      event,
      action: typeof payload.action === 'string' ? payload.action : null,
      installationId,
      payload,
      status,
      statusCode,
      deliveredAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      redelivery,
      durationMs: Date.now() - started,
    });
    return statusCode;
  }

  addPull(
    owner: string,
    repo: string,
    number: number,
    head: string,
    options: { draft?: boolean } = {},
  ): void {
    this.pulls.set(`${owner}/${repo}#${number}`, {
      number,
      head,
      headSha: this.sha(),
      draft: options.draft ?? false,
      state: 'open',
      merged: false,
      issueComments: [],
      reviewComments: [],
      reviews: [],
    });
  }

  private pull(owner: string, repo: string, number: number): Pull {
    const p = this.pulls.get(`${owner}/${repo}#${number}`);
    if (!p) throw new Error(`no pull request ${owner}/${repo}#${number}`);
    return p;
  }

  private add(list: Item[], user: FakeUser, body: string, association: string, state?: string): number {
    const id = this.nextId++;
    list.push({
      id,
      user,
      body,
      association,
      createdAt: new Date().toISOString(),
      ...(state ? { state } : {}),
    });
    return id;
  }

  comment(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    association = 'MEMBER',
  ): number {
    return this.add(this.pull(owner, repo, number).issueComments, user, body, association);
  }

  /**
   * One comment on the diff outside a review, as a reply or a new thread: GitHub makes a COMMENTED
   * review, without a body, to hold it. Returns the comment's id (its review's is `reviewIdOf`).
   */
  reviewComment(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    association = 'MEMBER',
    placement: ReviewCommentPlacement = {},
  ): number {
    return this.submitReview(owner, repo, number, user, {
      state: 'COMMENTED',
      association,
      comments: [{ ...placement, body }],
    }).commentIds[0]!;
  }

  review(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    body: string,
    state = 'CHANGES_REQUESTED',
    association = 'MEMBER',
  ): number {
    return this.add(this.pull(owner, repo, number).reviews, user, body, association, state);
  }

  /**
   * A review with its comments, new threads and replies, submitted at once as on GitHub; or, with
   * state PENDING, visible only to its author until `submitPending`.
   */
  submitReview(
    owner: string,
    repo: string,
    number: number,
    user: FakeUser,
    review: ReviewSubmission,
  ): { reviewId: number; commentIds: number[] } {
    const p = this.pull(owner, repo, number);
    const association = review.association ?? 'MEMBER';
    const reviewId = this.add(p.reviews, user, review.body ?? '', association, review.state ?? 'COMMENTED');
    const commentIds = (review.comments ?? []).map((c) => {
      const root = c.inReplyTo === undefined ? undefined : p.reviewComments.find((x) => x.id === c.inReplyTo);
      if (c.inReplyTo !== undefined && !root) throw new Error(`no review comment ${c.inReplyTo} to reply to`);
      const line = c.line ?? 10;
      const at: Omit<ReviewCommentItem, keyof Item | 'reviewId' | 'inReplyTo'> = root ?? {
        path: c.path ?? 'src/index.ts',
        line,
        ...(c.startLine !== undefined ? { startLine: c.startLine } : {}),
        side: c.side ?? 'RIGHT',
        diffHunk:
          c.diffHunk ??
          `@@ -${Math.max(1, line - 2)},2 +${Math.max(1, line - 2)},3 @@\n context\n+line ${line}`,
        outdated: c.outdated ?? false,
        file: c.file ?? false,
      };
      const id = this.nextId++;
      p.reviewComments.push({
        id,
        user,
        body: c.body,
        association,
        createdAt: new Date().toISOString(),
        reviewId,
        ...(root ? { inReplyTo: root.inReplyTo ?? root.id } : {}),
        path: at.path,
        line: at.line,
        ...(at.startLine !== undefined ? { startLine: at.startLine } : {}),
        side: at.side,
        diffHunk: at.diffHunk,
        outdated: at.outdated,
        file: at.file,
      });
      return id;
    });
    return { reviewId, commentIds };
  }

  /** Submits a pending review: it and its comments become visible to everyone. */
  submitPending(owner: string, repo: string, number: number, reviewId: number, state = 'COMMENTED'): void {
    const review = this.pull(owner, repo, number).reviews.find((r) => r.id === reviewId);
    if (review?.state !== 'PENDING') throw new Error(`review ${reviewId} is not pending`);
    review.state = state;
    review.createdAt = new Date().toISOString();
  }

  reviewIdOf(owner: string, repo: string, number: number, commentId: number): number {
    const comment = this.pull(owner, repo, number).reviewComments.find((c) => c.id === commentId);
    if (!comment) throw new Error(`no review comment ${commentId}`);
    return comment.reviewId;
  }

  /** A review as the REST API shows it (and as webhook payloads carry it). */
  restReview(owner: string, repo: string, number: number, reviewId: number): Json {
    const review = this.pull(owner, repo, number).reviews.find((r) => r.id === reviewId);
    if (!review) throw new Error(`no review ${reviewId}`);
    return this.reviewJson(owner, repo, number, review);
  }

  /** The review's comments as the REST API shows them (and as webhook payloads carry them). */
  restReviewComments(owner: string, repo: string, number: number, reviewId: number): Json[] {
    return this.pull(owner, repo, number)
      .reviewComments.filter((c) => c.reviewId === reviewId)
      .map((c) => this.reviewCommentJson(owner, repo, number, c));
  }

  close(owner: string, repo: string, number: number, merged: boolean): void {
    const p = this.pull(owner, repo, number);
    p.state = 'closed';
    p.merged = merged;
  }

  /** The pull request's head commit. */
  headSha(owner: string, repo: string, number: number): string {
    return this.pull(owner, repo, number).headSha;
  }

  /** A new commit on the pull request's head branch; answers its sha. */
  push(owner: string, repo: string, number: number): string {
    const p = this.pull(owner, repo, number);
    p.headSha = this.sha();
    return p.headSha;
  }

  /** The pull request leaves draft (GitHub's "Ready for review"). */
  markReady(owner: string, repo: string, number: number): void {
    this.pull(owner, repo, number).draft = false;
  }

  /** The pull request goes back to draft (GitHub's "Convert to draft"). */
  markDraft(owner: string, repo: string, number: number): void {
    this.pull(owner, repo, number).draft = true;
  }

  /** A workflow file in the repository; a repository with none has no GitHub Actions CI. */
  addWorkflow(owner: string, repo: string, name: string): number {
    const list = this.workflows.get(`${owner}/${repo}`) ?? [];
    const id = this.nextId++;
    list.push({ id, name });
    this.workflows.set(`${owner}/${repo}`, list);
    return id;
  }

  /**
   * A workflow run on the pull request's current head, completed with these jobs (attempt 1). The run
   * concludes `failure` when a job failed, else `success`. Adds the workflow when the repository lacks it.
   */
  runWorkflow(
    owner: string,
    repo: string,
    number: number,
    workflow: string,
    jobs: FakeJobSpec[],
  ): { runId: number; jobIds: number[] } {
    const p = this.pull(owner, repo, number);
    const known = this.workflows.get(`${owner}/${repo}`)?.find((w) => w.name === workflow);
    const now = new Date().toISOString();
    const run: Run = {
      id: this.nextId++,
      repo: `${owner}/${repo}`,
      workflowId: known?.id ?? this.addWorkflow(owner, repo, workflow),
      name: workflow,
      pull: number,
      headSha: p.headSha,
      headBranch: p.head,
      attempt: 0,
      checkSuiteIds: [],
      status: 'completed',
      conclusion: null,
      createdAt: now,
      updatedAt: now,
      attempts: [],
    };
    this.runs.push(run);
    return { runId: run.id, jobIds: this.attempt(run, jobs) };
  }

  /** A run whose job `job` failed, printing `log`. */
  failRun(
    owner: string,
    repo: string,
    number: number,
    options: { workflow?: string; job?: string; log?: string; failedStep?: string } = {},
  ): { runId: number; jobIds: number[] } {
    return this.runWorkflow(owner, repo, number, options.workflow ?? 'CI', [
      {
        name: options.job ?? 'test',
        conclusion: 'failure',
        failedStep: options.failedStep ?? 'Run npm test',
        ...(options.log !== undefined ? { log: options.log } : {}),
      },
    ]);
  }

  /** "Re-run jobs": a new attempt of the run, with a new check suite and new job ids. */
  rerun(runId: number, jobs: FakeJobSpec[]): number[] {
    const run = this.runs.find((r) => r.id === runId);
    if (!run) throw new Error(`no workflow run ${runId}`);
    return this.attempt(run, jobs);
  }

  private attempt(run: Run, specs: FakeJobSpec[]): number[] {
    run.attempt += 1;
    run.checkSuiteIds.push(this.nextId++);
    const jobs = specs.map((spec) => ({ ...spec, id: this.nextId++, attempt: run.attempt }));
    run.attempts.push(jobs);
    run.status = 'completed';
    run.conclusion = jobs.some((j) => j.conclusion === 'failure' || j.conclusion === 'timed_out')
      ? 'failure'
      : 'success';
    // GitHub's times have one-second resolution; a new attempt is always later than the last.
    const last = new Date(run.updatedAt).getTime();
    run.updatedAt = new Date(Math.max(Date.now(), last + 1000)).toISOString().replace(/\.\d+Z$/, 'Z');
    return jobs.map((j) => j.id);
  }

  /** The webhook payload GitHub sends when the run's latest attempt completes. */
  workflowRunPayload(runId: number, base: Json): Json {
    const run = this.runs.find((r) => r.id === runId)!;
    const [owner, repo] = run.repo.split('/') as [string, string];
    const payload = structuredClone(base);
    (payload.repository as Json).full_name = run.repo;
    payload.workflow_run = { ...(payload.workflow_run as Json), ...this.workflowRun(owner, repo, run) };
    return payload;
  }

  private sha(): string {
    return createHash('sha1').update(String(this.nextId++)).digest('hex');
  }

  /** The next matching request gets this answer instead. */
  fail(fault: Fault, path?: RegExp): void {
    this.faults.push({ fault, ...(path ? { path } : {}) });
  }

  /** Faults not yet answered. */
  pendingFaults(): number {
    return this.faults.length;
  }

  charged(): number {
    return this.requests.filter((r) => r.charged).length;
  }

  private user(u: FakeUser): Json {
    const base = example('/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get').user as Json;
    return {
      ...base,
      login: u.login,
      id: u.id,
      node_id: `U_${u.id}`,
      type: u.type ?? 'User',
      // A GitHub App's bot user lives at /apps/<slug>; its login carries a [bot] suffix.
      html_url:
        u.type === 'Bot'
          ? `https://github.com/apps/${u.login.replace(/\[bot\]$/, '')}`
          : `https://github.com/${u.login}`,
    };
  }

  private routes(): void {
    const app = this.app;
    app.addHook('onRequest', async (req, reply) => {
      const token = /^(?:token|Bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      // Job logs are served from a signed URL on another host: the signature is the credential.
      const signed = req.url.startsWith('/_logs/');
      // git checks its own (Basic) credentials; App routes take the App's JWT; installation tokens expire.
      if (req.url.startsWith('/git/')) return undefined;
      const refused = this.appAuthFailure(req.url, token);
      if (refused) {
        this.record(req, refused.status, true);
        return reply
          .code(refused.status)
          .send({ message: refused.message, documentation_url: 'https://docs.github.com/rest' });
      }
      const appRoute = appRoutePattern.test(req.url.split('?')[0]!);
      if (
        !signed &&
        !appRoute &&
        (!token || !(this.tokens.has(token) || this.installationTokens.has(token)))
      ) {
        this.record(req, 401, true);
        return reply
          .code(401)
          .send({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      }
      const i = this.faults.findIndex((f) => !f.path || f.path.test(req.url));
      if (i >= 0) {
        const [{ fault }] = this.faults.splice(i, 1) as [{ fault: Fault }];
        if (fault.kind === 'slow') {
          await new Promise((r) => setTimeout(r, fault.delayMs));
        } else if (fault.kind === 'status') {
          this.record(req, fault.status, true);
          return reply.code(fault.status).send({ message: 'Server Error' });
        } else {
          const reset = Math.floor(Date.now() / 1000) + fault.resetInSeconds;
          this.record(req, fault.status, true);
          reply
            .header('x-ratelimit-limit', this.rateLimit.limit)
            .header('x-ratelimit-remaining', 0)
            .header('x-ratelimit-reset', reset)
            .header('x-ratelimit-used', this.rateLimit.limit)
            .header('x-ratelimit-resource', 'core');
          if (fault.retryAfter) reply.header('retry-after', fault.resetInSeconds);
          return reply.code(fault.status).send({
            message: 'API rate limit exceeded for user.',
            documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
          });
        }
      }
      return undefined;
    });

    const send = (
      req: FastifyRequest,
      reply: FastifyReply,
      path: string,
      method: string,
      body: unknown,
      status = 200,
    ) => {
      const validate = validator(path, method, String(status));
      if (!validate(body)) {
        throw new Error(
          `fake GitHub answer for ${method.toUpperCase()} ${path} breaks GitHub's schema: ${JSON.stringify(validate.errors?.slice(0, 3))}`,
        );
      }
      const text = JSON.stringify(body);
      const etag = etagOf(text);
      reply.header('etag', etag).header('content-type', 'application/json; charset=utf-8');
      if (method === 'get' && req.headers['if-none-match'] === etag) {
        this.record(req, 304, false);
        this.rateHeaders(reply);
        return reply.code(304).send();
      }
      this.rateLimit.remaining = Math.max(0, this.rateLimit.remaining - 1);
      this.record(req, status, true);
      this.rateHeaders(reply);
      return reply.code(status).send(text);
    };

    type P = { owner: string; repo: string; n: string; id: string };
    app.get('/user', async (req, reply) => {
      if (this.installationTokens.has(/ (.+)$/.exec(req.headers.authorization!)![1]!)) {
        this.record(req, 403, true);
        return reply.code(403).send({ message: 'Resource not accessible by integration' });
      }
      const u = this.tokens.get(/ (.+)$/.exec(req.headers.authorization!)![1]!)!;
      const body = { ...example('/user', 'get'), login: u.login, id: u.id, type: u.type ?? 'User' };
      return send(req, reply, '/user', 'get', body);
    });
    app.get<{ Params: P; Querystring: { head?: string; state?: string } }>(
      '/repos/:owner/:repo/pulls',
      async (req, reply) => {
        const { owner, repo } = req.params;
        const head = req.query.head?.split(':').pop();
        const items = [...this.pulls.entries()]
          .filter(
            ([k, p]) =>
              k.startsWith(`${owner}/${repo}#`) &&
              (!head || p.head === head) &&
              (req.query.state === 'all' || p.state === (req.query.state ?? 'open')),
          )
          .map(([, p]) => this.pullSimple(owner, repo, p));
        return send(req, reply, '/repos/{owner}/{repo}/pulls', 'get', items);
      },
    );
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const p = this.pulls.get(`${owner}/${repo}#${n}`);
      if (!p) return reply.code(404).send({ message: 'Not Found' });
      return send(
        req,
        reply,
        '/repos/{owner}/{repo}/pulls/{pull_number}',
        'get',
        this.pullDetail(owner, repo, p),
      );
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/issues/:n/comments', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const items = this.pull(owner, repo, Number(n)).issueComments.map((c) => ({
        ...example('/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get'),
        id: c.id,
        node_id: `IC_${c.id}`,
        body: c.body,
        user: this.user(c.user),
        author_association: c.association,
        created_at: c.createdAt,
        updated_at: c.updatedAt ?? c.createdAt,
        html_url: `https://github.com/${owner}/${repo}/pull/${n}#issuecomment-${c.id}`,
        issue_url: `${this.url}/repos/${owner}/${repo}/issues/${n}`,
        url: `${this.url}/repos/${owner}/${repo}/issues/comments/${c.id}`,
      }));
      return send(req, reply, '/repos/{owner}/{repo}/issues/{issue_number}/comments', 'get', items);
    });
    // A pending review, and its comments, are seen by their author only.
    const visible = (req: FastifyRequest, p: Pull, reviewId: number) => {
      const review = p.reviews.find((r) => r.id === reviewId);
      return review?.state !== 'PENDING' || review.user.login === this.requester(req).login;
    };
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n/comments', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const p = this.pull(owner, repo, Number(n));
      const items = p.reviewComments
        .filter((c) => visible(req, p, c.reviewId))
        .map((c) => this.reviewCommentJson(owner, repo, Number(n), c));
      return send(req, reply, '/repos/{owner}/{repo}/pulls/{pull_number}/comments', 'get', items);
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/pulls/:n/reviews', async (req, reply) => {
      const { owner, repo, n } = req.params;
      const p = this.pull(owner, repo, Number(n));
      const items = p.reviews
        .filter((r) => visible(req, p, r.id))
        .map((r) => this.reviewJson(owner, repo, Number(n), r));
      return send(req, reply, '/repos/{owner}/{repo}/pulls/{pull_number}/reviews', 'get', items);
    });
    this.actionsRoutes(send);
    this.appRoutes(send);
    this.gitRoutes();
    this.statusRoute(send);
    this.checkRunRoutes(send);
    this.approvalRoutes(send);
    for (const [subject, route, path] of [
      [
        'issue_comment',
        '/repos/:owner/:repo/issues/comments/:id/reactions',
        '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions',
      ],
      [
        'review_comment',
        '/repos/:owner/:repo/pulls/comments/:id/reactions',
        '/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions',
      ],
    ] as const) {
      app.post<{ Params: P; Body: { content: string } }>(route, async (req, reply) => {
        const by = this.requester(req);
        const id = Number(req.params.id);
        const existing = this.reactions.find(
          (r) => r.subject === subject && r.id === id && r.content === req.body.content && r.by === by.login,
        );
        if (!existing) this.reactions.push({ subject, id, content: req.body.content, by: by.login });
        const body = { ...example(path, 'post'), content: req.body.content, user: this.user(by) };
        // GitHub answers 200 when the reaction already existed, 201 when it created it.
        return send(req, reply, path, 'post', body, existing ? 200 : 201);
      });
    }
  }

  /** The commit status endpoint: GitHub keeps every status; the newest per context is the one shown. */
  private statusRoute(send: Send): void {
    type Body = { state: string; context?: string; description?: string; target_url?: string };
    type Params = { owner: string; repo: string; sha: string };
    const path = '/repos/{owner}/{repo}/statuses/{sha}';
    this.app.post<{ Params: Params; Body: Body }>('/repos/:owner/:repo/statuses/:sha', async (req, reply) => {
      const { owner, repo, sha } = req.params;
      const by = this.requester(req);
      const body = req.body;
      if (!['error', 'failure', 'pending', 'success'].includes(body.state)) {
        this.record(req, 422, true);
        return reply.code(422).send({ message: 'Validation Failed' });
      }
      if ((body.description ?? '').length > 140) {
        this.record(req, 422, true);
        return reply.code(422).send({ message: 'description is too long (maximum is 140 characters)' });
      }
      const context = body.context ?? 'default';
      this.statuses.push({
        repo: `${owner}/${repo}`,
        sha,
        state: body.state,
        context,
        description: body.description,
        targetUrl: body.target_url,
        by: by.login,
      });
      const id = this.nextId++;
      const now = new Date().toISOString();
      const answer = {
        ...example(path, 'post', '201'),
        id,
        node_id: `SC_${id}`,
        url: `${this.url}/repos/${owner}/${repo}/statuses/${sha}`,
        state: body.state,
        context,
        description: body.description ?? null,
        target_url: body.target_url ?? null,
        creator: this.user(by),
        created_at: now,
        updated_at: now,
      };
      return send(req, reply, path, 'post', answer, 201);
    });
  }

  /**
   * Check runs: only an App's installation token, with the Checks write permission, may write them; a
   * personal access token gets 403, as from GitHub. GitHub does not move a completed check run back to
   * in progress; the fake refuses that (422), so that a client which relies on it fails here.
   */
  private checkRunRoutes(send: Send): void {
    type Body = {
      name?: string;
      head_sha?: string;
      status?: string;
      conclusion?: string;
      details_url?: string;
      started_at?: string;
      completed_at?: string;
      output?: { title?: string; summary?: string };
    };
    type Params = { owner: string; repo: string; id: string };
    const statuses = ['queued', 'in_progress', 'completed'];
    const conclusions = [
      'action_required',
      'cancelled',
      'failure',
      'neutral',
      'success',
      'skipped',
      'timed_out',
    ];
    /** Why the request may not write check runs (or its body is invalid); undefined when it may. */
    const refused = (req: FastifyRequest, body: Body): { status: number; message: string } | undefined => {
      const token = / (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const installation = this.installationTokens.get(token);
      if (!installation) return { status: 403, message: 'Resource not accessible by personal access token' };
      if (installation.permissions.checks !== 'write')
        return { status: 403, message: 'Resource not accessible by integration' };
      if (body.status !== undefined && !statuses.includes(body.status))
        return { status: 422, message: 'Invalid request.\n\nstatus is not included in the list' };
      if (body.conclusion !== undefined && !conclusions.includes(body.conclusion))
        return { status: 422, message: 'Invalid request.\n\nconclusion is not included in the list' };
      if (body.status === 'completed' && !body.conclusion)
        return {
          status: 422,
          message: 'Invalid request.\n\nconclusion is required when status is completed',
        };
      if (body.conclusion === 'action_required' && !body.details_url)
        return { status: 422, message: 'Invalid request.\n\ndetails_url is required for action_required' };
      if (body.output && (!body.output.title || !body.output.summary))
        return { status: 422, message: 'Invalid request.\n\noutput needs a title and a summary' };
      return undefined;
    };
    const answer = (req: FastifyRequest, reply: FastifyReply, no: { status: number; message: string }) => {
      this.record(req, no.status, true);
      return reply
        .code(no.status)
        .send({ message: no.message, documentation_url: 'https://docs.github.com/rest' });
    };
    const write = (method: 'POST' | 'PATCH', run: FakeCheckRun, body: Body) => {
      const now = new Date().toISOString();
      if (body.name !== undefined) run.name = body.name;
      if (body.details_url !== undefined) run.detailsUrl = body.details_url;
      if (body.output) {
        run.title = body.output.title;
        run.summary = body.output.summary;
      }
      // A conclusion completes the run.
      if (body.conclusion) {
        run.status = 'completed';
        run.conclusion = body.conclusion;
        run.completedAt = body.completed_at ?? now;
      } else if (body.status) {
        run.status = body.status;
      }
      this.checkRunWrites.push({ method, ...run });
    };
    this.app.post<{ Params: Params; Body: Body }>('/repos/:owner/:repo/check-runs', async (req, reply) => {
      const { owner, repo } = req.params;
      const body = req.body ?? {};
      const no =
        refused(req, body) ??
        (!body.name || !body.head_sha
          ? { status: 422, message: 'Invalid request.\n\nname and head_sha are required' }
          : undefined);
      if (no) return answer(req, reply, no);
      const run: FakeCheckRun = {
        id: this.nextId++,
        repo: `${owner}/${repo}`,
        sha: body.head_sha!,
        name: body.name!,
        status: 'queued',
        conclusion: null,
        title: undefined,
        summary: undefined,
        detailsUrl: undefined,
        appId: this.githubApp!.id,
        by: this.requester(req).login,
        startedAt: body.started_at ?? new Date().toISOString(),
        completedAt: null,
      };
      this.checkRuns.push(run);
      write('POST', run, body);
      const path = '/repos/{owner}/{repo}/check-runs';
      return send(req, reply, path, 'post', this.checkRunJson(owner, repo, run), 201);
    });
    this.app.patch<{ Params: Params; Body: Body }>(
      '/repos/:owner/:repo/check-runs/:id',
      async (req, reply) => {
        const { owner, repo, id } = req.params;
        const body = req.body ?? {};
        const run = this.checkRuns.find((c) => c.id === Number(id) && c.repo === `${owner}/${repo}`);
        const no =
          refused(req, body) ??
          (!run
            ? { status: 404, message: 'Not Found' }
            : run.appId !== this.githubApp?.id
              ? {
                  status: 403,
                  message:
                    'Invalid app_id `' +
                    this.githubApp?.id +
                    '` - check run can only be modified by its creator',
                }
              : run.status === 'completed' && body.status !== undefined && body.status !== 'completed'
                ? { status: 422, message: 'Invalid request.\n\na completed check run cannot be reopened' }
                : undefined);
        if (no) return answer(req, reply, no);
        write('PATCH', run!, body);
        const path = '/repos/{owner}/{repo}/check-runs/{check_run_id}';
        return send(req, reply, path, 'patch', this.checkRunJson(owner, repo, run!));
      },
    );
  }

  private checkRunJson(owner: string, repo: string, c: FakeCheckRun): Json {
    const base = example('/repos/{owner}/{repo}/check-runs', 'post', '201');
    return {
      ...base,
      id: c.id,
      node_id: `CR_${c.id}`,
      head_sha: c.sha,
      external_id: null,
      name: c.name,
      status: c.status,
      conclusion: c.conclusion,
      started_at: c.startedAt,
      completed_at: c.completedAt,
      details_url: c.detailsUrl ?? null,
      url: `${this.url}/repos/${owner}/${repo}/check-runs/${c.id}`,
      html_url: `https://github.com/${owner}/${repo}/runs/${c.id}`,
      output: {
        title: c.title ?? null,
        summary: c.summary ?? null,
        text: null,
        annotations_count: 0,
        annotations_url: `${this.url}/repos/${owner}/${repo}/check-runs/${c.id}/annotations`,
      },
      check_suite: { id: c.id + 1_000_000 },
      app: { ...(base.app as Json), id: c.appId, slug: this.githubApp?.slug ?? 'app' },
      pull_requests: [],
    };
  }

  /** A reaction on an issue comment by `user` (GitHub sends no webhook for it; the poller lists them). */
  react(commentId: number, user: FakeUser, content = '+1'): void {
    this.reactions.push({
      subject: 'issue_comment',
      id: commentId,
      content,
      by: user.login,
      user,
      createdAt: new Date().toISOString(),
      reactionId: this.nextId++,
    });
  }

  /** The author edits an issue comment's text. */
  editComment(owner: string, repo: string, number: number, commentId: number, body: string): void {
    const comment = this.pull(owner, repo, number).issueComments.find((c) => c.id === commentId);
    if (!comment) throw new Error(`no comment ${commentId} on ${owner}/${repo}#${number}`);
    comment.body = body;
    comment.updatedAt = new Date().toISOString();
  }

  /** A login's permission on every repository: admin, write, read or none. */
  setPermission(login: string, permission: 'admin' | 'write' | 'read' | 'none'): void {
    this.permissions.set(login, permission);
  }

  /** GET reactions of an issue comment (optionally of one content), and a collaborator's permission. */
  private approvalRoutes(send: Send): void {
    type P = { owner: string; repo: string; id: string; username: string };
    const reactionsPath = '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions';
    this.app.get<{ Params: P; Querystring: { content?: string } }>(
      '/repos/:owner/:repo/issues/comments/:id/reactions',
      async (req, reply) => {
        const id = Number(req.params.id);
        const items = this.reactions
          .filter(
            (r) =>
              r.subject === 'issue_comment' &&
              r.id === id &&
              (!req.query.content || r.content === req.query.content),
          )
          .map((r) => ({
            ...example(reactionsPath, 'get'),
            id: r.reactionId ?? 1,
            node_id: `REA_${r.reactionId ?? 1}`,
            content: r.content,
            user: this.user(r.user ?? { login: r.by, id: 1 }),
            created_at: r.createdAt ?? new Date(0).toISOString(),
          }));
        return send(req, reply, reactionsPath, 'get', items);
      },
    );
    const commentPath = '/repos/{owner}/{repo}/issues/comments/{comment_id}';
    this.app.get<{ Params: P }>('/repos/:owner/:repo/issues/comments/:id', async (req, reply) => {
      const { owner, repo } = req.params;
      for (const [key, p] of this.pulls) {
        if (!key.startsWith(`${owner}/${repo}#`)) continue;
        const c = p.issueComments.find((x) => x.id === Number(req.params.id));
        if (!c) continue;
        return send(req, reply, commentPath, 'get', {
          ...example(commentPath, 'get'),
          id: c.id,
          node_id: `IC_${c.id}`,
          body: c.body,
          user: this.user(c.user),
          author_association: c.association,
          created_at: c.createdAt,
          updated_at: c.updatedAt ?? c.createdAt,
          html_url: `https://github.com/${owner}/${repo}/pull/${p.number}#issuecomment-${c.id}`,
          issue_url: `${this.url}/repos/${owner}/${repo}/issues/${p.number}`,
          url: `${this.url}/repos/${owner}/${repo}/issues/comments/${c.id}`,
        });
      }
      return reply.code(404).send({ message: 'Not Found' });
    });
    const permissionPath = '/repos/{owner}/{repo}/collaborators/{username}/permission';
    this.app.get<{ Params: P }>(
      '/repos/:owner/:repo/collaborators/:username/permission',
      async (req, reply) => {
        const permission = this.permissions.get(req.params.username) ?? 'read';
        const base = example(permissionPath, 'get');
        return send(req, reply, permissionPath, 'get', {
          ...base,
          permission,
          role_name: permission,
          user: {
            ...this.user({ login: req.params.username, id: 1 }),
            permissions: {
              admin: permission === 'admin',
              maintain: permission === 'admin',
              push: permission === 'admin' || permission === 'write',
              triage: permission !== 'none',
              pull: permission !== 'none',
            },
            role_name: permission,
          },
        });
      },
    );
  }

  private requester(req: FastifyRequest): FakeUser {
    const token = / (.+)$/.exec(req.headers.authorization!)![1]!;
    return this.installationTokens.has(token) ? this.botUser() : this.tokens.get(token)!;
  }

  private reviewJson(owner: string, repo: string, n: number, r: Item): Json {
    return {
      ...example('/repos/{owner}/{repo}/pulls/{pull_number}/reviews', 'get'),
      id: r.id,
      node_id: `PRR_${r.id}`,
      body: r.body,
      state: r.state,
      user: this.user(r.user),
      author_association: r.association,
      // GitHub gives a pending review no submission time.
      ...(r.state === 'PENDING' ? { submitted_at: undefined } : { submitted_at: r.createdAt }),
      html_url: `https://github.com/${owner}/${repo}/pull/${n}#pullrequestreview-${r.id}`,
      pull_request_url: `${this.url}/repos/${owner}/${repo}/pulls/${n}`,
    };
  }

  /**
   * GitHub sends `line: null` (and `position: null`) for an outdated comment, which its own OpenAPI
   * description does not allow; the fake leaves them out, which the description allows and which
   * clients read the same way.
   */
  private reviewCommentJson(owner: string, repo: string, n: number, c: ReviewCommentItem): Json {
    const base = example('/repos/{owner}/{repo}/pulls/{pull_number}/comments', 'get');
    delete base.in_reply_to_id;
    delete base.line;
    delete base.position;
    delete base.start_side;
    delete base.original_line;
    delete base.original_position;
    return {
      ...base,
      id: c.id,
      node_id: `PRRC_${c.id}`,
      pull_request_review_id: c.reviewId,
      ...(c.inReplyTo !== undefined ? { in_reply_to_id: c.inReplyTo } : {}),
      body: c.body,
      user: this.user(c.user),
      author_association: c.association,
      created_at: c.createdAt,
      updated_at: c.createdAt,
      path: c.path,
      diff_hunk: c.diffHunk,
      subject_type: c.file ? 'file' : 'line',
      side: c.side,
      ...(c.startLine !== undefined ? { start_side: c.side } : {}),
      start_line: c.file || c.outdated ? null : (c.startLine ?? null),
      original_start_line: c.file ? null : (c.startLine ?? null),
      ...(c.file ? {} : { original_line: c.line, original_position: 3 }),
      ...(c.file || c.outdated ? {} : { line: c.line, position: 3 }),
      html_url: `https://github.com/${owner}/${repo}/pull/${n}#discussion_r${c.id}`,
      url: `${this.url}/repos/${owner}/${repo}/pulls/comments/${c.id}`,
      pull_request_url: `${this.url}/repos/${owner}/${repo}/pulls/${n}`,
    };
  }

  private actionsRoutes(send: Send): void {
    const app = this.app;
    type P = { owner: string; repo: string; id: string; n: string; ref: string };
    const runsOf = (owner: string, repo: string) => this.runs.filter((r) => r.repo === `${owner}/${repo}`);
    const jobById = (id: number) =>
      this.runs
        .flatMap((r) => r.attempts.flat().map((job) => ({ run: r, job })))
        .find((x) => x.job.id === id);

    app.get<{ Params: P }>('/repos/:owner/:repo/actions/workflows', async (req, reply) => {
      const { owner, repo } = req.params;
      const workflows = (this.workflows.get(`${owner}/${repo}`) ?? []).map((w) => ({
        ...listExample('/repos/{owner}/{repo}/actions/workflows', 'workflows'),
        id: w.id,
        node_id: `W_${w.id}`,
        name: w.name,
        path: `.github/workflows/${w.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.yml`,
        url: `${this.url}/repos/${owner}/${repo}/actions/workflows/${w.id}`,
      }));
      return send(req, reply, '/repos/{owner}/{repo}/actions/workflows', 'get', {
        total_count: workflows.length,
        workflows,
      });
    });
    app.get<{ Params: P; Querystring: { head_sha?: string; branch?: string } }>(
      '/repos/:owner/:repo/actions/runs',
      async (req, reply) => {
        const { owner, repo } = req.params;
        const runs = runsOf(owner, repo)
          .filter((r) => !req.query.head_sha || r.headSha === req.query.head_sha)
          .filter((r) => !req.query.branch || r.headBranch === req.query.branch)
          .sort((a, b) => b.id - a.id)
          .map((r) => this.workflowRun(owner, repo, r));
        return send(req, reply, '/repos/{owner}/{repo}/actions/runs', 'get', {
          total_count: runs.length,
          workflow_runs: runs,
        });
      },
    );
    const jobsRoute = (path: string, route: string, attemptOf: (run: Run, params: P) => number) =>
      app.get<{ Params: P }>(route, async (req, reply) => {
        const { owner, repo, id } = req.params;
        const run = runsOf(owner, repo).find((r) => r.id === Number(id));
        const attempt = run ? attemptOf(run, req.params) : 0;
        if (!run || !run.attempts[attempt - 1]) return reply.code(404).send({ message: 'Not Found' });
        const jobs = run.attempts[attempt - 1]!.map((j) => this.job(owner, repo, run, j));
        return send(req, reply, path, 'get', { total_count: jobs.length, jobs });
      });
    jobsRoute(
      '/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs',
      '/repos/:owner/:repo/actions/runs/:id/attempts/:n/jobs',
      (_run, params) => Number(params.n),
    );
    jobsRoute(
      '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs',
      '/repos/:owner/:repo/actions/runs/:id/jobs',
      (run) => run.attempt,
    );
    app.get<{ Params: P }>('/repos/:owner/:repo/actions/jobs/:id/logs', async (req, reply) => {
      const found = jobById(Number(req.params.id));
      if (!found || found.run.repo !== `${req.params.owner}/${req.params.repo}`) {
        return reply.code(404).send({ message: 'Not Found' });
      }
      // GitHub answers 302 with a short-lived signed URL; the redirect itself is a charged request.
      this.rateLimit.remaining = Math.max(0, this.rateLimit.remaining - 1);
      this.record(req, 302, true);
      this.rateHeaders(reply);
      const signature = createHash('sha1').update(`log ${found.job.id}`).digest('hex');
      return reply
        .code(302)
        .header('location', `${this.url}/_logs/jobs/${found.job.id}?sig=${signature}`)
        .send();
    });
    app.get<{ Params: P }>('/_logs/jobs/:id', async (req, reply) => {
      const found = jobById(Number(req.params.id));
      this.record(req, found?.job.log !== undefined ? 200 : 404, false);
      if (found?.job.log === undefined) return reply.code(404).send('The log has expired');
      return reply.code(200).header('content-type', 'text/plain; charset=utf-8').send(found.job.log);
    });
    app.get<{ Params: P }>('/repos/:owner/:repo/commits/:ref/check-suites', async (req, reply) => {
      const { owner, repo, ref } = req.params;
      const suites = runsOf(owner, repo)
        .filter((r) => r.headSha === ref)
        .flatMap((r) =>
          r.checkSuiteIds.map((id, i) => ({
            ...listExample('/repos/{owner}/{repo}/commits/{ref}/check-suites', 'check_suites'),
            id,
            node_id: `CS_${id}`,
            head_branch: r.headBranch,
            head_sha: r.headSha,
            status: 'completed',
            conclusion: this.conclusionOf(r.attempts[i]!),
            pull_requests: [],
            latest_check_runs_count: r.attempts[i]!.length,
            check_runs_url: `${this.url}/repos/${owner}/${repo}/check-suites/${id}/check-runs`,
            created_at: r.createdAt,
            updated_at: r.updatedAt,
          })),
        );
      return send(req, reply, '/repos/{owner}/{repo}/commits/{ref}/check-suites', 'get', {
        total_count: suites.length,
        check_suites: suites,
      });
    });
    app.get<{ Params: P; Querystring: { check_name?: string; app_id?: string } }>(
      '/repos/:owner/:repo/commits/:ref/check-runs',
      async (req, reply) => {
        const { owner, repo, ref } = req.params;
        // filter=latest, GitHub's default: the check runs of each run's latest attempt.
        const checkRuns = (
          runsOf(owner, repo)
            .filter((r) => r.headSha === ref)
            .flatMap((r) =>
              r.attempts[r.attempt - 1]!.map((j) => ({
                ...listExample('/repos/{owner}/{repo}/commits/{ref}/check-runs', 'check_runs'),
                // A GitHub Actions job and its check run share one id.
                id: j.id,
                node_id: `CR_${j.id}`,
                head_sha: r.headSha,
                name: j.name,
                status: 'completed',
                conclusion: j.conclusion,
                html_url: `https://github.com/${owner}/${repo}/actions/runs/${r.id}/job/${j.id}`,
                details_url: `https://github.com/${owner}/${repo}/actions/runs/${r.id}/job/${j.id}`,
                url: `${this.url}/repos/${owner}/${repo}/check-runs/${j.id}`,
                check_suite: { id: r.checkSuiteIds[r.attempt - 1]! },
                pull_requests: [],
                started_at: r.createdAt,
                completed_at: r.updatedAt,
              })),
            ) as Json[]
        )
          // And those Apps wrote: the newest of each name and App (filter=latest).
          .concat(
            this.checkRuns
              .filter((c) => c.repo === `${owner}/${repo}` && c.sha === ref)
              .filter(
                (c, _, all) => !all.some((o) => o.name === c.name && o.appId === c.appId && o.id > c.id),
              )
              .map((c) => this.checkRunJson(owner, repo, c)),
          )
          .filter(
            (c) =>
              (req.query.check_name === undefined || c.name === req.query.check_name) &&
              (req.query.app_id === undefined || (c.app as Json | null)?.id === Number(req.query.app_id)),
          );
        return send(req, reply, '/repos/{owner}/{repo}/commits/{ref}/check-runs', 'get', {
          total_count: checkRuns.length,
          check_runs: checkRuns,
        });
      },
    );
  }

  private conclusionOf(jobs: Job[]): string {
    return jobs.some((j) => j.conclusion === 'failure' || j.conclusion === 'timed_out')
      ? 'failure'
      : 'success';
  }

  private workflowRun(owner: string, repo: string, r: Run): Json {
    const base = listExample('/repos/{owner}/{repo}/actions/runs', 'workflow_runs');
    const pull = this.pulls.get(`${r.repo}#${r.pull}`);
    return {
      ...base,
      id: r.id,
      node_id: `WFR_${r.id}`,
      name: r.name,
      display_title: r.name,
      workflow_id: r.workflowId,
      check_suite_id: r.checkSuiteIds[r.attempt - 1],
      check_suite_node_id: `CS_${r.checkSuiteIds[r.attempt - 1]}`,
      head_branch: r.headBranch,
      head_sha: r.headSha,
      run_number: r.id,
      run_attempt: r.attempt,
      event: 'pull_request',
      status: r.status,
      conclusion: r.conclusion,
      html_url: `https://github.com/${owner}/${repo}/actions/runs/${r.id}`,
      url: `${this.url}/repos/${owner}/${repo}/actions/runs/${r.id}`,
      jobs_url: `${this.url}/repos/${owner}/${repo}/actions/runs/${r.id}/jobs`,
      logs_url: `${this.url}/repos/${owner}/${repo}/actions/runs/${r.id}/logs`,
      pull_requests: pull
        ? [
            {
              id: pull.number,
              number: pull.number,
              url: `${this.url}/repos/${owner}/${repo}/pulls/${pull.number}`,
              head: {
                ref: r.headBranch,
                sha: r.headSha,
                repo: { id: 1, url: `${this.url}/repos/${owner}/${repo}`, name: repo },
              },
              base: {
                ref: 'main',
                sha: '0'.repeat(40),
                repo: { id: 1, url: `${this.url}/repos/${owner}/${repo}`, name: repo },
              },
            },
          ]
        : [],
      created_at: r.createdAt,
      updated_at: r.updatedAt,
      run_started_at: r.createdAt,
    };
  }

  private job(owner: string, repo: string, r: Run, j: Job): Json {
    const base = listExample(
      '/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs',
      'jobs',
    );
    const step = (base.steps as Json[])[0]!;
    const failed = j.conclusion === 'failure' || j.conclusion === 'timed_out';
    return {
      ...base,
      id: j.id,
      node_id: `J_${j.id}`,
      run_id: r.id,
      run_attempt: j.attempt,
      run_url: `${this.url}/repos/${owner}/${repo}/actions/runs/${r.id}`,
      url: `${this.url}/repos/${owner}/${repo}/actions/jobs/${j.id}`,
      html_url: `https://github.com/${owner}/${repo}/actions/runs/${r.id}/job/${j.id}`,
      check_run_url: `${this.url}/repos/${owner}/${repo}/check-runs/${j.id}`,
      head_sha: r.headSha,
      head_branch: r.headBranch,
      workflow_name: r.name,
      name: j.name,
      status: 'completed',
      conclusion: j.conclusion,
      // GitHub's published example predates the now-required created_at.
      created_at: r.createdAt,
      started_at: r.createdAt,
      completed_at: r.updatedAt,
      steps: [
        { ...step, name: 'Set up job', number: 1, conclusion: 'success' },
        {
          ...step,
          name: j.failedStep ?? 'Run the tests',
          number: 2,
          conclusion: failed ? 'failure' : 'success',
        },
      ],
    };
  }

  private pullSimple(owner: string, repo: string, p: Pull): Json {
    return this.pullFrom(example('/repos/{owner}/{repo}/pulls', 'get'), owner, repo, p);
  }

  private pullDetail(owner: string, repo: string, p: Pull): Json {
    return {
      ...this.pullFrom(example('/repos/{owner}/{repo}/pulls/{pull_number}', 'get'), owner, repo, p),
      merged: p.merged,
    };
  }

  private pullFrom(base: Json, owner: string, repo: string, p: Pull): Json {
    return {
      ...base,
      // GitHub's published examples list requested teams without the now-required `type`.
      requested_teams: [],
      number: p.number,
      state: p.state,
      html_url: `https://github.com/${owner}/${repo}/pull/${p.number}`,
      // The head is a branch of the same repository (not a fork's).
      head: {
        ...(base.head as Json),
        ref: p.head,
        sha: p.headSha,
        label: `${owner}:${p.head}`,
        repo: {
          ...((base.head as Json).repo as Json),
          name: repo,
          full_name: `${owner}/${repo}`,
          owner: { ...(((base.head as Json).repo as Json).owner as Json), login: owner },
        },
      },
      draft: p.draft,
      merged_at: p.merged ? new Date().toISOString() : null,
      closed_at: p.state === 'closed' ? new Date().toISOString() : null,
    };
  }

  /** Why an App route refuses the JWT, or an installation token is refused: undefined when neither. */
  private appAuthFailure(
    url: string,
    token: string | undefined,
  ): { status: number; message: string } | undefined {
    const path = url.split('?')[0]!;
    if (appRoutePattern.test(path)) {
      if (!this.githubApp || !token) return { status: 401, message: 'A JSON web token could not be decoded' };
      const [header, claims, signature] = token.split('.');
      if (!header || !claims || !signature)
        return { status: 401, message: 'A JSON web token could not be decoded' };
      const ok = verifySignature(
        'RSA-SHA256',
        Buffer.from(`${header}.${claims}`),
        this.githubApp.publicKey,
        Buffer.from(signature, 'base64url'),
      );
      if (!ok) return { status: 401, message: 'A JSON web token could not be decoded' };
      const payload = JSON.parse(Buffer.from(claims, 'base64url').toString()) as {
        iss?: unknown;
        exp?: number;
        iat?: number;
      };
      const now = Math.floor(Date.now() / 1000);
      if (String(payload.iss) !== String(this.githubApp.id))
        return { status: 401, message: "'Issuer' claim ('iss') must be an Integer" };
      if (!payload.exp || payload.exp < now || payload.exp - (payload.iat ?? now) > 600)
        return { status: 401, message: "'Expiration time' claim ('exp') is too far in the future" };
      return undefined;
    }
    const installation = token ? this.installationTokens.get(token) : undefined;
    if (!installation) return undefined;
    if (installation.expiresAt <= Date.now()) return { status: 401, message: 'Bad credentials' };
    const repo = /^\/repos\/([^/]+\/[^/]+)/.exec(path)?.[1];
    if (repo && !installation.repositories.includes(repo)) return { status: 404, message: 'Not Found' };
    return undefined;
  }

  private appRoutes(send: Send): void {
    const app = this.app;
    const installationJson = (i: { id: number; account: string; permissions: Record<string, string> }) => {
      const base = example('/app/installations', 'get');
      return {
        ...base,
        id: i.id,
        app_id: this.githubApp!.id,
        app_slug: this.githubApp!.slug,
        target_type: 'Organization',
        // GitHub's description requires the account to be a user and an enterprise at once (allOf).
        account: {
          ...this.user({ login: i.account, id: 42 }),
          type: 'Organization',
          name: i.account,
          slug: i.account,
          created_at: '2020-01-01T00:00:00Z',
          updated_at: '2020-01-01T00:00:00Z',
        },
        repository_selection: 'selected',
        permissions: i.permissions,
        events: ['issue_comment', 'pull_request', 'pull_request_review', 'pull_request_review_comment'],
        access_tokens_url: `${this.url}/app/installations/${i.id}/access_tokens`,
        repositories_url: `${this.url}/installation/repositories`,
        html_url: `https://github.com/organizations/${i.account}/settings/installations/${i.id}`,
      };
    };
    app.get('/app', async (req, reply) =>
      send(req, reply, '/app', 'get', {
        ...example('/app', 'get'),
        id: this.githubApp!.id,
        slug: this.githubApp!.slug,
        name: this.githubApp!.slug,
        html_url: `https://github.com/apps/${this.githubApp!.slug}`,
      }),
    );
    app.get('/app/installations', async (req, reply) =>
      send(req, reply, '/app/installations', 'get', [...this.installations.values()].map(installationJson)),
    );
    app.get<{ Params: { owner: string; repo: string } }>(
      '/repos/:owner/:repo/installation',
      async (req, reply) => {
        const full = `${req.params.owner}/${req.params.repo}`;
        const found = [...this.installations.values()].find((i) => i.repositories.includes(full));
        if (!found) {
          this.record(req, 404, true);
          return reply.code(404).send({
            message: 'Not Found',
            documentation_url:
              'https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app',
          });
        }
        return send(req, reply, '/repos/{owner}/{repo}/installation', 'get', installationJson(found));
      },
    );
    app.post<{
      Params: { id: string };
      Body: { repositories?: string[]; permissions?: Record<string, string> } | undefined;
    }>('/app/installations/:id/access_tokens', async (req, reply) => {
      const installation = this.installations.get(Number(req.params.id));
      if (!installation) {
        this.record(req, 404, true);
        return reply.code(404).send({ message: 'Not Found' });
      }
      const requested = req.body?.permissions ?? installation.permissions;
      const granted = (name: string, level: string) =>
        installation.permissions[name] === level ||
        installation.permissions[name] === 'write' ||
        installation.permissions[name] === 'admin';
      if (Object.entries(requested).some(([name, level]) => !granted(name, level))) {
        this.record(req, 422, true);
        return reply
          .code(422)
          .send({ message: 'The permissions requested are not granted to this installation.' });
      }
      const repositories = (
        req.body?.repositories ?? installation.repositories.map((r) => r.split('/')[1]!)
      ).map((name) => installation.repositories.find((r) => r.split('/')[1] === name));
      if (repositories.some((r) => r === undefined)) {
        this.record(req, 422, true);
        return reply.code(422).send({
          message:
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
        });
      }
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      const expiresAt = Date.now() + this.installationTokenSeconds * 1000;
      this.installationTokens.set(token, {
        installationId: installation.id,
        repositories: repositories as string[],
        permissions: requested,
        expiresAt,
      });
      const base = example('/app/installations/{installation_id}/access_tokens', 'post', '201');
      return send(
        req,
        reply,
        '/app/installations/{installation_id}/access_tokens',
        'post',
        {
          token,
          expires_at: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, 'Z'),
          permissions: requested,
          repository_selection: 'selected',
          repositories: (repositories as string[]).map((full) => ({
            ...(base.repositories as Json[])[0],
            name: full.split('/')[1],
            full_name: full,
          })),
        },
        201,
      );
    });
    const deliveryItem = (d: FakeGitHub['hookDeliveries'][number]) => ({
      id: d.id,
      guid: d.guid,
      delivered_at: d.deliveredAt,
      redelivery: d.redelivery,
      duration: d.durationMs / 1000,
      status: d.status,
      status_code: d.statusCode,
      event: d.event,
      action: d.action,
      installation_id: d.installationId,
      repository_id: null,
    });
    app.get<{ Querystring: { per_page?: string; status?: string } }>(
      '/app/hook/deliveries',
      async (req, reply) => {
        const items = [...this.hookDeliveries]
          .reverse()
          .filter(
            (d) =>
              !req.query.status ||
              (req.query.status === 'success') === (d.statusCode >= 200 && d.statusCode < 300),
          )
          .slice(0, Number(req.query.per_page ?? 30))
          .map(deliveryItem);
        return send(req, reply, '/app/hook/deliveries', 'get', items);
      },
    );
    app.get<{ Params: { id: string } }>('/app/hook/deliveries/:id', async (req, reply) => {
      const d = this.hookDeliveries.find((x) => x.id === Number(req.params.id));
      if (!d) {
        this.record(req, 404, true);
        return reply.code(404).send({ message: 'Not Found' });
      }
      return send(req, reply, '/app/hook/deliveries/{delivery_id}', 'get', {
        ...deliveryItem(d),
        url: this.githubApp?.webhook?.url,
        request: { headers: { 'X-GitHub-Delivery': d.guid, 'X-GitHub-Event': d.event }, payload: d.payload },
        response: { headers: {}, payload: null },
      });
    });
    app.post<{ Params: { id: string } }>('/app/hook/deliveries/:id/attempts', async (req, reply) => {
      const d = this.hookDeliveries.find((x) => x.id === Number(req.params.id));
      if (!d) {
        this.record(req, 404, true);
        return reply.code(404).send({ message: 'Not Found' });
      }
      // GitHub accepts at once and sends the same delivery again (same GUID) soon after.
      setImmediate(() => void this.send(d.guid, d.event, d.payload, d.installationId, true));
      return send(req, reply, '/app/hook/deliveries/{delivery_id}/attempts', 'post', {}, 202);
    });
  }

  private gitRoutes(): void {
    const app = this.app;
    app.addContentTypeParser(/^application\/x-git-/, (_req, payload, done) => done(null, payload));
    app.all<{ Params: { '*': string } }>('/git/*', async (req, reply) => {
      const m = /^([^/]+)\/([^/]+?)(?:\.git)?(\/.*)$/.exec(req.params['*']);
      if (!m || !this.gitRoot) return reply.code(404).send('Not Found');
      const [, owner, repo, rest] = m as unknown as [string, string, string, string];
      const repository = `${owner}/${repo}`;
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
      const push = /service=git-receive-pack/.test(query) || rest.endsWith('/git-receive-pack');
      const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const token = basic ? Buffer.from(basic, 'base64').toString().split(':').slice(1).join(':') : undefined;
      const installation = token ? this.installationTokens.get(token) : undefined;
      const known = token !== undefined && (installation !== undefined || this.tokens.has(token));
      if (!known || (installation && installation.expiresAt <= Date.now())) {
        this.record(req, 401, false);
        return reply
          .code(401)
          .header('www-authenticate', 'Basic realm="GitHub"')
          .send('Invalid username or token.');
      }
      if (installation) {
        const level = installation.permissions.contents;
        const allowed =
          installation.repositories.includes(repository) &&
          (push ? level === 'write' : level === 'read' || level === 'write');
        if (!allowed) {
          this.record(req, 403, false);
          return reply.code(403).send(`Permission to ${repository}.git denied to ${this.botUser().login}.`);
        }
      }
      if (push && rest.endsWith('/git-receive-pack')) this.gitPushes.push({ repository, token: token! });
      this.record(req, 200, false);
      reply.hijack();
      const cgi = spawn('git', ['http-backend'], {
        env: {
          PATH: process.env.PATH,
          GIT_PROJECT_ROOT: this.gitRoot,
          GIT_HTTP_EXPORT_ALL: '1',
          PATH_INFO: `/${repository}.git${rest}`,
          QUERY_STRING: query,
          REQUEST_METHOD: req.method,
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
          GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
          REMOTE_USER: 'x-access-token',
          REMOTE_ADDR: '127.0.0.1',
        },
      });
      if (req.body && typeof (req.body as Readable).pipe === 'function')
        (req.body as Readable).pipe(cgi.stdin);
      else cgi.stdin.end();
      let head = Buffer.alloc(0);
      let headersDone = false;
      cgi.stdout.on('data', (chunk: Buffer) => {
        if (headersDone) {
          reply.raw.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        headersDone = true;
        let status = 200;
        for (const line of head.subarray(0, end).toString().split('\r\n')) {
          const [name, ...value] = line.split(':');
          if (!name) continue;
          if (name.toLowerCase() === 'status') status = Number(value.join(':').trim().split(' ')[0]);
          else reply.raw.setHeader(name, value.join(':').trim());
        }
        reply.raw.writeHead(status);
        reply.raw.write(head.subarray(end + 4));
      });
      cgi.on('close', () => reply.raw.end());
    });
  }

  private rateHeaders(reply: FastifyReply): void {
    reply
      .header('x-ratelimit-limit', this.rateLimit.limit)
      .header('x-ratelimit-remaining', this.rateLimit.remaining)
      .header('x-ratelimit-reset', this.rateLimit.reset)
      .header('x-ratelimit-used', this.rateLimit.limit - this.rateLimit.remaining)
      .header('x-ratelimit-resource', 'core');
  }

  private record(req: FastifyRequest, status: number, charged: boolean): void {
    this.requests.push({ method: req.method, path: req.url, status, charged });
  }
}
