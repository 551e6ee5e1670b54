import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import { branchKey, keysOf, pullRequestKey } from '../../../src/webhook/codemates.js';

const cm = (repository: CodeMate['spec']['repository'], extra: Partial<CodeMate> = {}): CodeMate =>
  ({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name: 'x', namespace: 'ns', uid: 'u' },
    spec: {
      repository,
      github: { tokenSecretRef: { name: 'g' } },
      anthropic: { apiKeySecretRef: { name: 'a' } },
    },
    ...extra,
  }) as CodeMate;

describe('keysOf: what a CodeMate answers to', () => {
  it('its pull request from spec, or from status once linked, and its branch', () => {
    expect(keysOf(cm({ url: 'https://github.com/Acme/API.git', pullRequest: 7 }))).toEqual(['acme/api#7']);
    expect(keysOf(cm({ url: 'git@github.com:acme/api.git', branch: 'feat/x' }))).toEqual(['acme/api@feat/x']);
    expect(
      keysOf(
        cm({ url: 'https://github.com/acme/api', branch: 'b' }, { status: { pullRequest: { number: 9 } } }),
      ),
    ).toEqual(['acme/api#9', 'acme/api@b']);
    expect(pullRequestKey('Acme/API', 7)).toBe('acme/api#7');
    expect(branchKey('Acme/API', 'Feat')).toBe('acme/api@Feat');
  });

  it('nothing when monitoring is off, the CodeMate is being deleted, or the URL is not a GitHub repository', () => {
    const off = cm({ url: 'https://github.com/a/b', pullRequest: 1 });
    off.spec.monitoring = { enabled: false, intervalSeconds: 60, delivery: 'Immediate' };
    expect(keysOf(off)).toEqual([]);
    const deleting = cm({ url: 'https://github.com/a/b', pullRequest: 1 });
    deleting.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    expect(keysOf(deleting)).toEqual([]);
    expect(keysOf(cm({ url: 'file:///srv/repo.git', pullRequest: 1 }))).toEqual([]);
  });
});
