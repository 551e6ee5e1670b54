/**
 * Session state on the pull request, end to end in the sandbox (issue 19, item 2): the real Claude Code
 * TUI's hooks report working, idle and blocked (an AskUserQuestion dialog, which the local model server
 * asks for), the operator writes one commit status `codemate/session` on the pull request's head per
 * change, none while nothing changes, and status.session and status.usage follow.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tokensCounted, type CodeMate } from '../../src/api/codemate.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { askUserToken } from '../../src/sandbox/modelServer.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { modelSpeed, promptsReaching } from '../helpers/modelLog.js';
import { codemateObject } from '../helpers/operator.js';
import { podShell, sessionNamespace } from '../helpers/sandbox.js';
import { FaultSandbox } from '../fault/harness.js';

const binDir = inject('binDir');
const alice = { login: 'alice', id: 901 };
const namespace = 'session-state';
let sandbox: FaultSandbox;
let gh: FakeGitHub;
let kube: Kube;

type CM = CodeMate & KubeObject;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The commit statuses written for the session, in order, as GitHub's states and the session's words. */
const sessionStatuses = () => gh.statuses.filter((s) => s.context === 'codemate/session');
const shownStates = () => sessionStatuses().map((s) => s.description?.split(/[:; ]/)[0] ?? '');

beforeAll(async () => {
  // One second between writes, so the test's changes, seconds apart, are each written.
  sandbox = await FaultSandbox.start(binDir, { CODEMATE_SESSION_STATUS_INTERVAL_SECONDS: '1' });
  ({ gh, kube } = sandbox);
  await sessionNamespace(kube, namespace, 'ghp-session-token');
});

afterAll(async () => {
  await modelSpeed(sandbox.stateDir, { chunkDelayMs: 0, chunks: 3 }).catch(() => undefined);
  await sandbox?.stop();
});

