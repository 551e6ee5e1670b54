/** `codemate create`: a CodeMate from flags, after checking that its secrets exist. */
import { stringify } from 'yaml';
import { z } from 'zod';
import { apiVersion, deliveryModes, durationSchema, sessionRunning } from '../../api/codemate.js';
import { isConflict, isForbidden, isNotFound } from '../../clients/kubeErrors.js';
import { parseOrUsage } from '../../config/index.js';
import { connect, explain, type Cluster, type CodeMateObject } from '../cluster.js';
import { CodemateError, UsageError } from '../errors.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

export const createSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and -')
      .max(63)
      .optional(),
    repo: z.string({ error: 'is required' }).min(1, 'is required'),
    branch: z.string().min(1).optional(),
    pr: z.coerce.number().int().min(1, 'must be a pull request number').optional(),
    base: z.string().min(1).optional(),
    githubSecret: z.string().min(1).optional(),
    githubApp: z.boolean().default(false),
    anthropicSecret: z.string().min(1).default('anthropic-key'),
    gitUserName: z.string().min(1).optional(),
    gitUserEmail: z.string().min(3).optional(),
    task: z.string().optional(),
    image: z.string().min(1).optional(),
    storage: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$/, 'must be a size such as 10Gi')
      .optional(),
    // immediate | when-idle on the command line, the API's Immediate | WhenIdle in the spec.
    delivery: z
      .preprocess(
        (v) =>
          typeof v === 'string'
            ? (deliveryModes.find((m) => m.toLowerCase() === v.replace(/-/g, '').toLowerCase()) ?? v)
            : v,
        z.enum(deliveryModes, { error: 'must be immediate or when-idle' }),
      )
      .optional(),
    wait: z.boolean().default(false),
    timeout: z.coerce.number().int().min(1).default(300),
    dryRun: z.boolean().default(false),
    idleSuspendAfter: durationSchema.optional(),
    output: z.enum(['yaml', 'json']).optional(),
  })
  .refine((f) => f.branch || f.pr, { message: 'give --branch or --pr (or both)', path: ['branch'] })
  .refine((f) => !(f.githubApp && f.githubSecret), {
    message: 'give --github-secret (a token) or --github-app (the operator’s GitHub App), not both',
    path: ['githubApp'],
  });

/** The GitHub token Secret when neither --github-secret nor --github-app is given. */
const defaultGitHubSecret = 'github-token';
export type CreateOptions = z.infer<typeof createSchema>;

export const create: Verb = async ({ args: [name], flags, globals }, deps) => {
  const options = parseOrUsage(createSchema, { ...flags, name }, 'flags');
  await runCreate(options, await connect(globals), deps.out);
};

/** `pr-123`, or a DNS-label slug of the branch. */
export function deriveName(options: Pick<CreateOptions, 'pr' | 'branch'>): string {
  if (options.pr) return `pr-${options.pr}`;
  const slug = options
    .branch!.toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
    .replace(/-+$/, '');
  if (!slug) throw new UsageError(`cannot derive a name from branch "${options.branch}"; give NAME`);
  return slug;
}

export function codemateFor(options: CreateOptions, namespace: string): CodeMateObject {
  const user = {
    ...(options.gitUserName ? { name: options.gitUserName } : {}),
    ...(options.gitUserEmail ? { email: options.gitUserEmail } : {}),
  };
  return {
    apiVersion,
    kind: 'CodeMate',
    metadata: { name: options.name ?? deriveName(options), namespace },
    spec: {
      repository: {
        url: options.repo,
        ...(options.branch ? { branch: options.branch } : {}),
        ...(options.base ? { baseBranch: options.base } : {}),
        ...(options.pr ? { pullRequest: options.pr } : {}),
      },
      github: {
        // Without a token the session authenticates as the operator's GitHub App (docs/github-app.md).
        ...(options.githubApp
          ? {}
          : { tokenSecretRef: { name: options.githubSecret ?? defaultGitHubSecret, key: 'token' } }),
        ...(Object.keys(user).length ? { user } : {}),
      },
      anthropic: { apiKeySecretRef: { name: options.anthropicSecret, key: 'token' } },
      ...(options.image ? { image: options.image } : {}),
      ...(options.storage ? { storage: { size: options.storage } } : {}),
      ...(options.task ? { task: options.task } : {}),
      ...(options.delivery ? { monitoring: { delivery: options.delivery } } : {}),
      ...(options.idleSuspendAfter ? { lifecycle: { idleSuspendAfter: options.idleSuspendAfter } } : {}),
    },
  } as CodeMateObject;
}

