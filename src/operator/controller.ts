/**
 * Wires informers to the work queue and the queue to reconcile + execute. Informer callbacks only
 * enqueue keys; workers read the current state from the caches when they run.
 */
import { apiVersion, kind, type CodeMate } from '../api/codemate.js';
import { supervisedInformer, type Informer } from '../clients/informer.js';
import {
  isConflict,
  isForbidden,
  isNotFound,
  statusCode,
  statusMessage,
  type Kube,
  type KubeObject,
} from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import { executePlan, recordEvent } from './execute.js';
import { WorkQueue } from './queue.js';
import { observePod, reconcile, type ObservedSecret } from './reconcile.js';
import { labels, type SessionSettings } from './session.js';

export interface ControllerOptions {
  kube: Kube;
  /** Watch one namespace, or all when undefined. */
  namespace: string | undefined;
  settings: SessionSettings;
  workers: number;
  resyncMs: number;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Told about every CodeMate event, e.g. to wake its message deliveries. */
  onCodeMateEvent?: (namespace: string, name: string) => void;
}

const managedSelector = `${labels.managedBy}=codemate`;

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ''}/${name ?? ''}`;
}

/** The owning CodeMate's key for an object we created, from its controller reference. */
function ownerKey(object: KubeObject): string | undefined {
  const owner = object.metadata.ownerReferences?.find((o) => o.kind === kind && o.controller);
  return owner ? keyOf(object.metadata.namespace, owner.name) : undefined;
}

export class CodeMateController {
  readonly queue = new WorkQueue();
  private readonly codemates: Informer<CodeMate & KubeObject>;
  private readonly pods: Informer<KubeObject>;
  private readonly pvcs: Informer<KubeObject>;
  private workers: Array<Promise<void>> = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(private readonly options: ControllerOptions) {
    const { kube, namespace, logger, metrics } = options;
    const onRestart = (resource: string) => (error: unknown, delayMs: number) => {
      metrics.informerRestarts.inc({ resource });
      logger.warn({ resource, delayMs, ...errorFields(error) }, 'watch broke; restarting it');
    };
    const onRelist = (resource: string) => (lists: number) =>
      logger.info({ resource, lists }, 'relisting: the watch history expired (410 Gone) or a list failed');
    this.codemates = supervisedInformer<CodeMate & KubeObject>(kube, {
      apiVersion,
      kind,
      plural: 'codemates',
      namespace,
      onEvent: (event, cm) => this.onCodeMate(event, cm),
      onRestart: onRestart('codemates'),
      onRelist: onRelist('codemates'),
    });
    const enqueueOwner = (_event: string, object: KubeObject) => {
      const key = ownerKey(object);
      if (key) this.queue.add(key);
    };
    this.pods = supervisedInformer(kube, {
      apiVersion: 'v1',
      kind: 'Pod',
      plural: 'pods',
      namespace,
      labelSelector: managedSelector,
      onEvent: enqueueOwner,
      onRestart: onRestart('pods'),
      onRelist: onRelist('pods'),
    });
    this.pvcs = supervisedInformer(kube, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      plural: 'persistentvolumeclaims',
      namespace,
      labelSelector: managedSelector,
      onEvent: enqueueOwner,
      onRestart: onRestart('persistentvolumeclaims'),
      onRelist: onRelist('persistentvolumeclaims'),
    });
  }

  /**
   * Our own status writes come back as update events. Only what the reconcile reads needs one: a new
   * generation (a spec change), a deletion, or what the poller found on GitHub (the pull request and
   * the token's login). Pod events and the periodic resync cover everything else.
   */
  private readonly seen = new Map<string, string>();
  private onCodeMate(event: string, cm: CodeMate & KubeObject): void {
    const key = keyOf(cm.metadata.namespace, cm.metadata.name);
    this.options.onCodeMateEvent?.(cm.metadata.namespace ?? '', cm.metadata.name ?? '');
    if (event === 'delete') {
      this.seen.delete(key);
      return;
    }
    const pr = cm.status?.pullRequest;
    const github = cm.status?.github;
    const inputs = [cm.metadata.generation, pr?.number, pr?.state, github?.login, github?.error].join('|');
    const unchanged = event === 'update' && this.seen.get(key) === inputs && !cm.metadata.deletionTimestamp;
    this.seen.set(key, inputs);
    if (!unchanged) this.queue.add(key);
  }

  /** A CodeMate from the cache, with its kind set. */
  getCodeMate(namespace: string, name: string): CodeMate | undefined {
    const cached = this.codemates.get(name, namespace);
    return cached ? ({ ...cached, apiVersion, kind } as CodeMate) : undefined;
  }

  get synced(): boolean {
    return this.codemates.synced && this.pods.synced && this.pvcs.synced;
  }

  /** CodeMates in the cache, for metrics. */
  phaseCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const cm of this.codemates.list()) {
      const phase = cm.status?.phase ?? 'Unknown';
      counts[phase] = (counts[phase] ?? 0) + 1;
    }
    return counts;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await Promise.all([this.pods.start(), this.pvcs.start()]);
    await this.codemates.start();
    for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
    this.resyncTimer = setInterval(() => this.enqueueAll(), this.options.resyncMs);
    this.resyncTimer.unref();
  }

  /** Stops taking work, lets in-flight reconciles finish, then stops the watches. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.workers);
    await Promise.all([this.codemates.stop(), this.pods.stop(), this.pvcs.stop()]);
  }

  private enqueueAll(): void {
    for (const cm of this.codemates.list()) this.queue.add(keyOf(cm.metadata.namespace, cm.metadata.name));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.options.metrics.queueDepth.set(this.queue.length);
      const end = this.options.metrics.reconcileDuration.startTimer();
      try {
        const requeueAfterMs = await this.reconcileKey(key);
        this.queue.forget(key);
        if (requeueAfterMs) this.queue.addAfter(key, requeueAfterMs);
        this.options.metrics.reconciles.inc({ result: 'success' });
      } catch (error) {
        const delay = this.queue.addRateLimited(key);
        this.options.metrics.reconciles.inc({ result: 'error' });
        this.options.metrics.reconcileErrors.inc({ kind: errorKind(error) });
        this.options.logger.error(
          { codemate: key, retryInMs: delay, ...errorFields(error) },
          'reconcile failed',
        );
        await this.reportFailure(key, error);
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.codemates.get(name, namespace);
    if (!cached || cached.metadata.deletionTimestamp) return undefined; // owned objects go with it (GC)
    const cm = { ...cached, apiVersion, kind } as CodeMate;
    const pods = this.pods
      .list(namespace)
      .filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === cm.metadata.uid))
      .map((p) => observePod(p as Parameters<typeof observePod>[0]));
    const pvc = this.pvcs
      .list(namespace)
      .find((p) => p.metadata.ownerReferences?.some((o) => o.uid === cm.metadata.uid));
    const secrets: Record<string, ObservedSecret> = {};
    for (const ref of [cm.spec.github?.tokenSecretRef, cm.spec.anthropic?.apiKeySecretRef]) {
      if (ref?.name && !secrets[ref.name]) secrets[ref.name] = await this.observeSecret(namespace, ref.name);
    }
    const plan = reconcile(
      cm,
      {
        pods,
        ...(pvc
          ? {
              pvc: { name: pvc.metadata.name!, phase: (pvc.status as { phase?: string } | undefined)?.phase },
            }
          : {}),
        secrets,
      },
      this.options.settings,
      new Date(),
    );
    await executePlan(this.options.kube, cm, plan);
    for (const event of plan.events) {
      this.options.logger.info({ codemate: key, reason: event.reason }, event.message);
    }
    return plan.requeueAfterMs;
  }

  private async observeSecret(namespace: string, name: string): Promise<ObservedSecret> {
    try {
      const secret = await this.options.kube.get<KubeObject & { data?: Record<string, string> }>(
        'v1',
        'Secret',
        name,
        namespace,
      );
      return { exists: true, keys: Object.keys(secret.data ?? {}) };
    } catch (error) {
      if (isNotFound(error)) return { exists: false, keys: [] };
      throw error;
    }
  }

  /** A Warning event on the CodeMate, so `kubectl describe` shows why nothing happens. */
  private async reportFailure(key: string, error: unknown): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.codemates.get(name, namespace);
    if (!cached || (this.queue.failuresOf(key) > 1 && !isForbidden(error))) return;
    try {
      await recordEvent(this.options.kube, { ...cached, apiVersion, kind } as CodeMate, {
        type: 'Warning',
        reason: isForbidden(error) ? 'Forbidden' : 'ReconcileError',
        message: statusMessage(error),
      });
    } catch {
      // The event is best effort; the error is already logged.
    }
  }
}

function errorKind(error: unknown): string {
  if (isForbidden(error)) return 'forbidden';
  if (isConflict(error)) return 'conflict';
  const code = statusCode(error);
  if (code === undefined || code >= 500) return 'unavailable';
  return 'other';
}
