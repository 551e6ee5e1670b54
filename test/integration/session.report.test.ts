/**
 * `codemate-report` in a session of the real Claude Code: the state the hooks keep, and the token usage
 * it reads from the transcript, each model request counted once, against what the local model server
 * answered; `--watch` prints a line at each change and ends on an empty line.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReportLine, type ReportedUsage } from '../../src/operator/sessionReport.js';
import { askUserToken } from '../../src/sandbox/modelServer.js';
import { eventually } from '../helpers/cluster.js';
import {
  cleanup,
  makeOrigin,
  scripts,
  sessionRoot,
  startSession,
  turnEnded,
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

/** One run of codemate-report: its state and usage. */
async function report(): Promise<{ state: string; usage: ReportedUsage }> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(path.join(scripts, 'codemate-report'), [], { env: s.env });
    let text = '';
    p.stdout.on('data', (c: Buffer) => (text += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
  });
  const lines = out.trim().split('\n').map(parseReportLine);
  expect(lines[0]).toEqual({ kind: 'ready', version: 1 });
  const state = lines.find((l) => l.kind === 'state');
  const usage = lines.find((l) => l.kind === 'usage');
  if (state?.kind !== 'state' || usage?.kind !== 'usage') throw new Error(`unexpected report: ${out}`);
  return { state: state.state, usage: usage.usage };
}

/** The usage the model server reported for the agent's requests (those offering tools), summed. */
function served(): Omit<ReportedUsage, 'turns' | 'workspace'> {
  const sum = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 };
  for (const r of s.model!.requests) {
    if (r.tools === 0 || !r.usage) continue;
    sum.inputTokens += r.usage.input_tokens;
    sum.cacheReadTokens += r.usage.cache_read_input_tokens;
    sum.cacheCreationTokens += r.usage.cache_creation_input_tokens;
    sum.outputTokens += r.usage.output_tokens;
  }
  return sum;
}

describe('codemate-report', () => {
  it('reports a started session idle, with nothing used', async () => {
    const { state, usage } = await report();
    expect(state).toBe('ready');
    expect(usage).toMatchObject({ inputTokens: 0, outputTokens: 0, turns: 0 });
    expect(usage.workspace).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('counts the usage of each turn from the transcript, each request once', async () => {
    for (const [id, body] of [
      ['r-1', 'First prompt.'],
      ['r-2', 'Second prompt.'],
    ] as const) {
      expect((await s.inject(id, body)).code).toBe(0);
      await turnEnded(s);
    }
    // The transcript may get a turn's last answer after the Stop hook counted the turn: wait until the
    // report has caught up with what the model server answered.
    const { state, usage } = await eventually(
      report,
      (r) => r.usage.turns === 2 && r.usage.inputTokens === served().inputTokens,
      { what: 'two turns counted, with the usage served' },
    );
    expect(state).toBe('idle');
    const agent = served();
    expect(agent.inputTokens).toBeGreaterThan(0);
    expect(usage).toMatchObject(agent);
  });

  it('--watch prints each change: working, blocked on a question, idle, with the new usage', async () => {
    const watch = spawn(path.join(scripts, 'codemate-report'), ['--watch'], { env: s.env });
    let text = '';
    watch.stdout.on('data', (c: Buffer) => (text += c.toString()));
    const exited = new Promise<number | null>((resolve) => watch.on('close', resolve));
    const lines = () => text.trim().split('\n').map(parseReportLine);
    const states = () => lines().flatMap((l) => (l.kind === 'state' ? [l.state] : []));
    await eventually(
      async () => states(),
      (st) => st.join() === 'idle',
      { what: 'the first state' },
    );

    expect((await s.inject('r-3', `Ask me. ${askUserToken}`)).code).toBe(0);
    await eventually(
      async () => states(),
      (st) => st.at(-1) === 'blocked',
      {
        what: 'blocked on the question',
        describe: (st) => st.join(),
      },
    );
    // The hook fires before the dialog is drawn, and a key may come before it listens: a person answers
    // (Enter: the first option) until the question is gone.
    const pane = () => s.tmux('capture-pane', '-p', '-t', 'claude-code');
    await eventually(pane, (p) => p.includes('Enter to select'), { what: 'the question on the screen' });
    await eventually(
      async () => {
        const p = await pane();
        if (p.includes('Enter to select')) await s.tmux('send-keys', '-t', 'claude-code', 'Enter');
        return p;
      },
      (p) => !p.includes('Enter to select'),
      { what: 'the question answered', intervalMs: 1000 },
    );
    await eventually(
      async () => states(),
      (st) => st.at(-1) === 'idle' && st.length >= 3,
      {
        what: 'idle after the answer',
        describe: (st) => st.join(),
      },
    );
    expect(states().join()).toMatch(/^idle,(busy,)?blocked,idle$/);
    const usage = await eventually(
      async () =>
        lines()
          .flatMap((l) => (l.kind === 'usage' ? [l.usage] : []))
          .at(-1),
      (u) => u?.turns === 3,
      { what: 'the usage of the third turn' },
    );
    expect(usage).toMatchObject(served());
    watch.stdin.write('\n');
    expect(await exited).toBe(0);
  });
});
