/**
 * The operator's session reports against the real apiserver and the fake GitHub, fed report lines as
 * `codemate-report --watch` prints them: one write per change, none while nothing changes, at most one
 * per interval under flapping with the latest state, the usage carried over a new workspace, and the
 * budget notice made once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { CodeMateMessage } from '../../src/api/message.js';
import type { KubeObject } from '../../src/clients/kube.js';
import { createLogger } from '../../src/observability/log.js';
import { codemateLookup, watchCodeMates, type CodeMateObject } from '../../src/operator/controller.js';
import { GitHubClients } from '../../src/operator/githubClients.js';
import { SessionReports } from '../../src/operator/sessionReports.js';
import { informerSupervision, type Watched } from '../../src/runtime/informers.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';
import { fakeReports } from '../helpers/reportStreams.js';
import { codemateObject, secretObject } from '../helpers/operator.js';

const cluster = useCluster('ssrep');
const gh = new FakeGitHub();
const logger = createLogger({ name: 'test', level: 'silent' });
const intervalMs = 1000;
let codemates: Watched<CodeMateObject>;
let reports: SessionReports;
/** The report stream of each pod, which the test writes lines into. */
const streams = new Map<string, (line: string) => void>();

type CM = CodeMate & KubeObject;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const get = (name: string) =>
  cluster.kube.get<CM>('codemate.io/v1alpha1', 'CodeMate', name, cluster.namespace);
const say = (pod: string, ...lines: string[]) => {
  for (const line of lines) streams.get(pod)!(`${line}\n`);
};
const statusesOf = (sha: string) =>
  gh.statuses.filter((s) => s.sha === sha).map((s) => s.description?.split(/[:; ]/)[0]);

/** A CodeMate whose session runs in `pod`, on pull request #number of o/r. */
async function runningCodeMate(name: string, pod: string, number: number, spec: object = {}) {
  gh.addPull('o', 'r', number, `branch-${number}`);
  const sha = gh.headSha('o', 'r', number);
  await cluster.kube.create(
    codemateObject(cluster.namespace, name, {
      repository: { url: 'https://github.com/o/r.git', pullRequest: number },
      ...spec,
    }),
  );
  await cluster.kube.patchStatus(
    { group: 'codemate.io', version: 'v1alpha1', plural: 'codemates', namespace: cluster.namespace, name },
    {
      phase: 'Running',
      podName: pod,
      pullRequest: { number, url: `https://github.com/o/r/pull/${number}`, state: 'open', headSha: sha },
    },
  );
  await eventually(
    async () => streams.has(pod),
    (open) => open,
    { what: `the report stream into ${pod}` },
  );
  return sha;
}

beforeAll(async () => {
  await gh.start();
  gh.addToken('ghp-report', { login: 'codemate-bot', id: 900 });
  await cluster.kube.create(secretObject(cluster.namespace, 'github-token', { token: 'ghp-report' }));
  codemates = watchCodeMates(cluster.kube, cluster.namespace, informerSupervision(logger));
  reports = new SessionReports({
    kube: cluster.kube,
    logger,
    github: new GitHubClients({ kube: cluster.kube, logger, githubApiUrl: gh.url }),
    codemate: codemateLookup(codemates),
    minIntervalMs: intervalMs,
    openReport: fakeReports(streams),
  });
  codemates.subscribe((_event, cm) => reports.sync(cm.metadata.namespace, cm.metadata.name));
  await codemates.start();
});

afterAll(async () => {
  reports?.stop();
  await codemates?.stop();
  await gh.stop();
});

