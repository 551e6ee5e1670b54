/** `codemate deny MESSAGE`: refuses an untrusted comment that waits for approval (see approve.ts). */
import { parseOrUsage } from '../../config/index.js';
import { connect } from '../cluster.js';
import type { Verb } from '../program.js';
import { runDecision } from './approve.js';
import { z } from 'zod';

export const deny: Verb = async ({ args: [message], globals }, deps) => {
  const options = parseOrUsage(z.object({ message: z.string().min(1) }), { message }, 'arguments');
  await runDecision(options.message, 'Denied', await connect(globals), deps.out);
};
