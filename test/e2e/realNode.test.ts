/**
 * CodeMate on the sandbox's real node (`dev up --runtime containerd --images --no-operator`), installed
 * the way a cluster admin installs it: the sandbox runs no operator or webhook of its own, and
 * `helm install charts/codemate` runs them as containers of the root image under kubelet and containerd,
 * as the chart's ServiceAccounts, reaching the apiserver through the `kubernetes` Service. Everything
 * delivered below is delivered by that in-cluster operator alone.
 *
 * The session pod runs the session image built from setup/docker/Dockerfile.codemate, in a namespace that
 * enforces the restricted Pod Security profile, with the real Claude Code talking to the sandbox's model
 * server. A comment by the chart's webhook and one by poll each reach the model once, through the real
 * kubelet's exec; `codemate attach` gets a TTY and follows a resize; a PVC-backed session keeps its
 * workspace across suspend and resume. Last, the chart is uninstalled and manifests/ take over: their
 * operator and webhook, as their own ServiceAccounts, deliver a comment once.
 *
 * Pods reach neither the host's loopback nor GitHub. The sandbox's model server listens on the node's
 * address; the fake GitHub is forwarded there; the session's git fetches o/r from a `git daemon` there
 * (CODEMATE_SANDBOX_GIT_REWRITE, which `dev up` hands to session pods through a
 * MutatingAdmissionPolicy: src/sandbox/sessionEnv.ts). The CodeMates name o/r by its ssh URL: the image's
 * entrypoint logs in with gh for https URLs only, and gh would call api.github.com.
 *
 * It needs root, buildah and busybox (the node's and the images' packages install at `dev up`), and is
 * skipped otherwise. One containerd sandbox runs per host, so nothing else may run one meanwhile.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import type { MessageSpec } from '../../src/api/message.js';
import type { Kube, KubeObject } from '../../src/clients/kube.js';
import { imageRepositories } from '../../src/config/defaults.js';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { manifestsDir } from '../../src/config/packagePaths.js';
import { realNodeIp, realNodeName } from '../../src/sandbox/components.js';
import { resolveHelm } from '../../src/sandbox/helm.js';
import { runProgram } from '../../src/sandbox/runProgram.js';
import { freePort } from '../../src/clients/ports.js';
import { cliPath, repoRoot, runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import type { FakeGitHub } from '../helpers/fakeGitHub.js';
import { expectedAtModel, promptsReaching, promptsWith, receivedPrompts } from '../helpers/modelLog.js';
import { codemateObject, secretObject } from '../helpers/operator.js';
import {
  forwardToLoopback,
  podShell,
  sessionPod,
  startGitHubSandbox,
  type GitHubSandbox,
} from '../helpers/sandbox.js';
import { commentOnPullRequestPayload, replayDelivery } from '../helpers/webhook.js';

const run = promisify(execFile);
const binDir = inject('binDir');
const isRoot = process.getuid?.() === 0;
const found = (file: string) =>
  access(file, fsConstants.X_OK).then(
    () => true,
    () => false,
  );
const hasTools = (await found('/usr/bin/buildah')) && (await found('/bin/busybox'));

const session = { login: 'codemate-bot', id: 900 };
const alice = { login: 'alice', id: 901 };
const namespace = 'realnode';
const system = 'codemate-system';
const release = 'cm';
const repoUrl = 'ssh://git@github.com/o/r.git';
let sandbox: GitHubSandbox;
let gh: FakeGitHub;
let kube: Kube;
let stateDir: string;
let kubeconfig: string;
let gitDaemon: ChildProcess | undefined;
let githubForward: Awaited<ReturnType<typeof forwardToLoopback>> | undefined;
let helmBin: string;
/** Where signed deliveries go: the in-cluster webhook's pod address, and its secret. */
let webhookTarget: { url: string; secretFile: string };

type Message = KubeObject & { spec: MessageSpec; status?: { phase?: string } };
type Pod = KubeObject & {
  spec: { nodeName?: string; serviceAccountName?: string; containers: Array<{ image: string }> };
  status?: {
    podIP?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
  };
};
type Deployment = KubeObject & { spec: { replicas: number }; status?: { availableReplicas?: number } };
const messages = () => kube.list<Message>('codemate.io/v1alpha1', 'CodeMateMessage', namespace);
const codemate = (name: string) =>
  kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, namespace);
const cli = (args: string[]) => runCli([...args, '-n', namespace], { env: { KUBECONFIG: kubeconfig } });
const shell = (pod: string, script: string) => podShell(binDir, kubeconfig, namespace)(pod, script);
const log = (text: string) => process.stderr.write(`[realnode] ${text}\n`);
const helm = (...args: string[]) =>
  runProgram(helmBin, [...args, '--namespace', system, '--kubeconfig', kubeconfig]);

