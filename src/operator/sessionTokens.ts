/**
 * App mode: each session gets an installation token of its own, scoped to its one repository and to the
 * permissions it needs (sessionPermissions), kept in a Secret owned by its CodeMate and mounted into the
 * pod. The token is renewed at half its life (30 minutes of GitHub's hour), so a session never holds one
 * about to expire; the kubelet updates the mounted file, and the session's git and gh credential helpers
 * read it on each use, so a renewed token works without a restart. A CodeMate in token mode, suspended
 * or deleted gets no token. A failure (a bad key, an App not installed, a missing permission) is recorded
 * in status for GitHubAuthenticated, and tried again with backoff.
 */
import { apiVersion, githubAppMode, kind, type CodeMate } from '../api/codemate.js';
import { ownedLabels, ownerReference, sessionTokenSecretName } from '../api/pod.js';
import { sessionPermissions, type InstallationToken } from '../clients/githubApp.js';
import { isNotFound, type Kube, type KubeObject } from '../clients/kube.js';
import { errorFields, type Logger } from '../observability/log.js';
import { backoffDelay } from '../runtime/rate.js';
import { GitHubAppError, type GitHubClients } from './githubClients.js';
import { recordGitHubAppError, recordGitHubObservation } from './status.js';

export const expiresAtAnnotation = 'codemate.io/token-expires-at';
export const issuedAtAnnotation = 'codemate.io/token-issued-at';

/** After a failure, the next attempt waits this long, doubling up to the cap. */
const retryBackoff = { baseMs: 5_000, maxMs: 300_000 };
/** Never renew sooner than this after the last token, whatever its lifetime. */
const minRenewMs = 2_000;

export interface SessionTokensOptions {
  kube: Kube;
  logger: Logger;
  github: GitHubClients;
  codemate: (namespace: string, name: string) => CodeMate | undefined;
}

interface Target {
  uid: string;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  failures: number;
}

type SecretObject = KubeObject & { data?: Record<string, string> };

/** When a token issued at `issuedAt` and expiring at `expiresAt` is renewed: at half its life. */
export function renewalTime(issuedAt: Date, expiresAt: Date): Date {
  const life = expiresAt.getTime() - issuedAt.getTime();
  return new Date(issuedAt.getTime() + Math.max(minRenewMs, life / 2));
}

/** The permissions of `needed` that `granted` lacks (write covers read). */
export function missingPermissions(
  granted: Record<string, string>,
  needed: Record<string, string> = sessionPermissions,
): string[] {
  return Object.entries(needed)
    .filter(
      ([name, level]) => !(granted[name] === level || granted[name] === 'write' || granted[name] === 'admin'),
    )
    .map(([name, level]) => `${name}: ${level}`);
}

export class SessionTokens {
  private readonly targets = new Map<string, Target>();
  private stopped = false;

  constructor(private readonly options: SessionTokensOptions) {}

