import { describe, expect, it } from 'vitest';
import { backoffDelay, equalJitter, Spreader } from '../../../src/runtime/rate.js';

describe('backoffDelay', () => {
  it('starts at the base after the first failure, doubles, and stops at the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 60_000, 900_000))).toEqual([
      60_000, 120_000, 240_000, 480_000, 900_000,
    ]);
    expect(backoffDelay(1000, 1000, 600_000)).toBe(600_000);
  });

  it('treats no failure yet as the first', () => {
    expect(backoffDelay(0, 250, 10_000)).toBe(250);
  });
});

describe('equalJitter', () => {
  it('keeps half of the delay and randomizes the other half', () => {
    expect(equalJitter(1000, () => 0)).toBe(500);
    expect(equalJitter(1000, () => 0.5)).toBe(750);
    expect(equalJitter(1000, () => 0.999999)).toBe(1000);
  });
});

describe('Spreader', () => {
  it('hands out the burst at once, then one slot per 1/perSecond, and refills while idle', () => {
    let now = 0;
    const spreader = new Spreader(2, 4, () => now);
    expect([spreader.take(), spreader.take(), spreader.take(), spreader.take()]).toEqual([0, 0, 250, 500]);
    now = 10_000;
    expect([spreader.take(), spreader.take(), spreader.take()]).toEqual([0, 0, 250]);
  });
});
