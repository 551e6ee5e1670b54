import type { Condition } from './codemate.js';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * Sets a condition the way metav1 conditions work: lastTransitionTime changes only when the status
 * does; reason, message and observedGeneration are always updated.
 */
export function setCondition(
  conditions: readonly Condition[],
  next: ConditionInput,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const merged: Condition = {
    ...next,
    observedGeneration,
    lastTransitionTime:
      previous && previous.status === next.status ? previous.lastTransitionTime : now.toISOString(),
  };
  return [...conditions.filter((c) => c.type !== next.type), merged].sort((a, b) =>
    a.type.localeCompare(b.type),
  );
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
