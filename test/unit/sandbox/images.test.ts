import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aptMirrors, contextSources, localCertificates } from '../../../src/sandbox/images.js';
import { baseImage } from '../../../src/sandbox/versions.js';

const read = (file: string) => readFile(new URL(`../../../${file}`, import.meta.url), 'utf8');

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

describe('contextSources', () => {
  it('lists what COPY and ADD take from the build context, not from a stage', () => {
    const dockerfile = [
      'FROM base AS build',
      'COPY package.json package-lock.json ./',
      'COPY --chown=1000:1000 src ./src',
      'ADD ["bin", "/app/bin"]',
      'COPY --from=build /src/dist ./dist',
      'RUN echo COPY not-a-source ./x',
      'COPY a \\',
      '  b /dest/',
    ].join('\n');
    expect(contextSources(dockerfile)).toEqual(['package.json', 'package-lock.json', 'src', 'bin', 'a', 'b']);
  });

  it("covers both of the project's Dockerfiles, whose sources .dockerignore lets through", async () => {
    expect(contextSources(await read('Dockerfile'))).toEqual([
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src',
      'package.json',
      'bin',
      'manifests',
    ]);
    expect(contextSources(await read('setup/docker/Dockerfile.codemate'))).toEqual([
      'setup/scripts/',
      'plugins/',
    ]);
    const allowed = (await read('.dockerignore')).split('\n').filter((l) => l.startsWith('!'));
    for (const file of ['Dockerfile', 'setup/docker/Dockerfile.codemate']) {
      for (const source of contextSources(await read(file))) {
        expect(allowed, `${file}: ${source}`).toContain(`!${source.replace(/\/$/, '')}`);
      }
    }
  });
});

describe('aptMirrors', () => {
  it("reads Debian's main and security mirrors from deb822 and one-line sources", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'codemate-apt-'));
    await mkdir(path.join(dir, 'sources.list.d'));
    await writeFile(
      path.join(dir, 'sources.list.d', 'debian.sources'),
      'Types: deb-src\nURIs: http://sources.example/debian\nSuites: bookworm\n\n' +
        '# a comment\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n',
    );
    await writeFile(
      path.join(dir, 'sources.list'),
      '# deb http://ignored.example/debian bookworm main\ndeb [arch=amd64] http://security.example/debian-security bookworm-security main\n',
    );
    expect(await aptMirrors(dir)).toEqual({
      main: 'http://mirror.example/debian',
      security: 'http://security.example/debian-security',
    });
  });

  it("falls back to Debian's own", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'codemate-apt-'));
    expect(await aptMirrors(dir)).toEqual({
      main: 'http://deb.debian.org/debian',
      security: 'http://deb.debian.org/debian-security',
    });
  });
});

describe('localCertificates', () => {
  it('joins the .crt files, in order, into one PEM; none gives an empty string', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'codemate-ca-'));
    expect(await localCertificates(dir)).toBe('');
    await writeFile(path.join(dir, 'b.crt'), '-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----');
    await writeFile(path.join(dir, 'a.crt'), '-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n');
    await writeFile(path.join(dir, 'README'), 'not a certificate');
    expect(await localCertificates(dir)).toBe(
      '-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n',
    );
  });
});

describe('the local Node base', () => {
  it('holds the npm that the pinned Node release bundles', async () => {
    // The changelog of the platform package that the `node` package installed: the last npm upgrade listed
    // at or below the pinned release's own entry.
    const pkg = JSON.parse(await read('package.json')) as { devDependencies: { node: string } };
    const installed = new URL('../../../node_modules/node/node_modules/', import.meta.url);
    const platform = (await readdir(installed)).find((name) => name.startsWith('node-linux-'));
    const changelog = await readFile(new URL(`${platform}/CHANGELOG.md`, installed), 'utf8');
    const from = changelog.indexOf(`<a id="${pkg.devDependencies.node}"></a>`);
    expect(from).toBeGreaterThanOrEqual(0);
    expect(/upgrade npm to (\d+\.\d+\.\d+)/.exec(changelog.slice(from))?.[1]).toBe(baseImage.npm);
  });
});
