/**
 * The one worker loop. A controller is a keyed work queue fed by informer events, a reconcile of one key
 * at a time (never two for the same key at once), and an error policy that says what a failure is worth
 * (errors.ts). Every reconciler (CodeMates, message delivery, the sandbox's local pods and volumes) is run
 * by it.
 */
import type { KubeObject } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import {
  errorPolicy as defaultErrorPolicy,
  type ErrorDecision,
  type ErrorKind,
  type ErrorPolicy,
} from './errors.js';
import type { InformerEvent, Watched } from './informers.js';
import type { WorkQueue } from './queue.js';

/** An informer and the keys its events wake (none: the event does not matter to this controller). */
export interface Source {
  informer: Watched<KubeObject>;
  keysOf(event: InformerEvent, object: KubeObject): string | readonly string[] | undefined;
}

/** A source with its object type checked: `on(pods, (event, pod) => ...)`. */
export function on<T extends KubeObject>(
  informer: Watched<T>,
  keysOf: (event: InformerEvent, object: T) => string | readonly string[] | undefined,
): Source {
  return { informer, keysOf } as unknown as Source;
}

/** What a successful reconcile asks for: to look again after this long (0: at once). */
export type ReconcileResult = { requeueAfterMs?: number | undefined } | undefined | void;

export interface Failure {
  key: string;
  error: unknown;
  decision: ErrorDecision;
  /** Failures of this key in a row, this one included (0 after a permanent one, which resets them). */
  failures: number;
}

export interface ControllerSpec {
  /** How logs name a key ('codemate', 'pod') and what a reconcile is ('reconcile', 'delivery'). */
  keyField: string;
  what: string;
  logger: Logger;
  queue: WorkQueue;
  sources: Source[];
  reconcile(key: string): Promise<ReconcileResult>;
  errorPolicy?: ErrorPolicy;
  /** Records a failure where users see it (an Event, a status), after the runtime has logged it. */
  onError?(failure: Failure): Promise<void>;
  workers: number;
  /** Every everyMs, adds each of keys(): level-triggered repair of whatever an event missed. */
  resync?: { everyMs: number; keys(): Iterable<string> };
  /** Wait for every source's first list before the workers start, logging while it takes long. */
  waitForSync?: boolean;
  /** Runs once the watches have started and before the first reconcile. */
  beforeWorkers?(): Promise<void>;
  /** Around each reconcile, for metrics: the returned function is called with how it ended. */
  observe?(key: string): (outcome: 'success' | ErrorKind) => void;
}

export interface RunningController {
  /** Every source has listed once. */
  readonly synced: boolean;
  /** Stops taking work, lets in-flight reconciles finish, then stops the watches. */
  stop(): Promise<void>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runController(spec: ControllerSpec): Promise<RunningController> {
  const { queue, logger } = spec;
  const policy = spec.errorPolicy ?? defaultErrorPolicy;
  const informers = [...new Set(spec.sources.map((s) => s.informer))];
  const enqueue = (keys: string | readonly string[] | undefined) => {
    if (typeof keys === 'string') queue.add(keys);
    else for (const key of keys ?? []) queue.add(key);
  };
  for (const source of spec.sources) {
    source.informer.subscribe((event, object) => enqueue(source.keysOf(event, object)));
    // A cache another controller already filled: its objects are news to this one.
    if (source.informer.synced)
      for (const object of source.informer.list()) enqueue(source.keysOf('add', object));
  }
  // A watch that comes back after an outage: whatever failed meanwhile failed for the outage.
  for (const informer of informers) informer.onRecovered(() => queue.resetBackoff());
  const synced = () => informers.every((i) => i.synced);

  // In order: a controller lists what it owns before what it reconciles, so the first keys find them.
  for (const informer of informers) await informer.start();
  for (let waited = 0; spec.waitForSync && !synced(); waited += 200) {
    if (waited > 0 && waited % 10_000 === 0)
      logger.warn(
        { waitedMs: waited, resources: informers.map((i) => i.resource) },
        'waiting for the first lists',
      );
    await pause(200);
  }
  await spec.beforeWorkers?.();

  const failed = async (key: string, error: unknown): Promise<ErrorKind> => {
    const decision = policy(error, new Date());
    let retryInMs: number | undefined;
    if (decision.kind === 'permanent') queue.forget(key);
    else if (decision.kind === 'temporary' && decision.retryAfterMs !== undefined) {
      retryInMs = decision.retryAfterMs;
      queue.retryAfter(key, retryInMs);
    } else retryInMs = queue.addRateLimited(key);
    const fields = { [spec.keyField]: key, ...errorFields(error) };
    if (decision.kind === 'unexpected') logger.error({ ...fields, retryInMs }, `${spec.what} failed`);
    else if (decision.kind === 'temporary')
      logger.info({ ...fields, retryInMs }, `${spec.what} will be retried`);
    else
      logger.warn(fields, `${spec.what} failed permanently; not retried before its next event or the resync`);
    try {
      await spec.onError?.({ key, error, decision, failures: queue.failuresOf(key) });
    } catch (recordError) {
      logger.warn(
        { [spec.keyField]: key, ...errorFields(recordError) },
        `recording the failed ${spec.what} failed`,
      );
    }
    return decision.kind;
  };

  const work = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const end = spec.observe?.(key);
      let outcome: 'success' | ErrorKind = 'success';
      try {
        const result = await spec.reconcile(key);
        queue.forget(key);
        if (result?.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        outcome = await failed(key, error);
      } finally {
        end?.(outcome);
        queue.done(key);
      }
    }
  };

  const workers = Array.from({ length: spec.workers }, () => work());
  const resync = spec.resync;
  const timer = resync
    ? setInterval(() => {
        for (const key of resync.keys()) queue.add(key);
      }, resync.everyMs)
    : undefined;
  timer?.unref();

  return {
    get synced() {
      return synced();
    },
    async stop() {
      clearInterval(timer);
      queue.shutDown();
      await Promise.all(workers);
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
