import Fastify, { type FastifyInstance } from 'fastify';
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

/** /healthz, /readyz and /metrics on an existing server. */
export function addHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  app.get('/healthz', async (_req, reply) =>
    options.live() ? reply.send('ok') : reply.code(500).send('not live'),
  );
  app.get('/readyz', async (_req, reply) => {
    const ready = options.ready();
    return ready.ok ? reply.send('ok') : reply.code(503).send(ready.reason ?? 'not ready');
  });
  app.get('/metrics', async (_req, reply) => {
    options.beforeScrape?.();
    return reply.header('content-type', options.registry.contentType).send(await options.registry.metrics());
  });
}

/** /healthz, /readyz and /metrics on a port of their own. */
export async function startHealthServer(
  options: HealthOptions & { port: number; host?: string },
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  addHealthRoutes(app, options);
  await app.listen({ port: options.port, host: options.host ?? '0.0.0.0' });
  return app;
}
