import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's Prometheus metrics, in their own registry. */
export function operatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'codemate_operator_' });
  return {
    registry,
    reconciles: new Counter({
      name: 'codemate_reconcile_total',
      help: 'Reconciles of CodeMates by result (success, error).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'codemate_reconcile_duration_seconds',
      help: 'Time to reconcile one CodeMate, including API calls.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'codemate_reconcile_errors_total',
      help: 'Reconciles that failed, by kind (forbidden, conflict, unavailable, other).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'codemate_workqueue_depth',
      help: 'Keys waiting in the reconcile queue.',
      registers: [registry],
    }),
    sessions: new Gauge({
      name: 'codemate_sessions',
      help: 'CodeMates by status phase, as seen by this replica.',
      labelNames: ['phase'] as const,
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: 'codemate_informer_restarts_total',
      help: 'Times a watch broke and was restarted, by resource.',
      labelNames: ['resource'] as const,
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'codemate_deliveries_total',
      help: 'Messages that reached a final phase, by source type and phase.',
      labelNames: ['source', 'result'] as const,
      registers: [registry],
    }),
    deliveryAttempts: new Counter({
      name: 'codemate_delivery_attempts_total',
      help: 'Runs of codemate-inject in a session, by result (delivered, retry, failed) and path (channel, exec).',
      labelNames: ['result', 'path'] as const,
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'codemate_delivery_latency_seconds',
      help: 'From message creation to the session acknowledging it.',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    githubRequests: new Counter({
      name: 'codemate_github_requests_total',
      help: 'GitHub API requests: charged against the rate limit, or cached (a 304).',
      labelNames: ['kind', 'status'] as const,
      registers: [registry],
    }),
    githubRateLimitRemaining: new Gauge({
      name: 'codemate_github_rate_limit_remaining',
      help: 'Requests left in the current GitHub rate-limit window, as last reported.',
      registers: [registry],
    }),
    githubRedeliveries: new Counter({
      name: 'codemate_github_redeliveries_total',
      help: 'Failed webhook deliveries the operator asked GitHub to send again (GitHub App mode).',
      registers: [registry],
    }),
    githubRateLimited: new Counter({
      name: 'codemate_github_rate_limited_total',
      help: 'Times a GitHub request hit a primary or secondary rate limit and waited.',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    // Summed over CodeMates: a label per CodeMate would grow without bound. Each CodeMate's own counts are
    // in its status.usage (kube-state-metrics' custom resource state can export them per object).
    sessionTokens: new Counter({
      name: 'codemate_session_tokens_total',
      help: "Tokens the sessions' model requests used, by type (input, output, cache_read, cache_creation).",
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    sessionTurns: new Counter({
      name: 'codemate_session_turns_total',
      help: 'Turns the sessions finished.',
      registers: [registry],
    }),
    sessionStates: new Gauge({
      name: 'codemate_session_states',
      help: 'Running sessions by state (working, idle, blocked), as their hooks report it.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    sessionStatusWrites: new Counter({
      name: 'codemate_session_status_writes_total',
      help: "Writes of the sessions' state and usage, by target (kubernetes status, github commit status or check run) and result.",
      labelNames: ['target', 'result'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'codemate_leader',
      help: '1 while this replica holds the leader Lease.',
      registers: [registry],
    }),
  };
}
export type OperatorMetrics = ReturnType<typeof operatorMetrics>;

/** The webhook server's Prometheus metrics, in their own registry. */
export function webhookMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'codemate_webhook_' });
  return {
    registry,
    deliveries: new Counter({
      name: 'codemate_webhook_deliveries_total',
      help: 'Webhook deliveries by GitHub event and HTTP status answered.',
      labelNames: ['event', 'status'] as const,
      registers: [registry],
    }),
    replays: new Counter({
      name: 'codemate_webhook_replays_total',
      help: 'Deliveries answered from the delivery log (an X-GitHub-Delivery seen before).',
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'codemate_webhook_duration_seconds',
      help: 'From the request to the answer, including storing the messages.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    messages: new Counter({
      name: 'codemate_webhook_messages_total',
      help: 'Per-CodeMate outcomes of routed items: created, exists, history, deferred.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: 'codemate_webhook_informer_restarts_total',
      help: 'Times the CodeMate watch broke and was restarted.',
      registers: [registry],
    }),
  };
}
export type WebhookMetrics = ReturnType<typeof webhookMetrics>;
