/**
 * The only place that reads the environment and, with defaults.ts, the only place defaults live. Each
 * command parses its flags through one of these schemas at the top of its action; a failure lists every
 * bad field and exits 2.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../api/errors.js';
import {
  defaultApprovalExpirySeconds,
  imageRepositories,
  injectAckTimeoutSeconds,
  monitorReportSeconds,
  redelivery,
} from './defaults.js';

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

export const envSchema = z.object({
  HOME: z.string().default(os.homedir()),
  KUBECONFIG: optionalText,
  NO_COLOR: optionalText,
  XDG_CACHE_HOME: optionalText,
  XDG_STATE_HOME: optionalText,
  /** Where the sandbox keeps its state (default: $XDG_STATE_HOME/codemate/sandbox). */
  CODEMATE_STATE_DIR: optionalText,
  /** Prebuilt control-plane binaries; skips the Go build. */
  CODEMATE_BIN_DIR: optionalText,
  /** A claude program for sandbox sessions; skips installing the pinned one into the cache. */
  CODEMATE_CLAUDE_BIN: optionalText,
  /** Cache for built binaries (default: $XDG_CACHE_HOME/codemate). */
  CODEMATE_CACHE_DIR: optionalText,
  /** Operator: one namespace to watch; all namespaces when unset. */
  CODEMATE_WATCH_NAMESPACE: optionalText,
  /** Operator: "false" turns leader election off (a single replica). */
  CODEMATE_LEADER_ELECT: optionalText,
  /** Operator: port of /healthz, /readyz and /metrics. */
  CODEMATE_HEALTH_PORT: optionalText,
  /** Operator: the session image for CodeMates without spec.image. */
  CODEMATE_SESSION_IMAGE: optionalText,
  LOG_LEVEL: optionalText,
  /** Sandbox only: PREFIX=REPLACEMENT rewrites session clone URLs (see docs/sandbox.md). */
  CODEMATE_SANDBOX_GIT_REWRITE: optionalText,
  /** Operator: delivered messages kept per CodeMate (default 50). */
  CODEMATE_MESSAGE_RETENTION: optionalText,
  /** Operator: a message not delivered this many seconds after its creation fails (default 86400). */
  CODEMATE_MESSAGE_EXPIRY_SECONDS: optionalText,
  CODEMATE_APPROVAL_EXPIRY_SECONDS: optionalText,
  /** Operator: per-request timeout for GitHub, in seconds (default 15). */
  CODEMATE_GITHUB_TIMEOUT_SECONDS: optionalText,
  CODEMATE_SESSION_CHANNELS: optionalText,
  /** Operator: the least time between two writes of one session's state (default 10). */
  CODEMATE_SESSION_STATUS_INTERVAL_SECONDS: optionalText,
  /** How old status.lastMonitorCheck gets before a poll that found nothing new writes it (0: always). */
  CODEMATE_MONITOR_REPORT_SECONDS: optionalText,
  /** Sandbox: a real Messages API for sessions; the sandbox's local model server when unset. */
  ANTHROPIC_BASE_URL: optionalText,
  /** Operator: the GitHub App CodeMates without a token authenticate as (docs/github-app.md). */
  CODEMATE_GITHUB_APP_ID: optionalText,
  /** Operator: the App's installation; found from each CodeMate's repository when unset. */
  CODEMATE_GITHUB_APP_INSTALLATION_ID: optionalText,
  /** Operator: the App's private key (PEM), a mounted Secret; read on each use, so rotation needs no restart. */
  CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: optionalText,
  /** Operator, App mode: how often failed webhook deliveries are looked for, in seconds (default 30). */
  CODEMATE_GITHUB_REDELIVERY_SECONDS: optionalText,
  /** GitHub's API base (GitHub Enterprise: https://HOST/api/v3); api.github.com when unset. */
  GITHUB_API_URL: optionalText,
  /** Webhook: the port to listen on (default 8080). */
  PORT: optionalText,
  /** Webhook: the secret(s) set on the GitHub webhook, comma-separated for rotation. */
  GITHUB_WEBHOOK_SECRET: optionalText,
  /** Webhook: a file holding the secret(s), e.g. a mounted Secret. */
  GITHUB_WEBHOOK_SECRET_FILE: optionalText,
  /** Webhook: a body with no byte for this long gets 408, in seconds (default 2). */
  CODEMATE_WEBHOOK_BODY_IDLE_TIMEOUT_SECONDS: optionalText,
  /** `webhook replay`: where to send (printed by `dev up`). */
  CODEMATE_WEBHOOK_URL: optionalText,
  /** Set by the Deployment through the downward API. */
  POD_NAME: optionalText,
  POD_NAMESPACE: optionalText,
});
export type Env = z.infer<typeof envSchema>;

