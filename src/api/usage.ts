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

/** A spent budget: the whole one (maxTokens) or today's (maxTokensPerDay). */
export interface SpentBudget {
  used: number;
  max: number;
  period: 'total' | 'day';
  /** For the daily budget: the UTC day whose tokens reached it. */
  date?: string;
}

/** The UTC date of a time, as status.usage.today says it. */
export function utcDate(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/**
 * The budget is used up: the whole budget, or today's (a count of another day is no longer today's);
 * undefined while there is room, or no budget.
 */
export function budgetExhausted(
  cm: {
    spec: {
      budget?: { maxTokens?: number | undefined; maxTokensPerDay?: number | undefined } | undefined;
    };
    status?: { usage?: (Counts & { today?: { date?: string; tokens?: number } | undefined }) | undefined };
  },
  now: Date = new Date(),
): SpentBudget | undefined {
  const max = cm.spec.budget?.maxTokens;
  const used = tokensCounted(cm.status?.usage);
  if (max !== undefined && used >= max) return { used, max, period: 'total' };
  const perDay = cm.spec.budget?.maxTokensPerDay;
  const today = cm.status?.usage?.today;
  if (perDay !== undefined && today?.date === utcDate(now) && (today.tokens ?? 0) >= perDay) {
    return { used: today.tokens ?? 0, max: perDay, period: 'day', date: today.date };
  }
  return undefined;
}

/** How people are told about a spent budget: what it is, and what releases the messages. */
export function budgetWords(spent: SpentBudget): { budget: string; release: string } {
  return spent.period === 'total'
    ? { budget: `token budget of ${spent.max}`, release: 'raise spec.budget.maxTokens' }
    : {
        budget: `daily token budget of ${spent.max}`,
        release: 'wait for 00:00 UTC or raise spec.budget.maxTokensPerDay',
      };
}
