/**
 * The CRD's rules that make an approval safe, against the real apiserver: a message's text, source and
 * trust verdict never change, and its approval is written once (the first decision stands).
 */
import { describe, expect, it } from 'vitest';
import { bodySha256, buildMessage, messageName, type Approval } from '../../src/api/message.js';
import type { KubeObject } from '../../src/clients/kube.js';
import { useCluster } from '../helpers/cluster.js';
import { codemateObject } from '../helpers/operator.js';

const cluster = useCluster('approvalcrd');

const approval = (decision: Approval['decision'], by: string): Approval => ({
  decision,
  by,
  via: 'cli',
  at: new Date().toISOString(),
  bodySha256: bodySha256('fix the typo'),
});

describe('the CodeMateMessage CRD', () => {
  it('accepts one approval decision, refuses to change it, and keeps the text immutable', async () => {
    const { kube, namespace } = cluster;
    // A real owner: the garbage collector deletes a message whose CodeMate does not exist.
    const owner = await kube.create(codemateObject(namespace, 'a'));
    const name = messageName('a', 'issue_comment', '1');
    const message = buildMessage({ metadata: { name: 'a', namespace, uid: owner.metadata.uid! } }, name, {
      source: { type: 'issue_comment', id: '1', author: 'stranger', createdAt: new Date().toISOString() },
      body: 'fix the typo',
      trust: { allowed: false, reason: 'NONE', approvable: true },
    });
    await kube.create(message as unknown as KubeObject);
    const patch = (spec: object) =>
      kube.mergePatch({
        apiVersion: 'codemate.io/v1alpha1',
        kind: 'CodeMateMessage',
        metadata: { name, namespace },
        spec,
      });

    const first = approval('Approved', 'alice');
    await patch({ approval: first });
    // The same decision again is no change; another one, or one taken back, is refused.
    await patch({ approval: first });
    await expect(patch({ approval: approval('Denied', 'bob') })).rejects.toMatchObject({ code: 422 });
    await expect(patch({ approval: null })).rejects.toMatchObject({ code: 422 });
    await expect(patch({ body: 'rm -rf /' })).rejects.toMatchObject({ code: 422 });
    await expect(patch({ trust: { allowed: true } })).rejects.toMatchObject({ code: 422 });
    await expect(patch({ approval: { ...first, bodySha256: 'not-a-hash' } })).rejects.toMatchObject({
      code: 422,
    });
    const stored = await kube.get<KubeObject & { spec: { approval?: Approval; body: string } }>(
      'codemate.io/v1alpha1',
      'CodeMateMessage',
      name,
      namespace,
    );
    expect(stored.spec.approval).toEqual(first);
    expect(stored.spec.body).toBe('fix the typo');
  });
});
