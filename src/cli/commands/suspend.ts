/** `codemate suspend`: spec.suspend, which stops the pod and keeps its storage. `resume` undoes it. */
import { apiVersion } from '../../api/codemate.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const suspend: Verb = async ({ args: [name], globals }, deps) =>
  runSuspend(String(name), true, await connect(globals), deps.out);

/** Sets spec.suspend; a CodeMate already in that state is reported, and the command succeeds. */
export async function runSuspend(name: string, suspend: boolean, c: Cluster, out: Output): Promise<void> {
  const cm = await getCodeMate(c, name);
  if (Boolean(cm.spec.suspend) === suspend) {
    out.info(`codemate "${name}" is already ${suspend ? 'suspended' : 'running (not suspended)'}`);
    return;
  }
  try {
    await c.kube.mergePatch({
      apiVersion,
      kind: 'CodeMate',
      metadata: { name, namespace: c.namespace },
      spec: { suspend },
    });
  } catch (error) {
    throw explain(error, c, { verb: 'patch', resource: 'codemates', name });
  }
  out.info(suspend ? `codemate "${name}" suspended; its storage is kept` : `codemate "${name}" resumed`);
}
