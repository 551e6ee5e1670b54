import { describe, expect, it } from 'vitest';
import { githubHosts } from '../../../src/config/github.js';
import { operatorConfig, readEnv } from '../../../src/config/index.js';

describe('GitHub hosts from GITHUB_API_URL', () => {
  it.each([
    [undefined, { api: 'https://api.github.com', web: 'https://github.com', gitHost: 'github.com' }],
    [
      'https://api.github.com/',
      { api: 'https://api.github.com', web: 'https://github.com', gitHost: 'github.com' },
    ],
    [
      'https://ghes.example.com/api/v3',
      {
        api: 'https://ghes.example.com/api/v3',
        web: 'https://ghes.example.com',
        gitHost: 'ghes.example.com',
      },
    ],
    [
      'https://ghes.example.com:8443/api/v3/',
      {
        api: 'https://ghes.example.com:8443/api/v3',
        web: 'https://ghes.example.com:8443',
        gitHost: 'ghes.example.com:8443',
      },
    ],
    [
      'http://127.0.0.1:4000',
      { api: 'http://127.0.0.1:4000', web: 'http://127.0.0.1:4000', gitHost: '127.0.0.1:4000' },
    ],
  ])('%s', (url, hosts) => {
    expect(githubHosts(url)).toEqual(hosts);
  });
});

describe('the operator’s GitHub App configuration', () => {
  const config = (env: Record<string, string>) =>
    operatorConfig(readEnv({ HOME: '/h', POD_NAME: 'p', ...env }), {}, '0.0.0');

  it('is off without any CODEMATE_GITHUB_APP_* variable', () => {
    expect(config({}).githubApp).toBeUndefined();
  });

  it('takes the App id, the optional installation and the key file', () => {
    expect(
      config({ CODEMATE_GITHUB_APP_ID: '12', CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: '/k/private-key' })
        .githubApp,
    ).toEqual({ appId: 12, privateKeyFile: '/k/private-key' });
    expect(
      config({
        CODEMATE_GITHUB_APP_ID: '12',
        CODEMATE_GITHUB_APP_INSTALLATION_ID: '34',
        CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: '/k',
      }).githubApp,
    ).toEqual({ appId: 12, installationId: 34, privateKeyFile: '/k' });
  });

  it('refuses an App id without its key, naming the field', () => {
    expect(() => config({ CODEMATE_GITHUB_APP_ID: '12' })).toThrow(/private-key-file/);
    expect(() => config({ CODEMATE_GITHUB_APP_ID: 'x', CODEMATE_GITHUB_APP_PRIVATE_KEY_FILE: '/k' })).toThrow(
      /app-id/,
    );
  });
});
