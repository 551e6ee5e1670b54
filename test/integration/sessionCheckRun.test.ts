/**
 * The session's state as a check run in App mode, against the real apiserver and the fake GitHub, fed
 * report lines as `codemate-report --watch` prints them: one check run `codemate/session` per head, one
 * write per change (a new run for working after a completed state, which GitHub does not reopen), no
 * commit status, and after an operator restart the run left in progress is found and completed, not
 * doubled.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionalCache, GitHub } from '../../src/clients/github.js';
import { sessionPermissions } from '../../src/clients/githubApp.js';
import { createLogger } from '../../src/observability/log.js';
import { codemateLookup, watchCodeMates, type CodeMateObject } from '../../src/operator/controller.js';
import { GitHubClients } from '../../src/operator/githubClients.js';
import { SessionReports } from '../../src/operator/sessionReports.js';
import { checkRunFor } from '../../src/operator/sessionReport.js';
import { informerSupervision, type Watched } from '../../src/runtime/informers.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';
import { fakeReports } from '../helpers/reportStreams.js';
import { codemateObject } from '../helpers/operator.js';

const cluster = useCluster('sschk');
const gh = new FakeGitHub();
const logger = createLogger({ name: 'test', level: 'silent' });
const intervalMs = 1000;
const appId = 5151;
let keyDir: string;
let codemates: Watched<CodeMateObject>;
let reports: SessionReports;
/** The report stream of each pod, which the test writes lines into. */
const streams = new Map<string, (line: string) => void>();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (pod: string, ...lines: string[]) => {
  for (const line of lines) streams.get(pod)!(`${line}\n`);
};
/** The writes of check runs on `sha`: method, status or conclusion, and the run's id. */
const writesOn = (sha: string) =>
  gh.checkRunWrites
    .filter((w) => w.sha === sha)
    .map((w) => ({ method: w.method, shown: w.conclusion ?? w.status, id: w.id }));

/** Patches the status of the CodeMate `app`, as the reconcile and the poller do. */
const setStatus = (status: object) =>
  cluster.kube.patchStatus(
    {
      group: 'codemate.io',
      version: 'v1alpha1',
      plural: 'codemates',
      namespace: cluster.namespace,
      name: 'app',
    },
    status,
  );

/** An operator's session reports, as `codemate operator` makes them, with the operator's App. */
function startReports(): SessionReports {
  const made = new SessionReports({
    kube: cluster.kube,
    logger,
    github: new GitHubClients({
      kube: cluster.kube,
      logger,
      githubApiUrl: gh.url,
      app: { appId, privateKeyFile: path.join(keyDir, 'app.pem') },
    }),
    codemate: codemateLookup(codemates),
    minIntervalMs: intervalMs,
    openReport: fakeReports(streams),
  });
  codemates.subscribe((_event, cm) => made.sync(cm.metadata.namespace, cm.metadata.name));
  return made;
}

beforeAll(async () => {
  await gh.start();
  const { privateKey } = gh.createApp(appId, 'cm-checks');
  gh.installApp('o', ['o/r'], { ...sessionPermissions });
  gh.addToken('ghp-pat', { login: 'pat-user', id: 900 });
  keyDir = await mkdtemp(path.join(tmpdir(), 'sschk-'));
  await writeFile(path.join(keyDir, 'app.pem'), privateKey, { mode: 0o600 });
  codemates = watchCodeMates(cluster.kube, cluster.namespace, informerSupervision(logger));
  await codemates.start();
  reports = startReports();
  // The CodeMates the informer already holds (none yet) get their sync from the subscription.
});

