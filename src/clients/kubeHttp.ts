/**
 * The transport of every Kubernetes call: plain JSON over one kept-alive connection pool, and watches as
 * streams of JSON lines. Objects stay the apiserver's JSON (no class instances, no serializer), which
 * is what the operator's caches and the webhook's creates spend their time and memory on otherwise.
 *
 * Credentials come from a kubeconfig read here in the common cases: a server with a CA (or insecure),
 * a user with a client certificate or a bearer token (a token file is read again every minute, as
 * client-go does, so a rotated ServiceAccount token is picked up), and in-cluster configuration. For
 * anything else (exec and auth-provider plugins, basic auth, impersonation, proxies, several files in
 * KUBECONFIG) `loadConnection` answers undefined and kube.ts lets @kubernetes/client-node supply the
 * credentials per request, so what works and what each failure says stay the SDK's.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import os from 'node:os';
import tls from 'node:tls';
import path from 'node:path';
import { parseBlockYaml } from './blockYaml.js';

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

/** Where the cluster is and how to trust it: what a kubeconfig written for another identity keeps. */
export interface ClusterInfo {
  server: string;
  /** The CA bundle, when the server's certificate is checked against one. */
  ca?: Buffer | undefined;
  insecure: boolean;
  tlsServerName?: string | undefined;
}

/** Request options that carry a connection's credentials. */
export interface Authorized {
  agent?: http.Agent | undefined;
  headers: Record<string, string>;
  /** TLS options for callers that open their own socket (the SDK's exec opens a WebSocket). */
  tls: https.AgentOptions;
}

/** A cluster and the credentials of one identity in it. */
export interface Connection {
  readonly cluster: ClusterInfo;
  readonly defaultNamespace: string;
  authorize(): Promise<Authorized>;
}

type Fields = Record<string, unknown>;

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ConnectionOptions {
  /** At most this many connections to the apiserver at once (the CLI's quick commands use one). */
  maxSockets?: number;
}

/**
 * The connection that a kubeconfig describes, found as the SDK's loadFromDefault finds it (the path,
 * else $KUBECONFIG unless empty, else ~/.kube/config, else in-cluster), or undefined when it needs the
 * SDK (see the top of this file).
 */
export function loadConnection(
  target: { kubeconfig?: string | undefined; context?: string | undefined },
  options: ConnectionOptions = {},
): Connection | undefined {
  const explicit = target.kubeconfig || process.env.KUBECONFIG;
  const file = explicit || path.join(os.homedir(), '.kube', 'config');
  if (file.includes(path.delimiter)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return explicit || target.context ? undefined : inCluster(options);
  }
  let config: Fields;
  try {
    config = (parseBlockYaml(text) ?? yamlParse(text) ?? {}) as Fields;
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
  try {
    const info: ClusterInfo = {
      server: cluster.server,
      ca: material(cluster['certificate-authority-data'], cluster['certificate-authority']),
      insecure: cluster['insecure-skip-tls-verify'] === true,
      tlsServerName: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    };
    const token =
      typeof user.token === 'string'
        ? () => user.token as string
        : typeof user.tokenFile === 'string'
          ? tokenFromFile(path.resolve(dir, user.tokenFile))
          : undefined;
    return new StaticConnection(
      info,
      typeof context.namespace === 'string' && context.namespace ? context.namespace : 'default',
      {
        cert: material(user['client-certificate-data'], user['client-certificate']),
        key: material(user['client-key-data'], user['client-key']),
      },
      token,
      options,
    );
  } catch {
    return undefined;
  }
}

/** A ServiceAccount's connection from inside a pod, as client-go's rest.InClusterConfig. */
function inCluster(options: ConnectionOptions): Connection | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  try {
    const token = tokenFromFile(path.join(serviceAccountDir, 'token'));
    token();
    let namespace = 'default';
    try {
      namespace = readFileSync(path.join(serviceAccountDir, 'namespace'), 'utf8').trim() || namespace;
    } catch {
      // As client-go: the default namespace.
    }
    return new StaticConnection(
      {
        server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
        ca: readFileSync(path.join(serviceAccountDir, 'ca.crt')),
        insecure: false,
      },
      namespace,
      {},
      token,
      options,
    );
  } catch {
    return undefined;
  }
}

/** A token file read again at most once a minute, so that a rotated token is used. */
function tokenFromFile(file: string): () => string {
  let value = '';
  let readAt = -Infinity;
  return () => {
    if (performance.now() - readAt > 60_000) {
      value = readFileSync(file, 'utf8').trim();
      readAt = performance.now();
    }
    return value;
  };
}

function yamlParse(text: string): unknown {
  // `yaml` only when the block subset declines the document: it costs ~50 ms to load.
  return (createRequire(import.meta.url)('yaml') as { parse(text: string): unknown }).parse(text);
}

class StaticConnection implements Connection {
  private readonly agent: http.Agent;
  private readonly tls: https.AgentOptions;

