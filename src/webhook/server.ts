/**
 * The webhook's HTTP surface: POST /webhook/github plus /healthz, /readyz and /metrics on one port.
 * Everything that can be refused from the headers alone (no or a malformed signature, no length, too
 * large, too much already buffered) is refused before the body is read. The body is then kept as bytes,
 * decoded once, and its X-Hub-Signature-256 checked on exactly that text before anything parses it.
 * GitHub gives a delivery 10 seconds, so everything here answers within a deadline.
 *
 * Until its body has arrived, a request cannot prove it comes from GitHub, so nothing that an unverified
 * request can do for free may keep a signed delivery out:
 * - Memory is charged with the body bytes that arrived, not the Content-Length claimed (bodyBudget.ts),
 *   so headers alone hold nothing. Each connection carries one request at a time, so it holds at most one
 *   body of at most 25 MB.
 * - A body that stops flowing for `bodyIdleTimeoutMs` (2 s) gets 408 and its connection is closed, giving
 *   back what it held; GitHub sends a body as fast as the network allows. The whole body still has
 *   `bodyTimeoutMs` (10 s), so trickling a byte now and then ends there, holding only those bytes.
 * - Small bodies, which is every event routed here, have a reserve that large ones cannot use, so filling
 *   the budget with real large bodies does not keep comments out either. Blocking them takes sending the
 *   whole budget again within every body timeout, a flood of bandwidth rather than a few idle sockets.
 *
 * The budget is deliberately not split per source address. Behind the Ingress of manifests/webhook.yaml
 * every request comes from an ingress-nginx pod, so a per-address cap would cap all of GitHub's traffic
 * (and ingress-nginx buffers a body before forwarding it, so slow bodies end there and never reach us).
 * Reached directly, GitHub delivers from a few addresses (the `hooks` ranges of api.github.com/meta), many
 * deliveries at once; a cap tight enough to hinder one attacking address would refuse those too, and
 * trusting X-Forwarded-For would let anyone pick their address.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { signaturePattern, type SignatureVerifier } from '../clients/webhooks.js';
import { addHealthRoutes } from '../observability/health.js';
import type { Logger } from '../observability/log.js';
import type { WebhookMetrics } from '../observability/metrics.js';
import { BodyBudget, type BodyAccount } from './bodyBudget.js';
import {
  bodyBudget,
  githubBodyLimitBytes,
  smallBodyBytes,
  webhookHandleDeadlineMs,
  webhookKeepAliveMs,
} from '../config/defaults.js';
import type { Answer } from './answer.js';
import type { ReplayCache } from './replayCache.js';

export const webhookPath = '/webhook/github';

export interface WebhookServerOptions {
  verifier: SignatureVerifier;
  replayCache: ReplayCache;
  /** Routes one verified, parsed delivery; throws when it cannot be stored. */
  handle: (event: string, payload: unknown, delivery: string | undefined) => Promise<Answer>;
  /** Turns a failure of `handle` into the answer GitHub gets. */
  answerError: (error: unknown) => Answer;
  logger: Logger;
  metrics: WebhookMetrics;
  ready: () => { ok: boolean; reason?: string };
  bodyLimitBytes?: number;
  /** A request whose body has not fully arrived by then gets 408. */
  bodyTimeoutMs: number;
  /** A body with no byte for this long gets 408, and its connection is closed. */
  bodyIdleTimeoutMs: number;
  /** Body bytes buffered at once, across requests; beyond it a delivery gets 503 (memory stays bounded). */
  maxBufferedBytes?: number;
  /** Bodies that declare at most this many bytes may also use the reserve below. */
  smallBodyBytes?: number;
  /** Room on top of `maxBufferedBytes` for small bodies only. */
  smallBodyReserveBytes?: number;
  /** A delivery not stored by then gets 503, well inside GitHub's 10 s. */
  handleDeadlineMs?: number;
}

/** Event names used as metric labels; anything else is counted as `other`, so labels stay bounded. */
const knownEvents = new Set([
  'issue_comment',
  'pull_request_review',
  'pull_request_review_comment',
  'pull_request',
  'check_suite',
  'check_run',
  'workflow_run',
  'ping',
]);

