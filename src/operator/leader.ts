/**
 * Leader election on a coordination.k8s.io Lease, with client-go's timings (15 s lease, 10 s renew
 * deadline, 2 s retry). Expiry is judged by when this replica last saw the lease record change, not by
 * the holder's clock, as client-go does.
 */
import { isConflict, isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { leaseTimings } from '../config/defaults.js';
import { errorFields, type Logger } from '../observability/log.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger: Logger;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec?: LeaseSpec };

/** RFC 3339 with microseconds, the MicroTime wire format. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observed: { record: string; at: number } | undefined;
  private leading = false;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly kube: Kube,
    private readonly options: LeaderOptions,
  ) {
    this.leaseDurationMs = options.leaseDurationMs ?? leaseTimings.leaseDurationMs;
    this.renewDeadlineMs = options.renewDeadlineMs ?? leaseTimings.renewDeadlineMs;
    this.retryPeriodMs = options.retryPeriodMs ?? leaseTimings.retryPeriodMs;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Blocks until this replica leads (resolves true) or stop() is called (false). Then keep calling
   * `holdLeadership()` to renew.
   */
  async acquire(): Promise<boolean> {
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.options.logger.info(
          { lease: this.leaseRef(), identity: this.options.identity },
          'became leader',
        );
        return true;
      }
      await this.sleep(this.retryPeriodMs);
    }
    return false;
  }

  /** Renews until a renewal deadline is missed (resolves 'lost') or stop() is called ('stopped'). */
  async holdLeadership(): Promise<'lost' | 'stopped'> {
    let lastRenew = Date.now();
    while (!this.stopped) {
      await this.sleep(this.retryPeriodMs);
      if (this.stopped) break;
      if (await this.tryAcquireOrRenew()) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.options.logger.error({ lease: this.leaseRef() }, 'lost the leader lease');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Stops acquiring and renewing; acquire() and holdLeadership() return. The Lease is still held. */
  async stopCampaigning(): Promise<void> {
    this.stopped = true;
    this.wake?.();
  }

  /** Gives the Lease up so that a standby takes over at once; call after the work has stopped. */
  async release(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.kube.get<Lease>(
        'coordination.k8s.io/v1',
        'Lease',
        this.options.name,
        this.options.namespace,
      );
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.kube.replace<Lease>({
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
      this.options.logger.info({ lease: this.leaseRef() }, 'released the leader lease');
    } catch (error) {
      this.options.logger.warn(
        { lease: this.leaseRef(), ...errorFields(error) },
        'could not release the lease',
      );
    }
  }

  private leaseRef(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const { identity, name, namespace } = this.options;
    const mine: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: Lease;
    try {
      lease = await this.kube.get<Lease>('coordination.k8s.io/v1', 'Lease', name, namespace);
    } catch (error) {
      if (!isNotFound(error)) return this.failed(error);
      try {
        await this.kube.create({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: mine,
        });
        return true;
      } catch (createError) {
        return this.failed(createError);
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const heldByMe = spec.holderIdentity === identity;
    const durationMs = (spec.leaseDurationSeconds ?? leaseTimings.leaseDurationMs / 1000) * 1000;
    const expired = !spec.holderIdentity || Date.now() > this.observed.at + durationMs;
    if (!heldByMe && !expired) return false;
    const next: LeaseSpec = heldByMe
      ? { ...spec, renewTime: mine.renewTime, leaseDurationSeconds: mine.leaseDurationSeconds }
      : { ...mine, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      const updated = await this.kube.replace<Lease>({ ...lease, spec: next });
      const s = updated.spec ?? {};
      this.observed = {
        record: JSON.stringify([s.holderIdentity, s.renewTime, s.leaseDurationSeconds]),
        at: Date.now(),
      };
      return true;
    } catch (error) {
      return this.failed(error);
    }
  }

  private failed(error: unknown): false {
    if (!isConflict(error))
      this.options.logger.warn({ lease: this.leaseRef(), ...errorFields(error) }, 'lease update failed');
    return false;
  }
}
