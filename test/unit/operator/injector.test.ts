import { describe, expect, it } from 'vitest';
import {
  batchResults,
  channelRequest,
  parseChannelLine,
  whenIdleRequest,
} from '../../../src/operator/injector.js';

describe('the standing channel protocol (codemate-inject --serve)', () => {
  it('frames a request as a line with the byte length, then the text', () => {
    const request = channelRequest('pr-7-ic-1', 'héllo\nworld', 20);
    const text = request.toString('utf8');
    expect(text).toBe('pr-7-ic-1 12 20\nhéllo\nworld');
    // The length counts bytes, not characters: é is two.
    expect(Buffer.byteLength('héllo\nworld')).toBe(12);
  });

  it('reads the ready line and the answers, with the stderr line that says why', () => {
    expect(parseChannelLine('codemate-serve ready 1')).toEqual({ kind: 'ready', version: 1 });
    expect(parseChannelLine('codemate-serve ready 2')).toEqual({ kind: 'ready', version: 2 });
    expect(parseChannelLine('codemate-serve done pr-7-ic-1 0 ')).toEqual({
      kind: 'done',
      id: 'pr-7-ic-1',
      exitCode: 0,
      detail: '',
    });
    expect(
      parseChannelLine(
        'codemate-serve done m-1 4 codemate: the session is blocked on a dialog; message m-1 was not pasted',
      ),
    ).toEqual({
      kind: 'done',
      id: 'm-1',
      exitCode: 4,
      detail: 'codemate: the session is blocked on a dialog; message m-1 was not pasted',
    });
    expect(
      parseChannelLine('codemate-serve done - 2 malformed request line; the channel closes'),
    ).toMatchObject({
      kind: 'done',
      id: '-',
      exitCode: 2,
    });
  });

  it('takes anything else for output it does not understand (the channel is then closed)', () => {
    for (const line of ['', 'codemate-serve ready 3', 'codemate-serve done x', 'hello']) {
      expect(parseChannelLine(line)).toEqual({ kind: 'other', line });
    }
  });
});

describe('WhenIdle requests (codemate-inject --when-idle)', () => {
  it('carries the ids and byte counts in order, then the texts one after another', () => {
    const request = whenIdleRequest(
      [
        { id: 'a-ic-1', text: 'héllo' },
        { id: 'a-ic-2', text: 'two\nlines' },
      ],
      20,
    );
    expect(request.toString('utf8')).toBe('a-ic-1,a-ic-2 6,9 20 when-idle\nhéllotwo\nlines');
  });

  it('reads one answer per message, in the request order, from the channel or an exec', () => {
    const output = [
      'codemate-serve done a-2 10 codemate: a turn is running',
      'codemate-serve done a-1 0 ',
    ].join('\n');
    expect(batchResults(['a-1', 'a-2'], output, 0, '', 'channel')).toEqual([
      { exitCode: 0, stderr: '', path: 'channel' },
      { exitCode: 10, stderr: 'codemate: a turn is running', path: 'channel' },
    ]);
    expect(batchResults(['a-1'], 'done a-1 0 \n', 0, '', 'exec')).toEqual([
      { exitCode: 0, stderr: '', path: 'exec' },
    ]);
  });

  it('gives a message without an answer the exit code of the whole run (an older session image)', () => {
    expect(batchResults(['a-1', 'a-2'], '', 2, 'x\ncodemate: unknown option --when-idle', 'exec')).toEqual([
      { exitCode: 2, stderr: 'codemate: unknown option --when-idle', path: 'exec' },
      { exitCode: 2, stderr: 'codemate: unknown option --when-idle', path: 'exec' },
    ]);
    // Exit 0 with no answer is not a receipt.
    expect(batchResults(['a-1'], '', 0, '', 'exec')[0]!.exitCode).toBe(-1);
  });
});
