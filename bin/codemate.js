#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ keeps the compiled code of the modules in a disk cache (in the OS temp directory unless
// NODE_COMPILE_CACHE names one), so a command does not compile commander and our modules again at each
// start. The entry module is imported after it is on, or its graph would be compiled first. The servers
// (`operator`, `webhook`) start once and then run for days: they go without it, because code read from
// the cache is kept whole, where compiled lazily only what runs is (2-3 MiB of RSS at the operator's start).
const servers = new Set(['operator', 'webhook']);
if (!servers.has(process.argv[2])) module.enableCompileCache?.();
const { run } = await import('../dist/cli/main.js');

// Exit as soon as the command is done: a server that has shut down gracefully must not linger on
// timers it no longer needs (an HTTP client's retry backoff, say). Writes to pipes and files are
// synchronous on Linux, so nothing printed is lost.
process.exit(await run(process.argv));
