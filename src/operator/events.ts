/**
 * Events about CodeMates, as client-go's event recorder sends them: off the reconcile's path (a
 * reconcile never waits for an Event write), with a spam filter per object (the same reason and message
 * again within ten minutes is dropped, and each object gets at most a burst of events, refilled
 * slowly), and a bounded backlog. Across objects they are written at a bounded rate, so that a burst of
 * new CodeMates does not spend the apiserver on events while their pods wait. Events are for people reading `kubectl describe`; status and
 * conditions are the record, so an event dropped under a burst loses nothing that matters.
 */
import { apiVersion, kind, type CodeMate } from '../api/codemate.js';
import type { Kube } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import { Spreader } from '../runtime/rate.js';
import type { PlannedEvent } from './reconcile.js';

export const eventComponent = 'codemate-operator';

export interface EventSink {
  record(cm: CodeMate, event: PlannedEvent): void;
}

export interface EventRecorderOptions {
  kube: Kube;
  logger: Logger;
  /** Events written at once. */
  concurrency?: number;
  /** Events written across all objects: this many at once, then `perSecond`. */
  globalBurst?: number;
  perSecond?: number;
  /** Events waiting to be written; beyond it new ones are dropped. */
  backlog?: number;
  /** Per object: the burst, and one more allowed every `refillMs`. */
  burst?: number;
  refillMs?: number;
  /** The same reason and message about an object within this window is dropped. */
  repeatWindowMs?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** reason + message → when it was last sent. */
  recent: Map<string, number>;
}

export class EventRecorder implements EventSink {
  private readonly queue: Array<{ cm: CodeMate; event: PlannedEvent }> = [];
  private readonly buckets = new Map<string, Bucket>();
  private active = 0;
  private stopped = false;
  private idle: Array<() => void> = [];
  private readonly settings: Required<Omit<EventRecorderOptions, 'kube' | 'logger'>>;
  private readonly rate: Spreader;

  constructor(private readonly options: EventRecorderOptions) {
    this.settings = {
      concurrency: options.concurrency ?? 2,
      globalBurst: options.globalBurst ?? 20,
      perSecond: options.perSecond ?? 5,
      backlog: options.backlog ?? 2_000,
      burst: options.burst ?? 10,
      refillMs: options.refillMs ?? 30_000,
      repeatWindowMs: options.repeatWindowMs ?? 600_000,
      now: options.now ?? (() => performance.now()),
    };
    this.rate = new Spreader(this.settings.globalBurst, this.settings.perSecond);
  }

  record(cm: CodeMate, event: PlannedEvent): void {
    if (this.stopped || !this.admit(cm, event)) return;
    if (this.queue.length >= this.settings.backlog) {
      this.options.logger.debug({ reason: event.reason }, 'event backlog full; dropping an event');
      return;
    }
    this.queue.push({ cm, event });
    this.pump();
  }

  /** Resolves when every accepted event has been written (or failed). */
  flush(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Drops the events still waiting for their turn and resolves when those being written are done, as
   * client-go's broadcaster does on shutdown: a backlog is not worth holding a shutdown for.
   */
  stop(): Promise<void> {
    this.queue.length = 0;
    this.stopped = true;
    return this.flush();
  }

  /** The spam filter: a repeat within the window, or an object out of tokens, is dropped. */
  private admit(cm: CodeMate, event: PlannedEvent): boolean {
    const { burst, refillMs, repeatWindowMs, now } = this.settings;
    const at = now();
    const key = cm.metadata.uid ?? `${cm.metadata.namespace}/${cm.metadata.name}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= 50_000) this.buckets.clear();
      bucket = { tokens: burst, at, recent: new Map() };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + (at - bucket.at) / refillMs);
    bucket.at = at;
    const what = `${event.type}\0${event.reason}\0${event.message}`;
    const last = bucket.recent.get(what);
    if (last !== undefined && at - last < repeatWindowMs) return false;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    for (const [seen, when] of bucket.recent) if (at - when >= repeatWindowMs) bucket.recent.delete(seen);
    bucket.recent.set(what, at);
    return true;
  }

  private pump(): void {
    while (this.active < this.settings.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.active += 1;
      const delay = this.rate.take();
      const turn =
        delay > 0 ? new Promise((resolve) => setTimeout(resolve, delay).unref()) : Promise.resolve();
      void turn
        .then(() => this.write(next.cm, next.event))
        .finally(() => {
          this.active -= 1;
          this.pump();
          if (this.active === 0 && this.queue.length === 0) {
            for (const resolve of this.idle.splice(0)) resolve();
          }
        });
    }
  }

  private async write(cm: CodeMate, event: PlannedEvent): Promise<void> {
    try {
      await this.options.kube.recordEvent(
        { apiVersion, kind, name: cm.metadata.name, namespace: cm.metadata.namespace, uid: cm.metadata.uid },
        event,
        eventComponent,
      );
    } catch (error) {
      // Best effort: the status already says what the event would have.
      this.options.logger.debug(
        {
          codemate: `${cm.metadata.namespace}/${cm.metadata.name}`,
          reason: event.reason,
          ...errorFields(error),
        },
        'could not record an event',
      );
    }
  }
}
