/**
 * Who writes which fields of a CodeMate's status. Each writer patches only its own fields, so that one
 * working from a cached copy never sends another's fields back over newer values:
 * - the reconcile (applied by execute.ts) owns what it decides: the phase, the conditions, and that the
 *   session was given spec.task (task);
 * - the poller records what it saw on GitHub, and decides nothing: the reconcile reads it;
 * - delivery records the sources of the messages retention deleted (history, delivery.ts);
 * - the session reports record what the session said of itself: session and usage (sessionReports.ts).
 */
import { group, plural, version, type CodeMate, type CodeMateStatus } from '../api/codemate.js';
import { isNotFound, type Kube } from '../clients/kube.js';

export const reconcileOwned = [
  'phase',
  'message',
  'podName',
  'observedGeneration',
  'conditions',
  'task',
] as const;

/** What the poller saw on GitHub; null clears a field (a JSON merge patch). */
export interface GitHubObservation {
  lastMonitorCheck?: string;
  github?: {
    login?: string | null;
    error: string | null;
    errorReason?: string | null;
    hint?: string | null;
    sessionToken?: { secretName: string; expiresAt: string } | null;
    ci?: Omit<
      NonNullable<NonNullable<CodeMateStatus['github']>['ci']>,
      'noneDetectedAt' | 'noneDetectedOn'
    > & {
      noneDetectedAt?: string | null;
      noneDetectedOn?: string | null;
    };
    readyForReview?: NonNullable<CodeMateStatus['github']>['readyForReview'];
  };
  pullRequest?: {
    number: number;
    url: string;
    state: string;
    draft?: boolean;
    headSha?: string;
    headRef?: string;
  };
}

/** JSON with object keys sorted: equal for equal values, whatever the order of their keys. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/**
 * Whether a JSON merge patch would change `current`: a null in the patch clears a field, an object
 * merges into the one there, anything else replaces it.
 */
export function wouldChange(current: unknown, patch: unknown): boolean {
  if (patch === null) return current !== undefined && current !== null;
  if (typeof patch !== 'object' || Array.isArray(patch)) {
    return canonical(current) !== canonical(patch);
  }
  const here = typeof current === 'object' && current !== null && !Array.isArray(current) ? current : {};
  return Object.entries(patch).some(([key, value]) =>
    value === undefined ? false : wouldChange((here as Record<string, unknown>)[key], value),
  );
}

/**
 * Whether the poller writes what a poll saw: when it changes the status, or when status.lastMonitorCheck
 * is `reportMs` old (kubelet's node status report frequency, applied to polls). An unchanged poll of an
 * idle pull request then costs the apiserver nothing, and every watcher of the CodeMate nothing.
 */
export function shouldRecordObservation(
  status: CodeMateStatus | undefined,
  observation: GitHubObservation,
  now: Date,
  reportMs: number,
): boolean {
  const { lastMonitorCheck: _, ...seen } = observation;
  if (wouldChange(status, seen)) return true;
  const last = Date.parse(status?.lastMonitorCheck ?? '');
  return !Number.isFinite(last) || now.getTime() - last >= reportMs;
}

export async function recordGitHubObservation(
  kube: Kube,
  cm: CodeMate,
  observation: GitHubObservation,
): Promise<void> {
  try {
    await kube.patchStatus(
      { group, version, plural, namespace: cm.metadata.namespace, name: cm.metadata.name },
      observation,
    );
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** Asking GitHub as an App failed: GitHubAuthenticated shows the reason, the message and the hint. */
export async function recordGitHubAppError(
  kube: Kube,
  cm: CodeMate,
  error: { described: { reason: string; message: string; hint: string } },
): Promise<void> {
  const { reason, message, hint } = error.described;
  await recordGitHubObservation(kube, cm, { github: { error: message, errorReason: reason, hint } });
}
