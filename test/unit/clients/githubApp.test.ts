import { describe, expect, it } from 'vitest';
import { describeAppError, permissionList } from '../../../src/clients/githubApp.js';

const context = { appId: 7, keySource: 'file /k', repository: 'o/r', web: 'https://ghes.example.com' };
const http = (status: number, message = 'x') => Object.assign(new Error(message), { status });

describe('GitHub App errors become a reason, a message and a hint', () => {
  it('a key that cannot sign, or that GitHub refuses', () => {
    const unsigned = describeAppError(new Error('error:1E08010C:DECODER routines::unsupported'), context);
    expect(unsigned).toMatchObject({ reason: 'AppKeyRejected' });
    expect(unsigned.message).toContain('file /k');
    expect(unsigned.hint).toContain('https://ghes.example.com/settings/apps');
    expect(describeAppError(http(401, 'A JSON web token could not be decoded'), context)).toMatchObject({
      reason: 'AppKeyRejected',
    });
  });

  it('an App not installed on the repository', () => {
    const e = describeAppError(http(404, 'Not Found'), context);
    expect(e).toEqual({
      reason: 'AppNotInstalled',
      message: 'GitHub App 7 is not installed on o/r',
      hint: expect.stringContaining('install the App on o/r') as string,
    });
  });

  it('a permission the installation lacks', () => {
    const e = describeAppError(
      http(422, 'The permissions requested are not granted to this installation.'),
      context,
    );
    expect(e.reason).toBe('AppPermissionMissing');
    expect(e.hint).toContain(permissionList());
    expect(permissionList()).toBe(
      'contents: write, pull requests: write, issues: write, checks: write, metadata: read',
    );
  });

  it('anything else is temporary', () => {
    expect(describeAppError(http(502), context).reason).toBe('GitHubUnavailable');
  });
});
