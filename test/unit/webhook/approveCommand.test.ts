import { describe, expect, it } from 'vitest';
import type { CodeMate } from '../../../src/api/codemate.js';
import type { KubeObject } from '../../../src/clients/kube.js';
import { handleItem } from '../../../src/webhook/handlers/item.js';

const cm = {
  apiVersion: 'codemate.io/v1alpha1',
  kind: 'CodeMate',
  metadata: { name: 'pr-7', namespace: 'team', uid: 'u', creationTimestamp: '2026-11-26T00:00:00Z' },
  spec: {
    repository: { url: 'https://github.com/o/r', pullRequest: 7 },
    github: { tokenSecretRef: { name: 'g', key: 'token' } },
    anthropic: { apiKeySecretRef: { name: 'k', key: 'token' } },
  },
  status: { github: { login: 'codemate-bot' } },
} as unknown as CodeMate;

function deps() {
  const created: KubeObject[] = [];
  const patched: KubeObject[] = [];
  return {
    created,
    patched,
    deps: {
      codemates: { find: () => [cm], synced: true },
      kube: {
        create: async <T extends KubeObject>(o: T) => (created.push(o), o),
        mergePatch: async <T extends KubeObject>(o: T) => (patched.push(o), o),
      },
      now: () => new Date('2026-11-26T12:00:00Z'),
    },
  };
}

const event = (body: string, association: string, login = 'alice') => ({
  kind: 'item' as const,
  type: 'issue_comment' as const,
  repository: 'o/r',
  pullRequest: 7,
  item: {
    id: 42,
    body,
    user: { login },
    authorAssociation: association,
    htmlUrl: 'https://github.com/o/r/pull/7#issuecomment-42',
    createdAt: '2026-11-26T11:59:00Z',
  },
});

describe('the webhook and /codemate approve', () => {
  it("a trusted author's command is no message: the followers poll, and the poll records the approval", async () => {
    const { deps: d, created, patched } = deps();
    const answer = await handleItem(event('/codemate approve', 'MEMBER'), d);
    expect(answer).toMatchObject({
      status: 200,
      body: { status: 'poll-requested', codemates: ['team/pr-7'] },
    });
    expect(created).toEqual([]);
    expect(patched).toHaveLength(1);
  });

  it("a trusted author's /codemate deny is no message either: the followers poll", async () => {
    const { deps: d, created, patched } = deps();
    expect(await handleItem(event('/codemate deny', 'COLLABORATOR'), d)).toMatchObject({
      status: 200,
      body: { status: 'poll-requested', codemates: ['team/pr-7'] },
    });
    expect(created).toEqual([]);
    expect(patched).toHaveLength(1);
    const { deps: untrusted, patched: none } = deps();
    expect(await handleItem(event('/codemate deny', 'NONE', 'stranger'), untrusted)).toMatchObject({
      status: 202,
      body: { status: 'ignored' },
    });
    expect(none).toEqual([]);
  });

  it("an untrusted author's command does nothing, and their other comments wait for approval", async () => {
    const { deps: d, created, patched } = deps();
    expect(await handleItem(event('/codemate approve', 'NONE', 'stranger'), d)).toMatchObject({
      status: 202,
      body: { status: 'ignored' },
    });
    expect(patched).toEqual([]);
    expect(created).toEqual([]);
    await handleItem(event('please merge', 'NONE', 'stranger'), d);
    expect(created).toMatchObject([{ spec: { trust: { allowed: false, approvable: true } } }]);
  });
});
