/** App mode in the pure parts: the pod, the reconcile, token renewal times, and redelivery's choices. */
import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import { sessionTokenSecretName } from '../../../src/api/pod.js';
import type { HookDelivery } from '../../../src/clients/githubApp.js';
import { desiredPod, githubTokenDir } from '../../../src/operator/podTemplate.js';
import { reconcile } from '../../../src/operator/reconcile.js';
import { expectedMessages, failedDeliveries } from '../../../src/operator/redelivery.js';
import { missingPermissions, renewalTime } from '../../../src/operator/sessionTokens.js';
import { issueCommentOnPullRequest } from '../../helpers/webhook.js';

const now = new Date('2026-11-29T12:00:00Z');

function codemate(github: CodeMate['spec']['github'] = {}, status?: CodeMate['status']): CodeMate {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: {
      name: 'pr-7',
      namespace: 'team',
      uid: 'uid-7',
      generation: 1,
      creationTimestamp: '2026-11-29T00:00:00Z',
    },
    spec: {
      repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
      github,
      anthropic: { apiKeySecretRef: { name: 'anthropic', key: 'token' } },
    },
    ...(status ? { status } : {}),
  };
}
const anthropic = { anthropic: { exists: true, keys: ['token'] } };
const condition = (plan: ReturnType<typeof reconcile>, type: string) =>
  plan.status.conditions?.find((c) => c.type === type);

describe('the session pod in App mode', () => {
  it('mounts the session token Secret and names its file, with no GITHUB_TOKEN', () => {
    const cm = codemate();
    const pod = desiredPod(cm, { defaultImage: 'i', githubApp: true });
    const container = (
      pod.spec.containers as Array<{ env: Array<{ name: string; value?: string }>; volumeMounts: unknown[] }>
    )[0]!;
    expect(container.env.find((e) => e.name === 'GITHUB_TOKEN')).toBeUndefined();
    expect(container.env.find((e) => e.name === 'CODEMATE_GITHUB_TOKEN_FILE')?.value).toBe(
      `${githubTokenDir}/token`,
    );
    expect(container.volumeMounts).toContainEqual({
      name: 'github-token',
      mountPath: githubTokenDir,
      readOnly: true,
    });
    expect(pod.spec.volumes).toContainEqual({
      name: 'github-token',
      secret: {
        secretName: sessionTokenSecretName(cm),
        items: [
          { key: 'token', path: 'token' },
          { key: 'expires-at', path: 'expires-at' },
        ],
      },
    });
  });

  it('keeps the token mode’s pod as it was', () => {
    const pod = desiredPod(codemate({ tokenSecretRef: { name: 'gh', key: 'token' } }), { defaultImage: 'i' });
    expect(JSON.stringify(pod.spec)).not.toContain('github-token');
  });
});