/** Waits until the Deployments are available; resolves with their pods, by `app.kubernetes.io/name`. */
async function available(names: string[]): Promise<Pod[]> {
  for (const name of names) {
    await eventually(
      () => kube.get<Deployment>('apps/v1', 'Deployment', name, system),
      (d) => d.status?.availableReplicas === d.spec.replicas,
      { what: `${name} available`, timeoutMs: 180_000 },
    );
  }
  const pods = await kube.list<Pod>('v1', 'Pod', system);
  return pods.filter(
    (p) =>
      !p.metadata.deletionTimestamp && names.includes(p.metadata.labels?.['app.kubernetes.io/name'] ?? ''),
  );
}

/** The operator pod that holds the leader Lease, once one of `operators` does. */
async function leader(operators: Pod[]): Promise<string> {
  const lease = await eventually(
    () =>
      kube.get<KubeObject & { spec?: { holderIdentity?: string } }>(
        'coordination.k8s.io/v1',
        'Lease',
        'codemate-operator',
        system,
      ),
    (l) => operators.some((p) => p.metadata.name === l.spec?.holderIdentity),
    { what: 'an operator pod holds the Lease', timeoutMs: 90_000 },
  );
  return lease.spec!.holderIdentity!;
}

const commentPayload = (id: number) => commentOnPullRequestPayload(gh.url, id);

/** Signs and sends a comment's delivery to the in-cluster webhook (a pod address: the host reaches it). */
async function replayComment(id: number): Promise<Record<string, unknown>> {
  return replayDelivery({
    dir: stateDir,
    env: { CODEMATE_WEBHOOK_URL: webhookTarget.url, GITHUB_WEBHOOK_SECRET_FILE: webhookTarget.secretFile },
    event: 'issue_comment',
    payload: await commentPayload(id),
  });
}

/** Delivered once, and exactly its framed text reached the model once; resolves with the latency. */
async function reachesModelOnce(name: string, since: number): Promise<number> {
  const stored = await eventually(
    messages,
    (ms) => ms.find((m) => m.metadata.name === name)?.status?.phase === 'Delivered',
    { what: `${name} delivered`, timeoutMs: 60_000 },
  );
  const prompts = await promptsReaching(stateDir, `[codemate message=${name}]`, { timeoutMs: 60_000 });
  const latency = Date.now() - since;
  expect(prompts).toHaveLength(1);
  const pod = await sessionPod(kube, namespace, 'pr-7');
  const expected = await expectedAtModel(
    kube,
    shell,
    namespace,
    pod,
    stored.find((m) => m.metadata.name === name)!,
  );
  expect((await receivedPrompts(stateDir)).filter((p) => p === expected)).toHaveLength(1);
  return latency;
}

/** How long the pod took from creation to Ready, by its own timestamps. */
function createdToReady(pod: Pod): number {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  return Date.parse(ready!.lastTransitionTime!) - new Date(pod.metadata.creationTimestamp!).getTime();
}

