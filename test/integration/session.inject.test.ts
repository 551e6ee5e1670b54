import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  makeOrigin,
  sessionRoot,
  startSession,
  waitUntilReady,
  type Session,
} from '../helpers/session.js';

let s: Session;

beforeAll(async () => {
  const root = await sessionRoot();
  s = await startSession(root, {
    CODEMATE_REPO_URL: `file://${await makeOrigin(root)}`,
    CODEMATE_BRANCH: 'main',
  });
  await waitUntilReady(s);
});

afterAll(async () => {
  await s.stop();
  await cleanup(s.root);
});

/** What must reach Claude: the marker line, then the body without control characters or trailing space. */
function expected(id: string, body: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const clean = body.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '').replace(/\s+$/u, '');
  return `[codemate message=${id}]\n${clean}`;
}

const hostile: Array<[string, string]> = [
  ['tmux key names', 'C-c'],
  ['a bare Enter key name', 'Enter'],
  ['a trailing tmux separator', 'rm -rf / ;'],
  ['an escaped separator', 'kill-server \\;'],
  ['an early end of bracketed paste', 'before\u001b[201~\rafter: now typed outside the paste\r'],
  ['an OSC 52 clipboard write', 'copy \u001b]52;c;ZWNobyBwd25lZA==\u0007 this'],
  ['a NUL byte', 'nul\u0000byte'],
  ['CRLF line endings', 'line one\r\nline two\r\n'],
  ['right-to-left and zero-width characters', 'safe\u202egnp.exe\u202c and zero\u200bwidth\u2066x\u2069'],
  ['command substitution and backticks', 'run $(touch /tmp/codemate-pwned) and `id` please'],
  ['C1 controls', 'c1 \u009b31m here'],
  ['a slash command at the start', '/exit\n!rm -rf ~'],
];

describe('codemate-inject puts hostile text into the pane as inert text', () => {
  let n = 0;
  for (const [name, body] of hostile) {
    it(name, async () => {
      const id = `hostile-${++n}`;
      const before = (await s.prompts()).length;
      const result = await s.inject(id, body);
      expect(result, result.stderr).toMatchObject({ code: 0 });
      const prompts = await s.prompts();
      // Exactly one submission, with exactly the framed, cleaned text: nothing was typed outside the paste.
      expect(prompts.slice(before)).toEqual([expected(id, body)]);
      expect((await s.tmux('list-sessions', '-F', '#{session_name}')).trim()).toBe('claude-code');
      const pane = await s.tmux('capture-pane', '-p', '-t', '=claude-code:', '-S', '-50');
      expect(pane).toContain(`[codemate message=${id}]`);
      expect(pane).not.toContain('^C');
    });
  }

  it('a 64 KB body arrives whole', async () => {
    const line = 'x'.repeat(127) + '\n';
    const body = line.repeat(512);
    expect(body.length).toBe(65536);
    const before = (await s.prompts()).length;
    const result = await s.inject('large-1', body, { args: ['--bytes', String(Buffer.byteLength(body))] });
    expect(result.code, result.stderr).toBe(0);
    expect((await s.prompts()).slice(before)).toEqual([expected('large-1', body)]);
  });

  it('the same id sent twice is pasted once', async () => {
    const before = (await s.prompts()).length;
    expect((await s.inject('twice-1', 'only once')).code).toBe(0);
    const again = await s.inject('twice-1', 'only once');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already delivered');
    expect((await s.prompts()).slice(before)).toEqual([expected('twice-1', 'only once')]);
  });

  it('refuses an invalid id, and input shorter than --bytes, without pasting', async () => {
    const before = (await s.prompts()).length;
    expect((await s.inject('Bad_ID;rm', 'x')).code).toBe(2);
    const short = await s.inject('short-1', 'abc', { args: ['--bytes', '10'] });
    expect(short.code).toBe(6);
    expect(short.stderr).toContain('stdin ended after 3 of 10 bytes; nothing was pasted');
    expect((await s.prompts()).length).toBe(before);
  });

  it('holds while the session is blocked on a dialog (exit 4)', async () => {
    const state = path.join(s.stateDir, 'session-state');
    await writeFile(state, 'blocked\n');
    const blocked = await s.inject('blocked-1', 'wait');
    await writeFile(state, 'idle\n');
    expect(blocked.code).toBe(4);
    expect(blocked.stderr).toContain('blocked on a dialog');
  });

  it('reports a paste that was never acknowledged (exit 5), and a retry does not paste again', async () => {
    // A pane that swallows input without firing hooks stands for a TUI that lost the Enter.
    await s.tmux('new-window', '-d', '-t', '=claude-code:', '-n', 'mute', 'cat > /dev/null');
    await s.tmux('swap-window', '-s', '=claude-code:mute', '-t', '=claude-code:0');
    const before = (await s.prompts()).length;
    const lost = await s.inject('lost-1', 'hello?', { args: ['--timeout', '1'] });
    expect(lost.code).toBe(5);
    expect(lost.stderr).toContain('not acknowledged within 1s');
    await s.tmux('swap-window', '-s', '=claude-code:mute', '-t', '=claude-code:0');
    const retry = await s.inject('lost-1', 'hello?', { args: ['--timeout', '1'] });
    expect(retry.code).toBe(5);
    expect((await s.prompts()).length).toBe(before);
  });

  it('says so when there is no session (exit 3)', async () => {
    // An entrypoint that fails its configuration check leaves no tmux server behind.
    const root = await sessionRoot();
    const gone = await startSession(root, { CODEMATE_REPO_URL: 'file:///nonexistent' });
    expect(await gone.exited).toBe(10);
    const result = await gone.inject('nobody-1', 'hi');
    await cleanup(root);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('no tmux session claude-code');
  });
});
