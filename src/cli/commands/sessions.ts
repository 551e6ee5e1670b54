/**
 * The user-facing session commands: create, list, inject, delete, suspend and resume. Each parses its
 * flags through one zod schema, then calls a run function that tests can call directly.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { z } from 'zod';
import { apiVersion, sessionRunning, type CodeMate } from '../../api/codemate.js';
import { messageSpecSchema, type CodeMateMessage } from '../../api/message.js';
import { execInteractive, streamPodLogs } from '../../clients/exec.js';
import { isConflict, isForbidden, isNotFound, type KubeObject } from '../../clients/kube.js';
import { sessionContainer } from '../../api/pod.js';
import { parseOrUsage } from '../../config/index.js';
import { closeMatches, connect, explain, type Cluster, type ClusterFlags } from '../cluster.js';
import { CodemateError, UsageError } from '../errors.js';
import { readAll } from '../input.js';
import type { CliDeps } from '../main.js';
import { table, type Output } from '../output.js';

type CodeMateObject = CodeMate & KubeObject;
type MessageObject = CodeMateMessage & KubeObject;

function cluster(command: Command, deps: CliDeps): Cluster {
  return connect(command.optsWithGlobals() as ClusterFlags, deps.env.KUBECONFIG);
}

export async function getCodeMate(c: Cluster, name: string): Promise<CodeMateObject> {
  try {
    return await c.kube.get<CodeMateObject>(apiVersion, 'CodeMate', name, c.namespace);
  } catch (error) {
    if (isNotFound(error)) {
      const names = await c.kube
        .list<CodeMateObject>(apiVersion, 'CodeMate', c.namespace)
        .then((all) => all.map((x) => x.metadata.name!))
        .catch(() => []);
      const near = closeMatches(name, names);
      if (
        names.length > 0 ||
        !/could not find the requested resource/.test(String((error as Error).message))
      ) {
        throw new CodemateError(`codemate "${name}" not found in namespace ${c.namespace}`, {
          hint:
            near.length > 0
              ? `did you mean ${near.map((n) => `"${n}"`).join(', ')}?`
              : 'list them with `codemate list`',
        });
      }
    }
    throw explain(error, c, { verb: 'get', resource: 'codemates', name });
  }
}

function age(timestamp: unknown, now = Date.now()): string {
  if (!timestamp) return '-';
  const s = Math.max(0, Math.floor((now - new Date(timestamp as string).getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

// --- create -----------------------------------------------------------------------------------------

const createSchema = z
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
    githubSecret: z.string().min(1).default('github-token'),
    anthropicSecret: z.string().min(1).default('anthropic-key'),
    gitUserName: z.string().min(1).optional(),
    gitUserEmail: z.string().min(3).optional(),
    task: z.string().optional(),
    image: z.string().min(1).optional(),
    storage: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$/, 'must be a size such as 10Gi')
      .optional(),
    wait: z.boolean().default(false),
    timeout: z.coerce.number().int().min(1).default(300),
    dryRun: z.boolean().default(false),
    output: z.enum(['yaml', 'json']).optional(),
  })
  .refine((f) => f.branch || f.pr, { message: 'give --branch or --pr (or both)', path: ['branch'] });
export type CreateOptions = z.infer<typeof createSchema>;

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
        tokenSecretRef: { name: options.githubSecret, key: 'token' },
        ...(Object.keys(user).length ? { user } : {}),
      },
      anthropic: { apiKeySecretRef: { name: options.anthropicSecret, key: 'token' } },
      ...(options.image ? { image: options.image } : {}),
      ...(options.storage ? { storage: { size: options.storage } } : {}),
      ...(options.task ? { task: options.task } : {}),
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
  for (const [flag, secret] of [
    ['--github-secret', options.githubSecret],
    ['--anthropic-secret', options.anthropicSecret],
  ] as const) {
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
  const progress = out.progress(`waiting for codemate "${name}" to run`);
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

// --- list -------------------------------------------------------------------------------------------

const listSchema = z.object({
  allNamespaces: z.boolean().default(false),
  output: z.enum(['table', 'wide', 'json', 'yaml']).default('table'),
});

export async function runList(options: z.infer<typeof listSchema>, c: Cluster, out: Output): Promise<void> {
  const ns = options.allNamespaces ? undefined : c.namespace;
  let items: CodeMateObject[];
  let messages: MessageObject[];
  try {
    items = await c.kube.list<CodeMateObject>(apiVersion, 'CodeMate', ns);
    messages = await c.kube.list<MessageObject>(apiVersion, 'CodeMateMessage', ns).catch(() => []);
  } catch (error) {
    throw explain(error, c, { verb: 'list', resource: 'codemates' });
  }
  if (options.output === 'json') return out.data(JSON.stringify({ items }, null, 2));
  if (options.output === 'yaml') return out.data(stringify({ items }));
  if (items.length === 0) {
    out.info(ns ? `no codemates in namespace ${ns}` : 'no codemates');
    return;
  }
  const last = (cm: CodeMateObject) => {
    const mine = messages
      .filter((m) => m.metadata.namespace === cm.metadata.namespace && m.spec.codemate === cm.metadata.name)
      .sort((a, b) =>
        String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)),
      );
    const m = mine.at(-1);
    return m
      ? `${m.spec.source.type} ${m.status?.phase ?? 'Pending'} ${age(m.metadata.creationTimestamp)} ago`
      : '-';
  };
  const wide = options.output === 'wide';
  const header = [
    ...(ns ? [] : ['NAMESPACE']),
    'NAME',
    'PHASE',
    'REPOSITORY',
    'BRANCH',
    'PR',
    'POD',
    'AGE',
    'LAST MESSAGE',
    ...(wide ? ['MESSAGE'] : []),
  ];
  const rows = items.map((cm) => [
    ...(ns ? [] : [cm.metadata.namespace!]),
    cm.metadata.name!,
    cm.status?.phase ?? '-',
    cm.spec.repository.url,
    cm.spec.repository.branch ?? '-',
    cm.spec.repository.pullRequest
      ? String(cm.spec.repository.pullRequest)
      : String(cm.status?.pullRequest?.number ?? '-'),
    cm.status?.podName ?? '-',
    age(cm.metadata.creationTimestamp),
    last(cm),
    ...(wide ? [cm.status?.message ?? ''] : []),
  ]);
  out.data(table([header, ...rows]));
}

// --- inject -----------------------------------------------------------------------------------------

const injectSchema = z.object({
  name: z.string().min(1),
  message: z.string({ error: 'is required (use - to read stdin)' }),
  wait: z.boolean().default(true),
  timeout: z.coerce.number().int().min(1).default(120),
});

/** The CRD's `maxLength` for a message body, which the zod schema mirrors (see crdDrift.test.ts). */
export const messageBodyLimit = messageSpecSchema.shape.body.maxLength ?? Infinity;

