#!/usr/bin/env node
import { run } from '../dist/cli/main.js';

// Exit as soon as the command is done: a server that has shut down gracefully must not linger on
// timers it no longer needs (an HTTP client's retry backoff, say). Writes to pipes and files are
// synchronous on Linux, so nothing printed is lost.
process.exit(await run(process.argv));
