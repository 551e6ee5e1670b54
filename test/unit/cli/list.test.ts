import { describe, expect, it } from 'vitest';
import { tokensLine } from '../../../src/cli/commands/list.js';

describe('tokensLine', () => {
  const usage = { inputTokens: 1000, outputTokens: 200, cacheReadTokens: 90_000, cacheCreationTokens: 50 };
  it('shows the tokens the budget counts, of the budget when there is one', () => {
    expect(tokensLine({ spec: {} as never, status: { usage } })).toBe('1250');
    expect(tokensLine({ spec: { budget: { maxTokens: 5000 } } as never, status: { usage } })).toBe(
      '1250/5000',
    );
    expect(tokensLine({ spec: { budget: { maxTokens: 5000 } } as never, status: {} })).toBe('0/5000');
    expect(tokensLine({ spec: {} as never, status: {} })).toBe('-');
  });
});
