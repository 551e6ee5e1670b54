#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ keeps the compiled code of the modules in a disk cache (in the OS temp directory unless
// NODE_COMPILE_CACHE names one), so a command does not compile commander and our modules again at each
// start. The entry module is imported after it is on, or its graph would be compiled first.
module.enableCompileCache?.();
const { run } = await import('../dist/cli/main.js');

// Exit as soon as the command is done: a server that has shut down gracefully must not linger on
// timers it no longer needs (an HTTP client's retry backoff, say). Writes to pipes and files are
// synchronous on Linux, so nothing printed is lost.
process.exit(await run(process.argv));
