/**
 * charts/codemate on the sandbox's default runtime: into a sandbox that runs no operator of its own
 * (`dev up --no-operator`), `helm install` the chart; the local pod runtime runs the chart's operator and
 * webhook pods from the project image's entrypoint, as host processes. A CodeMate created after the
 * install gets its session; a signed comment delivery to the chart's webhook pods reaches the model once;
 * `helm upgrade` with a changed value rolls the operator, and the new pods deliver; `helm uninstall` leaves nothing of the release
 * running or stored, except what Helm keeps on purpose (test/integration/chart.test.ts checks the objects
 * by name; this checks by the release's label, and the host processes).
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { resolveHelm } from '../../src/sandbox/helm.js';
import { runProgram } from '../../src/sandbox/runProgram.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { promptsReaching, promptsWith } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import { startGitHubSandbox, type GitHubSandbox } from '../helpers/sandbox.js';
import { commentOnPullRequestPayload, replayDelivery } from '../helpers/webhook.js';

const binDir = inject('binDir');
const chart = path.join(repoRoot, 'charts', 'codemate');
const release = 'cm';
const system = 'codemate-system';
const namespace = 'work';
const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;
let helmBin: string;
/** Milliseconds each step took, printed at the end for docs/sandbox.md. */
const timings: Record<string, number> = {};

type Pod = KubeObject & {
  metadata: { ownerReferences?: Array<{ name: string }> };
  status?: {
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{ ready?: boolean; started?: boolean }>;
  };
};
type Deployment = KubeObject & { spec: { replicas: number } };

const helm = (...args: string[]) =>
  runProgram(helmBin, [...args, '--namespace', system, '--kubeconfig', sandbox.env.KUBECONFIG!]);

/**
 * The Deployment's pods, once as many as it asks for are ready by the local pod runtime's probes: only the
 * runtime sets `started`, so a ready container that is also started is one whose probe passed on the host.
 */
async function readyPods(deployment: string, timeoutMs = 90_000): Promise<Pod[]> {
  const { spec } = await kube.get<Deployment>('apps/v1', 'Deployment', deployment, system);
  return eventually(
    async () =>
      (
        await kube.list<Pod>('v1', 'Pod', system, { labelSelector: `app.kubernetes.io/name=${deployment}` })
      ).filter((p) => !p.metadata.deletionTimestamp),
    (pods) =>
      pods.length === spec.replicas &&
      pods.every((p) => p.status?.containerStatuses?.every((c) => c.ready && c.started)),
    {
      what: `${deployment}: ${spec.replicas} pods ready on the host`,
      timeoutMs,
      describe: (pods) => JSON.stringify(pods.map((p) => [p.metadata.name, p.status?.containerStatuses])),
    },
  );
}

/** The host port that stands for a pod's container port: the runtime's kwok PortForward says. */
async function hostPort(pod: string, containerPort: number): Promise<number> {
  const forward = await kube.get<
    KubeObject & { spec: { forwards: Array<{ ports: number[]; target: { port: number } }> } }
  >('kwok.x-k8s.io/v1alpha1', 'PortForward', pod, system);
  const target = forward.spec.forwards.find((f) => f.ports.includes(containerPort))?.target.port;
  if (!target) throw new Error(`pod ${pod} forwards no port ${containerPort}`);
  return target;
}

/** The records of the pods the local pod runtime runs (pod.json in each pod's directory). */
async function localPodRecords(): Promise<Array<{ name: string; pid: number }>> {
  const dir = path.join(sandbox.stateDir, 'pods');
  const records: Array<{ name: string; pid: number }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const record = await readFile(path.join(dir, entry.name, 'pod.json'), 'utf8').catch(() => undefined);
    if (record) records.push(JSON.parse(record) as { name: string; pid: number });
  }
  return records;
}

const localPods = async () => (await localPodRecords()).map((r) => r.name);

