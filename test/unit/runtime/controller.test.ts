import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { KubeObject } from '../../../src/clients/kube.js';
import { createLogger } from '../../../src/observability/log.js';
import {
  on,
  runController,
  type ControllerSpec,
  type Failure,
  type RunningController,
} from '../../../src/runtime/controller.js';
import { PermanentError, TemporaryError } from '../../../src/runtime/errors.js';
import type { InformerEvent, Watched } from '../../../src/runtime/informers.js';
import { WorkQueue } from '../../../src/runtime/queue.js';

/** An in-memory informer: the test plays the apiserver's events. */
function fakeInformer(objects: KubeObject[] = []): Watched<KubeObject> & {
  emit(event: InformerEvent, object: KubeObject): void;
  recover(): void;
  starts: number;
  stops: number;
} {
  const listeners: Array<(e: InformerEvent, o: KubeObject) => void> = [];
  const recovered: Array<() => void> = [];
  let synced = false;
  const fake = {
    resource: 'things',
    starts: 0,
    stops: 0,
    list: () => objects,
    get: (name: string) => objects.find((o) => o.metadata.name === name),
    get synced() {
      return synced;
    },
    // Like watch(): a shared cache lists once, however many controllers start it.
    start: async () => {
      fake.starts += 1;
      if (synced) return;
      synced = true;
      for (const o of objects) fake.emit('add', o);
    },
    stop: async () => {
      fake.stops += 1;
    },
    subscribe: (l: (e: InformerEvent, o: KubeObject) => void) => void listeners.push(l),
    onRecovered: (l: () => void) => void recovered.push(l),
    emit: (e: InformerEvent, o: KubeObject) => listeners.forEach((l) => l(e, o)),
    recover: () => recovered.forEach((l) => l()),
  };
  return fake;
}

const thing = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Thing',
  metadata: { name, namespace: 'ns' },
});
const keyOf = (_e: InformerEvent, o: KubeObject) => `ns/${o.metadata.name}`;
const logs: Array<Record<string, unknown>> = [];
const logger = createLogger({
  name: 'test',
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  }),
});

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A reconcile that throws what fail(attempt) returns, if anything, and records when it ran. */
function flaky(fail: (attempt: number) => unknown) {
  const failures: Failure[] = [];
  const at: number[] = [];
  return {
    failures,
    at,
    reconcile: async () => {
      at.push(Date.now());
      const error = fail(at.length);
      if (error) throw error;
    },
    onError: async (failure: Failure) => void failures.push(failure),
  };
}

let running: RunningController[] = [];
afterEach(async () => {
  await Promise.all(running.map((r) => r.stop()));
  running = [];
  logs.length = 0;
});

async function run(spec: Partial<ControllerSpec> & Pick<ControllerSpec, 'sources' | 'reconcile'>) {
  const controller = await runController({
    keyField: 'thing',
    what: 'sync',
    logger,
    queue: new WorkQueue({ baseDelayMs: 40, maxDelayMs: 1000, random: () => 1 }),
    workers: 2,
    ...spec,
  });
  running.push(controller);
  return controller;
}

