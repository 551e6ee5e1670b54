/**
 * What a sandbox session needs from its environment besides its CodeMate: the Messages API its Claude Code
 * talks to, and where git fetches the repository from. The local pod runtime sets both on the processes
 * it starts; on the real node (`--runtime containerd`), a MutatingAdmissionPolicy adds them to session
 * pods as the apiserver admits them. Both are sandbox plumbing: the operator's pods stay as in a cluster.
 */
import type { Kube, KubeObject } from '../clients/kube.js';
import { labels, sessionContainer } from '../api/pod.js';

/** The policy and its binding share this name; `dev up` applies both again with new values. */
const sessionEnvPolicyName = 'codemate-sandbox-session-env';

/**
 * Applies the policy that adds `env` to the session container of every session pod created from now on
 * (failing closed: a session pod the policy cannot mutate is not admitted). ApplyConfiguration merges by
 * name, since a container's env is a map list keyed by name, so the pod's own variables stay.
 */
export async function applySessionEnvPolicy(kube: Kube, env: Record<string, string>): Promise<void> {
  const vars = Object.entries(env)
    .map(
      ([name, value]) =>
        `Object.spec.containers.env{name: ${JSON.stringify(name)}, value: ${JSON.stringify(value)}}`,
    )
    .join(', ');
  const policy: KubeObject = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingAdmissionPolicy',
    metadata: { name: sessionEnvPolicyName },
    spec: {
      matchConstraints: {
        resourceRules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        ],
      },
      matchConditions: [
        {
          name: 'session-pod',
          expression: `has(object.metadata.labels) && object.metadata.labels[${JSON.stringify(labels.component)}] == "session" && object.spec.containers.exists(c, c.name == ${JSON.stringify(sessionContainer)})`,
        },
      ],
      failurePolicy: 'Fail',
      reinvocationPolicy: 'Never',
      mutations: [
        {
          patchType: 'ApplyConfiguration',
          applyConfiguration: {
            expression: `Object{spec: Object.spec{containers: [Object.spec.containers{name: ${JSON.stringify(sessionContainer)}, env: [${vars}]}]}}`,
          },
        },
      ],
    },
  };
  await kube.apply(policy, 'codemate-sandbox');
  await kube.apply(
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name: sessionEnvPolicyName },
      spec: { policyName: sessionEnvPolicyName },
    },
    'codemate-sandbox',
  );
}
