import { describe, expect, it } from 'vitest';
import type { GitHubItem } from '../../../src/api/github.js';
import { bodySha256, type CodeMateMessage } from '../../../src/api/message.js';
import { checkApproval, type ApprovalCandidate } from '../../../src/github/approvals.js';
import { messageFor } from '../../../src/github/items.js';
import { approvalCommand, judgeReactor, trustPolicyOf } from '../../../src/github/trust.js';
import type { CodeMate } from '../../../src/api/codemate.js';

const cm = {
  apiVersion: 'codemate.io/v1alpha1',
  kind: 'CodeMate',
  metadata: { name: 'a', namespace: 'n', uid: 'u' },
  spec: {
    repository: { url: 'https://github.com/o/r', pullRequest: 7 },
    github: { tokenSecretRef: { name: 'g', key: 'token' } },
    anthropic: { apiKeySecretRef: { name: 'k', key: 'token' } },
  },
} as unknown as CodeMate;

const comment: GitHubItem = {
  id: 11,
  body: 'fix the typo',
  user: { login: 'stranger', type: 'User' },
  authorAssociation: 'NONE',
  htmlUrl: 'https://github.com/o/r/pull/7#issuecomment-11',
  createdAt: '2026-11-26T10:00:00Z',
  updatedAt: '2026-11-26T10:00:00Z',
};
const message: CodeMateMessage = messageFor(cm, 'issue_comment', comment, 7, 'codemate-bot');
const reaction = (at: string, by = 'alice'): ApprovalCandidate => ({
  decision: 'Approved',
  by,
  via: 'reaction',
  at,
});
const command = (decision: 'Approved' | 'Denied', at: string, by = 'alice'): ApprovalCandidate => ({
  decision,
  by,
  via: 'comment',
  at,
  url: 'https://github.com/o/r/pull/7#issuecomment-99',
});

describe('messageFor', () => {
  it("makes a person's refused comment approvable, never a bot's or the session's own", () => {
    expect(message.spec.trust).toMatchObject({ allowed: false, approvable: true });
    const bot = messageFor(
      cm,
      'issue_comment',
      { ...comment, user: { login: 'ci[bot]', type: 'Bot' } },
      7,
      'me',
    );
    const self = messageFor(cm, 'issue_comment', { ...comment, user: { login: 'me' } }, 7, 'me');
    for (const m of [bot, self]) expect(m.spec.trust).toEqual({ allowed: false, reason: expect.any(String) });
  });
});

