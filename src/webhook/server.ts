/**
 * The webhook's HTTP surface: POST /webhook/github plus /healthz, /readyz and /metrics on one port.
 * Everything that can be refused from the headers alone (no or a malformed signature, no length, too
 * large, too much already buffered) is refused before the body is read. The body is then kept as bytes,
 * decoded once, and its X-Hub-Signature-256 checked on exactly that text before anything parses it.
 * GitHub gives a delivery 10 seconds, so everything here answers within a deadline.
 */
import http from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { signaturePattern, type SignatureVerifier } from '../clients/webhooks.js';
import { addHealthRoutes } from '../observability/health.js';
import type { Logger } from '../observability/log.js';
import type { WebhookMetrics } from '../observability/metrics.js';
import type { Answer, DeliveryLog } from './deliveries.js';

export const webhookPath = '/webhook/github';
/** GitHub caps webhook payloads at 25 MB. */
export const githubBodyLimitBytes = 25 * 1024 * 1024;

export interface WebhookServerOptions {
  verifier: SignatureVerifier;
  deliveries: DeliveryLog;
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
  /** Bodies buffered at once, across requests; beyond it a delivery gets 503 (memory stays bounded). */
  maxBufferedBytes?: number;
  /** A delivery not stored by then gets 503, well inside GitHub's 10 s. */
  handleDeadlineMs?: number;
}

/** Event names used as metric labels; anything else is counted as `other`, so labels stay bounded. */
const knownEvents = new Set([
  'issue_comment',
  'pull_request_review',
  'pull_request_review_comment',
  'pull_request',
  'ping',
]);

export class DeadlineError extends Error {}

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
  }
}

export function buildWebhookServer(options: WebhookServerOptions): FastifyInstance {
  const bodyLimit = options.bodyLimitBytes ?? githubBodyLimitBytes;
  // Two full-size bodies at once; each costs about three times its size while verified and parsed,
  // which stays well inside the Deployment's 384Mi.
  const maxBuffered = options.maxBufferedBytes ?? 2 * bodyLimit;
  const deadlineMs = options.handleDeadlineMs ?? 8000;
  let buffered = 0;
  const app = Fastify({
    logger: false,
    bodyLimit,
    // Node enforces requestTimeout only when it sweeps its connections; sweep often enough that a slow
    // body is cut off close to the limit rather than up to 30 s later. Idle connections stay open longer
    // than a proxy's (ingress-nginx keeps upstream connections 60 s), so a proxy never sends a request
    // on a connection that is being closed.
    serverFactory: (handler) =>
      http.createServer(
        {
          requestTimeout: options.bodyTimeoutMs,
          headersTimeout: Math.min(options.bodyTimeoutMs, 60_000),
          connectionsCheckingInterval: Math.max(100, Math.min(1000, options.bodyTimeoutMs / 4)),
          keepAliveTimeout: 72_000,
        },
        handler,
      ),
  });
  // Keep every body as bytes until its signature is checked.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

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
    if (buffered + length > maxBuffered) {
      return refuse(request, reply, 503, 'too many large deliveries at once; redeliver in a moment');
    }
    buffered += length;
    let released = false;
    const release = () => {
      if (!released) buffered -= length;
      released = true;
    };
    // Held until the answer is sent (or the connection drops): the body lives on while it is verified,
    // parsed and stored, not only while it arrives.
    reply.raw.once('close', release);
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

    const result = await options.deliveries.answer(delivery, async () => {
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
