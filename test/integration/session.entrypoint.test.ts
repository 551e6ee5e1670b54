import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startModelServer, type ModelServer } from '../../src/sandbox/modelServer.js';
import { eventually } from '../helpers/cluster.js';
import { framed } from '../helpers/model.js';
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

async function session(env: NodeJS.ProcessEnv, model?: ModelServer): Promise<Session> {
  const root = await sessionRoot();
  const origin = await makeOrigin(root);
  const s = await startSession(root, { CODEMATE_REPO_URL: `file://${origin}`, ...env }, { model });
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

    // The first instruction reaches the model as text, never through a shell, and the session id is the
    // one given (it names the paste ids).
    expect(
      await eventually(
        () => s.prompts(),
        (p) => p.length > 0,
        { what: 'the task at the model' },
      ),
    ).toEqual(['Fix the $(flaky) `test`; then stop']);
    expect(JSON.stringify(s.model!.requests[0]!.body)).toContain('0f8fad5b-d9cb-469f-a165-70867728950e');
    // First-run dialogs are pre-accepted (nothing else would let the TUI start unattended) and the hooks
    // are installed. Claude rewrites .claude.json, so only the keys that matter are checked.
    const claudeJson = JSON.parse(await readFile(path.join(s.workspace, '.claude', '.claude.json'), 'utf8'));
    expect(claudeJson.hasCompletedOnboarding).toBe(true);
    expect(claudeJson.projects[s.repo]).toMatchObject({ hasTrustDialogAccepted: true });
    expect(claudeJson.customApiKeyResponses.approved).toEqual(['klmnopqrstuvwxyz0123456789'.slice(-20)]);
    const settings = JSON.parse(await readFile(path.join(s.workspace, '.claude', 'settings.json'), 'utf8'));
    expect(Object.keys(settings.hooks).sort()).toEqual(
      ['Notification', 'PermissionRequest', 'SessionStart', 'Stop', 'StopFailure', 'UserPromptSubmit'].sort(),
    );
    expect(settings.skipDangerousModePermissionPrompt).toBe(true);
    // The pane is mirrored to stdout, which is what `kubectl logs` shows: the real TUI, run as root here
    // with IS_SANDBOX=1 (docs/adr/0006). The mirror samples the screen once a second.
    await eventually(
      async () => s.output(),
      (out) => out.includes('Claude Code'),
      { what: 'the TUI in the mirrored output' },
    );
    expect(s.output()).toContain('Claude Code');
    expect(s.output()).not.toContain('sk-ant-api03');
    const pid = (await s.tmux('display-message', '-p', '-t', '=claude-code:', '#{pane_pid}')).trim();
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
    const sandboxVars = environ.split('\0').filter((v) => v.startsWith('IS_SANDBOX='));
    expect(sandboxVars).toEqual(process.getuid?.() === 0 ? ['IS_SANDBOX=1'] : []);
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

  it('reuses an existing clone after a restart, resumes the conversation, and settles unacknowledged messages', async () => {
    const model = await startModelServer();
    try {
      const s = await session({ CODEMATE_BRANCH: 'feature' }, model);
      await waitUntilReady(s);
      await run('sh', ['-c', `echo wip > ${s.repo}/wip.txt`]);
      const state = (...p: string[]) => path.join(s.stateDir, ...p);
      const sessionKey = () => readFile(state('session-key'), 'utf8');
      const key = await sessionKey();
      expect((await s.inject('before-1', 'before the restart')).code).toBe(0);
      await eventually(
        () => s.prompts(),
        (p) => p.length === 1,
        { what: 'the first message at the model' },
      );
      // The pod dies with two messages unacknowledged: before-1 reached Claude (the hook missed it), lost-1
      // was pasted into the box that died with the TUI.
      await rm(state('acks', 'before-1'));
      await writeFile(state('pasted', 'before-1'), framed(key, 'before-1', 'before the restart'));
      await writeFile(state('pasted', 'lost-1'), framed(key, 'lost-1', 'lost with the box'));
      await writeFile(state('delivered', 'lost-1'), '1\n');
      await s.stop();
      const again = await startSession(
        s.root,
        {
          CODEMATE_REPO_URL: s.env.CODEMATE_REPO_URL,
          CODEMATE_BRANCH: 'feature',
          CODEMATE_SESSION_ID: s.sessionId,
        },
        { model },
      );
      sessions.push(again);
      await waitUntilReady(again);
      expect(again.output()).toContain('reusing the clone');
      expect(await readFile(path.join(s.repo, 'wip.txt'), 'utf8')).toBe('wip\n');
      // The key that tags injected markers is new at each start.
      expect(await sessionKey()).toMatch(/^[0-9a-f]{64}$/);
      expect(await sessionKey()).not.toBe(key);
      expect(again.output()).toContain('message before-1 reached Claude before the restart');
      expect(again.output()).toContain(
        'message lost-1 was pasted before the restart but never reached Claude',
      );
      expect(await readdir(state('acks'))).toEqual(['before-1']);
      expect(await readdir(state('pasted'))).toEqual([]);
      // The operator's retries: before-1 is done; lost-1 is pasted again, into the resumed conversation.
      expect((await again.inject('before-1', 'before the restart')).stdout).toContain('already delivered');
      expect((await again.inject('lost-1', 'lost with the box')).code).toBe(0);
      await eventually(
        () => again.prompts(),
        (p) => p.length === 2,
        { what: 'the second message at the model' },
      );
      const last = JSON.stringify(model.requests.filter((r) => r.tools > 0).at(-1)!.body);
      expect(last).toContain('before the restart');
      expect(last).toContain('lost with the box');
    } finally {
      await model.close();
    }
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