/** Parses the process environment once, at start-up. */
export function readEnv(raw: NodeJS.ProcessEnv = process.env): Env {
  return parseOrUsage(envSchema, raw, 'environment');
}

export const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

/** Parses `input` or throws a UsageError naming each bad field. */
export function parseOrUsage<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.') || what;
    return `  ${flagName(field)}: ${issue.message}`;
  });
  throw new UsageError(`invalid ${what}:\n${lines.join('\n')}`);
}

function flagName(field: string): string {
  if (/^[A-Z_]+$/.test(field)) return field;
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function cacheDir(env: Env): string {
  return env.CODEMATE_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(env.HOME, '.cache'), 'codemate');
}

export function defaultStateDir(env: Env): string {
  return (
    env.CODEMATE_STATE_DIR ??
    path.join(env.XDG_STATE_HOME ?? path.join(env.HOME, '.local', 'state'), 'codemate', 'sandbox')
  );
}

/**
 * What runs the sandbox's pods: host processes behind kwok (no root), or a real kubelet and containerd
 * (root). Unset, `dev up` keeps the runtime of the sandbox in the state directory, else `process`.
 */
export const sandboxRuntimes = ['process', 'containerd'] as const;
export type SandboxRuntime = (typeof sandboxRuntimes)[number];

export const devFlagsSchema = z.object({
  stateDir: z.string().min(1).optional(),
  runtime: z.enum(sandboxRuntimes).optional(),
  apiserverPort: port.optional(),
  purge: z.boolean().default(false),
  /**
   * `--no-operator`: the sandbox runs neither its own operator nor its webhook (a chart's do instead);
   * unset: as the running sandbox does (sandboxOperatorFor).
   */
  operator: z.boolean().optional(),
  /** containerd runtime: build (or find) the project's images and import them into the real node. */
  images: z.boolean().default(false),
  output: z.enum(['text', 'json']).default('text'),
});
export type DevFlags = z.infer<typeof devFlagsSchema>;

export interface DevConfig {
  stateDir: string;
  cacheDir: string;
  binDir: string | undefined;
  claudeBin: string | undefined;
  anthropicBaseUrl: string | undefined;
  /** CODEMATE_SANDBOX_GIT_REWRITE: `PREFIX=REPLACEMENT` for git in every sandbox session. */
  gitRewrite: string | undefined;
  apiserverPort: number | undefined;
  runtime: SandboxRuntime | undefined;
  purge: boolean;
  operator: boolean | undefined;
  images: boolean;
  output: 'text' | 'json';
}

export function devConfig(env: Env, rawFlags: Record<string, unknown>): DevConfig {
  const flags = parseOrUsage(devFlagsSchema, rawFlags, 'flags');
  return {
    stateDir: path.resolve(flags.stateDir ?? defaultStateDir(env)),
    cacheDir: cacheDir(env),
    binDir: env.CODEMATE_BIN_DIR,
    claudeBin: env.CODEMATE_CLAUDE_BIN,
    anthropicBaseUrl: env.ANTHROPIC_BASE_URL,
    gitRewrite: env.CODEMATE_SANDBOX_GIT_REWRITE,
    apiserverPort: flags.apiserverPort,
    runtime: flags.runtime,
    purge: flags.purge,
    operator: flags.operator,
    images: flags.images,
    output: flags.output,
  };
}

