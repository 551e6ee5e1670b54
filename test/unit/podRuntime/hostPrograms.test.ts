import { describe, expect, it } from 'vitest';
import { imageRepositories } from '../../../src/config/defaults.js';
import { cliPath } from '../../../src/config/packagePaths.js';
import { hostProgram, imageRepository } from '../../../src/podRuntime/hostPrograms.js';

describe('imageRepository', () => {
  it.each([
    ['ghcr.io/codemate-io/codemate:0.1.0', 'ghcr.io/codemate-io/codemate'],
    [`ghcr.io/codemate-io/codemate@sha256:${'a'.repeat(64)}`, 'ghcr.io/codemate-io/codemate'],
    ['localhost:5000/codemate', 'localhost:5000/codemate'],
    ['localhost:5000/codemate:dev', 'localhost:5000/codemate'],
  ])('%s is %s', (image, repository) => expect(imageRepository(image)).toBe(repository));
});

describe('hostProgram', () => {
  it("runs the session image's scripts from the checkout", () => {
    expect(
      hostProgram(
        { image: 'anything:1', command: ['/opt/codemate/bin/codemate-entrypoint', '--x'] },
        '/src/setup/scripts',
      ),
    ).toEqual({
      program: {
        kind: 'session',
        command: '/src/setup/scripts/codemate-entrypoint',
        args: ['--x'],
        env: {},
      },
    });
  });

  it("runs the project's image from its entrypoint with the container's args", () => {
    expect(hostProgram({ image: `${imageRepositories.codemate}:1.2.3`, args: ['webhook'] }, '/s')).toEqual({
      program: {
        kind: 'server',
        command: process.execPath,
        args: [cliPath, 'webhook'],
        env: { NODE_ENV: 'production' },
      },
    });
  });

  it('says why it runs nothing else', () => {
    expect(hostProgram({ image: 'nginx:1.27' }, '/s')).toEqual({
      unsupported: expect.stringContaining(
        'not nginx:1.27; run the sandbox with `codemate dev up --runtime containerd`',
      ),
    });
    expect(
      hostProgram({ image: `${imageRepositories.codemate}:1`, command: ['sh'], args: ['-c', 'x'] }, '/s'),
    ).toEqual({ unsupported: expect.stringContaining('replaces the entrypoint') });
  });
});
