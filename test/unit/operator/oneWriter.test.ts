import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import { podName } from '../../../src/api/pod.js';
import { branchWriter, conflictCondition, writeTarget } from '../../../src/operator/oneWriter.js';
import { reconcile } from '../../../src/operator/reconcile.js';
import { desiredPod, specHashAnnotation } from '../../../src/operator/podTemplate.js';

const now = new Date('2026-11-26T12:00:00Z');
const settings = { defaultImage: 'codemate-session:test' };
const secrets = { gh: { exists: true, keys: ['token'] }, anthropic: { exists: true, keys: ['token'] } };

function codemate(
  name: string,
  created: string,
  repository: CodeMate['spec']['repository'],
  status?: CodeMate['status'],
  namespace = 'team',
): CodeMate {
  return {
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1, creationTimestamp: created },
    spec: {
      repository,
      github: { tokenSecretRef: { name: 'gh', key: 'token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic', key: 'token' } },
    },
    ...(status ? { status } : {}),
  };
}

const first = codemate('first', '2026-11-26T10:00:00Z', {
  url: 'https://github.com/O/R.git',
  branch: 'feature',
});
const second = codemate('second', '2026-11-26T11:00:00Z', { url: 'git@github.com:o/r', branch: 'feature' });

describe('writeTarget', () => {
  it('normalises the repository URL, keeps the branch as it is, and waits for a pull request head', () => {
    expect(writeTarget(first)).toBe('github.com/o/r#feature');
    expect(writeTarget(second)).toBe('github.com/o/r#feature');
    const pr = codemate('pr', '2026-11-26T11:00:00Z', { url: 'https://github.com/o/r', pullRequest: 7 });
    expect(writeTarget(pr)).toBeUndefined();
    expect(writeTarget({ ...pr, status: { pullRequest: { number: 7, headRef: 'Feature' } } })).toBe(
      'github.com/o/r#Feature',
    );
  });
});

describe('branchWriter', () => {
  it('is the oldest CodeMate on the same repository and branch, ties broken by name', () => {
    expect(branchWriter(second, [first, second])).toBe(first);
    expect(branchWriter(first, [first, second])).toBeUndefined();
    const twin = {
      ...second,
      metadata: { ...second.metadata, name: 'a-twin', creationTimestamp: '2026-11-26T11:00:00Z' },
    };
    expect(branchWriter(second, [twin, second])).toBe(twin);
    expect(branchWriter(twin, [twin, second])).toBeUndefined();
  });

  it('ignores other branches and repositories, and counts a pull request by its recorded head', () => {
    const other = codemate('other', '2026-11-26T09:00:00Z', {
      url: 'https://github.com/o/r',
      branch: 'main',
    });
    const fork = codemate('fork', '2026-11-26T09:00:00Z', {
      url: 'https://github.com/x/r',
      branch: 'feature',
    });
    expect(branchWriter(second, [other, fork, second])).toBeUndefined();
    const pr = codemate(
      'pr',
      '2026-11-26T09:00:00Z',
      { url: 'https://github.com/o/r', pullRequest: 7 },
      {
        pullRequest: { number: 7, headRef: 'feature' },
      },
    );
    expect(branchWriter(second, [pr, second])).toBe(pr);
  });
});

describe('reconcile with a second CodeMate on a branch', () => {
  it('reports Conflict naming the first, runs no pod, and looks again until the first is gone', () => {
    const plan = reconcile(second, { pods: [], secrets, codemates: [first, second] }, settings, now);
    expect(plan.actions).toEqual([]);
    expect(plan.status.phase).toBe('Pending');
    const conflict = plan.status.conditions?.find((c) => c.type === 'Conflict');
    expect(conflict).toMatchObject({ status: 'True', reason: 'BranchInUse' });
    expect(conflict?.message).toContain('team/first');
    expect(plan.requeueAfterMs).toBeGreaterThan(0);

    const freed = reconcile(
      { ...second, status: plan.status },
      { pods: [], secrets, codemates: [second] },
      settings,
      now,
    );
    expect(freed.actions.map((a) => a.type)).toEqual(['createPod']);
    expect(freed.status.conditions?.find((c) => c.type === 'Conflict')).toMatchObject({ status: 'False' });
  });

  it('stops the pod of a CodeMate that finds an older one on its branch', () => {
    const pod = {
      name: podName(second),
      phase: 'Running',
      deleting: false,
      ready: true,
      specHash: desiredPod(second, settings).metadata.annotations[specHashAnnotation],
    };
    const plan = reconcile(second, { pods: [pod], secrets, codemates: [first, second] }, settings, now);
    expect(plan.actions).toMatchObject([{ type: 'deletePod', name: pod.name }]);
  });

  it('adds no Conflict condition to a CodeMate that never had one', () => {
    const plan = reconcile(first, { pods: [], secrets, codemates: [first, second] }, settings, now);
    expect(plan.status.conditions?.find((c) => c.type === 'Conflict')).toBeUndefined();
    expect(conflictCondition(first, undefined, false)).toBeUndefined();
  });
});
