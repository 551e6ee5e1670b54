import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../../src/cli/cluster.js';
import {
  characterCount,
  checkMessageSize,
  messageBodyLimit,
  runInject,
} from '../../../src/cli/commands/inject.js';
import { UsageError } from '../../../src/cli/errors.js';
import { createOutput } from '../../../src/cli/output.js';

describe('inject size check', () => {
  const emoji = '\u{1F600}'; // one code point, two UTF-16 units, four UTF-8 bytes

  it('takes its limit from the CodeMateMessage schema, the CRD maxLength of spec.body', () => {
    expect(messageBodyLimit).toBe(262144);
  });

  it('counts characters as the apiserver does for maxLength: code points', () => {
    expect(characterCount('')).toBe(0);
    expect(characterCount('abc')).toBe(3);
    expect(characterCount(emoji.repeat(3))).toBe(3);
    expect(characterCount('\u00e9')).toBe(1);
    // A combining accent is a code point of its own, as Go's utf8.RuneCount counts it.
    expect(characterCount('e\u0301')).toBe(2);
    // A lone surrogate reaches the apiserver as one U+FFFD.
    expect(characterCount('\ud800a\udc00')).toBe(3);
  });

  it('accepts exactly the limit, in ASCII or in four-byte characters, and refuses one more', () => {
    expect(() => checkMessageSize('a'.repeat(messageBodyLimit))).not.toThrow();
    expect(() => checkMessageSize(emoji.repeat(messageBodyLimit))).not.toThrow();
    expect(() => checkMessageSize('a'.repeat(messageBodyLimit + 1))).toThrow(UsageError);
    expect(() => checkMessageSize(emoji.repeat(messageBodyLimit + 1))).toThrow(
      'the message is 262,145 characters (1,048,580 bytes); a CodeMateMessage holds at most 262,144',
    );
  });

  it('refuses an oversized message before any call to the cluster, saying what to do', async () => {
    const calls: string[] = [];
    const kube = new Proxy(
      {},
      {
        get: (_, method) => () => {
          calls.push(String(method));
          throw new Error('no call expected');
        },
      },
    );
    const c = { kube, namespace: 'ns' } as unknown as Cluster;
    const out = createOutput({ stdout: new PassThrough(), stderr: new PassThrough(), noColor: true });
    const body = 'x'.repeat(300_000);
    const refusal = await runInject(
      { name: 'pr-1', message: '-', wait: false, timeout: 1 },
      c,
      out,
      Readable.from([Buffer.from(body)]),
    ).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(UsageError);
    expect((refusal as UsageError).message).toBe(
      'the message is 300,000 characters; a CodeMateMessage holds at most 262,144',
    );
    expect((refusal as UsageError).hint).toMatch(/^shorten it, or split it .*`split -C 262144 FILE part-`/);
    expect(calls).toEqual([]);
  });
});
