/**
 * `codemate list`. A quick command: it reads through the light client and validates its flags with
 * commander's choices rather than zod, so it starts without loading either (see bench/README.md).
 */
import { tokensCounted } from '../../api/usage.js';
import type { CodeMateMessage } from '../../api/message.js';
import { apiVersion, kind, messageKind } from '../../api/names.js';
import type { KubeObject } from '../../clients/kube.js';
import type { KubeReader } from '../../clients/kube.js';
import { connectReader, explain, type Cluster, type CodeMateObject } from '../cluster.js';
import { age, table, type Output } from '../output.js';
import type { listFormats, Verb } from '../program.js';

export interface ListOptions {
  allNamespaces: boolean;
  output: (typeof listFormats)[number];
}

type MessageObject = CodeMateMessage & KubeObject;

export const list: Verb = async ({ flags, globals }, deps) => {
  const options = { allNamespaces: flags.allNamespaces === true, output: flags.output } as ListOptions;
  await runList(options, await connectReader(globals), deps.out);
};

export async function runList(options: ListOptions, c: Cluster<KubeReader>, out: Output): Promise<void> {
  const ns = options.allNamespaces ? undefined : c.namespace;
  let items: CodeMateObject[];
  let messages: MessageObject[];
  try {
    // Issued together; the light client sends them in turn over one connection (see cli/cluster.ts).
    [items, messages] = await Promise.all([
      c.kube.list<CodeMateObject>(apiVersion, kind, ns),
      c.kube.list<MessageObject>(apiVersion, messageKind, ns).catch(() => []),
    ]);
  } catch (error) {
    throw explain(error, c, { verb: 'list', resource: 'codemates' });
  }
  if (options.output === 'json') return out.data(JSON.stringify({ items }, null, 2));
  if (options.output === 'yaml') return out.data((await import('yaml')).stringify({ items }));
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
    ...(wide ? ['STATE', 'TOKENS', 'TURNS', 'MESSAGE'] : []),
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
    ...(wide
      ? [
          cm.status?.session?.state ?? '-',
          tokensLine(cm),
          String(cm.status?.usage?.turns ?? '-'),
          cm.status?.message ?? '',
        ]
      : []),
  ]);
  out.data(table([header, ...rows]));
}

/** Tokens the budget counts, and of how many when there is a budget: `1200/5000`. */
export function tokensLine(cm: Pick<CodeMateObject, 'spec' | 'status'>): string {
  const max = cm.spec.budget?.maxTokens;
  if (!cm.status?.usage && max === undefined) return '-';
  const used = String(tokensCounted(cm.status?.usage));
  return max === undefined ? used : `${used}/${max}`;
}
