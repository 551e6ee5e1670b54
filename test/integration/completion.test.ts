import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/cli.js';

const run = promisify(execFile);

/** Completes `words` (the last one partial) with the generated script in a real bash. */
async function complete(...words: string[]): Promise<string[]> {
  const script = [
    `source <(${process.execPath} ${cliPath} completion bash)`,
    `COMP_WORDS=(codemate ${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length}`,
    '_codemate',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const { stdout } = await run('bash', ['-c', script]);
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

  it('refuses an unknown shell as a usage error', async () => {
    const r = await runCli(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unsupported shell "tcsh"; use bash or zsh');
  });
});
