/** From a verified delivery to its answer: route the event, then hand it to its handler. */
import { isForbidden, isUnreachable, statusCode, statusMessage } from '../clients/kube.js';
import { routeEvent } from '../github/events.js';
import type { Logger } from '../observability/log.js';
import { errorFields } from '../observability/log.js';
import type { WebhookMetrics } from '../observability/metrics.js';
import type { CodeMateLookup } from './codemates.js';
import type { Answer } from './answer.js';
import { DeadlineError } from './server.js';
import { handleChecks } from './handlers/checks.js';
import { handleItem, type MessageWriter } from './handlers/item.js';
import { handlePullRequest, type AnnotationWriter } from './handlers/pullRequest.js';
import { handleReview } from './handlers/review.js';

export interface DispatchDeps {
  codemates: CodeMateLookup;
  kube: MessageWriter & AnnotationWriter;
  logger: Logger;
  metrics?: WebhookMetrics;
  now?: () => Date;
}

export async function dispatch(
  event: string,
  payload: unknown,
  delivery: string | undefined,
  deps: DispatchDeps,
): Promise<Answer> {
  const routed = routeEvent(event, payload as Parameters<typeof routeEvent>[1]);
  if (routed.kind === 'ping') {
    const zen = (payload as { zen?: unknown }).zen;
    return { status: 200, body: { status: 'pong', ...(typeof zen === 'string' ? { zen } : {}) } };
  }
  if (routed.kind === 'ignored') return { status: 202, body: { status: 'ignored', reason: routed.reason } };
  if (!deps.codemates.synced) {
    return {
      status: 503,
      body: { status: 'unavailable', reason: 'the CodeMate cache is not synced yet; GitHub may redeliver' },
    };
  }
  const now = deps.now ?? (() => new Date());
  const answer =
    routed.kind === 'item'
      ? await handleItem(routed, { ...deps, now })
      : routed.kind === 'review'
        ? await handleReview(routed, { ...deps, now })
        : routed.kind === 'checks'
          ? await handleChecks(routed, { ...deps, now })
          : await handlePullRequest(routed, { ...deps, now });
  for (const outcome of (answer.body.outcomes as Array<{ result: string }> | undefined) ?? []) {
    deps.metrics?.messages.inc({ result: outcome.result });
  }
  deps.logger.info(
    {
      event,
      delivery,
      repository: routed.repository,
      pullRequest: routed.kind === 'checks' ? routed.pullRequests : routed.pullRequest,
      ...answer.body,
    },
    'webhook delivery handled',
  );
  return answer;
}

/**
 * What GitHub hears when a delivery could not be stored. GitHub does not retry by itself; a 503 tells
 * whoever looks at Recent Deliveries to redeliver later, and the poller catches up meanwhile.
 */
export function answerError(error: unknown, logger: Logger): Answer {
  const code = statusCode(error);
  if (isForbidden(error)) {
    logger.error(errorFields(error), 'the webhook may not write to the Kubernetes API');
    return {
      status: 500,
      body: {
        status: 'error',
        reason: `forbidden: ${statusMessage(error)}; apply the RBAC in manifests/webhook.yaml`,
      },
    };
  }
  if (
    error instanceof DeadlineError ||
    isUnreachable(error) ||
    (code !== undefined && (code >= 500 || code === 429))
  ) {
    logger.error(errorFields(error), 'could not store the delivery; the poller will catch up');
    return {
      status: 503,
      body: {
        status: 'unavailable',
        reason:
          error instanceof DeadlineError
            ? 'the Kubernetes API did not answer in time; redeliver later, or wait for the poller'
            : 'the Kubernetes API is unreachable; redeliver later, or wait for the poller to catch up',
      },
    };
  }
  logger.error(errorFields(error), 'the Kubernetes API refused the delivery');
  return {
    status: 500,
    body: { status: 'error', reason: `the Kubernetes API refused it: ${statusMessage(error)}` },
  };
}
