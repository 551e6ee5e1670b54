/**
 * Delivers CodeMateMessages into sessions: per CodeMate one at a time, in order, each by one exec of
 * codemate-inject in the session pod. The inject command records the ids it has pasted, so a retry after
 * the operator died between the exec and the status write does not paste twice.
 */
import { apiVersion, sessionRunning } from '../api/codemate.js';
import type { CodeMate } from '../api/codemate.js';
import {
  deliveryOrder,
  frameBody,
  isFinal,
  type CodeMateMessage,
  type MessageStatus,
} from '../api/message.js';
import { execInPod } from '../clients/exec.js';
import { supervisedInformer, type Informer } from '../clients/informer.js';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import { WorkQueue } from './queue.js';
import { sessionContainer } from './session.js';

/** codemate-inject's exit codes (setup/scripts/codemate-inject). */
export const injectExit = {
  delivered: 0,
  usage: 2,
  noSession: 3,
  blocked: 4,
  noAck: 5,
  shortInput: 6,
  starting: 7,
} as const;

export interface Outcome {
  status: MessageStatus;
  /** When to try again; undefined once the message is final. */
  retryAfterMs?: number;
}

export interface AttemptFacts {
  previous: MessageStatus | undefined;
  now: Date;
  /** Give up after this long since the first attempt. */
  boundMs: number;
}

function attempt(facts: AttemptFacts): MessageStatus {
  const now = facts.now.toISOString();
  return {
    ...facts.previous,
    phase: 'Pending',
    attempts: (facts.previous?.attempts ?? 0) + 1,
    firstAttemptAt: facts.previous?.firstAttemptAt ?? now,
    lastAttemptAt: now,
  };
}

function retryOrFail(facts: AttemptFacts, reason: string, message: string): Outcome {
  const status = { ...attempt(facts), reason, message };
  const elapsed = facts.now.getTime() - new Date(status.firstAttemptAt!).getTime();
  if (elapsed >= facts.boundMs) {
    return {
      status: {
        ...status,
        phase: 'Failed',
        message: `${message}; gave up after ${Math.round(elapsed / 1000)} s`,
      },
    };
  }
  const retryAfterMs = Math.min(30_000, 1000 * 2 ** Math.min(5, (status.attempts ?? 1) - 1));
  return { status, retryAfterMs };
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
      return retryOrFail(facts, 'SessionBlocked', detail || 'the session is blocked on a dialog');
    case injectExit.noSession:
    case injectExit.starting:
      return retryOrFail(facts, 'SessionNotReady', detail || 'the session is not ready');
    case injectExit.noAck:
      return retryOrFail(facts, 'NoAcknowledgement', detail || 'pasted but not acknowledged');
    case injectExit.usage:
    case injectExit.shortInput:
      return { status: { ...attempt(facts), phase: 'Failed', reason: 'InvalidMessage', message: detail } };
    default:
      return retryOrFail(
        facts,
        'InjectFailed',
        `codemate-inject exited ${exitCode}${detail ? `: ${detail}` : ''}`,
      );
  }
}

export interface DeliveryOptions {
  kube: Kube;
  namespace: string | undefined;
  logger: Logger;
  /** Looks up a CodeMate in the controller's cache. */
  codemate: (namespace: string, name: string) => CodeMate | undefined;
  /** Keep this many delivered messages per CodeMate; older ones are deleted. */
  retention: number;
  boundMs: number;
  onDelivered?: (message: CodeMateMessage, latencyMs: number) => void;
}

type MessageObject = CodeMateMessage & KubeObject;

