import { describe, expect, it } from 'vitest';
import type { Answer } from '../../../src/webhook/answer.js';
import { ReplayCache } from '../../../src/webhook/replayCache.js';

const ok = (n: number): Answer => ({ status: 201, body: { n } });

describe('ReplayCache', () => {
  it('answers a delivery seen before from memory, without handling it again', async () => {
    const log = new ReplayCache(10);
    let handled = 0;
    const handle = async () => ok(++handled);
    expect(await log.answer('a', handle)).toEqual({ ...ok(1), replay: false });
    expect(await log.answer('a', handle)).toEqual({ ...ok(1), replay: true });
    expect(handled).toBe(1);
  });

  it('shares one handling between concurrent copies of a delivery', async () => {
    const log = new ReplayCache(10);
    let handled = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handle = async () => {
      handled += 1;
      await gate;
      return ok(handled);
    };
    const copies = [log.answer('a', handle), log.answer('a', handle), log.answer('a', handle)];
    release();
    const answers = await Promise.all(copies);
    expect(handled).toBe(1);
    expect(answers.map((a) => a.replay)).toEqual([false, true, true]);
  });

  it('does not remember failures or answers that may change, so those are handled again', async () => {
    const log = new ReplayCache(10);
    let handled = 0;
    await log.answer('failed', async () => ({ status: 503, body: {} }));
    await log.answer('failed', async () => (handled++, ok(1)));
    await log.answer('pending', async () => ({ status: 202, body: {}, final: false }));
    await log.answer('pending', async () => (handled++, ok(2)));
    expect(handled).toBe(2);
    expect(log.size).toBe(2);
  });

  it('forgets the least recently used id beyond its capacity', async () => {
    const log = new ReplayCache(2);
    await log.answer('a', async () => ok(1));
    await log.answer('b', async () => ok(2));
    await log.answer('a', async () => ok(0)); // a is now the most recent
    await log.answer('c', async () => ok(3)); // evicts b
    expect(log.size).toBe(2);
    expect((await log.answer('a', async () => ok(9))).replay).toBe(true);
    expect((await log.answer('b', async () => ok(9))).replay).toBe(false);
  });

  it('handles deliveries without an id every time', async () => {
    const log = new ReplayCache(2);
    let handled = 0;
    await log.answer(undefined, async () => ok(++handled));
    await log.answer(undefined, async () => ok(++handled));
    expect(handled).toBe(2);
  });
});
