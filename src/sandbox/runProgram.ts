import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Called with each chunk of stderr, for progress from long builds. */
  onStderr?: (chunk: string) => void;
  /** Called with each chunk of stdout, for builders that report progress there (buildah). */
  onStdout?: (chunk: string) => void;
}

/** Runs a host program to completion; a non-zero exit rejects with the tail of its stderr. */
export function runProgram(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      options.onStderr?.(chunk);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split('\n').slice(-15).join('\n');
      reject(
        new Error(
          `${file} ${args.join(' ')} exited with ${signal ?? `code ${code}`}${tail ? `:\n${tail}` : ''}`,
        ),
      );
    });
    // A program that exits without reading its input closes the pipe (EPIPE); its exit status, reported
    // on close, is the error worth showing.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
