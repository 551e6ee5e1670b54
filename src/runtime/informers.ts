/**
 * Informers as the runtime uses them: supervised (restarted after every broken watch, see
 * clients/informer.ts), all reporting to one Supervision, so every watch's restarts are counted and
 * logged alike, and open to any number of listeners, so that one cache feeds several controllers.
 */
import {
  supervisedInformer,
  type Informer,
  type InformerEvent,
  type InformerOptions,
} from '../clients/informer.js';
import type { Kube, KubeObject } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';

export type { InformerEvent } from '../clients/informer.js';

/** What is watched: apiVersion, kind, plural, namespace and label selector. */
export type Resource = Omit<
  InformerOptions<KubeObject>,
  'onEvent' | 'onRestart' | 'onRelist' | 'onRecovered'
>;

export type Listener<T> = (event: InformerEvent, object: T) => void;

export interface Watched<T extends KubeObject> extends Informer<T> {
  /** The resource's plural, for logs and metrics. */
  readonly resource: string;
  /** Starts the watch on the first call; each caller stops it once, and the last stop ends it. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Calls the listener on every event; listeners only enqueue keys (they are synchronous). */
  subscribe(listener: Listener<T>): void;
  /** Calls the listener when a restart after a broken watch has succeeded. */
  onRecovered(listener: () => void): void;
}

/** Where every informer of a process reports its restarts: one metric, one log line. */
export interface Supervision {
  restarted(resource: string, error: unknown, delayMs: number): void;
  relisted(resource: string, lists: number): void;
}

export function informerSupervision(
  logger: Logger,
  restarts?: { inc(labels: { resource: string }): void },
): Supervision {
  return {
    restarted(resource, error, delayMs) {
      restarts?.inc({ resource });
      logger.warn({ resource, delayMs, ...errorFields(error) }, 'watch broke; restarting it');
    },
    relisted(resource, lists) {
      logger.info({ resource, lists }, 'relisting: the watch history expired (410 Gone) or a list failed');
    },
  };
}

export function watch<T extends KubeObject>(
  kube: Kube,
  resource: Resource,
  supervision: Supervision,
): Watched<T> {
  const listeners: Array<Listener<T>> = [];
  const recovered: Array<() => void> = [];
  const informer = supervisedInformer<T>(kube, {
    ...resource,
    onEvent: (event, object) => {
      for (const listener of listeners) listener(event, object);
    },
    onRestart: (error, delayMs) => supervision.restarted(resource.plural, error, delayMs),
    onRelist: (lists) => supervision.relisted(resource.plural, lists),
    onRecovered: () => {
      for (const listener of recovered) listener();
    },
  });
  // Several controllers may share one cache: the first start starts the watch, the last stop ends it.
  let users = 0;
  let started: Promise<void> | undefined;
  return {
    resource: resource.plural,
    list: (namespace) => informer.list(namespace),
    get: (name, namespace) => informer.get(name, namespace),
    get synced() {
      return informer.synced;
    },
    start: () => {
      users += 1;
      started ??= informer.start();
      return started;
    },
    stop: async () => {
      users = Math.max(0, users - 1);
      if (users > 0 || !started) return;
      started = undefined;
      await informer.stop();
    },
    subscribe: (listener) => void listeners.push(listener),
    onRecovered: (listener) => void recovered.push(listener),
  };
}
