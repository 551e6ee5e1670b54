/**
 * Supervised informers. @kubernetes/client-node's informer relists on 410 Gone by itself but stops on
 * every other error (an apiserver restart, a dropped connection, a 5xx). This wrapper restarts it with
 * capped, jittered backoff and reports each restart, so a watch never silently ends.
 */
import { makeInformer, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Kube, KubeObject } from './kube.js';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubeObject> {
  apiVersion: string;
  kind: string;
  /** The resource's plural, e.g. pods or codemates: with apiVersion and namespace, the watched path. */
  plural: string;
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  onEvent: (event: InformerEvent, object: T) => void;
  /** Called with the error each time the watch broke and a restart is scheduled. */
  onRestart?: (error: unknown, delayMs: number) => void;
  /** Called on every list after the first: a 410 Gone (history expired) forces one. */
  onRelist?: (lists: number) => void;
  /** Called when a restart after a broken watch has listed again: the apiserver answers again. */
  onRecovered?: () => void;
  maxBackoffMs?: number;
}

export interface Informer<T extends KubeObject> {
  list(namespace?: string): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  /** True once the first list has completed. */
  readonly synced: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** /api/v1/namespaces/ns/pods, /apis/codemate.io/v1alpha1/codemates, ... */
function collectionPath(apiVersion: string, plural: string, namespace: string | undefined): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
}

export function supervisedInformer<T extends KubeObject>(
  kube: Kube,
  options: InformerOptions<T>,
): Informer<T> {
  let lists = 0;
  const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
    lists += 1;
    if (lists > 1) options.onRelist?.(lists);
    const items = await kube.listWithVersion(options.apiVersion, options.kind, options.namespace, {
      labelSelector: options.labelSelector,
    });
    return items as unknown as KubernetesListObject<KubernetesObject>;
  };
  // Like client-go, ask the server to end each watch after 5-10 minutes. The SDK's own watch timeout does
  // not apply, so without this a half-open connection would hang the informer forever.
  const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
  const informer = makeInformer<KubernetesObject>(
    kube.config,
    `${collectionPath(options.apiVersion, options.plural, options.namespace)}?timeoutSeconds=${timeoutSeconds}`,
    listFn,
    options.labelSelector,
  );
  let synced = false;
  let stopped = false;
  let failures = 0;
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;
  // Capped at 10 s: after an apiserver outage the caches (and so readiness and delivery) come back
  // within seconds of the apiserver, not up to half a minute later.
  const maxBackoff = options.maxBackoffMs ?? 10_000;

  for (const event of ['add', 'update', 'delete'] as const) {
    informer.on(event, (object) => {
      failures = 0;
      options.onEvent(event, object as unknown as T);
    });
  }
  // Not on 'connect': the SDK emits it before its first list, when the cache is still empty. start()
  // resolves after the list has filled the cache.

  const restart = (error: unknown) => {
    if (stopped) return;
    const base = Math.min(maxBackoff, 250 * 2 ** failures);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    failures += 1;
    restarts += 1;
    options.onRestart?.(error, delay);
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (stopped) return;
      // The SDK's start() also resolves after a failed list, having reported the error (which scheduled
      // the next restart): only a start that no restart followed has recovered.
      const attempt = restarts;
      informer.start().then(
        () => {
          if (restarts !== attempt || stopped) return;
          synced = true;
          options.onRecovered?.();
        },
        (e: unknown) => restart(e),
      );
    }, delay);
  };
  informer.on('error', (error) => restart(error));

  return {
    list: (ns) => informer.list(ns) as unknown as readonly T[],
    get: (name, ns) => informer.get(name, ns) as unknown as T | undefined,
    get synced() {
      return synced;
    },
    async start() {
      stopped = false;
      try {
        await informer.start();
        synced = true;
      } catch (error) {
        restart(error);
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}
