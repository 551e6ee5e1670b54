import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../../src/runtime/queue.js';

describe('WorkQueue', () => {
  it('holds a key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands the same key to two workers; a re-add while processing runs again after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await Promise.resolve();
    expect(second).toBe('a');
  });

  it('backs off exponentially per key and forgets after success', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('a'))).toEqual([100, 200, 400, 800, 1000]);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(100);
    q.shutDown();
  });

  it('jitters the backoff between half and all of it', () => {
    const low = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 });
    expect([1, 2, 3, 4, 5].map(() => low.addRateLimited('a'))).toEqual([50, 100, 200, 400, 500]);
    low.shutDown();
  });

  it('holds a failed key for its backoff however often it is added meanwhile', async () => {
    const q = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 1000, random: () => 1 });
    const handed: number[] = [];
    const started = Date.now();
    q.addRateLimited('a');
    // An event per millisecond, as a status write's own watch event would cause.
    const storm = setInterval(() => q.add('a'), 1);
    for (let i = 0; i < 2; i++) {
      const key = await q.get();
      handed.push(Date.now() - started);
      q.done(key!);
      if (i === 0) q.addRateLimited('a'); // fails again: 400 ms
    }
    clearInterval(storm);
    expect(handed[0]).toBeGreaterThanOrEqual(190);
    expect(handed[1]! - handed[0]!).toBeGreaterThanOrEqual(390);
    // After a success, an add is handed out at once again.
    q.forget('a');
    q.add('a');
    expect(q.length).toBe(1);
    q.shutDown();
  });

  it('holds a key retried at a time of its own, without counting a failure', async () => {
    const q = new WorkQueue({ baseDelayMs: 100, random: () => 1 });
    const started = Date.now();
    q.retryAfter('a', 100);
    q.add('a');
    expect(q.length).toBe(0);
    expect(await q.get()).toBe('a');
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(q.failuresOf('a')).toBe(0);
    q.shutDown();
  });

  it('resetBackoff hands out every key waiting out a backoff at once, and forgets the failures', async () => {
    const q = new WorkQueue({ baseDelayMs: 60_000, random: () => 1 });
    q.addRateLimited('a');
    q.addRateLimited('a');
    q.add('b');
    expect(q.length).toBe(1);
    q.resetBackoff();
    expect(q.length).toBe(2);
    expect(q.failuresOf('a')).toBe(0);
    expect([await q.get(), await q.get()]).toEqual(['b', 'a']);
    q.shutDown();
  });

  it('keeps the earlier of two delayed adds', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 5);
    q.addAfter('a', 60_000);
    expect(await q.get()).toBe('a');
    q.shutDown();
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add('late');
    expect(q.length).toBe(0);
  });
});
