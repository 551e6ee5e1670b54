/**
 * The trust policy: whose GitHub text may reach a session that holds write credentials. Applied before a
 * message is created; a refused item is still recorded (as a Rejected message) for the audit trail. Pure.
 */
import type { CodeMateSpec } from '../api/codemate.js';

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
    reason: `author association ${assoc} is not trusted (trusted: ${policy.associations.join(', ') || 'none'}; add the login to spec.monitoring.trust.allowedUsers to allow it)`,
  };
}
