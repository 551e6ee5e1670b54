/**
 * The webhook's view of CodeMates: an informer cache indexed by the pull request and the branch each
 * session follows, so that routing a delivery costs no API call.
 */
import { apiVersion, kind, plural, type CodeMate } from '../api/codemate.js';
import { supervisedInformer, type Informer } from '../clients/informer.js';
import type { Kube, KubeObject } from '../clients/kube.js';
import { parseRepository } from '../github/repository.js';

/** `owner/repo#7` for a pull request, `owner/repo@branch` for a branch; owner and repo lower-cased. */
export function pullRequestKey(repository: string, number: number): string {
  return `${repository.toLowerCase()}#${number}`;
}
export function branchKey(repository: string, branch: string): string {
  return `${repository.toLowerCase()}@${branch}`;
}

/** The keys a CodeMate answers to: its pull request (from spec or, once linked, status) and its branch. */
export function keysOf(cm: CodeMate): string[] {
  const repo = parseRepository(cm.spec.repository.url);
  if (!repo || cm.metadata.deletionTimestamp || cm.spec.monitoring?.enabled === false) return [];
  const name = `${repo.owner}/${repo.repo}`;
  const keys: string[] = [];
  const number = cm.spec.repository.pullRequest ?? cm.status?.pullRequest?.number;
  if (number) keys.push(pullRequestKey(name, number));
  if (cm.spec.repository.branch) keys.push(branchKey(name, cm.spec.repository.branch));
  return keys;
}

/** The CodeMates following a pull request, or its head branch when that is in the same repository. */
export function followersOf(
  codemates: CodeMateLookup,
  event: { repository: string; pullRequest: number; headRef?: string },
): CodeMate[] {
  const keys = [pullRequestKey(event.repository, event.pullRequest)];
  if (event.headRef) keys.push(branchKey(event.repository, event.headRef));
  return codemates.find(keys);
}

export interface CodeMateLookup {
  /** CodeMates following any of `keys`, each once. */
  find(keys: readonly string[]): CodeMate[];
  readonly synced: boolean;
}

export class CodeMateIndex implements CodeMateLookup {
  private readonly informer: Informer<CodeMate & KubeObject>;
  private readonly byKey = new Map<string, Set<string>>();
  private readonly keysByObject = new Map<string, string[]>();

  constructor(
    kube: Kube,
    options: {
      namespace?: string | undefined;
      onRestart?: (error: unknown, delayMs: number) => void;
    },
  ) {
    this.informer = supervisedInformer<CodeMate & KubeObject>(kube, {
      apiVersion,
      kind,
      plural,
      namespace: options.namespace,
      onEvent: (event, cm) => this.index(event === 'delete' ? undefined : cm, cm),
      ...(options.onRestart ? { onRestart: options.onRestart } : {}),
    });
  }

  private index(current: (CodeMate & KubeObject) | undefined, seen: CodeMate & KubeObject): void {
    const id = `${seen.metadata.namespace}/${seen.metadata.name}`;
    for (const key of this.keysByObject.get(id) ?? []) {
      const ids = this.byKey.get(key);
      ids?.delete(id);
      if (ids?.size === 0) this.byKey.delete(key);
    }
    this.keysByObject.delete(id);
    if (!current) return;
    const keys = keysOf({ ...current, apiVersion, kind } as CodeMate);
    this.keysByObject.set(id, keys);
    for (const key of keys) {
      const ids = this.byKey.get(key) ?? new Set<string>();
      ids.add(id);
      this.byKey.set(key, ids);
    }
  }

  find(keys: readonly string[]): CodeMate[] {
    const ids = new Set(keys.flatMap((key) => [...(this.byKey.get(key) ?? [])]));
    const found: CodeMate[] = [];
    for (const id of ids) {
      const [namespace = '', name = ''] = id.split('/');
      const cm = this.informer.get(name, namespace);
      if (cm) found.push({ ...cm, apiVersion, kind } as CodeMate);
    }
    return found;
  }

  get synced(): boolean {
    return this.informer.synced;
  }

  get size(): number {
    return this.keysByObject.size;
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }
}