describe('session state on the pull request', () => {
  it('follows the session through working, idle, blocked and idle, with one write per change', async () => {
    await sandbox.base.addPull(41, 'branch-41');
    await kube.create(
      codemateObject(namespace, 'pr-41', {
        repository: { url: 'https://github.com/o/r.git', branch: 'branch-41', pullRequest: 41 },
        monitoring: { intervalSeconds: 2 },
      }),
    );
    const cm = await eventually(
      () => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', 'pr-41', namespace),
      (c) => c.status?.phase === 'Running' && !!c.status.pullRequest?.headSha,
      { what: 'CodeMate pr-41 Running', timeoutMs: 60_000, describe: (c) => JSON.stringify(c.status) },
    );
    const pod = cm.status!.podName!;
    const head = cm.status!.pullRequest!.headSha!;
    const podExec = podShell(binDir, path.join(sandbox.stateDir, 'kubeconfig'), namespace);
    const statusWrites = () =>
      sandbox.requests.filter((r) => r.method === 'POST' && r.path.includes('/statuses/')).length;

    // The session started and waits for input: idle.
    await eventually(
      async () => shownStates(),
      (s) => s.join() === 'idle',
      {
        what: 'the idle status of the started session',
        timeoutMs: 60_000,
      },
    );

    // A slow turn: working, then idle once it ends.
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 300, chunks: 15 });
    const first = gh.comment('o', 'r', 41, alice, 'Work on the first part.', 'MEMBER');
    await eventually(
      async () => shownStates(),
      (s) => s.join() === 'idle,working',
      {
        what: 'working while the turn runs',
        timeoutMs: 30_000,
      },
    );
    await modelSpeed(sandbox.stateDir, { chunkDelayMs: 0, chunks: 3 });
    await eventually(
      async () => shownStates(),
      (s) => s.join() === 'idle,working,idle',
      {
        what: 'idle once the turn ended',
        timeoutMs: 30_000,
      },
    );

    // A question for a person: the TUI shows a dialog, and the session is blocked.
    const second = gh.comment('o', 'r', 41, alice, `Ask me which way to go. ${askUserToken}`, 'MEMBER');
    await eventually(
      async () => shownStates(),
      (s) => s.at(-1) === 'blocked',
      {
        what: 'blocked on the dialog',
        timeoutMs: 30_000,
        describe: (s) => s.join(),
      },
    );
    const blocked = await eventually(
      () => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', 'pr-41', namespace),
      (c) => c.status?.session?.state === 'blocked',
      { what: 'status.session.state blocked', describe: (c) => JSON.stringify(c.status?.session) },
    );
    expect(blocked.status?.session?.lastMessage).toBe(`pr-41-ic-${second}`);
    // Nothing changes while the dialog waits: nothing is written.
    const whileBlocked = statusWrites();
    await sleep(4000);
    expect(statusWrites()).toBe(whileBlocked);

    // A person answers it in the pane; the turn ends: idle.
    // The hook fires before the dialog is drawn, and a key may come before it listens: answer (Enter:
    // the first option) until the question is gone.
    const pane = () => podExec(pod, 'tmux capture-pane -p -t claude-code');
    await eventually(pane, (p) => p.includes('Enter to select'), { what: 'the question on the screen' });
    await eventually(
      async () => {
        const p = await pane();
        if (p.includes('Enter to select')) await podExec(pod, 'tmux send-keys -t claude-code Enter');
        return p;
      },
      (p) => !p.includes('Enter to select'),
      { what: 'the question answered', intervalMs: 1000 },
    );
    await eventually(
      async () => shownStates(),
      (s) => s.at(-1) === 'idle' && s.includes('blocked'),
      {
        what: 'idle after the dialog was answered',
        timeoutMs: 30_000,
        describe: (s) => s.join(),
      },
    );
    await promptsReaching(sandbox.stateDir, `[codemate message=pr-41-ic-${first}]`);

    // Working, idle, blocked, idle: one write per change (a turn that asked at once may show no working
    // before its dialog: the hooks said busy for less than the report's look).
    const states = shownStates();
    expect(states.join()).toMatch(/^idle,working,idle,(working,)?blocked,idle$/);
    for (let i = 1; i < states.length; i++) expect(states[i]).not.toBe(states[i - 1]);
    expect(statusWrites()).toBe(states.length);
    const writes = sessionStatuses();
    expect(writes.map((s) => s.state)).toEqual(
      states.map((s) => ({ idle: 'success', working: 'pending', blocked: 'failure' })[s]),
    );
    for (const w of writes) {
      expect(w).toMatchObject({ repo: 'o/r', sha: head, by: 'codemate-bot' });
      expect(w.description).toContain('codemate attach pr-41 -n session-state');
      expect(w.description!.length).toBeLessThanOrEqual(140);
    }
    expect(writes.at(-1)!.description).toContain(`last: pr-41-ic-${second}`);
    // With a token (not an App) the state is the commit status only: no check run.
    expect(gh.checkRunWrites).toEqual([]);

    // And none while nothing changes.
    await sleep(4000);
    expect(statusWrites()).toBe(states.length);

    // status.session and status.usage follow: idle, two turns or more, tokens from the model's usage.
    const after = await eventually(
      () => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', 'pr-41', namespace),
      (c) => c.status?.session?.state === 'idle' && (c.status.usage?.turns ?? 0) >= 2,
      { what: 'status.session idle and the usage of two turns', describe: (c) => JSON.stringify(c.status) },
    );
    expect(after.status?.usage?.inputTokens).toBeGreaterThan(0);
    expect(after.status?.usage?.outputTokens).toBeGreaterThan(0);
    expect(after.status?.usage?.cacheReadTokens).toBeGreaterThan(0);
    // `codemate list -o wide` and `describe` show them.
    const env = { KUBECONFIG: path.join(sandbox.stateDir, 'kubeconfig') };
    const wide = await runCli(['list', '-n', namespace, '-o', 'wide'], { env });
    expect(wide.code, wide.stderr).toBe(0);
    const [header, row] = wide.stdout.trim().split('\n');
    expect(header).toMatch(/\bSTATE\s+TOKENS\s+TURNS\s+MESSAGE$/);
    const turns = String(after.status!.usage!.turns);
    expect(row).toMatch(new RegExp(`\\sidle\\s+${tokensCounted(after.status?.usage)}\\s+${turns}\\s`));
    const described = await runCli(['describe', '-n', namespace, 'pr-41'], { env });
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/^Session: +idle since \S+, last message pr-41-ic-\d+$/m);
    expect(described.stdout).toMatch(
      new RegExp(`^Usage: +${after.status!.usage!.inputTokens} input, .*; ${turns} turns`, 'm'),
    );

    // Suspended: the status says so.
    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'pr-41', namespace },
      spec: { suspend: true },
    });
    await eventually(
      async () => shownStates(),
      (s) => s.at(-1) === 'suspended',
      {
        what: 'the suspended status',
        timeoutMs: 30_000,
        describe: (s) => s.join(),
      },
    );
    expect(sessionStatuses().at(-1)!.state).toBe('success');
  }, 240_000);
});