export const modelServerFlagsSchema = z.object({ port, host: z.string().min(1).default('127.0.0.1') });

export const storageProvisionerFlagsSchema = z.object({ dir: z.string().min(1) });

const booleanText = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');

export const operatorFlagsSchema = z.object({
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  watchNamespace: z.string().min(1).optional(),
  leaderElect: booleanText.default(true),
  leaseNamespace: z.string().min(1).default('codemate-system'),
  leaseName: z.string().min(1).default('codemate-operator'),
  healthPort: port.default(8081),
  sessionImage: z.string().min(1),
  // 8: on 2 cores a burst's p99 CodeMate → pod was 4× longer with 4, and no better with 16 or 32
  // (bench/README.md, operator-scale): the apiserver, not the operator, is then the limit.
  workers: z.coerce.number().int().min(1).max(64).default(8),
  resyncSeconds: z.coerce.number().int().min(10).max(86400).default(300),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  identity: z.string().min(1),
  messageRetention: z.coerce.number().int().min(0).max(10000).default(50),
  githubApiUrl: z.string().url().optional(),
  githubTimeoutSeconds: z.coerce.number().min(0.1).max(300).default(15),
  /** The operator's GitHub App; CodeMates without spec.github.tokenSecretRef authenticate as it. */
  githubApp: z
    .object({
      appId: z.coerce.number().int().min(1),
      installationId: z.coerce.number().int().min(1).optional(),
      privateKeyFile: z.string().min(1),
    })
    .optional(),
  /** App mode: how often the App's failed webhook deliveries are looked for (redelivery.ts). */
  redeliverySeconds: z.coerce
    .number()
    .int()
    .min(5)
    .max(3600)
    .default(redelivery.everyMs / 1000),
  /** codemate-inject's ack timeout, passed to it by the operator with each delivery. */
  injectAckTimeoutSeconds: z.coerce.number().int().min(1).max(600).default(injectAckTimeoutSeconds),
  /** A standing channel (one long-lived exec) into each running session; off: one exec per message. */
  sessionChannels: booleanText.default(true),
  /**
   * The least time between two writes of one session's state and usage (status, and commit status or check run): a
   * change is written at once, a session that flaps at most this often, with its latest state.
   */
  sessionStatusIntervalSeconds: z.coerce.number().min(0.1).max(3600).default(10),
  /**
   * A poll that saw nothing new writes status.lastMonitorCheck only when it is this old, as kubelet
   * reports an unchanged node status every 5 minutes: at a thousand idle sessions, a write per poll is
   * most of the operator's and the apiserver's idle work. 0 writes every poll.
   */
  monitorReportSeconds: z.coerce.number().int().min(0).max(86400).default(monitorReportSeconds),
  /** Messages wait for their session (starting, suspended, replaced) up to this long, then fail. */
  messageExpirySeconds: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86400)
    .default(86400),
  /** An untrusted item waits for a trusted approval up to this long, then ends Rejected (docs/approvals.md). */
  approvalExpirySeconds: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 86400)
    .default(defaultApprovalExpirySeconds),
});
export type OperatorConfig = z.infer<typeof operatorFlagsSchema>;

