/**
 * The webhook's record of the last delivery it stored, and of when it started: one ConfigMap in its own
 * namespace, which the operator's redelivery (src/operator/redelivery.ts) reads to know that the webhook
 * is up again after an outage, so that it asks GitHub to redeliver what failed only once that can work.
 * Writes are coalesced (at most one per `everyMs`) and best effort: a delivery never waits for them.
 */
import type { Kube, KubeObject } from '../clients/kube.js';
import { webhookRecord } from '../config/defaults.js';
import { errorFields, type Logger } from '../observability/log.js';

export interface DeliveryRecordData {
  /** When this webhook process started taking deliveries. */
  startedAt?: string;
  lastStoredAt?: string;
  lastStoredDelivery?: string;
  lastStoredEvent?: string;
}

export class DeliveryRecord {
  private pending: DeliveryRecordData = {};
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    private readonly logger: Logger,
    private readonly everyMs: number = webhookRecord.everyMs,
  ) {}

  /** The webhook takes deliveries from now on. */
  started(now = new Date()): Promise<void> {
    this.pending.startedAt = now.toISOString();
    return this.flush();
  }

  /** A delivery was stored (its messages written). */
  stored(delivery: string | undefined, event: string, now = new Date()): void {
    this.pending = {
      ...this.pending,
      lastStoredAt: now.toISOString(),
      ...(delivery ? { lastStoredDelivery: delivery } : {}),
      lastStoredEvent: event,
    };
    if (this.timer) return;
    const wait = Math.max(0, this.lastWrite + this.everyMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async flush(): Promise<void> {
    const data = this.pending;
    this.pending = {};
    this.lastWrite = Date.now();
    try {
      await this.kube.apply(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: webhookRecord.name,
            namespace: this.namespace,
            labels: { 'app.kubernetes.io/part-of': 'codemate', 'app.kubernetes.io/name': 'codemate-webhook' },
          },
          data: data as Record<string, string>,
        } as KubeObject,
        'codemate-webhook',
      );
    } catch (error) {
      this.logger.warn(
        { namespace: this.namespace, ...errorFields(error) },
        'could not record the last stored delivery; redelivery after an outage waits for the next one',
      );
    }
  }
}
