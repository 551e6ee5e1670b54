import { describe, expect, it } from 'vitest';
import { channelRequest, parseChannelLine } from '../../../src/operator/injector.js';

describe('the standing channel protocol (codemate-inject --serve)', () => {
  it('frames a request as a line with the byte length, then the text', () => {
    const request = channelRequest('pr-7-ic-1', 'héllo\nworld', 20);
    const text = request.toString('utf8');
    expect(text).toBe('pr-7-ic-1 12 20\nhéllo\nworld');
    // The length counts bytes, not characters: é is two.
    expect(Buffer.byteLength('héllo\nworld')).toBe(12);
  });

  it('reads the ready line and the answers, with the stderr line that says why', () => {
    expect(parseChannelLine('codemate-serve ready 1')).toEqual({ kind: 'ready' });
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
    for (const line of ['', 'codemate-serve ready 2', 'codemate-serve done x', 'hello']) {
      expect(parseChannelLine(line)).toEqual({ kind: 'other', line });
    }
  });
});
