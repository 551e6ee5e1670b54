/**
 * The defaults that are not flags: named here so that config/ stays the one place where defaults live.
 * Flags and environment variables keep theirs in the zod schemas of index.ts.
 */

/**
 * Where the project's two images are published (docs/install.md). `codemate dev build --images` tags its
 * local builds with the same names and the package's version, so that the manifests' images match them.
 */
export const imageRepositories = {
  codemate: 'ghcr.io/codemate-io/codemate',
  session: 'ghcr.io/codemate-io/codemate-session',
} as const;

/** A work queue's retry backoff after a failed reconcile: exponential from base, capped, jittered. */
export const queueBackoff = { baseDelayMs: 500, maxDelayMs: 300_000 } as const;

/** Delivery retries sooner than other reconciles: a session that is busy or starting is back in seconds. */
export const deliveryBackoff = { baseDelayMs: 1000, maxDelayMs: 30_000 } as const;

/**
 * Under spec.monitoring.delivery WhenIdle, how soon delivery asks a busy session again whether its turn has
 * ended: the most a batch waits after the turn's end. One request on the session's channel each time, with
 * no status write (docs/adr/0014-delivery-when-idle.md).
 */
export const whenIdleRetryMs = 1000;

/** Under WhenIdle, the most messages, and the most bytes of their bodies, that one prompt carries. */
export const whenIdleBatch = { messages: 20, bytes: 262_144 } as const;

/** Delivery workers per operator: deliveries of different CodeMates that run at once. */
export const deliveryWorkers = 4;

/**
 * How long a message deleted by retention still counts as existing, so that the poller does not take
 * its GitHub item for new before the caches show the deletion and the CodeMate's history.
 */
export const retiredMessageMemoryMs = 300_000;

/** How long delivery trusts a status it wrote over an informer cache that has not shown it yet. */
export const writtenStatusMemoryMs = 60_000;

/**
 * The ack timeout: how long codemate-inject waits for the session's UserPromptSubmit receipt of one paste,
 * in seconds. The operator always passes it to the script (`--timeout`); the script's own default is only
 * for people who run it by hand.
 */
export const injectAckTimeoutSeconds = 20;

/**
 * How long the operator's exec of codemate-inject may take, derived from the ack timeout: the script may
 * first wait for the lock of another inject that is still waiting for its receipt, then for its own (two
 * ack timeouts), plus a margin for the prompt box, the paste and the apiserver. 60 s for the default 20 s.
 */
export function injectExecTimeoutMs(ackTimeoutSeconds: number): number {
  return (2 * ackTimeoutSeconds + 20) * 1000;
}

/** Poll jitter: each interval is the CodeMate's spec.monitoring.intervalSeconds, ±10 %. */
export const pollJitter = 0.1;

/**
 * A poll that saw nothing new writes status.lastMonitorCheck only when it is this old (poller.ts): five
 * minutes, kubelet's node status report frequency.
 */
export const monitorReportSeconds = 300;

/**
 * New CodeMates' first polls: this many at once, then this many a second (poller.ts). At 2 a second a
 * thousand new CodeMates have all been polled within about eight minutes: their first-poll GitHub calls
 * (a few each) are spread over those minutes instead of landing within seconds.
 */
export const firstPolls = { burst: 10, perSecond: 2 } as const;

/** Session channels opened (injector.ts): this many at once, then this many a second. */
export const channelOpens = { burst: 10, perSecond: 5 } as const;

/** Session reports (`codemate-report --watch`, sessionReports.ts) opened: as many at once, then a second. */
export const reportOpens = { burst: 10, perSecond: 5 } as const;

/** GitHub caps webhook payloads at 25 MB: the webhook's body limit. */
export const githubBodyLimitBytes = 25 * 1024 * 1024;

/** Every routed event is well under this (see webhook/bodyBudget.ts). */
export const smallBodyBytes = 1024 * 1024;

/**
 * The webhook's body budget: two full-size bodies at once, plus 16 small ones at their largest (hundreds
 * of typical ones). Each costs about three times its size while verified and parsed, which stays well
 * inside the Deployment's 384Mi.
 */
export const bodyBudget = { fullSizeBodies: 2, smallBodies: 16 } as const;

/** A delivery not stored by then gets 503, well inside GitHub's 10 s. */
export const webhookHandleDeadlineMs = 8000;

/**
 * Idle keep-alive connections stay open longer than a proxy's (ingress-nginx keeps upstream connections
 * 60 s), so a proxy never sends a request on a connection that is being closed.
 */
export const webhookKeepAliveMs = 72_000;

/** The local pod runtime's retry backoff: a local session process is back in seconds, never minutes. */
export const podRuntimeBackoff = { baseDelayMs: 500, maxDelayMs: 10_000 } as const;

/** Leader election on a Lease, with client-go's timings (DESIGN.md §2). */
export const leaseTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

/**
 * The webhook's record of the last delivery it stored and of its start (a ConfigMap in the namespace of
 * CodeMate's servers), written at most once per `everyMs`; the operator's redelivery reads it.
 */
export const webhookRecord = { name: 'codemate-webhook-deliveries', everyMs: 5_000 } as const;

/**
 * App mode: how the operator asks GitHub to redeliver webhook deliveries that failed (adr/0015): every
 * `everyMs` it lists the App's deliveries of the last `windowMs`, at most `maxListed`, and asks again for
 * at most `maxPerPass` of them, each at most `maxAttempts` times.
 */
export const redelivery = {
  everyMs: 30_000,
  windowMs: 3_600_000,
  maxListed: 200,
  maxPerPass: 20,
  maxAttempts: 3,
} as const;

/**
 * How long an untrusted comment waits in AwaitingApproval for a trusted approval (operator
 * --approval-expiry-seconds): a week, so that a comment written before a weekend can still be approved.
 */
export const defaultApprovalExpirySeconds = 7 * 86400;

/** While a CodeMate waits for another to give up its branch (the Conflict condition), it looks again this often. */
export const branchConflictRequeueMs = 10_000;
