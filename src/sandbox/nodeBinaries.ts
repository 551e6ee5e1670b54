/**
 * The programs of the real node (`dev up --runtime containerd`), built from the Go module proxy on first
 * use and cached under `<cache>/real-node/<nodeVersionKey>/` with the cache's lock and staging directory:
 * - kubelet, in the control plane's kind of wrapper module (binaries.ts), with its own work directory;
 * - containerd 2 with its runc shim and ctr, static, without the btrfs, zfs and devmapper snapshotters
 *   (their C headers are not on the machine, and the node uses overlayfs);
 * - the pause program from the kubernetes module's build/pause (gcc -static), as a one-file OCI archive
 *   that `dev up` imports into containerd, so pods need no registry.
 */
import path from 'node:path';
import { CodemateError } from '../api/errors.js';
import { buildKubernetesCommands, moduleDownload } from './binaries.js';
import { cachedProgram } from './cache.js';
import { writeOciArchive } from './ociImage.js';
import { runProgram } from './runProgram.js';
import { nodeVersionKey, nodeVersions, versions } from './versions.js';

export interface NodeBinarySet {
  dir: string;
  kubelet: string;
  containerd: string;
  ctr: string;
  /** The pause image as an OCI archive, and the name it carries. */
  pauseArchive: string;
  pauseImage: string;
}

export const pauseImage = `localhost/codemate/pause:${nodeVersions.pause}`;

export function nodeBinarySetAt(dir: string): NodeBinarySet {
  return {
    dir,
    kubelet: path.join(dir, 'kubelet'),
    containerd: path.join(dir, 'containerd'),
    ctr: path.join(dir, 'ctr'),
    pauseArchive: path.join(dir, 'pause.oci.tar'),
    pauseImage,
  };
}

export interface ResolveNodeBinariesOptions {
  cacheDir: string;
  /** The Go command; `go` on PATH by default. */
  go?: string;
  onProgress?: (text: string) => void;
}

const containerdModule = 'github.com/containerd/containerd/v2';

/** The node's programs, building them into the cache when they are not there. */
export async function resolveNodeBinaries(options: ResolveNodeBinariesOptions): Promise<NodeBinarySet> {
  const dir = path.join(options.cacheDir, 'real-node', nodeVersionKey());
  const progress = options.onProgress ?? (() => {});
  const go = options.go ?? 'go';
  await cachedProgram({
    dir,
    program: 'kubelet',
    waiting: 'waiting for another codemate process that is building the node (kubelet, containerd)',
    onProgress: options.onProgress,
    fill: async (staging) => {
      try {
        await buildKubernetesCommands({
          go,
          workDir: path.join(options.cacheDir, 'build', nodeVersionKey()),
          outDir: staging,
          packages: ['k8s.io/kubernetes/cmd/kubelet'],
          what: 'kubelet',
          announce: `compiling kubelet ${nodeVersions.kubelet} (first time: 2-8 min)`,
          onProgress: progress,
        });
        progress(`compiling containerd ${nodeVersions.containerd} (first time: 2-4 min)`);
        await runProgram(
          go,
          [
            'install',
            '-trimpath',
            '-tags',
            'no_btrfs,no_zfs,no_devmapper',
            '-ldflags',
            `-s -w -X ${containerdModule}/version.Version=${nodeVersions.containerd}`,
            ...['containerd', 'containerd-shim-runc-v2', 'ctr'].map(
              (cmd) => `${containerdModule}/cmd/${cmd}@${nodeVersions.containerd}`,
            ),
          ],
          { cwd: staging, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '', GOBIN: staging } },
        );
        progress(`compiling pause ${nodeVersions.pause}`);
        const { Dir } = await moduleDownload(
          (args, env) => runProgram(go, args, { cwd: staging, env: { ...process.env, ...env } }),
          `k8s.io/kubernetes@${versions.kubernetes}`,
        );
        const pause = path.join(staging, 'pause');
        await runProgram('gcc', [
          '-Os',
          '-Wall',
          '-Werror',
          '-static',
          `-DVERSION=v${nodeVersions.pause}-codemate`,
          '-o',
          pause,
          path.join(Dir, 'build', 'pause', 'linux', 'pause.c'),
        ]);
        await writeOciArchive(
          {
            name: pauseImage,
            files: [{ source: pause, target: 'pause', mode: 0o755 }],
            entrypoint: ['/pause'],
          },
          path.join(staging, 'pause.oci.tar'),
        );
      } catch (error) {
        throw error instanceof CodemateError
          ? error
          : new CodemateError(
              `could not build the real node (kubelet, containerd, pause): ${(error as Error).message}`,
              {
                hint:
                  'it needs Go 1.26 or newer, the Go module proxy, and gcc with a static libc ' +
                  '(Debian: gcc, libc6-dev); then run `codemate dev build --runtime containerd`',
                cause: error,
              },
            );
      }
    },
  });
  return nodeBinarySetAt(dir);
}
