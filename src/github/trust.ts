/**
 * The trust policy: whose GitHub text may reach a session that holds write credentials, and who may let
 * in a refused item (docs/approvals.md). Applied before a message is created: a refused item from a person
 * waits for a trusted approval (AwaitingApproval); one from a bot or the session itself is Rejected and
 * kept for the audit trail. Pure.
 */
import type { CodeMateSpec } from '../api/codemate.js';
import type { Approval } from '../api/message.js';

export const defaultTrustedAssociations = ['OWNER', 'MEMBER', 'COLLABORATOR'] as const;

export interface TrustPolicy {
  associations: readonly string[];
  allowedUsers: readonly string[];
}

export interface Author {
  login: string;
  /** GitHub's user type: User, Bot, Organization. */
  type?: string | undefined;
}

export interface Verdict {
  allowed: boolean;
  reason: string;
  /** Refused, but a trusted person may approve it: a person's text, never a bot's or the session's own. */
  approvable?: boolean;
}

export function trustPolicyOf(spec: CodeMateSpec): TrustPolicy {
  const trust = spec.monitoring?.trust;
  return {
    associations: trust?.associations ?? defaultTrustedAssociations,
    allowedUsers: trust?.allowedUsers ?? [],
  };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Bots and the session's own login are refused whatever the policy says, so that the session never
 * talks to itself or to another automation in a loop.
 */
export function judge(
  author: Author,
  association: string | undefined,
  policy: TrustPolicy,
  selfLogin?: string,
): Verdict {
  if (author.type === 'Bot' || /\[bot\]$/i.test(author.login)) {
    return { allowed: false, reason: `@${author.login} is a bot; bots are never injected` };
  }
  if (selfLogin && same(author.login, selfLogin)) {
    return { allowed: false, reason: `@${author.login} is the session's own GitHub identity` };
  }
  if (policy.allowedUsers.some((u) => same(u, author.login))) {
    return { allowed: true, reason: `@${author.login} is listed in spec.monitoring.trust.allowedUsers` };
  }
  const assoc = (association ?? 'NONE').toUpperCase();
  if (policy.associations.includes(assoc)) {
    return { allowed: true, reason: `author association ${assoc} is trusted` };
  }
  return {
    allowed: false,
    approvable: true,
    reason: `author association ${assoc} is not trusted (trusted: ${policy.associations.join(', ') || 'none'}; add the login to spec.monitoring.trust.allowedUsers to allow it)`,
  };
}

/**
 * Whether a 👍 reaction counts as an approval. A reaction carries no author association, so the reactor's
 * permission on the repository stands in for it: write or above (write, maintain, admin) is at least a
 * COLLABORATOR, and admin also an OWNER. Someone with write access can push code the session runs
 * anyway, so approving a comment gives them nothing new. Listed users, bots and the session: as judge.
 */
export function judgeReactor(
  reactor: Author,
  permission: string | undefined,
  policy: TrustPolicy,
  selfLogin?: string,
): Verdict {
  const associations: Record<string, string[]> = {
    admin: ['OWNER', 'COLLABORATOR'],
    maintain: ['COLLABORATOR'],
    write: ['COLLABORATOR'],
  };
  const trusted = (associations[permission ?? ''] ?? []).find((a) => policy.associations.includes(a));
  const verdict = judge(reactor, trusted ?? 'NONE', policy, selfLogin);
  return { ...verdict, reason: `${verdict.reason}; repository permission: ${permission ?? 'none'}` };
}

/**
 * A comment that is `/codemate approve` or `/codemate deny` and nothing else: a command, never a message.
 * From a trusted author it approves (or refuses) the comments written before it that wait on the pull
 * request; the decision it states, or undefined for any other comment.
 */
export function approvalCommand(body: string): Approval['decision'] | undefined {
  const command = /^\s*\/codemate\s+(approve|deny)\s*$/i.exec(body);
  if (!command) return undefined;
  return command[1]!.toLowerCase() === 'approve' ? 'Approved' : 'Denied';
}
