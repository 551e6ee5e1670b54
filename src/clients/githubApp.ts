/**
 * GitHub App authentication: the only module that imports @octokit/auth-app. It signs the App's JWTs
 * (never by hand), finds the installation of a repository, mints installation tokens (the operator's, and
 * each session's, scoped to one repository and to the permissions it needs), and reads and redelivers
 * the App's webhook deliveries. Its errors are turned into a reason, a message and a hint
 * (`describeAppError`), so that a bad key, an App not installed and a missing permission say what to do.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';

export interface GitHubAppCredentials {
  appId: number;
  /** The App's private key (PEM), as GitHub generated it. */
  privateKey: string;
  /** Where it came from, for messages: e.g. `secret codemate-system/github-app (key private-key)`. */
  keySource: string;
}

export interface InstallationToken {
  token: string;
  expiresAt: string;
  permissions: Record<string, string>;
  installationId: number;
}

export interface AppIdentity {
  slug: string;
  /** The login of the App's bot user, which writes its comments: `<slug>[bot]`. */
  botLogin: string;
  htmlUrl: string;
}

/** One of the App's webhook deliveries, as GET /app/hook/deliveries lists it. */
export interface HookDelivery {
  id: number;
  guid: string;
  event: string;
  action: string | null;
  status: string;
  statusCode: number;
  deliveredAt: string;
  redelivery: boolean;
}

/**
 * The permissions a session's token gets: enough to push, open and update its pull request, answer
 * comments and read checks; nothing for the rest of the installation.
 */
export const sessionPermissions = {
  contents: 'write',
  pull_requests: 'write',
  issues: 'write',
  checks: 'write',
  metadata: 'read',
} as const;

export class GitHubApp {
  private readonly octokit: Octokit;
  private readonly auth: ReturnType<typeof createAppAuth>;
  private readonly installations = new Map<string, number>();
  private identityPromise: Promise<AppIdentity> | undefined;

  constructor(
    readonly credentials: GitHubAppCredentials,
    options: { baseUrl?: string | undefined; timeoutMs?: number } = {},
  ) {
    const timeoutMs = options.timeoutMs ?? 15_000;
    this.octokit = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: credentials.appId, privateKey: credentials.privateKey },
      ...(options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/$/, '') } : {}),
      userAgent: 'codemate',
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      request: {
        fetch: (url: string, init: RequestInit) =>
          fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
      },
    });
    this.auth = this.octokit.auth as ReturnType<typeof createAppAuth>;
  }

  /** The App's slug and bot login (GET /app), asked once. */
  identity(): Promise<AppIdentity> {
    this.identityPromise ??= this.octokit.rest.apps.getAuthenticated().then(({ data }) => {
      const slug = data?.slug ?? String(this.credentials.appId);
      return { slug, botLogin: `${slug}[bot]`, htmlUrl: data?.html_url ?? '' };
    });
    this.identityPromise.catch(() => (this.identityPromise = undefined));
    return this.identityPromise;
  }

  /** The installation that covers owner/repo (GET /repos/{owner}/{repo}/installation), remembered. */
  async installationFor(owner: string, repo: string): Promise<number> {
    const key = `${owner}/${repo}`.toLowerCase();
    const known = this.installations.get(key);
    if (known !== undefined) return known;
    const { data } = await this.octokit.rest.apps.getRepoInstallation({ owner, repo });
    this.installations.set(key, data.id);
    return data.id;
  }

  /**
   * A new installation token. With `repositories` and `permissions` it is scoped to them; GitHub refuses
   * (422) permissions the installation was not granted.
   */
  async installationToken(
    installationId: number,
    scope: { repositories?: string[]; permissions?: Record<string, string> } = {},
  ): Promise<InstallationToken> {
    const auth = await this.auth({
      type: 'installation',
      installationId,
      ...(scope.repositories ? { repositoryNames: scope.repositories } : {}),
      ...(scope.permissions ? { permissions: scope.permissions } : {}),
      refresh: true,
    });
    return {
      token: auth.token,
      expiresAt: auth.expiresAt,
      permissions: auth.permissions,
      installationId,
    };
  }

  /** The App's deliveries, newest first, down to `since` or `max` of them (bounded in time and count). */
  async deliveries(since: Date, max: number): Promise<HookDelivery[]> {
    const found: HookDelivery[] = [];
    for await (const { data } of this.octokit.paginate.iterator(
      this.octokit.rest.apps.listWebhookDeliveries,
      {
        per_page: Math.min(100, max),
      },
    )) {
      for (const d of data) {
        if (new Date(d.delivered_at) < since || found.length >= max) return found;
        found.push({
          id: d.id,
          guid: d.guid,
          event: d.event,
          action: d.action,
          status: d.status,
          statusCode: d.status_code,
          deliveredAt: d.delivered_at,
          redelivery: d.redelivery,
        });
      }
    }
    return found;
  }

  /** One delivery with the payload GitHub sent. */
  async deliveryPayload(id: number): Promise<unknown> {
    const { data } = await this.octokit.rest.apps.getWebhookDelivery({ delivery_id: id });
    return data.request.payload;
  }

  /** Asks GitHub to send a delivery again (same X-GitHub-Delivery). */
  async redeliver(id: number): Promise<void> {
    await this.octokit.rest.apps.redeliverWebhookDelivery({ delivery_id: id });
  }
}

