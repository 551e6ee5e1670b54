import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/cli.js';
import { eventually, useCluster } from '../helpers/cluster.js';

const run = promisify(execFile);
const cluster = useCluster('complete');
const other = `${cluster.namespace}-other`;
let dir: string;
/** A `codemate` on PATH, as the scripts expect, and the test cluster as the kubeconfig. */
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-complete-'));
  await writeFile(path.join(dir, 'codemate'), `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' "$@"\n`);
  await chmod(path.join(dir, 'codemate'), 0o755);
  env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, KUBECONFIG: cluster.kubeconfig, NO_COLOR: '1' };
  await cluster.kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
  const codemate = (namespace: string, name: string) => ({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace },
    spec: {
      repository: { url: 'https://github.com/acme/api.git', branch: name },
      github: { tokenSecretRef: { name: 'github-token', key: 'token' } },
      anthropic: { apiKeySecretRef: { name: 'anthropic-key', key: 'token' } },
    },
  });
  for (const name of ['zeta-login', 'zeta-logout', 'alpha'])
    await cluster.kube.create(codemate(cluster.namespace, name));
  await cluster.kube.create(codemate(other, 'zebra-elsewhere'));
});

afterAll(async () => {
  await cluster.kube.delete('v1', 'Namespace', other);
  await rm(dir, { recursive: true, force: true });
});

/** Completes `words` (the last one partial) with the generated script in a real bash. */
async function complete(...words: string[]): Promise<string[]> {
  const script = [
    `source <(${process.execPath} ${cliPath} completion bash)`,
    `COMP_WORDS=(codemate ${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length}`,
    '_codemate',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const { stdout } = await run('bash', ['-c', script], { env });
  return stdout.split('\n').filter(Boolean);
}

describe('codemate completion', () => {
  it('completes commands, subcommands and flags from the program itself', async () => {
    expect(await complete('cre')).toEqual(['create']);
    expect(await complete('dev', 'st')).toEqual(['status']);
    expect(await complete('create', '--re')).toEqual(['--repo']);
    expect(await complete('inject', '--no')).toEqual(['--no-wait']);
    expect(await complete('attach', '--read')).toEqual(['--read-only']);
  });

  it('completes CodeMate names in the namespace of -n, or of the context', async () => {
    expect(await complete('-n', cluster.namespace, 'describe', 'zeta-')).toEqual([
      'zeta-login',
      'zeta-logout',
    ]);
    expect(await complete('logs', '--namespace', cluster.namespace, '--tail', '5', '')).toEqual([
      'alpha',
      'zeta-login',
      'zeta-logout',
    ]);
    expect(await complete('inject', `--namespace=${other}`, 'ze')).toEqual(['zebra-elsewhere']);
    // Only the first argument is a name; flags values are not names.
    expect(await complete('-n', cluster.namespace, 'inject', 'alpha', '')).toEqual([]);
    expect(await complete('-n', cluster.namespace, 'create', '')).toEqual([]);
  });

  it('completes namespaces after -n', async () => {
    expect(await complete('-n', cluster.namespace.slice(0, -2))).toEqual(
      expect.arrayContaining([cluster.namespace, other]),
    );
  });

  it('offers nothing, quickly, when no cluster answers', async () => {
    const nowhere = path.join(dir, 'nowhere.kubeconfig');
    await writeFile(
      nowhere,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: c',
        '  cluster:',
        '    server: https://127.0.0.1:1',
        'users:',
        '- name: u',
        '  user:',
        '    token: t',
        'contexts:',
        '- name: c',
        '  context:',
        '    cluster: c',
        '    user: u',
        'current-context: c',
        '',
      ].join('\n'),
    );
    const r = await runCli(['__complete', '--', 'describe', ''], { env: { KUBECONFIG: nowhere } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('works in fish, through its own completion query', async () => {
    const script = (await runCli(['completion', 'fish'])).stdout;
    const file = path.join(dir, 'codemate.fish');
    await writeFile(file, script);
    const query = async (line: string) =>
      (await run('fish', ['--no-config', '-c', `source ${file}; complete -C '${line}'`], { env })).stdout
        .split('\n')
        .filter(Boolean);
    expect(await query('codemate des')).toEqual(['describe']);
    expect(await query(`codemate -n ${cluster.namespace} describe zeta-`)).toEqual([
      'zeta-login',
      'zeta-logout',
    ]);
    expect(await query('codemate create --re')).toEqual(['--repo']);
  });

  it('works in zsh, with TAB pressed in a real terminal', async () => {
    const script = (await runCli(['completion', 'zsh'])).stdout;
    await writeFile(path.join(dir, 'codemate.zsh'), script);
    // compinit's security check refuses directories it finds writable by others; -u skips it in a test.
    await writeFile(
      path.join(dir, '.zshrc'),
      `autoload -Uz compinit && compinit -u -d ${dir}/.zcompdump\nsource ${dir}/codemate.zsh\nPROMPT='zsh> '\n`,
    );
    const socket = path.join(dir, 'zsh.sock');
    const tmux = (...args: string[]) => run('tmux', ['-S', socket, ...args], { env });
    const screen = async () => (await tmux('capture-pane', '-p', '-t', 'zsh')).stdout;
    await tmux('new-session', '-d', '-s', 'zsh', '-x', '150', '-y', '20', `ZDOTDIR=${dir} exec zsh -i`);
    try {
      await eventually(screen, (text) => text.includes('zsh>'), { what: 'zsh prompt' });
      await tmux('send-keys', '-t', 'zsh', '-l', `codemate -n ${cluster.namespace} descr`);
      await tmux('send-keys', '-t', 'zsh', 'Tab');
      // capture-pane drops the space that completion adds after the word.
      await eventually(screen, (text) => text.includes(`codemate -n ${cluster.namespace} describe\n`), {
        what: 'the verb completed',
      });
      await tmux('send-keys', '-t', 'zsh', '-l', 'zeta-logo');
      await tmux('send-keys', '-t', 'zsh', 'Tab');
      await eventually(screen, (text) => text.includes('describe zeta-logout'), {
        what: 'the name completed',
      });
    } finally {
      await tmux('kill-server').catch(() => undefined);
    }
  });

  it('refuses an unknown shell as a usage error', async () => {
    const r = await runCli(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported shell "tcsh"; use bash or zsh');
  });
});