afterAll(async () => {
  reports?.stop();
  await codemates?.stop();
  await gh.stop();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

describe('the session state as a check run (App mode)', () => {
  const pod = 'pod-app';
  let sha = '';

  it('keeps one check run per head, one write per change, and writes no commit status', async () => {
    gh.addPull('o', 'r', 71, 'branch-71');
    sha = gh.headSha('o', 'r', 71);
    // No token Secret: App mode, as the operator's App.
    await cluster.kube.create(
      codemateObject(cluster.namespace, 'app', {
        repository: { url: 'https://github.com/o/r.git', pullRequest: 71 },
        github: { user: { name: 'CodeMate', email: 'codemate@example.com' } },
      }),
    );
    await setStatus({
      phase: 'Running',
      podName: pod,
      pullRequest: { number: 71, url: 'https://github.com/o/r/pull/71', state: 'open', headSha: sha },
    });
    await eventually(
      async () => streams.has(pod),
      (open) => open,
      { what: `the report stream into ${pod}` },
    );

    // Each state a change, an interval apart: each is written.
    const change = async (state: string, writes: number) => {
      await sleep(1.2 * intervalMs);
      say(pod, `state ${state}`);
      await eventually(
        async () => writesOn(sha),
        (w) => w.length === writes,
        { what: `write ${writes}: ${state}`, describe: (w) => JSON.stringify(w) },
      );
    };
    await change('ready', 1);
    // A turn: working is a new run (a completed one is not reopened), its end completes that one.
    await change('busy', 2);
    await change('idle', 3);
    // A dialog, then its turn's end: each a change of the completed run's conclusion.
    await change('blocked', 4);
    await change('idle', 5);
    const writes = writesOn(sha);
    const [first, second] = [writes[0]!.id, writes[1]!.id];
    expect(writes).toEqual([
      { method: 'POST', shown: 'success', id: first },
      { method: 'POST', shown: 'in_progress', id: second },
      { method: 'PATCH', shown: 'success', id: second },
      { method: 'PATCH', shown: 'action_required', id: second },
      { method: 'PATCH', shown: 'success', id: second },
    ]);
    const run = gh.checkRuns.find((c) => c.id === second)!;
    expect(run).toMatchObject({
      name: 'codemate/session',
      repo: 'o/r',
      appId,
      by: 'cm-checks[bot]',
      title: 'idle: waiting for input',
      detailsUrl: 'https://github.com/o/r/pull/71',
    });
    expect(run.summary).toContain(`codemate attach app -n ${cluster.namespace}`);
    // Nothing changes: nothing is written; and no commit status in App mode.
    say(pod, 'state idle', 'tick');
    await sleep(2.5 * intervalMs);
    expect(writesOn(sha)).toHaveLength(5);
    expect(gh.statuses).toHaveLength(0);

    // A push moves the head: a new run there, once.
    gh.push('o', 'r', 71);
    const newSha = gh.headSha('o', 'r', 71);
    await setStatus({ pullRequest: { headSha: newSha } });
    await eventually(
      async () => writesOn(newSha),
      (w) => w.length === 1,
      { what: 'idle on the new head' },
    );
    expect(writesOn(newSha)[0]).toMatchObject({ method: 'POST', shown: 'success' });
    sha = newSha;
  });

  it('after an operator restart, completes the run left in progress instead of making another', async () => {
    await sleep(1.2 * intervalMs);
    say(pod, 'state busy');
    await eventually(
      async () => writesOn(sha),
      (w) => w.at(-1)?.shown === 'in_progress',
      { what: 'working', describe: (w) => JSON.stringify(w) },
    );
    const working = writesOn(sha).at(-1)!.id;
    const before = writesOn(sha).length;
    // The operator restarts: a new one knows nothing of what the old one wrote.
    reports.stop();
    streams.delete(pod);
    reports = startReports();
    reports.sync(cluster.namespace, 'app');
    await eventually(
      async () => streams.has(pod),
      (open) => open,
      { what: 'the report stream opened again' },
    );
    say(pod, 'state idle');
    await eventually(
      async () => writesOn(sha),
      (w) => w.length === before + 1,
      { what: 'idle after the restart', describe: (w) => JSON.stringify(w) },
    );
    expect(writesOn(sha).at(-1)).toEqual({ method: 'PATCH', shown: 'success', id: working });
    // The newest run of the head is the one the pull request shows: idle.
    const listed = gh.checkRuns.filter((c) => c.sha === sha).sort((a, b) => b.id - a.id)[0]!;
    expect(listed).toMatchObject({ id: working, status: 'completed', conclusion: 'success' });
  });

  it('is refused to a personal access token, as GitHub refuses it', async () => {
    const pat = new GitHub({ token: 'ghp-pat', baseUrl: gh.url, cache: new ConditionalCache() });
    const run = checkRunFor('idle', { name: 'x', namespace: 'y' }, undefined, undefined);
    await expect(pat.createCheckRun('o', 'r', sha, run)).rejects.toMatchObject({
      status: 403,
      message: expect.stringContaining('Resource not accessible by personal access token'),
    });
  });
});
