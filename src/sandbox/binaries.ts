import { constants as fsConstants } from 'node:fs';
import { access, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CodemateError } from '../api/errors.js';
import { runProgram } from './runProgram.js';
import { acquireLock } from './lock.js';
import { binaryNames, versionKey, versions, type BinaryName } from './versions.js';

/** Where the sandbox finds its programs, and the kwok data (CRDs, stages) that goes with them. */
export interface BinarySet {
  readonly dir: string;
  path(name: BinaryName): string;
  readonly kwokCrdDir: string;
  readonly kwokStageDir: string;
}

export interface ResolveBinariesOptions {
  /** Prebuilt binaries (CODEMATE_BIN_DIR). Used as is and never built into. */
  binDir?: string | undefined;
  /** The user cache directory for codemate; binaries are cached under bin/<version key>. */
  cacheDir: string;
  /** The Go command; `go` on PATH by default. */
  go?: string;
  onProgress?: (text: string) => void;
}

/** The kwok stages the sandbox plays: nodes become Ready and keep a lease; pods run, complete and go. */
const kwokStages = [
  'kustomize/stage/node/fast/node-initialize.yaml',
  'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'kustomize/stage/pod/fast/pod-ready.yaml',
  'kustomize/stage/pod/fast/pod-complete.yaml',
  'kustomize/stage/pod/fast/pod-delete.yaml',
];

export function binarySetAt(dir: string): BinarySet {
  return {
    dir,
    path: (name) => path.join(dir, name),
    kwokCrdDir: path.join(dir, 'kwok-data', 'crds'),
    kwokStageDir: path.join(dir, 'kwok-data', 'stages'),
  };
}

/** Lists what a binary directory lacks; empty when it is complete. */
export async function missingFrom(set: BinarySet): Promise<string[]> {
  const missing: string[] = [];
  for (const name of binaryNames) {
    try {
      await access(set.path(name), fsConstants.X_OK);
    } catch {
      missing.push(name);
    }
  }
  for (const dir of [set.kwokCrdDir, set.kwokStageDir]) {
    const entries = await readdir(dir).catch(() => []);
    if (!entries.some((e) => e.endsWith('.yaml'))) missing.push(path.relative(set.dir, dir) + '/*.yaml');
  }
  return missing;
}

/**
 * Finds the control-plane binaries: CODEMATE_BIN_DIR when set, else the version-keyed cache, else builds
 * them from the Go module proxy into the cache. Concurrent callers share one build through a lock.
 */
export async function resolveBinaries(options: ResolveBinariesOptions): Promise<BinarySet> {
  if (options.binDir) {
    const set = binarySetAt(path.resolve(options.binDir));
    const missing = await missingFrom(set);
    if (missing.length > 0) {
      throw new CodemateError(`CODEMATE_BIN_DIR=${set.dir} lacks ${missing.join(', ')}`, {
        hint:
          'point CODEMATE_BIN_DIR at a directory laid out like the build cache (see docs/sandbox.md), ' +
          'or unset it to build the binaries with Go',
      });
    }
    return set;
  }
  const finalDir = path.join(options.cacheDir, 'bin', versionKey());
  const set = binarySetAt(finalDir);
  if ((await missingFrom(set)).length === 0) return set;

  await mkdir(path.join(options.cacheDir, 'bin'), { recursive: true });
  const release = await acquireLock(`${finalDir}.lock`, () =>
    options.onProgress?.('waiting for another codemate process that is building the same binaries'),
  );
  try {
    if ((await missingFrom(set)).length === 0) return set;
    await buildBinaries(finalDir, options);
    return set;
  } finally {
    await release();
  }
}

async function goEnv(go: string): Promise<{ version: string; modCache: string }> {
  try {
    const { stdout } = await runProgram(go, ['env', 'GOVERSION', 'GOMODCACHE']);
    const [version = '', modCache = ''] = stdout.trim().split('\n');
    return { version, modCache };
  } catch (error) {
    throw new CodemateError(
      'the control-plane binaries are not cached and Go is not available to build them',
      {
        hint:
          'install Go 1.26 or newer (the build takes 10-20 minutes once), or set CODEMATE_BIN_DIR to a directory ' +
          `holding ${binaryNames.join(', ')} and kwok-data/{crds,stages} (see docs/sandbox.md)`,
        cause: error,
      },
    );
  }
}

