/**
 * issue_comment.created (on a pull request): one CodeMateMessage per CodeMate that follows the pull
 * request, with the trust policy's verdict. The names are the poller's, so whichever of the webhook replicas and
 * the poller creates a message first wins and the others get a harmless 409. An untrusted author's message
 * waits for an approval (docs/approvals.md); a trusted `/codemate approve` (or `deny`) is no message but
 * asks the followers to poll, and the poller, which can read what the approver saw, records the decision.
 */
import type { CodeMate } from '../../api/codemate.js';
import { isConflict, isNotFound, type KubeObject } from '../../clients/kube.js';
import type { RoutedEvent } from '../../github/events.js';
import { messageFor, notNewBecause } from '../../github/items.js';
import { approvalCommand, judge, trustPolicyOf } from '../../github/trust.js';
import { followersOf, type CodeMateLookup } from '../codemates.js';
import { nobodyFollows, type Answer } from '../answer.js';
import { requestPolls, type AnnotationWriter } from './pullRequest.js';

export interface MessageWriter {
  create<T extends KubeObject>(object: T): Promise<unknown>;
}

export type Outcome =
  | { codemate: string; result: 'created' | 'exists'; message: string; trusted: boolean }
  | { codemate: string; result: 'history' | 'deferred'; reason: string };

export async function handleItem(
  event: Extract<RoutedEvent, { kind: 'item' }>,
  deps: { codemates: CodeMateLookup; kube: MessageWriter & AnnotationWriter; now: () => Date },
): Promise<Answer> {
  const followers = followersOf(deps.codemates, event);
  if (followers.length === 0) return nobodyFollows(event);
  if (approvalCommand(event.item.body)) return decide(event, followers, deps);
  const outcomes = await Promise.all(followers.map((cm) => store(cm, event, deps.kube)));
  const created = outcomes.some((o) => o.result === 'created');
  const stored = outcomes.some((o) => o.result === 'created' || o.result === 'exists');
  return {
    status: created ? 201 : stored ? 200 : 202,
    body: { status: stored ? 'stored' : 'skipped', outcomes },
    final: !outcomes.some((o) => o.result === 'deferred'),
  };
}

async function store(
  cm: CodeMate,
  event: Extract<RoutedEvent, { kind: 'item' }>,
  kube: MessageWriter,
): Promise<Outcome> {
  const codemate = `${cm.metadata.namespace}/${cm.metadata.name}`;
  const history = notNewBecause(cm, event.type, event.item);
  if (history) return { codemate, result: 'history', reason: history };
  // The session's own comments must never come back to it. Until the operator has recorded whose token
  // the session holds, only the poller (which asks GitHub) can tell, so it creates this message.
  const self = cm.status?.github?.login;
  if (!self) {
    return {
      codemate,
      result: 'deferred',
      reason: "the session's GitHub login is not known yet; the poller will pick this up",
    };
  }
  const message = messageFor(cm, event.type, event.item, event.pullRequest, self);
  const trusted = message.spec.trust?.allowed ?? false;
  try {
    await kube.create(message as unknown as KubeObject);
    return { codemate, result: 'created', message: message.metadata.name, trusted };
  } catch (error) {
    if (isConflict(error)) return { codemate, result: 'exists', message: message.metadata.name, trusted };
    if (isNotFound(error)) return { codemate, result: 'history', reason: 'the CodeMate is gone' };
    throw error;
  }
}

/** `/codemate approve` or `/codemate deny`: the followers whose trust policy trusts its author poll now. */
async function decide(
  event: Extract<RoutedEvent, { kind: 'item' }>,
  followers: CodeMate[],
  deps: { kube: AnnotationWriter; now: () => Date },
): Promise<Answer> {
  const author = event.item.user ?? { login: 'ghost' };
  const trusting = followers.filter(
    (cm) =>
      judge(author, event.item.authorAssociation, trustPolicyOf(cm.spec), cm.status?.github?.login).allowed,
  );
  if (trusting.length === 0) {
    return {
      status: 202,
      body: {
        status: 'ignored',
        reason: `@${author.login} may not approve or deny for any CodeMate that follows it`,
      },
    };
  }
  const polled = await requestPolls(trusting, deps);
  return { status: 200, body: { status: 'poll-requested', approval: event.item.id, codemates: polled } };
}
