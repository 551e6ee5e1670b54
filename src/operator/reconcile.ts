/**
 * The reconcile: a pure function from a CodeMate and what was observed of its world to a plan. It never
 * learns why it ran (level-triggered) and never does I/O; execute.ts applies the plan.
 */
import type { CodeMate, CodeMateSpec, CodeMateStatus, Condition, Phase } from '../api/codemate.js';
import {
  budgetExhausted,
  budgetWords,
  durationMs,
  githubAppMode,
  parseSpec,
  suspendedByAnnotation,
  wakeRequestedAnnotation,
} from '../api/codemate.js';
import { findCondition, setCondition, type ConditionInput } from '../api/conditions.js';
import { podName, sessionContainer, sessionTokenSecretName } from '../api/pod.js';
import { branchConflictRequeueMs } from '../config/defaults.js';
import { branchWriter, conflictCondition } from './oneWriter.js';
import {
  desiredPod,
  desiredPvc,
  specHashAnnotation,
  taskSha,
  taskStarted,
  type PodManifest,
  type SessionSettings,
} from './podTemplate.js';

export interface ObservedPod {
  name: string;
  phase?: string;
  deleting: boolean;
  specHash?: string;
  ready: boolean;
  /** Since when the pod has been ready (its Ready condition's lastTransitionTime). */
  readySince?: string;
  /** Why the session container stopped, when it did. */
  terminated?: { reason?: string; exitCode?: number; message?: string };
  /** Why it has not started (e.g. CreateContainerConfigError, ImagePullBackOff). */
  waiting?: { reason?: string; message?: string };
  /** The scheduler's message while it cannot place the pod (PodScheduled=False). */
  unschedulable?: string;
}

/** The workspace claim, as far as it tells why a pod that uses it waits. */
export interface ObservedClaim {
  name: string;
  phase?: string;
  storageClassName?: string;
  /** The provisioner the PV binder has asked for a volume (volume.kubernetes.io/storage-provisioner). */
  provisioner?: string;
}

export interface ObservedSecret {
  exists: boolean;
  keys: string[];
}

export interface Observed {
  /** Pods owned by this CodeMate. */
  pods: ObservedPod[];
  pvc?: ObservedClaim;
  /** Secrets referenced by the spec, by name; absent entries were not looked up. */
  secrets: Record<string, ObservedSecret>;
  /** The other CodeMates the operator knows, for one writer per branch (oneWriter.ts). */
  codemates?: readonly CodeMate[];
}

export type Action =
  | { type: 'createPod'; pod: PodManifest }
  | { type: 'deletePod'; name: string; reason: string }
  | { type: 'createPvc'; pvc: ReturnType<typeof desiredPvc> }
  /**
   * The lifecycle after the pull request closed, or after the session was idle for
   * spec.lifecycle.idleSuspendAfter (`by: 'idle'`, which a new message may undo): set spec.suspend, as
   * `codemate suspend` does.
   */
  | { type: 'suspend'; reason: string; by?: 'idle' }
  /** A message waits for a session suspended for idleness: spec.suspend back to false, marks cleared. */
  | { type: 'resume'; reason: string }
  /** The lifecycle after the pull request closed: delete the CodeMate (its pod and claim go with it). */
  | { type: 'deleteCodeMate'; reason: string };

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface Plan {
  actions: Action[];
  events: PlannedEvent[];
  /** The whole desired status; the executor writes it when it differs from the current one. */
  status: CodeMateStatus;
  requeueAfterMs?: number;
}

/** The events that report an action of the plan, not a change of status (execute.ts). */
export const actionEventReasons: ReadonlySet<string> = new Set([
  'PodCreated',
  'PodDeleted',
  'StorageCreated',
]);

/** How long to wait before looking again while something outside our control settles. */
export const requeue = {
  secretsMissing: 10_000,
  podTerminating: 2_000,
  starting: 15_000,
} as const;

interface Verdict {
  phase: Phase;
  message: string;
  podReady: ConditionInput;
  requeueAfterMs?: number;
}

