import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { resolveLintTools, type LintTools } from '../helpers/lintTools.js';

const run = promisify(execFile);
const scriptsDir = path.join(repoRoot, 'setup', 'scripts');
const shellScripts = readdirSync(scriptsDir)
  .map((f) => path.join(scriptsDir, f))
  .filter((f) =>
    /^#!.*\b(bash|sh)\b|^# shellcheck shell=/m.test(
      readFileSync(f, 'utf8').split('\n').slice(0, 2).join('\n'),
    ),
  );

let tools: LintTools;

async function tool(name: keyof LintTools, args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(tools[name], args, { cwd: repoRoot });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: Number(e.code), output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('static checks', () => {
  // Pinned versions, installed into the cache on first use (test/helpers/lintTools.ts).
  beforeAll(async () => {
    tools = await resolveLintTools();
  }, 300_000);

  it('finds the session shell scripts', () => {
    expect(shellScripts.map((f) => path.basename(f)).sort()).toEqual(
      [
        'codemate-claude',
        'codemate-entrypoint',
        'codemate-git-credential',
        'codemate-hook',
        'codemate-inject',
        'codemate-lib.sh',
        'codemate-ready',
        'codemate-report',
        'gh',
      ].sort(),
    );
  });

  it('shellcheck reports nothing for any shell script', async () => {
    const result = await tool('shellcheck', ['-x', '--severity=style', ...shellScripts]);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('hadolint reports nothing for either Dockerfile', async () => {
    const result = await tool('hadolint', ['Dockerfile', 'setup/docker/Dockerfile.codemate']);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});