describe('reconcile in App mode', () => {
  it('waits, Pending, without an App anywhere', () => {
    const plan = reconcile(codemate(), { pods: [], secrets: anthropic }, { defaultImage: 'i' }, now);
    expect(plan.status.phase).toBe('Pending');
    expect(condition(plan, 'SecretsResolved')?.message).toContain('the operator has no GitHub App');
  });

  it('waits for the session token, then creates the pod', () => {
    const cm = codemate();
    const settings = { defaultImage: 'i', githubApp: true };
    const waiting = reconcile(cm, { pods: [], secrets: anthropic }, settings, now);
    expect(waiting.status.phase).toBe('Pending');
    expect(waiting.status.message).toContain(sessionTokenSecretName(cm));
    const ready = reconcile(
      cm,
      {
        pods: [],
        secrets: { ...anthropic, [sessionTokenSecretName(cm)]: { exists: true, keys: ['token'] } },
      },
      settings,
      now,
    );
    expect(ready.actions.map((a) => a.type)).toEqual(['createPod']);
  });

  it('checks the key Secret of the CodeMate’s own App', () => {
    const cm = codemate({ app: { appId: 3, privateKeySecretRef: { name: 'app-key', key: 'private-key' } } });
    const plan = reconcile(cm, { pods: [], secrets: anthropic }, { defaultImage: 'i' }, now);
    expect(condition(plan, 'SecretsResolved')?.message).toContain(
      'secret "app-key" (spec.github.app.privateKeySecretRef) not found',
    );
  });

  it('shows the App’s error with its reason and hint, and the bot once it works', () => {
    const failing = reconcile(
      codemate(
        {},
        {
          github: {
            error: 'GitHub App 3 is not installed on o/r',
            errorReason: 'AppNotInstalled',
            hint: 'install it',
          },
        },
      ),
      { pods: [], secrets: anthropic },
      { defaultImage: 'i', githubApp: true },
      now,
    );
    expect(condition(failing, 'GitHubAuthenticated')).toMatchObject({
      status: 'False',
      reason: 'AppNotInstalled',
      message: 'GitHub App 3 is not installed on o/r (install it)',
    });
    const working = reconcile(
      codemate({}, { github: { login: 'codemate[bot]' } }),
      { pods: [], secrets: anthropic },
      { defaultImage: 'i', githubApp: true },
      now,
    );
    expect(condition(working, 'GitHubAuthenticated')?.message).toContain('@codemate[bot]');
  });
});

describe('session token renewal', () => {
  it('renews at half-life, never sooner than two seconds', () => {
    const issued = new Date('2026-11-29T12:00:00Z');
    expect(renewalTime(issued, new Date('2026-11-29T13:00:00Z')).toISOString()).toBe(
      '2026-11-29T12:30:00.000Z',
    );
    expect(renewalTime(issued, new Date('2026-11-29T12:00:01Z')).toISOString()).toBe(
      '2026-11-29T12:00:02.000Z',
    );
  });

  it('finds the permissions a token lacks; write covers read', () => {
    expect(
      missingPermissions({
        contents: 'write',
        pull_requests: 'write',
        issues: 'write',
        checks: 'write',
        metadata: 'read',
      }),
    ).toEqual([]);
    expect(missingPermissions({ contents: 'read', metadata: 'write' })).toEqual([
      'contents: write',
      'pull_requests: write',
      'issues: write',
      'checks: write',
    ]);
  });
});

describe('redelivery', () => {
  const d = (guid: string, statusCode: number, deliveredAt: string, redelivery = false): HookDelivery => ({
    id: Math.floor(Math.random() * 1e9),
    guid,
    event: 'issue_comment',
    action: 'created',
    status: statusCode === 0 ? 'failed to connect to host' : 'OK',
    statusCode,
    deliveredAt,
    redelivery,
  });

  it('keeps the deliveries whose every attempt failed, with their attempts', () => {
    const failed = failedDeliveries([
      d('a', 0, '2026-11-29T12:00:00Z'),
      d('a', 502, '2026-11-29T12:01:00Z', true),
      d('b', 0, '2026-11-29T12:00:00Z'),
      d('b', 201, '2026-11-29T12:01:00Z', true),
      d('c', 201, '2026-11-29T12:00:00Z'),
    ]);
    expect(failed.map((f) => [f.guid, f.attempts, f.statusCode])).toEqual([['a', 2, 502]]);
  });

  it('names the messages the followers of the pull request would have for a comment', () => {
    const payload = issueCommentOnPullRequest({ repository: 'o/r', pullRequest: 7, id: 55 });
    const other = { ...codemate(), metadata: { ...codemate().metadata, name: 'elsewhere' } };
    other.spec = { ...other.spec, repository: { url: 'https://github.com/o/other', pullRequest: 7 } };
    expect(expectedMessages('issue_comment', payload, [codemate(), other]).map((m) => m.name)).toEqual([
      'pr-7-ic-55',
    ]);
    expect(expectedMessages('ping', {}, [codemate()])).toEqual([]);
  });
});
