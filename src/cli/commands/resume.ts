/** `codemate resume`: starts a suspended session again (spec.suspend back to false). */
import { connect } from '../cluster.js';
import type { Verb } from '../program.js';
import { runSuspend } from './suspend.js';

export const resume: Verb = async ({ args: [name], globals }, deps) =>
  runSuspend(String(name), false, await connect(globals), deps.out);
