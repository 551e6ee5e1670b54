/**
 * What a text pasted into the real Claude Code TUI (2.1.332) looks like when it reaches the model, so
 * that tests can assert on the local model server's request log (src/sandbox/modelServer.ts) exactly. The
 * rules were measured against the TUI and are documented in docs/session.md.
 */
import { createHash, createHmac } from 'node:crypto';
import type { ModelRequest } from '../../src/sandbox/modelServer.js';

/**
 * What codemate-inject drops from a body (frame_message in setup/scripts/codemate-lib.sh): C0 controls but
 * tab and newline, DEL, the C1 range, and every character Claude Code removes from a prompt itself.
 */
const dropped =
  // eslint-disable-next-line no-control-regex, no-misleading-character-class -- matching these is the point
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{1107f}\u{13430}-\u{1343f}\u{16fe4}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}]/gu;

/** A body as codemate-inject pastes it, below the marker line. */
export function cleaned(body: string): string {
  return body
    .replace(/\r/g, '')
    .replace(/[\u2028\u2029]/g, '\n')
    .replace(dropped, '')
    .normalize('NFC')
    .replace(/\s+$/u, '');
}

/** The marker line above an injected text: the tag is HMAC-SHA256(session key, id), 16 hex digits. */
export function markerLine(key: string, id: string): string {
  return `[codemate message=${id}] tag=${createHmac('sha256', key).update(id).digest('hex').slice(0, 16)}`;
}

/** The whole text codemate-inject pastes for message `id`. */
export function framed(key: string, id: string, body: string): string {
  return `${markerLine(key, id)}\n${cleaned(body)}`;
}

/** The id in `<pasted_content id="…">`: the first 4 hex digits of SHA-256 of the Claude session id. */
export function pasteIdOf(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('hex').slice(0, 4);
}

/**
 * What the model receives for one text pasted into an empty prompt box and submitted: tabs become four
 * spaces; a paste of more than 800 UTF-16 code units (after that) or with more than two newlines is sent
 * wrapped in `<pasted_content>` lines, as it is; a shorter one loses its trailing whitespace.
 */
export function normalised(pasted: string, options: { sessionId: string }): string {
  const text = pasted.replace(/\t/g, '    ');
  const newlines = text.split('\n').length - 1;
  if (text.length > 800 || newlines > 2) {
    const id = pasteIdOf(options.sessionId);
    return `\n\n<pasted_content id="${id}">\n${text}\n</pasted_content id="${id}">\n`;
  }
  return text.replace(/\s+$/u, '');
}

/**
 * Each prompt that reached the model, in order: the text blocks that are new in the agent's requests (the
 * last user message; side requests offer no tools), without the `<system-reminder>` blocks Claude Code
 * adds. Prompts queued together arrive as blocks of one request, each but the last with a newline
 * appended; that newline is taken off here, so each prompt reads as normalised() says.
 */
export function promptsReceived(requests: readonly ModelRequest[]): string[] {
  return requests
    .filter((r) => r.tools > 0)
    .flatMap((r) => {
      const texts = r.userTexts.filter((t) => !t.startsWith('<system-reminder>'));
      return texts.map((t, i) => (i < texts.length - 1 && t.endsWith('\n') ? t.slice(0, -1) : t));
    });
}

/** The agent requests in which `text` arrived, by seq; one entry per arrival. */
export function arrivals(requests: readonly ModelRequest[], text: string): number[] {
  return requests
    .filter((r) => r.tools > 0)
    .flatMap((r) => promptsReceived([r]).flatMap((t) => (t === text ? [r.seq] : [])));
}
