/**
 * `codemate approve MESSAGE`: a person with the right to write CodeMateMessages (the same right as
 * `codemate inject`) lets in an untrusted comment that waits for approval. It prints the recorded text it
 * approves, and binds the approval to that text's hash; `codemate deny` (deny.ts) refuses it. The decision
 * is written once into spec.approval: the CRD refuses to change it, so a second decision is reported, not
 * applied (docs/approvals.md).
 */
import { z } from 'zod';
import { apiVersion } from '../../api/codemate.js';
import { bodySha256, isFinal, messageKind, type Approval, type CodeMateMessage } from '../../api/message.js';
import { isInvalid, type KubeObject } from '../../clients/kube.js';
import { parseOrUsage } from '../../config/index.js';
import { connect, explain, type Cluster } from '../cluster.js';
import { CodemateError } from '../errors.js';
import type { Output } from '../output.js';
import type { Verb } from '../program.js';
import { whoami } from './inject.js';

type MessageObject = CodeMateMessage & KubeObject;

const decisionSchema = z.object({ message: z.string().min(1) });

export const approve: Verb = async ({ args: [message], globals }, deps) => {
  const options = parseOrUsage(decisionSchema, { message }, 'arguments');
  await runDecision(options.message, 'Approved', await connect(globals), deps.out);
};

const verb = { Approved: 'approved', Denied: 'denied' } as const;

async function read(c: Cluster, name: string): Promise<MessageObject> {
  try {
    return await c.kube.get<MessageObject>(apiVersion, messageKind, name, c.namespace);
  } catch (error) {
    throw explain(error, c, { verb: 'get', resource: 'codematemessages', name });
  }
}

function describe(approval: Approval): string {
  return `${verb[approval.decision]} by ${approval.by} (${approval.via}) at ${approval.at}`;
}

/** Records a decision on a message that waits for one; a repeat of the same decision succeeds. */
export async function runDecision(
  name: string,
  decision: Approval['decision'],
  c: Cluster,
  out: Output,
): Promise<void> {
  const message = await read(c, name);
  const { trust, approval } = message.spec;
  if (approval) {
    if (approval.decision === decision) {
      out.info(`message ${name} is already ${describe(approval)}`);
      return;
    }
    throw new CodemateError(`message ${name} was already ${describe(approval)}; a decision is final`);
  }
  if (trust?.allowed !== false) {
    if (decision === 'Approved') {
      out.info(`message ${name} needs no approval: its author is trusted`);
      return;
    }
    throw new CodemateError(`message ${name} is from a trusted author; there is nothing to deny`);
  }
  if (!trust.approvable) {
    throw new CodemateError(`message ${name} cannot be approved: ${trust.reason ?? 'untrusted'}`, {
      hint: "bots and the session's own GitHub identity are never injected",
    });
  }
  const phase = message.status?.phase;
  if (isFinal(phase)) {
    throw new CodemateError(
      `message ${name} is already ${phase}: ${message.status?.reason ?? ''} ${message.status?.message ?? ''}`.trim(),
    );
  }
  const body = message.spec.body;
  if (decision === 'Approved') {
    // What is approved is what was shown: the recorded text, not the comment as it may read now.
    const source = message.spec.source;
    out.info(`approving this text by @${source.author ?? 'unknown'}${source.url ? ` (${source.url})` : ''}:`);
    out.info(body.replace(/^/gm, '  | '));
  }
  const record: Approval = {
    decision,
    by: await whoami(c),
    via: 'cli',
    at: new Date().toISOString(),
    bodySha256: bodySha256(body),
  };
  try {
    await c.kube.mergePatch({
      apiVersion,
      kind: messageKind,
      metadata: { name, namespace: c.namespace },
      spec: { approval: record },
    });
  } catch (error) {
    if (isInvalid(error)) {
      const now = await read(c, name);
      if (now.spec.approval) {
        if (now.spec.approval.decision === decision) {
          out.info(`message ${name} is already ${describe(now.spec.approval)}`);
          return;
        }
        throw new CodemateError(
          `message ${name} was already ${describe(now.spec.approval)}; a decision is final`,
        );
      }
    }
    throw explain(error, c, { verb: 'patch', resource: 'codematemessages', name });
  }
  out.info(
    decision === 'Approved'
      ? `message ${name} approved; the operator delivers it to codemate "${message.spec.codemate}"`
      : `message ${name} denied; it will not be delivered`,
  );
}
