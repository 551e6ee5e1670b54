/**
 * `codemate operator`: leader election, the controller, and the health/metrics server, with a graceful
 * shutdown on SIGTERM (stop taking work, finish what is in flight, release the Lease).
 */
import { Kube } from '../clients/kube.js';
import { deliveryBackoff } from '../config/defaults.js';
import type { OperatorConfig } from '../config/index.js';
import { startHealthServer } from '../observability/health.js';
import { createLogger, errorFields, type Logger } from '../observability/log.js';
import { operatorMetrics } from '../observability/metrics.js';
import { informerSupervision } from '../runtime/informers.js';
import { terminationSignal } from '../runtime/shutdown.js';
import { CodeMateController, codemateLookup, watchCodeMates } from './controller.js';
import { Approvals } from './approvals.js';
import { DeliveryWorker } from './delivery.js';
import { GitHubClients } from './githubClients.js';
import { Poller } from './poller.js';
import { Reactions } from './reactions.js';
import { Redelivery } from './redelivery.js';
import { SessionReports } from './sessionReports.js';
import { SessionTokens } from './sessionTokens.js';
import type { GitHubRequestObserver } from '../clients/github.js';
import { LeaderElector } from './leader.js';

export interface OperatorDeps {
  logger?: Logger;
  /** Resolves when the operator should shut down (SIGTERM/SIGINT by default). */
  shutdownSignal?: Promise<void>;
}

