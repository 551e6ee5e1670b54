import { describe, expect, it } from 'vitest';
import { codemateFor, createSchema, deriveName } from '../../../src/cli/commands/create.js';

describe('create helpers', () => {
  it('derives pr-<N>, or a DNS-label slug of the branch', () => {
    expect(deriveName({ pr: 123, branch: 'x' })).toBe('pr-123');
    expect(deriveName({ branch: 'Feature/Login_Fix' })).toBe('feature-login-fix');
    expect(deriveName({ branch: `a/${'b'.repeat(80)}` }).length).toBeLessThanOrEqual(50);
    expect(() => deriveName({ branch: '///' })).toThrow(/cannot derive a name/);
  });

  it('builds the CodeMate the flags describe, with secrets under key "token"', () => {
    const cm = codemateFor(
      {
        repo: 'https://github.com/acme/api.git',
        branch: 'fix',
        base: 'develop',
        githubSecret: 'gh',
        anthropicSecret: 'an',
        gitUserName: 'Bot',
        storage: '5Gi',
        githubApp: false,
        wait: false,
        timeout: 300,
        dryRun: true,
      },
      'team',
    );
    expect(cm.metadata).toEqual({ name: 'fix', namespace: 'team' });
    expect(cm.spec).toEqual({
      repository: { url: 'https://github.com/acme/api.git', branch: 'fix', baseBranch: 'develop' },
      github: { tokenSecretRef: { name: 'gh', key: 'token' }, user: { name: 'Bot' } },
      anthropic: { apiKeySecretRef: { name: 'an', key: 'token' } },
      storage: { size: '5Gi' },
    });
  });

  it('--delivery takes immediate or when-idle, and sets spec.monitoring.delivery', () => {
    const flags = { repo: 'https://github.com/acme/api.git', branch: 'fix' };
    expect(createSchema.parse({ ...flags, delivery: 'when-idle' }).delivery).toBe('WhenIdle');
    expect(createSchema.parse({ ...flags, delivery: 'WhenIdle' }).delivery).toBe('WhenIdle');
    expect(createSchema.parse({ ...flags, delivery: 'immediate' }).delivery).toBe('Immediate');
    expect(createSchema.parse(flags).delivery).toBeUndefined();
    expect(createSchema.safeParse({ ...flags, delivery: 'sometimes' }).success).toBe(false);
    const cm = codemateFor(createSchema.parse({ ...flags, delivery: 'when-idle' }), 'team');
    expect(cm.spec.monitoring).toEqual({ delivery: 'WhenIdle' });
    expect(codemateFor(createSchema.parse(flags), 'team').spec.monitoring).toBeUndefined();
  });

  it('--github-app leaves the token out (App mode), and refuses --github-secret beside it', () => {
    const flags = { repo: 'https://github.com/acme/api.git', pr: 7 };
    const app = codemateFor(createSchema.parse({ ...flags, githubApp: true }), 'team');
    expect(app.spec.github).toEqual({});
    const token = codemateFor(createSchema.parse(flags), 'team');
    expect(token.spec.github).toEqual({ tokenSecretRef: { name: 'github-token', key: 'token' } });
    const both = createSchema.safeParse({ ...flags, githubApp: true, githubSecret: 'gh' });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]?.message).toMatch(/not both/);
  });

  it('--idle-suspend-after takes a Go-style duration and sets spec.lifecycle', () => {
    const flags = { repo: 'https://github.com/acme/api.git', branch: 'fix' };
    const cm = codemateFor(createSchema.parse({ ...flags, idleSuspendAfter: '1h30m' }), 'team');
    expect(cm.spec.lifecycle).toEqual({ idleSuspendAfter: '1h30m' });
    for (const bad of ['2 hours', '0s', '90', '1d']) {
      expect(createSchema.safeParse({ ...flags, idleSuspendAfter: bad }).success, bad).toBe(false);
    }
  });
});
