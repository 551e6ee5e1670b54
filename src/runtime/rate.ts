/**
 * Exponential backoff: `baseMs` after the first failure, doubled after each next one, capped at `maxMs`.
 * Every retry loop of the operator takes its delay from here.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

/** Equal jitter: half of `ms` fixed, half random, so that retries of a burst spread out. */
export function equalJitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms / 2 + (random() * ms) / 2);
}

/**
 * A token bucket that hands out delays: `burst` takes at once, then `perSecond`. Each take reserves its
 * slot, so callers that take in a burst are spread evenly after it (poller.ts spreads first polls with
 * it, injector.ts the opening of session channels, events.ts the writing of events).
 */
export class Spreader {
  private tokens: number;
  private at: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.at = now();
  }

  /** Milliseconds to wait before the reserved slot: 0 while the burst lasts. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }
}
