import { afterEach, describe, expect, it, vi } from 'vitest';
import { CodemateError } from '../../../src/api/errors.js';
import { ensureNodeHost } from '../../../src/sandbox/realNode.js';

describe('ensureNodeHost', () => {
  afterEach(() => vi.restoreAllMocks());

  it('refuses a user other than root before touching the host, and says what to run instead', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const error = await ensureNodeHost().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodemateError);
    expect((error as CodemateError).message).toBe(
      'the containerd runtime needs root: it runs kubelet and containerd',
    );
    expect((error as CodemateError).hint).toContain('sudo codemate dev up --runtime containerd');
    expect((error as CodemateError).hint).toContain('--runtime process');
  });
});
