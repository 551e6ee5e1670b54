/**
 * The CodeMate reconciler: events of CodeMates and of the pods and claims they own wake a CodeMate's key;
 * the runtime (src/runtime/) runs reconcile + execute for it, reading the current state from the caches.
 */
import {
  apiVersion,
  budgetExhausted,
  githubAppMode,
  kind,
  plural,
  suspendedByAnnotation,
  wakeRequestedAnnotation,
  type CodeMate,
} from '../api/codemate.js';
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
import { KeptReads } from '../runtime/keptReads.js';
import { WorkQueue } from '../runtime/queue.js';
import { EventRecorder } from './events.js';
import { executePlan, statusPatch } from './execute.js';
import {
  observeClaim,
  observePod,
  reconcile,
  type ObservedSecret,
  type Plan,
  type PodCondition,
} from './reconcile.js';
import { labels, sessionTokenSecretName } from '../api/pod.js';
import { findCondition } from '../api/conditions.js';
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

/** The least time between two status writes of one CodeMate (see statusWriteDelay). */
const statusWriteIntervalMs = 1_000;
/** Under a burst (this many keys waiting), how long a new CodeMate's Pending may go unwritten. */
const busyQueueLength = 16;
const newSessionQuietMs = 5_000;

/** How long a Secret that was read stays known (see observeSecret). */
const secretReadTtlMs = 30_000;

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
  private readonly events: EventRecorder;

  constructor(private readonly options: ControllerOptions) {
    const { kube, namespace, supervision } = options;
    this.events = new EventRecorder({ kube, logger: options.logger });
    this.codemates = options.codemates;
    this.pods = watch(
      kube,
      {
        apiVersion: 'v1',
        kind: 'Pod',
        plural: 'pods',
        namespace,
        labelSelector: managedSelector,
        transform: slimPod,
      },
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
   * the token's login), the token budget running out (WithinBudget), the marks of an idle suspend and
   * its wake, and, with spec.lifecycle.idleSuspendAfter, the session's state (when it went idle). Pod
   * events and the periodic resync cover everything else.
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
      github?.sessionToken?.secretName,
      budgetExhausted(cm)?.period ?? '',
      cm.metadata.annotations?.[suspendedByAnnotation],
      cm.metadata.annotations?.[wakeRequestedAnnotation],
      cm.spec.lifecycle?.idleSuspendAfter ? `${cm.status?.session?.state}@${cm.status?.session?.since}` : '',
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
      onError: (failure) => Promise.resolve(this.reportFailure(failure)),
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
    await this.events.stop();
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
    const tokenSecret = githubAppMode(cm.spec) ? { name: sessionTokenSecretName(cm) } : undefined;
    for (const ref of [
      cm.spec.github?.tokenSecretRef,
      cm.spec.github?.app?.privateKeySecretRef,
      tokenSecret,
      cm.spec.anthropic?.apiKeySecretRef,
    ]) {
      if (ref?.name && !secrets[ref.name]) secrets[ref.name] = await this.observeSecret(namespace, ref.name);
    }
    const plan = reconcile(
      cm,
      {
        pods,
        ...(pvc ? { pvc: observeClaim(pvc as Parameters<typeof observeClaim>[0]) } : {}),
        secrets,
        codemates: this.codemates.list(),
      },
      this.options.settings,
      new Date(),
    );
    // A Secret that lacks what the CodeMate needs is read again next time, so that fixing it is seen.
    if (findCondition(plan.status.conditions, 'SecretsResolved')?.status !== 'True') {
      for (const name of Object.keys(secrets)) this.secretReads.forget(`${namespace}/${name}`);
    }
    const deferMs = this.statusWriteDelay(key, cm, plan);
    await executePlan(this.options.kube, cm, plan, this.events, { deferStatus: deferMs > 0 });
    for (const action of plan.actions) {
      if (action.type === 'suspend' || action.type === 'deleteCodeMate' || action.type === 'resume') {
        this.options.logger.info({ codemate: key, reason: action.reason }, lifecycleLog[action.type]);
      }
    }
    if (plan.actions.some((a) => a.type === 'deleteCodeMate')) return undefined;
    if (deferMs > 0) {
      return plan.requeueAfterMs ? Math.min(plan.requeueAfterMs, deferMs) : deferMs;
    }
    for (const event of plan.events) {
      this.options.logger.info({ codemate: key, reason: event.reason }, event.message);
    }
    return plan.requeueAfterMs || undefined;
  }

  /**
   * Status writes of one CodeMate are coalesced: at most one every `statusWriteIntervalMs`, and a spec
   * change is written at once. While the operator is busy (a burst of new CodeMates), a new CodeMate's
   * first status waits, up to `newSessionQuietMs`, until it has more to say than Starting: its session
   * pod goes from created to scheduled to running, and its status is written once, instead of once per
   * step, while the apiserver is busiest. A deferred write is made when its time comes, with what is true
   * then; events that report a status change come with it.
   */
  private readonly statusWrittenAt = new Map<string, number>();
  /** Every worker is reconciling, or keys are waiting for one: a burst. */
  private get busy(): boolean {
    return this.queue.inFlight >= this.options.workers || this.queue.length >= busyQueueLength;
  }
  private readonly firstPlannedAt = new Map<string, number>();
  private statusWriteDelay(key: string, cm: CodeMate, plan: Plan): number {
    if (!statusPatch(cm.status, plan.status)) return 0;
    const now = performance.now();
    if (this.statusWrittenAt.size > 100_000) this.statusWrittenAt.clear();
    if (this.firstPlannedAt.size > 100_000) this.firstPlannedAt.clear();
    if (cm.status?.observedGeneration === undefined) {
      const first = this.firstPlannedAt.get(key) ?? now;
      this.firstPlannedAt.set(key, first);
      const waited = now - first;
      if (
        (plan.status.phase === 'Pending' || plan.status.phase === 'Starting') &&
        this.busy &&
        waited < newSessionQuietMs
      ) {
        return Math.ceil(Math.min(statusWriteIntervalMs, newSessionQuietMs - waited));
      }
    } else this.firstPlannedAt.delete(key);
    const at = this.statusWrittenAt.get(key);
    const wait = at === undefined ? 0 : statusWriteIntervalMs - (now - at);
    if (wait > 0 && cm.status?.observedGeneration === cm.metadata.generation) return Math.ceil(wait);
    this.statusWrittenAt.set(key, now);
    return 0;
  }

  /**
   * What a reconcile needs of a Secret: that it exists, and its keys. The operator may only get Secrets
   * (no list or watch: it must not hold every Secret of every namespace), so it reads each one it is
   * asked about, and keeps what it read for a while: the reconciles of one CodeMate come in bursts
   * (created, its pod created, its pod ready, its first poll), and many CodeMates often name the same
   * Secrets. A missing Secret is not kept, so that creating it is seen at the next reconcile.
   */
  private readonly secretReads = new KeptReads<ObservedSecret>(secretReadTtlMs, (seen) => seen.exists);
  private observeSecret(namespace: string, name: string): Promise<ObservedSecret> {
    return this.secretReads.get(`${namespace}/${name}`, () => this.readSecret(namespace, name));
  }

  private async readSecret(namespace: string, name: string): Promise<ObservedSecret> {
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
  private reportFailure({ key, error, failures }: Failure): void {
    this.options.metrics.reconcileErrors.inc({ kind: errorKind(error) });
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.codemates.get(name, namespace);
    if (!cached || (failures > 1 && !isForbidden(error))) return;
    this.events.record({ ...cached, apiVersion, kind } as CodeMate, {
      type: 'Warning',
      reason: isForbidden(error) ? 'Forbidden' : 'ReconcileError',
      message: statusMessage(error),
    });
  }
}

/**
 * What the cache keeps of a session pod: what observePod and the owner lookup read. Its spec (the
 * container, its environment, volumes and scripts) is most of its size, and the reconcile renders the
 * desired spec itself and compares hashes (the spec-hash annotation).
 */
function slimPod(object: KubeObject): KubeObject {
  const pod = object as KubeObject & {
    status?: {
      phase?: string;
      conditions?: PodCondition[];
      containerStatuses?: Array<{ name: string; state?: unknown }>;
    };
  };
  const { name, namespace, uid, resourceVersion, labels, annotations, ownerReferences, deletionTimestamp } =
    pod.metadata;
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion,
      labels,
      annotations,
      ownerReferences,
      deletionTimestamp,
    },
    status: {
      phase: pod.status?.phase,
      conditions: pod.status?.conditions?.map(({ type, status, reason, message, lastTransitionTime }) => ({
        type,
        status,
        reason,
        message,
        lastTransitionTime,
      })),
      containerStatuses: pod.status?.containerStatuses?.map(({ name: container, state }) => ({
        name: container,
        state,
      })),
    },
  };
}

const lifecycleLog = {
  suspend: 'suspending the session',
  resume: 'resuming the session',
  deleteCodeMate: 'pull request closed; deleting the CodeMate',
} as const;

function errorKind(error: unknown): string {
  if (isForbidden(error)) return 'forbidden';
  if (isConflict(error)) return 'conflict';
  const code = statusCode(error);
  if (code === undefined || code >= 500) return 'unavailable';
  return 'other';
}
