/**
 * The CodeMate resource (codemate.io/v1alpha1) as zod schemas and types. manifests/crd.yaml is the
 * apiserver's copy of the same schema; test/unit/api/crdDrift.test.ts fails when the two differ.
 * Pure: no I/O.
 */
import { z } from 'zod';
import { historyLimit } from './message.js';
import type { apiVersion, kind } from './names.js';

export { apiVersion, group, kind, plural, version } from './names.js';
export { budgetExhausted, budgetWords, tokensCounted, utcDate, type SpentBudget } from './usage.js';
/** Set by the webhook when a pull request opens, reopens or closes: the operator polls that CodeMate now. */
export const pollRequestedAnnotation = 'codemate.io/poll-requested-at';
/**
 * spec.monitoring.intervalSeconds when unset. It is the CRD's default (manifests/crd.yaml), part of the
 * API, so it lives here rather than in config/, which sits above the API.
 */
export const defaultPollIntervalSeconds = 60;

/**
 * Idle suspend (spec.lifecycle.idleSuspendAfter, docs/lifecycle.md): the operator's own suspension is
 * marked on the CodeMate, so that a new message may undo it and a person's `codemate suspend` is never
 * undone by a comment. Delivery asks for a wake with the second annotation; the reconcile decides.
 */
export const suspendedByAnnotation = 'codemate.io/suspended-by';
export const wakeRequestedAnnotation = 'codemate.io/wake-requested-by';
/**
 * The annotations of a JSON merge patch that removes both marks: null deletes a key, which the type of
 * an object's annotations cannot say.
 */
export function idleMarksRemoved(): Record<string, string> {
  const removed = { [suspendedByAnnotation]: null, [wakeRequestedAnnotation]: null };
  return removed as unknown as Record<string, string>;
}

/** A Go-style duration of hours, minutes and seconds, in that order: `90s`, `30m`, `2h`, `1h30m`. */
export const durationPattern = '^([0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$';

/** A duration of durationPattern, longer than zero (spec.lifecycle.idleSuspendAfter). */
export const durationSchema = z
  .string()
  .regex(new RegExp(durationPattern), 'must be a duration such as 90s, 30m, 2h or 1h30m')
  .refine((d) => durationMs(d) > 0, 'must be longer than 0s');

/** Milliseconds of a duration that matches durationPattern. */
export function durationMs(text: string): number {
  const unit = { h: 3_600_000, m: 60_000, s: 1_000 } as const;
  let ms = 0;
  for (const [, n, u] of text.matchAll(/([0-9]+)([hms])/g)) ms += Number(n) * unit[u as keyof typeof unit];
  return ms;
}

/**
 * spec.monitoring.delivery: Immediate pastes each message as it comes (the TUI queues it while a turn
 * runs); WhenIdle holds messages while a turn runs and delivers them together, as one prompt, once the
 * session is idle. Immediate is the default (docs/adr/0014-delivery-when-idle.md).
 */
export const deliveryModes = ['Immediate', 'WhenIdle'] as const;
export type DeliveryMode = (typeof deliveryModes)[number];
export const defaultDeliveryMode: DeliveryMode = 'Immediate';

export const trustAssociations = [
  'OWNER',
  'MEMBER',
  'COLLABORATOR',
  'CONTRIBUTOR',
  'FIRST_TIME_CONTRIBUTOR',
  'FIRST_TIMER',
  'NONE',
] as const;

export const phases = ['Pending', 'Starting', 'Running', 'Suspended', 'Completed', 'Failed'] as const;
export type Phase = (typeof phases)[number];

/** Phases in which the session runs and takes messages: Completed keeps a session after its PR closed. */
export function sessionRunning(phase: string | undefined): boolean {
  return phase === 'Running' || phase === 'Completed';
}

const secretKeyRef = z.object({
  name: z.string().min(1).max(253),
  key: z.string().min(1).max(253).default('token'),
});
const quantity = z.union([z.number().int(), z.string()]);

