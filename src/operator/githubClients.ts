/**
 * GitHub clients by CodeMate: one per token (read from the CodeMate's secret), sharing one conditional
 * request cache, each with the login its token belongs to. The poller and the reactions use them.
 */
import type { CodeMate } from '../api/codemate.js';
import { ConditionalCache, GitHub, type GitHubRequestObserver } from '../clients/github.js';
import type { Kube, KubeObject } from '../clients/kube.js';
import type { Logger } from '../observability/log.js';

export interface GitHubClientsOptions {
  kube: Kube;
  logger: Logger;
  githubApiUrl: string | undefined;
  /** Per-request timeout; a request that takes longer is retried. */
  githubTimeoutMs?: number;
  observer?: GitHubRequestObserver;
}

export class GitHubClients {
  private readonly clients = new Map<string, GitHub>();
  private readonly selves = new Map<string, string>();
  private readonly cache = new ConditionalCache();

  constructor(private readonly options: GitHubClientsOptions) {}

  /** The GitHub client for the CodeMate's token, and the login that token belongs to. */
  async forCodeMate(cm: CodeMate): Promise<{ gh: GitHub; self: string }> {
    const ref = cm.spec.github.tokenSecretRef;
    const secret = await this.options.kube.get<KubeObject & { data?: Record<string, string> }>(
      'v1',
      'Secret',
      ref.name,
      cm.metadata.namespace,
    );
    const encoded = secret.data?.[ref.key ?? 'token'];
    if (!encoded) throw new Error(`secret ${ref.name} has no key ${ref.key ?? 'token'}`);
    const token = Buffer.from(encoded, 'base64').toString('utf8').trim();
    let client = this.clients.get(token);
    if (!client) {
      client = new GitHub({
        token,
        baseUrl: this.options.githubApiUrl,
        cache: this.cache,
        ...(this.options.githubTimeoutMs ? { timeoutMs: this.options.githubTimeoutMs } : {}),
        log: { warn: (m) => this.options.logger.warn(m), error: (m) => this.options.logger.error(m) },
        ...(this.options.observer ? { observer: this.options.observer } : {}),
      });
      this.clients.set(token, client);
    }
    let self = this.selves.get(token);
    if (!self) {
      self = (await client.whoami()).login;
      this.selves.set(token, self);
    }
    return { gh: client, self };
  }

  /** Forgets every client and login, so that a replaced token is asked again from scratch. */
  forget(): void {
    this.clients.clear();
    this.selves.clear();
  }
}
