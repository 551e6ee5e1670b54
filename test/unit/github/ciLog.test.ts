import { describe, expect, it } from 'vitest';
import { fenceFor, logCharLimit, logLineLimit, logTail, stripControl } from '../../../src/github/ciLog.js';

describe('stripControl', () => {
  it('removes ANSI colours, cursor moves, OSC titles and hyperlinks, and other control characters', () => {
    const raw =
      '\u001b[31mred\u001b[0m \u001b[1;32mbold green\u001b[m\u001b[2K\u001b[1A' +
      '\u001b]0;title\u0007\u001b]8;;https://x\u001b\\link\u001b]8;;\u001b\\ bell\u0007 nul\u0000 c1\u009b31m' +
      ' esc\u001bc del\u007f tab\there';
    expect(stripControl(raw)).toBe('red bold greenlink bell nul c1 esc del tab\there');
  });

  it('turns carriage returns into line ends, so a progress bar cannot overwrite an earlier line', () => {
    expect(stripControl('a\r\nb\rc\n')).toBe('a\nb\nc\n');
  });
});

describe('logTail', () => {
  it('keeps the last 100 lines, without Actions timestamps and trailing blank lines', () => {
    const log = Array.from({ length: 300 }, (_, i) => `2024-05-01T10:00:00.1234567Z line ${i}`).join('\n');
    const tail = logTail(`${log}\n\n\n`).split('\n');
    expect(tail).toHaveLength(100);
    expect(tail[0]).toBe('line 200');
    expect(tail.at(-1)).toBe('line 299');
  });

  it('drops the partial first line of a log read from its middle', () => {
    expect(logTail('ne 3\nline 4\nline 5', { truncatedHead: true })).toBe('line 4\nline 5');
  });

  it('cuts long lines and caps the whole, keeping the end where the error usually is', () => {
    const long = 'x'.repeat(logLineLimit * 3);
    expect(logTail(long)).toBe(`${'x'.repeat(logLineLimit)} …`);
    const many = Array.from({ length: 100 }, (_, i) => `${i} ${'y'.repeat(400)}`).join('\n');
    const capped = logTail(many);
    expect(capped.length).toBeLessThanOrEqual(logCharLimit);
    expect(capped.endsWith(`99 ${'y'.repeat(400)}`)).toBe(true);
    expect(logTail(many, { maxChars: 1000 }).length).toBeLessThanOrEqual(1000);
  });

  it('is empty for an empty log', () => {
    expect(logTail('\n\n')).toBe('');
  });
});

describe('fenceFor', () => {
  it('is longer than any run of backticks in the text, so the text cannot close it', () => {
    expect(fenceFor('plain')).toBe('```');
    expect(fenceFor('a ``` b ````` c')).toBe('``````');
  });
});
