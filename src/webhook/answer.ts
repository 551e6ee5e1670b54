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