describe.skipIf(!isRoot || !hasTools)('a CodeMate on the real node (needs root, buildah, busybox)', () => {
  beforeAll(async () => {
    const gitPort = await freePort();
    const started = Date.now();
    sandbox = await startGitHubSandbox(
      binDir,
      session,
      { CODEMATE_SANDBOX_GIT_REWRITE: `ssh://git@github.com/=git://${realNodeIp}:${gitPort}/` },
      ['--runtime', 'containerd', '--images', '--no-operator'],
    );
    log(`dev up --runtime containerd --images --no-operator in ${Date.now() - started} ms`);
    ({ gh, stateDir, kube } = sandbox);
    kubeconfig = path.join(stateDir, 'kubeconfig');
    helmBin = await resolveHelm({ cacheDir: cacheDir(readEnv()) });
    githubForward = await forwardToLoopback(realNodeIp, Number(new URL(gh.url).port));
    // The node's address exists only while the sandbox runs.
    gitDaemon = spawn(
      'git',
      [
        'daemon',
        '--reuseaddr',
        '--export-all',
        `--base-path=${sandbox.repos}`,
        `--listen=${realNodeIp}`,
        `--port=${gitPort}`,
        sandbox.repos,
      ],
      { stdio: 'ignore' },
    );
    await kube.create({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
    await kube.create(secretObject(namespace, 'github-token', { token: 'ghp-session-token' }));
    await kube.create(secretObject(namespace, 'anthropic-key', { token: 'x' }));
  }, 900_000);

  afterAll(async () => {
    gitDaemon?.kill();
    await githubForward?.close();
    await sandbox?.stop();
  }, 300_000);

  it('installs the chart into a sandbox without its own operator: its Deployments run as containers of the root image', async () => {
    const status = await runCli(['dev', 'status', '-o', 'json', '--state-dir', stateDir]);
    const components = (JSON.parse(status.stdout) as { components: Array<{ name: string }> }).components;
    expect(components.map((c) => c.name)).not.toContain('codemate-operator');
    expect(components.map((c) => c.name)).not.toContain('codemate-webhook');

    const started = Date.now();
    await helm(
      'install',
      release,
      path.join(repoRoot, 'charts', 'codemate'),
      '--create-namespace',
      // The sandbox applies the user roles itself (manifests/user-rbac.yaml).
      '--set',
      'userRoles.create=false',
      '--set',
      `github.apiUrl=http://${realNodeIp}:${githubForward!.port}`,
      // Every poll writes status.lastMonitorCheck: the tests tell a poll by it.
      '--set',
      'operator.monitorReportSeconds=0',
      '--wait',
      '--timeout=300s',
    );
    const pods = await available([`${release}-operator`, `${release}-webhook`]);
    log(`helm install → Deployments available in ${Date.now() - started} ms`);
    expect(pods).toHaveLength(4);
    for (const pod of pods) {
      expect(pod.spec.serviceAccountName).toBe(pod.metadata.labels?.['app.kubernetes.io/name']);
      expect(pod.spec.nodeName).toBe(realNodeName);
      expect(pod.spec.containers[0]!.image).toBe(`${imageRepositories.codemate}:0.1.0`);
    }
    // The operator reached the apiserver in-cluster, as its ServiceAccount: one of its pods leads.
    await leader(pods.filter((p) => p.metadata.name!.startsWith(`${release}-operator`)));

    const secret = await kube.get<KubeObject & { data: Record<string, string> }>(
      'v1',
      'Secret',
      `${release}-webhook-secret`,
      system,
    );
    const secretFile = path.join(stateDir, 'chart-webhook-secret');
    await writeFile(secretFile, Buffer.from(secret.data.secret!, 'base64'));
    const webhook = pods.find((p) => p.metadata.name!.startsWith(`${release}-webhook`))!;
    webhookTarget = { url: `http://${webhook.status!.podIP!}:8080/webhook/github`, secretFile };
  });

  it('runs the session image on the real node, admitted as restricted, with the real Claude Code', async () => {
    // A poll interval far longer than the test, until the poll test shortens it: what reaches the
    // session before then came by webhook.
    await kube.create(
      codemateObject(namespace, 'pr-7', {
        repository: { url: repoUrl, branch: 'feature', pullRequest: 7 },
        monitoring: { intervalSeconds: 600 },
      }),
    );
    await eventually(
      () => codemate('pr-7'),
      (cm) => cm.status?.phase === 'Running' && cm.status.github?.login === 'codemate-bot',
      { what: 'CodeMate Running, with its first poll done', timeoutMs: 120_000 },
    );
    const pod = await kube.get<Pod>('v1', 'Pod', await sessionPod(kube, namespace, 'pr-7'), namespace);
    expect(pod.spec.nodeName).toBe(realNodeName);
    expect(pod.spec.containers[0]!.image).toBe(`${imageRepositories.session}:0.1.0`);
    log(`session pod created → Ready in ${createdToReady(pod)} ms`);
    // The image's own user, Claude Code and clone, not the host's.
    const name = pod.metadata.name!;
    expect((await shell(name, 'id -u')).trim()).toBe('1000');
    expect((await shell(name, 'git -C repo rev-parse --abbrev-ref HEAD')).trim()).toBe('feature');
    expect((await shell(name, 'command -v claude')).trim()).not.toBe('');
    // A privileged pod in the same namespace is refused by the restricted profile.
    await expect(
      kube.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'privileged', namespace },
        spec: {
          containers: [
            { name: 'c', image: `${imageRepositories.session}:0.1.0`, securityContext: { privileged: true } },
          ],
        },
      }),
    ).rejects.toThrow(/violates PodSecurity/);
  });

  it("a comment by the chart's webhook reaches the model once, with no poll in between", async () => {
    const polledAt = (await codemate('pr-7')).status?.lastMonitorCheck;
    const id = gh.comment(
      'o',
      'r',
      7,
      alice,
      'Webhook on the real node: please rename the helper.',
      'MEMBER',
    );
    const sent = Date.now();
    expect(await replayComment(id)).toMatchObject({ status: 'stored' });
    log(`webhook comment → model in ${await reachesModelOnce(`pr-7-ic-${id}`, sent)} ms`);
    expect((await codemate('pr-7')).status?.lastMonitorCheck).toBe(polledAt);
  });

  it('a comment found by the poller reaches the model once', async () => {
    const id = gh.comment('o', 'r', 7, alice, 'Polled on the real node: add a test.', 'MEMBER');
    const posted = Date.now();
    await kube.mergePatch({
      apiVersion: 'codemate.io/v1alpha1',
      kind: 'CodeMate',
      metadata: { name: 'pr-7', namespace },
      spec: { monitoring: { intervalSeconds: 3 } },
    });
    log(`polled comment → model in ${await reachesModelOnce(`pr-7-ic-${id}`, posted)} ms (3 s interval)`);
  });

  it('codemate attach gets a TTY through the kubelet and follows a resize', async () => {
    const pod = await sessionPod(kube, namespace, 'pr-7');
    const socket = path.join(stateDir, 'term.sock');
    const host = (...args: string[]) => run('tmux', ['-S', socket, ...args]);
    const screen = async () => (await host('capture-pane', '-p', '-t', 'term')).stdout;
    // The terminals attached: not the session channel's control client (adr/0020), which has no say in
    // the window's size.
    const clients = async () =>
      (await shell(pod, "tmux list-clients -F '#{client_control_mode} #{client_width}x#{client_height}'"))
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('0 '))
        .map((line) => line.slice(2));
    await host(
      'new-session',
      '-d',
      '-s',
      'term',
      '-x',
      '120',
      '-y',
      '40',
      `KUBECONFIG=${kubeconfig} NO_COLOR=1 ${process.execPath} ${cliPath} attach -n ${namespace} pr-7; echo "EXIT=$?"; sleep 60`,
    );
    try {
      await eventually(screen, (text) => text.includes('Claude Code') && text.includes('❯'), {
        what: 'attached screen',
        timeoutMs: 30_000,
      });
      // The outer terminal is 120 columns; its rows less tmux's status line.
      const [before] = await eventually(
        clients,
        (sizes) => sizes.length === 1 && sizes[0]!.startsWith('120x'),
        {
          what: 'one attached client, 120 columns wide',
        },
      );
      await host('send-keys', '-t', 'term', '-l', 'typed-through-the-kubelet');
      await host('send-keys', '-t', 'term', 'Enter');
      await eventually(
        () => promptsWith(stateDir, 'typed-through-the-kubelet'),
        (prompts) => prompts.length === 1,
        { what: 'typed text submitted to the model' },
      );
      await host('resize-window', '-t', 'term', '-x', '100', '-y', '30');
      const [after] = await eventually(
        clients,
        (sizes) => sizes.length === 1 && sizes[0]!.startsWith('100x'),
        {
          what: 'the session sees the resize',
        },
      );
      expect(after).not.toBe(`100x${before!.split('x')[1]}`);
      await host('send-keys', '-t', 'term', 'C-b', 'd');
      const detached = await eventually(screen, (text) => text.includes('EXIT='), { what: 'attach ended' });
      expect(detached).toContain('EXIT=0');
    } finally {
      await host('kill-server').catch(() => undefined);
    }
  });

  it('a session with --storage keeps its workspace across suspend and resume', async () => {
    const created = Date.now();
    const create = await cli([
      'create',
      'keeps',
      '--repo',
      repoUrl,
      // Its own branch: pr-7 writes to `feature`, and one CodeMate writes to a branch.
      '--branch',
      'keeps',
      '--storage',
      '1Gi',
      '--wait',
    ]);
    expect(create.code, create.stderr).toBe(0);
    log(`create --storage → Running in ${Date.now() - created} ms`);
    const first = await sessionPod(kube, namespace, 'keeps');
    const firstUid = (await kube.get('v1', 'Pod', first, namespace)).metadata.uid;
    await shell(first, 'echo "written before suspend" > notes.txt');

    expect((await cli(['suspend', 'keeps'])).code).toBe(0);
    await eventually(
      () => codemate('keeps'),
      (cm) => cm.status?.phase === 'Suspended',
      {
        what: 'keeps Suspended',
        timeoutMs: 90_000,
      },
    );
    await eventually(
      () => kube.list('v1', 'Pod', namespace, { labelSelector: 'codemate.io/name=keeps' }),
      (pods) => pods.length === 0,
      { what: 'pod gone after suspend', timeoutMs: 90_000 },
    );
    const resumed = Date.now();
    expect((await cli(['resume', 'keeps'])).code).toBe(0);
    await eventually(
      () => codemate('keeps'),
      (cm) => cm.status?.phase === 'Running',
      {
        what: 'keeps Running again',
        timeoutMs: 120_000,
      },
    );
    log(`resume → Running in ${Date.now() - resumed} ms`);
    const second = await sessionPod(kube, namespace, 'keeps');
    // Pod names are deterministic: a new pod has the same name and another uid.
    expect((await kube.get('v1', 'Pod', second, namespace)).metadata.uid).not.toBe(firstUid);
    expect(await shell(second, 'cat notes.txt')).toBe('written before suspend\n');
    expect((await shell(second, 'git -C repo rev-parse --abbrev-ref HEAD')).trim()).toBe('keeps');
  });

  it('after helm uninstall, the operator and webhook of manifests/ take over as their own ServiceAccounts', async () => {
    await helm('uninstall', release, '--wait', '--timeout=120s');
    await eventually(
      () => kube.list<Pod>('v1', 'Pod', system, { labelSelector: `app.kubernetes.io/instance=${release}` }),
      (pods) => pods.length === 0,
      { what: "the chart's pods gone", timeoutMs: 120_000 },
    );
    for (const name of ['pr-7', 'keeps']) {
      await kube.mergePatch({
        apiVersion: 'codemate.io/v1alpha1',
        kind: 'CodeMate',
        metadata: { name, namespace },
        spec: { monitoring: { intervalSeconds: 600 } },
      });
    }
    // The webhook's secret is not part of its manifest (manifests/webhook.yaml says why).
    const secret = randomUUID().replace(/-/g, '');
    await kube.create(secretObject(system, 'codemate-webhook-secret', { secret }));
    const applied = Date.now();
    for (const file of ['operator.yaml', 'webhook.yaml']) {
      const text = await readFile(path.join(manifestsDir, file), 'utf8');
      // All but the Ingress's cert-manager Certificate: the sandbox runs no cert-manager.
      const objects = parseAllDocuments(text).map((d) => d.toJSON() as KubeObject);
      for (const object of objects.filter((o) => !o.apiVersion.startsWith('cert-manager.io/'))) {
        // The operator's GitHub is the fake one, at the node's address.
        if (object.kind === 'Deployment' && object.metadata.name === 'codemate-operator') {
          const spec = object as unknown as {
            spec: {
              template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } };
            };
          };
          const container = spec.spec.template.spec.containers[0]!;
          container.env = [
            ...(container.env ?? []).filter((e) => e.name !== 'GITHUB_API_URL'),
            { name: 'GITHUB_API_URL', value: `http://${realNodeIp}:${githubForward!.port}` },
            { name: 'CODEMATE_MONITOR_REPORT_SECONDS', value: '0' },
          ];
        }
        await kube.apply(object, 'realnode-e2e');
      }
    }
    const pods = await available(['codemate-operator', 'codemate-webhook']);
    log(`manifests' operator and webhook available in ${Date.now() - applied} ms`);
    for (const pod of pods) {
      expect(pod.spec.serviceAccountName).toBe(pod.metadata.labels?.['app.kubernetes.io/name']);
      expect(pod.spec.nodeName).toBe(realNodeName);
      expect(pod.spec.containers[0]!.image).toBe(`${imageRepositories.codemate}:0.1.0`);
    }
    await leader(pods.filter((p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'codemate-operator'));

    const webhook = pods.find((p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'codemate-webhook')!;
    const secretFile = path.join(stateDir, 'manifests-webhook-secret');
    await writeFile(secretFile, `${secret}\n`);
    webhookTarget = { url: `http://${webhook.status!.podIP!}:8080/webhook/github`, secretFile };
    // No poll finds the comment first: what stores it is the in-cluster webhook. The new operator polls
    // each CodeMate once when it starts leading, and then not for 10 minutes.
    for (const name of ['pr-7', 'keeps']) {
      await eventually(
        () => codemate(name),
        (cm) => Date.parse(cm.status?.lastMonitorCheck ?? '') > applied,
        { what: `the first poll of ${name} by the manifests' operator`, timeoutMs: 60_000 },
      );
    }
    const id = gh.comment('o', 'r', 7, alice, 'To the webhook of the manifests.', 'MEMBER');
    const sent = Date.now();
    // pr-7 follows pull request #7 (keeps works on a branch of its own): the comment is its message.
    expect(await replayComment(id)).toMatchObject({
      status: 'stored',
      outcomes: [expect.objectContaining({ result: 'created', message: `pr-7-ic-${id}` })],
    });
    log(`manifests' webhook comment → model in ${await reachesModelOnce(`pr-7-ic-${id}`, sent)} ms`);
  });
});