export class DeadlineError extends Error {}

/** A body refused while it arrives; answered like the refusals from the headers. */
class BodyRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The X-GitHub-Event, once the signature is verified (for metrics). */
    verifiedEvent?: string;
    /** What the webhook body has charged to the budget; set once its headers pass. */
    bodyAccount?: BodyAccount;
  }
}

export function buildWebhookServer(options: WebhookServerOptions): FastifyInstance {
  const bodyLimit = options.bodyLimitBytes ?? githubBodyLimitBytes;
  const budget = new BodyBudget({
    maxBufferedBytes: options.maxBufferedBytes ?? bodyBudget.fullSizeBodies * bodyLimit,
    smallBodyBytes: options.smallBodyBytes ?? smallBodyBytes,
    smallBodyReserveBytes: options.smallBodyReserveBytes ?? bodyBudget.smallBodies * smallBodyBytes,
  });
  const deadlineMs = options.handleDeadlineMs ?? webhookHandleDeadlineMs;
  const app = Fastify({
    logger: false,
    bodyLimit,
    // Node enforces requestTimeout only when it sweeps its connections; sweep often enough that a slow
    // body is cut off close to the limit rather than up to 30 s later.
    serverFactory: (handler) =>
      http.createServer(
        {
          requestTimeout: options.bodyTimeoutMs,
          headersTimeout: Math.min(options.bodyTimeoutMs, 60_000),
          connectionsCheckingInterval: Math.max(100, Math.min(1000, options.bodyTimeoutMs / 4)),
          keepAliveTimeout: webhookKeepAliveMs,
        },
        handler,
      ),
  });
  // Keep every body as bytes until its signature is checked. Only the webhook route reads one; any other
  // body is left unread (Node discards it).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', async (request: FastifyRequest, payload: Readable) =>
    request.bodyAccount
      ? receiveBody(payload, request.bodyAccount, Number(request.headers['content-length']), {
          idleMs: options.bodyIdleTimeoutMs,
        })
      : undefined,
  );

  addHealthRoutes(app, { registry: options.metrics.registry, live: () => true, ready: options.ready });

  const answer = (
    reply: FastifyReply,
    delivery: string | undefined,
    result: Answer & { replay?: boolean },
  ) => {
    if (result.status === 503) reply.header('retry-after', '5');
    return reply.code(result.status).send({
      ...result.body,
      ...(delivery ? { delivery } : {}),
      ...(result.replay ? { replay: true } : {}),
    });
  };
  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, reason: string) => {
    const delivery = header(request.headers['x-github-delivery']);
    // A wrong secret is worth an operator's attention; noise from scanners is not.
    options.logger[status === 401 && request.headers['x-hub-signature-256'] ? 'warn' : 'info'](
      { delivery, status, reason },
      'webhook delivery refused',
    );
    return answer(reply, delivery, { status, body: { status: 'refused', reason } });
  };
  // Fastify has already asked for the connection to be closed: the rest of the body is not read.
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof BodyRefusal) return refuse(request, reply, error.status, error.message);
    throw error;
  });

  app.addHook('onRequest', async (request, reply) => {
    // The route the router matched (it decodes the path), not the raw URL, which could spell it otherwise.
    if (!isWebhookRoute(request)) return;
    (request as FastifyRequest & { started?: bigint }).started = process.hrtime.bigint();
    const signature = header(request.headers['x-hub-signature-256']);
    if (!signature) {
      return refuse(
        request,
        reply,
        401,
        'missing X-Hub-Signature-256: set a secret on the GitHub webhook, the same as GITHUB_WEBHOOK_SECRET',
      );
    }
    if (!signaturePattern.test(signature)) {
      return refuse(request, reply, 400, 'malformed X-Hub-Signature-256: expected sha256= and 64 hex digits');
    }
    const length = Number(request.headers['content-length']);
    if (!Number.isInteger(length) || length < 0) {
      return refuse(request, reply, 411, 'Content-Length required (GitHub always sends one)');
    }
    if (length > bodyLimit) {
      return refuse(request, reply, 413, `body of ${length} bytes is over the ${bodyLimit}-byte limit`);
    }
    if (!budget.fits(length)) {
      return refuse(request, reply, 503, tooMuchBuffered);
    }
    request.bodyAccount = budget.open(length);
    // Held until the answer is sent (or the connection drops): the body lives on while it is verified,
    // parsed and stored, not only while it arrives.
    reply.raw.once('close', request.bodyAccount.release);
    return undefined;
  });

  app.addHook('onResponse', async (request, reply) => {
    if (!isWebhookRoute(request)) return;
    const event = request.verifiedEvent;
    const label = event === undefined ? 'unverified' : knownEvents.has(event) ? event : 'other';
    options.metrics.deliveries.inc({ event: label, status: String(reply.statusCode) });
    const started = (request as FastifyRequest & { started?: bigint }).started;
    if (started) options.metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
  });

  app.post(webhookPath, async (request, reply) => {
    const delivery = header(request.headers['x-github-delivery']);
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    // Decoded once: the text whose signature is checked is the text that is parsed.
    const text = raw.toString('utf8');
    if (!(await options.verifier.verify(text, header(request.headers['x-hub-signature-256'])))) {
      return refuse(
        request,
        reply,
        401,
        'signature does not match: verify that the GitHub webhook secret matches GITHUB_WEBHOOK_SECRET',
      );
    }
    const event = header(request.headers['x-github-event']);
    if (!event) return refuse(request, reply, 400, 'missing X-GitHub-Event header');
    request.verifiedEvent = event;
    const payload = parsePayload(text, header(request.headers['content-type']));
    if (!payload.ok) return refuse(request, reply, 400, payload.reason);

    const result = await options.replayCache.answer(delivery, async () => {
      try {
        return await withDeadline(
          options.handle(event, payload.value, delivery),
          deadlineMs,
          'storing the delivery',
        );
      } catch (error) {
        return options.answerError(error);
      }
    });
    if (result.replay) options.metrics.replays.inc();
    return answer(reply, delivery, result);
  });
  return app;
}