export function reconcile(cm: CodeMate, observed: Observed, settings: SessionSettings, now: Date): Plan {
  const generation = cm.metadata.generation ?? 0;
  const previous = cm.status ?? {};
  let conditions: Condition[] = previous.conditions ?? [];
  const set = (c: ConditionInput) => (conditions = setCondition(conditions, c, generation, now));
  const actions: Action[] = [];
  const events: PlannedEvent[] = [];

  const parsed = parseSpec(cm.spec);
  if (!parsed.ok) {
    // The CRD schema should have refused this; record it rather than loop on it.
    return finish(cm, {
      phase: 'Failed',
      message: `invalid spec: ${parsed.error}`,
      podReady: podReadyFalse('InvalidSpec', parsed.error),
    });
  }
  const spec = parsed.spec;
  const desiredName = podName(cm);

  // Pods we own under another name (an older naming, a previous roll) are not ours to keep.
  for (const pod of observed.pods) {
    if (pod.name !== desiredName && !pod.deleting) {
      actions.push({ type: 'deletePod', name: pod.name, reason: 'not the current session pod' });
    }
  }
  const pod = observed.pods.find((p) => p.name === desiredName);

  const secretProblems = missingSecrets({ ...cm, spec }, observed.secrets, settings);
  set(
    secretProblems.length === 0
      ? {
          type: 'SecretsResolved',
          status: 'True',
          reason: 'Found',
          message: 'all referenced secrets and keys exist',
        }
      : {
          type: 'SecretsResolved',
          status: 'False',
          reason: 'SecretMissing',
          message: secretProblems.join('; '),
        },
  );

  if (spec.storage && !observed.pvc) actions.push({ type: 'createPvc', pvc: desiredPvc({ ...cm, spec }) });

  // What the poller has found on GitHub, which it records in status.
  const pr = previous.pullRequest;
  set(
    pr?.number
      ? {
          type: 'PullRequestLinked',
          status: 'True',
          reason: 'Linked',
          message: `following pull request #${pr.number} (${pr.state ?? 'unknown state'})`,
        }
      : {
          type: 'PullRequestLinked',
          status: 'False',
          reason: spec.repository.branch ? 'NoPullRequestYet' : 'NotLinked',
          message: spec.repository.branch
            ? `no pull request found for branch ${spec.repository.branch} yet`
            : 'no pull request found yet',
        },
  );
  set(githubAuthenticated(spec, previous));
  const budget = withinBudget({ spec, status: previous }, now);
  if (budget) set(budget);
  else conditions = conditions.filter((c) => c.type !== 'WithinBudget');

  const writer = branchWriter({ ...cm, spec }, observed.codemates ?? []);
  const conflict = conflictCondition(cm, writer, !!findCondition(previous.conditions, 'Conflict'));
  if (conflict) set(conflict);
  if (writer) {
    if (pod && !pod.deleting) actions.push({ type: 'deletePod', name: pod.name, reason: conflict!.message });
    return finish(cm, {
      phase: 'Pending',
      message: conflict!.message,
      podReady: podReadyFalse('Conflict', conflict!.message),
      requeueAfterMs: branchConflictRequeueMs,
    });
  }

  const verdict = decide({ ...cm, spec }, pod, observed.pvc, secretProblems, settings, actions);
  const idle = idleLifecycle({ ...cm, spec }, verdict, pod, now);
  if (idle?.action) actions.push(idle.action);
  if (idle?.action?.type === 'resume' && spec.suspend) {
    events.push({ type: 'Normal', reason: 'Resuming', message: idle.action.reason });
  }
  if (idle?.requeueAfterMs !== undefined) {
    verdict.requeueAfterMs = Math.min(verdict.requeueAfterMs ?? idle.requeueAfterMs, idle.requeueAfterMs);
  }
  const closed = closedPullRequest(spec, pr);
  if (closed) {
    const policy = spec.lifecycle?.onPullRequestClosed ?? 'Keep';
    const reason = `pull request #${closed.number} is ${closed.state} (spec.lifecycle.onPullRequestClosed: ${policy})`;
    // A kept session keeps running, and says it is done.
    if (policy === 'Keep' && verdict.phase === 'Running') {
      return finish(cm, {
        ...verdict,
        phase: 'Completed',
        message: `pull request #${closed.number} is ${closed.state}; the session is kept (spec.lifecycle.onPullRequestClosed: Keep)`,
      });
    }
    // Suspend and Delete change the object itself; until the next reconcile sees that, the phase stands.
    if (policy === 'Suspend' && !spec.suspend) actions.push({ type: 'suspend', reason });
    // Nothing else is worth doing for a CodeMate about to go.
    if (policy === 'Delete') actions.splice(0, actions.length, { type: 'deleteCodeMate', reason });
  }
  return finish(cm, verdict);

  function finish(target: CodeMate, v: Verdict): Plan {
    set(v.podReady);
    set({ type: 'SessionReady', ...sessionReady(v) });
    set(
      v.phase === 'Running' || v.phase === 'Completed'
        ? { type: 'Ready', status: 'True', reason: v.phase, message: 'the session is running' }
        : { type: 'Ready', status: 'False', reason: v.phase, message: v.message },
    );
    const status: CodeMateStatus = {
      ...previous,
      phase: v.phase,
      message: v.message,
      observedGeneration: generation,
      conditions,
    };
    delete status.podName;
    if (pod && !pod.deleting && v.phase !== 'Suspended') status.podName = pod.name;
    // The pod runs, ready, with the current spec: its session was given the task (claude's first prompt).
    if ((v.phase === 'Running' || v.phase === 'Completed') && target.spec.task && !taskStarted(target)) {
      status.task = { sha: taskSha(target.spec.task), startedAt: now.toISOString() };
    }
    for (const a of actions) {
      if (a.type === 'suspend' || a.type === 'deleteCodeMate' || a.type === 'resume') continue;
      if (a.type === 'createPod') {
        status.podName = a.pod.metadata.name;
        events.push({
          type: 'Normal',
          reason: 'PodCreated',
          message: `created session pod ${a.pod.metadata.name}`,
        });
      } else if (a.type === 'deletePod') {
        events.push({ type: 'Normal', reason: 'PodDeleted', message: `deleting pod ${a.name}: ${a.reason}` });
      } else {
        events.push({
          type: 'Normal',
          reason: 'StorageCreated',
          message: `created claim ${a.pvc.metadata.name}`,
        });
      }
    }
    const wasSecrets = findCondition(previous.conditions, 'SecretsResolved');
    const nowSecrets = findCondition(conditions, 'SecretsResolved')!;
    if (
      nowSecrets.status === 'False' &&
      (wasSecrets?.status !== 'False' || wasSecrets.message !== nowSecrets.message)
    ) {
      events.push({ type: 'Warning', reason: 'SecretMissing', message: nowSecrets.message });
    }
    if (v.phase !== previous.phase) {
      if (v.phase === 'Failed') events.push({ type: 'Warning', reason: 'SessionFailed', message: v.message });
      if (v.phase === 'Running')
        events.push({ type: 'Normal', reason: 'SessionRunning', message: v.message });
      if (v.phase === 'Suspended') {
        // Without storage the workspace went with the pod: a Warning, so that it is seen.
        const type = target.spec.storage ? 'Normal' : 'Warning';
        events.push({ type, reason: 'Suspended', message: v.message });
      }
      if (v.phase === 'Completed') events.push({ type: 'Normal', reason: 'Completed', message: v.message });
    }
    return { actions, events, status, ...(v.requeueAfterMs ? { requeueAfterMs: v.requeueAfterMs } : {}) };
  }
}

