/**
 * Webhook test helpers: real payloads from @octokit/webhooks-examples, signed as GitHub signs them, and
 * the built `codemate webhook` as a child process.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { freePort } from '../../src/clients/ports.js';
import { cliPath, runCli } from './cli.js';
import { eventually } from './cluster.js';
import { httpGet, spawnServer, type ServerProcess } from './operator.js';

const require = createRequire(import.meta.url);
type Payload = Record<string, unknown> & { action?: string };
const examples = require('@octokit/webhooks-examples') as Array<{ name: string; examples: Payload[] }>;

/** Every published example of an event. */
export function examplesOf(event: string): Payload[] {
  const found = examples.find((e) => e.name === event);
  if (!found) throw new Error(`no @octokit/webhooks-examples for ${event}`);
  return found.examples.map((p) => structuredClone(p));
}

/** The first published example of `event.action`, as a fresh copy. */
export function example(event: string, action?: string): Payload {
  const found = examplesOf(event).find((p) => action === undefined || p.action === action);
  if (!found) throw new Error(`no example of ${event}.${action}`);
  return found;
}

let nextId = 7_000_000_000 + Math.floor(Math.random() * 1_000_000) * 100;

export interface CommentOptions {
  repository: string;
  pullRequest: number;
  body?: string;
  login?: string;
  association?: string;
  id?: number;
  /** GitHub's user type: User or Bot. */
  type?: string;
}

/**
 * A real issue_comment.created payload, moved onto a pull request of `repository`. The published
 * examples are all on plain issues; GitHub marks a pull request's issue with `issue.pull_request`.
 */
export function issueCommentOnPullRequest(options: CommentOptions): Payload & { comment: { id: number } } {
  const payload = example('issue_comment', 'created') as Payload & {
    issue: Record<string, unknown>;
    comment: Record<string, unknown> & { user: Record<string, unknown>; id: number };
    repository: Record<string, unknown>;
  };
  const [owner] = options.repository.split('/');
  payload.repository.full_name = options.repository;
  (payload.repository.owner as Record<string, unknown>).login = owner;
  payload.issue.number = options.pullRequest;
  payload.issue.pull_request = {
    url: `https://api.github.com/repos/${options.repository}/pulls/${options.pullRequest}`,
    html_url: `https://github.com/${options.repository}/pull/${options.pullRequest}`,
  };
  payload.comment.id = options.id ?? nextId++;
  payload.comment.body = options.body ?? 'Please add a test for the redirect.';
  payload.comment.created_at = new Date().toISOString();
  payload.comment.author_association = options.association ?? 'MEMBER';
  payload.comment.html_url = `https://github.com/${options.repository}/pull/${options.pullRequest}#issuecomment-${payload.comment.id}`;
  payload.comment.user.login = options.login ?? 'alice';
  payload.comment.user.type = options.type ?? 'User';
  return payload;
}

/**
 * The deliveries GitHub sends for a submitted review, from the published examples with the review and
 * its comments as the fake GitHub holds them: one pull_request_review_comment.created per comment and
 * one pull_request_review.submitted. GitHub gives no order; the comments come first here, as the harder
 * case for a receiver that must build the whole review from the first one.
 */
export function reviewDeliveries(
  repository: string,
  pullRequest: { number: number; head: string },
  review: Record<string, unknown>,
  comments: Array<Record<string, unknown>>,
): Array<[event: string, payload: Payload]> {
  const retarget = (payload: Payload) => {
    const p = payload as Payload & {
      repository: Record<string, unknown>;
      pull_request: Record<string, unknown>;
    };
    p.repository.full_name = repository;
    (p.repository.owner as Record<string, unknown>).login = repository.split('/')[0];
    p.pull_request.number = pullRequest.number;
    p.pull_request.head = {
      ...(p.pull_request.head as Record<string, unknown>),
      ref: pullRequest.head,
      repo: {
        ...((p.pull_request.head as { repo: Record<string, unknown> }).repo ?? {}),
        full_name: repository,
      },
    };
    return p;
  };
  const deliveries: Array<[string, Payload]> = comments.map((comment) => {
    const payload = retarget(example('pull_request_review_comment', 'created'));
    payload.comment = comment;
    return ['pull_request_review_comment', payload];
  });
  const submitted = retarget(example('pull_request_review', 'submitted'));
  submitted.review = review;
  deliveries.push(['pull_request_review', submitted]);
  return deliveries;
}

