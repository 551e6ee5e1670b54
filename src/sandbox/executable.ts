import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';

/** Whether `file` exists and may be run: how the caches tell a finished install or build. */
export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}