function goMinor(version: string): number {
  const match = /^go1\.(\d+)/.exec(version);
  return match ? Number(match[1]) : 0;
}

async function buildBinaries(finalDir: string, options: ResolveBinariesOptions): Promise<void> {
  const go = options.go ?? 'go';
  const progress = options.onProgress ?? (() => {});
  const stagingDir = `${finalDir}.partial`;
  await rm(stagingDir, { recursive: true, force: true });
  await mkdir(stagingDir, { recursive: true });
  await buildKubernetesCommands({
    go,
    workDir: path.join(path.dirname(path.dirname(finalDir)), 'build', path.basename(finalDir)),
    outDir: stagingDir,
    packages: wrapperPackages,
    what: 'control plane',
    announce:
      'compiling etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (first time: about 10 min)',
    onProgress: progress,
  });
  // etcd's main package is its module root go.etcd.io/etcd/server/v3; go names that binary `server`.
  await rename(path.join(stagingDir, 'server'), path.join(stagingDir, 'etcd'));

  progress(`compiling kwok ${versions.kwok}`);
  const goRun = goRunner(go, stagingDir);
  await goRun(['install', '-trimpath', '-ldflags', '-s -w', `sigs.k8s.io/kwok/cmd/kwok@${versions.kwok}`], {
    GOBIN: stagingDir,
    GOFLAGS: '',
  });
  await copyKwokData(goRun, stagingDir);
  await writeFile(path.join(stagingDir, 'versions.json'), JSON.stringify(versions, null, 2) + '\n');

  const missing = await missingFrom(binarySetAt(stagingDir));
  if (missing.length > 0) throw new CodemateError(`the build finished without ${missing.join(', ')}`);
  await rm(finalDir, { recursive: true, force: true });
  await rename(stagingDir, finalDir);
  progress(`control-plane binaries ready in ${finalDir}`);
}

/** Go with the environment every sandbox build uses: static binaries, modules resolved as needed. */
function goRunner(go: string, cwd: string) {
  return (args: string[], extraEnv: Record<string, string> = {}, onStderr?: (s: string) => void) =>
    runProgram(go, args, {
      cwd,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', ...extraEnv },
      onStderr,
    });
}

export interface KubernetesBuild {
  go: string;
  /** The wrapper module's directory, kept between builds. */
  workDir: string;
  outDir: string;
  /** Main packages of k8s.io/kubernetes (or of modules in its graph) to build. */
  packages: readonly string[];
  /** What the progress lines call the build. */
  what: string;
  /** Said once compilation starts. */
  announce: string;
  onProgress: (text: string) => void;
}

/**
 * Builds main packages of k8s.io/kubernetes at the pinned version into `outDir`, in a wrapper module
 * (wrapperGoMod), stamped with the version: the control plane, and the real node's kubelet.
 */
export async function buildKubernetesCommands(build: KubernetesBuild): Promise<void> {
  const env = await goEnv(build.go);
  if (goMinor(env.version) < 26) {
    throw new CodemateError(`Go ${env.version} is too old to build Kubernetes ${versions.kubernetes}`, {
      hint: 'install Go 1.26 or newer, or set CODEMATE_BIN_DIR to prebuilt binaries',
    });
  }
  await mkdir(build.workDir, { recursive: true });
  const goRun = goRunner(build.go, build.workDir);
  build.onProgress(`resolving k8s.io/kubernetes@${versions.kubernetes} from the Go module proxy`);
  await writeWrapperModule(
    build.workDir,
    await downloadedGoMod(goRun, `k8s.io/kubernetes@${versions.kubernetes}`),
    build.packages,
  );
  await goRun(['mod', 'tidy']);

  let compiled = 0;
  const started = Date.now();
  const ldflags = ['-s', '-w', ...versionStamps()].join(' ');
  build.onProgress(build.announce);
  await goRun(
    ['build', '-v', '-trimpath', '-ldflags', ldflags, '-o', `${build.outDir}/`, ...build.packages],
    {},
    (chunk) => {
      const before = compiled;
      compiled += chunk.split('\n').filter(Boolean).length;
      // One update per 50 packages keeps non-TTY logs (CI) short; the build compiles a few thousand.
      if (Math.floor(before / 50) !== Math.floor(compiled / 50)) {
        build.onProgress(
          `compiling ${build.what}: ${compiled} packages, ${Math.round((Date.now() - started) / 1000)}s`,
        );
      }
    },
  );
}

