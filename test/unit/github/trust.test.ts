import { describe, expect, it } from 'vitest';
import type { CodeMateSpec } from '../../../src/api/codemate.js';
import { judge, trustPolicyOf } from '../../../src/github/trust.js';

const spec = (trust?: {
  associations?: Array<'OWNER' | 'MEMBER' | 'COLLABORATOR' | 'CONTRIBUTOR' | 'NONE'>;
  allowedUsers?: string[];
}) =>
  ({
    repository: { url: 'https://github.com/o/r.git', pullRequest: 1 },
    github: { tokenSecretRef: { name: 'g', key: 'token' } },
    anthropic: { apiKeySecretRef: { name: 'a', key: 'token' } },
    ...(trust ? { monitoring: { enabled: true, intervalSeconds: 60, trust } } : {}),
  }) as CodeMateSpec;

describe('trust policy', () => {
  const defaults = trustPolicyOf(spec());

  it('trusts OWNER, MEMBER and COLLABORATOR by default, and nobody else', () => {
    for (const a of ['OWNER', 'MEMBER', 'COLLABORATOR'])
      expect(judge({ login: 'dev' }, a, defaults).allowed).toBe(true);
    for (const a of ['CONTRIBUTOR', 'FIRST_TIME_CONTRIBUTOR', 'FIRST_TIMER', 'NONE', undefined]) {
      const v = judge({ login: 'stranger' }, a, defaults);
      expect(v.allowed).toBe(false);
      expect(v.reason).toContain('is not trusted');
    }
  });

  it('always refuses bots and the session itself, even when listed', () => {
    const open = trustPolicyOf(
      spec({ associations: ['NONE', 'OWNER'], allowedUsers: ['dependabot[bot]', 'codemate-bot'] }),
    );
    expect(judge({ login: 'dependabot[bot]', type: 'Bot' }, 'NONE', open)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('bot'),
    });
    expect(judge({ login: 'renovate', type: 'Bot' }, 'OWNER', open).allowed).toBe(false);
    expect(judge({ login: 'CodeMate-Bot' }, 'OWNER', open, 'codemate-bot')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining("session's own GitHub identity"),
    });
  });

  it('lets explicitly allowed users through whatever their association', () => {
    const policy = trustPolicyOf(spec({ allowedUsers: ['External-Reviewer'] }));
    expect(judge({ login: 'external-reviewer' }, 'NONE', policy)).toMatchObject({ allowed: true });
    expect(judge({ login: 'someone-else' }, 'NONE', policy).allowed).toBe(false);
  });

  it('follows a narrowed association list', () => {
    const ownersOnly = trustPolicyOf(spec({ associations: ['OWNER'] }));
    expect(judge({ login: 'm' }, 'MEMBER', ownersOnly).allowed).toBe(false);
    expect(judge({ login: 'o' }, 'OWNER', ownersOnly).allowed).toBe(true);
  });
});
