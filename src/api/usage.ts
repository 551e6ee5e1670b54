/**
 * Token usage against spec.budget (pure). Without zod, so that the quick CLI commands (list, describe)
 * load it without the schemas.
 */

interface Counts {
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  cacheCreationTokens?: number | undefined;
}

/**
 * The tokens spec.budget.maxTokens counts: input, cache creation and output. Cache reads are reported
 * but not counted: they cost a tenth of input, and a long session reads its whole context from the cache
 * in every request, so they would exhaust any budget without saying much about the work done.
 */
export function tokensCounted(usage: Counts | undefined): number {
  return (usage?.inputTokens ?? 0) + (usage?.cacheCreationTokens ?? 0) + (usage?.outputTokens ?? 0);
}

/** The budget is used up: how many tokens of how many, or undefined while there is room (or no budget). */
export function budgetExhausted(cm: {
  spec: { budget?: { maxTokens?: number | undefined } | undefined };
  status?: { usage?: Counts | undefined } | undefined;
}): { used: number; max: number } | undefined {
  const max = cm.spec.budget?.maxTokens;
  if (max === undefined) return undefined;
  const used = tokensCounted(cm.status?.usage);
  return used >= max ? { used, max } : undefined;
}
