/**
 * A CI job's log, made fit for a session's prompt (pure): the tail only, with ANSI and other control
 * sequences stripped, Actions' per-line timestamps dropped, and every line and the whole capped. The text
 * is untrusted (anyone who can push can make a job print anything), so nothing in it may reach the
 * terminal as a control sequence; codemate-inject strips control characters again at the sink.
 */

/** The lines of a failed job's log a CI message holds: the old monitor's `tail -100`. */
export const logTailLines = 100;
/** Longer lines are cut: a minified bundle or a base64 blob says nothing in a prompt. */
export const logLineLimit = 500;
/** The most characters of log one CI message holds, over all its jobs. */
export const logCharLimit = 24_000;
/** The most bytes of a log's end that are read at all; the rest of a large log is skipped. */
export const logTailBytes = 256 * 1024;

// CSI (ESC [ … final byte), OSC (ESC ] … BEL or ST), other escapes (ESC, intermediates, final), 8-bit CSI.
const escapeSequences =
  // eslint-disable-next-line no-control-regex
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]|\u009b[0-?]*[ -/]*[@-~]/g;
// C0 and C1 control characters other than tab and newline, and DEL.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// GitHub Actions prefixes each line with its time: 2024-05-01T10:00:00.1234567Z
const actionsTimestamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?/;

/** The text without ANSI escape sequences and control characters (tab and newline stay). */
export function stripControl(text: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/\r/g, '\n')
    .replace(escapeSequences, '')
    .replace(controlCharacters, '');
}

/**
 * The last `lines` lines of a log, cleaned and capped. `truncatedHead` says the text starts in the middle
 * of the log (only its end was read), so its first, partial line is dropped.
 */
export function logTail(
  raw: string,
  {
    lines = logTailLines,
    maxChars = logCharLimit,
    truncatedHead = false,
  }: { lines?: number; maxChars?: number; truncatedHead?: boolean } = {},
): string {
  let all = stripControl(raw).split('\n');
  if (truncatedHead) all = all.slice(1);
  while (all.length > 0 && all[all.length - 1]!.trim() === '') all.pop();
  const tail = all
    .slice(-lines)
    .map((line) => line.replace(actionsTimestamp, ''))
    .map((line) => (line.length > logLineLimit ? `${line.slice(0, logLineLimit)} …` : line));
  // Keep the end when the lines together are still too long: the error is usually last.
  while (tail.length > 1 && tail.join('\n').length > maxChars) tail.shift();
  const text = tail.join('\n');
  return text.length > maxChars ? text.slice(-maxChars) : text;
}

/**
 * A Markdown code fence that the text cannot close: longer than any run of backticks in it, so that a
 * log line of ``` does not end the block and make the rest look like the message's own words.
 */
export function fenceFor(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  return '`'.repeat(Math.max(3, longest + 1));
}
