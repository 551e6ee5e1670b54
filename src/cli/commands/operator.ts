/** `codemate operator`: the in-cluster controller. */
import { operatorConfig } from '../../config/index.js';
import { runOperator } from '../../operator/run.js';
import { packageVersion, type Verb } from '../program.js';

export const operator: Verb = async ({ globals }, deps) => {
  await runOperator(operatorConfig(await deps.env(), globals, packageVersion()));
};
