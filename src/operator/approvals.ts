/**
 * The poller's approval check (docs/approvals.md). GitHub sends no webhook for reactions, so at each poll
 * the comments that wait for approval, and only those, have their 👍 reactions listed with conditional
 * requests (a 304 while nobody reacts costs nothing); a reactor's permission on the repository decides
 * whether the 👍 counts. A trusted `/codemate approve` (or `/codemate deny`) on the pull request counts for
 * every comment written before it. The decision is written once into the message's spec.approval (the CRD
 * refuses a second), and delivery takes it from there, so an item approved in several ways is delivered
 * once, and a denied one never.
 */
import { apiVersion, type CodeMate } from '../api/codemate.js';
import type { GitHubItem } from '../api/github.js';
import { messageKind, type Approval, type CodeMateMessage } from '../api/message.js';
import type { GitHub } from '../clients/github.js';
import { isInvalid, isNotFound, type Kube } from '../clients/kube.js';
import { checkApproval, type ApprovalCandidate } from '../github/approvals.js';
import type { RepositoryRef } from '../github/repository.js';
import { approvalCommand, judge, judgeReactor, trustPolicyOf, type TrustPolicy } from '../github/trust.js';
import { errorFields, type Logger } from '../observability/log.js';

export interface ApprovalsOptions {
  kube: Kube;
  logger: Logger;
  /** The CodeMate's messages that wait for an approval (from delivery's cache). */
  awaiting: (namespace: string, codemate: string) => CodeMateMessage[];
}

/** What one poll knows while it checks the waiting comments of one CodeMate. */
interface PollContext {
  gh: GitHub;
  repo: RepositoryRef;
  /** The pull request's comments as GitHub shows them now. */
  comments: readonly GitHubItem[];
  /** The trusted `/codemate approve` and `/codemate deny` comments among them. */
  commands: readonly ApprovalCandidate[];
  policy: TrustPolicy;
  self: string;
  /** A reactor's permission on the repository, asked once per poll. */
  permission: (login: string) => Promise<string>;
}

export class Approvals {
  /** What was said about each message, so that a poll repeats no log line (bounded). */
  private readonly told = new Set<string>();

  constructor(private readonly options: ApprovalsOptions) {}

  /** Looks for approvals of the CodeMate's waiting comments; `comments` is the poll's fresh listing. */
  async check(
    cm: CodeMate,
    gh: GitHub,
    repo: RepositoryRef,
    comments: readonly GitHubItem[],
    self: string,
  ): Promise<void> {
    const waiting = this.options
      .awaiting(cm.metadata.namespace, cm.metadata.name)
      .filter((m) => m.spec.source.type === 'issue_comment' && m.spec.source.id);
    if (waiting.length === 0) return;
    const policy = trustPolicyOf(cm.spec);
    const permissions = new Map<string, Promise<string>>();
    const context: PollContext = {
      gh,
      repo,
      comments,
      commands: comments.flatMap((c): ApprovalCandidate[] => {
        const decision = approvalCommand(c.body);
        if (!decision || !c.user || !judge(c.user, c.authorAssociation, policy, self).allowed) return [];
        return [{ decision, by: c.user.login, via: 'comment', at: c.createdAt, url: c.htmlUrl }];
      }),
      policy,
      self,
      permission: (login) => {
        if (!permissions.has(login)) permissions.set(login, gh.permission(repo.owner, repo.repo, login));
        return permissions.get(login)!;
      },
    };
    for (const message of waiting) {
      try {
        await this.checkOne(message, context);
      } catch (error) {
        // What cannot be read now is read at the next poll; the rest of the poll goes on.
        this.tell(message, 'warn', `could not check its approvals: ${String(errorFields(error).err)}`);
      }
    }
  }

  private async checkOne(message: CodeMateMessage, context: PollContext): Promise<void> {
    const { gh, repo, policy, self } = context;
    const id = Number(message.spec.source.id);
    const reactions: ApprovalCandidate[] = [];
    for (const reaction of await gh.approvalReactions(repo.owner, repo.repo, id)) {
      if (!reaction.user) continue;
      const login = reaction.user.login;
      const verdict = judgeReactor(reaction.user, await context.permission(login), policy, self);
      if (verdict.allowed) {
        reactions.push({ decision: 'Approved', by: login, via: 'reaction', at: reaction.createdAt });
      } else this.tell(message, 'debug', `a 👍 that does not approve: ${verdict.reason}`);
    }
    // The comment's text is read after its reactions, never before: an edit made before a 👍 that is
    // counted shows in it. (The poll's listing may predate both the edit and the 👍.)
    const comment =
      reactions.length > 0
        ? await gh.issueComment(repo.owner, repo.repo, id)
        : context.comments.find((c) => c.id === id);
    const result = checkApproval(message, comment, [...context.commands, ...reactions]);
    if ('approval' in result) await this.record(message, result.approval);
    else if ('refused' in result) this.tell(message, 'warn', `approval not taken: ${result.refused}`);
  }

  private tell(message: CodeMateMessage, level: 'debug' | 'warn', text: string): void {
    const key = `${message.metadata.namespace}/${message.metadata.name} ${text}`;
    if (this.told.has(key)) return;
    if (this.told.size >= 1000) this.told.clear();
    this.told.add(key);
    this.options.logger[level](
      { codemate: `${message.metadata.namespace}/${message.spec.codemate}`, message: message.metadata.name },
      text,
    );
  }

  /** Writes the decision; a decision already there (the CRD refuses a change: 422) stands. */
  private async record(message: CodeMateMessage, approval: Approval): Promise<void> {
    try {
      await this.options.kube.mergePatch({
        apiVersion,
        kind: messageKind,
        metadata: { name: message.metadata.name, namespace: message.metadata.namespace },
        spec: { approval },
      });
      this.options.logger.info(
        {
          codemate: `${message.metadata.namespace}/${message.spec.codemate}`,
          message: message.metadata.name,
          decision: approval.decision,
          by: approval.by,
          via: approval.via,
        },
        approval.decision === 'Denied' ? 'untrusted comment denied' : 'untrusted comment approved',
      );
    } catch (error) {
      if (!isInvalid(error) && !isNotFound(error)) throw error;
    }
  }
}
