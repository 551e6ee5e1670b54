import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  makeOrigin,
  sessionRoot,
  startSession,
  waitUntilReady,
  type Session,
} from '../helpers/session.js';

const run = promisify(execFile);
const sessions: Session[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) {
    await s.stop();
    await cleanup(s.root);
  }
});

async function session(env: NodeJS.ProcessEnv): Promise<Session> {
  const root = await sessionRoot();
  const origin = await makeOrigin(root);
  const s = await startSession(root, { CODEMATE_REPO_URL: `file://${origin}`, ...env });
  sessions.push(s);
  return s;
}
const git = async (s: Session, ...args: string[]) =>
  (await run('git', ['-C', s.repo, ...args], { env: s.env })).stdout.trim();

describe('codemate-entrypoint', () => {
  it('checks out an existing branch, sets the git identity, and starts tmux session claude-code', async () => {
    const s = await session({
      CODEMATE_BRANCH: 'feature',
      CODEMATE_GIT_USER_NAME: 'Claude Code',
      CODEMATE_GIT_USER_EMAIL: 'claude@example.com',
      CODEMATE_TASK: 'Fix the $(flaky) `test`; then stop',
      CODEMATE_SESSION_ID: '0f8fad5b-d9cb-469f-a165-70867728950e',
      ANTHROPIC_API_KEY: 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789',
    });
    await waitUntilReady(s);
    expect(await git(s, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('feature');
    expect(await git(s, 'rev-parse', '--abbrev-ref', '@{upstream}')).toBe('origin/feature');
    expect(await readFile(path.join(s.repo, 'feature.txt'), 'utf8')).toBe('feature\n');
    expect(await git(s, 'status', '--porcelain')).toBe('');
    expect(await git(s, 'config', 'user.name')).toBe('Claude Code');
    expect(await git(s, 'config', 'user.email')).toBe('claude@example.com');
    expect((await s.tmux('list-sessions', '-F', '#{session_name}')).trim()).toBe('claude-code');
    expect(
      (await s.tmux('display-message', '-p', '-t', '=claude-code:', '#{pane_current_path}')).trim(),
    ).toBe(s.repo);

    // The first instruction reaches the session as text, never through a shell.
    expect(await s.prompts()).toEqual(['Fix the $(flaky) `test`; then stop']);
    // First-run dialogs are pre-accepted and the hooks are installed.
    const claudeJson = JSON.parse(await readFile(path.join(s.workspace, '.claude', '.claude.json'), 'utf8'));
    expect(claudeJson.hasCompletedOnboarding).toBe(true);
    expect(claudeJson.projects[s.repo]).toEqual({
      hasTrustDialogAccepted: true,
      hasCompletedProjectOnboarding: true,
    });
    expect(claudeJson.customApiKeyResponses.approved).toEqual(['klmnopqrstuvwxyz0123456789'.slice(-20)]);
    const settings = JSON.parse(await readFile(path.join(s.workspace, '.claude', 'settings.json'), 'utf8'));
    expect(Object.keys(settings.hooks).sort()).toEqual(
      ['Notification', 'PermissionRequest', 'SessionStart', 'Stop', 'StopFailure', 'UserPromptSubmit'].sort(),
    );
    expect(settings.skipDangerousModePermissionPrompt).toBe(true);
    // The pane is mirrored to stdout, which is what `kubectl logs` shows.
    expect(s.output()).toContain('prompt received');
    expect(s.output()).not.toContain('sk-ant-api03');
  });

  it('creates a missing branch from the base branch, without tracking the base', async () => {
    const s = await session({ CODEMATE_BRANCH: 'codemate/new-work', CODEMATE_BASE_BRANCH: 'main' });
    await waitUntilReady(s);
    expect(await git(s, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('codemate/new-work');
    expect(await git(s, 'rev-parse', 'HEAD')).toBe(await git(s, 'rev-parse', 'origin/main'));
    await expect(git(s, 'rev-parse', '--abbrev-ref', '@{upstream}')).rejects.toThrow();
    expect(s.output()).toContain('branch codemate/new-work does not exist yet; creating it from main');
  });

  it('checks out a pull request from its refs/pull/N/head ref', async () => {
    const s = await session({ CODEMATE_PR: '7' });
    await waitUntilReady(s);
    expect(await git(s, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('pr-7');
    expect(await readFile(path.join(s.repo, 'pr.txt'), 'utf8')).toBe('pr\n');
  });

  it('reuses an existing clone after a restart and resumes cleanly', async () => {
    const s = await session({ CODEMATE_BRANCH: 'feature' });
    await waitUntilReady(s);
    await run('sh', ['-c', `echo wip > ${s.repo}/wip.txt`]);
    const sessionKey = () => readFile(path.join(s.stateDir, 'session-key'), 'utf8');
    const key = await sessionKey();
    await s.stop();
    const again = await startSession(s.root, {
      CODEMATE_REPO_URL: s.env.CODEMATE_REPO_URL,
      CODEMATE_BRANCH: 'feature',
    });
    sessions.push(again);
    await waitUntilReady(again);
    expect(again.output()).toContain('reusing the clone');
    expect(await readFile(path.join(s.repo, 'wip.txt'), 'utf8')).toBe('wip\n');
    // The key that tags injected markers is new at each start.
    expect(await sessionKey()).toMatch(/^[0-9a-f]{64}$/);
    expect(await sessionKey()).not.toBe(key);
  });

  it('stops cleanly on SIGTERM', async () => {
    const s = await session({ CODEMATE_BRANCH: 'feature' });
    await waitUntilReady(s);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    await expect(s.tmux('has-session', '-t', '=claude-code')).rejects.toThrow();
  });

  describe('failures print one clear line and exit non-zero', () => {
    const failures: Array<{ name: string; env: NodeJS.ProcessEnv; code: number; line: RegExp }> = [
      {
        name: 'no branch and no PR',
        env: {},
        code: 10,
        line: /^codemate: set CODEMATE_BRANCH or CODEMATE_PR$/,
      },
      {
        name: 'an invalid branch name',
        env: { CODEMATE_BRANCH: 'bad..name' },
        code: 10,
        line: /is not a valid branch name/,
      },
      {
        name: 'a repository that does not exist',
        env: { CODEMATE_BRANCH: 'main', CODEMATE_REPO_URL: 'file:///nonexistent/repo.git' },
        code: 12,
        line: /^codemate: cannot clone file:\/\/\/nonexistent\/repo\.git: /,
      },
      {
        name: 'a missing base branch',
        env: { CODEMATE_BRANCH: 'x', CODEMATE_BASE_BRANCH: 'nope' },
        code: 13,
        line: /base branch 'nope' was not found/,
      },
      {
        name: 'a missing pull request',
        env: { CODEMATE_PR: '99' },
        code: 13,
        line: /pull request #99 not found/,
      },
    ];
    for (const f of failures) {
      it(f.name, async () => {
        const s = await session(f.env);
        expect(await s.exited).toBe(f.code);
        const lines = s
          .output()
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('codemate: cloning'));
        expect(lines.at(-1)).toMatch(f.line);
      });
    }

    it('a branch conflict: the kept clone has diverged from origin', async () => {
      const s = await session({ CODEMATE_BRANCH: 'feature' });
      await waitUntilReady(s);
      await s.stop();
      await git(s, 'commit', '-q', '--allow-empty', '-m', 'local');
      const src = path.join(s.root, 'src');
      await run('git', ['-C', src, 'checkout', '-q', 'feature']);
      await run('git', ['-C', src, 'commit', '-q', '--allow-empty', '-m', 'remote']);
      await run('git', ['-C', src, 'push', '-q', path.join(s.root, 'origin.git'), 'feature']);
      const again = await startSession(s.root, {
        CODEMATE_REPO_URL: s.env.CODEMATE_REPO_URL,
        CODEMATE_BRANCH: 'feature',
      });
      sessions.push(again);
      expect(await again.exited).toBe(13);
      expect(again.output().trim().split('\n').at(-1)).toMatch(
        /^codemate: branch conflict: local feature has diverged from origin\/feature/,
      );
    });
  });
});
