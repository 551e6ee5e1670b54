/** Resolves on SIGTERM or SIGINT: when a long-running program (operator, webhook, pod runtime) should stop. */
export function terminationSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}
