/** `codemate logs`: the session pod's log, optionally followed. */
import { z } from 'zod';
import { streamPodLogs } from '../../clients/exec.js';
import { parseOrUsage } from '../../config/index.js';
import { sessionContainer } from '../../api/pod.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import { CodemateError } from '../errors.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

const logsSchema = z.object({
  follow: z.boolean().default(false),
  tail: z.coerce.number().int().min(0).optional(),
});

export const logs: Verb = async ({ args: [name], flags, globals }, deps) => {
  const options = parseOrUsage(logsSchema, flags, 'flags');
  await runLogs(String(name), options, await connect(globals), deps.out);
};

export async function runLogs(
  name: string,
  options: { follow: boolean; tail?: number | undefined },
  c: Cluster,
  out: Output,
): Promise<void> {
  const cm = await getCodeMate(c, name);
  const pod = cm.status?.podName;
  if (!pod) {
    throw new CodemateError(`codemate "${name}" has no pod (phase ${cm.status?.phase ?? 'unknown'})`, {
      hint: cm.spec.suspend ? `it is suspended; \`codemate resume ${name}\`` : `codemate describe ${name}`,
    });
  }
  try {
    const stream = await streamPodLogs(c.kube, c.namespace, pod, out.stdout, {
      container: sessionContainer,
      follow: options.follow,
      ...(options.tail !== undefined ? { tailLines: options.tail } : {}),
    });
    if (options.follow) {
      process.once('SIGINT', () => stream.stop());
    }
    await stream.done;
  } catch (error) {
    throw explain(error, c, { verb: 'get', resource: 'pods/log', name: pod });
  }
}