/**
 * Characters as the apiserver counts them for `maxLength`: Unicode code points (Go's utf8.RuneCount), so
 * an emoji is one, not the two UTF-16 units of `string.length` nor its four UTF-8 bytes.
 */
export function characterCount(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const high = text.charCodeAt(i);
    const low = text.charCodeAt(i + 1);
    if (high >= 0xd800 && high <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
      pairs += 1;
      i += 1;
    }
  }
  return text.length - pairs;
}

/** Refuses a body the apiserver would refuse, before any call, with the numbers and what to do. */
export function checkMessageSize(body: string): void {
  const characters = characterCount(body);
  if (characters <= messageBodyLimit) return;
  const n = (x: number) => x.toLocaleString('en-US');
  const bytes = Buffer.byteLength(body, 'utf8');
  throw new UsageError(
    `the message is ${n(characters)} characters${bytes !== characters ? ` (${n(bytes)} bytes)` : ''}; ` +
      `a CodeMateMessage holds at most ${n(messageBodyLimit)}`,
    {
      hint:
        `shorten it, or split it and inject the parts in order, each at most ${n(messageBodyLimit)} ` +
        `characters (\`split -C ${messageBodyLimit} FILE part-\` splits at line ends)`,
    },
  );
}

async function whoami(c: Cluster): Promise<string> {
  try {
    const review: KubeObject = await c.kube.create({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
      metadata: {},
    });
    return (
      (review.status as { userInfo?: { username?: string } } | undefined)?.userInfo?.username ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

export async function runInject(
  options: z.infer<typeof injectSchema>,
  c: Cluster,
  out: Output,
  stdin: NodeJS.ReadableStream,
): Promise<void> {
  let body = options.message;
  if (body === '-') body = await readAll(stdin);
  if (body.trim() === '') throw new UsageError('the message is empty');
  checkMessageSize(body);
  const cm = await getCodeMate(c, options.name);
  const name = `${options.name}-cli-${randomBytes(4).toString('hex')}`;
  const message = {
    apiVersion,
    kind: 'CodeMateMessage',
    metadata: {
      name,
      namespace: c.namespace,
      ownerReferences: [{ apiVersion, kind: 'CodeMate', name: options.name, uid: cm.metadata.uid! }],
    },
    spec: {
      codemate: options.name,
      source: { type: 'cli', author: await whoami(c), createdAt: new Date().toISOString() },
      body,
    },
  };
  try {
    await c.kube.create(message);
  } catch (error) {
    throw explain(error, c, { verb: 'create', resource: 'codematemessages', name });
  }
  if (!options.wait) {
    out.info(`message ${name} queued for codemate "${options.name}"`);
    out.data(name);
    return;
  }
  const progress = out.progress(`delivering message ${name}`);
  const deadline = Date.now() + options.timeout * 1000;
  for (;;) {
    const m = await c.kube.get<MessageObject>(apiVersion, 'CodeMateMessage', name, c.namespace);
    const phase = m.status?.phase;
    if (phase === 'Delivered') {
      progress.succeed(`message ${name} delivered to codemate "${options.name}"`);
      out.data(name);
      return;
    }
    if (phase === 'Failed' || phase === 'Rejected') {
      progress.fail(`message ${name} ${phase.toLowerCase()}`);
      throw new CodemateError(
        `message ${name} ${phase.toLowerCase()}: ${m.status?.reason}: ${m.status?.message ?? ''}`,
      );
    }
    if (m.status?.reason)
      progress.update(`delivering message ${name}: ${m.status.reason} (${m.status.message ?? ''})`);
    if (Date.now() > deadline) {
      progress.fail(`message ${name} not delivered after ${options.timeout}s`);
      throw new CodemateError(
        `message ${name} is still pending: ${m.status?.message ?? 'the operator has not picked it up'}`,
        {
          hint: `it stays queued; check with \`kubectl get codematemessages ${name} -n ${c.namespace}\``,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// --- describe, logs ---------------------------------------------------------------------------------

export async function runDescribe(name: string, c: Cluster, out: Output): Promise<void> {
  const cm = await getCodeMate(c, name);
  const [messages, events] = await Promise.all([
    c.kube.list<MessageObject>(apiVersion, 'CodeMateMessage', c.namespace).catch(() => []),
    c.kube
      .list<
        KubeObject & {
          type?: string;
          reason?: string;
          message?: string;
          lastTimestamp?: string;
          eventTime?: string;
        }
      >('v1', 'Event', c.namespace, {
        fieldSelector: `involvedObject.name=${name},involvedObject.kind=CodeMate`,
      })
      .catch(() => []),
  ]);
  const s = cm.status ?? {};
  const lines = [
    `Name:          ${name}`,
    `Namespace:     ${c.namespace}`,
    `Phase:         ${s.phase ?? '-'}${s.message ? ` (${s.message})` : ''}`,
    `Repository:    ${cm.spec.repository.url}`,
    `Branch:        ${cm.spec.repository.branch ?? '-'}${cm.spec.repository.baseBranch ? ` (base ${cm.spec.repository.baseBranch})` : ''}`,
    `Pull request:  ${s.pullRequest?.number ?? cm.spec.repository.pullRequest ?? '-'}${s.pullRequest?.state ? ` (${s.pullRequest.state}) ${s.pullRequest.url ?? ''}` : ''}`,
    `Pod:           ${s.podName ?? '-'}`,
    `Suspended:     ${cm.spec.suspend ? 'yes' : 'no'}`,
    `Secrets:       github ${cm.spec.github.tokenSecretRef.name}/${cm.spec.github.tokenSecretRef.key ?? 'token'}, anthropic ${cm.spec.anthropic.apiKeySecretRef.name}/${cm.spec.anthropic.apiKeySecretRef.key ?? 'token'}`,
    `Last check:    ${s.lastMonitorCheck ?? '-'}`,
    '',
    'Conditions:',
    table([
      ['TYPE', 'STATUS', 'REASON', 'MESSAGE'],
      ...(s.conditions ?? []).map((x) => [x.type, x.status, x.reason, x.message]),
    ]).replace(/^/gm, '  '),
    '',
    'Recent messages:',
  ];
  const mine = messages
    .filter((m) => m.spec.codemate === name)
    .sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)))
    .slice(-10);
  lines.push(
    mine.length === 0
      ? '  (none)'
      : table([
          ['NAME', 'SOURCE', 'AUTHOR', 'PHASE', 'REASON', 'AGE'],
          ...mine.map((m) => [
            m.metadata.name!,
            m.spec.source.type,
            m.spec.source.author ?? '-',
            m.status?.phase ?? 'Pending',
            m.status?.reason ?? '-',
            age(m.metadata.creationTimestamp),
          ]),
        ]).replace(/^/gm, '  '),
  );
  lines.push('', 'Events:');
  const recent = events.slice(-15);
  lines.push(
    recent.length === 0
      ? '  (none)'
      : table([
          ['TYPE', 'REASON', 'AGE', 'MESSAGE'],
          ...recent.map((e) => [
            e.type ?? '-',
            e.reason ?? '-',
            age(e.lastTimestamp ?? e.eventTime),
            e.message ?? '',
          ]),
        ]).replace(/^/gm, '  '),
  );
  out.data(lines.join('\n'));
}

export async function runLogs(
  name: string,
  options: { follow: boolean; tail?: number | undefined },
  c: Cluster,
  out: Output,
): Promise<void> {
  const cm = await getCodeMate(c, name);
  const pod = cm.status?.podName;
  if (!pod) {
    throw new CodemateError(`codemate "${name}" has no pod (phase ${cm.status?.phase ?? 'unknown'})`, {
      hint: cm.spec.suspend ? `it is suspended; \`codemate resume ${name}\`` : `codemate describe ${name}`,
    });
  }
  try {
    const stream = await streamPodLogs(c.kube, c.namespace, pod, out.stdout, {
      container: sessionContainer,
      follow: options.follow,
      ...(options.tail !== undefined ? { tailLines: options.tail } : {}),
    });
    if (options.follow) {
      process.once('SIGINT', () => stream.stop());
    }
    await stream.done;
  } catch (error) {
    throw explain(error, c, { verb: 'get', resource: 'pods/log', name: pod });
  }
}

// --- attach -----------------------------------------------------------------------------------------

/**
 * The remote command for attach. `script` gives tmux a terminal even when the exec has none (kwok runs
 * exec without a pty), and `stty` hands it the local terminal's size.
 */
export function attachCommand(readOnly: boolean, columns: number, rows: number): string[] {
  const attach = `tmux attach-session${readOnly ? ' -r' : ''} -t claude-code`;
  return ['script', '-qfec', `stty cols ${columns} rows ${rows} 2>/dev/null; exec ${attach}`, '/dev/null'];
}

export async function runAttach(name: string, readOnly: boolean, c: Cluster, out: Output): Promise<void> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  if (!stdin.isTTY || !stdout.isTTY) {
    throw new UsageError('attach needs a terminal', {
      hint: `use \`codemate logs ${name} -f\` to follow the session without one`,
    });
  }
  const cm = await getCodeMate(c, name);
  const pod = cm.status?.podName;
  if (!pod || !sessionRunning(cm.status?.phase)) {
    throw new CodemateError(`codemate "${name}" is not running (phase ${cm.status?.phase ?? 'unknown'})`, {
      hint: cm.spec.suspend ? `\`codemate resume ${name}\` first` : `codemate describe ${name}`,
    });
  }
  out.info(`attaching to codemate "${name}"${readOnly ? ' (read-only)' : ''}; detach with Ctrl-b d`);
  stdin.setRawMode(true);
  stdin.resume();
  let code: number;
  try {
    code = await execInteractive(
      c.kube,
      c.namespace,
      pod,
      attachCommand(readOnly, stdout.columns ?? 80, stdout.rows ?? 24),
      {
        container: sessionContainer,
        stdin,
        stdout,
        stderr: process.stderr,
      },
    );
  } catch (error) {
    throw explain(error, c, { verb: 'create', resource: 'pods/exec', name: pod });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    // Leave the terminal as we found it: show the cursor, leave the alternate screen, reset attributes.
    stdout.write('\x1b[?25h\x1b[?1049l\x1b[0m\r\n');
  }
  if (code !== 0) throw new CodemateError(`the attach ended with exit code ${code}`);
  out.info(`detached from codemate "${name}"`);
}

// --- delete, suspend, resume ------------------------------------------------------------------------

export async function runDelete(name: string, c: Cluster, out: Output): Promise<void> {
  await getCodeMate(c, name);
  try {
    await c.kube.delete(apiVersion, 'CodeMate', name, c.namespace);
  } catch (error) {
    throw explain(error, c, { verb: 'delete', resource: 'codemates', name });
  }
  out.info(`codemate "${name}" deleted (its pod, storage and messages go with it)`);
}

export async function runSuspend(name: string, suspend: boolean, c: Cluster, out: Output): Promise<void> {
  const cm = await getCodeMate(c, name);
  if (Boolean(cm.spec.suspend) === suspend) {
    out.info(`codemate "${name}" is already ${suspend ? 'suspended' : 'running (not suspended)'}`);
    return;
  }
  try {
    await c.kube.mergePatch({
      apiVersion,
      kind: 'CodeMate',
      metadata: { name, namespace: c.namespace },
      spec: { suspend },
    });
  } catch (error) {
    throw explain(error, c, { verb: 'patch', resource: 'codemates', name });
  }
  out.info(suspend ? `codemate "${name}" suspended; its storage is kept` : `codemate "${name}" resumed`);
}

// --- registration -----------------------------------------------------------------------------------

export function registerSessions(program: Command, deps: CliDeps): void {
  program
    .command('create')
    .argument('[name]', 'CodeMate name (default: pr-<N>, or a slug of the branch)')
    .description('create a CodeMate: a Claude Code session on a branch or pull request')
    .option('--repo <url>', 'git URL (https, ssh, or file:// in the sandbox)')
    .option('--branch <branch>', 'branch to work on (created from --base when missing)')
    .option('--pr <number>', 'pull request to check out and follow')
    .option('--base <branch>', 'base branch for a new branch (default: the repository default)')
    .option('--github-secret <name>', 'secret with key "token": the GitHub token', 'github-token')
    .option('--anthropic-secret <name>', 'secret with key "token": the Anthropic API key', 'anthropic-key')
    .option('--git-user-name <name>', 'git author name for the session')
    .option('--git-user-email <email>', 'git author email for the session')
    .option('--task <text>', "the session's first instruction")
    .option('--image <image>', "session image (default: the operator's)")
    .option('--storage <size>', 'keep the workspace on a PersistentVolumeClaim of this size, e.g. 10Gi')
    .option('--wait', 'wait until the session runs, or fails, and say why')
    .option('--timeout <seconds>', 'how long --wait waits', '300')
    .option('--dry-run', 'print the CodeMate instead of creating it')
    .option('-o, --output <format>', 'yaml or json')
    .addHelpText(
      'after',
      `
Examples:
  $ codemate create --repo https://github.com/acme/api.git --pr 123 --wait
  $ codemate create fix-login --repo git@github.com:acme/api.git --branch fix/login --task "Fix the login redirect"
  $ codemate create --repo https://github.com/acme/api.git --branch feature/x --dry-run -o yaml`,
    )
    .action(async (name: string | undefined, flags: Record<string, unknown>, command: Command) => {
      const options = parseOrUsage(createSchema, { ...flags, name }, 'flags');
      await runCreate(options, cluster(command, deps), deps.out);
    });

  program
    .command('list')
    .alias('ls')
    .description('list CodeMates with their phase, pull request, pod and last message')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-o, --output <format>', 'table, wide, json or yaml', 'table')
    .addHelpText(
      'after',
      "\nExamples:\n  $ codemate list\n  $ codemate list -A -o wide\n  $ codemate list -o json | jq -r '.items[].metadata.name'",
    )
    .action(async (flags: Record<string, unknown>, command: Command) => {
      await runList(parseOrUsage(listSchema, flags, 'flags'), cluster(command, deps), deps.out);
    });

  program
    .command('inject')
    .argument('<name>', 'CodeMate name')
    .argument('<message>', 'the text, or - to read it from stdin')
    .description('send a message into a running session and wait until it is delivered')
    .option('--no-wait', 'return once the message is queued')
    .option('--timeout <seconds>', 'how long to wait for delivery', '120')
    .addHelpText(
      'after',
      `
The message becomes a CodeMateMessage; the operator pastes it into the session exactly once.

Examples:
  $ codemate inject pr-123 "Please rebase on main and rerun the tests"
  $ git diff | codemate inject pr-123 -
  $ codemate inject pr-123 "Look at the CI failure" --no-wait`,
    )
    .action(async (name: string, message: string, flags: Record<string, unknown>, command: Command) => {
      const options = parseOrUsage(injectSchema, { ...flags, name, message }, 'arguments');
      await runInject(options, cluster(command, deps), deps.out, process.stdin);
    });

  program
    .command('describe')
    .argument('<name>', 'CodeMate name')
    .description('show a CodeMate: spec, status, conditions, recent messages and events')
    .addHelpText('after', '\nExample:\n  $ codemate describe pr-123')
    .action(async (name: string, _flags: unknown, command: Command) =>
      runDescribe(name, cluster(command, deps), deps.out),
    );

  program
    .command('logs')
    .argument('<name>', 'CodeMate name')
    .description("print the session's log: its setup, then the tmux pane")
    .option('-f, --follow', 'keep streaming new output')
    .option('--tail <lines>', 'only the last N lines')
    .addHelpText('after', '\nExamples:\n  $ codemate logs pr-123 --tail 50\n  $ codemate logs pr-123 -f')
    .action(async (name: string, flags: Record<string, unknown>, command: Command) => {
      const options = parseOrUsage(
        z.object({ follow: z.boolean().default(false), tail: z.coerce.number().int().min(0).optional() }),
        flags,
        'flags',
      );
      await runLogs(name, options, cluster(command, deps), deps.out);
    });

  program
    .command('attach')
    .argument('<name>', 'CodeMate name')
    .description("attach your terminal to the session's tmux (detach with Ctrl-b d)")
    .option('--read-only', 'watch without typing')
    .addHelpText('after', '\nExamples:\n  $ codemate attach pr-123\n  $ codemate attach pr-123 --read-only')
    .action(async (name: string, flags: { readOnly?: boolean }, command: Command) =>
      runAttach(name, Boolean(flags.readOnly), cluster(command, deps), deps.out),
    );

  program
    .command('delete')
    .argument('<name>', 'CodeMate name')
    .description('delete a CodeMate with its pod, storage and messages')
    .addHelpText('after', '\nExample:\n  $ codemate delete pr-123')
    .action(async (name: string, _flags: unknown, command: Command) =>
      runDelete(name, cluster(command, deps), deps.out),
    );

  program
    .command('suspend')
    .argument('<name>', 'CodeMate name')
    .description('stop the session pod and keep its storage')
    .addHelpText('after', '\nExample:\n  $ codemate suspend pr-123')
    .action(async (name: string, _flags: unknown, command: Command) =>
      runSuspend(name, true, cluster(command, deps), deps.out),
    );

  program
    .command('resume')
    .argument('<name>', 'CodeMate name')
    .description('start a suspended session again')
    .addHelpText('after', '\nExample:\n  $ codemate resume pr-123')
    .action(async (name: string, _flags: unknown, command: Command) =>
      runSuspend(name, false, cluster(command, deps), deps.out),
    );
}
