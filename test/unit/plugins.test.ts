import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const plugins = fileURLToPath(new URL('../../plugins/', import.meta.url));
const dirs = readdirSync(plugins).filter(
  (d) => !d.startsWith('.') && statSync(path.join(plugins, d)).isDirectory(),
);

function frontmatter(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  const match = /^---\n([\s\S]*?)\n---\n/.exec(text);
  if (!match) throw new Error(`${file} has no frontmatter`);
  return parse(match[1]!) as Record<string, unknown>;
}

describe('plugins/', () => {
  it('lists every plugin in the marketplace, and nothing else', () => {
    const market = JSON.parse(readFileSync(path.join(plugins, '.claude-plugin', 'marketplace.json'), 'utf8'));
    expect(market.name).toMatch(/^[a-z0-9-]+$/);
    expect(market.owner.name).toBeTruthy();
    expect(market.plugins.map((p: { name: string; source: string }) => [p.name, p.source]).sort()).toEqual(
      dirs.map((d) => [d, `./${d}`]).sort(),
    );
  });

  for (const dir of dirs) {
    describe(dir, () => {
      it('has a valid .claude-plugin/plugin.json named after its directory', () => {
        const manifest = JSON.parse(
          readFileSync(path.join(plugins, dir, '.claude-plugin', 'plugin.json'), 'utf8'),
        );
        expect(manifest.name).toBe(dir);
        expect(manifest.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
        expect(manifest.version).toMatch(/^\d+\.\d+\.\d+$/);
        expect(typeof manifest.description).toBe('string');
      });

      const skills = readdirSync(path.join(plugins, dir, 'skills'));
      it('has at least one skill', () => expect(skills.length).toBeGreaterThan(0));
      for (const skill of skills) {
        it(`skill ${skill}: SKILL.md frontmatter is valid`, () => {
          const fm = frontmatter(path.join(plugins, dir, 'skills', skill, 'SKILL.md'));
          expect(fm.name).toBe(skill);
          expect(typeof fm.description).toBe('string');
          expect((fm.description as string).length).toBeGreaterThan(20);
          expect((fm.description as string).length).toBeLessThanOrEqual(1536);
          expect(
            Object.keys(fm).every((k) =>
              ['name', 'description', 'allowed-tools', 'disable-model-invocation', 'when_to_use'].includes(k),
            ),
          ).toBe(true);
        });
      }
    });
  }
});
