import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

describe('the Node pin', () => {
  // The pinned `node` package is the Node that `npm test` and .ci/run use on a machine whose own Node is
  // older; the images must run the same one.
  const pin = pkg.devDependencies.node;

  it('is one exact Node 24 release, allowed to install its binary', () => {
    expect(pin).toMatch(/^24\.\d+\.\d+$/);
    expect(pkg.allowScripts?.node).toBe(true);
  });

  it('is the base of both images', () => {
    for (const dockerfile of ['Dockerfile', 'setup/docker/Dockerfile.codemate']) {
      expect(/^ARG NODE_VERSION=(\S+)$/m.exec(read(dockerfile))?.[1], dockerfile).toBe(pin);
    }
  });

  it('is the release of the digest-pinned public base, which a local build replaces (NODE_IMAGE)', () => {
    for (const dockerfile of ['Dockerfile', 'setup/docker/Dockerfile.codemate']) {
      const text = read(dockerfile);
      expect(/^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1], dockerfile).toMatch(
        /^docker\.io\/library\/node:\$\{NODE_VERSION\}-bookworm-slim@sha256:[0-9a-f]{64}$/,
      );
      expect(text.match(/^FROM .*/gm), dockerfile).toEqual(
        expect.arrayContaining([expect.stringMatching(/^FROM \$\{NODE_IMAGE\}( AS \w+)?$/)]),
      );
      expect(text.match(/^FROM (?!\$\{NODE_IMAGE\})/m), dockerfile).toBeNull();
    }
  });

  it('keeps Node 22 supported', () => {
    expect(pkg.engines.node).toBe('>=22');
  });
});