describe('session reports', () => {
  it('writes each change once, nothing while nothing changes, and the latest state under flapping', async () => {
    const sha = await runningCodeMate('flap', 'pod-flap', 61);
    say('pod-flap', 'state ready', 'usage 0 0 0 0 0 ws-1');
    await eventually(
      async () => statusesOf(sha),
      (s) => s.join() === 'idle',
      { what: 'idle written' },
    );
    const cm = await eventually(
      () => get('flap'),
      (c) => c.status?.session?.state === 'idle',
      { what: 'status.session idle' },
    );
    expect(cm.status?.usage).toMatchObject({ inputTokens: 0, turns: 0, workspace: 'ws-1' });

    // Ten changes within the interval: one write at its end, of the state then.
    for (let i = 0; i < 5; i++) say('pod-flap', 'state busy', 'state idle');
    say('pod-flap', 'state busy');
    await eventually(
      async () => statusesOf(sha),
      (s) => s.length === 2,
      {
        what: 'the second write',
        describe: (s) => s.join(),
      },
    );
    expect(statusesOf(sha)).toEqual(['idle', 'working']);
    await sleep(2.5 * intervalMs);
    expect(statusesOf(sha)).toEqual(['idle', 'working']);
    expect((await get('flap')).status?.session?.state).toBe('working');

    // The same state again is no change; a tick is none either.
    say('pod-flap', 'state busy', 'tick');
    await sleep(1.5 * intervalMs);
    expect(statusesOf(sha)).toEqual(['idle', 'working']);

    // The turn ends, with its usage: one write of each, together.
    say('pod-flap', 'usage 100 20 300 5 1 ws-1', 'state idle');
    await eventually(
      async () => statusesOf(sha),
      (s) => s.length === 3,
      { what: 'the third write' },
    );
    const idle = await eventually(
      () => get('flap'),
      (c) => c.status?.usage?.turns === 1,
      { what: 'the usage of the turn' },
    );
    expect(idle.status?.usage).toMatchObject({
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 300,
      cacheCreationTokens: 5,
      turns: 1,
    });
    expect(idle.status?.session?.state).toBe('idle');
    expect(gh.statuses.filter((s) => s.sha === sha).map((s) => s.state)).toEqual([
      'success',
      'pending',
      'success',
    ]);
    // A push moves the head: the state goes onto the new head, once.
    gh.push('o', 'r', 61);
    const newSha = gh.headSha('o', 'r', 61);
    await cluster.kube.patchStatus(
      {
        group: 'codemate.io',
        version: 'v1alpha1',
        plural: 'codemates',
        namespace: cluster.namespace,
        name: 'flap',
      },
      { pullRequest: { headSha: newSha } },
    );
    await eventually(
      async () => statusesOf(newSha),
      (s) => s.join() === 'idle',
      {
        what: 'idle on the new head',
      },
    );
    await sleep(1.5 * intervalMs);
    expect(statusesOf(newSha)).toEqual(['idle']);
  });

  it('carries the usage over to a new workspace, and tells the session once when the budget is spent', async () => {
    await runningCodeMate('spend', 'pod-spend', 62, { budget: { maxTokens: 1000 } });
    say('pod-spend', 'state idle', 'usage 600 100 0 0 1 ws-a');
    await eventually(
      () => get('spend'),
      (c) => c.status?.usage?.turns === 1,
      { what: 'the first usage' },
    );
    // The pod was replaced without storage: a new workspace starts at zero; the totals carry on.
    say('pod-spend', 'usage 250 40 0 0 1 ws-b');
    const spent = await eventually(
      () => get('spend'),
      (c) => c.status?.usage?.turns === 2,
      { what: 'the usage carried over' },
    );
    expect(spent.status?.usage).toMatchObject({
      inputTokens: 850,
      outputTokens: 140,
      turns: 2,
      workspace: 'ws-b',
      carried: { inputTokens: 600, outputTokens: 100, turns: 1 },
    });
    const notices = () =>
      cluster.kube
        .list<CodeMateMessage & KubeObject>('codemate.io/v1alpha1', 'CodeMateMessage', cluster.namespace)
        .then((all) => all.filter((m) => m.spec.source.type === 'budget'));
    expect(await notices()).toHaveLength(0);
    // Past 1000 counted tokens: the notice, once, however many turns follow.
    say('pod-spend', 'usage 300 60 0 0 2 ws-b');
    const made = await eventually(notices, (n) => n.length === 1, { what: 'the budget notice' });
    expect(made[0]!.metadata.name).toBe('spend-budget-1000');
    expect(made[0]!.spec.body).toContain('1060 of 1000 tokens');
    say('pod-spend', 'usage 400 70 0 0 3 ws-b');
    await eventually(
      () => get('spend'),
      (c) => c.status?.usage?.turns === 4,
      { what: 'a later turn recorded' },
    );
    expect(await notices()).toHaveLength(1);
  });

  it("records today's tokens, and tells the session once a day when the daily budget is spent", async () => {
    await runningCodeMate('daily', 'pod-daily', 63, { budget: { maxTokensPerDay: 500 } });
    const today = new Date().toISOString().slice(0, 10);
    say('pod-daily', 'state idle', 'usage 300 40 0 0 1 ws-d', `day ${today} 340`);
    const first = await eventually(
      () => get('daily'),
      (c) => c.status?.usage?.today?.tokens === 340,
      { what: "today's tokens", describe: (c) => JSON.stringify(c.status?.usage) },
    );
    expect(first.status?.usage?.today).toEqual({ date: today, tokens: 340 });
    const notices = () =>
      cluster.kube
        .list<CodeMateMessage & KubeObject>('codemate.io/v1alpha1', 'CodeMateMessage', cluster.namespace)
        .then((all) => all.filter((m) => m.spec.codemate === 'daily' && m.spec.source.type === 'budget'));
    expect(await notices()).toHaveLength(0);
    say('pod-daily', 'usage 500 60 0 0 2 ws-d', `day ${today} 560`);
    const made = await eventually(notices, (n) => n.length === 1, { what: 'the daily budget notice' });
    expect(made[0]!.metadata.name).toBe(`daily-budget-${today}-500`);
    expect(made[0]!.spec.body).toContain('daily token budget of 500');
    // The next day's count starts again (and its limit would tell the session again).
    say('pod-daily', 'day 2999-01-01 0');
    await eventually(
      () => get('daily'),
      (c) => c.status?.usage?.today?.date === '2999-01-01',
      { what: "the next day's count", describe: (c) => JSON.stringify(c.status?.usage) },
    );
    expect(await notices()).toHaveLength(1);
  });
});
