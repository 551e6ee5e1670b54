/**
 * Reactions on GitHub: 👀 on the comment a delivered message came from, so its author sees that the
 * session received it. Reviews have no reactions; CLI messages have no GitHub item.
 */
import type { CodeMate } from '../api/codemate.js';
import type { CodeMateMessage } from '../api/message.js';
import { parseRepository } from '../github/repository.js';
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
    const { type, id } = message.spec.source;
    if ((type !== 'issue_comment' && type !== 'review_comment') || !id) return;
    const cm = this.options.codemate(message.metadata.namespace, message.spec.codemate);
    const repo = cm && parseRepository(cm.spec.repository.url);
    if (!cm || !repo) return;
    const { gh } = await this.options.github.forCodeMate(cm);
    await gh.acknowledge(type, repo.owner, repo.repo, Number(id));
  }
}
