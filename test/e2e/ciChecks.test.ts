/**
 * The pull request monitor in the sandbox: a failed workflow run on the pull request's head reaches the
 * session as exactly one message, with the failed job's name and the end of its log, whether a webhook
 * delivery asked for the poll or the poller's own timer found it; a re-run that fails again is a second
 * message, a passing run none, and a log that cannot be fetched still yields the message. The pull
 * request leaving draft asks the session once, also across an operator restart.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { isAlive } from '../../src/clients/processes.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { promptsReaching, promptsWith } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';
import { example, replayDelivery } from '../helpers/webhook.js';

const binDir = inject('binDir');
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;
let stateDir: string;
let sandboxEnv: Record<string, string>;
const session = { login: 'codemate-bot', id: 900 };
const namespace = 'ci-checks';

type Message = KubeObject & { spec: MessageSpec; status?: { phase?: string } };
const messages = async (codemate: string, type: MessageSpec['source']['type']) =>
  (await kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace)).filter(
    (m) => m.spec.codemate === codemate && m.spec.source.type === type,
  );
const codemate = (name: string) =>
  kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace);

const replay = (event: string, payload: unknown) =>
  replayDelivery({ dir: stateDir, env: sandboxEnv, event, payload });

/** A log longer than the tail a message holds: its last line names the error. */
const logOf = (error: string) =>
  [
    ...Array.from({ length: 180 }, (_, i) => `2026-01-01T00:00:00.0000000Z early line ${i}`),
    `\u001b[31m${error}\u001b[0m`,
  ].join('\n');

/** Waits until the poller has polled `name` again, after something asked it to. */
async function nextPoll(name: string, before: string | undefined) {
  await eventually(
    () => codemate(name),
    (cm) => cm.status?.lastMonitorCheck !== before,
    { what: `a poll of ${name}`, timeoutMs: 20_000 },
  );
}

/** The payload of pull_request.reopened on o/r#number: here only a way to ask for a poll now. */
function pollRequest(number: number) {
  const payload = example('pull_request', 'reopened') as Record<string, Record<string, unknown>>;
  payload.repository!.full_name = 'o/r';
  payload.pull_request!.number = number;
  return payload;
}