  constructor(
    readonly cluster: ClusterInfo,
    readonly defaultNamespace: string,
    identity: { cert?: Buffer | undefined; key?: Buffer | undefined },
    private readonly token: (() => string) | undefined,
    options: ConnectionOptions,
  ) {
    const material = {
      ...(cluster.ca ? { ca: cluster.ca } : {}),
      ...(identity.cert ? { cert: identity.cert } : {}),
      ...(identity.key ? { key: identity.key } : {}),
    };
    // One TLS context for every connection (requests, watches and exec's WebSockets): Node would
    // otherwise parse the CA and the key again, and hold a context, for each new connection.
    const secureContext = cluster.server.startsWith('https:') ? tls.createSecureContext(material) : undefined;
    this.tls = {
      ...material,
      ...(secureContext ? { secureContext } : {}),
      rejectUnauthorized: !cluster.insecure,
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    };
    const pool = { keepAlive: true, ...(options.maxSockets ? { maxSockets: options.maxSockets } : {}) };
    this.agent = cluster.server.startsWith('https:')
      ? new https.Agent({ ...this.tls, ...pool })
      : new http.Agent(pool);
  }

  authorize(): Promise<Authorized> {
    const token = this.token?.();
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    return Promise.resolve({ agent: this.agent, headers, tls: this.tls });
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export interface WatchHandlers {
  /** Each event as the apiserver sends it: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR. */
  event(type: string, object: Record<string, unknown>): void;
  /** The stream ended: by the server (undefined) or with an error. Not called after abort(). */
  end(error?: unknown): void;
}

/** Requests over a connection. */
export class KubeHttp {
  constructor(
    readonly connection: Connection,
    private readonly defaultTimeoutMs = 60_000,
  ) {}

  get server(): string {
    return this.connection.cluster.server;
  }

  private url(pathname: string, query: RequestOptions['query']): URL {
    // A server URL with a path (behind a proxy) keeps it, as kubectl does.
    const url = new URL(`${this.server.replace(/\/$/, '')}${pathname}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** The answer's body, parsed; a non-2xx answer rejects with KubeAnswerError. */
  async request<T>(method: string, pathname: string, options: RequestOptions = {}): Promise<T> {
    const { status, body } = await this.send(method, pathname, options);
    if (status < 200 || status >= 300) throw new KubeAnswerError(status, body);
    return (body ? JSON.parse(body) : undefined) as T;
  }

  /** Any answer, with its status and text. */
  async send(
    method: string,
    pathname: string,
    options: RequestOptions = {},
  ): Promise<{ status: number; body: string }> {
    const url = this.url(pathname, options.query);
    const auth = await this.connection.authorize();
    const payload =
      options.body === undefined
        ? undefined
        : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          method,
          agent: auth.agent,
          ...(auth.agent ? {} : auth.tls),
          timeout: timeoutMs,
          headers: {
            accept: 'application/json',
            'user-agent': 'codemate',
            ...auth.headers,
            ...(payload
              ? {
                  'content-type': options.contentType ?? 'application/json',
                  'content-length': String(payload.length),
                }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(
          Object.assign(new Error(`${method} ${url.href} timed out after ${timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * Watches a collection: one JSON object per line. Resolves once the answer's status arrived (a
   * non-2xx answer rejects), with a function that ends the watch. `idleMs` bounds the silence between
   * events (bookmarks included), so that a half-open connection does not hang the watch.
   */
  async watch(
    pathname: string,
    query: RequestOptions['query'],
    handlers: WatchHandlers,
    idleMs: number,
  ): Promise<{ abort(): void }> {
    const url = this.url(pathname, { ...query, watch: true });
    const auth = await this.connection.authorize();
    const client = url.protocol === 'https:' ? https : http;
    let aborted = false;
    let ended = false;
    const end = (error?: unknown) => {
      if (ended || aborted) return;
      ended = true;
      handlers.end(error);
    };
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          method: 'GET',
          agent: auth.agent,
          ...(auth.agent ? {} : auth.tls),
          timeout: idleMs,
          headers: { accept: 'application/json', 'user-agent': 'codemate', ...auth.headers },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => reject(new KubeAnswerError(status, Buffer.concat(chunks).toString('utf8'))));
            return;
          }
          resolve({
            abort: () => {
              aborted = true;
              req.destroy();
            },
          });
          let pending = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            pending += chunk;
            let newline = pending.indexOf('\n');
            while (newline >= 0) {
              const line = pending.slice(0, newline);
              pending = pending.slice(newline + 1);
              newline = pending.indexOf('\n');
              if (!line.trim()) continue;
              let parsed: { type?: string; object?: Record<string, unknown> };
              try {
                parsed = JSON.parse(line) as typeof parsed;
              } catch (error) {
                req.destroy();
                return end(error);
              }
              if (parsed.type && parsed.object) handlers.event(parsed.type, parsed.object);
            }
          });
          res.on('end', () => end());
          res.on('error', (error) => end(error));
          res.on('close', () => end());
        },
      );
      req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
      req.on('timeout', () =>
        req.destroy(
          Object.assign(new Error(`watch of ${url.pathname} was silent for ${idleMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      );
      req.on('error', (error) => {
        reject(error);
        end(error);
      });
      req.end();
    });
  }
}
