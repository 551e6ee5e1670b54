/**
 * GitHub clients by CodeMate, sharing one conditional request cache, each with the login it acts as. The
 * poller, the reactions and the session tokens use them. A CodeMate authenticates with the token of
 * spec.github.tokenSecretRef, or, without one, as a GitHub App (spec.github.app, else the operator's):
 * then its client uses installation tokens, cached and renewed before they expire, and acts as the App's
 * bot user.
 */
import { readFile } from 'node:fs/promises';
import { githubAppMode, type CodeMate } from '../api/codemate.js';
import { ConditionalCache, GitHub, type GitHubRequestObserver, type TokenSource } from '../clients/github.js';
import {
  describeAppError,
  GitHubApp,
  type AppError,
  type GitHubAppCredentials,
  type InstallationToken,
} from '../clients/githubApp.js';
import type { Kube, KubeObject } from '../clients/kube.js';
import { githubHosts } from '../config/github.js';
import { parseRepository } from '../github/repository.js';
import { KeptReads } from '../runtime/keptReads.js';
import type { Logger } from '../observability/log.js';

/** The operator's own GitHub App (CODEMATE_GITHUB_APP_*), for CodeMates without a token or App. */
export interface OperatorApp {
  appId: number;
  installationId?: number | undefined;
  /**
   * The mounted private key, read on each use: a key rotated in its Secret is used without a restart
   * once the kubelet has updated the file.
   */
  privateKeyFile: string;
}

export interface GitHubClientsOptions {
  kube: Kube;
  logger: Logger;
  githubApiUrl: string | undefined;
  /** Per-request timeout; a request that takes longer is retried. */
  githubTimeoutMs?: number;
  observer?: GitHubRequestObserver;
  app?: OperatorApp | undefined;
}

/** Asking GitHub as an App failed: the reason, message and hint a condition shows. */
export class GitHubAppError extends Error {
  constructor(readonly described: AppError) {
    super(described.message);
  }
}

/**
 * A renewed installation token is asked for when less than this is left of the one in hand (or less than
 * half its life, for a token issued for less than ten minutes).
 */
const renewBeforeMs = 5 * 60_000;

type SecretObject = KubeObject & { data?: Record<string, string> };

/** How long a Secret read for a token or key is used before it is read again. */
const secretKeepMs = 60_000;

export class GitHubClients {
  private readonly clients = new Map<string, GitHub>();
  private readonly selves = new Map<string, string>();
  private readonly apps = new Map<string, GitHubApp>();
  private readonly cache = new ConditionalCache();

  constructor(private readonly options: GitHubClientsOptions) {}

  /** Whether the operator has an App of its own. */
  get hasApp(): boolean {
    return this.options.app !== undefined;
  }

  /** The GitHub client for the CodeMate, the login it acts as, and in App mode the App's id. */
  async forCodeMate(cm: CodeMate): Promise<{ gh: GitHub; self: string; appId?: number }> {
    if (githubAppMode(cm.spec)) return this.forApp(cm);
    const ref = cm.spec.github.tokenSecretRef!;
    const token = await this.secretValue(cm.metadata.namespace, ref.name, ref.key ?? 'token');
    let client = this.clients.get(token);
    if (!client) {
      client = this.newClient(token);
      this.clients.set(token, client);
    }
    let self = this.selves.get(token);
    if (!self) {
      self = (await client.whoami()).login;
      this.selves.set(token, self);
    }
    return { gh: client, self };
  }

  /**
   * The App a CodeMate authenticates as and the installation that covers its repository. Failures are
   * GitHubAppErrors, with a hint.
   */
  async appFor(
    cm: CodeMate,
  ): Promise<{ app: GitHubApp; installationId: number; owner: string; repo: string }> {
    const repository = parseRepository(cm.spec.repository.url);
    if (!repository) throw new Error(`${cm.spec.repository.url} does not name a GitHub repository`);
    const { owner, repo } = repository;
    const own = cm.spec.github.app;
    let credentials: GitHubAppCredentials & { installationId?: number | undefined };
    if (own) {
      const ref = own.privateKeySecretRef;
      credentials = {
        appId: own.appId,
        installationId: own.installationId,
        privateKey: await this.secretValue(cm.metadata.namespace, ref.name, ref.key ?? 'private-key'),
        keySource: `secret ${cm.metadata.namespace}/${ref.name} (key ${ref.key ?? 'private-key'})`,
      };
    } else if (this.options.app) {
      credentials = await this.operatorCredentials(this.options.app);
    } else {
      throw new GitHubAppError({
        reason: 'AppNotConfigured',
        message: 'spec.github.tokenSecretRef is unset and the operator has no GitHub App',
        hint: 'set spec.github.tokenSecretRef, spec.github.app, or the chart value githubApp (docs/github-app.md)',
      });
    }
    const app = this.app(credentials);
    try {
      const installationId = credentials.installationId ?? (await app.installationFor(owner, repo));
      return { app, installationId, owner, repo };
    } catch (error) {
      throw this.appError(error, credentials, `${owner}/${repo}`);
    }
  }

