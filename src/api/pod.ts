/**
 * What every layer knows about a CodeMate's pod and claim: their deterministic names, their labels and
 * owner, and the session container's name. Pure; the pod template itself is src/operator/podTemplate.ts.
 */
import { createHash } from 'node:crypto';
import type { CodeMate } from './codemate.js';

export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  name: 'codemate.io/name',
} as const;
export const sessionContainer = 'session';

export function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * `codemate-<name>-<hash>`: the hash of the CR's uid keeps names unique when a long name is truncated
 * and when a CR is deleted and created again while its old pod terminates.
 */
export function podName(cm: CodeMate): string {
  return `codemate-${cm.metadata.name.slice(0, 40).replace(/[-.]+$/, '')}-${shortHash(cm.metadata.uid, 6)}`;
}

export function pvcName(cm: CodeMate): string {
  return `codemate-${cm.metadata.name.slice(0, 40).replace(/[-.]+$/, '')}-workspace-${shortHash(cm.metadata.uid, 6)}`;
}

/** App mode: the Secret that holds the session's installation token, renewed by the operator. */
export function sessionTokenSecretName(cm: CodeMate): string {
  return `codemate-${cm.metadata.name.slice(0, 40).replace(/[-.]+$/, '')}-github-${shortHash(cm.metadata.uid, 6)}`;
}

export function ownerReference(cm: CodeMate) {
  return {
    apiVersion: cm.apiVersion,
    kind: cm.kind,
    name: cm.metadata.name,
    uid: cm.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function ownedLabels(cm: CodeMate): Record<string, string> {
  return { [labels.managedBy]: 'codemate', [labels.name]: cm.metadata.name };
}
