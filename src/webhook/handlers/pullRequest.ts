/**
 * pull_request.opened, reopened, closed and ready_for_review: the CodeMates following that pull request, or its head
 * branch, are asked to poll now. The operator's poller is the one place that links a branch to its pull
 * request and records its state, from which the reconcile applies the lifecycle policy; the webhook only
 * moves that poll forward by setting an annotation, which an admission policy in manifests/webhook.yaml
 * keeps it from changing anything else.
 */
import { apiVersion, kind, pollRequestedAnnotation, type CodeMate } from '../../api/codemate.js';
import { isNotFound, type KubeObject } from '../../clients/kube.js';
import type { RoutedEvent } from '../../github/events.js';
import { followersOf, type CodeMateLookup } from '../codemates.js';
import type { Answer } from '../answer.js';

export interface AnnotationWriter {
  mergePatch<T extends KubeObject>(object: T): Promise<unknown>;
}

export async function handlePullRequest(
  event: Extract<RoutedEvent, { kind: 'pull_request' }>,
  deps: { codemates: CodeMateLookup; kube: AnnotationWriter; now: () => Date },
): Promise<Answer> {
  const followers = followersOf(deps.codemates, event);
  if (followers.length === 0) {
    const what = `${event.repository}#${event.pullRequest}${event.headRef ? ` or branch ${event.headRef}` : ''}`;
    return { status: 202, body: { status: 'ignored', reason: `no CodeMate follows ${what}` }, final: false };
  }
  const polled = await requestPolls(followers, deps);
  return { status: 200, body: { status: 'poll-requested', action: event.action, codemates: polled } };
}

/** Asks the poller of each CodeMate to poll now; the CodeMates that are still there. */
export async function requestPolls(
  codemates: readonly CodeMate[],
  deps: { kube: AnnotationWriter; now: () => Date },
): Promise<string[]> {
  const requestedAt = deps.now().toISOString();
  const polled: string[] = [];
  for (const cm of codemates) {
    try {
      await deps.kube.mergePatch({
        apiVersion,
        kind,
        metadata: {
          name: cm.metadata.name,
          namespace: cm.metadata.namespace,
          annotations: { [pollRequestedAnnotation]: requestedAt },
        },
      });
      polled.push(`${cm.metadata.namespace}/${cm.metadata.name}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  return polled;
}
