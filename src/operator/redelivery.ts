/**
 * App mode: no lost webhook deliveries. GitHub does not send a failed delivery again by itself, so a
 * comment posted while the webhook was down would wait for the next poll. Every `everyMs`, the leader
 * lists the App's recent deliveries (GET /app/hook/deliveries), bounded in time (`windowMs`) and count
 * (`maxListed`). A delivery whose every attempt failed is asked for again (POST .../attempts) when:
 * - its event carries a comment or review (what becomes a message);
 * - a CodeMate follows its pull request and has no message for it (its deterministic name), nor history;
 * - the webhook has been up since it failed (its record, src/webhook/deliveryRecord.ts), so the new
 *   attempt can succeed.
 * At most `maxPerPass` redeliveries per pass, each delivery at most `maxAttempts` times. It is idempotent:
 * a redelivery is the same delivery, and the message it stores has the name the poller or an earlier
 * attempt would have given it (409 on a second create).
 */
import type { CodeMate } from '../api/codemate.js';
import { messageName } from '../api/message.js';
import type { GitHubApp, HookDelivery } from '../clients/githubApp.js';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { redelivery as defaults, webhookRecord } from '../config/defaults.js';
import { routeEvent } from '../github/events.js';
import { notNewBecause } from '../github/items.js';
import { parseRepository } from '../github/repository.js';
import { errorFields, type Logger } from '../observability/log.js';

export interface RedeliveryOptions {
  kube: Kube;
  logger: Logger;
  /** The operator's App, whose webhook GitHub delivers to. */
  app: () => Promise<GitHubApp>;
  /** Where the webhook keeps its record: the namespace of CodeMate's servers. */
  namespace: string;
  codemates: () => CodeMate[];
  hasMessage: (namespace: string, name: string) => boolean;
  limits?: Partial<Limits>;
  /** Called with each delivery asked for again. */
  onRedeliver?: (delivery: HookDelivery) => void;
}

/** The webhook's record (src/webhook/deliveryRecord.ts); undefined when no webhook has written one. */
async function readDeliveryRecord(
  kube: Kube,
  namespace: string,
): Promise<{ startedAt?: string; lastStoredAt?: string } | undefined> {
  try {
    const cm = await kube.get<KubeObject & { data?: Record<string, string> }>(
      'v1',
      'ConfigMap',
      webhookRecord.name,
      namespace,
    );
    return cm.data ?? {};
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

type Limits = Record<keyof typeof defaults, number>;

const carriesItems = new Set(['issue_comment', 'pull_request_review', 'pull_request_review_comment']);

/** The deliveries whose every attempt failed, newest attempt each, with how many attempts they had. */
export function failedDeliveries(deliveries: HookDelivery[]): Array<HookDelivery & { attempts: number }> {
  const byGuid = new Map<string, HookDelivery[]>();
  for (const d of deliveries) byGuid.set(d.guid, [...(byGuid.get(d.guid) ?? []), d]);
  const failed: Array<HookDelivery & { attempts: number }> = [];
  for (const attempts of byGuid.values()) {
    if (attempts.some((a) => a.statusCode >= 200 && a.statusCode < 300)) continue;
    const newest = attempts.reduce((a, b) => (a.deliveredAt >= b.deliveredAt ? a : b));
    failed.push({ ...newest, attempts: attempts.length });
  }
  return failed;
}

/** The names of the messages CodeMates following the delivery's pull request would have for it. */
export function expectedMessages(
  event: string,
  payload: unknown,
  codemates: CodeMate[],
): Array<{ codemate: CodeMate; name: string }> {
  const routed = routeEvent(event, payload as Parameters<typeof routeEvent>[1]);
  if (routed.kind !== 'item' && routed.kind !== 'review') return [];
  const followers = codemates.filter((cm) => {
    const repo = parseRepository(cm.spec.repository.url);
    if (!repo || cm.metadata.deletionTimestamp || cm.spec.monitoring?.enabled === false) return false;
    if (`${repo.owner}/${repo.repo}`.toLowerCase() !== routed.repository.toLowerCase()) return false;
    const number = cm.spec.repository.pullRequest ?? cm.status?.pullRequest?.number;
    return (
      number === routed.pullRequest || (!!routed.headRef && cm.spec.repository.branch === routed.headRef)
    );
  });
  return followers
    .filter((cm) => routed.kind !== 'item' || !notNewBecause(cm, routed.type, routed.item))
    .map((cm) => ({
      codemate: cm,
      name:
        routed.kind === 'item'
          ? messageName(cm.metadata.name, routed.type, String(routed.item.id))
          : messageName(cm.metadata.name, 'review', String(routed.reviewId)),
    }));
}

export class Redelivery {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly limits: Limits;
  /** Deliveries found to need nothing, so their payload is not asked for again. */
  private readonly settled = new Set<string>();

  constructor(private readonly options: RedeliveryOptions) {
    this.limits = { ...defaults, ...options.limits };
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pass()
        .catch((error: unknown) =>
          this.options.logger.warn(errorFields(error), 'looking for failed webhook deliveries failed'),
        )
        .finally(() => this.schedule(this.limits.everyMs));
    }, delayMs);
    this.timer.unref();
  }

  /** One pass; answers the deliveries it asked GitHub to send again. */
  async pass(now = new Date()): Promise<HookDelivery[]> {
    const record = await readDeliveryRecord(this.options.kube, this.options.namespace);
    const upSince = [record?.startedAt, record?.lastStoredAt].filter(Boolean).sort().at(-1);
    // No webhook has ever stored anything: deliveries have nowhere to go, and the poller covers.
    if (!upSince) return [];
    const app = await this.options.app();
    const listed = await app.deliveries(
      new Date(now.getTime() - this.limits.windowMs),
      this.limits.maxListed,
    );
    const asked: HookDelivery[] = [];
    for (const delivery of failedDeliveries(listed)) {
      if (asked.length >= this.limits.maxPerPass) break;
      if (!carriesItems.has(delivery.event) || this.settled.has(delivery.guid)) continue;
      if (delivery.attempts > this.limits.maxAttempts) continue;
      // Still failing since the webhook came back is not an outage: another attempt would fail too.
      if (delivery.deliveredAt >= upSince) continue;
      const payload = await app.deliveryPayload(delivery.id);
      const missing = expectedMessages(delivery.event, payload, this.options.codemates()).filter(
        ({ codemate, name }) => !this.options.hasMessage(codemate.metadata.namespace, name),
      );
      if (missing.length === 0) {
        this.settled.add(delivery.guid);
        continue;
      }
      await app.redeliver(delivery.id);
      asked.push(delivery);
      this.options.onRedeliver?.(delivery);
      this.options.logger.info(
        { delivery: delivery.guid, event: delivery.event, messages: missing.map((m) => m.name) },
        'asked GitHub to redeliver a webhook delivery that failed',
      );
    }
    return asked;
  }
}
