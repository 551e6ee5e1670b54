/**
 * Pinned versions of the sandbox's control plane. Changing any of them changes the cache key, so a
 * different set is built next to the old one instead of over it. See docs/sandbox.md for why these.
 */
export const versions = {
  kubernetes: 'v1.36.3',
  /** k8s.io/* staging modules that belong to `kubernetes`. */
  staging: 'v0.36.3',
  /** Must match the etcd server version in k8s.io/kubernetes' own module graph. */
  etcd: 'v3.6.8',
  kwok: 'v0.8.0',
} as const;

/**
 * The Claude Code CLI that sessions run, in the sandbox and in the session image alike
 * (setup/docker/Dockerfile.codemate's CLAUDE_CODE_VERSION must match; a unit test checks it). Its native
 * binary comes from the optional package @anthropic-ai/claude-code-linux-x64.
 */
export const claudeCodeVersion = '2.1.332';

/**
 * Helm, which installs charts/codemate in the sandbox and the tests. Built from the Go module proxy like
 * the control plane, and cached by this version (src/sandbox/helm.ts).
 */
export const helmVersion = 'v4.3.1';

/**
 * The real node of `dev up --runtime containerd` (src/sandbox/nodeBinaries.ts): kubelet from the same
 * Kubernetes as the control plane, containerd 2 (kubelet 1.36 warns that 1.x lacks RuntimeConfig, and 1.37
 * drops it), and the pause program from the kubernetes module, at the version its Makefile tags.
 */
export const nodeVersions = {
  kubelet: versions.kubernetes,
  containerd: 'v2.4.2',
  pause: '3.10.2',
} as const;

export function nodeVersionKey(): string {
  return `kubelet-${nodeVersions.kubelet}_containerd-${nodeVersions.containerd}_pause-${nodeVersions.pause}`;
}

/**
 * What the locally made base images hold (src/sandbox/images.ts), where no registry serves the official
 * `node:<version>-bookworm-slim`: Debian's release, made with debootstrap, and the npm that the Node
 * release pinned in package.json bundles (its changelog; a unit test checks it), as in the official image.
 */
export const baseImage = { debian: 'bookworm', npm: '11.19.0' } as const;

export const binaryNames = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
] as const;
export type BinaryName = (typeof binaryNames)[number];

export function versionKey(): string {
  return `k8s-${versions.kubernetes}_etcd-${versions.etcd}_kwok-${versions.kwok}`;
}
