/** `codemate delete`: the CodeMate, and through its ownerReferences its pod, storage and messages. */
import { apiVersion } from '../../api/codemate.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const remove: Verb = async ({ args: [name], globals }, deps) =>
  runDelete(String(name), await connect(globals), deps.out);

export async function runDelete(name: string, c: Cluster, out: Output): Promise<void> {
  await getCodeMate(c, name);
  try {
    await c.kube.delete(apiVersion, 'CodeMate', name, c.namespace);
  } catch (error) {
    throw explain(error, c, { verb: 'delete', resource: 'codemates', name });
  }
  out.info(`codemate "${name}" deleted (its pod, storage and messages go with it)`);
}
