/**
 * The first task (spec.task, CODEMATE_TASK) runs once: codemate-claude gives it to a new conversation,
 * not to one it resumes from the transcript a volume kept (after a suspend or a restart), and gives a
 * task that changed since (docs/lifecycle.md). The real Claude Code, against the local model server.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startModelServer } from '../../src/sandbox/modelServer.js';
import { eventually } from '../helpers/cluster.js';
import {
  cleanup,
  makeOrigin,
  sessionRoot,
  startSession,
  turnEnded,
  waitUntilReady,
  type Session,
} from '../helpers/session.js';

const sessions: Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) {
    await s.stop();
    await cleanup(s.root);
  }
});

describe('codemate-claude and the task', () => {
  it('gives the task to a new conversation once, not to the resumed one, and a changed task again', async () => {
    const model = await startModelServer();
    try {
      const root = await sessionRoot();
      const origin = await makeOrigin(root);
      const env = (task: string) => ({
        CODEMATE_REPO_URL: `file://${origin}`,
        CODEMATE_BRANCH: 'feature',
        CODEMATE_SESSION_ID: '5d1f4c6e-0b7a-4e53-9a4e-3c2b1a0f9e8d',
        CODEMATE_TASK: task,
      });
      const start = async (task: string) => {
        const s = await startSession(root, env(task), { model });
        sessions.push(s);
        await waitUntilReady(s);
        return s;
      };
      const prompts = async (s: Session, count: number) =>
        eventually(
          () => s.prompts(),
          (p) => p.length >= count,
          { what: `${count} prompt(s) at the model`, timeoutMs: 30_000 },
        );

      const first = await start('First task task-one.');
      expect(await prompts(first, 1)).toEqual(['First task task-one.']);
      await turnEnded(first);
      await first.stop();
      sessions.splice(sessions.indexOf(first), 1);

      // The same task, and the transcript is there: the conversation is resumed without it. The message
      // injected after the start is the next prompt, so a task given again would come before it.
      const resumed = await start('First task task-one.');
      expect(resumed.output()).toContain('reusing the clone');
      expect((await resumed.inject('after-1', 'a message after the resume')).code).toBe(0);
      const after = await prompts(resumed, 2);
      expect(after).toHaveLength(2);
      expect(after[0]).toBe('First task task-one.');
      expect(after[1]).toContain('a message after the resume');
      await turnEnded(resumed);
      await resumed.stop();
      sessions.splice(sessions.indexOf(resumed), 1);

      // spec.task edited: the resumed conversation gets the new task.
      const changed = await start('Second task task-two.');
      const all = await prompts(changed, 3);
      expect(all.slice(2)).toEqual(['Second task task-two.']);
      expect(all.filter((p) => p.includes('task-one'))).toHaveLength(1);
    } finally {
      await model.close();
    }
  });
});