/**
 * The pull request the poller last saw closed or merged, when it is the one the spec names (a changed
 * spec.repository.pullRequest is not judged by the state of the one before).
 */
function closedPullRequest(
  spec: CodeMateSpec,
  pr: CodeMateStatus['pullRequest'],
): { number: number; state: 'closed' | 'merged' } | undefined {
  if (!pr?.number || (pr.state !== 'closed' && pr.state !== 'merged')) return undefined;
  if (spec.repository.pullRequest !== undefined && spec.repository.pullRequest !== pr.number)
    return undefined;
  return { number: pr.number, state: pr.state };
}

/** Whether GitHub accepts the session's token, as far as the poller has found out. */
function githubAuthenticated(spec: CodeMateSpec, status: CodeMateStatus): ConditionInput {
  const type = 'GitHubAuthenticated';
  if (status.github?.error) {
    const hint = status.github.hint ? ` (${status.github.hint})` : '';
    return {
      type,
      status: 'False',
      reason: status.github.errorReason ?? 'TokenRejected',
      message: `${status.github.error}${hint}`,
    };
  }
  if (status.github?.login) {
    return {
      type,
      status: 'True',
      reason: 'TokenAccepted',
      message: spec.github.tokenSecretRef
        ? `the token in ${spec.github.tokenSecretRef.name} belongs to @${status.github.login}`
        : `the session acts as the GitHub App's @${status.github.login} with an installation token`,
    };
  }
  if (spec.monitoring?.enabled === false) {
    return {
      type,
      status: 'Unknown',
      reason: 'MonitoringDisabled',
      message: 'monitoring is off, so nothing asks GitHub',
    };
  }
  return {
    type,
    status: 'Unknown',
    reason: 'NotCheckedYet',
    message: 'the poller has not yet asked GitHub whose token this is',
  };
}