/** The environment the local pod runtime started a pod's process with. */
async function localPodEnv(pod: string): Promise<Record<string, string>> {
  const record = (await localPodRecords()).find((r) => r.name === pod);
  if (!record) throw new Error(`no local process for pod ${pod}`);
  const environ = await readFile(`/proc/${record.pid}/environ`, 'utf8');
  return Object.fromEntries(
    environ
      .split('\0')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/**
 * A comment on o/r#7, delivered signed to every webhook replica of the chart (the same delivery, as
 * GitHub's retries may land on any): it becomes one message and reaches the model once. Resolves with the
 * milliseconds from the first delivery to the model.
 */
async function commentReachesModelOnce(text: string): Promise<number> {
  const id = gh.comment('o', 'r', 7, alice, text, 'MEMBER');
  const payload = await commentOnPullRequestPayload(gh.url, id);
  const secret = await kube.get<KubeObject & { data: Record<string, string> }>(
    'v1',
    'Secret',
    `${release}-webhook-secret`,
    system,
  );
  const delivery = randomUUID();
  const webhooks = await readyPods(`${release}-webhook`);
  const sent = Date.now();
  for (const pod of webhooks) {
    const port = await hostPort(pod.metadata.name!, 8080);
    const answer = await replayDelivery({
      dir: sandbox.stateDir,
      env: {
        GITHUB_WEBHOOK_SECRET: Buffer.from(secret.data.secret!, 'base64').toString(),
        CODEMATE_WEBHOOK_URL: `http://127.0.0.1:${port}`,
      },
      event: 'issue_comment',
      payload,
      delivery,
    });
    expect(answer).toMatchObject({ status: 'stored' });
  }
  const marker = `[codemate message=pr-7-ic-${id}]`;
  await promptsReaching(sandbox.stateDir, marker, { timeoutMs: 60_000 });
  const elapsed = Date.now() - sent;
  await eventually(
    () =>
      kube.get<KubeObject & { status?: { phase?: string } }>(
        'codemate.io/v1alpha1',
        'CodeMateMessage',
        `pr-7-ic-${id}`,
        namespace,
      ),
    (m) => m.status?.phase === 'Delivered',
    { what: 'message Delivered' },
  );
  const prompts = await promptsWith(sandbox.stateDir, marker);
  expect(prompts).toHaveLength(1);
  expect(prompts[0]).toContain(text);
  return elapsed;
}

beforeAll(async () => {
  helmBin = await resolveHelm({ cacheDir: cacheDir(readEnv()) });
  sandbox = await startGitHubSandbox(binDir, session, {}, ['--no-operator']);
  ({ gh, kube } = sandbox);
}, 20 * 60_000);

afterAll(async () => {
  if (Object.keys(timings).length > 0)
    process.stderr.write(`chart timings (ms): ${JSON.stringify(timings)}\n`);
  await sandbox?.stop();
});

describe('the chart on the process runtime', () => {
  it("installs into a sandbox without its own operator, and the chart's Deployments run as host processes", async () => {
    // A later `dev up` without the flag keeps the sandbox as it runs: without an operator of its own.
    const again = await runCli(['dev', 'up', '--state-dir', sandbox.stateDir], {
      env: { CODEMATE_BIN_DIR: binDir },
    });
    expect(again.code, again.stderr).toBe(0);
    const status = await runCli(['dev', 'status', '-o', 'json', '--state-dir', sandbox.stateDir]);
    const running = (JSON.parse(status.stdout) as { components: Array<{ name: string }> }).components.map(
      (c) => c.name,
    );
    expect(running).toContain('codemate-pod-runtime');
    expect(running).not.toContain('codemate-operator');
    expect(running).not.toContain('codemate-webhook');

    const started = Date.now();
    await helm(
      'install',
      release,
      chart,
      '--create-namespace',
      // The sandbox applies the user roles itself (manifests/user-rbac.yaml).
      '--set',
      'userRoles.create=false',
      '--set',
      `github.apiUrl=${gh.url}`,
      '--wait',
      '--timeout=120s',
    );
    // Helm waited for the Deployments to be ready, and only the runtime's probes make a pod ready here
    // (kwok's pod-ready stage leaves it not ready): so they are, at once.
    const operators = await readyPods(`${release}-operator`, 0);
    const webhooks = await readyPods(`${release}-webhook`, 0);
    timings.installToReady = Date.now() - started;
    expect(operators).toHaveLength(2);
    expect(webhooks).toHaveLength(2);
    // Two replicas of each on one host: each has a host port of its own for its container port.
    const ports = await Promise.all([
      ...operators.map((p) => hostPort(p.metadata.name!, 8081)),
      ...webhooks.map((p) => hostPort(p.metadata.name!, 8080)),
    ]);
    expect(new Set(ports).size).toBe(4);
    for (const port of ports.slice(2)) {
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    }
    expect(await localPods()).toEqual(
      expect.arrayContaining([...operators, ...webhooks].map((p) => p.metadata.name)),
    );
    // What the container would have had, translated for the host: its port, its mounted secret file, and
    // its ServiceAccount's credentials, with a token bound to the pod.
    const webhook = webhooks[0]!.metadata.name!;
    const env = await localPodEnv(webhook);
    expect(env.PORT).toBe(String(await hostPort(webhook, 8080)));
    expect(env.GITHUB_WEBHOOK_SECRET_FILE).toMatch(new RegExp(`^${sandbox.stateDir}/pods/.+/secret$`));
    const kubeconfig = JSON.parse(await readFile(env.KUBECONFIG!, 'utf8')) as {
      users: Array<{ user: { token: string } }>;
    };
    const claims = JSON.parse(
      Buffer.from(kubeconfig.users[0]!.user.token.split('.')[1]!, 'base64url').toString(),
    ) as { sub: string; 'kubernetes.io': { pod: { name: string } } };
    expect(claims.sub).toBe(`system:serviceaccount:${system}:${release}-webhook`);
    expect(claims['kubernetes.io'].pod.name).toBe(webhook);
  });

  it("gives a CodeMate created after the install its session, and the chart's webhook delivers a comment to it once", async () => {
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
    await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
    const created = Date.now();
    // A poll interval far longer than the test: what reaches the session came by webhook.
    await kube.create(
      codemateObject(namespace, 'pr-7', {
        repository: { url: 'https://github.com/o/r.git', branch: 'feature', pullRequest: 7 },
        monitoring: { intervalSeconds: 600 },
      }),
    );
    await eventually(
      () => kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', 'pr-7', namespace),
      (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === session.login,
      { what: 'CodeMate Running, with its first poll done', timeoutMs: 90_000 },
    );
    timings.codemateToRunning = Date.now() - created;

    timings.commentToModel = await commentReachesModelOnce('Chart webhook says: please rename the helper.');
  });

  it('rolls the operator on an upgrade with a changed value', async () => {
    const before = (await readyPods(`${release}-operator`)).map((p) => p.metadata.name!);
    const started = Date.now();
    await helm('upgrade', release, chart, '--reuse-values', '--set', 'operator.logLevel=debug');
    const after = await eventually(
      () => readyPods(`${release}-operator`, 5_000).catch(() => []),
      (pods) => pods.length === 2 && pods.every((p) => !before.includes(p.metadata.name!)),
      { what: 'two new operator pods ready', timeoutMs: 120_000 },
    );
    timings.upgradeToRolled = Date.now() - started;
    // The new pods' processes run with the new value.
    for (const pod of after) expect((await localPodEnv(pod.metadata.name!)).LOG_LEVEL).toBe('debug');
    await eventually(localPods, (names) => before.every((name) => !names.includes(name)), {
      what: "the old operator pods' processes stopped",
    });
    // A new replica leads now, and delivers.
    timings.commentToModelAfterUpgrade = await commentReachesModelOnce('After the upgrade: one more thing.');
  });

  it('uninstalls, leaving none of the release except what Helm keeps on purpose, and no process of it', async () => {
    await helm('uninstall', release, '--wait');
    const selector = `app.kubernetes.io/instance=${release}`;
    const kinds: Array<[string, string, string?]> = [
      ['apps/v1', 'Deployment', system],
      ['apps/v1', 'ReplicaSet', system],
      ['v1', 'Pod', system],
      ['v1', 'Service', system],
      ['v1', 'ServiceAccount', system],
      ['v1', 'Secret', system],
      ['policy/v1', 'PodDisruptionBudget', system],
      ['networking.k8s.io/v1', 'NetworkPolicy', system],
      ['rbac.authorization.k8s.io/v1', 'Role', system],
      ['rbac.authorization.k8s.io/v1', 'RoleBinding', system],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
      ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
      ['admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicy'],
      ['admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicyBinding'],
    ];
    const left = await eventually(
      async () => {
        const found: string[] = [];
        for (const [apiVersion, kind, ns] of kinds) {
          for (const o of await kube.list(apiVersion, kind, ns, { labelSelector: selector }))
            found.push(`${kind}/${o.metadata.name}`);
        }
        return found;
      },
      // The generated webhook secret is kept on purpose: GitHub still holds its value (docs/install.md).
      (found) => found.every((o) => o === `Secret/${release}-webhook-secret`),
      { what: "the release's objects deleted", timeoutMs: 60_000 },
    );
    expect(left).toEqual([`Secret/${release}-webhook-secret`]);
    await eventually(
      localPods,
      (names) =>
        names.every((n) => !n.startsWith(`${release}-operator`) && !n.startsWith(`${release}-webhook`)),
      { what: "the release's host processes stopped" },
    );
    await expect(
      kube.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'codemates.codemate.io'),
    ).resolves.toBeDefined();
  });
});