type GoRun = (args: string[], env?: Record<string, string>) => Promise<{ stdout: string }>;

export async function moduleDownload(goRun: GoRun, module: string): Promise<{ GoMod: string; Dir: string }> {
  const { stdout } = await goRun(['mod', 'download', '-json', module], { GOFLAGS: '' });
  return JSON.parse(stdout) as { GoMod: string; Dir: string };
}

async function downloadedGoMod(goRun: GoRun, module: string): Promise<string> {
  return readFile((await moduleDownload(goRun, module)).GoMod, 'utf8');
}

const wrapperPackages = [
  'go.etcd.io/etcd/server/v3',
  'k8s.io/kubernetes/cmd/kube-apiserver',
  'k8s.io/kubernetes/cmd/kube-controller-manager',
  'k8s.io/kubernetes/cmd/kube-scheduler',
  'k8s.io/kubernetes/cmd/kubectl',
];

/**
 * k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every staging module with a local path.
 * A wrapper module that requires it and replaces each staging module with the served version builds it.
 * The staging list comes from the served go.mod, so new staging modules need no code change.
 */
export function wrapperGoMod(kubernetesGoMod: string): string {
  const staging = [
    ...kubernetesGoMod.matchAll(/^\s*(?:replace\s+)?(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm),
  ].map((m) => m[1]);
  if (staging.length === 0)
    throw new CodemateError('the served k8s.io/kubernetes go.mod lists no staging modules');
  const goLine = /^go\s+(\S+)/m.exec(kubernetesGoMod)?.[1] ?? '1.26.0';
  return [
    'module codemate.local/controlplane',
    '',
    `go ${goLine}`,
    '',
    `require k8s.io/kubernetes ${versions.kubernetes}`,
    '',
    ...staging.map((m) => `replace ${m} => ${m} ${versions.staging}`),
    '',
  ].join('\n');
}

async function writeWrapperModule(
  workDir: string,
  kubernetesGoMod: string,
  packages: readonly string[],
): Promise<void> {
  await writeFile(path.join(workDir, 'go.mod'), wrapperGoMod(kubernetesGoMod));
  await rm(path.join(workDir, 'go.sum'), { force: true });
  const imports = packages.map((p) => `\t_ "${p}"`).join('\n');
  await writeFile(
    path.join(workDir, 'tools.go'),
    `//go:build tools\n\npackage controlplane\n\nimport (\n${imports}\n)\n`,
  );
}

function versionStamps(): string[] {
  const [major = '1', minor = '0'] = versions.kubernetes.replace(/^v/, '').split('.');
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${versions.kubernetes}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
}

async function copyKwokData(goRun: GoRun, stagingDir: string): Promise<void> {
  const { Dir } = await moduleDownload(goRun, `sigs.k8s.io/kwok@${versions.kwok}`);
  const set = binarySetAt(stagingDir);
  await mkdir(set.kwokCrdDir, { recursive: true });
  await mkdir(set.kwokStageDir, { recursive: true });
  const crdSource = path.join(Dir, 'kustomize/crd/bases');
  for (const file of await readdir(crdSource)) {
    if (file.endsWith('.yaml')) await copyFile(path.join(crdSource, file), path.join(set.kwokCrdDir, file));
  }
  for (const stage of kwokStages) {
    await copyFile(path.join(Dir, stage), path.join(set.kwokStageDir, path.basename(stage)));
  }
}
