import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CodeMate } from '../../src/api/codemate.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';

const run = promisify(execFile);

/** The session's tmux pane, read the way a user would: `kubectl exec <pod> -- tmux capture-pane`. */
export async function sessionPane(options: {
  binDir: string;
  kubeconfig: string;
  namespace: string;
  pod: string;
  lines?: number;
}): Promise<string> {
  const { stdout } = await run(path.join(options.binDir, 'kubectl'), [
    '--kubeconfig',
    options.kubeconfig,
    '-n',
    options.namespace,
    'exec',
    options.pod,
    '--',
    'tmux',
    'capture-pane',
    '-p',
    '-J',
    '-t',
    'claude-code',
    '-S',
    `-${options.lines ?? 500}`,
  ]);
  return stdout;
}

/** The name of a CodeMate's session pod, from its status. */
export async function sessionPod(kube: Kube, namespace: string, codemate: string): Promise<string> {
  const cm = await kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', codemate, namespace);
  if (!cm.status?.podName) throw new Error(`CodeMate ${namespace}/${codemate} has no pod in its status`);
  return cm.status.podName;
}