beforeAll(async () => {
  sandbox = await startGitHubSandbox(binDir, session);
  ({ gh, stateDir, kube, env: sandboxEnv } = sandbox);
  gh.markDraft('o', 'r', 7);
  // o/r has CI: GitHub Actions workflows (a repository without is asked once per head, then left alone).
  gh.addWorkflow('o', 'r', 'Tests');
  await sandbox.addPull(8, 'polled');
  await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
  await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  // A poll interval far longer than the test: what reaches this session came by a webhook's poll request.
  await kube.create(
    codemateObject(namespace, 'hooked', {
      repository: { url: 'https://github.com/o/r.git', pullRequest: 7 },
      monitoring: { intervalSeconds: 600 },
    }),
  );
  // This one has no webhook at all: its own timer finds what there is.
  await kube.create(
    codemateObject(namespace, 'polled', {
      repository: { url: 'https://github.com/o/r.git', pullRequest: 8 },
      monitoring: { intervalSeconds: 2 },
    }),
  );
  for (const name of ['hooked', 'polled']) {
    await eventually(
      () => codemate(name),
      (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === 'codemate-bot',
      { what: `${name} Running, with its first poll done`, timeoutMs: 90_000 },
    );
  }
  expect((await codemate('hooked')).status?.pullRequest?.draft).toBe(true);
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('CI failures reach the session once per failed run', () => {
  let runId: number;

  it('via the webhook: one message with the failed job and the end of its log', async () => {
    ({ runId } = gh.failRun('o', 'r', 7, {
      workflow: 'Tests',
      job: 'unit-tests',
      log: logOf('Error: expected 2 to be 3 (webhook run)'),
    }));
    const payload = gh.workflowRunPayload(runId, example('workflow_run', 'completed'));
    expect(await replay('workflow_run', payload)).toMatchObject({
      status: 'poll-requested',
      codemates: [`${namespace}/hooked`],
    });
    const name = `hooked-ci-${runId}-1`;
    await eventually(
      () => messages('hooked', 'ci_failure'),
      (ms) => ms.find((m) => m.metadata.name === name)?.status?.phase === 'Delivered',
      { what: 'the CI message delivered', timeoutMs: 30_000 },
    );
    const [prompt] = await promptsReaching(stateDir, `[codemate message=${name}]`);
    expect(prompt).toContain('The workflow "Tests" failed on pull request #7');
    expect(prompt).toContain('- unit-tests (failure), failed step: Run npm test');
    expect(prompt).toContain('Error: expected 2 to be 3 (webhook run)');
    expect(prompt).toContain('early line 179');
    expect(prompt).not.toContain('early line 79\n');
    expect(prompt).not.toContain('2026-01-01T00:00:00.0000000Z');
    expect(prompt).toContain('commit and push the fix');

    // The same failure told again, as a check_run delivery: still one message and one prompt.
    const checkRun = example('check_run', 'completed') as Record<string, Record<string, unknown>>;
    checkRun.repository!.full_name = 'o/r';
    Object.assign(checkRun.check_run!, {
      conclusion: 'failure',
      head_sha: gh.headSha('o', 'r', 7),
      pull_requests: [{ ...(checkRun.check_run!.pull_requests as object[])[0], number: 7 }],
    });
    const before = (await codemate('hooked')).status?.lastMonitorCheck;
    expect(await replay('check_run', checkRun)).toMatchObject({ status: 'poll-requested' });
    await nextPoll('hooked', before);
    expect(await messages('hooked', 'ci_failure')).toHaveLength(1);
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
    expect((await codemate('hooked')).status?.github?.ci?.lastNotified).toMatchObject({
      runId,
      attempt: 1,
      workflow: 'Tests',
      message: name,
    });
  });

  it('a re-run that fails again is a second message; a passing run is none', async () => {
    gh.rerun(runId, [
      { name: 'unit-tests', conclusion: 'failure', log: logOf('Error: still failing (attempt 2)') },
    ]);
    await replay('workflow_run', gh.workflowRunPayload(runId, example('workflow_run', 'completed')));
    const name = `hooked-ci-${runId}-2`;
    const [prompt] = await promptsReaching(stateDir, `[codemate message=${name}]`, { timeoutMs: 45_000 });
    expect(prompt).toContain('attempt 2');
    expect(prompt).toContain('Error: still failing (attempt 2)');

    const passing = gh.runWorkflow('o', 'r', 7, 'Lint', [
      { name: 'eslint', conclusion: 'success', log: 'ok' },
    ]);
    expect(
      await replay(
        'workflow_run',
        gh.workflowRunPayload(passing.runId, example('workflow_run', 'completed')),
      ),
    ).toMatchObject({ status: 'ignored' });
    // The poller sees the passing run too, and says nothing of it.
    const before = (await codemate('hooked')).status?.lastMonitorCheck;
    await replay('pull_request', pollRequest(7));
    await nextPoll('hooked', before);
    const ci = await messages('hooked', 'ci_failure');
    expect(ci.map((m) => m.metadata.name).sort()).toEqual([`hooked-ci-${runId}-1`, name].sort());
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
  });

  it('via the poll alone: the same message, also when the log cannot be fetched', async () => {
    const { runId: polledRun } = gh.failRun('o', 'r', 8, {
      workflow: 'Build',
      job: 'compile',
      log: logOf('error TS2322: polled failure'),
    });
    const name = `polled-ci-${polledRun}-1`;
    const prompts = await promptsReaching(stateDir, `[codemate message=${name}]`, { timeoutMs: 45_000 });
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain('- compile (failure)');
    expect(prompts[0]).toContain('error TS2322: polled failure');

    // A new push whose run fails with an expired log: the message still goes, with a link instead.
    gh.push('o', 'r', 8);
    const { runId: noLog } = gh.failRun('o', 'r', 8, { workflow: 'Build', job: 'compile' });
    const [withoutLog] = await promptsReaching(stateDir, `[codemate message=polled-ci-${noLog}-1]`, {
      timeoutMs: 45_000,
    });
    expect(withoutLog).toContain('The log of job "compile" could not be fetched');
    // Polls go on every 2 s; none of them tells the session again.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(await messages('polled', 'ci_failure')).toHaveLength(2);
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
  });
});

describe('ready for review', () => {
  const name = 'hooked-rfr-7';

  it('leaving draft asks the session once to update the title and description', async () => {
    gh.markReady('o', 'r', 7);
    const ready = example('pull_request', 'ready_for_review') as Record<string, Record<string, unknown>>;
    ready.repository!.full_name = 'o/r';
    ready.pull_request!.number = 7;
    expect(await replay('pull_request', ready)).toMatchObject({
      status: 'poll-requested',
      action: 'ready_for_review',
    });
    const [prompt] = await promptsReaching(stateDir, `[codemate message=${name}]`, { timeoutMs: 45_000 });
    expect(prompt).toContain('Update its title and description');
    const cm = await codemate('hooked');
    expect(cm.status?.github?.readyForReview?.message).toBe(name);
    expect(cm.status?.pullRequest?.draft).toBe(false);
    const described = await runCli(['describe', 'hooked', '-n', namespace], {
      env: { KUBECONFIG: path.join(stateDir, 'kubeconfig') },
    });
    expect(described.stdout).toMatch(/Left draft: +asked to update the title and description .*hooked-rfr-7/);
    expect(described.stdout).toMatch(/CI failures: +last told .*: Tests run \d+ attempt 2 \(failure/);
  });

  it('is not asked again after an operator restart, even back in draft and ready again', async () => {
    const status = JSON.parse(
      (
        await runCli(['dev', 'status', '-o', 'json', '--state-dir', stateDir], {
          env: { CODEMATE_BIN_DIR: binDir },
        })
      ).stdout,
    ) as { components: Array<{ name: string; pid?: number }> };
    const pid = status.components.find((c) => c.name === 'codemate-operator')!.pid!;
    process.kill(pid, 'SIGTERM');
    await eventually(
      async () => isAlive(pid),
      (alive) => !alive,
      { what: 'the operator gone', timeoutMs: 30_000 },
    );
    gh.markDraft('o', 'r', 7);
    // o/r has CI: GitHub Actions workflows (a repository without is asked once per head, then left alone).
    gh.addWorkflow('o', 'r', 'Tests');
    const up = await runCli(['dev', 'up', '--state-dir', stateDir], {
      env: {
        CODEMATE_BIN_DIR: binDir,
        GITHUB_API_URL: gh.url,
        CODEMATE_SANDBOX_GIT_REWRITE: `https://github.com/=file://${sandbox.repos}/`,
        CODEMATE_MONITOR_REPORT_SECONDS: '0',
      },
      timeoutMs: 120_000,
    });
    expect(up.code, up.stderr).toBe(0);
    // The restarted operator polls at once: it sees the draft; then the pull request is ready again.
    await eventually(
      () => codemate('hooked'),
      (cm) => cm.status?.pullRequest?.draft === true,
      { what: 'the draft seen by the new operator', timeoutMs: 60_000 },
    );
    gh.markReady('o', 'r', 7);
    const before = (await codemate('hooked')).status?.lastMonitorCheck;
    await replay('pull_request', pollRequest(7));
    await nextPoll('hooked', before);
    expect((await codemate('hooked')).status?.pullRequest?.draft).toBe(false);
    expect(await messages('hooked', 'ready_for_review')).toHaveLength(1);
    expect(await promptsWith(stateDir, `[codemate message=${name}]`)).toHaveLength(1);
  });
});
