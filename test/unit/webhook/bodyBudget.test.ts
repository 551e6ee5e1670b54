/** The body budget's arithmetic: bytes that arrived count, claims do not, and small bodies keep a reserve. */
import { describe, expect, it } from 'vitest';
import { BodyBudget } from '../../../src/webhook/bodyBudget.js';

const limits = { maxBufferedBytes: 100, smallBodyBytes: 10, smallBodyReserveBytes: 30 };

describe('body budget', () => {
  it('counts bytes as they are charged, never the length a body claims', () => {
    const budget = new BodyBudget(limits);
    const claims = [1, 2, 3].map(() => budget.open(100));
    expect(budget.bufferedBytes).toBe(0);
    expect(budget.fits(100)).toBe(true);
    expect(claims[0]!.charge(60)).toBe(true);
    expect(budget.bufferedBytes).toBe(60);
    expect(budget.fits(41)).toBe(false);
    expect(budget.fits(40)).toBe(true);
  });

  it('refuses a chunk that does not fit, charging nothing for it', () => {
    const budget = new BodyBudget(limits);
    const a = budget.open(100);
    const b = budget.open(100);
    expect(a.charge(70)).toBe(true);
    expect(b.charge(31)).toBe(false);
    expect(budget.bufferedBytes).toBe(70);
    expect(b.charge(30)).toBe(true);
    expect(budget.bufferedBytes).toBe(100);
  });

  it('gives back everything a body charged, once', () => {
    const budget = new BodyBudget(limits);
    const a = budget.open(50);
    const b = budget.open(50);
    a.charge(20);
    a.charge(20);
    b.charge(10);
    a.release();
    a.release();
    expect(budget.bufferedBytes).toBe(10);
    expect(a.charge(1)).toBe(false);
    b.release();
    expect(budget.bufferedBytes).toBe(0);
  });

  it('keeps a reserve that only small bodies may use', () => {
    const budget = new BodyBudget(limits);
    const large = budget.open(100);
    expect(large.charge(100)).toBe(true);
    expect(budget.fits(11)).toBe(false);
    expect(budget.fits(10)).toBe(true);
    const small = [1, 2, 3, 4].map(() => budget.open(10));
    expect(small.map((s) => s.charge(10))).toEqual([true, true, true, false]);
    // Small bodies may also take the shared part, so a large one waits for the room they hold.
    large.release();
    expect(budget.bufferedBytes).toBe(30);
    expect(budget.fits(71)).toBe(false);
    expect(budget.fits(70)).toBe(true);
  });
});
