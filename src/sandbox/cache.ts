/**
 * Versioned entries of the cache (`<cache>/<what>/<version>/`) that are installed or built on first use:
 * Claude Code, helm and the images. (The control-plane binaries follow the same steps with their own layout.)
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { acquireLock } from './lock.js';

/** Whether `file` exists and may be run: how the caches tell a finished install or build. */
export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `file` exists: how the image cache tells a finished build (its last file written). */
async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

export interface CacheEntry {
  /** The entry's final directory. */
  dir: string;
  /** The program (or, for cachedFile, the file) in the entry whose presence says it is complete. */
  program: string;
  /** Said while another process holds the entry's lock. */
  waiting: string;
  onProgress?: ((text: string) => void) | undefined;
  /** Fills `staging` (empty, beside `dir`); it becomes `dir` only once this returns. */
  fill(staging: string): Promise<void>;
}

/**
 * Returns the entry's program, filling the entry first when it is missing: under a lock, so concurrent
 * callers share one install, and into a staging directory renamed into place when complete, so a crash
 * never leaves half an entry behind.
 */
export function cachedProgram(entry: CacheEntry): Promise<string> {
  return cached(entry, isExecutable);
}

/** Like cachedProgram, for an entry whose `program` is a plain file (written last by `fill`). */
export function cachedFile(entry: CacheEntry): Promise<string> {
  return cached(entry, exists);
}

async function cached(entry: CacheEntry, complete: (file: string) => Promise<boolean>): Promise<string> {
  const program = path.join(entry.dir, entry.program);
  if (await complete(program)) return program;
  await mkdir(path.dirname(entry.dir), { recursive: true });
  const release = await acquireLock(`${entry.dir}.lock`, () => entry.onProgress?.(entry.waiting));
  try {
    if (await complete(program)) return program;
    const staging = `${entry.dir}.partial`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await entry.fill(staging);
    await rm(entry.dir, { recursive: true, force: true });
    await rename(staging, entry.dir);
    return program;
  } finally {
    await release();
  }
}