/** Flags win over the environment; the environment wins over defaults. */
export function operatorConfig(env: Env, flags: Record<string, unknown>, version: string): OperatorConfig {
  const pick = (flag: unknown, fromEnv: unknown): unknown => (flag !== undefined ? flag : fromEnv);
  return parseOrUsage(
    operatorFlagsSchema,
    {
      kubeconfig: pick(flags.kubeconfig, env.KUBECONFIG),
      context: flags.context,
      watchNamespace: pick(flags.watchNamespace, env.CODEMATE_WATCH_NAMESPACE),
      leaderElect: pick(flags.leaderElect === false ? false : undefined, env.CODEMATE_LEADER_ELECT),
      leaseNamespace: pick(flags.leaseNamespace, env.POD_NAMESPACE),
      leaseName: flags.leaseName,
      healthPort: pick(flags.healthPort, env.CODEMATE_HEALTH_PORT),
      sessionImage:
        pick(flags.sessionImage, env.CODEMATE_SESSION_IMAGE) ?? `${imageRepositories.session}:${version}`,
      workers: flags.workers,
      resyncSeconds: flags.resyncSeconds,
      logLevel: pick(flags.logLevel, env.LOG_LEVEL),
      messageRetention: pick(flags.messageRetention, env.CODEMATE_MESSAGE_RETENTION),
      githubApiUrl: env.GITHUB_API_URL,
      githubTimeoutSeconds: env.CODEMATE_GITHUB_TIMEOUT_SECONDS,
      githubApp: githubAppInput(env),
      redeliverySeconds: env.CODEMATE_GITHUB_REDELIVERY_SECONDS,
      sessionChannels: env.CODEMATE_SESSION_CHANNELS,
      sessionStatusIntervalSeconds: env.CODEMATE_SESSION_STATUS_INTERVAL_SECONDS,
      monitorReportSeconds: env.CODEMATE_MONITOR_REPORT_SECONDS,
      messageExpirySeconds: pick(flags.messageExpirySeconds, env.CODEMATE_MESSAGE_EXPIRY_SECONDS),
      approvalExpirySeconds: pick(flags.approvalExpirySeconds, env.CODEMATE_APPROVAL_EXPIRY_SECONDS),
      identity: env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    },
    'operator configuration',
  );
}

/** The App settings, when any is set: an App id without its key (or the reverse) is a usage error. */
function githubAppInput(env: Env): Record<string, unknown> | undefined {
  const {
    CODEMATE_GITHUB_APP_ID,
    CODEMATE_GITHUB_APP_INSTALLATION_ID,
    CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE,
  } = env;
  if (
    !CODEMATE_GITHUB_APP_ID &&
    !CODEMATE_GITHUB_APP_INSTALLATION_ID &&
    !CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE
  )
    return undefined;
  return {
    appId: CODEMATE_GITHUB_APP_ID,
    installationId: CODEMATE_GITHUB_APP_INSTALLATION_ID,
    privateKeyFile: CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE,
  };
}

/** The value in manifests/examples/webhook-secret.yaml; a webhook must never run with it. */
export const secretPlaceholder = 'REPLACE-WITH-THE-GITHUB-WEBHOOK-SECRET';