export async function runOperator(config: OperatorConfig, deps: OperatorDeps = {}): Promise<void> {
  const logger = deps.logger ?? createLogger({ name: 'codemate-operator', level: config.logLevel });
  const kube = Kube.load({ kubeconfig: config.kubeconfig, context: config.context });
  const metrics = operatorMetrics();
  const observer: GitHubRequestObserver = {
    request: (kind, status) => metrics.githubRequests.inc({ kind, status: String(status) }),
    rateLimit: (remaining) => metrics.githubRateLimitRemaining.set(remaining),
    limited: (retryAfter, secondary) => {
      metrics.githubRateLimited.inc({ limit: secondary ? 'secondary' : 'primary' });
      logger.warn(
        { retryAfterSeconds: retryAfter, secondary },
        'GitHub rate limit reached; waiting for the reset',
      );
    },
  };
  // One controller, delivery worker and poller per leadership term: a replica that loses the Lease stops
  // acting at once and campaigns again, instead of exiting. Each part gets what it uses, in order.
  const newTerm = () => {
    const supervision = informerSupervision(logger, metrics.informerRestarts);
    const codemates = watchCodeMates(kube, config.watchNamespace, supervision);
    const codemate = codemateLookup(codemates);
    const controller = new CodeMateController({
      kube,
      namespace: config.watchNamespace,
      codemates,
      supervision,
      settings: { defaultImage: config.sessionImage, githubApp: config.githubApp !== undefined },
      workers: config.workers,
      resyncMs: config.resyncSeconds * 1000,
      logger,
      metrics,
    });
    const github = new GitHubClients({
      kube,
      logger,
      githubApiUrl: config.githubApiUrl,
      githubTimeoutMs: config.githubTimeoutSeconds * 1000,
      observer,
      app: config.githubApp,
    });
    const sessionTokens = new SessionTokens({ kube, logger, github, codemate });
    const reactions = new Reactions({ github, codemate });
    const reports = new SessionReports({
      kube,
      logger,
      github,
      codemate,
      minIntervalMs: config.sessionStatusIntervalSeconds * 1000,
      onUsage: (growth) => {
        metrics.sessionTokens.inc({ type: 'input' }, growth.inputTokens);
        metrics.sessionTokens.inc({ type: 'output' }, growth.outputTokens);
        metrics.sessionTokens.inc({ type: 'cache_read' }, growth.cacheReadTokens);
        metrics.sessionTokens.inc({ type: 'cache_creation' }, growth.cacheCreationTokens);
        metrics.sessionTurns.inc(growth.turns);
      },
      onWrite: (target, result) => metrics.sessionStatusWrites.inc({ target, result }),
    });
    const delivery = new DeliveryWorker({
      kube,
      namespace: config.watchNamespace,
      logger,
      codemates,
      supervision,
      retention: config.messageRetention,
      ackTimeoutSeconds: config.injectAckTimeoutSeconds,
      channels: config.sessionChannels,
      policy: {
        expiryMs: config.messageExpirySeconds * 1000,
        approvalExpiryMs: config.approvalExpirySeconds * 1000,
        ...deliveryBackoff,
        random: Math.random,
      },
      onAttempt: (result, path) => metrics.deliveryAttempts.inc({ result, path }),
      onFinal: (message, phase) =>
        metrics.deliveries.inc({ source: message.spec.source.type, result: phase }),
      onDelivered: (message, latencyMs) => {
        metrics.deliveries.inc({ source: message.spec.source.type, result: 'Delivered' });
        metrics.deliveryLatency.observe(latencyMs / 1000);
        reports.delivered(message.metadata.namespace, message.spec.codemate, message.metadata.name);
        reactions
          .acknowledge(message)
          .catch((error: unknown) =>
            logger.warn(
              { message: message.metadata.name, ...errorFields(error) },
              'could not add the 👀 reaction',
            ),
          );
      },
    });
    const poller = new Poller({
      kube,
      logger,
      github,
      codemate,
      hasMessage: (ns, name) => delivery.has(ns, name),
      monitorReportSeconds: config.monitorReportSeconds,
      approvals: new Approvals({
        kube,
        logger,
        awaiting: (ns, cm) => delivery.awaitingApproval(ns, cm),
      }),
    });
    const redelivery = config.githubApp
      ? new Redelivery({
          kube,
          logger,
          app: () => github.operatorApp(),
          namespace: config.leaseNamespace,
          codemates: () => codemates.list().map((cm) => codemate(cm.metadata.namespace, cm.metadata.name)!),
          hasMessage: (ns, name) => delivery.has(ns, name),
          limits: { everyMs: config.redeliverySeconds * 1000 },
          onRedeliver: () => metrics.githubRedeliveries.inc(),
        })
      : undefined;
    codemates.subscribe((_event, cm) => {
      poller.sync(cm.metadata.namespace, cm.metadata.name);
      sessionTokens.sync(cm.metadata.namespace, cm.metadata.name);
      reports.sync(cm.metadata.namespace, cm.metadata.name);
    });
    return { controller, delivery, poller, sessionTokens, redelivery, reports };
  };
  const leader = config.leaderElect
    ? new LeaderElector(kube, {
        namespace: config.leaseNamespace,
        name: config.leaseName,
        identity: config.identity,
        logger,
      })
    : undefined;

  /** The parts of the current leadership term, while there is one. */
  let term: ReturnType<typeof newTerm> | undefined;
  let shuttingDown = false;
  const health = await startHealthServer({
    port: config.healthPort,
    registry: metrics.registry,
    live: () => true,
    ready: () => {
      if (shuttingDown) return { ok: false, reason: 'shutting down' };
      if (leader && !leader.isLeader) return { ok: true };
      return term?.controller.synced && term.delivery.synced
        ? { ok: true }
        : { ok: false, reason: 'caches not synced' };
    },
    beforeScrape: () => {
      metrics.queueDepth.set(term?.controller.queue.length ?? 0);
      metrics.leader.set(leader ? Number(leader.isLeader) : 1);
      metrics.sessions.reset();
      for (const [phase, n] of Object.entries(term?.controller.phaseCounts() ?? {}))
        metrics.sessions.set({ phase }, n);
      for (const [state, n] of Object.entries(term?.reports.stateCounts() ?? {}))
        metrics.sessionStates.set({ state }, n);
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

  const shutdown = (deps.shutdownSignal ?? terminationSignal()).then(() => {
    shuttingDown = true;
  });
  const lifecycle = (async () => {
    while (!shuttingDown) {
      if (leader && !(await leader.acquire())) return;
      const current = newTerm();
      term = current;
      await current.controller.start();
      await current.delivery.start();
      current.redelivery?.start();
      logger.info('reconciling CodeMates');
      if (!leader) return shutdown;
      if ((await leader.holdLeadership()) === 'stopped') return;
      logger.warn('stopped reconciling after losing the Lease; campaigning again');
      current.poller.stop();
      current.sessionTokens.stop();
      current.redelivery?.stop();
      current.reports.stop();
      await current.delivery.stop();
      await current.controller.stop();
      term = undefined;
    }
  })();

  await Promise.race([shutdown, lifecycle]);
  shuttingDown = true;
  logger.info(
    { inFlight: term?.controller.queue.inFlight ?? 0 },
    'shutting down: finishing in-flight reconciles',
  );
  const stopping = term;
  stopping?.poller.stop();
  stopping?.sessionTokens.stop();
  stopping?.redelivery?.stop();
  stopping?.reports.stop();
  await leader?.stopCampaigning();
  await lifecycle.catch((error: unknown) => logger.error(errorFields(error), 'operator loop failed'));
  await stopping?.delivery.stop();
  await stopping?.controller.stop();
  await leader?.release();
  await health.close();
  logger.info('operator stopped');
}