export const codeMateSpecSchema = z.object({
  repository: z.object({
    url: z.string().min(1).max(2048),
    branch: z.string().min(1).max(255).optional(),
    baseBranch: z.string().min(1).max(255).optional(),
    pullRequest: z.number().int().min(1).optional(),
  }),
  github: z.object({
    /** A personal access token. Without it, the session authenticates as a GitHub App (githubAppMode). */
    tokenSecretRef: secretKeyRef.optional(),
    /** This CodeMate's own GitHub App, instead of the operator's (docs/github-app.md). */
    app: z
      .object({
        appId: z.number().int().min(1),
        /** Found from the repository (GET /repos/{owner}/{repo}/installation) when unset. */
        installationId: z.number().int().min(1).optional(),
        privateKeySecretRef: z.object({
          name: z.string().min(1).max(253),
          key: z.string().min(1).max(253).default('private-key'),
        }),
      })
      .optional(),
    user: z
      .object({
        name: z.string().min(1).max(256).optional(),
        email: z.string().min(3).max(256).optional(),
      })
      .optional(),
  }),
  anthropic: z.object({ apiKeySecretRef: secretKeyRef }),
  image: z.string().min(1).optional(),
  resources: z
    .object({
      requests: z.record(z.string(), quantity).optional(),
      limits: z.record(z.string(), quantity).optional(),
    })
    .optional(),
  storage: z
    .object({
      size: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/),
      storageClassName: z.string().min(1).optional(),
    })
    .optional(),
  monitoring: z
    .object({
      enabled: z.boolean().default(true),
      intervalSeconds: z.number().int().min(1).max(86400).default(defaultPollIntervalSeconds),
      delivery: z.enum(deliveryModes).default(defaultDeliveryMode),
      trust: z
        .object({
          associations: z.array(z.enum(trustAssociations)).max(8).optional(),
          allowedUsers: z.array(z.string().min(1).max(39)).max(256).optional(),
        })
        .optional(),
    })
    .optional(),
  lifecycle: z
    .object({
      onPullRequestClosed: z.enum(['Keep', 'Suspend', 'Delete']).default('Keep'),
      /** Suspend a session idle this long; a new message resumes it (docs/lifecycle.md). */
      idleSuspendAfter: durationSchema.optional(),
    })
    .optional(),
  suspend: z.boolean().optional(),
  task: z.string().max(65536).optional(),
  /** A token budget: at the limit, new messages wait in AwaitingBudget (docs/session-state.md). */
  budget: z
    .object({
      maxTokens: z.number().int().min(1).optional(),
      /** The same, per UTC day: messages wait until the day is over. */
      maxTokensPerDay: z.number().int().min(1).optional(),
    })
    .optional(),
});
export type CodeMateSpec = z.infer<typeof codeMateSpecSchema>;