const tooMuchBuffered = 'too many large deliveries at once; redeliver in a moment';

/**
 * Reads one body, charging each chunk to its account as it arrives. Refuses with 503 when a chunk does
 * not fit, and with 408 when no byte has come for `idleMs`.
 */
function receiveBody(
  stream: Readable,
  account: BodyAccount,
  length: number,
  { idleMs }: { idleMs: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const settle = (error: BodyRefusal | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      stream.off('data', onData);
      // Whatever else arrives before the connection closes is dropped, not kept.
      stream.resume();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, received));
    };
    const idle = setTimeout(
      () => settle(new BodyRefusal(408, `the body stalled: no byte arrived for ${idleMs} ms`)),
      idleMs,
    );
    const onData = (chunk: Buffer) => {
      if (!account.charge(chunk.length)) return settle(new BodyRefusal(503, tooMuchBuffered));
      chunks.push(chunk);
      received += chunk.length;
      idle.refresh();
    };
    stream.on('data', onData);
    stream.once('end', () =>
      settle(
        received === length
          ? undefined
          : new BodyRefusal(400, `body of ${received} bytes, but Content-Length said ${length}`),
      ),
    );
    stream.on('error', () => settle(new BodyRefusal(400, 'the connection broke before the body arrived')));
    stream.once('close', () => settle(new BodyRefusal(400, 'the connection closed before the body arrived')));
  });
}

function isWebhookRoute(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === webhookPath;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** GitHub sends JSON, or a form with the JSON in `payload`, depending on the webhook's content type. */
export function parsePayload(
  text: string,
  contentType: string | undefined,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const form = new URLSearchParams(text).get('payload');
    if (form === null) return { ok: false, reason: 'form body without a payload field' };
    text = form;
  } else if (type !== 'application/json') {
    return {
      ok: false,
      reason: `unsupported content type ${type || '(none)'}: use application/json on the GitHub webhook`,
    };
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return { ok: false, reason: 'payload is not an object' };
    return { ok: true, value };
  } catch (error) {
    return { ok: false, reason: `payload is not JSON: ${(error as Error).message}` };
  }
}