  /** Starts, keeps or stops the renewal of one CodeMate's token after any change to it. */
  sync(namespace: string, name: string): void {
    if (this.stopped) return;
    const key = `${namespace}/${name}`;
    const cm = this.options.codemate(namespace, name);
    const wanted = cm && !cm.metadata.deletionTimestamp && !cm.spec.suspend && githubAppMode(cm.spec);
    const existing = this.targets.get(key);
    if (!wanted) {
      if (existing) clearTimeout(existing.timer);
      this.targets.delete(key);
      return;
    }
    if (existing?.uid === cm.metadata.uid) return;
    if (existing) clearTimeout(existing.timer);
    const target: Target = { uid: cm.metadata.uid, timer: undefined, running: false, failures: 0 };
    this.targets.set(key, target);
    this.schedule(key, target, 0);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) clearTimeout(t.timer);
    this.targets.clear();
  }

  private schedule(key: string, target: Target, delayMs: number): void {
    if (this.stopped || this.targets.get(key) !== target) return;
    target.timer = setTimeout(() => void this.tick(key, target), Math.max(0, delayMs));
    target.timer.unref();
  }

  private async tick(key: string, target: Target): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const cm = this.options.codemate(namespace, name);
    if (!cm || target.running) return;
    target.running = true;
    let next: number;
    try {
      next = (await this.ensure(cm)).getTime() - Date.now();
      target.failures = 0;
    } catch (error) {
      target.failures += 1;
      next = backoffDelay(target.failures, retryBackoff.baseMs, retryBackoff.maxMs);
      this.options.logger.warn(
        { codemate: key, retryInMs: next, ...errorFields(error) },
        "could not renew the session's installation token",
      );
      if (error instanceof GitHubAppError) {
        await recordGitHubAppError(this.options.kube, cm, error).catch(() => undefined);
      }
    } finally {
      target.running = false;
    }
    this.schedule(key, target, next);
  }

  /**
   * Makes sure the CodeMate's Secret holds a token that is not yet due for renewal; answers when it will
   * be. A Secret written before an operator restart is kept until then.
   */
  async ensure(cm: CodeMate): Promise<Date> {
    const secretName = sessionTokenSecretName(cm);
    const existing = await this.readSecret(cm.metadata.namespace, secretName);
    const issued = existing?.metadata.annotations?.[issuedAtAnnotation];
    const expires = existing?.metadata.annotations?.[expiresAtAnnotation];
    if (issued && expires && existing?.data?.token && existing.data['expires-at']) {
      const due = renewalTime(new Date(issued), new Date(expires));
      if (due.getTime() > Date.now()) return due;
    }
    const issuedAt = new Date();
    const token = await this.mint(cm);
    await this.write(cm, secretName, token, issuedAt);
    this.options.logger.info(
      { codemate: `${cm.metadata.namespace}/${cm.metadata.name}`, expiresAt: token.expiresAt },
      "renewed the session's installation token",
    );
    await recordGitHubObservation(this.options.kube, cm, {
      github: {
        error: null,
        errorReason: null,
        hint: null,
        sessionToken: { secretName, expiresAt: token.expiresAt },
      },
    });
    return renewalTime(issuedAt, new Date(token.expiresAt));
  }

  /** A token for the CodeMate's repository only, with the session's permissions only. */
  private async mint(cm: CodeMate): Promise<InstallationToken> {
    const { app, installationId, owner, repo } = await this.options.github.appFor(cm);
    let token: InstallationToken;
    try {
      token = await app.installationToken(installationId, {
        repositories: [repo],
        permissions: { ...sessionPermissions },
      });
    } catch (error) {
      throw this.options.github.appError(error, app.credentials, `${owner}/${repo}`);
    }
    const missing = missingPermissions(token.permissions);
    if (missing.length > 0) {
      throw this.options.github.appError(
        Object.assign(new Error(`the token GitHub issued lacks ${missing.join(', ')}`), { status: 422 }),
        app.credentials,
        `${owner}/${repo}`,
      );
    }
    return token;
  }

  private async write(cm: CodeMate, name: string, token: InstallationToken, issuedAt: Date): Promise<void> {
    const owner = { ...cm, apiVersion, kind } as CodeMate;
    await this.options.kube.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: cm.metadata.namespace,
        labels: ownedLabels(owner),
        annotations: { [issuedAtAnnotation]: issuedAt.toISOString(), [expiresAtAnnotation]: token.expiresAt },
        ownerReferences: [ownerReference(owner)],
      },
      type: 'Opaque',
      // expires-at beside the token: a session starting from an old Secret (after a resume) waits for
      // the renewed one instead of cloning with an expired token.
      data: {
        token: Buffer.from(token.token).toString('base64'),
        'expires-at': Buffer.from(token.expiresAt).toString('base64'),
      },
    } as KubeObject);
  }

  private async readSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      return await this.options.kube.get<SecretObject>('v1', 'Secret', name, namespace);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
