import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignatureVerifier } from '../../../src/clients/webhooks.js';

const sign = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const body = JSON.stringify({ action: 'created', zen: 'Keep it logically awesome.' });

describe('SignatureVerifier', () => {
  it('accepts a signature made with any configured secret (rotation)', async () => {
    const v = new SignatureVerifier(['old-secret', 'new-secret']);
    expect(await v.verify(body, sign('old-secret', body))).toBe(true);
    expect(await v.verify(body, sign('new-secret', body))).toBe(true);
  });

  it('refuses a wrong secret, a changed body, and missing or malformed headers', async () => {
    const v = new SignatureVerifier(['secret']);
    expect(await v.verify(body, sign('other', body))).toBe(false);
    expect(await v.verify(body + ' ', sign('secret', body))).toBe(false);
    expect(await v.verify(body, undefined)).toBe(false);
    expect(await v.verify(body, 'sha1=abc')).toBe(false);
    expect(await v.verify(body, `sha256=${'z'.repeat(64)}`)).toBe(false);
  });

  it('requires at least one secret', () => {
    expect(() => new SignatureVerifier([])).toThrow(/at least one webhook secret/);
  });
});
