import type { Writable } from 'node:stream';
import { Chalk, type ChalkInstance } from 'chalk';
import ora, { type Ora } from 'ora';

/**
 * Terminal conventions in one place: data goes to stdout, status to stderr; colour and spinners only when
 * the stream is a TTY and NO_COLOR is unset.
 */
export interface Output {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Colours for status text on stderr (no-op colours when stderr is not a colour TTY). */
  readonly color: ChalkInstance;
  data(text: string): void;
  info(text: string): void;
  warn(text: string): void;
  /** A spinner on stderr when interactive; otherwise one plain line per state change. */
  progress(text: string): Progress;
}

export interface Progress {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
}

export interface OutputOptions {
  stdout?: Writable & { isTTY?: boolean };
  stderr?: Writable & { isTTY?: boolean };
  noColor?: boolean;
}

export function createOutput(options: OutputOptions = {}): Output {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const interactive = Boolean(stderr.isTTY) && !options.noColor;
  const color = new Chalk({ level: interactive ? 1 : 0 });
  return {
    stdout,
    stderr,
    color,
    data: (text) => void stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    info: (text) => void stderr.write(`${text}\n`),
    warn: (text) => void stderr.write(`${color.yellow('warning:')} ${text}\n`),
    progress: (text) =>
      interactive ? spinnerProgress(ora({ text, stream: stderr }).start()) : lineProgress(stderr, text),
  };
}

function spinnerProgress(spinner: Ora): Progress {
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

/** Left-aligned columns separated by three spaces, as kubectl prints them. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join(''))
    .join('\n');
}
