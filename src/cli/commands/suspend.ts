/**
 * `codemate suspend`: spec.suspend, which stops the pod and keeps its storage. `resume` undoes it.
 * Either one makes the suspension the person's own: the marks of an idle suspend are removed, so a new
 * message no longer resumes a CodeMate someone suspended (docs/lifecycle.md).
 */
import {
  apiVersion,
  idleMarksRemoved,
  suspendedByAnnotation,
  wakeRequestedAnnotation,
} from '../../api/codemate.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const suspend: Verb = async ({ args: [name], globals }, deps) =>
  runSuspend(String(name), true, await connect(globals), deps.out);

/** Sets spec.suspend; a CodeMate already in that state is reported, and the command succeeds. */
export async function runSuspend(name: string, suspend: boolean, c: Cluster, out: Output): Promise<void> {
  const cm = await getCodeMate(c, name);
  const marks = cm.metadata.annotations ?? {};
  const byIdle = marks[suspendedByAnnotation] !== undefined || marks[wakeRequestedAnnotation] !== undefined;
  if (Boolean(cm.spec.suspend) === suspend && !byIdle) {
    out.info(`codemate "${name}" is already ${suspend ? 'suspended' : 'running (not suspended)'}`);
    return;
  }
  try {
    await c.kube.mergePatch({
      apiVersion,
      kind: 'CodeMate',
      metadata: {
        name,
        namespace: c.namespace,
        ...(byIdle ? { annotations: idleMarksRemoved() } : {}),
      },
      spec: { suspend },
    });
  } catch (error) {
    throw explain(error, c, { verb: 'patch', resource: 'codemates', name });
  }
  if (!suspend) {
    out.info(`codemate "${name}" resumed`);
    return;
  }
  out.info(
    byIdle && cm.spec.suspend
      ? `codemate "${name}" was suspended for idleness; it is now suspended until \`codemate resume\`: new messages wait and no longer resume it`
      : `codemate "${name}" suspended${cm.spec.storage ? '; its storage is kept' : ''}`,
  );
  if (!cm.spec.storage) {
    out.warn(
      `codemate "${name}" has no spec.storage: its workspace goes with the pod, and work that was not committed and pushed is lost`,
    );
  }
}
