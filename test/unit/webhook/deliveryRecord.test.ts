import { describe, expect, it } from 'vitest';
import type { Kube, KubeObject } from '../../../src/clients/kube.js';
import { createLogger } from '../../../src/observability/log.js';
import { DeliveryRecord } from '../../../src/webhook/deliveryRecord.js';
import { eventually } from '../../helpers/cluster.js';

/** What the record applies, in order; `fail` makes the next apply throw. */
function recorder() {
  const applied: Array<Record<string, string>> = [];
  let fail = false;
  const kube = {
    apply: async (object: KubeObject & { data: Record<string, string> }) => {
      if (fail) {
        fail = false;
        throw new Error('forbidden');
      }
      applied.push(object.data);
      return object;
    },
  } as unknown as Kube;
  return { kube, applied, failNext: () => (fail = true) };
}
const logger = createLogger({ name: 'test', level: 'silent' });

describe('the webhook’s record of the last delivery it stored', () => {
  it('records its start at once, then coalesces stored deliveries into one write per period', async () => {
    const { kube, applied } = recorder();
    const record = new DeliveryRecord(kube, 'codemate-system', logger, 200);
    await record.started(new Date('2026-11-29T12:00:00Z'));
    expect(applied).toEqual([{ startedAt: '2026-11-29T12:00:00.000Z' }]);
    record.stored('guid-1', 'issue_comment', new Date('2026-11-29T12:00:01Z'));
    record.stored('guid-2', 'pull_request_review', new Date('2026-11-29T12:00:02Z'));
    await eventually(
      async () => applied.length,
      (n) => n === 2,
      { what: 'one coalesced write', intervalMs: 20 },
    );
    expect(applied[1]).toEqual({
      lastStoredAt: '2026-11-29T12:00:02.000Z',
      lastStoredDelivery: 'guid-2',
      lastStoredEvent: 'pull_request_review',
    });
    record.stop();
  });

  it('never throws: a failed write is logged, and the next one still happens', async () => {
    const { kube, applied, failNext } = recorder();
    const record = new DeliveryRecord(kube, 'codemate-system', logger, 10);
    failNext();
    await expect(record.started()).resolves.toBeUndefined();
    record.stored('guid-3', 'issue_comment');
    await eventually(
      async () => applied.length,
      (n) => n === 1,
      { what: 'the next write', intervalMs: 20 },
    );
    expect(applied[0]!.lastStoredDelivery).toBe('guid-3');
    record.stop();
  });
});
