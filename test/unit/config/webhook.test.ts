import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/api/errors.js';
import { readEnv, replayConfig, webhookConfig } from '../../../src/config/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cm-webhook-config-'));
const secretFile = path.join(dir, 'secret');
writeFileSync(secretFile, 'from-file-new\nfrom-file-old\n');

describe('webhook configuration', () => {
  it('defaults to port 8080, takes PORT, and lets --port win', () => {
    expect(webhookConfig(readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's' }), {}).port).toBe(8080);
    const env = readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's', PORT: '9000' });
    expect(webhookConfig(env, {}).port).toBe(9000);
    expect(webhookConfig(env, { port: '9001' }).port).toBe(9001);
  });

  it('accepts several secrets for rotation, from the environment and a file', () => {
    const env = readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: ' new , old ,' });
    expect(webhookConfig(env, {}).secrets).toEqual(['new', 'old']);
    expect(webhookConfig(readEnv({ HOME: '/h' }), { secretFile }).secrets).toEqual([
      'from-file-new',
      'from-file-old',
    ]);
  });

  it('cuts off a stalled body after 2 s unless CODEMATE_WEBHOOK_BODY_IDLE_TIMEOUT_SECONDS says otherwise', () => {
    expect(webhookConfig(readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's' }), {})).toMatchObject({
      bodyTimeoutSeconds: 10,
      bodyIdleTimeoutSeconds: 2,
    });
    const env = readEnv({
      HOME: '/h',
      GITHUB_WEBHOOK_SECRET: 's',
      CODEMATE_WEBHOOK_BODY_IDLE_TIMEOUT_SECONDS: '0.5',
    });
    expect(webhookConfig(env, {}).bodyIdleTimeoutSeconds).toBe(0.5);
    expect(() =>
      webhookConfig(
        readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's', CODEMATE_WEBHOOK_BODY_IDLE_TIMEOUT_SECONDS: '0' }),
        {},
      ),
    ).toThrow(/body-idle-timeout-seconds: Too small/);
  });

  it('refuses to start without a secret, or with an unreadable file, saying what to set', () => {
    expect(() => webhookConfig(readEnv({ HOME: '/h' }), {})).toThrow(
      /no webhook secret: set GITHUB_WEBHOOK_SECRET/,
    );
    expect(() => webhookConfig(readEnv({ HOME: '/h' }), { secretFile: '/nonexistent' })).toThrow(
      /cannot read the webhook secret file \/nonexistent: ENOENT/,
    );
    expect(() =>
      webhookConfig(
        readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 'REPLACE-WITH-THE-GITHUB-WEBHOOK-SECRET' }),
        {},
      ),
    ).toThrow(/still the template's placeholder/);
    expect(() => webhookConfig(readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's' }), { port: '0' })).toThrow(
      UsageError,
    );
  });
});

describe('webhook replay configuration', () => {
  it('signs with --secret-file first, then GITHUB_WEBHOOK_SECRET, then GITHUB_WEBHOOK_SECRET_FILE', () => {
    const flags = { event: 'ping', payload: 'p.json' };
    const both = readEnv({
      HOME: '/h',
      GITHUB_WEBHOOK_SECRET: 'env',
      GITHUB_WEBHOOK_SECRET_FILE: secretFile,
    });
    expect(replayConfig(both, flags).secret).toBe('env');
    expect(replayConfig(both, { ...flags, secretFile }).secret).toBe('from-file-new');
    expect(replayConfig(readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET_FILE: secretFile }), flags).secret).toBe(
      'from-file-new',
    );
  });

  it('sends to the sandbox URL from the environment, and completes a bare server address', () => {
    const env = readEnv({
      HOME: '/h',
      GITHUB_WEBHOOK_SECRET: 's',
      CODEMATE_WEBHOOK_URL: 'http://127.0.0.1:5/webhook/github',
    });
    expect(replayConfig(env, { event: 'ping', payload: 'p' }).url).toBe('http://127.0.0.1:5/webhook/github');
    expect(replayConfig(env, { event: 'ping', payload: 'p', url: 'https://cm.example.com/' }).url).toBe(
      'https://cm.example.com/webhook/github',
    );
  });

  it('names bad flags', () => {
    const env = readEnv({ HOME: '/h', GITHUB_WEBHOOK_SECRET: 's' });
    expect(() => replayConfig(env, { event: 'Issue Comment', payload: 'p' })).toThrow(
      /--event: must be a GitHub event name/,
    );
    expect(() => replayConfig(env, { event: 'ping', payload: 'p', url: 'not a url' })).toThrow(/--url:/);
    expect(() => replayConfig(readEnv({ HOME: '/h' }), { event: 'ping', payload: 'p' })).toThrow(
      /no webhook secret to sign with/,
    );
  });
});
