import type { Writable } from 'node:stream';
import { styleText } from 'node:util';

/**
 * Terminal conventions in one place: data goes to stdout, status to stderr; colour and spinners only when
 * the stream is a TTY and NO_COLOR is unset.
 */
export interface Output {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Colours for status text on stderr (they leave text as it is when stderr is not a colour TTY). */
  readonly color: Colors;
  data(text: string): void;
  info(text: string): void;
  warn(text: string): void;
  /**
   * A spinner on stderr when interactive; otherwise one plain line per state change. Asynchronous because
   * the spinner's library is loaded only by the commands that show one.
   */
  progress(text: string): Promise<Progress>;
}

export interface Colors {
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
}

export interface Progress {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
}

export interface OutputOptions {
  stdout?: Writable & { isTTY?: boolean };
  stderr?: Writable & { isTTY?: boolean; hasColors?: () => boolean };
  /** Default: what the terminal says; Node's hasColors() is false under NO_COLOR and TERM=dumb. */
  noColor?: boolean;
}

export function createOutput(options: OutputOptions = {}): Output {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const noColor = options.noColor ?? !(stderr.hasColors?.() ?? false);
  const interactive = Boolean(stderr.isTTY) && !noColor;
  const paint =
    (style: 'red' | 'yellow' | 'dim') =>
    (text: string): string =>
      interactive ? styleText(style, text) : text;
  const color: Colors = { red: paint('red'), yellow: paint('yellow'), dim: paint('dim') };
  return {
    stdout,
    stderr,
    color,
    data: (text) => void stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    info: (text) => void stderr.write(`${text}\n`),
    warn: (text) => void stderr.write(`${color.yellow('warning:')} ${text}\n`),
    progress: async (text) => (interactive ? spinnerProgress(stderr, text) : lineProgress(stderr, text)),
  };
}

async function spinnerProgress(stream: Writable, text: string): Promise<Progress> {
  const { default: ora } = await import('ora');
  const spinner = ora({ text, stream }).start();
  return {
    update: (text) => void (spinner.text = text),
    succeed: (text) => void spinner.succeed(text),
    fail: (text) => void spinner.fail(text),
  };
}

function lineProgress(stream: Writable, first: string): Progress {
  let last = '';
  const line = (text: string) => {
    if (text !== last) stream.write(`${text}\n`);
    last = text;
  };
  line(first);
  return { update: line, succeed: line, fail: line };
}

/**
 * Finds (or installs, or builds) one thing the sandbox needs, with a spinner that says what it is doing,
 * and where the result is, or that it is unavailable.
 */
export async function locate<T>(
  out: Output,
  what: string,
  resolve: (onProgress: (text: string) => void) => Promise<T>,
  where: (found: T) => string,
): Promise<T> {
  const progress = await out.progress(`looking for ${what}`);
  try {
    const found = await resolve((text) => progress.update(text));
    progress.succeed(`${what}: ${where(found)}`);
    return found;
  } catch (error) {
    progress.fail(`${what} unavailable`);
    throw error;
  }
}

/** Left-aligned columns separated by three spaces, as kubectl prints them. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join(''))
    .join('\n');
}

/** An object's age as kubectl prints it: 45s, 12m, 5h, 3d. */
export function age(timestamp: unknown, now = Date.now()): string {
  if (!timestamp) return '-';
  const s = Math.max(0, Math.floor((now - new Date(timestamp as string).getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
