/** `codemate describe`: spec, status, conditions, recent messages and events. A quick command, as list. */
import {
  defaultDeliveryMode,
  suspendedByAnnotation,
  type CodeMateSpec,
  type CodeMateStatus,
} from '../../api/codemate.js';
import type { CodeMateMessage } from '../../api/message.js';
import { apiVersion, messageKind } from '../../api/names.js';
import type { KubeObject } from '../../clients/kube.js';
import type { KubeReader } from '../../clients/kube.js';
import { connectReader, getCodeMate, type Cluster } from '../cluster.js';
import { age, table, type Output } from '../output.js';
import { tokensLine } from './list.js';
import type { Verb } from '../program.js';

type MessageObject = CodeMateMessage & KubeObject;

export const describe: Verb = async ({ args: [name], globals }, deps) =>
  runDescribe(String(name), await connectReader(globals), deps.out);

export async function runDescribe(name: string, c: Cluster<KubeReader>, out: Output): Promise<void> {
  // Issued together; the light client sends them in turn over one connection (see cli/cluster.ts).
  const [cm, messages, events] = await Promise.all([
    getCodeMate(c, name),
    c.kube.list<MessageObject>(apiVersion, messageKind, c.namespace).catch(() => []),
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
    `Suspended:     ${suspendedLine(cm)}`,
    `Task:          ${cm.spec.task === undefined ? '-' : s.task?.startedAt ? `given to the session ${s.task.startedAt}` : 'not given yet'}`,
    `Secrets:       github ${cm.spec.github.tokenSecretRef ? `${cm.spec.github.tokenSecretRef.name}/${cm.spec.github.tokenSecretRef.key ?? 'token'}` : 'GitHub App installation token'}, anthropic ${cm.spec.anthropic.apiKeySecretRef.name}/${cm.spec.anthropic.apiKeySecretRef.key ?? 'token'}`,
    `Delivery:      ${cm.spec.monitoring?.delivery ?? defaultDeliveryMode}`,
    `Session:       ${sessionLine(s)}`,
    `Usage:         ${usageLine(s)}`,
    `Budget:        ${budgetLine(cm)}`,
    `Last check:    ${s.lastMonitorCheck ?? '-'}`,
    `CI failures:   ${ciLine(s)}`,
    `Left draft:    ${readyLine(s)}`,
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

/** The last failed CI run the session was told of, or that the repository has no CI. */
function ciLine(s: CodeMateStatus): string {
  const ci = s.github?.ci;
  if (ci?.noneDetectedAt) {
    return `none: the repository had no workflows on commit ${(ci.noneDetectedOn ?? '?').slice(0, 7)} (${ci.noneDetectedAt})`;
  }
  const last = ci?.lastNotified;
  if (!last) return '-';
  return (
    `last told ${last.notifiedAt ?? '-'}: ${last.workflow ?? '?'} run ${last.runId ?? '?'} attempt ${last.attempt ?? '?'}` +
    ` (${last.conclusion ?? '?'}, commit ${(last.headSha ?? '?').slice(0, 7)}), message ${last.message ?? '-'}`
  );
}

/** Whether the session was asked to update the pull request's title and description when it left draft. */
function readyLine(s: CodeMateStatus): string {
  const notice = s.github?.readyForReview;
  if (!notice) return s.pullRequest?.draft ? 'no (the pull request is a draft)' : '-';
  return `asked to update the title and description ${notice.notifiedAt ?? '-'}, message ${notice.message ?? '-'}`;
}

/** Whether it is suspended, by whom, and what idle suspend would do (docs/lifecycle.md). */
function suspendedLine(cm: {
  spec: CodeMateSpec;
  metadata: { annotations?: Record<string, string> };
}): string {
  const after = cm.spec.lifecycle?.idleSuspendAfter;
  const workspace = cm.spec.storage ? '' : '; without storage the workspace is lost';
  if (!cm.spec.suspend) return after ? `no (suspends after ${after} idle${workspace})` : 'no';
  if (cm.metadata.annotations?.[suspendedByAnnotation] === 'idle')
    return `yes, after ${after ?? 'a time'} idle: a new message resumes it`;
  return 'yes: `codemate resume` resumes it; messages wait';
}

/** What the session is doing, since when, and the last message it got. */
function sessionLine(s: CodeMateStatus): string {
  const session = s.session;
  if (!session?.state && !session?.lastMessage) return '-';
  const since = session.since ? ` since ${session.since}` : '';
  const last = session.lastMessage ? `, last message ${session.lastMessage}` : '';
  return `${session.state ?? 'not running'}${since}${last}`;
}

/** The token counts of status.usage. */
function usageLine(s: CodeMateStatus): string {
  const u = s.usage;
  if (!u) return '-';
  return (
    `${u.inputTokens ?? 0} input, ${u.outputTokens ?? 0} output, ${u.cacheReadTokens ?? 0} cache read, ` +
    `${u.cacheCreationTokens ?? 0} cache creation tokens; ${u.turns ?? 0} turns` +
    (u.updatedAt ? ` (${u.updatedAt})` : '')
  );
}

/** The budgets and how much of each is used: the whole, and today's (UTC). */
function budgetLine(cm: Parameters<typeof tokensLine>[0]): string {
  const budget = cm.spec.budget;
  const parts: string[] = [];
  if (budget?.maxTokens !== undefined) parts.push(`${tokensLine(cm)} tokens`);
  if (budget?.maxTokensPerDay !== undefined) {
    const today = cm.status?.usage?.today;
    parts.push(`${today?.tokens ?? 0}/${budget.maxTokensPerDay} tokens on ${today?.date ?? 'today'} (UTC)`);
  }
  return parts.length > 0 ? `${parts.join(', ')}; input, cache creation and output` : '-';
}