/** The X-Hub-Signature-256 GitHub sends: HMAC-SHA256 of the body bytes under the secret. */
export function sign(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface Delivery {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs one delivery as GitHub would; `signature: null` leaves the header out. */
export async function deliver(
  url: string,
  event: string,
  payload: unknown,
  options: { secret: string; delivery?: string; signature?: string | null; contentType?: string },
): Promise<Delivery> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signature = options.signature === undefined ? sign(options.secret, body) : options.signature;
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': options.contentType ?? 'application/json',
      'user-agent': 'GitHub-Hookshot/test',
      'x-github-event': event,
      'x-github-delivery': options.delivery ?? randomUUID(),
      ...(signature !== null ? { 'x-hub-signature-256': signature } : {}),
    },
    body,
  });
  const text = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed };
}

export interface WebhookProcess extends ServerProcess {
  url: string;
}

/** Runs the built `codemate webhook` and waits until it is ready (its CodeMate cache synced). */
export async function startWebhook(options: {
  kubeconfig: string;
  namespace?: string;
  secret: string;
  extraArgs?: string[];
}): Promise<WebhookProcess> {
  const port = await freePort();
  const server = spawnServer(
    [
      cliPath,
      'webhook',
      `--kubeconfig=${options.kubeconfig}`,
      '--host=127.0.0.1',
      `--port=${port}`,
      ...(options.namespace ? [`--watch-namespace=${options.namespace}`] : []),
      ...(options.extraArgs ?? []),
    ],
    { GITHUB_WEBHOOK_SECRET: options.secret, GITHUB_WEBHOOK_SECRET_FILE: '', LOG_LEVEL: 'info' },
    port,
  );
  await eventually(
    () => httpGet(`http://127.0.0.1:${port}/readyz`),
    (r) => r.status === 200,
    { what: 'webhook ready', describe: (r) => `${r.status} ${r.body}; logs: ${server.logs().slice(-800)}` },
  );
  return { ...server, url: `http://127.0.0.1:${port}/webhook/github` };
}

/**
 * The issue_comment.created delivery for comment `id` on o/r#7, as the fake GitHub at `githubUrl` holds
 * it: its `comment` is the REST object the fake serves, as in GitHub's own deliveries.
 */
export async function commentOnPullRequestPayload(
  githubUrl: string,
  id: number,
  token = 'ghp-session-token',
  pullRequest = 7,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${githubUrl}/repos/o/r/issues/${pullRequest}/comments`, {
    headers: { authorization: `token ${token}` },
  });
  const comment = ((await response.json()) as Array<{ id: number }>).find((c) => c.id === id);
  if (!comment) throw new Error(`the fake GitHub holds no comment ${id} on o/r#${pullRequest}`);
  const payload = issueCommentOnPullRequest({ repository: 'o/r', pullRequest }) as Record<string, unknown>;
  payload.comment = comment;
  return payload;
}

/**
 * Signs and sends a payload through `codemate webhook replay`, as a user replays a saved delivery, and
 * resolves with the webhook's answer. `env` says where to and with which secret (what `dev up` exports:
 * CODEMATE_WEBHOOK_URL, GITHUB_WEBHOOK_SECRET_FILE); the payload is written into `dir` first.
 */
export async function replayDelivery(options: {
  dir: string;
  env: Record<string, string>;
  event: string;
  payload: unknown;
  delivery?: string;
}): Promise<Record<string, unknown>> {
  const file = path.join(options.dir, `payload-${randomUUID()}.json`);
  await writeFile(file, JSON.stringify(options.payload));
  const result = await runCli(
    [
      'webhook',
      'replay',
      '--event',
      options.event,
      '--payload',
      file,
      '--delivery',
      options.delivery ?? randomUUID(),
    ],
    { env: options.env },
  );
  if (result.code !== 0) throw new Error(`codemate webhook replay exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}
