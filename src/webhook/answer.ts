/** What the webhook answers GitHub for one delivery: each handler returns it, the server sends it. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  /**
   * False when a later copy of the delivery could be handled differently (no CodeMate followed the pull
   * request yet, or a message was left to the poller), so it must not be answered from memory.
   */
  final?: boolean;
}

/** No CodeMate follows the pull request (yet): a later copy of the delivery may find one. */
export function nobodyFollows(event: { repository: string; pullRequest: number }): Answer {
  return {
    status: 202,
    body: { status: 'ignored', reason: `no CodeMate follows ${event.repository}#${event.pullRequest}` },
    final: false,
  };
}
