import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

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
