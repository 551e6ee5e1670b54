import { open, readFile, rm } from 'node:fs/promises';
import { isAlive } from '../clients/processes.js';

/**
 * A lock file holding the owner's pid. A lock whose owner is gone is stale and taken over, so a build
 * killed half-way never blocks the next one.
 */
export async function acquireLock(
  file: string,
  onWait?: () => void,
  pollMs = 1000,
): Promise<() => Promise<void>> {
  let warned = false;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (!owner || !isAlive(owner)) {
      await rm(file, { force: true });
      continue;
    }
    if (!warned) onWait?.();
    warned = true;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