export class DeliveryWorker {
  private readonly queue = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 30_000 });
  private readonly messages: Informer<MessageObject>;
  private workers: Array<Promise<void>> = [];

  constructor(private readonly options: DeliveryOptions) {
    const ns = options.namespace;
    this.messages = supervisedInformer<MessageObject>(options.kube, {
      apiVersion,
      kind: 'CodeMateMessage',
      plural: 'codematemessages',
      namespace: ns,
      onEvent: (_e, m) => {
        if (!isFinal(m.status?.phase)) this.queue.add(`${m.metadata.namespace}/${m.spec.codemate}`);
      },
      onRestart: (error) => options.logger.warn(errorFields(error), 'message watch broke; restarting it'),
    });
  }

  get synced(): boolean {
    return this.messages.synced;
  }

  has(namespace: string, name: string): boolean {
    return this.messages.get(name, namespace) !== undefined;
  }

  /** Wakes the deliveries of one CodeMate, e.g. when its session became ready. */
  kick(namespace: string, codemate: string): void {
    this.queue.add(`${namespace}/${codemate}`);
  }

  async start(workers = 4): Promise<void> {
    await this.messages.start();
    for (let i = 0; i < workers; i++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.messages.stop();
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const retryAfterMs = await this.deliverNext(key);
        this.queue.forget(key);
        if (retryAfterMs !== undefined) this.queue.addAfter(key, retryAfterMs);
      } catch (error) {
        const delay = this.queue.addRateLimited(key);
        this.options.logger.error(
          { codemate: key, retryInMs: delay, ...errorFields(error) },
          'delivery failed',
        );
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** Handles the oldest undelivered message of one CodeMate; returns when to look again. */
  private async deliverNext(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const pending = this.messages
      .list(namespace)
      .filter((m) => m.spec.codemate === name && !isFinal(m.status?.phase))
      .sort(deliveryOrder);
    const message = pending[0];
    if (!message) {
      await this.applyRetention(namespace, name);
      return undefined;
    }
    const facts: AttemptFacts = { previous: message.status, now: new Date(), boundMs: this.options.boundMs };
    if (message.spec.trust && !message.spec.trust.allowed) {
      await this.writeStatus(message, {
        phase: 'Rejected',
        reason: 'Untrusted',
        message: message.spec.trust.reason ?? 'rejected by the trust policy',
      });
      return 0;
    }
    const cm = this.options.codemate(namespace, name);
    if (!cm) return undefined; // the messages go with their CodeMate (ownerReferences)
    const pod = cm.status?.podName;
    if (!sessionRunning(cm.status?.phase) || !pod) {
      const outcome = retryOrFail(
        facts,
        'SessionNotReady',
        `CodeMate ${name} is ${cm.status?.phase ?? 'not started'}`,
      );
      await this.writeStatus(message, outcome.status);
      return outcome.retryAfterMs ?? 0;
    }
    const text = frameBody(message.spec);
    const started = Date.now();
    let outcome: Outcome;
    try {
      const result = await execInPod(
        this.options.kube,
        namespace,
        pod,
        [
          'codemate-inject',
          '--bytes',
          String(Buffer.byteLength(text)),
          '--timeout',
          '20',
          message.metadata.name,
        ],
        { container: sessionContainer, stdin: text, timeoutMs: 60_000 },
      );
      outcome = outcomeOfInject(result.exitCode, result.stderr, facts);
    } catch (error) {
      outcome = retryOrFail(facts, 'ExecFailed', (error as Error).message.split('\n')[0] ?? 'exec failed');
    }
    await this.writeStatus(message, outcome.status);
    if (outcome.status.phase === 'Delivered') {
      const created = new Date(message.metadata.creationTimestamp ?? started).getTime();
      this.options.onDelivered?.(message, Date.now() - created);
      this.options.logger.info({ codemate: key, message: message.metadata.name }, 'message delivered');
      return 0;
    }
    if (outcome.status.phase === 'Failed') {
      this.options.logger.warn(
        { codemate: key, message: message.metadata.name, reason: outcome.status.reason },
        outcome.status.message ?? 'message failed',
      );
      return 0;
    }
    return outcome.retryAfterMs;
  }

  private async writeStatus(message: MessageObject, status: MessageStatus): Promise<void> {
    try {
      await this.options.kube.patchStatus(
        {
          group: 'codemate.io',
          version: 'v1alpha1',
          plural: 'codematemessages',
          namespace: message.metadata.namespace,
          name: message.metadata.name,
        },
        status,
      );
      // Keep the cache in step at once, so the next pass does not deliver the same head again.
      message.status = status;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async applyRetention(namespace: string, codemate: string): Promise<void> {
    const delivered = this.messages
      .list(namespace)
      .filter((m) => m.spec.codemate === codemate && m.status?.phase === 'Delivered')
      .sort(deliveryOrder);
    for (const old of delivered.slice(0, Math.max(0, delivered.length - this.options.retention))) {
      await this.options.kube.delete(apiVersion, 'CodeMateMessage', old.metadata.name, namespace);
    }
  }
}
