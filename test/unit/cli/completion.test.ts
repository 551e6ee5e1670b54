import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { complete, completionScript } from '../../../src/cli/commands/completion.js';
import { UsageError } from '../../../src/cli/errors.js';
import { createOutput } from '../../../src/cli/output.js';
import { buildProgram } from '../../../src/cli/program.js';

const program = buildProgram({
  out: createOutput({ stdout: new PassThrough(), stderr: new PassThrough(), noColor: true }),
  env: () => Promise.reject(new Error('completion reads no environment')),
});

describe('complete', () => {
  it('offers the visible commands, and the subcommands of a group', async () => {
    expect(await complete(program, ['d'])).toEqual(['deny', 'describe', 'delete', 'dev']);
    expect(await complete(program, ['dev', ''])).toEqual(['up', 'down', 'status', 'build']);
    expect(await complete(program, ['__'])).toEqual([]);
  });

  it("offers a command's flags with the global ones, and --version only at the top", async () => {
    expect(await complete(program, ['logs', '-'])).toEqual([
      '--follow',
      '-f',
      '--tail',
      '--kubeconfig',
      '--context',
      '--namespace',
      '-n',
      '--help',
    ]);
    expect(await complete(program, ['--v'])).toEqual(['--version']);
    expect(await complete(program, ['list', '-v'])).toEqual([]);
    expect(await complete(program, ['-n', 'team', 'list', '--all'])).toEqual(['--all-namespaces']);
  });

  it('skips the values of flags that take one, and completes no value but a namespace', async () => {
    expect(await complete(program, ['create', '--repo', 'x', '--br'])).toEqual(['--branch']);
    expect(await complete(program, ['create', '--repo', ''])).toEqual([]);
    expect(await complete(program, ['list', '-o', ''])).toEqual([]);
  });
});

describe('completionScript', () => {
  it('has a script for bash, zsh and fish, each asking `codemate __complete`', () => {
    for (const shell of ['bash', 'zsh', 'fish'])
      expect(completionScript(shell)).toContain('codemate __complete --');
    expect(() => completionScript('tcsh')).toThrow(UsageError);
  });
});
