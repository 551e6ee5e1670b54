import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createOutput, table } from '../../../src/cli/output.js';

describe('output', () => {
  it('aligns columns like kubectl', () => {
    expect(
      table([
        ['NAME', 'STATE'],
        ['etcd', 'running'],
        ['kube-apiserver', 'stopped'],
      ]),
    ).toBe('NAME             STATE\netcd             running\nkube-apiserver   stopped');
  });

  it('prints plain progress lines, without colour or spinner, when stderr is not a TTY', async () => {
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (c: Buffer) => (text += c.toString()));
    const out = createOutput({ stdout: new PassThrough(), stderr });
    const p = await out.progress('one');
    p.update('one');
    p.update('two');
    p.succeed('done');
    out.warn('careful');
    expect(text).toBe('one\ntwo\ndone\nwarning: careful\n');
  });
});
