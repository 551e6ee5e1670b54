/**
 * The CodeMate reconciler: events of CodeMates and of the pods and claims they own wake a CodeMate's key;
 * the runtime (src/runtime/) runs reconcile + execute for it, reading the current state from the caches.
 */
import { apiVersion, budgetExhausted, kind, plural, type CodeMate } from '../api/codemate.js';
import {
  isConflict,
  isForbidden,
  isNotFound,
  statusCode,
  statusMessage,
  type Kube,
  type KubeObject,
} from '../clients/kube.js';
import type { Logger } from '../observability/log.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import { on, runController, type Failure, type RunningController } from '../runtime/controller.js';
import { watch, type Supervision, type Watched } from '../runtime/informers.js';
import { WorkQueue } from '../runtime/queue.js';
import { executePlan, recordEvent } from './execute.js';
import { observeClaim, observePod, reconcile, type ObservedSecret } from './reconcile.js';
import { labels } from '../api/pod.js';
import type { SessionSettings } from './podTemplate.js';

export type CodeMateObject = CodeMate & KubeObject;

/** The CodeMates of the watched namespace(s), one cache for every part of the operator. */
export function watchCodeMates(
  kube: Kube,
  namespace: string | undefined,
  supervision: Supervision,
): Watched<CodeMateObject> {
  return watch<CodeMateObject>(kube, { apiVersion, kind, plural, namespace }, supervision);
}

/** Looks a CodeMate up in the cache, with its kind set. */
export function codemateLookup(codemates: Watched<CodeMateObject>) {
  return (namespace: string, name: string): CodeMate | undefined => {
    const cached = codemates.get(name, namespace);
    return cached ? ({ ...cached, apiVersion, kind } as CodeMate) : undefined;
  };
}

export interface ControllerOptions {
  kube: Kube;
  /** Watch one namespace, or all when undefined. */
  namespace: string | undefined;
  codemates: Watched<CodeMateObject>;
  supervision: Supervision;
  settings: SessionSettings;
  workers: number;
  resyncMs: number;
  logger: Logger;
  metrics: OperatorMetrics;
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
  private readonly codemates: Watched<CodeMateObject>;
  private readonly pods: Watched<KubeObject>;
  private readonly pvcs: Watched<KubeObject>;
  private running: RunningController | undefined;

  constructor(private readonly options: ControllerOptions) {
    const { kube, namespace, supervision } = options;
    this.codemates = options.codemates;
    this.pods = watch(
      kube,
      { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespace, labelSelector: managedSelector },
      supervision,
    );
    this.pvcs = watch(
      kube,
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        plural: 'persistentvolumeclaims',
        namespace,
        labelSelector: managedSelector,
      },
      supervision,
    );
  }

  /**
   * Our own status writes come back as update events. Only what the reconcile reads needs one: a new
   * generation (a spec change), a deletion, what the poller found on GitHub (the pull request and
   * the token's login), or the token budget running out (WithinBudget). Pod events and the periodic
   * resync cover everything else.
   */
  private readonly seen = new Map<string, string>();
  private codemateKey(event: string, cm: CodeMateObject): string | undefined {
    const key = keyOf(cm.metadata.namespace, cm.metadata.name);
    if (event === 'delete') {
      this.seen.delete(key);
      return undefined;
    }
    const pr = cm.status?.pullRequest;
    const github = cm.status?.github;
    const inputs = [
      cm.metadata.generation,
      pr?.number,
      pr?.state,
      github?.login,
      github?.error,
      budgetExhausted(cm)?.period ?? '',
    ].join('|');
    const unchanged = event === 'update' && this.seen.get(key) === inputs && !cm.metadata.deletionTimestamp;
    this.seen.set(key, inputs);
    return unchanged ? undefined : key;
  }

  get synced(): boolean {
    return this.running?.synced ?? false;
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
    if (this.running) return;
    const { metrics, logger } = this.options;
    const owner = (_event: string, object: KubeObject) => ownerKey(object);
    this.running = await runController({
      keyField: 'codemate',
      what: 'reconcile',
      logger,
      queue: this.queue,
      // Pods and claims first: the first reconciles find what the CodeMates own.
      sources: [
        on(this.pods, owner),
        on(this.pvcs, owner),
        on(this.codemates, (e, cm) => this.codemateKey(e, cm)),
      ],
      reconcile: async (key) => ({ requeueAfterMs: await this.reconcileKey(key) }),
      onError: (failure) => this.reportFailure(failure),
      workers: this.options.workers,
      resync: {
        everyMs: this.options.resyncMs,
        keys: () => this.codemates.list().map((cm) => keyOf(cm.metadata.namespace, cm.metadata.name)),
      },
      observe: () => {
        metrics.queueDepth.set(this.queue.length);
        const end = metrics.reconcileDuration.startTimer();
        return (outcome) => {
          end();
          metrics.reconciles.inc({ result: outcome === 'success' ? 'success' : 'error' });
        };
      },
    });
  }

  /** Stops taking work, lets in-flight reconciles finish, then stops the watches. */
  async stop(): Promise<void> {
    await this.running?.stop();
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
        ...(pvc ? { pvc: observeClaim(pvc as Parameters<typeof observeClaim>[0]) } : {}),
        secrets,
      },
      this.options.settings,
      new Date(),
    );
    await executePlan(this.options.kube, cm, plan);
    for (const action of plan.actions) {
      if (action.type === 'suspend' || action.type === 'deleteCodeMate') {
        this.options.logger.info({ codemate: key, reason: action.reason }, lifecycleLog[action.type]);
      }
    }
    if (plan.actions.some((a) => a.type === 'deleteCodeMate')) return undefined;
    for (const event of plan.events) {
      this.options.logger.info({ codemate: key, reason: event.reason }, event.message);
    }
    return plan.requeueAfterMs || undefined;
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
  private async reportFailure({ key, error, failures }: Failure): Promise<void> {
    this.options.metrics.reconcileErrors.inc({ kind: errorKind(error) });
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.codemates.get(name, namespace);
    if (!cached || (failures > 1 && !isForbidden(error))) return;
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

const lifecycleLog = {
  suspend: 'pull request closed; suspending the session',
  deleteCodeMate: 'pull request closed; deleting the CodeMate',
} as const;

function errorKind(error: unknown): string {
  if (isForbidden(error)) return 'forbidden';
  if (isConflict(error)) return 'conflict';
  const code = statusCode(error);
  if (code === undefined || code >= 500) return 'unavailable';
  return 'other';
}
