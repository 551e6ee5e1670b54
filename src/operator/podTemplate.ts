/**
 * The objects a CodeMate owns, built purely from the CR: its session pod and, with spec.storage, its
 * workspace claim. Names are deterministic (src/api/pod.ts), so creating them is idempotent.
 */
import { createHash } from 'node:crypto';
import { githubAppMode, type CodeMate } from '../api/codemate.js';
import {
  labels,
  ownedLabels,
  ownerReference,
  podName,
  pvcName,
  sessionContainer,
  sessionTokenSecretName,
  shortHash,
} from '../api/pod.js';

export const specHashAnnotation = 'codemate.io/spec-hash';
export const workspacePath = '/workspace';
/**
 * App mode: where the session's installation token Secret is mounted. The kubelet updates the file when
 * the operator renews the token, and git's and gh's credential helpers read it on each use.
 */
export const githubTokenDir = '/var/run/codemate/github';

/**
 * The container command paths inside the session image (setup/docker/Dockerfile.codemate). Delivery
 * execs `codemate-inject` by name, through the image's PATH.
 */
export const sessionPaths = {
  entrypoint: '/opt/codemate/bin/codemate-entrypoint',
  ready: '/opt/codemate/bin/codemate-ready',
} as const;

/** A UUID (v5 layout) from the CR's uid: the Claude Code session id that survives pod restarts. */
export function sessionId(cm: CodeMate): string {
  const h = createHash('sha1').update(`codemate.io/session/${cm.metadata.uid}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface SessionSettings {
  /** Image when spec.image is unset. */
  defaultImage: string;
  /** The operator has a GitHub App, for CodeMates without a token or an App of their own. */
  githubApp?: boolean;
}

type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }
  | { name: string; valueFrom: { fieldRef: { fieldPath: string } } };

/** status.task.sha of a task text: which task a session was given. */
export function taskSha(task: string): string {
  return shortHash(task, 16);
}

/** Whether a session pod of this CodeMate already started with spec.task (status.task). */
export function taskStarted(cm: Pick<CodeMate, 'spec' | 'status'>): boolean {
  return cm.spec.task !== undefined && cm.status?.task?.sha === taskSha(cm.spec.task);
}

function sessionEnv(cm: CodeMate, withTask: boolean): EnvVar[] {
  const { spec } = cm;
  const plain: Array<[string, string | number | undefined]> = [
    ['CODEMATE_NAME', cm.metadata.name],
    ['CODEMATE_REPO_URL', spec.repository.url],
    ['CODEMATE_BRANCH', spec.repository.branch],
    ['CODEMATE_BASE_BRANCH', spec.repository.baseBranch],
    ['CODEMATE_PR', spec.repository.pullRequest],
    ['CODEMATE_GIT_USER_NAME', spec.github.user?.name],
    ['CODEMATE_GIT_USER_EMAIL', spec.github.user?.email],
    ['CODEMATE_TASK', withTask ? spec.task : undefined],
    ['CODEMATE_SESSION_ID', sessionId(cm)],
    ['CODEMATE_WORKSPACE', workspacePath],
    ['CLAUDE_CONFIG_DIR', `${workspacePath}/.claude`],
  ];
  return [
    ...plain
      .filter((e): e is [string, string | number] => e[1] !== undefined)
      .map(([name, v]) => ({ name, value: String(v) })),
    { name: 'CODEMATE_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    spec.github.tokenSecretRef
      ? { name: 'GITHUB_TOKEN', valueFrom: { secretKeyRef: spec.github.tokenSecretRef } }
      : { name: 'CODEMATE_GITHUB_TOKEN_FILE', value: `${githubTokenDir}/token` },
    { name: 'ANTHROPIC_API_KEY', valueFrom: { secretKeyRef: spec.anthropic.apiKeySecretRef } },
  ];
}

export type PodManifest = {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: Array<ReturnType<typeof ownerReference>>;
  };
  spec: Record<string, unknown>;
};

/**
 * The desired session pod. Its spec hash annotation tells a changed spec from an unchanged one. A task
 * that a pod already started (taskStarted) is left out of the next pod, but counted in the hash: the
 * running pod that started it is not rolled for that, and a changed task still rolls the pod.
 */
export function desiredPod(cm: CodeMate, settings: SessionSettings): PodManifest {
  const spec = podSpec(cm, settings, !taskStarted(cm));
  const hashed = taskStarted(cm) ? podSpec(cm, settings, true) : spec;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(cm),
      namespace: cm.metadata.namespace,
      labels: { ...ownedLabels(cm), [labels.component]: 'session' },
      annotations: { [specHashAnnotation]: shortHash(JSON.stringify(hashed), 16) },
      ownerReferences: [ownerReference(cm)],
    },
    spec,
  };
}

function podSpec(cm: CodeMate, settings: SessionSettings, withTask: boolean) {
  const app = githubAppMode(cm.spec);
  return {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: sessionContainer,
        image: cm.spec.image ?? settings.defaultImage,
        command: [sessionPaths.entrypoint],
        env: sessionEnv(cm, withTask),
        ...(cm.spec.resources ? { resources: cm.spec.resources } : {}),
        workingDir: workspacePath,
        volumeMounts: [
          { name: 'workspace', mountPath: workspacePath },
          ...(app ? [{ name: 'github-token', mountPath: githubTokenDir, readOnly: true }] : []),
        ],
        readinessProbe: {
          exec: { command: [sessionPaths.ready] },
          initialDelaySeconds: 2,
          periodSeconds: 5,
          failureThreshold: 3,
        },
        securityContext: {
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          runAsNonRoot: true,
        },
        stdin: true,
        tty: true,
      },
    ],
    volumes: [
      cm.spec.storage
        ? { name: 'workspace', persistentVolumeClaim: { claimName: pvcName(cm) } }
        : { name: 'workspace', emptyDir: {} },
      ...(app
        ? [
            {
              name: 'github-token',
              secret: {
                secretName: sessionTokenSecretName(cm),
                items: [
                  { key: 'token', path: 'token' },
                  { key: 'expires-at', path: 'expires-at' },
                ],
              },
            },
          ]
        : []),
    ],
  };
}

export function desiredPvc(cm: CodeMate) {
  const storage = cm.spec.storage!;
  return {
    apiVersion: 'v1' as const,
    kind: 'PersistentVolumeClaim' as const,
    metadata: {
      name: pvcName(cm),
      namespace: cm.metadata.namespace,
      labels: { ...ownedLabels(cm), [labels.component]: 'workspace' },
      ownerReferences: [ownerReference(cm)],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: storage.size } },
      ...(storage.storageClassName ? { storageClassName: storage.storageClassName } : {}),
    },
  };
}
