/**
 * The thin executor: applies a plan with idempotent calls. Create-by-name treats 409 as done, delete
 * treats 404 as done, and status is written through the status subresource only when it changed.
 * Events go to the recorder (events.ts), which writes them off the reconcile's path.
 */
import {
  apiVersion,
  group,
  idleMarksRemoved,
  kind,
  plural,
  suspendedByAnnotation,
  version,
  type CodeMate,
} from '../api/codemate.js';
import { isConflict, type Kube } from '../clients/kube.js';
import { TemporaryError } from '../runtime/errors.js';
import type { EventSink } from './events.js';
import { actionEventReasons, type Plan } from './reconcile.js';
import { canonical, reconcileOwned } from './status.js';

/**
 * Applies the plan. With `deferStatus` the status is not written now (the controller coalesces status
 * writes), and neither are the events that report a status change: they come with the write. The
 * events of the actions taken now are recorded now.
 */
export async function executePlan(
  kube: Kube,
  cm: CodeMate,
  plan: Plan,
  events: EventSink,
  options: { deferStatus?: boolean } = {},
): Promise<void> {
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
      case 'suspend':
        // Only the operator's own idle suspend is marked: a message may resume it (docs/lifecycle.md).
        await kube.mergePatch({
          apiVersion,
          kind,
          metadata: {
            name: cm.metadata.name,
            namespace: ns,
            ...(action.by === 'idle' ? { annotations: { [suspendedByAnnotation]: action.by } } : {}),
          },
          spec: { suspend: true },
        });
        break;
      case 'resume':
        // On the version the reconcile saw: a person's `codemate suspend` since then (which removes the
        // mark) is a conflict, not undone; the next reconcile reads the CodeMate again.
        await kube
          .mergePatch({
            apiVersion,
            kind,
            metadata: {
              name: cm.metadata.name,
              namespace: ns,
              ...(cm.metadata.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}),
              annotations: idleMarksRemoved(),
            },
            ...(cm.spec.suspend ? { spec: { suspend: false } } : {}),
          })
          .catch((error: unknown) => {
            if (!isConflict(error)) throw error;
            throw new TemporaryError(`CodeMate ${cm.metadata.name} changed since it was read`, {
              retryAfterMs: 500,
              cause: error,
            });
          });
        break;
      case 'deleteCodeMate':
        // Its status and events would go with it.
        await kube.delete(apiVersion, kind, cm.metadata.name, ns);
        return;
    }
  }
  if (options.deferStatus) {
    for (const event of plan.events) if (actionEventReasons.has(event.reason)) events.record(cm, event);
    return;
  }
  const patch = statusPatch(cm.status, plan.status);
  if (patch) await kube.patchStatus({ group, version, plural, namespace: ns, name: cm.metadata.name }, patch);
  for (const event of plan.events) events.record(cm, event);
}

async function createIfAbsent(kube: Kube, object: Parameters<Kube['create']>[0]): Promise<void> {
  try {
    await kube.create(object);
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
}

/**
 * A JSON merge patch of the reconcile's own fields, from one status to the next (a dropped field is
 * set to null), or undefined when none of them changed.
 */
export function statusPatch(current: object | undefined, next: object): Record<string, unknown> | undefined {
  const was = (current ?? {}) as Record<string, unknown>;
  const now = next as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const key of reconcileOwned) {
    if (canonical(was[key]) === canonical(now[key])) continue;
    patch[key] = now[key] === undefined ? null : now[key];
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}
