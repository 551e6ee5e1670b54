/**
 * Helm 4, built from the Go module proxy (`helm.sh/helm/v4`, pinned in versions.ts) on first use and
 * cached next to the control-plane binaries, under the same kind of lock, so concurrent callers share one
 * build. Measured cold (empty Go build cache, 2 shared cores): 5 min 24 s, peak RSS 1.0 GB (see docs/install.md).
 */
import path from 'node:path';
import { CodemateError } from '../api/errors.js';
import { cachedProgram } from './cache.js';
import { runProgram } from './runProgram.js';
import { helmVersion } from './versions.js';

export interface ResolveHelmOptions {
  cacheDir: string;
  /** The Go command; `go` on PATH by default. */
  go?: string;
  onProgress?: (text: string) => void;
}

/** The path of `helm` of the pinned version, building it into the cache when needed. */
export async function resolveHelm(options: ResolveHelmOptions): Promise<string> {
  return cachedProgram({
    dir: path.join(options.cacheDir, 'helm', helmVersion),
    program: 'helm',
    waiting: 'waiting for another codemate process that is building helm',
    onProgress: options.onProgress,
    fill: async (staging) => {
      options.onProgress?.(
        `compiling helm ${helmVersion} from the Go module proxy (first time: a few minutes)`,
      );
      try {
        await runProgram(
          options.go ?? 'go',
          [
            'install',
            '-trimpath',
            // Without the stamp, `helm version` says only the minor version (v4.3).
            '-ldflags',
            `-s -w -X helm.sh/helm/v4/internal/version.version=${helmVersion}`,
            `helm.sh/helm/v4/cmd/helm@${helmVersion}`,
          ],
          { cwd: staging, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '', GOBIN: staging } },
        );
      } catch (error) {
        throw new CodemateError(`could not build helm ${helmVersion} with Go`, {
          hint: 'install Go 1.26 or newer and make the Go module proxy reachable (GOPROXY), then run `codemate dev build`',
          cause: error,
        });
      }
    },
  });
}
