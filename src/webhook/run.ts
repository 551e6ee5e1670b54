/**
 * `codemate webhook`: the CodeMate cache, the HTTP server, and a graceful shutdown (stop being ready,
 * finish the deliveries in flight, close).
 */
import { Kube } from '../clients/kube.js';
import { SignatureVerifier } from '../clients/webhooks.js';
import type { WebhookConfig } from '../config/index.js';
import { createLogger, errorFields, type Logger } from '../observability/log.js';
import { webhookMetrics } from '../observability/metrics.js';
import { CodeMateIndex } from './codemates.js';
import { DeliveryRecord } from './deliveryRecord.js';
import { ReplayCache } from './replayCache.js';
import { terminationSignal } from '../runtime/shutdown.js';
import { answerError, dispatch } from './dispatch.js';
import { buildWebhookServer, webhookPath } from './server.js';

export interface WebhookDeps {
  logger?: Logger;
  /** Resolves when the server should shut down (SIGTERM/SIGINT by default). */
  shutdownSignal?: Promise<void>;
  /** Called once the server listens, with its address. */
  onListening?: (url: string) => void;
}

export async function runWebhook(config: WebhookConfig, deps: WebhookDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ name: 'codemate-webhook', level: config.logLevel });
  const kube = Kube.load({ kubeconfig: config.kubeconfig, context: config.context });
  const metrics = webhookMetrics();
  const codemates = new CodeMateIndex(kube, {
    namespace: config.watchNamespace,
    onRestart: (error, delayMs) => {
      metrics.informerRestarts.inc();
      logger.warn({ resource: 'codemates', delayMs, ...errorFields(error) }, 'watch broke; restarting it');
    },
  });
  let shuttingDown = false;
  const record = new DeliveryRecord(kube, config.recordNamespace, logger);
  const app = buildWebhookServer({
    verifier: new SignatureVerifier(config.secrets),
    replayCache: new ReplayCache(config.deliveryCacheSize),
    handle: async (event, payload, delivery) => {
      const answer = await dispatch(event, payload, delivery, { codemates, kube, logger, metrics });
      if (answer.status >= 200 && answer.status < 300) record.stored(delivery, event);
      return answer;
    },
    answerError: (error) => answerError(error, logger),
    logger,
    metrics,
    bodyTimeoutMs: config.bodyTimeoutSeconds * 1000,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutSeconds * 1000,
    ready: () => {
      if (shuttingDown) return { ok: false, reason: 'shutting down' };
      return codemates.synced ? { ok: true } : { ok: false, reason: 'CodeMate cache not synced' };
    },
  });
  const shutdown = (deps.shutdownSignal ?? terminationSignal()).then(() => {
    shuttingDown = true;
  });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    {
      server: kube.server,
      namespace: config.watchNamespace ?? '(all)',
      port,
      path: webhookPath,
      secrets: config.secrets.length,
    },
    'webhook server listening',
  );
  deps.onListening?.(`http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`);
  await codemates.start();
  await record.started();
  await shutdown;
  record.stop();
  logger.info('shutting down: finishing deliveries in flight');
  await app.close();
  await codemates.stop();
  logger.info('webhook server stopped');
}
