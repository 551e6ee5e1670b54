/**
 * A keyed work queue in the manner of client-go's: a key waits in the queue at most once, is processed
 * by at most one worker at a time (a key added while processing is handled again afterwards), and failed
 * keys come back with per-key exponential backoff, with jitter. Unlike client-go, a failed key's backoff
 * holds whatever adds it meanwhile: an event (often the status write of the failed attempt itself) waits
 * until the backoff has run out instead of retrying at once, so nothing can spin.
 */
import { queueBackoff } from '../config/defaults.js';
import { backoffDelay, equalJitter } from './rate.js';

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** [0, 1): the jitter's source; tests pass a constant. */
  random?: () => number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; dueAt: number }>();
  /** Keys in backoff after a failure: not handed out before this time. */
  private readonly backoffUntil = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(options: QueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? queueBackoff.baseDelayMs;
    this.maxDelayMs = options.maxDelayMs ?? queueBackoff.maxDelayMs;
    this.random = options.random ?? Math.random;
  }

  get length(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    const until = this.backoffUntil.get(key);
    if (until !== undefined) {
      const wait = until - Date.now();
      if (wait > 0) return this.addAfter(key, wait);
      this.backoffUntil.delete(key);
    }
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else this.queue.push(key);
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const dueAt = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing) {
      if (existing.dueAt <= dueAt) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { timer, dueAt });
  }

  /**
   * Re-adds a failed key after its backoff: base * 2^(failures), capped, with equal jitter (half fixed,
   * half random) so that keys failing together do not retry together. Until then, adds of the key wait.
   */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = equalJitter(backoffDelay(n + 1, this.baseDelayMs, this.maxDelayMs), this.random);
    this.backoffUntil.set(key, Date.now() + delay);
    this.addAfter(key, delay);
    return delay;
  }

  /**
   * Re-adds a key at a time its reconcile named (a temporary error's own delay), holding adds until
   * then as a backoff does, without counting a failure.
   */
  retryAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) return this.add(key);
    this.backoffUntil.set(key, Date.now() + delayMs);
    this.addAfter(key, delayMs);
  }

  /**
   * Ends every key's backoff at once and adds the keys that were waiting one out. After an apiserver
   * outage the failures were the outage's, not the keys': without this, a key that failed during it
   * would wait out up to its whole backoff after the apiserver came back.
   */
  resetBackoff(): void {
    const held = [...this.backoffUntil.keys()];
    this.failures.clear();
    this.backoffUntil.clear();
    for (const key of held) {
      const pending = this.timers.get(key);
      if (pending) clearTimeout(pending.timer);
      this.timers.delete(key);
      this.add(key);
    }
  }

  /** Clears a key's failure history after it succeeded. */
  forget(key: string): void {
    this.failures.delete(key);
    this.backoffUntil.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key finished; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys; workers waiting in get() receive undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
