/**
 * Delivers CodeMateMessages into sessions: per CodeMate one at a time, in order, each by one exec of
 * codemate-inject in the session pod. The inject command records the ids it has pasted, so a retry after
 * the operator died between the exec and the status write does not paste twice.
 *
 * Under spec.monitoring.delivery WhenIdle, the head message goes with the messages behind it that are
 * ready too (whenIdleBatch), in one request: the session pastes them as one prompt when no turn runs, or
 * nothing while one does, and delivery asks again shortly (docs/adr/0014-delivery-when-idle.md). Each
 * message keeps its own status and receipt.
 */
import {
  apiVersion,
  budgetExhausted,
  budgetWords,
  defaultDeliveryMode,
  group,
  kind,
  plural,
  sessionRunning,
  suspendedByAnnotation,
  version,
  wakeRequestedAnnotation,
  type SpentBudget,
} from '../api/codemate.js';
import type { CodeMate } from '../api/codemate.js';
import {
  awaitsApproval,
  bodySha256,
  deliveryOrder,
  frameBody,
  inHistory,
  isFinal,
  messageKind,
  messagePlural,
  retiredNow,
  withRetired,
  type CodeMateMessage,
  type History,
  type MessagePhase,
  type MessageStatus,
} from '../api/message.js';
import { isConflict, isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import {
  defaultApprovalExpirySeconds,
  deliveryBackoff,
  deliveryWorkers,
  injectAckTimeoutSeconds,
  retiredMessageMemoryMs,
  whenIdleBatch,
  whenIdleRetryMs,
  writtenStatusMemoryMs,
} from '../config/defaults.js';
import type { Logger } from '../observability/log.js';
import { on, runController, type RunningController } from '../runtime/controller.js';
import { TemporaryError } from '../runtime/errors.js';
import { watch, type Supervision, type Watched } from '../runtime/informers.js';
import { WorkQueue } from '../runtime/queue.js';
import { backoffDelay, equalJitter } from '../runtime/rate.js';
import { codemateLookup, type CodeMateObject } from './controller.js';
import { Injector, type InjectResult } from './injector.js';

/** codemate-inject's exit codes (setup/scripts/codemate-inject). */
export const injectExit = {
  delivered: 0,
  usage: 2,
  noSession: 3,
  blocked: 4,
  noAck: 5,
  shortInput: 6,
  starting: 7,
  /** The prompt box holds someone else's text (a person's draft, another message's leftover paste). */
  promptBusy: 8,
  /** Pasted and submitted, but neither acknowledged nor in the transcript in time: never pasted again. */
  unacknowledged: 9,
  /** WhenIdle: a turn runs, so nothing was pasted; ask again once it may have ended. */
  sessionBusy: 10,
} as const;

/** How long messages may wait and how retries back off (config: --message-expiry-seconds). */
export interface DeliveryPolicy {
  /** A message not delivered this long after it was created (or approved) ends Failed (Expired). */
  expiryMs: number;
  /** An untrusted message not approved this long after it was created ends Rejected (ApprovalExpired). */
  approvalExpiryMs?: number;
  /** The first retry waits about this long; each further one doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** [0, 1): the jitter's source, injectable so tests are exact. */
  random: () => number;
}

/** What the session looks like to delivery, from the CodeMate in the cache. */
export interface SessionFacts {
  /** The CodeMate's phase; undefined before its first reconcile. */
  phase: string | undefined;
  /** The pod to exec into, when the session runs. */
  pod: string | undefined;
  /** GitHub items delivered before whose messages retention deleted (status.history). */
  history?: History | undefined;
  /** Set while the token budget is used up (budgetExhausted): only the budget notice goes in. */
  budget?: SpentBudget | undefined;
}

/** The next step for the head message of one CodeMate (pure). */
export type Step =
  | { kind: 'inject'; pod: string }
  /** Write this status (nothing pasted); look again after requeueAfterMs, if set. */
  | { kind: 'record'; status: MessageStatus; requeueAfterMs?: number }
  /** Nothing to do or write until requeueAfterMs has passed (or an event says the session changed). */
  | { kind: 'wait'; requeueAfterMs: number };

export interface Outcome {
  status: MessageStatus;
  /** When to try again; undefined once the message is final. */
  retryAfterMs?: number;
}

function createdAt(message: CodeMateMessage, now: Date): number {
  return message.metadata.creationTimestamp
    ? new Date(message.metadata.creationTimestamp).getTime()
    : now.getTime();
}

type Policy = Pick<DeliveryPolicy, 'expiryMs' | 'approvalExpiryMs'>;

/**
 * The step of an untrusted message (docs/approvals.md), or undefined once it is approved and goes the
 * way of any other. Without a decision it waits in AwaitingApproval, holding up no other message, until
 * the approval expires; a denial, an expired wait or an approval of other text than the body end it.
 */
function approvalStep(message: CodeMateMessage, now: Date, policy: Policy): Step | undefined {
  const { trust, approval } = message.spec;
  if (!trust || trust.allowed) return undefined;
  const previous = message.status;
  const rejected = (reason: string, text: string): Step => ({
    kind: 'record',
    status: { ...previous, phase: 'Rejected', reason, message: text.slice(0, 4096), nextAttemptAt: null },
  });
  // Bots and the session's own identity are never injected, approved or not.
  if (!trust.approvable) {
    return rejected('Untrusted', trust.reason ?? 'rejected by the trust policy');
  }
  const how = approval && `@${approval.by.replace(/^@/, '')} (${approval.via}) at ${approval.at}`;
  if (approval?.decision === 'Denied') return rejected('Denied', `denied by ${how}`);
  if (approval && approval.bodySha256 !== bodySha256(message.spec.body)) {
    return rejected('ApprovalMismatch', `approved by ${how}, but for other text than this message holds`);
  }
  if (approval) {
    if (previous?.approvedBy === approval.by) return undefined;
    // Recorded once, before the delivery, so that every later status keeps who let it in.
    return {
      kind: 'record',
      status: {
        ...previous,
        phase: 'Pending',
        reason: 'Approved',
        message: `approved by ${how}`,
        approvedBy: approval.by,
      },
      requeueAfterMs: 0,
    };
  }
  const expiryMs = policy.approvalExpiryMs ?? defaultApprovalExpirySeconds * 1000;
  const expiresInMs = createdAt(message, now) + expiryMs - now.getTime();
  if (expiresInMs <= 0) {
    return rejected(
      'ApprovalExpired',
      `no trusted person approved it within ${formatDuration(expiryMs)} (${trust.reason ?? 'untrusted'})`,
    );
  }
  const waiting: MessageStatus = {
    ...previous,
    phase: 'AwaitingApproval',
    reason: 'Untrusted',
    message:
      `${trust.reason ?? 'rejected by the trust policy'}; it waits for a trusted approval: a 👍 on the ` +
      `comment, a reply "/codemate approve", or \`codemate approve ${message.metadata.name}\``,
  };
  if (previous !== undefined && previous.phase === waiting.phase && previous.message === waiting.message) {
    return { kind: 'wait', requeueAfterMs: expiresInMs };
  }
  return { kind: 'record', status: waiting, requeueAfterMs: expiresInMs };
}

/**
 * Decides what to do with a message before any exec. A session that is away (starting, suspended, its
 * pod being replaced) is not a failure: the message waits in Pending, with the reason, and is woken by
 * the CodeMate's next change. Only a permanent cause ends it: untrusted, or not delivered before it
 * expired. A retry never runs before status.nextAttemptAt, whatever woke the key.
 */
export function nextStep(message: CodeMateMessage, session: SessionFacts, now: Date, policy: Policy): Step {
  const previous = message.status;
  const approval = approvalStep(message, now, policy);
  if (approval) return approval;
  const source = message.spec.source;
  if (
    source.type !== 'cli' &&
    source.id &&
    inHistory(session.history, source.type, source.id, source.createdAt)
  ) {
    // Created again from a listing or a redelivery that raced with retention: never pasted twice.
    return {
      kind: 'record',
      status: {
        ...previous,
        phase: 'Delivered',
        reason: 'DeliveredBefore',
        message: 'this item was delivered before; its first message was deleted by retention',
      },
    };
  }
  // An approved message's wait for its session counts from the approval.
  const approvedAt = message.spec.approval ? new Date(message.spec.approval.at).getTime() : 0;
  const expiresInMs = Math.max(createdAt(message, now), approvedAt) + policy.expiryMs - now.getTime();
  if (expiresInMs <= 0) {
    const why = previous?.reason
      ? ` (last: ${previous.reason}${previous.message ? `, ${previous.message}` : ''})`
      : '';
    return {
      kind: 'record',
      status: {
        ...previous,
        phase: 'Failed',
        reason: 'Expired',
        message: `not delivered within ${formatDuration(policy.expiryMs)} of its creation${why}`.slice(
          0,
          4096,
        ),
        nextAttemptAt: null,
      },
    };
  }
  if (session.budget && source.type !== 'budget') {
    const waiting: MessageStatus = {
      ...previous,
      phase: 'AwaitingBudget',
      reason: 'BudgetExhausted',
      message:
        `the ${budgetWords(session.budget).budget} tokens is used up; ${budgetWords(session.budget).release} ` +
        `of CodeMate ${message.spec.codemate} to deliver it`,
      nextAttemptAt: null,
    };
    if (previous?.phase === waiting.phase && previous?.message === waiting.message) {
      return { kind: 'wait', requeueAfterMs: expiresInMs };
    }
    return { kind: 'record', status: waiting, requeueAfterMs: expiresInMs };
  }
  if (!sessionRunning(session.phase) || !session.pod) {
    const waiting: MessageStatus = {
      ...previous,
      phase: 'Pending',
      reason: 'WaitingForSession',
      message: `waiting for the session to run (CodeMate ${message.spec.codemate} is ${session.phase ?? 'not started yet'})`,
      // The retry clock starts again when the session is back.
      nextAttemptAt: null,
    };
    const unchanged =
      previous !== undefined &&
      previous.reason === waiting.reason &&
      previous.message === waiting.message &&
      !previous.nextAttemptAt;
    if (unchanged) {
      return { kind: 'wait', requeueAfterMs: expiresInMs };
    }
    return { kind: 'record', status: waiting, requeueAfterMs: expiresInMs };
  }
  const next = previous?.nextAttemptAt ? new Date(previous.nextAttemptAt).getTime() - now.getTime() : 0;
  if (next > 0) return { kind: 'wait', requeueAfterMs: Math.min(next, expiresInMs) };
  return { kind: 'inject', pod: session.pod };
}

/**
 * The status of a message that waits behind the head of its CodeMate's queue (pure), or undefined when
 * its status already says so. It gets what does not depend on its turn at once: Rejected, Expired,
 * DeliveredBefore, or WaitingForSession while the session is away. Otherwise `Queued`, written once.
 */
export function statusWhileQueued(
  message: CodeMateMessage,
  session: SessionFacts,
  now: Date,
  policy: Policy,
): MessageStatus | undefined {
  const step = nextStep(message, session, now, policy);
  if (step.kind === 'record') return step.status;
  const reason = message.status?.reason;
  const back =
    (reason === 'WaitingForSession' && sessionRunning(session.phase) && !!session.pod) ||
    message.status?.phase === 'AwaitingBudget';
  if (reason && !back) return undefined;
  return {
    ...message.status,
    phase: 'Pending',
    reason: 'Queued',
    message: `queued behind earlier messages of CodeMate ${message.spec.codemate}`,
  };
}

/**
 * The messages that go with the head of a CodeMate's queue under WhenIdle (pure): the head (whose step is
 * inject), then each next one in delivery order whose own step is inject too, up to the first that is not
 * (so the order holds) and within the limits of one prompt. `pending` is in delivery order.
 */
export function whenIdleBatchOf<M extends CodeMateMessage>(
  pending: M[],
  session: SessionFacts,
  now: Date,
  policy: Policy,
  limits: { messages: number; bytes: number } = whenIdleBatch,
): M[] {
  const batch: M[] = [];
  let bytes = 0;
  for (const message of pending) {
    if (batch.length >= limits.messages) break;
    if (nextStep(message, session, now, policy).kind !== 'inject') break;
    const size = Buffer.byteLength(frameBody(message.spec));
    if (batch.length > 0 && bytes + size > limits.bytes) break;
    batch.push(message);
    bytes += size;
  }
  return batch;
}

/** A step that ends the message (rejected, expired, delivered before): not held for the budget. */
function isFinalStep(step: Step): boolean {
  return step.kind === 'record' && isFinal(step.status.phase);
}

/** Exponential backoff with equal jitter: half the delay is fixed, half random; capped. */
export function backoffMs(attempts: number, policy: Omit<DeliveryPolicy, 'expiryMs'>): number {
  return equalJitter(backoffDelay(attempts, policy.baseDelayMs, policy.maxDelayMs), policy.random);
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

export interface AttemptFacts {
  previous: MessageStatus | undefined;
  now: Date;
  policy: Omit<DeliveryPolicy, 'expiryMs'>;
}

function attempt(facts: AttemptFacts): MessageStatus {
  const now = facts.now.toISOString();
  return {
    ...facts.previous,
    phase: 'Pending',
    attempts: (facts.previous?.attempts ?? 0) + 1,
    firstAttemptAt: facts.previous?.firstAttemptAt ?? now,
    lastAttemptAt: now,
    nextAttemptAt: null,
  };
}

/** A temporary failure: stays Pending, and the next attempt waits for its backoff. */
function retry(facts: AttemptFacts, reason: string, message: string): Outcome {
  const status = attempt(facts);
  const retryAfterMs = backoffMs(status.attempts ?? 1, facts.policy);
  return {
    status: {
      ...status,
      reason,
      message,
      nextAttemptAt: new Date(facts.now.getTime() + retryAfterMs).toISOString(),
    },
    retryAfterMs,
  };
}

/** The next status of a message after one exec of codemate-inject (pure). */
export function outcomeOfInject(exitCode: number, stderr: string, facts: AttemptFacts): Outcome {
  const detail =
    stderr
      .trim()
      .split('\n')
      .at(-1)
      ?.replace(/^codemate: /, '') ?? '';
  switch (exitCode) {
    case injectExit.sessionBusy:
      // Not an attempt: nothing was pasted, and the wait is for the turn's end, not a backoff.
      return {
        status: {
          ...facts.previous,
          phase: 'Pending',
          reason: 'WaitingForIdle',
          message: 'a turn is running; delivered with the messages waiting with it once the session is idle',
          nextAttemptAt: null,
        },
        retryAfterMs: whenIdleRetryMs,
      };
    case injectExit.delivered:
      return {
        status: {
          ...attempt(facts),
          phase: 'Delivered',
          reason: 'Acknowledged',
          message: 'the session received the text',
          deliveredAt: facts.now.toISOString(),
        },
      };
    case injectExit.blocked:
      return retry(facts, 'SessionBlocked', detail || 'the session is blocked on a dialog');
    case injectExit.noSession:
    case injectExit.starting:
      return retry(facts, 'SessionNotReady', detail || 'the session is not ready');
    case injectExit.noAck:
      return retry(facts, 'NoAcknowledgement', detail || 'pasted but not acknowledged');
    case injectExit.promptBusy:
      return retry(
        facts,
        'PromptBusy',
        detail || "the session's prompt box holds other text; nothing was pasted",
      );
    case injectExit.unacknowledged:
      return {
        status: {
          ...attempt(facts),
          phase: 'Failed',
          reason: 'Unacknowledged',
          message: detail || 'submitted, but the session never acknowledged it; not pasted again',
        },
      };
    case injectExit.usage:
    case injectExit.shortInput:
      return { status: { ...attempt(facts), phase: 'Failed', reason: 'InvalidMessage', message: detail } };
    default:
      return retry(facts, 'InjectFailed', `codemate-inject exited ${exitCode}${detail ? `: ${detail}` : ''}`);
  }
}

/** An exec that did not complete (the apiserver, the node or the pod went away): retried. */
export function outcomeOfExecError(error: Error, facts: AttemptFacts): Outcome {
  return retry(facts, 'ExecFailed', error.message.split('\n')[0] ?? 'exec failed');
}

export interface DeliveryOptions {
  kube: Kube;
  namespace: string | undefined;
  logger: Logger;
  /** The controller's CodeMate cache: a change of a session wakes its deliveries. */
  codemates: Watched<CodeMateObject>;
  supervision: Supervision;
  /**
   * Keep this many delivered messages per CodeMate; older ones are deleted and recorded as history, in
   * batches: up to a fifth more are kept between two trims (retiredNow).
   */
  retention: number;
  /** codemate-inject's ack timeout (config: injectAckTimeoutSeconds); the exec's own is derived from it. */
  ackTimeoutSeconds?: number;
  policy: DeliveryPolicy;
  onDelivered?: (message: CodeMateMessage, latencyMs: number) => void;
  /** Every run of codemate-inject, by its result (delivered, retry, failed) and how it ran. */
  onAttempt?: (result: 'delivered' | 'retry' | 'failed', path: 'channel' | 'exec') => void;
  /** Standing channels into sessions (default on); off, every message is one exec (adr/0007). */
  channels?: boolean;
  onFinal?: (message: CodeMateMessage, phase: MessagePhase) => void;
}

type MessageObject = CodeMateMessage & KubeObject;

export class DeliveryWorker {
  private readonly queue = new WorkQueue(deliveryBackoff);
  private readonly messages: Watched<MessageObject>;
  private readonly codemate: (namespace: string, name: string) => CodeMate | undefined;
  private readonly injector: Injector;
  private running: RunningController | undefined;
  /** Per message uid, the generation last seen: our own status writes do not wake the key. */
  private readonly generations = new Map<string, number | undefined>();
  /** Messages deleted by retention, by namespace/name, with when: see has(). */
  private readonly retiring = new Map<string, number>();
  /** Per CodeMate key, the session facts last seen: only a change wakes its deliveries. */
  private readonly sessions = new Map<string, string>();
  /** Statuses written but maybe not yet seen in the cache, by message uid (never mutate the cache). */
  private readonly written = new Map<
    string,
    { resourceVersion: string | undefined; status: MessageStatus; at: number }
  >();

  constructor(private readonly options: DeliveryOptions) {
    this.codemate = codemateLookup(options.codemates);
    this.injector = new Injector({ kube: options.kube, logger: options.logger, channels: options.channels });
    this.messages = watch<MessageObject>(
      options.kube,
      {
        apiVersion,
        kind: messageKind,
        plural: messagePlural,
        namespace: options.namespace,
        transform: withoutSettledBody,
      },
      options.supervision,
    );
  }

  private messageKey(event: 'add' | 'update' | 'delete', m: MessageObject): string | undefined {
    const uid = m.metadata.uid ?? m.metadata.name;
    if (event === 'delete') {
      this.generations.delete(uid);
      this.written.delete(uid);
      return undefined;
    }
    const generation = m.metadata.generation;
    const known = this.generations.has(uid) && this.generations.get(uid) === generation;
    this.generations.set(uid, generation);
    if (event === 'update' && known) return undefined; // a status write, most often our own
    return isFinal(m.status?.phase) ? undefined : `${m.metadata.namespace}/${m.spec.codemate}`;
  }

  get synced(): boolean {
    return this.messages.synced;
  }

  /** True when the message exists, or was just deleted by retention (its source is now history). */
  has(namespace: string, name: string): boolean {
    if (this.messages.get(name, namespace) !== undefined) return true;
    const retired = this.retiring.get(`${namespace}/${name}`);
    if (retired === undefined) return false;
    if (Date.now() - retired < retiredMessageMemoryMs) return true;
    this.retiring.delete(`${namespace}/${name}`);
    return false;
  }

  /**
   * A CodeMate event wakes its deliveries only when what delivery reads changed (the phase or the pod),
   * so the status writes of the controller and the poller do not re-queue them.
   */
  private sessionKey(event: 'add' | 'update' | 'delete', cm: CodeMateObject): string | undefined {
    const key = `${cm.metadata.namespace}/${cm.metadata.name}`;
    const facts =
      event === 'delete'
        ? 'gone'
        : `${cm.status?.phase ?? ''}|${cm.status?.podName ?? ''}|${budgetExhausted(cm)?.period ?? ''}`;
    if (this.sessions.get(key) === facts) return undefined;
    if (event === 'delete') this.sessions.delete(key);
    else this.sessions.set(key, facts);
    return key;
  }

  async start(workers = deliveryWorkers): Promise<void> {
    this.running = await runController({
      keyField: 'codemate',
      what: 'delivery',
      logger: this.options.logger,
      queue: this.queue,
      sources: [
        on(this.messages, (event, m) => this.messageKey(event, m)),
        on(this.options.codemates, (event, cm) => this.sessionKey(event, cm)),
      ],
      reconcile: async (key) => ({ requeueAfterMs: await this.deliverNext(key) }),
      workers,
    });
  }

  async stop(): Promise<void> {
    await this.running?.stop();
    this.injector.closeAll();
  }

  /** A message with the status this worker last wrote, if the cache has not caught up yet. */
  private current(m: MessageObject): MessageObject {
    const uid = m.metadata.uid ?? m.metadata.name;
    const written = this.written.get(uid);
    if (!written) return m;
    if (
      caughtUp(m.metadata.resourceVersion, written.resourceVersion) ||
      Date.now() - written.at > writtenStatusMemoryMs
    ) {
      this.written.delete(uid);
      return m;
    }
    return { ...m, status: written.status };
  }

  /** The messages of one CodeMate that wait for an approval: the poller looks for one on GitHub. */
  awaitingApproval(namespace: string, codemate: string): MessageObject[] {
    return this.open(namespace, codemate).filter((m) => awaitsApproval(m));
  }

  /** The undelivered messages of one CodeMate, in delivery order. */
  private open(namespace: string, codemate: string): MessageObject[] {
    return this.messages
      .list(namespace)
      .filter((m) => m.spec.codemate === codemate)
      .map((m) => this.current(m))
      .filter((m) => !isFinal(m.status?.phase))
      .sort(deliveryOrder);
  }

  /** Records the wait of the messages that await an approval, and ends expired ones; returns their soonest expiry. */
  private async recordAwaiting(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    let requeueAfterMs: number | undefined;
    for (const message of this.awaitingApproval(namespace, name)) {
      const step = approvalStep(message, new Date(), this.options.policy)!;
      if (step.kind === 'record') {
        await this.writeStatus(message, step.status);
        if (isFinal(step.status.phase)) this.final(key, message, step.status);
      }
      if (step.kind !== 'inject' && step.requeueAfterMs !== undefined) {
        requeueAfterMs = Math.min(step.requeueAfterMs, requeueAfterMs ?? step.requeueAfterMs);
      }
    }
    return requeueAfterMs;
  }

  /** Handles one CodeMate's messages; returns when to look again. */
  private async deliverNext(key: string): Promise<number | undefined> {
    const awaiting = await this.recordAwaiting(key);
    const head = await this.deliverHead(key);
    return awaiting === undefined ? head : Math.min(awaiting, head ?? awaiting);
  }

  /** Handles the oldest undelivered message of one CodeMate; returns when to look again. */
  private async deliverHead(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    // The session's channel opens as soon as it runs, so that its first message does not wait for it.
    const running = this.codemate(namespace, name);
    if (sessionRunning(running?.status?.phase) && running?.status?.podName) {
      this.injector.prepare(key, namespace, running.status.podName);
    } else {
      this.injector.forget(key);
    }
    // Messages that wait for an approval are out of the queue until one is decided.
    let pending = this.open(namespace, name).filter((m) => !awaitsApproval(m));
    if (pending.length === 0) return this.applyRetention(namespace, name);
    const cm = this.codemate(namespace, name);
    if (!cm) return undefined; // the messages go with their CodeMate (ownerReferences)
    const now = new Date();
    const session: SessionFacts = {
      phase: cm.status?.phase,
      pod: cm.status?.podName,
      history: cm.status?.history,
      budget: budgetExhausted(cm, now),
    };
    if (session.budget) {
      // Past the budget every message waits, in order, except the notice that tells the session so.
      const waiting: MessageObject[] = [];
      for (const m of pending) {
        const step = nextStep(m, session, now, this.options.policy);
        if (m.spec.source.type === 'budget' || isFinalStep(step)) continue;
        if (step.kind === 'record') await this.writeStatus(m, step.status);
        waiting.push(m);
      }
      pending = pending.filter((m) => !waiting.includes(m));
      if (pending.length === 0) return undefined;
    }
    const message = pending[0]!;
    // What the others wait for, so that `kubectl get cm8msg` says it for every message, each written once.
    for (const behind of pending.slice(1)) {
      const status = statusWhileQueued(behind, session, now, this.options.policy);
      if (!status) continue;
      await this.writeStatus(behind, status);
      if (isFinal(status.phase)) this.final(key, behind, status);
    }
    const step = nextStep(message, session, now, this.options.policy);
    if (step.kind !== 'inject' && !isFinalStep(step)) await this.requestWake(cm, message);
    if (step.kind === 'wait') return step.requeueAfterMs;
    if (step.kind === 'record') {
      await this.writeStatus(message, step.status);
      if (isFinal(step.status.phase)) {
        this.final(key, message, step.status);
        return 0;
      }
      return step.requeueAfterMs;
    }
    const ackTimeoutSeconds = this.options.ackTimeoutSeconds ?? injectAckTimeoutSeconds;
    const whenIdle = (cm.spec.monitoring?.delivery ?? defaultDeliveryMode) === 'WhenIdle';
    const batch = whenIdle ? whenIdleBatchOf(pending, session, now, this.options.policy) : [message];
    let results: InjectResult[] | Error;
    try {
      results = whenIdle
        ? await this.injector.injectWhenIdle(
            key,
            namespace,
            step.pod,
            batch.map((m) => ({ id: m.metadata.name, text: frameBody(m.spec) })),
            ackTimeoutSeconds,
          )
        : [
            await this.injector.inject(
              key,
              namespace,
              step.pod,
              message.metadata.name,
              frameBody(message.spec),
              ackTimeoutSeconds,
            ),
          ];
    } catch (error) {
      results = error as Error;
    }
    // Each message gets its own outcome, status and receipt; the key is looked at again as soon as the
    // soonest of them asks.
    let requeueAfterMs: number | undefined;
    for (const [i, m] of batch.entries()) {
      const facts: AttemptFacts = { previous: m.status, now: new Date(), policy: this.options.policy };
      const result = results instanceof Error ? results : results[i]!;
      const after = await this.recordOutcome(
        key,
        m,
        result instanceof Error
          ? outcomeOfExecError(result, facts)
          : outcomeOfInject(result.exitCode, result.stderr, facts),
        result instanceof Error ? 'exec' : result.path,
        now,
      );
      if (after !== undefined) requeueAfterMs = Math.min(after, requeueAfterMs ?? after);
    }
    return requeueAfterMs;
  }

  /**
   * A message waits for a session the operator suspended for idleness: asks the reconcile to resume it
   * (docs/lifecycle.md). A session a person suspended carries no mark, and stays suspended.
   */
  private async requestWake(cm: CodeMate, message: MessageObject): Promise<void> {
    const marks = cm.metadata.annotations ?? {};
    if (!cm.spec.suspend || marks[suspendedByAnnotation] !== 'idle' || marks[wakeRequestedAnnotation]) return;
    try {
      await this.options.kube.mergePatch({
        apiVersion,
        kind,
        metadata: {
          name: cm.metadata.name,
          namespace: cm.metadata.namespace,
          annotations: { [wakeRequestedAnnotation]: message.metadata.name },
        },
      });
      this.options.logger.info(
        { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, message: message.metadata.name },
        'a message waits for the session suspended for idleness; asking to resume it',
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** Writes one message's outcome after an injection; returns when to look at its CodeMate again. */
  private async recordOutcome(
    key: string,
    message: MessageObject,
    outcome: Outcome,
    path: 'channel' | 'exec',
    now: Date,
  ): Promise<number | undefined> {
    const phase = outcome.status.phase;
    if (outcome.status.reason === 'WaitingForIdle') {
      // Asked again every whenIdleRetryMs while the turn runs: written once, not an attempt, not logged.
      if (message.status?.reason !== 'WaitingForIdle' || message.status.message !== outcome.status.message) {
        await this.writeStatus(message, outcome.status);
      }
      return outcome.retryAfterMs;
    }
    this.options.onAttempt?.(
      phase === 'Delivered' ? 'delivered' : phase === 'Failed' ? 'failed' : 'retry',
      path,
    );
    await this.writeStatus(message, outcome.status);
    if (phase === 'Delivered') {
      const created = new Date(message.metadata.creationTimestamp ?? now).getTime();
      this.options.onDelivered?.(message, Date.now() - created);
      this.options.logger.info({ codemate: key, message: message.metadata.name }, 'message delivered');
      return 0;
    }
    if (phase === 'Failed') {
      this.final(key, message, outcome.status);
      return 0;
    }
    this.options.logger.info(
      {
        codemate: key,
        message: message.metadata.name,
        reason: outcome.status.reason,
        attempts: outcome.status.attempts,
        retryInMs: outcome.retryAfterMs,
      },
      outcome.status.message ?? 'delivery will be retried',
    );
    return outcome.retryAfterMs;
  }

  private final(key: string, message: MessageObject, status: MessageStatus): void {
    if (status.phase === 'Failed') {
      this.options.logger.warn(
        { codemate: key, message: message.metadata.name, reason: status.reason },
        status.message ?? 'message failed',
      );
    }
    if (status.phase) this.options.onFinal?.(message, status.phase);
  }

  private async writeStatus(message: MessageObject, status: MessageStatus): Promise<void> {
    try {
      const written = await this.options.kube.patchStatus(
        {
          group,
          version,
          plural: messagePlural,
          namespace: message.metadata.namespace,
          name: message.metadata.name,
        },
        status,
      );
      // Remember what we wrote until the cache shows it, so the next pass neither delivers the same head
      // again nor mistakes its backoff; the informer's cached object itself is never changed.
      this.written.set(message.metadata.uid ?? message.metadata.name, {
        resourceVersion: written.metadata.resourceVersion,
        status,
        at: Date.now(),
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Deletes delivered messages beyond the newest `retention`, in batches (retiredNow). Before a
   * GitHub-sourced one goes, its source is recorded in the CodeMate's status.history, so that neither the
   * poller nor the webhook re-creates it from a listing or a redelivery (what was delivered stays known
   * after its object is gone).
   */
  private async applyRetention(namespace: string, codemate: string): Promise<number | undefined> {
    const delivered = this.messages
      .list(namespace)
      .filter((m) => m.spec.codemate === codemate)
      .map((m) => this.current(m))
      .filter((m) => m.status?.phase === 'Delivered')
      .sort(deliveryOrder);
    const old = retiredNow(delivered, this.options.retention);
    if (old.length === 0) return undefined;
    const cm = this.codemate(namespace, codemate);
    if (!cm) return undefined;
    const history = withRetired(
      cm.status?.history,
      old.map((m) => m.spec.source),
    );
    if (history !== cm.status?.history) {
      try {
        // Conditional on the resourceVersion: a stale cache must not drop entries another write added.
        await this.options.kube.patchStatus(
          { group, version, plural, namespace, name: codemate },
          { history },
          cm.metadata.resourceVersion,
        );
      } catch (error) {
        if (isConflict(error)) {
          throw new TemporaryError(`the cached CodeMate ${namespace}/${codemate} is behind its history`, {
            retryAfterMs: 1000,
            cause: error,
          });
        }
        if (isNotFound(error)) return undefined;
        throw error;
      }
    }
    for (const [k, at] of this.retiring)
      if (Date.now() - at >= retiredMessageMemoryMs) this.retiring.delete(k);
    for (const m of old) {
      // Until the caches show the deletion and the history, the poller must not take the item for new.
      this.retiring.set(`${namespace}/${m.metadata.name}`, Date.now());
      await this.options.kube.delete(apiVersion, messageKind, m.metadata.name, namespace);
    }
    return undefined;
  }
}

/**
 * Whether a cached object has reached a write of ours. Resource versions are etcd revisions: opaque by
 * contract, but numeric and increasing in every apiserver, so a higher one has seen our write too.
 */
function caughtUp(cached: string | undefined, written: string | undefined): boolean {
  if (cached === undefined || written === undefined) return true;
  if (cached === written) return true;
  try {
    return BigInt(cached) > BigInt(written);
  } catch {
    return false;
  }
}

/**
 * What the cache keeps of a message: a settled one (delivered, rejected, failed, expired) without its
 * body, which nothing reads again. Retention keeps up to 50 settled messages per CodeMate, and their
 * bodies (up to 256 KiB each) would be most of the operator's memory.
 */
function withoutSettledBody(object: KubeObject): KubeObject {
  const message = object as MessageObject;
  if (isFinal(message.status?.phase) && message.spec?.body) message.spec.body = '';
  return object;
}
