import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'vitest';
import { eventually } from '../helpers/cluster.js';
import { cleanup, makeOrigin, sessionRoot, startSession, waitUntilReady } from '../helpers/session.js';

it('probe', async () => {
  const root = await sessionRoot();
  const s = await startSession(root, { CODEMATE_REPO_URL: `file://${await makeOrigin(root)}`, CODEMATE_BRANCH: 'main' });
  try {
    await waitUntilReady(s);
    console.log('IDLE0>>>\n' + (await s.tmux('capture-pane', '-p', '-t', '=claude-code:')));
    s.model!.configure({ chunkDelayMs: 500, chunks: 20 });
    await s.inject('probe-1', 'a slow turn');
    await eventually(() => s.prompts(), (p) => p.length > 0, { what: 'turn', intervalMs: 50 });
    await new Promise((r) => setTimeout(r, 1500));
    console.log('BUSY>>>\n' + (await s.tmux('capture-pane', '-p', '-t', '=claude-code:')));
    await s.tmux('send-keys', '-t', '=claude-code:', 'Escape');
    await new Promise((r) => setTimeout(r, 1500));
    console.log('STATE after Esc: ' + (await readFile(path.join(s.stateDir, 'session-state'), 'utf8')));
    console.log('INTERRUPTED>>>\n' + (await s.tmux('capture-pane', '-p', '-t', '=claude-code:')));
  } finally {
    await s.stop();
    await cleanup(root);
  }
}, 120_000);