/**
 * Whether the session may take more messages under spec.budget (status.usage, written after each turn);
 * undefined without a budget.
 */
function withinBudget(cm: Pick<CodeMate, 'spec' | 'status'>, now: Date): ConditionInput | undefined {
  const budget = cm.spec.budget;
  if (budget?.maxTokens === undefined && budget?.maxTokensPerDay === undefined) return undefined;
  const spent = budgetExhausted(cm, now);
  if (spent) {
    const words = budgetWords(spent);
    const when = spent.period === 'day' ? ` on ${spent.date} (UTC)` : '';
    return {
      type: 'WithinBudget',
      status: 'False',
      reason: 'BudgetExhausted',
      message: `the session used ${spent.used} tokens${when} of its ${words.budget}; new messages wait in AwaitingBudget: ${words.release}`,
    };
  }
  // Without the counts: the usage grows with every turn, and the condition would be written each time.
  return {
    type: 'WithinBudget',
    status: 'True',
    reason: 'UnderBudget',
    message: 'the session has tokens left of its budget (spec.budget)',
  };
}

function decide(
  cm: CodeMate,
  pod: ObservedPod | undefined,
  claim: ObservedClaim | undefined,
  secretProblems: string[],
  settings: SessionSettings,
  actions: Action[],
): Verdict {
  if (cm.spec.suspend) {
    if (pod && !pod.deleting)
      actions.push({ type: 'deletePod', name: pod.name, reason: 'spec.suspend is true' });
    return {
      phase: 'Suspended',
      message: suspendedMessage(cm),
      podReady: podReadyFalse('Suspended', 'spec.suspend is true'),
      ...(pod ? { requeueAfterMs: requeue.podTerminating } : {}),
    };
  }
  if (pod?.deleting) {
    return {
      phase: 'Starting',
      message: `waiting for pod ${pod.name} to terminate`,
      podReady: podReadyFalse('Terminating', `pod ${pod.name} is terminating`),
      requeueAfterMs: requeue.podTerminating,
    };
  }
  const desired = desiredPod(cm, settings);
  if (!pod) {
    if (secretProblems.length > 0) {
      return {
        phase: 'Pending',
        message: secretProblems.join('; '),
        podReady: podReadyFalse('SecretMissing', 'the pod waits for its secrets'),
        requeueAfterMs: requeue.secretsMissing,
      };
    }
    actions.push({ type: 'createPod', pod: desired });
    return {
      phase: 'Starting',
      message: `creating pod ${desired.metadata.name}`,
      podReady: podReadyFalse('Creating', `creating pod ${desired.metadata.name}`),
      requeueAfterMs: requeue.starting,
    };
  }
  if (pod.specHash !== desired.metadata.annotations[specHashAnnotation]) {
    actions.push({ type: 'deletePod', name: pod.name, reason: 'the spec changed; rolling the session pod' });
    return {
      phase: 'Starting',
      message: 'the spec changed; replacing the session pod',
      podReady: podReadyFalse('SpecChanged', 'replacing the pod for the new spec'),
      requeueAfterMs: requeue.podTerminating,
    };
  }
  if (pod.phase === 'Failed' || pod.phase === 'Succeeded') {
    const why = describeTermination(pod);
    return {
      phase: 'Failed',
      message: `session pod ${pod.name} ${pod.phase === 'Failed' ? 'failed' : 'exited'}: ${why}`,
      podReady: podReadyFalse(
        pod.terminated?.reason ?? (pod.phase === 'Failed' ? 'PodFailed' : 'SessionExited'),
        why,
      ),
    };
  }
  if (pod.waiting?.reason && /Err|BackOff|Invalid/.test(pod.waiting.reason)) {
    const message = `pod ${pod.name} cannot start: ${pod.waiting.reason}${pod.waiting.message ? `: ${pod.waiting.message}` : ''}`;
    return {
      phase: 'Starting',
      message,
      podReady: podReadyFalse(pod.waiting.reason, message),
      requeueAfterMs: requeue.starting,
    };
  }
  if (!pod.phase || pod.phase === 'Pending') {
    // A pod waits for its claim, or for a node, without a word of its own: say what it waits for.
    const unbound = cm.spec.storage && claim && claim.phase !== 'Bound';
    if (unbound || pod.unschedulable) {
      const scheduler = pod.unschedulable ? `the scheduler says: ${pod.unschedulable}` : undefined;
      const message = unbound
        ? [claimWaiting(claim), scheduler].filter(Boolean).join('; ')
        : `pod ${pod.name} cannot be scheduled: ${pod.unschedulable}`;
      return {
        phase: 'Pending',
        message,
        podReady: podReadyFalse(unbound ? 'ClaimNotBound' : 'Unschedulable', message),
        requeueAfterMs: requeue.starting,
      };
    }
  }
  if (pod.phase === 'Running' && pod.ready) {
    return {
      phase: 'Running',
      message: `session running in pod ${pod.name}`,
      podReady: { type: 'PodReady', status: 'True', reason: 'Ready', message: `pod ${pod.name} is ready` },
    };
  }
  return {
    phase: 'Starting',
    message: `pod ${pod.name} is ${pod.phase ?? 'Pending'}${pod.phase === 'Running' ? ' but not ready' : ''}`,
    podReady: podReadyFalse('NotReady', `pod ${pod.name} is not ready`),
    requeueAfterMs: requeue.starting,
  };
}

