/**
 * Supervised informers: list, then watch from the list's resourceVersion, as client-go's reflector
 * does, over plain JSON (kubeHttp.ts). A watch the server ends (its timeout, or the apiserver closing a
 * watcher that fell behind under load) is resumed from the last resourceVersion seen; an expired history
 * (410 Gone) relists; every other failure relists after a capped, jittered backoff and is reported, so a
 * watch never silently ends.
 *
 * The cache keeps objects as the apiserver sent them, without metadata.managedFields (nothing reads
 * them, and they are most of a pod's size), and through the caller's `transform` when given, as
 * controller-runtime's cache transforms do.
 */
import type { Kube, KubeObject } from './kube.js';
import { statusCode } from './kubeErrors.js';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubeObject> {
  apiVersion: string;
  kind: string;
  /** The resource's plural, e.g. pods or codemates, for logs and metrics. */
  plural: string;
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  /** What the cache keeps of each object (after managedFields are dropped). */
  transform?: ((object: KubeObject) => KubeObject) | undefined;
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

class Gone extends Error {}

export function supervisedInformer<T extends KubeObject>(
  kube: Kube,
  options: InformerOptions<T>,
): Informer<T> {
  /** Objects by namespace ('' for cluster-scoped ones), then by name. */
  const cache = new Map<string, Map<string, T>>();
  let resourceVersion = '';
  let synced = false;
  let stopped = true;
  let lists = 0;
  let failures = 0;
  let restarts = 0;
  let timer: NodeJS.Timeout | undefined;
  let request: { abort(): void } | undefined;
  // Like client-go, ask the server to end each watch after 5-10 minutes, and give up on a watch that has
  // been silent for longer (bookmarks included): a half-open connection must not hang the informer.
  const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
  const maxBackoff = options.maxBackoffMs ?? 10_000;

  const keep = (object: T): T => {
    delete (object.metadata as { managedFields?: unknown }).managedFields;
    object.apiVersion = options.apiVersion;
    object.kind = options.kind;
    return options.transform ? (options.transform(object) as T) : object;
  };
  const put = (object: T): InformerEvent => {
    const ns = object.metadata.namespace ?? '';
    let names = cache.get(ns);
    if (!names) cache.set(ns, (names = new Map()));
    const had = names.has(object.metadata.name ?? '');
    names.set(object.metadata.name ?? '', object);
    return had ? 'update' : 'add';
  };
  const remove = (object: KubeObject): T | undefined => {
    const names = cache.get(object.metadata.namespace ?? '');
    const existing = names?.get(object.metadata.name ?? '');
    if (!names || !existing) return undefined;
    names.delete(object.metadata.name ?? '');
    if (names.size === 0) cache.delete(object.metadata.namespace ?? '');
    return existing;
  };

  /** Lists and replaces the cache, telling listeners what changed since the last list. */
  const relist = async () => {
    lists += 1;
    if (lists > 1) options.onRelist?.(lists);
    const listed = await kube.listWithVersion(options.apiVersion, options.kind, options.namespace, {
      labelSelector: options.labelSelector,
    });
    if (stopped) return;
    const seen = new Set<string>();
    for (const raw of listed.items as T[]) {
      const object = keep(raw);
      const key = `${object.metadata.namespace ?? ''}/${object.metadata.name ?? ''}`;
      seen.add(key);
      const before = cache.get(object.metadata.namespace ?? '')?.get(object.metadata.name ?? '');
      if (before?.metadata.resourceVersion === object.metadata.resourceVersion) continue;
      options.onEvent(put(object), object);
    }
    for (const [ns, names] of [...cache]) {
      for (const [name, object] of [...names]) {
        if (seen.has(`${ns}/${name}`)) continue;
        remove(object);
        options.onEvent('delete', object);
      }
    }
    resourceVersion = listed.metadata.resourceVersion ?? '';
  };

  const watchFrom = async (): Promise<void> => {
    const startedAt = performance.now();
    let events = 0;
    request = await kube.watch(
      options.apiVersion,
      options.kind,
      options.namespace,
      {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: options.labelSelector,
      },
      {
        event: (type, raw) => {
          if (stopped) return;
          events += 1;
          failures = 0;
          if (type === 'ERROR') {
            request?.abort();
            const status = raw as { code?: number; message?: string };
            fail(
              status.code === 410
                ? new Gone('watch history expired (410 Gone)')
                : Object.assign(new Error(status.message ?? 'the watch sent an error'), {
                    code: status.code,
                  }),
            );
            return;
          }
          const object = raw as unknown as T;
          resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
          if (type === 'BOOKMARK') return;
          if (type === 'DELETED') {
            const gone = remove(object);
            if (gone) options.onEvent('delete', keep(object));
            return;
          }
          const kept = keep(object);
          options.onEvent(put(kept), kept);
        },
        end: (error) => {
          if (stopped) return;
          // The server ended the watch: resume where it stopped. A watch that ends at once and
          // empty-handed again and again is a failure, though, and backs off.
          if (error === undefined && (events > 0 || performance.now() - startedAt > 1000)) {
            watchFrom().catch(fail);
            return;
          }
          fail(error ?? new Error('the watch ended as soon as it started'));
        },
      },
      (timeoutSeconds + 60) * 1000,
    );
    if (stopped) request.abort();
  };

  /** Lists (unless resuming is possible) and watches; resolves once the list is in the cache. */
  const run = async (): Promise<void> => {
    await relist();
    if (stopped) return;
    await watchFrom();
  };

  const fail = (error: unknown): void => {
    if (stopped) return;
    request?.abort();
    request = undefined;
    if (error instanceof Gone || statusCode(error) === 410) {
      // Not a failure: the history is gone, so list again at once.
      resourceVersion = '';
      run().catch(fail);
      return;
    }
    const base = Math.min(maxBackoff, 250 * 2 ** failures);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    failures += 1;
    restarts += 1;
    options.onRestart?.(error, delay);
    clearTimeout(timer);
    const attempt = restarts;
    timer = setTimeout(() => {
      if (stopped) return;
      run().then(
        () => {
          if (restarts !== attempt || stopped) return;
          synced = true;
          options.onRecovered?.();
        },
        (e: unknown) => fail(e),
      );
    }, delay);
  };

  return {
    list(namespace) {
      if (namespace !== undefined) return [...(cache.get(namespace)?.values() ?? [])];
      const all: T[] = [];
      for (const names of cache.values()) all.push(...names.values());
      return all;
    },
    get(name, namespace) {
      if (namespace !== undefined) return cache.get(namespace)?.get(name);
      for (const names of cache.values()) {
        const found = names.get(name);
        if (found) return found;
      }
      return undefined;
    },
    get synced() {
      return synced;
    },
    async start() {
      if (!stopped) return;
      stopped = false;
      try {
        await run();
        synced = true;
      } catch (error) {
        fail(error);
      }
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      request?.abort();
      request = undefined;
      return Promise.resolve();
    },
  };
}
