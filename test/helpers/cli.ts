import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = path.join(repoRoot, 'bin', 'codemate.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`npm run build` first) as a child process, as a user would. */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; nodeOptions?: string[] } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeOptions ?? []), cliPath, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * A module loader hook, as a data: URL for `--import`: it appends each module URL the process loads
 * (ESM, and the entry file of each CommonJS package imported from ESM) to the file in TRACE_MODULES.
 */
const traceModules = `data:text/javascript,${encodeURIComponent(`
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) { appendFileSync(file, url + '\\\\n'); return next(url, context); }
\`), { data: { file: process.env.TRACE_MODULES } });
`)}`;

/** Runs the built CLI as runCli does, and lists the module URLs it loaded. */
export async function runCliTracingModules(
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult & { modules: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cm-trace-'));
  const file = path.join(dir, 'modules.txt');
  try {
    const result = await runCli(args, {
      env: { ...options.env, TRACE_MODULES: file },
      nodeOptions: ['--import', traceModules],
    });
    const modules = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { ...result, modules };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
