/**
 * A read-only Kubernetes client for the CLI's quick commands (list, describe, completion), without
 * @kubernetes/client-node: loading the SDK costs about 1 s of CPU, and `kubectl get` answers in 0.08 s.
 *
 * It reads a kubeconfig as the SDK does in the common cases: a server with a CA (or insecure), and a
 * user with a client certificate or a bearer token; paths relative to the kubeconfig's directory. For
 * anything else (exec and auth-provider plugins, basic auth, impersonation, proxies, several files in
 * KUBECONFIG, in-cluster config, a context that is not there) `loadReader` answers undefined and the
 * caller uses the SDK, so what works and what each failure says stay the SDK's.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parseBlockYaml } from './blockYaml.js';
import type { KubeObject, KubeTarget } from './kube.js';

/** What the quick commands need from a cluster; the SDK's `Kube` has the same shape. */
export interface KubeReader {
  readonly server: string;
  readonly defaultNamespace: string;
  get<T extends KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T>;
  list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options?: { labelSelector?: string | undefined; fieldSelector?: string | undefined },
  ): Promise<T[]>;
}

/** The kinds this client can name in a URL. Others are a programming error: use the SDK. */
const plurals: Record<string, string> = {
  CodeMate: 'codemates',
  CodeMateMessage: 'codematemessages',
  Event: 'events',
  Namespace: 'namespaces',
  Pod: 'pods',
  Secret: 'secrets',
};

/** An answer other than 2xx, shaped as the SDK's ApiException: the status in `code`, the Status in `body`. */
export class KubeAnswerError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    // Not every answer is a Status: a group the apiserver does not serve (a CRD not installed) gets a
    // plain "404 page not found". For that one, say what client-go says.
    let message = code === 404 ? 'the server could not find the requested resource' : `HTTP ${code}`;
    try {
      const status = JSON.parse(body) as { message?: unknown };
      if (typeof status.message === 'string') message = status.message;
    } catch {
      // Not JSON: the message above.
    }
    super(message);
    this.name = 'KubeAnswerError';
  }
}

type Fields = Record<string, unknown>;

/** The reader for `target`, or undefined when its kubeconfig needs the SDK (see the top of this file). */
export async function loadReader(
  target: KubeTarget,
  options: { timeoutMs?: number } = {},
): Promise<KubeReader | undefined> {
  // As the SDK's loadFromDefault: the flag, else $KUBECONFIG (unless empty), else ~/.kube/config.
  const file = target.kubeconfig || process.env.KUBECONFIG || path.join(os.homedir(), '.kube', 'config');
  if (file.includes(path.delimiter)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let config: Fields;
  try {
    config = (parseBlockYaml(text) ?? (await import('yaml')).parse(text) ?? {}) as Fields;
  } catch {
    return undefined;
  }
  const entry = (list: unknown, name: unknown, field: string): Fields | undefined => {
    const found = Array.isArray(list)
      ? (list as Array<Fields | null>).find((e) => e?.name === name)
      : undefined;
    const value = found?.[field];
    return value && typeof value === 'object' ? (value as Fields) : undefined;
  };
  const context = entry(config.contexts, target.context ?? config['current-context'], 'context');
  const cluster = context && entry(config.clusters, context.cluster, 'cluster');
  const user = context && (entry(config.users, context.user, 'user') ?? {});
  if (!cluster || !user || typeof cluster.server !== 'string') return undefined;
  const unsupported = ['exec', 'auth-provider', 'username', 'password', 'as', 'as-groups', 'as-uid'];
  if (unsupported.some((f) => user[f] !== undefined) || cluster['proxy-url'] !== undefined) return undefined;

  const dir = path.dirname(path.resolve(file));
  const material = (data: unknown, fileName: unknown): Buffer | undefined => {
    if (typeof data === 'string') return Buffer.from(data, 'base64');
    if (typeof fileName === 'string') return readFileSync(path.resolve(dir, fileName));
    return undefined;
  };
  let token: string | undefined;
  let tls: https.AgentOptions;
  try {
    token =
      typeof user.token === 'string'
        ? user.token
        : typeof user.tokenFile === 'string'
          ? readFileSync(path.resolve(dir, user.tokenFile), 'utf8').trim()
          : undefined;
    tls = {
      ca: material(cluster['certificate-authority-data'], cluster['certificate-authority']),
      cert: material(user['client-certificate-data'], user['client-certificate']),
      key: material(user['client-key-data'], user['client-key']),
      rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
      ...(typeof cluster['tls-server-name'] === 'string' ? { servername: cluster['tls-server-name'] } : {}),
    };
  } catch {
    return undefined;
  }
  return new LightReader(
    cluster.server,
    typeof context.namespace === 'string' && context.namespace ? context.namespace : 'default',
    token,
    tls,
    options.timeoutMs ?? 30_000,
  );
}

class LightReader implements KubeReader {
  private readonly agent: http.Agent;

  constructor(
    readonly server: string,
    readonly defaultNamespace: string,
    private readonly token: string | undefined,
    tls: https.AgentOptions,
    private readonly timeoutMs: number,
  ) {
    // One kept-alive connection serves the two or three requests of a command, one after another: the
    // TLS handshake is most of a request's cost (measured: 21 ms for the first, 3 ms for the next), so
    // a second connection would cost more than waiting for the first.
    this.agent = server.startsWith('https:')
      ? new https.Agent({ ...tls, keepAlive: true, maxSockets: 1 })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  async get<T extends KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string) {
    return (await this.request(
      `${this.collection(apiVersion, kind, namespace)}/${encodeURIComponent(name)}`,
    )) as T;
  }

  async list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: { labelSelector?: string | undefined; fieldSelector?: string | undefined } = {},
  ) {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
    const search = query.size > 0 ? `?${query}` : '';
    const answer = (await this.request(`${this.collection(apiVersion, kind, namespace)}${search}`)) as {
      items?: T[];
    };
    // A list's items carry no kind or apiVersion; the SDK fills them in, and so does this.
    return (answer.items ?? []).map((item) => Object.assign({ apiVersion, kind }, item));
  }

  private collection(apiVersion: string, kind: string, namespace: string | undefined): string {
    const plural = plurals[kind];
    if (!plural) throw new Error(`the light Kubernetes reader cannot name kind ${kind}; use the SDK`);
    const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return `${root}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${plural}`;
  }

  private request(pathAndQuery: string): Promise<unknown> {
    // A server URL with a path (behind a proxy) keeps it, as kubectl does.
    const url = new URL(`${this.server.replace(/\/$/, '')}${pathAndQuery}`);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          agent: this.agent,
          method: 'GET',
          timeout: this.timeoutMs,
          headers: {
            accept: 'application/json',
            'user-agent': 'codemate',
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            if (code < 200 || code >= 300) return reject(new KubeAnswerError(code, body));
            try {
              resolve(JSON.parse(body));
            } catch (error) {
              reject(error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(
          Object.assign(new Error(`GET ${url.href} timed out after ${this.timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      req.on('error', reject);
      req.end();
    });
  }
}