describe('checkApproval', () => {
  it('takes the earliest approval, bound to the exact text the message holds', () => {
    const result = checkApproval(message, comment, [
      reaction('2026-11-26T10:09:00Z', 'bob'),
      reaction('2026-11-26T10:05:00Z'),
    ]);
    expect(result).toEqual({
      approval: {
        decision: 'Approved',
        by: 'alice',
        via: 'reaction',
        at: '2026-11-26T10:05:00.000Z',
        bodySha256: bodySha256('fix the typo'),
      },
    });
  });

  it('says nothing without candidates, and refuses when the comment is gone', () => {
    expect(checkApproval(message, comment, [])).toEqual({ none: true });
    expect(checkApproval(message, undefined, [reaction('2026-11-26T10:05:00Z')])).toMatchObject({
      refused: expect.stringContaining('gone'),
    });
  });

  it('refuses a comment whose text is not what was recorded', () => {
    const edited = { ...comment, body: 'looks good', updatedAt: '2026-11-26T10:01:00Z' };
    expect(checkApproval(message, edited, [reaction('2026-11-26T10:05:00Z')])).toMatchObject({
      refused: expect.stringContaining('edited'),
    });
  });

  it('refuses approvals made before an edit back to the recorded text, and takes one after it', () => {
    // Recorded A, edited to B, approved while it read B, edited back to A: the 👍 was for B.
    const back = { ...comment, updatedAt: '2026-11-26T10:06:00Z' };
    expect(checkApproval(message, back, [reaction('2026-11-26T10:05:00Z')])).toMatchObject({
      refused: expect.stringContaining('predates'),
    });
    expect(checkApproval(message, back, [reaction('2026-11-26T10:07:00Z')])).toMatchObject({
      approval: { by: 'alice' },
    });
  });

  it('a /codemate approve counts only for comments written before it', () => {
    const before = command('Approved', '2026-11-26T09:00:00Z');
    expect(checkApproval(message, comment, [before])).toMatchObject({ refused: expect.any(String) });
    expect(checkApproval(message, comment, [{ ...before, at: '2026-11-26T11:00:00Z' }])).toMatchObject({
      approval: { via: 'comment' },
    });
  });

  it('a /codemate deny refuses the comments written before it, recording who denied it', () => {
    expect(checkApproval(message, comment, [command('Denied', '2026-11-26T11:00:00Z', 'bob')])).toEqual({
      approval: {
        decision: 'Denied',
        by: 'bob',
        via: 'comment',
        at: '2026-11-26T11:00:00.000Z',
        bodySha256: bodySha256('fix the typo'),
        url: 'https://github.com/o/r/pull/7#issuecomment-99',
      },
    });
    // Written before the comment, it is about other comments.
    expect(checkApproval(message, comment, [command('Denied', '2026-11-26T09:00:00Z')])).toEqual({
      none: true,
    });
  });

  it('the earliest decision stands, a denial on a tie', () => {
    const approve = command('Approved', '2026-11-26T11:00:00Z');
    const deny = command('Denied', '2026-11-26T11:05:00Z', 'bob');
    expect(checkApproval(message, comment, [deny, approve])).toMatchObject({
      approval: { decision: 'Approved', by: 'alice' },
    });
    expect(checkApproval(message, comment, [deny, reaction('2026-11-26T11:06:00Z')])).toMatchObject({
      approval: { decision: 'Denied', by: 'bob' },
    });
    expect(checkApproval(message, comment, [{ ...approve, at: deny.at }, deny])).toMatchObject({
      approval: { decision: 'Denied' },
    });
  });

  it('a denial holds where an approval would not: an edited comment, or one gone from GitHub', () => {
    const edited = { ...comment, body: 'run this', updatedAt: '2026-11-26T10:30:00Z' };
    const deny = command('Denied', '2026-11-26T10:20:00Z', 'bob');
    expect(checkApproval(message, edited, [reaction('2026-11-26T10:10:00Z'), deny])).toMatchObject({
      approval: { decision: 'Denied', by: 'bob' },
    });
    expect(checkApproval(message, undefined, [deny])).toMatchObject({ approval: { decision: 'Denied' } });
    expect(checkApproval(message, edited, [reaction('2026-11-26T10:40:00Z')])).toMatchObject({
      refused: expect.stringContaining('edited'),
    });
  });
});

describe('judgeReactor', () => {
  const policy = trustPolicyOf(cm.spec);
  it('lets people with write access approve, not readers, bots or the session', () => {
    expect(judgeReactor({ login: 'alice' }, 'write', policy).allowed).toBe(true);
    expect(judgeReactor({ login: 'root' }, 'admin', policy).allowed).toBe(true);
    expect(judgeReactor({ login: 'stranger' }, 'read', policy).allowed).toBe(false);
    expect(judgeReactor({ login: 'nobody' }, 'none', policy).allowed).toBe(false);
    expect(judgeReactor({ login: 'ci[bot]', type: 'Bot' }, 'admin', policy).allowed).toBe(false);
    expect(judgeReactor({ login: 'me' }, 'admin', policy, 'me').allowed).toBe(false);
  });

  it('follows the policy: listed users approve, and an OWNER-only policy takes only admins', () => {
    expect(judgeReactor({ login: 'Carol' }, 'read', { ...policy, allowedUsers: ['carol'] }).allowed).toBe(
      true,
    );
    const owners = { ...policy, associations: ['OWNER'] };
    expect(judgeReactor({ login: 'alice' }, 'write', owners).allowed).toBe(false);
    expect(judgeReactor({ login: 'root' }, 'admin', owners).allowed).toBe(true);
  });
});

describe('approvalCommand', () => {
  it('is the command alone, in any case and spacing, and not a sentence that mentions it', () => {
    for (const body of ['/codemate approve', '  /CodeMate  approve \n', '/codemate approve\r\n']) {
      expect(approvalCommand(body)).toBe('Approved');
    }
    for (const body of ['/codemate deny', '  /CODEMATE deny\n', '/codemate   Deny\r\n']) {
      expect(approvalCommand(body)).toBe('Denied');
    }
    for (const body of [
      'please /codemate approve',
      '/codemate approve this and run rm -rf',
      '/codemate deny it',
      'I /codemate deny',
      '/codemate approve deny',
      '/codemate',
    ]) {
      expect(approvalCommand(body)).toBeUndefined();
    }
  });
});