export const conditionSchema = z.object({
  type: z.string().max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().max(1024),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof conditionSchema>;

/** Token counts, as status.usage records them. */
const usageCounts = z.object({
  inputTokens: z.number().int().optional(),
  outputTokens: z.number().int().optional(),
  cacheReadTokens: z.number().int().optional(),
  cacheCreationTokens: z.number().int().optional(),
  turns: z.number().int().optional(),
});

export const codeMateStatusSchema = z.object({
  phase: z.enum(phases).optional(),
  message: z.string().optional(),
  podName: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  lastMonitorCheck: z.string().optional(),
  /** The GitHub login the session's token belongs to; its own comments never reach it. */
  github: z
    .object({
      login: z.string().optional(),
      error: z.string().optional(),
      /** Why GitHub refused, as a condition reason (e.g. AppNotInstalled); TokenRejected when unset. */
      errorReason: z.string().optional(),
      /** What to do about the error. */
      hint: z.string().optional(),
      /** App mode: the session's installation token Secret and when its token expires. */
      sessionToken: z
        .object({ secretName: z.string().optional(), expiresAt: z.string().optional() })
        .optional(),
      /** The pull request monitor's CI notices (src/github/checks.ts). */
      ci: z
        .object({
          /** The last failed workflow run attempt the session was told of. */
          lastNotified: z
            .object({
              runId: z.number().int().optional(),
              attempt: z.number().int().optional(),
              workflow: z.string().optional(),
              conclusion: z.string().optional(),
              headSha: z.string().optional(),
              url: z.string().optional(),
              message: z.string().optional(),
              notifiedAt: z.string().optional(),
            })
            .optional(),
          /**
           * When the repository was found to have no workflows, and on which head: its runs are not asked
           * for again until the pull request's head changes.
           */
          noneDetectedAt: z.string().optional(),
          noneDetectedOn: z.string().optional(),
        })
        .optional(),
      /** The session was asked to update the title and description when the pull request left draft. */
      readyForReview: z
        .object({ message: z.string().optional(), notifiedAt: z.string().optional() })
        .optional(),
    })
    .optional(),
  pullRequest: z
    .object({
      number: z.number().int().optional(),
      url: z.string().optional(),
      state: z.string().optional(),
      /** Whether the pull request was a draft at the last poll: leaving draft is seen against it. */
      draft: z.boolean().optional(),
      headSha: z.string().optional(),
      /** The head branch, when it is in the same repository (not a fork's): one writer per branch. */
      headRef: z.string().optional(),
    })
    .optional(),
  conditions: z.array(conditionSchema).optional(),
  /** What the session is doing, as its hooks report it (src/operator/sessionReports.ts). */
  session: z
    .object({
      state: z.enum(['working', 'idle', 'blocked']).optional(),
      since: z.string().optional(),
      /** The last message delivered into the session. */
      lastMessage: z.string().optional(),
    })
    .optional(),
  /** Tokens the session's model requests used, read from its transcripts after each turn. */
  usage: usageCounts
    .extend({
      updatedAt: z.string().optional(),
      /**
       * The workspace whose transcripts the counts come from, and what earlier workspaces (pods without
       * storage) had counted: the totals above include it.
       */
      workspace: z.string().optional(),
      carried: usageCounts.optional(),
      /** The tokens the budget counts of the requests made on `date` (UTC): the daily budget's count. */
      today: z
        .object({
          date: z.string().optional(),
          tokens: z.number().int().optional(),
          carried: z.number().int().optional(),
        })
        .optional(),
    })
    .optional(),
  /**
   * spec.task, once a session pod that was given it started: a later pod (after a suspend, without the
   * transcript of storage) is not given the same task again. `sha` is of the task's text.
   */
  task: z.object({ sha: z.string().optional(), startedAt: z.string().optional() }).optional(),
  /** GitHub items already delivered whose messages retention deleted (see api/message.ts History). */
  history: z
    .object({
      before: z.string().optional(),
      items: z.array(z.string().max(128)).max(historyLimit).optional(),
    })
    .optional(),
});
export type CodeMateStatus = z.infer<typeof codeMateStatusSchema>;

export interface CodeMate {
  apiVersion: typeof apiVersion;
  kind: typeof kind;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: CodeMateSpec;
  status?: CodeMateStatus;
}

/**
 * How the session authenticates to GitHub: with the token of spec.github.tokenSecretRef, or as a GitHub
 * App (spec.github.app, else the operator's App) with short-lived installation tokens.
 */
export function githubAppMode(spec: Pick<CodeMateSpec, 'github'>): boolean {
  return !spec.github.tokenSecretRef;
}

/** Applies the schema's defaults to a spec read from the apiserver (which already defaulted it). */
export function parseSpec(spec: unknown): { ok: true; spec: CodeMateSpec } | { ok: false; error: string } {
  const result = codeMateSpecSchema.safeParse(spec);
  if (result.success) return { ok: true, spec: result.data };
  return {
    ok: false,
    error: result.error.issues.map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`).join('; '),
  };
}

export const conditionTypes = [
  'Ready',
  'PodReady',
  'SecretsResolved',
  'SessionReady',
  'PullRequestLinked',
  'GitHubAuthenticated',
  'WithinBudget',
] as const;

export type Usage = NonNullable<CodeMateStatus['usage']>;
