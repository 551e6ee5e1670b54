import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { closeMatches, roleFor } from '../../../src/cli/cluster.js';

describe('closeMatches', () => {
  it('suggests near names, nearest first, and nothing for strangers', () => {
    expect(closeMatches('pr-12', ['pr-123', 'pr-45', 'feature-x'])).toEqual(['pr-123', 'pr-45']);
    expect(closeMatches('feature-logn', ['feature-login', 'other'])).toEqual(['feature-login']);
    expect(closeMatches('zzzzzz', ['feature-login'])).toEqual([]);
  });
});

describe('roleFor', () => {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
  const roles = new Map(
    parseAllDocuments(
      readFileSync(new URL('../../../manifests/user-rbac.yaml', import.meta.url), 'utf8'),
    ).map((d) => {
      const role = d.toJSON() as { metadata: { name: string }; rules: Rule[] };
      return [role.metadata.name, role.rules] as const;
    }),
  );
  const grants = (role: string, verb: string, resource: string) =>
    (roles.get(role) ?? []).some((r) => r.resources.includes(resource) && r.verbs.includes(verb));

  // Every request the CLI explains when it is forbidden, and the role its hint names.
  it.each([
    ['list', 'codemates', 'codemate-view'],
    ['get', 'codemates', 'codemate-view'],
    ['get', 'pods/log', 'codemate-view'],
    ['create', 'codemates', 'codemate-edit'],
    ['patch', 'codemates', 'codemate-edit'],
    ['delete', 'codemates', 'codemate-edit'],
    ['create', 'codematemessages', 'codemate-edit'],
    ['create', 'pods/exec', 'codemate-attach'],
  ])('%s %s: %s, which grants it', (verb, resource, role) => {
    expect(roleFor(verb, resource)).toBe(role);
    expect(grants(role, verb, resource)).toBe(true);
  });

  it('names no role for what CodeMate does not grant', () => {
    expect(roleFor('get', 'secrets')).toBeUndefined();
    expect(roleFor('delete', 'pods')).toBeUndefined();
  });
});
