/**
 * `codemate-report --watch` against a transcript written as Claude Code writes it: the Stop hook counts
 * the turn and flips the state to idle before the turn's last answer reaches the transcript (measured:
 * 0.2 to 0.5 s later). The watch follows the transcripts after the turn's end, so the usage line catches
 * up; after its 10 s window it looks again only at the 30 s tick.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseReportLine, type ReportLine } from '../../src/operator/sessionReport.js';
import { eventually } from '../helpers/cluster.js';
import { scripts } from '../helpers/session.js';

let root: string;
let state: string;
let transcript: string;
let watch: ChildProcessWithoutNullStreams | undefined;
let out = '';
/** When each line arrived. */
let arrivals: { line: string; at: number }[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lines = (): ReportLine[] => out.trim().split('\n').map(parseReportLine);
const usages = () => lines().flatMap((l) => (l.kind === 'usage' ? [l.usage] : []));
const days = () => lines().flatMap((l) => (l.kind === 'day' ? [l.day] : []));
const states = () => lines().flatMap((l) => (l.kind === 'state' ? [l.state] : []));
const today = () => new Date().toISOString().slice(0, 10);

/** An assistant entry as Claude Code writes it: one per content block, each with the request's usage. */
function answer(id: string, usage: { input: number; output: number; read: number; created: number }): string {
  return `${JSON.stringify({
    type: 'assistant',
    uuid: `${id}-${Math.random()}`,
    timestamp: new Date().toISOString(),
    message: {
      id,
      role: 'assistant',
      content: [{ type: 'text', text: 'Done.' }],
      usage: {
        input_tokens: usage.input,
        output_tokens: usage.output,
        cache_read_input_tokens: usage.read,
        cache_creation_input_tokens: usage.created,
      },
    },
  })}\n`;
}

/** What codemate-hook does at a turn's end: the turn count, then the state. */
async function stop(turns: number): Promise<void> {
  await writeFile(path.join(state, 'turns'), `${turns}\n`);
  await writeFile(path.join(state, 'session-state'), 'idle\n');
}

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'codemate-report-'));
  state = path.join(root, 'state');
  const project = path.join(root, 'claude', 'projects', '-workspace');
  await mkdir(state, { recursive: true });
  await mkdir(project, { recursive: true });
  transcript = path.join(project, 'session.jsonl');
  await writeFile(transcript, `${JSON.stringify({ type: 'user', message: { content: 'Hi.' } })}\n`);
  await writeFile(path.join(state, 'transcript'), `${transcript}\n`);
  await writeFile(path.join(state, 'workspace-id'), 'ws-1\n');
  await writeFile(path.join(state, 'session-state'), 'busy\n');
  out = '';
  arrivals = [];
  watch = spawn(path.join(scripts, 'codemate-report'), ['--watch'], {
    env: { ...process.env, CODEMATE_STATE_DIR: state },
  });
  watch.stdout.on('data', (c: Buffer) => {
    const before = out.length;
    out += c.toString();
    const at = Date.now();
    for (const line of out
      .slice(out.lastIndexOf('\n', before - 1) + 1)
      .split('\n')
      .slice(0, -1))
      arrivals.push({ line, at });
  });
  await eventually(
    async () => states(),
    (s) => s.join() === 'busy',
    { what: 'the first state' },
  );
});

afterEach(async () => {
  watch?.stdin.write('\n');
  watch?.kill();
  await rm(root, { recursive: true, force: true });
});

describe('codemate-report --watch and a transcript written after the Stop hook', () => {
  it("counts the turn's last answer when it lands after the turn's end", async () => {
    await stop(1);
    await eventually(
      async () => states(),
      (s) => s.at(-1) === 'idle',
      { what: 'idle' },
    );
    expect(usages().at(-1)).toMatchObject({ inputTokens: 0, outputTokens: 0, turns: 1 });

    // Claude Code writes the answer after the hook, one entry per content block (same id, counted once),
    // the last one in two writes.
    await sleep(500);
    const entry = answer('msg_1', { input: 100, output: 20, read: 5, created: 7 });
    await appendFile(transcript, entry + entry.slice(0, 40));
    await sleep(300);
    await appendFile(transcript, entry.slice(40));

    const usage = await eventually(
      async () => usages().at(-1),
      (u) => u?.inputTokens === 100,
      { what: "the turn's usage", timeoutMs: 5000, describe: () => out },
    );
    expect(usage).toEqual({
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 5,
      cacheCreationTokens: 7,
      turns: 1,
      workspace: 'ws-1',
    });
    await eventually(
      async () => days().at(-1),
      (d) => d?.tokens === 127,
      { what: "today's tokens", timeoutMs: 5000, describe: () => out },
    );
    expect(days().at(-1)?.date).toBe(today());
  });

  it('after its window, reads what lands late at the next tick, and not before', async () => {
    await stop(1);
    await eventually(
      async () => states(),
      (s) => s.at(-1) === 'idle',
      { what: 'idle' },
    );
    // The 10 s window after the turn's end is over; the first tick is 30 s after the start.
    await sleep(11_000);
    const appended = Date.now();
    await appendFile(transcript, answer('msg_2', { input: 40, output: 2, read: 0, created: 0 }));
    await eventually(
      async () => usages().at(-1),
      (u) => u?.inputTokens === 40,
      { what: 'the late usage at the tick', timeoutMs: 30_000, describe: () => out },
    );
    const late = arrivals.find((a) => a.line.startsWith('usage 40 '))!;
    const tick = await eventually(
      async () => arrivals.find((a) => a.line === 'tick'),
      (t) => t !== undefined,
      { what: 'the tick' },
    );
    expect(late.at - appended).toBeGreaterThan(5000);
    expect(Math.abs(tick!.at - late.at)).toBeLessThan(1000);
  }, 60_000);
});
