import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/api/errors.js';
import { cacheDir, defaultStateDir, devConfig, readEnv } from '../../../src/config/index.js';

describe('configuration', () => {
  it('derives cache and state directories from XDG variables, then HOME', () => {
    expect(cacheDir(readEnv({ HOME: '/h' }))).toBe('/h/.cache/codemate');
    expect(cacheDir(readEnv({ HOME: '/h', XDG_CACHE_HOME: '/x' }))).toBe('/x/codemate');
    expect(cacheDir(readEnv({ HOME: '/h', CODEMATE_CACHE_DIR: '/c' }))).toBe('/c');
    expect(defaultStateDir(readEnv({ HOME: '/h' }))).toBe('/h/.local/state/codemate/sandbox');
    expect(defaultStateDir(readEnv({ HOME: '/h', XDG_STATE_HOME: '/s' }))).toBe('/s/codemate/sandbox');
  });

  it('treats empty variables as unset', () => {
    expect(readEnv({ HOME: '/h', CODEMATE_BIN_DIR: '' }).CODEMATE_BIN_DIR).toBeUndefined();
  });

  it('lets the flag win over the environment for the state directory', () => {
    const env = readEnv({ HOME: '/h', CODEMATE_STATE_DIR: '/env' });
    expect(devConfig(env, {}).stateDir).toBe('/env');
    expect(devConfig(env, { stateDir: '/flag' }).stateDir).toBe('/flag');
  });

  it('reports every bad flag by its flag name', () => {
    const env = readEnv({ HOME: '/h' });
    let error: unknown;
    try {
      devConfig(env, { apiserverPort: '70000', output: 'xml' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('--apiserver-port: must be between 1 and 65535');
    expect((error as Error).message).toContain('--output:');
  });
});
