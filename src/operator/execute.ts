/**
 * The thin executor: applies a plan with idempotent calls. Create-by-name treats 409 as done, delete
 * treats 404 as done, and status is written through the status subresource only when it changed.
 */
import { apiVersion, group, kind, plural, version, type CodeMate } from '../api/codemate.js';
import { isConflict, type Kube } from '../clients/kube.js';
import type { Plan } from './reconcile.js';

export const eventComponent = 'codemate-operator';

export async function executePlan(kube: Kube, cm: CodeMate, plan: Plan): Promise<void> {
  const ns = cm.metadata.namespace;
  for (const action of plan.actions) {
    switch (action.type) {
      case 'createPvc':
        await createIfAbsent(kube, action.pvc);
        break;
      case 'createPod':
        await createIfAbsent(kube, action.pod);
        break;
      case 'deletePod':
        await kube.delete('v1', 'Pod', action.name, ns);
        break;
    }
  }
  if (JSON.stringify(plan.status) !== JSON.stringify(cm.status ?? {})) {
    await kube.patchStatus(
      { group, version, plural, namespace: ns, name: cm.metadata.name },
      statusPatch(cm.status, plan.status),
    );
  }
  for (const event of plan.events) await recordEvent(kube, cm, event);
}

export async function recordEvent(
  kube: Kube,
  cm: CodeMate,
  event: { type: 'Normal' | 'Warning'; reason: string; message: string },
): Promise<void> {
  await kube.recordEvent(
    { apiVersion, kind, name: cm.metadata.name, namespace: cm.metadata.namespace, uid: cm.metadata.uid },
    event,
    eventComponent,
  );
}

async function createIfAbsent(kube: Kube, object: Parameters<Kube['create']>[0]): Promise<void> {
  try {
    await kube.create(object);
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
}

/** A JSON merge patch from one status to the next: fields the new status drops are set to null. */
export function statusPatch(current: object | undefined, next: object): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...next };
  for (const key of Object.keys(current ?? {})) if (!(key in next)) patch[key] = null;
  return patch;
}
