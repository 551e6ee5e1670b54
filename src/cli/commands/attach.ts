/** `codemate attach`: the terminal on the session's tmux, through an exec with a TTY. */
import { sessionRunning } from '../../api/codemate.js';
import { execInteractive } from '../../clients/exec.js';
import { sessionContainer } from '../../api/pod.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import { CodemateError, UsageError } from '../errors.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const attach: Verb = async ({ args: [name], flags, globals }, deps) =>
  runAttach(String(name), flags.readOnly === true, await connect(globals), deps.out);

/**
 * The remote command for attach. `script` gives tmux a terminal even when the exec has none (kwok runs
 * exec without a pty), and `stty` hands it the local terminal's size. `-u`: the session image sets no
 * UTF-8 locale, and without one the tmux client draws Claude Code's prompt and box lines as `_`.
 */
export function attachCommand(readOnly: boolean, columns: number, rows: number): string[] {
  const attach = `tmux -u attach-session${readOnly ? ' -r' : ''} -t claude-code`;
  return ['script', '-qfec', `stty cols ${columns} rows ${rows} 2>/dev/null; exec ${attach}`, '/dev/null'];
}

export async function runAttach(name: string, readOnly: boolean, c: Cluster, out: Output): Promise<void> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  if (!stdin.isTTY || !stdout.isTTY) {
    throw new UsageError('attach needs a terminal', {
      hint: `use \`codemate logs ${name} -f\` to follow the session without one`,
    });
  }
  const cm = await getCodeMate(c, name);
  const pod = cm.status?.podName;
  if (!pod || !sessionRunning(cm.status?.phase)) {
    throw new CodemateError(`codemate "${name}" is not running (phase ${cm.status?.phase ?? 'unknown'})`, {
      hint: cm.spec.suspend ? `\`codemate resume ${name}\` first` : `codemate describe ${name}`,
    });
  }
  out.info(`attaching to codemate "${name}"${readOnly ? ' (read-only)' : ''}; detach with Ctrl-b d`);
  stdin.setRawMode(true);
  stdin.resume();
  let code: number;
  try {
    code = await execInteractive(
      c.kube,
      c.namespace,
      pod,
      attachCommand(readOnly, stdout.columns ?? 80, stdout.rows ?? 24),
      {
        container: sessionContainer,
        stdin,
        stdout,
        stderr: process.stderr,
      },
    );
  } catch (error) {
    throw explain(error, c, { verb: 'create', resource: 'pods/exec', name: pod });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    // Leave the terminal as we found it: show the cursor, leave the alternate screen, reset attributes.
    stdout.write('\x1b[?25h\x1b[?1049l\x1b[0m\r\n');
  }
  if (code !== 0) throw new CodemateError(`the attach ended with exit code ${code}`);
  out.info(`detached from codemate "${name}"`);
}