export async function runCreate(options: CreateOptions, c: Cluster, out: Output): Promise<void> {
  const cm = codemateFor(options, c.namespace);
  if (options.dryRun) {
    out.data(options.output === 'json' ? JSON.stringify(cm, null, 2) : stringify(cm));
    return;
  }
  const what = { verb: 'create', resource: 'codemates', name: cm.metadata.name! };
  const secrets: Array<['--github-secret' | '--anthropic-secret', string]> = [
    ['--anthropic-secret', options.anthropicSecret],
  ];
  if (!options.githubApp) secrets.unshift(['--github-secret', options.githubSecret ?? defaultGitHubSecret]);
  for (const [flag, secret] of secrets) {
    try {
      await c.kube.get('v1', 'Secret', secret, c.namespace);
    } catch (error) {
      if (isNotFound(error)) {
        const value = flag === '--github-secret' ? '<a GitHub token>' : '<an Anthropic API key>';
        throw new CodemateError(`secret "${secret}" (${flag}) not found in namespace ${c.namespace}`, {
          hint: `kubectl create secret generic ${secret} -n ${c.namespace} --from-literal=token=${value}`,
        });
      }
      if (!isForbidden(error)) throw explain(error, c, { verb: 'get', resource: 'secrets', name: secret });
      out.warn(`cannot check secret "${secret}" (forbidden); the CodeMate will report it if it is missing`);
    }
  }
  try {
    await c.kube.create(cm);
  } catch (error) {
    if (isConflict(error)) {
      throw new CodemateError(`codemate "${cm.metadata.name}" already exists in namespace ${c.namespace}`, {
        hint: `see it with \`codemate describe ${cm.metadata.name}\`, or choose another NAME`,
      });
    }
    throw explain(error, c, what);
  }
  out.info(`codemate "${cm.metadata.name}" created in namespace ${c.namespace}`);
  if (options.output) out.data(options.output === 'json' ? JSON.stringify(cm, null, 2) : stringify(cm));
  if (options.wait) await waitForRunning(c, cm.metadata.name!, options.timeout, out);
}

async function waitForRunning(c: Cluster, name: string, timeoutSeconds: number, out: Output): Promise<void> {
  const progress = await out.progress(`waiting for codemate "${name}" to run`);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const cm = await c.kube.get<CodeMateObject>(apiVersion, 'CodeMate', name, c.namespace);
    const phase = cm.status?.phase;
    if (sessionRunning(phase))
      return progress.succeed(`codemate "${name}" is running in pod ${cm.status?.podName}`);
    if (phase === 'Failed') {
      progress.fail(`codemate "${name}" failed`);
      throw new CodemateError(cm.status?.message ?? 'the session failed', { hint: `codemate logs ${name}` });
    }
    progress.update(
      `codemate "${name}": ${phase ?? 'waiting for the operator'}${cm.status?.message ? ` (${cm.status.message})` : ''}`,
    );
    if (Date.now() > deadline) {
      progress.fail(`codemate "${name}" is not running after ${timeoutSeconds}s`);
      throw new CodemateError(
        `codemate "${name}" is ${phase ?? 'not reconciled'}: ${cm.status?.message ?? 'no status yet'}`,
        {
          hint: phase
            ? `codemate describe ${name}`
            : 'is the operator running? (`codemate dev up` runs one locally)',
        },
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
