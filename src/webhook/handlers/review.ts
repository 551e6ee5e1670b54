/**
 * pull_request_review.submitted and pull_request_review_comment.created: the CodeMates following the
 * pull request are asked to poll now. A review becomes one message with all of its threads, and the
 * first of its several deliveries must already hold all of them, which one payload does not: the poller
 * lists them with the session's token, which the webhook does not hold (adr/0013). The message's name
 * is the review's, so the deliveries and the poll all end in one message.
 */
import type { RoutedEvent } from '../../github/events.js';
import { followersOf, type CodeMateLookup } from '../codemates.js';
import { nobodyFollows, type Answer } from '../answer.js';
import { requestPolls, type AnnotationWriter } from './pullRequest.js';

export async function handleReview(
  event: Extract<RoutedEvent, { kind: 'review' }>,
  deps: { codemates: CodeMateLookup; kube: AnnotationWriter; now: () => Date },
): Promise<Answer> {
  const followers = followersOf(deps.codemates, event);
  if (followers.length === 0) return nobodyFollows(event);
  // The session's own replies are reviews too; they never become its messages, so they need no poll.
  const self = (login: string | undefined) => login?.toLowerCase();
  const others = followers.filter(
    (cm) => !event.author || self(cm.status?.github?.login) !== self(event.author),
  );
  if (others.length === 0) {
    return {
      status: 202,
      body: { status: 'ignored', reason: `review ${event.reviewId} is the session's own` },
    };
  }
  const polled = await requestPolls(others, deps);
  return { status: 200, body: { status: 'poll-requested', review: event.reviewId, codemates: polled } };
}
