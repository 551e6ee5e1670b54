import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import type { Kube } from '../../../src/clients/kube.js';
import { createLogger } from '../../../src/observability/log.js';
import { EventRecorder } from '../../../src/operator/events.js';

const cm = (uid: string): CodeMate => ({
  apiVersion: 'codemate.io/v1alpha1',
  kind: 'CodeMate',
  metadata: { name: `cm-${uid}`, namespace: 'team', uid },
  spec: {
    repository: { url: 'https://github.com/o/r.git', branch: 'b' },
    github: { tokenSecretRef: { name: 'gh', key: 'token' } },
    anthropic: { apiKeySecretRef: { name: 'a', key: 'key' } },
  },
});

function recorder(options: { fail?: boolean; burst?: number } = {}) {
  const written: Array<{ name: string; reason: string }> = [];
  let release: (() => void) | undefined;
  const kube = {
    recordEvent: async (involved: { name: string }, event: { reason: string }) => {
      if (options.fail) throw new Error('apiserver down');
      written.push({ name: involved.name, reason: event.reason });
      await new Promise<void>((resolve) => (release = resolve));
    },
  } as unknown as Kube;
  let now = 0;
  const events = new EventRecorder({
    kube,
    logger: createLogger({ name: 'test', level: 'silent' }),
    concurrency: 1,
    backlog: 3,
    burst: options.burst ?? 10,
    refillMs: 1_000,
    repeatWindowMs: 10_000,
    now: () => now,
  });
  return {
    events,
    written,
    advance: (ms: number) => (now += ms),
    releaseAll: async () => {
      for (;;) {
        await tick();
        if (!release) return;
        const r = release;
        release = undefined;
        r();
      }
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

const event = (reason: string, message = 'm') => ({ type: 'Normal' as const, reason, message });

describe('EventRecorder', () => {
  it('does not hold up the caller, and writes in order', async () => {
    const { events, written, releaseAll } = recorder();
    events.record(cm('a'), event('PodCreated'));
    events.record(cm('a'), event('SessionRunning'));
    await tick();
    expect(written).toEqual([{ name: 'cm-a', reason: 'PodCreated' }]);
    await releaseAll();
    await events.flush();
    expect(written.map((w) => w.reason)).toEqual(['PodCreated', 'SessionRunning']);
  });

  it('drops the same reason and message about an object within the window, and lets it through after', async () => {
    const { events, written, advance, releaseAll } = recorder();
    events.record(cm('a'), event('SecretMissing'));
    events.record(cm('a'), event('SecretMissing'));
    events.record(cm('b'), event('SecretMissing'));
    events.record(cm('a'), event('SecretMissing', 'another message'));
    await releaseAll();
    expect(written).toHaveLength(3);
    advance(10_000);
    events.record(cm('a'), event('SecretMissing'));
    await releaseAll();
    expect(written).toHaveLength(4);
  });

  it('gives each object a burst, refilled over time', async () => {
    const { events, written, advance, releaseAll } = recorder({ burst: 2 });
    for (const reason of ['A', 'B', 'C']) events.record(cm('a'), event(reason));
    await releaseAll();
    expect(written.map((w) => w.reason)).toEqual(['A', 'B']);
    advance(1_000);
    events.record(cm('a'), event('D'));
    await releaseAll();
    expect(written.map((w) => w.reason)).toEqual(['A', 'B', 'D']);
  });

  it('bounds its backlog, and a failed write is not retried or thrown', async () => {
    const { events, written, releaseAll } = recorder();
    for (const uid of ['a', 'b', 'c', 'd', 'e', 'f']) events.record(cm(uid), event('PodCreated'));
    await releaseAll();
    // One in flight and three waiting: the rest were dropped.
    expect(written.map((w) => w.name)).toEqual(['cm-a', 'cm-b', 'cm-c', 'cm-d']);
    const failing = recorder({ fail: true });
    failing.events.record(cm('a'), event('PodCreated'));
    await failing.events.flush();
    expect(failing.written).toEqual([]);
  });
});
