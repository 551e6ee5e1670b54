/**
 * charts/codemate against the real apiserver: helm lint; every object `helm template` renders, with the
 * default values and with every optional feature on, passes a server-side dry run (kinds whose CRDs a
 * cluster brings along are only checked to render); bad values are refused by the schema; and an install
 * into this file's namespace creates the objects, an upgrade changes them and keeps the generated webhook
 * secret, and an uninstall removes them, except the CRDs. Nothing runs the pods here (this control plane has
 * no pod runtime); test/e2e/chart.test.ts installs into a sandbox whose pod runtime runs them.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cacheDir, readEnv } from '../../src/config/index.js';
import { resolveHelm } from '../../src/sandbox/helm.js';
import { runProgram } from '../../src/sandbox/runProgram.js';
import { repoRoot } from '../helpers/cli.js';
import { eventually, expectDryRunAccepts, useCluster, type KubeObject } from '../helpers/cluster.js';

const cluster = useCluster('chart');
const chart = path.join(repoRoot, 'charts', 'codemate');
let helmBin = '';

const helm = (...args: string[]) => runProgram(helmBin, [...args, '--kubeconfig', cluster.kubeconfig]);
const render = async (...values: string[]): Promise<KubeObject[]> => {
  const { stdout } = await helm('template', 'codemate', chart, '--namespace', cluster.namespace, ...values);
  return parseAllDocuments(stdout)
    .map((d) => d.toJSON() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
};
/** The kinds of clusters with the Prometheus operator and cert-manager: rendered, not dry-run here. */
const thirdParty = new Set(['monitoring.coreos.com/v1', 'cert-manager.io/v1']);
const kindsOf = (objects: KubeObject[]) => objects.map((o) => o.kind);

/** Every optional feature on. */
const everything = [
  '--set-json',
  'image={"repository":"registry.example.com/codemate","tag":"1.2.3","digest":"sha256:' +
    'a'.repeat(64) +
    '"}',
  '--set-json',
  'imagePullSecrets=[{"name":"registry"}]',
  '--set-json',
  'ingress={"enabled":true,"className":"nginx","host":"codemate.example.org","tls":{"enabled":true,"secretName":"codemate-tls","certManager":{"enabled":true,"issuerName":"letsencrypt","issuerKind":"Issuer"}}}',
  '--set-json',
  'sessionNetworkPolicy={"enabled":true,"extraEgress":[{"cidr":"10.20.0.0/16","ports":[{"port":3128,"protocol":"TCP"}]},{"cidr":"fd00::/8"}]}',
  '--set-json',
  'monitoring={"serviceMonitor":{"enabled":true},"podMonitor":{"enabled":true},"prometheusRule":{"enabled":true}}',
  '--set-json',
  'operator={"replicas":3,"logLevel":"debug","nodeSelector":{"kubernetes.io/os":"linux"},"tolerations":[{"key":"dedicated","operator":"Exists"}]}',
  '--set',
  'webhook.secret.existingSecret=github-webhook',
  '--set',
  'github.apiUrl=https://github.example.org/api/v3',
  '--set-json',
  'github.app={"id":123456,"installationId":7890,"privateKeySecret":{"name":"github-app","key":"private-key"}}',
];

