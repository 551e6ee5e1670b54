/**
 * Reactions on GitHub: 👀 on the comment a delivered message came from, so its author sees that the
 * session received it. Reviews have no reactions, so a review's message puts 👀 on the review comments
 * it carried (not on those in threads it left out). CLI messages, CI failures and the end of a draft have
 * no comment to react to.
 */
import type { CodeMate } from '../api/codemate.js';
import type { CodeMateMessage } from '../api/message.js';
import { parseRepository } from '../github/repository.js';
import { reviewThreads } from '../github/reviewThreads.js';
import type { GitHubClients } from './githubClients.js';

export class Reactions {
  constructor(
    private readonly options: {
      github: GitHubClients;
      codemate: (namespace: string, name: string) => CodeMate | undefined;
    },
  ) {}

  /** 👀 on the GitHub item a delivered message came from. */
  async acknowledge(message: CodeMateMessage): Promise<void> {
    const { type, id, pullRequest } = message.spec.source;
    if (type === 'cli' || type === 'ci_failure' || type === 'ready_for_review' || type === 'budget' || !id)
      return;
    const cm = this.options.codemate(message.metadata.namespace, message.spec.codemate);
    const repo = cm && parseRepository(cm.spec.repository.url);
    if (!cm || !repo) return;
    const { gh, self } = await this.options.github.forCodeMate(cm);
    if (type !== 'review') {
      await gh.acknowledge(type, repo.owner, repo.repo, Number(id));
      return;
    }
    if (!pullRequest) return;
    // The poller listed these moments ago with the same conditional cache: a 304, free.
    const comments = await gh.reviewComments(repo.owner, repo.repo, pullRequest);
    for (const thread of reviewThreads(Number(id), comments, self).threads) {
      for (const comment of thread.added) {
        await gh.acknowledge('review_comment', repo.owner, repo.repo, comment.id);
      }
    }
  }
}