/** What a suspended CodeMate's status says: why, what wakes it, and what became of its workspace. */
export function suspendedMessage(cm: Pick<CodeMate, 'spec' | 'metadata'>): string {
  const after = cm.spec.lifecycle?.idleSuspendAfter;
  const why =
    cm.metadata.annotations?.[suspendedByAnnotation] === 'idle' && after
      ? `suspended after ${after} idle (spec.lifecycle.idleSuspendAfter); a new message resumes it`
      : 'suspended';
  return cm.spec.storage
    ? `${why}; the workspace claim is kept`
    : `${why}; the workspace is lost: spec.storage is unset, so work that was not committed and pushed is gone, and the next pod clones the repository again`;
}

/**
 * Idle suspend and its wake (docs/lifecycle.md). A running session whose hooks have said idle for
 * spec.lifecycle.idleSuspendAfter is suspended; idle counts from the later of the report and the pod's
 * readiness, so that a report of the pod before a suspend does not count for the next one. A CodeMate
 * suspended for idleness resumes when delivery asks for it (a message waits for the session); one that
 * a person suspended keeps no mark, so nothing but a person resumes it. Marks left on a CodeMate that is
 * not suspended (a `kubectl patch` resumed it) are cleared by the same action.
 */
function idleLifecycle(
  cm: CodeMate,
  verdict: Verdict,
  pod: ObservedPod | undefined,
  now: Date,
): { action?: Action; requeueAfterMs?: number } | undefined {
  const marks = cm.metadata.annotations ?? {};
  const byIdle = marks[suspendedByAnnotation] === 'idle';
  const wake = marks[wakeRequestedAnnotation];
  if (cm.spec.suspend) {
    if (byIdle && wake) {
      return { action: { type: 'resume', reason: `message ${wake} waits for the session; resuming it` } };
    }
    return undefined;
  }
  if (byIdle || wake) return { action: { type: 'resume', reason: 'clearing the marks of an idle suspend' } };
  const after = cm.spec.lifecycle?.idleSuspendAfter;
  const session = cm.status?.session;
  if (!after || verdict.phase !== 'Running' || session?.state !== 'idle' || !session.since) return undefined;
  const from = Math.max(Date.parse(session.since), pod?.readySince ? Date.parse(pod.readySince) : 0);
  const left = from + durationMs(after) - now.getTime();
  if (left > 0) return { requeueAfterMs: left };
  return {
    action: {
      type: 'suspend',
      by: 'idle',
      reason: `the session was idle for ${after} (spec.lifecycle.idleSuspendAfter)`,
    },
  };
}

/** Why a claim has no volume yet, and what to do about it. */
function claimWaiting(claim: ObservedClaim): string {
  const describe = `kubectl describe pvc ${claim.name}`;
  if (claim.phase === 'Lost')
    return `claim ${claim.name} lost its volume; its files are gone unless the volume comes back (${describe})`;
  if (claim.provisioner)
    return `waiting for provisioner ${claim.provisioner} to create a volume for claim ${claim.name}; if this lasts, check that the provisioner runs (${describe})`;
  if (!claim.storageClassName)
    return `claim ${claim.name} has no StorageClass and the cluster has no default one, so no volume will be provisioned for it; set spec.storage.storageClassName to a class from \`kubectl get storageclass\`, or create a PersistentVolume for the claim`;
  return `claim ${claim.name} is not bound to a volume of StorageClass ${claim.storageClassName} yet; if this lasts, check that the class exists and its provisioner runs (${describe})`;
}

