import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { claudeCodeVersion } from '../../../src/sandbox/versions.js';

describe('the Claude Code pin', () => {
  it('is the same in the session image as in the sandbox', () => {
    const dockerfile = readFileSync(
      new URL('../../../setup/docker/Dockerfile.codemate', import.meta.url),
      'utf8',
    );
    expect(/^ARG CLAUDE_CODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1]).toBe(claudeCodeVersion);
  });

  it('is not a dependency of the npm package', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
      expect(Object.keys(pkg[field] ?? {})).not.toContain('@anthropic-ai/claude-code');
    }
  });
});
