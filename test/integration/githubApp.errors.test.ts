/**
 * The operator in GitHub App mode against the real apiserver (as its ServiceAccount) and the fake GitHub:
 * a working App gives each session a token Secret owned by its CodeMate; a bad key, an App not installed
 * on the repository, and an installation without a permission the session needs each give a
 * GitHubAuthenticated condition with the reason, a message and a hint, and the operator keeps running.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CodeMate } from '../../src/api/codemate.js';
import { sessionTokenSecretName } from '../../src/api/pod.js';
import { sessionPermissions } from '../../src/clients/githubApp.js';
import type { KubeObject } from '../../src/clients/kube.js';
import { freePort } from '../../src/clients/ports.js';
import { cliPath } from '../helpers/cli.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import { FakeGitHub } from '../helpers/fakeGitHub.js';
import {
  codemateObject,
  httpGet,
  operatorKubeconfig,
  secretObject,
  spawnServer,
  type ServerProcess,
} from '../helpers/operator.js';

const cluster = useCluster('ghapp');
const gh = new FakeGitHub();
let operator: ServerProcess;
let healthPort: number;
let keys: { privateKey: string; otherKey: string };

const get = (name: string) =>
  cluster.kube.get<CodeMate & KubeObject>('codemate.io/v1alpha1', 'CodeMate', name, cluster.namespace);
const authenticated = (cm: CodeMate) => cm.status?.conditions?.find((c) => c.type === 'GitHubAuthenticated');
const create = (name: string, repo: string, github: Record<string, unknown> = {}) =>
  cluster.kube.create(
    codemateObject(cluster.namespace, name, {
      repository: { url: `https://github.com/o/${repo}.git`, branch: 'feature', pullRequest: 7 },
      github,
    }),
  );
const refused = (name: string, reason: string) =>
  eventually(
    () => get(name),
    (cm) => authenticated(cm)?.status === 'False' && authenticated(cm)?.reason === reason,
    { what: `${name}: GitHubAuthenticated ${reason}`, describe: (cm) => JSON.stringify(cm.status) },
  );

beforeAll(async () => {
  await gh.start();
  keys = gh.createApp(55, 'cm-int');
  gh.installApp('o', ['o/r'], { ...sessionPermissions });
  gh.installApp('o', ['o/readonly'], { contents: 'read', metadata: 'read' });
  gh.addPull('o', 'r', 7, 'feature');
  const dir = path.dirname(await operatorKubeconfig(cluster.kube));
  const keyFile = path.join(dir, 'app.pem');
  await writeFile(keyFile, keys.privateKey, { mode: 0o600 });
  healthPort = await freePort();
  operator = spawnServer(
    [
      cliPath,
      'operator',
      `--kubeconfig=${await operatorKubeconfig(cluster.kube)}`,
      `--watch-namespace=${cluster.namespace}`,
      `--health-port=${healthPort}`,
      '--session-image=codemate-session:test',
      `--lease-name=op-${cluster.namespace}`,
      '--no-leader-elect',
    ],
    {
      POD_NAME: '',
      GITHUB_API_URL: gh.url,
      CODEMATE_GITHUB_APP_ID: '55',
      CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
    },
    healthPort,
  );
  await eventually(
    () => httpGet(`http://127.0.0.1:${healthPort}/readyz`),
    (r) => r.status === 200,
    { what: `operator ready; logs:\n${operator.logs()}` },
  );
  await cluster.kube.create(secretObject(cluster.namespace, 'anthropic-key', { token: 'sk-ant-test' }));
});

afterAll(async () => {
  await operator?.stop();
  await gh.stop();
});

describe('the operator as a GitHub App', () => {
  it('gives a session its own token Secret, owned by its CodeMate, and polls as the App’s bot', async () => {
    await create('works', 'r');
    const cm = await eventually(
      () => get('works'),
      (c) => authenticated(c)?.status === 'True' && c.status?.github?.sessionToken?.secretName !== undefined,
      { what: 'works authenticated', describe: (c) => JSON.stringify(c.status) },
    );
    expect(cm.status?.github?.login).toBe('cm-int[bot]');
    const secret = await cluster.kube.get<KubeObject & { data?: Record<string, string> }>(
      'v1',
      'Secret',
      sessionTokenSecretName(cm),
      cluster.namespace,
    );
    expect(secret.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'CodeMate', name: 'works' });
    const token = Buffer.from(secret.data!.token!, 'base64').toString();
    expect(gh.issuedInstallationTokens().find((t) => t.token === token)).toMatchObject({
      repositories: ['o/r'],
      permissions: sessionPermissions,
    });
    // The pod waited for the token, then was created.
    await eventually(
      () => get('works'),
      (c) => c.status?.podName !== undefined,
      { what: 'works has a pod' },
    );
  });

  it('an App not installed on the repository: a condition with a hint, and no pod', async () => {
    await create('not-installed', 'elsewhere');
    const cm = await refused('not-installed', 'AppNotInstalled');
    expect(authenticated(cm)?.message).toBe(
      `GitHub App 55 is not installed on o/elsewhere (install the App on o/elsewhere (${gh.url}/settings/apps, "Install App"), or add the repository to its installation)`,
    );
    expect(cm.status?.phase).toBe('Pending');
    expect(cm.status?.podName).toBeUndefined();
  });

  it('an installation without a permission the session needs', async () => {
    await create('read-only', 'readonly');
    const cm = await refused('read-only', 'AppPermissionMissing');
    expect(authenticated(cm)?.message).toContain('contents: write, pull requests: write');
  });

  it('a key that is not the App’s (a CodeMate’s own App)', async () => {
    await cluster.kube.create(secretObject(cluster.namespace, 'own-app', { 'private-key': keys.otherKey }));
    await create('bad-key', 'r', {
      app: { appId: 55, privateKeySecretRef: { name: 'own-app' } },
    });
    const cm = await refused('bad-key', 'AppKeyRejected');
    expect(authenticated(cm)?.message).toContain(`secret ${cluster.namespace}/own-app (key private-key)`);
  });

  it('kept running through all of it', async () => {
    expect(operator.child.exitCode).toBeNull();
    expect((await httpGet(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(200);
    expect(operator.records().filter((r) => r.level === 60 || r.level === 50)).toEqual([]);
  });
});