describe('charts/codemate', () => {
  beforeAll(async () => {
    // Built by `codemate dev build` (so by .ci/run before the tests); the first build takes minutes.
    helmBin = await resolveHelm({ cacheDir: cacheDir(readEnv()) });
  }, 20 * 60_000);

  it('passes helm lint, with the default values and with every optional feature on', async () => {
    await helm('lint', '--strict', chart);
    await helm('lint', '--strict', chart, ...everything);
  });

  it('renders with the default values, and every object passes a server-side dry run', async () => {
    const objects = await render('--include-crds');
    expect(kindsOf(objects)).toEqual(
      expect.arrayContaining([
        'CustomResourceDefinition',
        'Deployment',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'PodDisruptionBudget',
        'Service',
        'Secret',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'NetworkPolicy',
      ]),
    );
    expect(kindsOf(objects)).not.toContain('Ingress');
    expect(objects.filter((o) => thirdParty.has(o.apiVersion))).toEqual([]);
    expect(objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name)).toEqual(
      expect.arrayContaining(['codemate-view', 'codemate-edit', 'codemate-attach', 'codemate-operator']),
    );
    await expectDryRunAccepts(cluster.kube, objects, thirdParty);
  });

  it('renders with every optional feature on, and every object passes a server-side dry run', async () => {
    const objects = await render(...everything);
    expect(kindsOf(objects)).toEqual(
      expect.arrayContaining(['Ingress', 'Certificate', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule']),
    );
    // An existing webhook secret: the chart makes none.
    expect(kindsOf(objects)).not.toContain('Secret');
    const operator = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'codemate-operator');
    expect(JSON.stringify(operator)).toContain(`registry.example.com/codemate@sha256:${'a'.repeat(64)}`);
    expect(JSON.stringify(operator)).toContain(
      '{"name":"GITHUB_API_URL","value":"https://github.example.org/api/v3"}',
    );
    const policy = objects.find((o) => o.kind === 'NetworkPolicy') as KubeObject & {
      spec: { egress: { to: { ipBlock?: { cidr: string } }[] }[] };
    };
    expect(policy.spec.egress.flatMap((e) => e.to.map((t) => t.ipBlock?.cidr))).toEqual(
      expect.arrayContaining(['10.20.0.0/16', 'fd00::/8', '0.0.0.0/0']),
    );
    const rules = JSON.stringify(objects.find((o) => o.kind === 'PrometheusRule'));
    for (const metric of [
      'codemate_leader',
      'codemate_deliveries_total',
      'codemate_webhook_deliveries_total',
      'codemate_github_rate_limit_remaining',
    ]) {
      expect(rules).toContain(metric);
    }
    await expectDryRunAccepts(cluster.kube, objects, thirdParty);
  });

  it.each([
    [['--set', 'operator.replicas=two'], "at '/operator/replicas': got string, want integer"],
    [['--set', 'image.digest=latest'], "at '/image/digest': 'latest' does not match pattern"],
    [['--set', 'operator.logLevel=loud'], "at '/operator/logLevel'"],
    [['--set', 'github.apiUrl=github.example.org'], "at '/github/apiUrl'"],
    [['--set', 'ingress.enabled=true'], "at '/ingress/host': minLength: got 0, want 1"],
    [
      ['--set', 'ingress.enabled=true', '--set', 'ingress.host=Not A Host'],
      "at '/ingress/host': 'Not A Host' does not match pattern",
    ],
    [
      ['--set-json', 'sessionNetworkPolicy.extraEgress=[{"cidr":"github.com"}]'],
      "at '/sessionNetworkPolicy/extraEgress/0/cidr'",
    ],
    [['--set', 'operator.replica=2'], "at '/operator': additional properties 'replica' not allowed"],
  ])('refuses %j: %s', async (values, message) => {
    const refused = render(...values);
    await expect(refused).rejects.toThrow(/values don't meet the specifications of the schema/);
    await expect(refused).rejects.toThrow(message);
  });

  it('installs into a namespace, upgrades keeping the webhook secret, and uninstall removes all it made except the CRDs', async () => {
    const release = `cm-${cluster.namespace.slice(-6)}`;
    // The sandbox applies the user roles itself (manifests/user-rbac.yaml); Helm would not adopt them.
    await helm(
      'install',
      release,
      chart,
      '--namespace',
      cluster.namespace,
      '--set',
      'userRoles.create=false',
    );
    const made: [string, string, string, string?][] = [
      ['apps/v1', 'Deployment', `${release}-operator`, cluster.namespace],
      ['apps/v1', 'Deployment', `${release}-webhook`, cluster.namespace],
      ['v1', 'Service', `${release}-webhook`, cluster.namespace],
      ['v1', 'ServiceAccount', `${release}-operator`, cluster.namespace],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole', `${release}-operator`],
      ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', `${release}-webhook`],
      ['admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicy', `${release}-webhook-annotation-only`],
      ['networking.k8s.io/v1', 'NetworkPolicy', 'codemate-sessions', cluster.namespace],
      ['policy/v1', 'PodDisruptionBudget', `${release}-operator`, cluster.namespace],
    ];
    for (const [apiVersion, kind, name, namespace] of made) {
      await expect(
        cluster.kube.get(apiVersion, kind, name, namespace),
        `${kind}/${name}`,
      ).resolves.toBeDefined();
    }
    const secret = await cluster.kube.get<KubeObject & { data: Record<string, string> }>(
      'v1',
      'Secret',
      `${release}-webhook-secret`,
      cluster.namespace,
    );
    expect(Buffer.from(secret.data.secret ?? '', 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);

    // An upgrade with a changed value changes the operator's pod template (a rollout where pods run), and
    // keeps the generated secret: a new one would break every signature GitHub makes.
    type Deployment = KubeObject & {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    };
    const logLevel = async () =>
      (
        await cluster.kube.get<Deployment>('apps/v1', 'Deployment', `${release}-operator`, cluster.namespace)
      ).spec.template.spec.containers[0]?.env.find((e) => e.name === 'LOG_LEVEL')?.value;
    expect(await logLevel()).toBe('info');
    await helm(
      'upgrade',
      release,
      chart,
      '--namespace',
      cluster.namespace,
      '--reuse-values',
      '--set',
      'operator.logLevel=debug',
    );
    expect(await logLevel()).toBe('debug');
    const kept = await cluster.kube.get<typeof secret>(
      'v1',
      'Secret',
      `${release}-webhook-secret`,
      cluster.namespace,
    );
    expect(kept.data.secret).toBe(secret.data.secret);

    await helm('uninstall', release, '--namespace', cluster.namespace);
    for (const [apiVersion, kind, name, namespace] of made) {
      await eventually(
        () =>
          cluster.kube.get(apiVersion, kind, name, namespace).then(
            () => 'exists',
            () => 'gone',
          ),
        (state) => state === 'gone',
        { what: `${kind}/${name} deleted` },
      );
    }
    // Helm never deletes crds/; the webhook secret is kept on purpose (GitHub still holds its value).
    await expect(
      cluster.kube.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'codemates.codemate.io'),
    ).resolves.toBeDefined();
    await expect(
      cluster.kube.get('v1', 'Secret', `${release}-webhook-secret`, cluster.namespace),
    ).resolves.toBeDefined();
  });
});
