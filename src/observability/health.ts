/**
 * /healthz, /readyz and /metrics: on the webhook's fastify server, or on a port of their own for the
 * operator. The operator's is a plain node:http server: it answers three paths, and fastify would cost
 * it a sixth of its memory at start.
 */
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthOptions {
  registry: Registry;
  /** Liveness: the process can still do its job. */
  live: () => boolean;
  /** Readiness: the process should receive traffic / count as available. */
  ready: () => { ok: boolean; reason?: string };
  /** Refreshes gauges that are computed from state rather than counted. */
  beforeScrape?: () => void;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

const text = (status: number, body: string): Answer => ({
  status,
  contentType: 'text/plain; charset=utf-8',
  body,
});

/** The answer for one of the three paths, or undefined for any other. */
async function answer(path: string, options: HealthOptions): Promise<Answer | undefined> {
  switch (path) {
    case '/healthz':
      return options.live() ? text(200, 'ok') : text(500, 'not live');
    case '/readyz': {
      const ready = options.ready();
      return ready.ok ? text(200, 'ok') : text(503, ready.reason ?? 'not ready');
    }
    case '/metrics':
      options.beforeScrape?.();
      return {
        status: 200,
        contentType: options.registry.contentType,
        body: await options.registry.metrics(),
      };
    default:
      return undefined;
  }
}

/** /healthz, /readyz and /metrics on an existing server. */
export function addHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    app.get(path, async (_req, reply) => {
      const { status, contentType, body } = (await answer(path, options))!;
      return reply.code(status).header('content-type', contentType).send(body);
    });
  }
}

/** /healthz, /readyz and /metrics on a port of their own. */
export async function startHealthServer(
  options: HealthOptions & { port: number; host?: string },
): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const send = (a: Answer) => {
      res.writeHead(a.status, { 'content-type': a.contentType });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(text(405, 'method not allowed'));
    answer(path, options).then(
      (a) => send(a ?? text(404, 'not found')),
      (error: unknown) => send(text(500, error instanceof Error ? error.message : String(error))),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