describe('runController', () => {
  it('reconciles the keys of events, and again after the requeue a reconcile asks for', async () => {
    const informer = fakeInformer([thing('a')]);
    const runs: string[] = [];
    await run({
      sources: [on(informer, keyOf)],
      reconcile: async (key) => {
        runs.push(key);
        return runs.length === 1 ? { requeueAfterMs: 10 } : undefined;
      },
    });
    await until(() => runs.length === 2, 'the requeued run');
    informer.emit('update', thing('b'));
    await until(() => runs.length === 3, 'the event');
    expect(runs).toEqual(['ns/a', 'ns/a', 'ns/b']);
  });

  it('retries an unexpected error with the key backoff, counts the failures, and logs each once', async () => {
    const informer = fakeInformer([thing('a')]);
    const { failures, at, ...spec } = flaky((n) => n <= 2 && new Error('apiserver said 500'));
    await run({ sources: [on(informer, keyOf)], ...spec });
    await until(() => at.length === 3, 'two retries');
    expect(failures.map((f) => [f.decision.kind, f.failures])).toEqual([
      ['unexpected', 1],
      ['unexpected', 2],
    ]);
    // base 40 ms, then 80 ms (random() = 1: the full delay).
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(35);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(75);
    expect(logs.filter((l) => l.msg === 'sync failed')).toHaveLength(2);
    expect(logs[0]).toMatchObject({ level: 'error', thing: 'ns/a', retryInMs: 40 });
  });

  it('retries a temporary error after its own delay, holds events meanwhile, and counts no failure', async () => {
    const informer = fakeInformer([thing('a')]);
    const { failures, at, ...spec } = flaky(
      (n) => n === 1 && new TemporaryError('the cache is behind', { retryAfterMs: 150 }),
    );
    await run({ sources: [on(informer, keyOf)], ...spec });
    await until(() => at.length === 1, 'the first run');
    informer.emit('update', thing('a'));
    await until(() => at.length === 2, 'the retry');
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(140);
    expect(failures).toEqual([
      expect.objectContaining({ decision: { kind: 'temporary', retryAfterMs: 150 }, failures: 0 }),
    ]);
    expect(logs.find((l) => l.msg === 'sync will be retried')).toMatchObject({
      level: 'info',
      retryInMs: 150,
    });
  });

  it('stops retrying after a permanent error, records it, and runs again on the next event', async () => {
    const informer = fakeInformer([thing('a')]);
    const { failures, at, ...spec } = flaky((n) => n === 1 && new PermanentError('spec.x is invalid'));
    await run({ sources: [on(informer, keyOf)], ...spec });
    await until(() => failures.length === 1, 'the failure');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(at).toHaveLength(1);
    expect(failures[0]).toMatchObject({ decision: { kind: 'permanent' }, failures: 0 });
    expect(logs.find((l) => String(l.msg).includes('failed permanently'))).toMatchObject({ level: 'warn' });
    informer.emit('update', thing('a'));
    await until(() => at.length === 2, 'the run after the event');
  });

  it('a watch that recovers ends the backoff its outage caused', async () => {
    const informer = fakeInformer([thing('a')]);
    let runs = 0;
    await run({
      sources: [on(informer, keyOf)],
      queue: new WorkQueue({ baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 1 }),
      reconcile: async () => {
        runs += 1;
        if (runs === 1) throw new Error('connection refused');
      },
    });
    await until(() => runs === 1, 'the failed run');
    informer.emit('update', thing('a'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(runs).toBe(1); // held by a minute of backoff
    informer.recover();
    await until(() => runs === 2, 'the run after the recovery');
  });

  it('a cache another controller filled already is replayed to the next one', async () => {
    const shared = fakeInformer([thing('a')]);
    const first: string[] = [];
    const second: string[] = [];
    const one = await run({ sources: [on(shared, keyOf)], reconcile: async (k) => void first.push(k) });
    const two = await run({ sources: [on(shared, keyOf)], reconcile: async (k) => void second.push(k) });
    await until(() => first.length === 1 && second.length === 1, 'both controllers');
    expect(shared.synced && one.synced && two.synced).toBe(true);
    expect([first, second]).toEqual([['ns/a'], ['ns/a']]);
  });

  it('drops the keys a source does not care about, and takes several from one event', async () => {
    const informer = fakeInformer();
    const runs: string[] = [];
    await run({
      sources: [on(informer, (_e, o) => (o.metadata.name === 'all' ? ['ns/x', 'ns/y'] : undefined))],
      reconcile: async (k) => void runs.push(k),
    });
    informer.emit('add', thing('ignored'));
    informer.emit('add', thing('all'));
    await until(() => runs.length === 2, 'both keys');
    expect(runs.sort()).toEqual(['ns/x', 'ns/y']);
  });

  it('resyncs every key it is given, and stop waits for the reconcile in flight', async () => {
    const informer = fakeInformer();
    const runs: string[] = [];
    let release: () => void = () => {};
    const controller = await runController({
      keyField: 'thing',
      what: 'sync',
      logger,
      queue: new WorkQueue(),
      workers: 1,
      sources: [on(informer, keyOf)],
      resync: { everyMs: 20, keys: () => ['ns/r'] },
      reconcile: async (k) => {
        runs.push(k);
        await new Promise<void>((resolve) => (release = resolve));
      },
    });
    await until(() => runs.length === 1, 'the resync');
    let stopped = false;
    const stopping = controller.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(informer.stops).toBe(1);
  });
});
