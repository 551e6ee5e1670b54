/**
 * The webhook's HTTP surface: POST /webhook/github plus /healthz, /readyz and /metrics on one port.
 * The body is kept as raw bytes and its X-Hub-Signature-256 is checked before anything parses it; only a
 * verified payload is routed. GitHub gives a delivery 10 seconds, so everything here answers fast.
 */
import http from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { SignatureVerifier } from '../clients/webhooks.js';
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
}

const signaturePattern = /^sha256=[0-9a-f]{64}$/;

export function buildWebhookServer(options: WebhookServerOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes ?? githubBodyLimitBytes,
    // Node enforces requestTimeout only when it sweeps its connections; sweep often enough that a slow
    // body is cut off close to the limit rather than up to 30 s later.
    serverFactory: (handler) =>
      http.createServer(
        {
          requestTimeout: options.bodyTimeoutMs,
          headersTimeout: Math.min(options.bodyTimeoutMs, 60_000),
          connectionsCheckingInterval: Math.max(100, Math.min(1000, options.bodyTimeoutMs / 4)),
        },
        handler,
      ),
  });
  // Keep every body as bytes: the signature covers the bytes as sent, not a re-serialization.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  addHealthRoutes(app, { registry: options.metrics.registry, live: () => true, ready: options.ready });

  app.post(webhookPath, async (request, reply) => {
    const started = process.hrtime.bigint();
    const event = header(request.headers['x-github-event']);
    const delivery = header(request.headers['x-github-delivery']);
    const signature = header(request.headers['x-hub-signature-256']);
    const send = (answer: Answer & { replay?: boolean }): FastifyReply => {
      options.metrics.deliveries.inc({ event: event ?? 'none', status: String(answer.status) });
      options.metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      if (answer.status === 503) reply.header('retry-after', '5');
      return reply.code(answer.status).send({
        ...answer.body,
        ...(delivery ? { delivery } : {}),
        ...(answer.replay ? { replay: true } : {}),
      });
    };
    const refuse = (status: number, reason: string): FastifyReply => {
      options.logger.warn({ event, delivery, status, reason }, 'webhook delivery refused');
      return send({ status, body: { status: 'refused', reason } });
    };

    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (!signature) {
      return refuse(
        401,
        'missing X-Hub-Signature-256: set a secret on the GitHub webhook, the same as GITHUB_WEBHOOK_SECRET',
      );
    }
    if (!signaturePattern.test(signature)) {
      return refuse(400, 'malformed X-Hub-Signature-256: expected sha256= and 64 hex digits');
    }
    if (!(await options.verifier.verify(raw.toString('utf8'), signature))) {
      return refuse(
        401,
        'signature does not match: verify that the GitHub webhook secret matches GITHUB_WEBHOOK_SECRET',
      );
    }
    if (!event) return refuse(400, 'missing X-GitHub-Event header');
    const payload = parsePayload(raw, header(request.headers['content-type']));
    if (!payload.ok) return refuse(400, payload.reason);

    const answer = await options.deliveries.answer(delivery, async () => {
      try {
        return await options.handle(event, payload.value, delivery);
      } catch (error) {
        return options.answerError(error);
      }
    });
    if (answer.replay) options.metrics.replays.inc();
    return send(answer);
  });
  return app;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** GitHub sends JSON, or a form with the JSON in `payload`, depending on the webhook's content type. */
function parsePayload(
  raw: Buffer,
  contentType: string | undefined,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  let text = raw.toString('utf8');
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
