import { describe, expect, it } from 'vitest';
import {
  awaitsApproval,
  bodySha256,
  type Approval,
  type CodeMateMessage,
  type MessageStatus,
} from '../../../src/api/message.js';
import { nextStep } from '../../../src/operator/delivery.js';

const now = new Date('2026-11-26T12:00:00Z');
const policy = { expiryMs: 24 * 3600_000, approvalExpiryMs: 7 * 24 * 3600_000 };
const running = { phase: 'Running', pod: 'codemate-a-1' };
const untrusted = { allowed: false, reason: 'author association NONE is not trusted', approvable: true };

function message(
  options: {
    status?: MessageStatus;
    approval?: Approval;
    created?: string;
    trust?: CodeMateMessage['spec']['trust'];
  } = {},
): CodeMateMessage {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMateMessage',
    metadata: {
      name: 'a-ic-1',
      namespace: 'n',
      creationTimestamp: options.created ?? '2026-11-26T11:00:00Z',
    },
    spec: {
      codemate: 'a',
      source: { type: 'issue_comment', id: '1', author: 'stranger' },
      body: 'fix the typo',
      trust: options.trust ?? untrusted,
      ...(options.approval ? { approval: options.approval } : {}),
    },
    ...(options.status ? { status: options.status } : {}),
  };
}

const approval = (extra: Partial<Approval> = {}): Approval => ({
  decision: 'Approved',
  by: 'alice',
  via: 'reaction',
  at: '2026-11-26T11:30:00Z',
  bodySha256: bodySha256('fix the typo'),
  ...extra,
});

describe('nextStep of an untrusted message', () => {
  it('waits in AwaitingApproval with the reason and how to approve, written once, until it expires', () => {
    const step = nextStep(message(), running, now, policy);
    expect(step).toMatchObject({
      kind: 'record',
      status: { phase: 'AwaitingApproval', reason: 'Untrusted' },
      requeueAfterMs: 7 * 24 * 3600_000 - 3600_000,
    });
    const status = step.kind === 'record' ? step.status : undefined;
    expect(status?.message).toContain('author association NONE is not trusted');
    expect(status?.message).toContain('codemate approve a-ic-1');
    expect(nextStep(message({ status }), running, now, policy)).toEqual({
      kind: 'wait',
      requeueAfterMs: 7 * 24 * 3600_000 - 3600_000,
    });
    expect(awaitsApproval(message({ status }))).toBe(true);
  });

  it('ends Rejected (ApprovalExpired) when nobody approved it in time', () => {
    const step = nextStep(message({ created: '2026-11-19T11:00:00Z' }), running, now, policy);
    expect(step).toMatchObject({ kind: 'record', status: { phase: 'Rejected', reason: 'ApprovalExpired' } });
    expect(nextStep(message(), running, now, { ...policy, approvalExpiryMs: 3600_000 })).toMatchObject({
      status: { phase: 'Rejected', reason: 'ApprovalExpired' },
    });
  });

  it('records the approver once, then delivers like any message', () => {
    const step = nextStep(message({ approval: approval() }), running, now, policy);
    expect(step).toMatchObject({
      kind: 'record',
      status: { phase: 'Pending', reason: 'Approved', approvedBy: 'alice' },
      requeueAfterMs: 0,
    });
    const status = step.kind === 'record' ? step.status : undefined;
    expect(status?.message).toContain('approved by @alice (reaction)');
    expect(nextStep(message({ approval: approval(), status }), running, now, policy)).toEqual({
      kind: 'inject',
      pod: 'codemate-a-1',
    });
    expect(awaitsApproval(message({ approval: approval(), status }))).toBe(false);
  });

  it("counts an approved message's wait for its session from the approval, not its creation", () => {
    const old = message({
      created: '2026-11-24T11:00:00Z',
      approval: approval({ at: '2026-11-26T11:00:00Z' }),
      status: { approvedBy: 'alice' },
    });
    expect(nextStep(old, { phase: 'Starting', pod: undefined }, now, policy)).toMatchObject({
      status: { phase: 'Pending', reason: 'WaitingForSession' },
    });
  });

  it('rejects a denied message, and one approved for other text', () => {
    expect(
      nextStep(message({ approval: approval({ decision: 'Denied', via: 'cli' }) }), running, now, policy),
    ).toMatchObject({
      status: { phase: 'Rejected', reason: 'Denied' },
    });
    expect(
      nextStep(message({ approval: approval({ bodySha256: bodySha256('other') }) }), running, now, policy),
    ).toMatchObject({ status: { phase: 'Rejected', reason: 'ApprovalMismatch' } });
  });

  it("rejects a bot's or the session's own message at once, approved or not", () => {
    const bot = { allowed: false, reason: '@x[bot] is a bot; bots are never injected' };
    for (const m of [message({ trust: bot }), message({ trust: bot, approval: approval() })]) {
      expect(nextStep(m, running, now, policy)).toMatchObject({
        status: { phase: 'Rejected', reason: 'Untrusted', message: bot.reason },
      });
      expect(awaitsApproval(m)).toBe(false);
    }
  });
});
