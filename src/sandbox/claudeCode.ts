/**
 * The real Claude Code CLI for sandbox sessions: the pinned npm package, installed on first use into the
 * cache next to the control-plane binaries (about 400 MB, so never a dependency of this package), under
 * the same kind of lock, so concurrent callers share one install. CODEMATE_CLAUDE_BIN points at a claude
 * to use instead.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CodemateError } from '../api/errors.js';
import { cachedProgram, isExecutable } from './cache.js';
import { runProgram } from './runProgram.js';
import { claudeCodeVersion } from './versions.js';

export const claudeCodePackage = '@anthropic-ai/claude-code';

export interface ResolveClaudeCodeOptions {
  /** A claude program to use as is (CODEMATE_CLAUDE_BIN). */
  claudeBin?: string | undefined;
  cacheDir: string;
  /** The npm command; `npm` on PATH by default. */
  npm?: string;
  onProgress?: (text: string) => void;
}

/** Where npm puts the program, in an entry. */
const bin = path.join('node_modules', '.bin', 'claude');

/** The path of a working `claude` of the pinned version, installing it into the cache when needed. */
export async function resolveClaudeCode(options: ResolveClaudeCodeOptions): Promise<string> {
  if (options.claudeBin) {
    const file = path.resolve(options.claudeBin);
    if (!(await isExecutable(file))) {
      throw new CodemateError(`CODEMATE_CLAUDE_BIN=${file} is not an executable file`, {
        hint: `point it at a claude ${claudeCodeVersion} program, or unset it to install ${claudeCodePackage} into the cache`,
      });
    }
    return file;
  }
  const dir = path.join(options.cacheDir, 'claude-code', claudeCodeVersion);
  return cachedProgram({
    dir,
    program: bin,
    waiting: 'waiting for another codemate process that is installing Claude Code',
    onProgress: options.onProgress,
    fill: async (staging) => {
      // A package.json of its own, so npm installs here and not into an enclosing project.
      await writeFile(
        path.join(staging, 'package.json'),
        JSON.stringify({ name: 'codemate-claude-code', private: true }, null, 2) + '\n',
      );
      options.onProgress?.(
        `installing ${claudeCodePackage}@${claudeCodeVersion} from npm (about 400 MB, once)`,
      );
      const started = Date.now();
      try {
        await runProgram(
          options.npm ?? 'npm',
          [
            'install',
            '--no-audit',
            '--no-fund',
            '--no-save',
            '--prefix',
            staging,
            `${claudeCodePackage}@${claudeCodeVersion}`,
          ],
          { cwd: staging },
        );
      } catch (error) {
        throw new CodemateError(`could not install ${claudeCodePackage}@${claudeCodeVersion} with npm`, {
          hint: 'check that the npm registry is reachable, or set CODEMATE_CLAUDE_BIN to an installed claude',
          cause: error,
        });
      }
      // The native binary needs no install script (npm may hold scripts back); check that it runs.
      const { stdout } = await runProgram(path.join(staging, bin), ['--version']);
      if (!stdout.includes(claudeCodeVersion)) {
        throw new CodemateError(`the installed claude reports '${stdout.trim()}', not ${claudeCodeVersion}`);
      }
      options.onProgress?.(
        `Claude Code ${claudeCodeVersion} ready in ${Math.round((Date.now() - started) / 1000)}s (${dir})`,
      );
    },
  });
}
