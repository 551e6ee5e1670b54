/**
 * A token budget, end to end in the sandbox (issue 19, item 3): the real Claude Code TUI's transcript
 * carries the local model server's usage; past spec.budget.maxTokens, new messages wait in
 * AwaitingBudget, the session is told once, and the WithinBudget condition says why; raising the budget
 * delivers the waiting messages in order, each once. The same for spec.budget.maxTokensPerDay, whose
 * count is the tokens of today's requests (UTC).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tokensCounted, utcDate, type CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { modelRequests, promptsReaching, promptsWith } from '../helpers/modelLog.js';
import { codemateObject } from '../helpers/operator.js';
import { sessionNamespace } from '../helpers/sandbox.js';
import { FaultSandbox } from '../fault/harness.js';

const binDir = inject('binDir');
const alice = { login: 'alice', id: 901 };
const namespace = 'budget';
let sandbox: FaultSandbox;
let gh: FakeGitHub;
let kube: Kube;

type CM = CodeMate & KubeObject;
type Message = CodeMateMessage & KubeObject;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const getCm = (name: string) => kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
const messages = async (codemate: string) =>
  (await kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace)).filter(
    (m) => m.spec.codemate === codemate,
  );

beforeAll(async () => {
  sandbox = await FaultSandbox.start(binDir, { CODEMATE_SESSION_STATUS_INTERVAL_SECONDS: '1' });
  ({ gh, kube } = sandbox);
  await sessionNamespace(kube, namespace, 'ghp-session-token');
});

afterAll(async () => {
  await sandbox?.stop();
});

/** How one budget is spent, named in its notice and condition, and raised. */
interface Case {
  name: string;
  pr: number;
  budget: { maxTokens?: number; maxTokensPerDay?: number };
  /** The notice's name: once per limit (and day). */
  notice: () => string;
  /** The condition's words for it. */
  condition: () => string;
  /** What the held messages say releases them. */
  release: string;
  raised: { maxTokens?: number; maxTokensPerDay?: number };
  /** The tokens the budget counts, as status.usage says them. */
  counted: (c: CM) => number;
}

/**
 * A session spends its budget with its first message: the next two wait in AwaitingBudget, reach no
 * model, the session is told once, and raising the budget delivers them in order, each once.
 */
