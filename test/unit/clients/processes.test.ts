import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectPidFile, stopProcess } from '../../../src/clients/processes.js';

describe('inspectPidFile', () => {
  let dir: string;
  let script: string;
  let pidFile: string;
  let pid: number;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cm-pid-'));
    script = path.join(dir, 'server.js');
    await writeFile(script, 'setInterval(() => {}, 1000);\n');
    const child = spawn(process.execPath, [script], { stdio: 'ignore' });
    pid = child.pid!;
    // Until the child has exec'd, its command line is its parent's.
    while (!(await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(script))
      await new Promise((resolve) => setTimeout(resolve, 10));
    pidFile = path.join(dir, 'server.pid');
    await writeFile(pidFile, `${pid}\n`);
  });

  afterAll(async () => {
    await stopProcess(pid, 1000);
    await rm(dir, { recursive: true, force: true });
  });

  it('knows a program by its executable', async () => {
    expect(await inspectPidFile(pidFile, { command: process.execPath })).toEqual({ kind: 'running', pid });
    expect(await inspectPidFile(pidFile, { command: '/usr/bin/etcd' })).toEqual({ kind: 'stale', pid });
  });

  it('knows a Node script by the script, whichever node binary runs it', async () => {
    const otherNode = '/opt/another/bin/node';
    expect(await inspectPidFile(pidFile, { command: otherNode, script })).toEqual({ kind: 'running', pid });
    expect(await inspectPidFile(pidFile, { command: otherNode, script: '/elsewhere/cli.js' })).toEqual({
      kind: 'stale',
      pid,
    });
  });

  it('says none without a pid file, and stale once the process is gone', async () => {
    expect(await inspectPidFile(path.join(dir, 'missing.pid'), { command: process.execPath })).toEqual({
      kind: 'none',
    });
    const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => gone.once('exit', resolve));
    const file = path.join(dir, 'gone.pid');
    await writeFile(file, `${gone.pid}\n`);
    expect(await inspectPidFile(file, { command: process.execPath })).toEqual({
      kind: 'stale',
      pid: gone.pid,
    });
  });
});