  /** The operator's own App, for what is not any one CodeMate's: its webhook deliveries. */
  async operatorApp(): Promise<GitHubApp> {
    if (!this.options.app) throw new Error('the operator has no GitHub App');
    return this.app(await this.operatorCredentials(this.options.app));
  }

  private async operatorCredentials(
    app: OperatorApp,
  ): Promise<GitHubAppCredentials & { installationId?: number | undefined }> {
    const { appId, installationId, privateKeyFile } = app;
    const privateKey = await readFile(privateKeyFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new GitHubAppError({
        reason: 'AppKeyRejected',
        message: `cannot read the private key of GitHub App ${appId} at ${privateKeyFile}: ${error.code ?? String(error)}`,
        hint: 'mount the Secret that holds the PEM file there (chart value github.app.privateKeySecret)',
      });
    });
    return { appId, installationId, privateKey, keySource: `file ${privateKeyFile}` };
  }

  /** A GitHubAppError for a failure of `app` on `repository` (owner/repo). */
  appError(error: unknown, credentials: GitHubAppCredentials, repository: string): GitHubAppError {
    if (error instanceof GitHubAppError) return error;
    return new GitHubAppError(
      describeAppError(error, {
        appId: credentials.appId,
        keySource: credentials.keySource,
        repository,
        web: githubHosts(this.options.githubApiUrl).web,
      }),
    );
  }

  private async forApp(cm: CodeMate): Promise<{ gh: GitHub; self: string; appId: number }> {
    const { app, installationId, owner, repo } = await this.appFor(cm);
    const key = `app ${app.credentials.appId} installation ${installationId}`;
    let client = this.clients.get(key);
    if (!client) {
      client = this.newClient(this.installationTokens(app, installationId, `${owner}/${repo}`, key));
      this.clients.set(key, client);
    }
    let self = this.selves.get(key);
    if (!self) {
      try {
        self = (await app.identity()).botLogin;
      } catch (error) {
        throw this.appError(error, app.credentials, `${owner}/${repo}`);
      }
      this.selves.set(key, self);
    }
    return { gh: client, self, appId: app.credentials.appId };
  }

  /** The operator's installation tokens for one installation: one at a time, renewed before it expires. */
  private installationTokens(
    app: GitHubApp,
    installationId: number,
    repository: string,
    key: string,
  ): TokenSource {
    let current: (InstallationToken & { renewAt: number }) | undefined;
    let pending: Promise<InstallationToken> | undefined;
    return {
      key,
      token: async ({ refresh = false } = {}) => {
        if (current && Date.now() < current.renewAt && !refresh) return current.token;
        const issuedAt = Date.now();
        pending ??= app
          .installationToken(installationId)
          .then((t) => {
            const expires = new Date(t.expiresAt).getTime();
            return (current = { ...t, renewAt: expires - Math.min(renewBeforeMs, (expires - issuedAt) / 2) });
          })
          .catch((error: unknown) => {
            throw this.appError(error, app.credentials, repository);
          })
          .finally(() => (pending = undefined));
        return (await pending).token;
      },
    };
  }

  private app(credentials: GitHubAppCredentials): GitHubApp {
    const key = `${credentials.appId} ${credentials.privateKey}`;
    let app = this.apps.get(key);
    if (!app) {
      app = new GitHubApp(credentials, {
        baseUrl: this.options.githubApiUrl,
        ...(this.options.githubTimeoutMs ? { timeoutMs: this.options.githubTimeoutMs } : {}),
      });
      this.apps.set(key, app);
    }
    return app;
  }

  private newClient(token: string | TokenSource): GitHub {
    return new GitHub({
      token,
      baseUrl: this.options.githubApiUrl,
      cache: this.cache,
      ...(this.options.githubTimeoutMs ? { timeoutMs: this.options.githubTimeoutMs } : {}),
      log: { warn: (m) => this.options.logger.warn(m), error: (m) => this.options.logger.error(m) },
      ...(this.options.observer ? { observer: this.options.observer } : {}),
    });
  }

  /**
   * Secrets read for tokens and keys, kept a minute: a poll every minute per CodeMate would otherwise
   * read its Secret every time (a thousand idle CodeMates, 17 reads a second). A token GitHub rejects
   * (401) clears them at once (forget), and a replaced one is used within the minute anyway.
   */
  private readonly secrets = new KeptReads<SecretObject>(secretKeepMs);
  private readSecret(namespace: string, name: string): Promise<SecretObject> {
    return this.secrets.get(`${namespace}/${name}`, () =>
      this.options.kube.get<SecretObject>('v1', 'Secret', name, namespace),
    );
  }

  private async secretValue(namespace: string, name: string, key: string): Promise<string> {
    const secret = await this.readSecret(namespace, name);
    const encoded = secret.data?.[key];
    if (!encoded) throw new Error(`secret ${name} has no key ${key}`);
    return Buffer.from(encoded, 'base64').toString('utf8').trim();
  }

  /** Forgets every client, login and App, so that a replaced token or key is asked again from scratch. */
  forget(): void {
    this.secrets.clear();
    this.clients.clear();
    this.selves.clear();
    this.apps.clear();
  }
}