function podReadyFalse(reason: string, message: string): ConditionInput {
  return { type: 'PodReady', status: 'False', reason, message };
}

function sessionReady(v: Verdict): Omit<ConditionInput, 'type'> {
  if (v.podReady.status === 'True')
    return { status: 'True', reason: 'TmuxSessionUp', message: 'tmux session claude-code is up' };
  return { status: 'False', reason: v.podReady.reason, message: v.podReady.message };
}

function describeTermination(pod: ObservedPod): string {
  const t = pod.terminated;
  if (!t) return `phase ${pod.phase}`;
  const parts = [
    t.reason,
    t.exitCode !== undefined ? `exit code ${t.exitCode}` : undefined,
    t.message?.trim(),
  ];
  return parts.filter(Boolean).join(', ');
}

function missingSecrets(
  cm: CodeMate,
  secrets: Record<string, ObservedSecret>,
  settings: SessionSettings,
): string[] {
  const { spec } = cm;
  const refs = [
    ...(spec.github.tokenSecretRef
      ? [{ field: 'spec.github.tokenSecretRef', ...spec.github.tokenSecretRef }]
      : []),
    ...(spec.github.app
      ? [{ field: 'spec.github.app.privateKeySecretRef', ...spec.github.app.privateKeySecretRef }]
      : []),
    { field: 'spec.anthropic.apiKeySecretRef', ...spec.anthropic.apiKeySecretRef },
  ];
  const problems: string[] = [];
  if (githubAppMode(spec)) {
    const tokenSecret = sessionTokenSecretName(cm);
    if (!spec.github.app && !settings.githubApp) {
      problems.push(
        'spec.github.tokenSecretRef is unset and the operator has no GitHub App: set one of them (docs/github-app.md)',
      );
    } else if (!secrets[tokenSecret]?.exists) {
      problems.push(
        `waiting for the session's installation token in secret "${tokenSecret}" (see the GitHubAuthenticated condition)`,
      );
    }
  }
  for (const ref of refs) {
    const secret = secrets[ref.name];
    if (!secret?.exists) problems.push(`secret "${ref.name}" (${ref.field}) not found`);
    else if (!secret.keys.includes(ref.key))
      problems.push(`secret "${ref.name}" has no key "${ref.key}" (${ref.field})`);
  }
  return [...new Set(problems)];
}

/** The facts reconcile needs from a claim object as the apiserver returns it. */
export function observeClaim(pvc: {
  metadata: { name?: string; annotations?: Record<string, string> };
  spec?: { storageClassName?: string };
  status?: { phase?: string };
}): ObservedClaim {
  const provisioner =
    pvc.metadata.annotations?.['volume.kubernetes.io/storage-provisioner'] ??
    pvc.metadata.annotations?.['volume.beta.kubernetes.io/storage-provisioner'];
  return {
    name: pvc.metadata.name ?? '',
    ...(pvc.status?.phase ? { phase: pvc.status.phase } : {}),
    ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
    ...(provisioner ? { provisioner } : {}),
  };
}

/** A pod condition as far as observePod reads it. */
export interface PodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** The facts reconcile needs from a pod object as the apiserver returns it. */
export function observePod(pod: {
  metadata: { name?: string; deletionTimestamp?: unknown; annotations?: Record<string, string> };
  status?: {
    phase?: string;
    conditions?: PodCondition[];
    containerStatuses?: Array<{
      name: string;
      state?: {
        terminated?: { reason?: string; exitCode?: number; message?: string };
        waiting?: { reason?: string; message?: string };
      };
    }>;
  };
}): ObservedPod {
  const container = pod.status?.containerStatuses?.find((c) => c.name === sessionContainer);
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  return {
    name: pod.metadata.name ?? '',
    phase: pod.status?.phase,
    deleting: Boolean(pod.metadata.deletionTimestamp),
    specHash: pod.metadata.annotations?.[specHashAnnotation],
    ready: ready !== undefined,
    ...(ready?.lastTransitionTime ? { readySince: ready.lastTransitionTime } : {}),
    ...(container?.state?.terminated ? { terminated: container.state.terminated } : {}),
    ...(container?.state?.waiting ? { waiting: container.state.waiting } : {}),
    ...(scheduled?.status === 'False' && scheduled.reason === 'Unschedulable'
      ? { unschedulable: scheduled.message ?? 'no reason given' }
      : {}),
  };
}