export type AppErrorReason =
  | 'AppNotConfigured'
  | 'AppKeyRejected'
  | 'AppNotInstalled'
  | 'AppPermissionMissing'
  | 'AppTokenRejected'
  | 'GitHubUnavailable';

export interface AppError {
  reason: AppErrorReason;
  message: string;
  hint: string;
}

/**
 * What went wrong asking GitHub as the App, and what to do about it. `repository` is owner/repo; `web`
 * the GitHub web host's base URL (github.com, or a GitHub Enterprise Server's).
 */
export function describeAppError(
  error: unknown,
  context: { appId: number; keySource: string; repository: string; web: string },
): AppError {
  const status = (error as { status?: unknown } | null)?.status;
  const text = error instanceof Error ? error.message : String(error);
  const settings = `${context.web}/settings/apps`;
  if (status === undefined && /key|PEM|asn1|decoder|JWT|sign/i.test(text)) {
    return {
      reason: 'AppKeyRejected',
      message: `the private key of GitHub App ${context.appId} (${context.keySource}) cannot sign: ${text}`,
      hint: `put the PEM file GitHub generated for the App (${settings}, "Private keys") in that secret, unchanged`,
    };
  }
  if (status === 401) {
    return {
      reason: 'AppKeyRejected',
      message: `GitHub rejected the JWT of App ${context.appId}, signed with ${context.keySource}: ${text}`,
      hint: `check that the App id is right and that the key is a current private key of that App (${settings}); a deleted key stops working at once`,
    };
  }
  if (status === 404) {
    return {
      reason: 'AppNotInstalled',
      message: `GitHub App ${context.appId} is not installed on ${context.repository}`,
      hint: `install the App on ${context.repository} (${settings}, "Install App"), or add the repository to its installation`,
    };
  }
  if (status === 422 || status === 403) {
    return {
      reason: 'AppPermissionMissing',
      message: `GitHub App ${context.appId} lacks a permission the session needs on ${context.repository}: ${text}`,
      hint: `give the App ${permissionList()} (${settings}, "Permissions & events"), then accept the new permissions on its installation`,
    };
  }
  return {
    reason: 'GitHubUnavailable',
    message: `asking GitHub as App ${context.appId} failed: ${text}`,
    hint: 'this is retried; check that the operator reaches GitHub (GITHUB_API_URL)',
  };
}

/** The session's permissions as the App's settings page names them. */
export function permissionList(): string {
  return Object.entries(sessionPermissions)
    .map(([name, level]) => `${name.replace('_', ' ')}: ${level}`)
    .join(', ');
}
