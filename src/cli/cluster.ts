/**
 * Cluster access for the user-facing commands, kubectl style (--kubeconfig, --context, -n, -A,
 * in-cluster), and the translation of API failures into messages that say what to do next.
 */
import { apiVersion, kind } from '../api/names.js';
import type { CodeMate } from '../api/codemate.js';
import type { Kube, KubeLoadOptions, KubeObject, KubeReader } from '../clients/kube.js';
import { isForbidden, isNotFound, statusCode, statusMessage } from '../clients/kubeErrors.js';
import { CodemateError } from './errors.js';

export interface ClusterFlags {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

/** A connection and the namespace the command works in. Read-only commands get a `KubeReader`. */
export interface Cluster<K extends KubeReader = Kube> {
  kube: K;
  namespace: string;
}

export type CodeMateObject = CodeMate & KubeObject;

const noCluster = 'set KUBECONFIG or --kubeconfig, or run `codemate dev up` for a local sandbox';

/** The client, for commands that write, exec or stream. Without --kubeconfig: as kubectl finds one. */
export async function connect(flags: ClusterFlags, options: KubeLoadOptions = {}): Promise<Cluster> {
  let kube: Kube;
  try {
    const { Kube } = await import('../clients/kube.js');
    kube = Kube.load({ kubeconfig: flags.kubeconfig, context: flags.context }, options);
  } catch (error) {
    throw new CodemateError(`cannot load a kubeconfig: ${(error as Error).message}`, {
      hint: noCluster,
      cause: error,
    });
  }
  if (!kube.server) throw new CodemateError('no cluster is configured', { hint: noCluster });
  return { kube, namespace: flags.namespace ?? kube.defaultNamespace };
}

/**
 * A connection for the quick read-only commands (list, describe, completion): one kept-alive connection,
 * since their two or three requests go one after another and a TLS handshake is most of a request's
 * cost (measured: 21 ms for the first, 3 ms for the next). `timeoutMs` bounds each request, e.g. for
 * shell completion.
 */
export async function connectReader(
  flags: ClusterFlags,
  options: { timeoutMs?: number } = {},
): Promise<Cluster<KubeReader>> {
  return connect(flags, { ...options, maxSockets: 1 });
}

/** The CodeMate `name`, or an error that names the close matches in its namespace. */
export async function getCodeMate(c: Cluster<KubeReader>, name: string): Promise<CodeMateObject> {
  try {
    return await c.kube.get<CodeMateObject>(apiVersion, kind, name, c.namespace);
  } catch (error) {
    if (isNotFound(error)) {
      const names = await c.kube
        .list<CodeMateObject>(apiVersion, kind, c.namespace)
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

/**
 * The role of manifests/user-rbac.yaml that grants `verb` on `resource`: codemate-view to read,
 * codemate-edit to create, change and inject, codemate-attach for a terminal in the session.
 */
export function roleFor(verb: string, resource: string): string | undefined {
  const read = ['get', 'list', 'watch'].includes(verb);
  if (resource === 'pods/exec' || resource === 'pods/attach') return 'codemate-attach';
  if (resource === 'codemates' || resource === 'codematemessages')
    return read ? 'codemate-view' : 'codemate-edit';
  if (resource === 'pods' || resource === 'pods/log') return read ? 'codemate-view' : undefined;
  return undefined;
}

/** Turns an API error into an actionable CodemateError. `what` names the request, e.g. "create codemates". */
export function explain(
  error: unknown,
  cluster: Cluster<KubeReader>,
  what: { verb: string; resource: string; name?: string },
): Error {
  if (error instanceof CodemateError) return error;
  const code = statusCode(error);
  const where = `in namespace ${cluster.namespace}`;
  // The SDK resolves kinds through discovery, and says so when the apiserver serves no such kind.
  if (/Unrecognized API version and kind: codemate\.io/.test(error instanceof Error ? error.message : '')) {
    return new CodemateError('the CodeMate CRDs are not installed in this cluster', {
      hint: 'kubectl apply -f manifests/crd.yaml (or run `codemate dev up` for a local sandbox)',
      cause: error,
    });
  }
  if (code === undefined || code >= 500) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (
      /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|socket hang up|fetch failed|request to .* failed/i.test(
        reason ?? '',
      )
    ) {
      return new CodemateError(`no cluster reachable at ${cluster.kube.server}`, {
        hint: 'check KUBECONFIG and --context, or run `codemate dev up` for a local sandbox',
        cause: error,
      });
    }
    return new CodemateError(`${what.verb} ${what.resource} failed: ${statusMessage(error)}`, {
      cause: error,
    });
  }
  if (isForbidden(error)) {
    const role = roleFor(what.verb, what.resource);
    return new CodemateError(`forbidden: you cannot ${what.verb} ${what.resource} ${where}`, {
      hint: role
        ? `ask an admin for the ClusterRole ${role} in namespace ${cluster.namespace} (kubectl create ` +
          `rolebinding ${role}-<you> -n ${cluster.namespace} --clusterrole=${role} --user=<you>), or use ` +
          'another --context'
        : `ask for RBAC that allows "${what.verb}" on ${what.resource}, or use another --context`,
      cause: error,
    });
  }
  if (
    isNotFound(error) &&
    /could not find the requested resource|the server doesn't have a resource type/i.test(
      statusMessage(error) + String((error as Error).message),
    )
  ) {
    return new CodemateError('the CodeMate CRDs are not installed in this cluster', {
      hint: 'kubectl apply -f manifests/crd.yaml (or run `codemate dev up` for a local sandbox)',
      cause: error,
    });
  }
  if (isNotFound(error) && what.name) {
    return new CodemateError(`${what.resource.replace(/s$/, '')} "${what.name}" not found ${where}`, {
      cause: error,
    });
  }
  return new CodemateError(`${what.verb} ${what.resource} failed: ${statusMessage(error)}`, { cause: error });
}

/** Up to three names close to `name`, for "did you mean". */
export function closeMatches(name: string, candidates: string[]): string[] {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = row[j]!;
        row[j] = next;
      }
    }
    return row[b.length]!;
  };
  return candidates
    .map((c) => ({ c, d: c.includes(name) || name.includes(c) ? 0 : distance(name, c) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map(({ c }) => c);
}