export const webhookFlagsSchema = z.object({
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  watchNamespace: z.string().min(1).optional(),
  port: port.default(8080),
  host: z.string().min(1).default('0.0.0.0'),
  secrets: z.array(z.string().min(1)).min(1),
  bodyTimeoutSeconds: z.coerce.number().min(0.1).max(300).default(10),
  // Much shorter than the whole-body timeout: GitHub sends a body at once, and a body that stops
  // flowing holds memory that other deliveries need.
  bodyIdleTimeoutSeconds: z.coerce.number().min(0.1).max(300).default(2),
  deliveryCacheSize: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  /** Where the webhook records the last delivery it stored: the namespace it runs in. */
  recordNamespace: z.string().min(1).default('codemate-system'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
});
export type WebhookConfig = z.infer<typeof webhookFlagsSchema>;

/** Comma- or newline-separated secrets: a delivery signed with any of them is accepted (rotation). */
export function splitSecrets(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function readSecretFile(file: string): string[] {
  try {
    return splitSecrets(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `cannot read the webhook secret file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

export function webhookConfig(env: Env, flags: Record<string, unknown>): WebhookConfig {
  const pick = (flag: unknown, fromEnv: unknown): unknown => (flag !== undefined ? flag : fromEnv);
  const file = (flags.secretFile as string | undefined) ?? env.GITHUB_WEBHOOK_SECRET_FILE;
  const secrets = splitSecrets(env.GITHUB_WEBHOOK_SECRET ?? '');
  if (file) secrets.push(...readSecretFile(file));
  if (secrets.length === 0) {
    throw new UsageError(
      'no webhook secret: set GITHUB_WEBHOOK_SECRET, or pass --secret-file, to the secret set on the GitHub webhook',
    );
  }
  if (secrets.includes(secretPlaceholder)) {
    throw new UsageError(
      "the webhook secret is still the template's placeholder: put the secret set on the GitHub webhook in it (openssl rand -hex 32 makes a good one)",
    );
  }
  return parseOrUsage(
    webhookFlagsSchema,
    {
      kubeconfig: pick(flags.kubeconfig, env.KUBECONFIG),
      context: flags.context,
      watchNamespace: pick(flags.watchNamespace, env.CODEMATE_WATCH_NAMESPACE),
      port: pick(flags.port, env.PORT),
      host: flags.host,
      secrets,
      bodyTimeoutSeconds: flags.bodyTimeoutSeconds,
      bodyIdleTimeoutSeconds: pick(
        flags.bodyIdleTimeoutSeconds,
        env.CODEMATE_WEBHOOK_BODY_IDLE_TIMEOUT_SECONDS,
      ),
      deliveryCacheSize: flags.deliveryCacheSize,
      recordNamespace: env.POD_NAMESPACE,
      logLevel: pick(flags.logLevel, env.LOG_LEVEL),
    },
    'webhook configuration',
  );
}

export const replayFlagsSchema = z.object({
  event: z
    .string()
    .regex(/^[a-z_]+$/, 'must be a GitHub event name such as issue_comment or pull_request_review'),
  payload: z.string().min(1),
  url: z.string().url('must be a URL such as http://127.0.0.1:8080/webhook/github'),
  delivery: z.string().min(1).optional(),
  secret: z.string().min(1),
});
export type ReplayConfig = z.infer<typeof replayFlagsSchema>;

export function replayConfig(env: Env, flags: Record<string, unknown>): ReplayConfig {
  // An explicit --secret-file wins; then the secret in the environment; then the environment's file.
  const flagFile = flags.secretFile as string | undefined;
  const file = flagFile ?? (env.GITHUB_WEBHOOK_SECRET ? undefined : env.GITHUB_WEBHOOK_SECRET_FILE);
  const secrets = file ? readSecretFile(file) : splitSecrets(env.GITHUB_WEBHOOK_SECRET ?? '');
  if (secrets.length === 0) {
    throw new UsageError('no webhook secret to sign with: set GITHUB_WEBHOOK_SECRET or pass --secret-file', {
      hint: 'the sandbox prints where its secret is: codemate dev status',
    });
  }
  let url =
    (flags.url as string | undefined) ?? env.CODEMATE_WEBHOOK_URL ?? 'http://127.0.0.1:8080/webhook/github';
  // A bare server address means its webhook route.
  if (/^https?:\/\/[^/]+\/?$/.test(url)) url = `${url.replace(/\/$/, '')}/webhook/github`;
  return parseOrUsage(
    replayFlagsSchema,
    { event: flags.event, payload: flags.payload, url, delivery: flags.delivery, secret: secrets[0] },
    'flags',
  );
}

/**
 * `PREFIX=REPLACEMENT` (CODEMATE_SANDBOX_GIT_REWRITE) as git's url.<REPLACEMENT>.insteadOf=PREFIX, in
 * git's environment-only configuration, so that no config file changes.
 */
export function gitRewriteEnv(rewrite: string | undefined): Record<string, string> {
  const [from, to] = rewrite?.split('=') ?? [];
  if (!from || !to) return {};
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `url.${to}.insteadOf`, GIT_CONFIG_VALUE_0: from };
}
