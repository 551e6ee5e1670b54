/**
 * `codemate inject`: a CodeMateMessage from the command line, then (unless --no-wait) the wait until the
 * operator has delivered it to the session.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { apiVersion } from '../../api/codemate.js';
import {
  buildMessage,
  messageKind,
  messageName,
  messageSpecSchema,
  type CodeMateMessage,
} from '../../api/message.js';
import type { KubeObject } from '../../clients/kube.js';
import { parseOrUsage } from '../../config/index.js';
import { connect, explain, getCodeMate, type Cluster } from '../cluster.js';
import { CodemateError, UsageError } from '../errors.js';
import { readAll } from '../input.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';

type MessageObject = CodeMateMessage & KubeObject;

const injectSchema = z.object({
  name: z.string().min(1),
  message: z.string({ error: 'is required (use - to read stdin)' }),
  wait: z.boolean().default(true),
  timeout: z.coerce.number().int().min(1).default(120),
});

export type InjectOptions = z.infer<typeof injectSchema>;

export const inject: Verb = async ({ args: [name, message], flags, globals }, deps) => {
  const options = parseOrUsage(injectSchema, { ...flags, name, message }, 'arguments');
  await runInject(options, await connect(globals), deps.out, process.stdin);
};

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

/** Who the cluster says the CLI user is, for the records a command writes. */
export async function whoami(c: Cluster): Promise<string> {
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
  options: InjectOptions,
  c: Cluster,
  out: Output,
  stdin: NodeJS.ReadableStream,
): Promise<void> {
  let body = options.message;
  if (body === '-') body = await readAll(stdin);
  if (body.trim() === '') throw new UsageError('the message is empty');
  checkMessageSize(body);
  const cm = await getCodeMate(c, options.name);
  const name = messageName(options.name, 'cli', randomBytes(4).toString('hex'));
  const message = buildMessage(
    { metadata: { name: options.name, namespace: c.namespace, uid: cm.metadata.uid } },
    name,
    {
      source: { type: 'cli', author: await whoami(c), createdAt: new Date().toISOString() },
      body,
    },
  );
  try {
    await c.kube.create(message as MessageObject);
  } catch (error) {
    throw explain(error, c, { verb: 'create', resource: 'codematemessages', name });
  }
  if (!options.wait) {
    out.info(`message ${name} queued for codemate "${options.name}"`);
    out.data(name);
    return;
  }
  const progress = await out.progress(`delivering message ${name}`);
  const deadline = Date.now() + options.timeout * 1000;
  for (;;) {
    const m = await c.kube.get<MessageObject>(apiVersion, messageKind, name, c.namespace);
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
