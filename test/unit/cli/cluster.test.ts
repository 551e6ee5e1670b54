import { describe, expect, it } from 'vitest';
import { closeMatches } from '../../../src/cli/cluster.js';

describe('closeMatches', () => {
  it('suggests near names, nearest first, and nothing for strangers', () => {
    expect(closeMatches('pr-12', ['pr-123', 'pr-45', 'feature-x'])).toEqual(['pr-123', 'pr-45']);
    expect(closeMatches('feature-logn', ['feature-login', 'other'])).toEqual(['feature-login']);
    expect(closeMatches('zzzzzz', ['feature-login'])).toEqual([]);
  });
});
