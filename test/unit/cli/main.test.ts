import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readEnv } from '../../../src/config/index.js';
import { run } from '../../../src/cli/main.js';
import { createOutput } from '../../../src/cli/output.js';

async function cli(args: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await run(['node', 'codemate', ...args], {
    env: readEnv({ HOME: '/nonexistent-home', CODEMATE_STATE_DIR: '/nonexistent-home/state' }),
    out: createOutput({ stdout, stderr, noColor: true }),
  });
  return { code, stdout: out, stderr: err };
}

describe('codemate CLI entry point', () => {
  it('prints help with examples and exits 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: codemate');
    expect(r.stdout).toContain('Examples:');
  });

  it('prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('maps an unknown command to exit 2 with a suggestion', async () => {
    const r = await cli(['dve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'dve'");
    expect(r.stderr).toContain('(Did you mean dev?)');
  });

  it('maps an unknown option to exit 2', async () => {
    const r = await cli(['dev', 'up', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
  });

  it('maps a failure with a hint to exit 1 and prints both', async () => {
    const r = await cli(['dev', 'status']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: no sandbox in /nonexistent-home/state');
    expect(r.stderr).toContain('hint: run `codemate dev up`');
  });

  it('gives every command help with an example', async () => {
    const commands = [
      'create',
      'list',
      'inject',
      'describe',
      'logs',
      'attach',
      'delete',
      'suspend',
      'resume',
      'dev',
      'operator',
      'completion',
    ];
    for (const command of commands) {
      const r = await cli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(/Examples?:/);
    }
  });

  it('gives every dev subcommand help with an example', async () => {
    for (const sub of ['up', 'down', 'status', 'build']) {
      const r = await cli(['dev', sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Example');
    }
  });
});