async function spendThenRaise(t: Case): Promise<void> {
  const { name, pr } = t;
  await sandbox.base.addPull(pr, `branch-${pr}`);
  await kube.create(
    codemateObject(namespace, name, {
      repository: { url: 'https://github.com/o/r.git', branch: `branch-${pr}`, pullRequest: pr },
      monitoring: { intervalSeconds: 2 },
      budget: t.budget,
    }),
  );
  await eventually(
    () => getCm(name),
    (c) => c.status?.phase === 'Running',
    {
      what: `CodeMate ${name} Running`,
      timeoutMs: 60_000,
      describe: (c) => JSON.stringify(c.status),
    },
  );
  const first = `${name}-ic-${gh.comment('o', 'r', pr, alice, 'Spend the budget.', 'MEMBER')}`;
  await promptsReaching(sandbox.stateDir, `[codemate message=${first}]`);

  // The turn's usage is recorded, and the condition says the budget is used up.
  const spent = await eventually(
    () => getCm(name),
    // The usage may be written in two steps (the turn's end, then its last answer's tokens): wait for both.
    (c) =>
      (c.status?.conditions?.some((x) => x.type === 'WithinBudget' && x.status === 'False') ?? false) &&
      (c.status?.usage?.turns ?? 0) >= 1,
    { what: `${name} WithinBudget False`, timeoutMs: 60_000, describe: (c) => JSON.stringify(c.status) },
  );
  const condition = spent.status!.conditions!.find((x) => x.type === 'WithinBudget')!;
  expect(condition.reason).toBe('BudgetExhausted');
  expect(condition.message).toContain(t.condition());
  expect(t.counted(spent)).toBeGreaterThanOrEqual(t.budget.maxTokens ?? t.budget.maxTokensPerDay!);
  expect(spent.status?.usage?.turns).toBeGreaterThanOrEqual(1);

  // Two comments past the budget: they wait, in order, and reach no model.
  const held = ['Held one: rename it.', 'Held two: test it.'].map(
    (body) => `${name}-ic-${gh.comment('o', 'r', pr, alice, body, 'MEMBER')}`,
  );
  await eventually(
    () => messages(name),
    (all) => held.every((n) => all.find((m) => m.metadata.name === n)?.status?.phase === 'AwaitingBudget'),
    {
      what: 'the two comments AwaitingBudget',
      timeoutMs: 30_000,
      describe: (all) => JSON.stringify(all.map((m) => [m.metadata.name, m.status])),
    },
  );
  for (const m of (await messages(name)).filter((x) => held.includes(x.metadata.name!))) {
    expect(m.status).toMatchObject({ phase: 'AwaitingBudget', reason: 'BudgetExhausted' });
    expect(m.status?.message).toContain(t.release);
  }

  // The session was told once: one notice, delivered, and once at the model.
  const notices = await eventually(
    async () => (await messages(name)).filter((m) => m.spec.source.type === 'budget'),
    (n) => n.length === 1 && n[0]!.status?.phase === 'Delivered',
    { what: 'the budget notice delivered', timeoutMs: 60_000, describe: (n) => JSON.stringify(n) },
  );
  expect(notices[0]!.metadata.name).toBe(t.notice());
  await promptsReaching(sandbox.stateDir, `[codemate message=${t.notice()}]`);
  await sleep(3000);
  expect(await promptsWith(sandbox.stateDir, `[codemate message=${t.notice()}]`)).toHaveLength(1);
  for (const n of held) {
    expect(await promptsWith(sandbox.stateDir, `[codemate message=${n}]`)).toHaveLength(0);
  }
  expect((await messages(name)).filter((m) => m.spec.source.type === 'budget')).toHaveLength(1);

  // Raising the budget delivers them, in order, each once.
  await kube.mergePatch({
    apiVersion: 'codemate.io/v1alpha1',
    kind: 'CodeMate',
    metadata: { name, namespace },
    spec: { budget: t.raised },
  });
  await eventually(
    () => messages(name),
    (all) => held.every((n) => all.find((m) => m.metadata.name === n)?.status?.phase === 'Delivered'),
    {
      what: 'the held comments delivered',
      timeoutMs: 60_000,
      describe: (all) => JSON.stringify(all.map((m) => [m.metadata.name, m.status])),
    },
  );
  for (const n of held) await promptsReaching(sandbox.stateDir, `[codemate message=${n}]`);
  const requests = (await modelRequests(sandbox.stateDir)).filter((r) => r.tools > 0);
  const arrival = (n: string) =>
    requests.flatMap((r) => (r.userTexts.some((x) => x.includes(`[codemate message=${n}]`)) ? [r.seq] : []));
  expect(arrival(held[0]!)).toHaveLength(1);
  expect(arrival(held[1]!)).toHaveLength(1);
  expect(arrival(held[0]!)[0]!).toBeLessThanOrEqual(arrival(held[1]!)[0]!);
  const all = requests.flatMap((r) => r.userTexts).join('\n');
  expect(all.indexOf(`[codemate message=${held[0]}]`)).toBeLessThan(
    all.indexOf(`[codemate message=${held[1]}]`),
  );
  await eventually(
    () => getCm(name),
    (c) => c.status?.conditions?.some((x) => x.type === 'WithinBudget' && x.status === 'True') ?? false,
    { what: 'WithinBudget True again', describe: (c) => JSON.stringify(c.status?.conditions) },
  );
}

describe('token budget', () => {
  // One turn of the real TUI costs a few thousand tokens at the local model server: 1000 is spent by
  // the first message.
  it('holds messages past the budget, tells the session once, and delivers them in order once raised', async () => {
    await spendThenRaise({
      name: 'pr-51',
      pr: 51,
      budget: { maxTokens: 1000 },
      notice: () => 'pr-51-budget-1000',
      condition: () => 'of its token budget of 1000',
      release: 'raise spec.budget.maxTokens',
      raised: { maxTokens: 100_000_000 },
      counted: (c) => tokensCounted(c.status?.usage),
    });
  }, 240_000);

  // The day's count is today's tokens (UTC), by the transcript entries' timestamps: the first message
  // spends today's 1000 without waiting for a day to pass. (Run across 00:00 UTC, the names would differ.)
  it('holds messages past the daily budget, names the day, and delivers them once it is raised', async () => {
    const today = utcDate(new Date());
    await spendThenRaise({
      name: 'pr-52',
      pr: 52,
      budget: { maxTokensPerDay: 1000 },
      notice: () => `pr-52-budget-${today}-1000`,
      condition: () => `on ${today} (UTC) of its daily token budget of 1000`,
      release: 'raise spec.budget.maxTokensPerDay',
      raised: { maxTokensPerDay: 100_000_000 },
      counted: (c) => {
        expect(c.status?.usage?.today?.date).toBe(today);
        return c.status?.usage?.today?.tokens ?? 0;
      },
    });
  }, 240_000);
});
