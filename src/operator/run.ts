/**
 * `codemate operator`: leader election, the controller, and the health/metrics server, with a graceful
 * shutdown on SIGTERM (stop taking work, finish what is in flight, release the Lease).
 */
import { CodemateError } from '../cli/errors.js';
import { Kube } from '../clients/kube.js';
import type { OperatorConfig } from '../config/index.js';
import { startHealthServer } from '../observability/health.js';
import { createLogger, errorFields, type Logger } from '../observability/log.js';
import { operatorMetrics } from '../observability/metrics.js';
import { CodeMateController } from './controller.js';
import { LeaderElector } from './leader.js';

export interface OperatorDeps {
  logger?: Logger;
  /** Resolves when the operator should shut down (SIGTERM/SIGINT by default). */
  shutdownSignal?: Promise<void>;
}

export function terminationSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

export async function runOperator(config: OperatorConfig, deps: OperatorDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ name: 'codemate-operator', level: config.logLevel });
  const kube = Kube.load({ kubeconfig: config.kubeconfig, context: config.context });
  const metrics = operatorMetrics();
  const controller = new CodeMateController({
    kube,
    namespace: config.watchNamespace,
    settings: { defaultImage: config.sessionImage },
    workers: config.workers,
    resyncMs: config.resyncSeconds * 1000,
    logger,
    metrics,
  });
  const leader = config.leaderElect
    ? new LeaderElector(kube, {
        namespace: config.leaseNamespace,
        name: config.leaseName,
        identity: config.identity,
        logger,
      })
    : undefined;

  let shuttingDown = false;
  const health = await startHealthServer({
    port: config.healthPort,
    registry: metrics.registry,
    live: () => true,
    ready: () => {
      if (shuttingDown) return { ok: false, reason: 'shutting down' };
      if (leader && !leader.isLeader) return { ok: true };
      return controller.synced ? { ok: true } : { ok: false, reason: 'caches not synced' };
    },
    beforeScrape: () => {
      metrics.queueDepth.set(controller.queue.length);
      metrics.leader.set(leader ? Number(leader.isLeader) : 1);
      metrics.sessions.reset();
      for (const [phase, n] of Object.entries(controller.phaseCounts())) metrics.sessions.set({ phase }, n);
    },
  });
  logger.info(
    {
      server: kube.server,
      namespace: config.watchNamespace ?? '(all)',
      leaderElect: config.leaderElect,
      identity: config.identity,
      healthPort: config.healthPort,
    },
    'operator starting',
  );

  const shutdown = deps.shutdownSignal ?? terminationSignal();
  let lost = false;
  const lifecycle = (async () => {
    if (leader && !(await leader.acquire())) return;
    await controller.start();
    logger.info('reconciling CodeMates');
    if (leader) lost = (await leader.holdLeadership()) === 'lost';
    else await shutdown;
  })();

  await Promise.race([shutdown, lifecycle]);
  shuttingDown = true;
  logger.info({ inFlight: controller.queue.inFlight }, 'shutting down: finishing in-flight reconciles');
  await leader?.stop();
  await lifecycle.catch((error: unknown) => logger.error(errorFields(error), 'operator loop failed'));
  await controller.stop();
  await health.close();
  if (lost) throw new CodemateError('lost the leader lease; exiting so that a fresh replica can take over');
  logger.info('operator stopped');
}
