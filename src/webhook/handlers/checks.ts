/**
 * check_suite, check_run and workflow_run completed with a failure: the CodeMates following one of the
 * pull requests the payload lists, or its head branch, are asked to poll now. The poller reads the failed
 * jobs and their logs with the session's token, which the webhook does not hold, and only for the head
 * it follows; so a run of another commit that reaches a follower by its branch name costs one poll and
 * yields no message.
 */
import type { RoutedEvent } from '../../github/events.js';
import { branchKey, pullRequestKey, type CodeMateLookup } from '../codemates.js';
import type { Answer } from '../answer.js';
import { requestPolls, type AnnotationWriter } from './pullRequest.js';

export async function handleChecks(
  event: Extract<RoutedEvent, { kind: 'checks' }>,
  deps: { codemates: CodeMateLookup; kube: AnnotationWriter; now: () => Date },
): Promise<Answer> {
  const keys = event.pullRequests.map((n) => pullRequestKey(event.repository, n));
  if (event.headRef) keys.push(branchKey(event.repository, event.headRef));
  const followers = deps.codemates.find(keys);
  if (followers.length === 0) {
    const prs = event.pullRequests.map((n) => `#${n}`).join(', ');
    const what = `${event.repository}${prs ? ` ${prs}` : ''}${event.headRef ? ` or branch ${event.headRef}` : ''}`;
    return { status: 202, body: { status: 'ignored', reason: `no CodeMate follows ${what}` }, final: false };
  }
  const polled = await requestPolls(followers, deps);
  return {
    status: 200,
    body: { status: 'poll-requested', event: event.event, conclusion: event.conclusion, codemates: polled },
  };
}
