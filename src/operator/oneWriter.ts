/**
 * One writer per branch: two sessions pushing to one branch overwrite each other's work. Of the
 * CodeMates on the same repository (URL normalised) and branch, the oldest (by creationTimestamp, then
 * namespace/name) is the writer; each other one gets the Conflict condition naming it and runs no pod
 * until it is deleted (docs/approvals.md, "One writer per branch"). A CodeMate that names only a pull
 * request writes to the pull request's head branch, once the poller has recorded it
 * (status.pullRequest.headRef: only for a head in the same repository, not a fork's). Pure.
 */
import type { CodeMate } from '../api/codemate.js';
import type { ConditionInput } from '../api/conditions.js';
import { parseRepository } from '../github/repository.js';

/**
 * Each reconcile compares its CodeMate with every cached one: the cached objects' targets are worked
 * out once per object version (the informer replaces an object on each change).
 */
const targets = new WeakMap<CodeMate, string | undefined>();

/** `host/owner/repo#branch`, lower-cased but the branch; undefined while the branch is not known. */
export function writeTarget(cm: CodeMate): string | undefined {
  if (targets.has(cm)) return targets.get(cm);
  const target = targetOf(cm);
  targets.set(cm, target);
  return target;
}

function targetOf(cm: CodeMate): string | undefined {
  const branch = cm.spec.repository.branch ?? cm.status?.pullRequest?.headRef;
  if (!branch) return undefined;
  const url = cm.spec.repository.url;
  const ref = parseRepository(url);
  const repository = ref
    ? `${ref.host}/${ref.owner}/${ref.repo}`
    : url.replace(/\/+$/, '').replace(/\.git$/, '');
  return `${repository.toLowerCase()}#${branch}`;
}

function created(cm: CodeMate): number {
  const at = cm.metadata.creationTimestamp;
  return at ? new Date(at).getTime() : Number.MAX_SAFE_INTEGER;
}

const key = (cm: CodeMate) => `${cm.metadata.namespace}/${cm.metadata.name}`;

/** The CodeMate that writes to `cm`'s branch when that is another one; undefined when `cm` may run. */
export function branchWriter(cm: CodeMate, codemates: readonly CodeMate[]): CodeMate | undefined {
  const target = writeTarget(cm);
  if (!target) return undefined;
  const first = [cm, ...codemates.filter((o) => key(o) !== key(cm) && writeTarget(o) === target)].sort(
    (a, b) => created(a) - created(b) || key(a).localeCompare(key(b)),
  )[0]!;
  return first === cm ? undefined : first;
}

/** The Conflict condition: True naming the writer; False once a conflict is over; none otherwise. */
export function conflictCondition(
  cm: CodeMate,
  writer: CodeMate | undefined,
  hadConflict: boolean,
): ConditionInput | undefined {
  if (writer) {
    return {
      type: 'Conflict',
      status: 'True',
      reason: 'BranchInUse',
      message:
        `CodeMate ${key(writer)} already works on ${writeTarget(cm)}; one session writes to a branch, so ` +
        `this one starts when ${writer.metadata.name} is deleted`,
    };
  }
  return hadConflict
    ? {
        type: 'Conflict',
        status: 'False',
        reason: 'SoleWriter',
        message: 'no other CodeMate works on this branch',
      }
    : undefined;
}
