/**
 * The Kubernetes client: the small `Kube` surface below over plain JSON (kubeHttp.ts). Everything else
 * sees plain Kubernetes objects, and asks `isNotFound`/`isConflict`/... instead of reading error shapes.
 * @kubernetes/client-node is loaded only when a kubeconfig needs it for its credentials (exec and
 * auth-provider plugins, proxies, ...), and by exec.ts for exec and logs: loading it costs about 75 MiB
 * and a second of CPU, which the operator and the webhook do not pay.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import { isNotFound } from './kubeErrors.js';
import {
  KubeHttp,
  loadConnection,
  type Authorized,
  type ClusterInfo,
  type Connection,
  type ConnectionOptions,
  type WatchHandlers,
} from './kubeHttp.js';

export {
  isConflict,
  isForbidden,
  isInvalid,
  isNotFound,
  isUnreachable,
  statusCode,
  statusMessage,
} from './kubeErrors.js';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** What the quick read-only commands need from a cluster. */
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

export interface KubeTarget {
  /** Path to a kubeconfig; default as kubectl: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

type Sdk = typeof import('@kubernetes/client-node');
type SdkConfig = InstanceType<Sdk['KubeConfig']>;

/** @kubernetes/client-node, loaded on first use (synchronously: Node 22 and 24 require ES modules). */
function sdk(): Sdk {
  return createRequire(import.meta.url)('@kubernetes/client-node') as Sdk;
}

/**
 * The credentials of a kubeconfig that kubeHttp.ts does not read itself, applied per request by the SDK
 * (an exec plugin's token is fetched and renewed there). The SDK builds a new https.Agent for every
 * request, so each would pay a TCP and TLS handshake: one keep-alive agent per TLS identity keeps
 * connections reused, and a rotated certificate gets a new agent.
 */
class SdkConnection implements Connection {
  constructor(private readonly config: SdkConfig) {
    type Cluster = { server?: string; proxyUrl?: string; skipTLSVerify?: boolean } | null;
    type AgentFactory = (cluster: Cluster, options: https.AgentOptions) => http.Agent;
    const target = config as unknown as { createAgent?: AgentFactory };
    // A private method of the SDK: if a later version renames it, keep its behaviour rather than break.
    if (typeof target.createAgent !== 'function') return;
    const create = target.createAgent.bind(config);
    const agents = new Map<string, http.Agent>();
    target.createAgent = (cluster, options) => {
      const identity = [
        cluster?.server,
        cluster?.proxyUrl,
        cluster?.skipTLSVerify,
        options.ca,
        options.cert,
        options.key,
        options.pfx,
        options.passphrase,
        options.servername,
        options.rejectUnauthorized,
      ]
        .map((part) => String(part ?? ''))
        .join('\0');
      let agent = agents.get(identity);
      if (!agent) {
        agent = create(cluster, { ...options, keepAlive: true });
        agents.set(identity, agent);
      }
      return agent;
    };
  }

  get cluster(): ClusterInfo {
    const cluster = this.config.getCurrentCluster();
    const ca = cluster?.caData
      ? Buffer.from(cluster.caData, 'base64')
      : cluster?.caFile
        ? Buffer.from(sdkReadFile(cluster.caFile))
        : undefined;
    return {
      server: cluster?.server ?? '',
      ca,
      insecure: cluster?.skipTLSVerify ?? false,
      tlsServerName: cluster?.tlsServerName,
    };
  }

  get defaultNamespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace ?? 'default';
  }

  async authorize(): Promise<Authorized> {
    const options: https.RequestOptions = {};
    await this.config.applyToHTTPSOptions(options);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[key.toLowerCase()] = String(value);
    }
    if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = options;
    return {
      agent: options.agent instanceof Object ? (options.agent as http.Agent) : undefined,
      headers,
      tls: { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername },
    };
  }
}

function sdkReadFile(file: string): Buffer {
  return (createRequire(import.meta.url)('node:fs') as typeof import('node:fs')).readFileSync(file);
}

/** How a kind is named in a URL, and whether it lives in a namespace. */
interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

/** The kinds CodeMate reads and writes, so that these need no discovery request. */
const known: Record<string, ResourceInfo> = {
  'v1/Pod': { plural: 'pods', namespaced: true },
  'v1/Secret': { plural: 'secrets', namespaced: true },
  'v1/Event': { plural: 'events', namespaced: true },
  'v1/PersistentVolumeClaim': { plural: 'persistentvolumeclaims', namespaced: true },
  'v1/ConfigMap': { plural: 'configmaps', namespaced: true },
  'v1/ServiceAccount': { plural: 'serviceaccounts', namespaced: true },
  'v1/Service': { plural: 'services', namespaced: true },
  'v1/Namespace': { plural: 'namespaces', namespaced: false },
  'v1/Node': { plural: 'nodes', namespaced: false },
  'v1/PersistentVolume': { plural: 'persistentvolumes', namespaced: false },
  'coordination.k8s.io/v1/Lease': { plural: 'leases', namespaced: true },
  'codemate.io/v1alpha1/CodeMate': { plural: 'codemates', namespaced: true },
  'codemate.io/v1alpha1/CodeMateMessage': { plural: 'codematemessages', namespaced: true },
  'apps/v1/Deployment': { plural: 'deployments', namespaced: true },
  'rbac.authorization.k8s.io/v1/Role': { plural: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { plural: 'rolebindings', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { plural: 'clusterroles', namespaced: false },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { plural: 'clusterrolebindings', namespaced: false },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': {
    plural: 'customresourcedefinitions',
    namespaced: false,
  },
  'storage.k8s.io/v1/StorageClass': { plural: 'storageclasses', namespaced: false },
};

export type { ClusterInfo } from './kubeHttp.js';

export interface KubeLoadOptions extends ConnectionOptions {
  /** Bounds each request (not watches); default 60 s. */
  timeoutMs?: number;
}

export class Kube {
  readonly http: KubeHttp;
  private readonly discovered = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(connection: Connection, timeoutMs?: number) {
    this.http = new KubeHttp(connection, timeoutMs);
  }

  static load(target: KubeTarget = {}, options: KubeLoadOptions = {}): Kube {
    const light = loadConnection(target, options);
    if (light) return new Kube(light, options.timeoutMs);
    const config = new (sdk().KubeConfig)();
    if (target.kubeconfig) config.loadFromFile(target.kubeconfig);
    else config.loadFromDefault();
    if (target.context) config.setCurrentContext(target.context);
    return new Kube(new SdkConnection(config), options.timeoutMs);
  }

  get connection(): Connection {
    return this.http.connection;
  }

  /** The same server and CA, authenticated by a bearer token, e.g. a ServiceAccount's. */
  withToken(token: string): Kube {
    const { cluster } = this.connection;
    const tls: https.AgentOptions = {
      ...(cluster.ca ? { ca: cluster.ca } : {}),
      rejectUnauthorized: !cluster.insecure,
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
    };
    return new Kube({
      cluster,
      defaultNamespace: this.defaultNamespace,
      authorize: () => Promise.resolve({ headers: { authorization: `Bearer ${token}` }, tls }),
    });
  }

  get server(): string {
    return this.connection.cluster.server;
  }

  get defaultNamespace(): string {
    return this.connection.defaultNamespace;
  }

  /** The URL path of a kind's collection (and of one object, with a name). */
  async path(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name?: string,
  ): Promise<string> {
    const info = await this.resource(apiVersion, kind);
    const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${root}${ns}/${info.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  private async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const found = known[`${apiVersion}/${kind}`];
    if (found) return found;
    let resources = this.discovered.get(apiVersion);
    if (!resources) {
      resources = this.http
        .request<{ resources?: Array<{ name: string; kind: string; namespaced: boolean }> }>(
          'GET',
          apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`,
        )
        .then(
          (list) =>
            new Map(
              (list.resources ?? [])
                .filter((r) => !r.name.includes('/'))
                .map((r) => [r.kind, { plural: r.name, namespaced: r.namespaced }]),
            ),
        );
      this.discovered.set(apiVersion, resources);
      resources.catch(() => this.discovered.delete(apiVersion));
    }
    const info = (await resources).get(kind);
    if (!info) {
      // A custom resource whose definition is not established yet: ask again next time, not the cache.
      if (this.discovered.get(apiVersion) === resources) this.discovered.delete(apiVersion);
      throw new Error(`the server does not serve kind ${kind} in ${apiVersion}`);
    }
    return info;
  }

  /** An object's own URL; a namespaced object without a namespace is in the default one. */
  private async objectPath(object: KubeObject): Promise<string> {
    const { name, namespace } = object.metadata;
    return this.path(object.apiVersion, object.kind, namespace ?? this.defaultNamespace, name);
  }

  /** Server-side apply, forcing ownership of the fields we set; `dryRun` validates without storing. */
  async apply<T extends KubeObject>(
    object: T,
    fieldManager = 'codemate',
    options: { dryRun?: boolean } = {},
  ): Promise<T & { metadata: ObjectMeta }> {
    return this.http.request('PATCH', await this.objectPath(object), {
      body: object,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true, ...(options.dryRun ? { dryRun: 'All' } : {}) },
    });
  }

  async create<T extends KubeObject>(object: T): Promise<T & { metadata: ObjectMeta }> {
    const { namespace } = object.metadata;
    return this.http.request(
      'POST',
      await this.path(object.apiVersion, object.kind, namespace ?? this.defaultNamespace),
      { body: object },
    );
  }

  async get<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T> {
    return this.http.request(
      'GET',
      await this.path(apiVersion, kind, namespace ?? this.defaultNamespace, name),
    );
  }

  async list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: { labelSelector?: string | undefined; fieldSelector?: string | undefined } = {},
  ): Promise<T[]> {
    return (await this.listWithVersion(apiVersion, kind, namespace, options)).items as T[];
  }

  /** A list with its resourceVersion, as informers need it. Items get their kind, as in a get. */
  async listWithVersion(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: { labelSelector?: string | undefined; fieldSelector?: string | undefined } = {},
  ): Promise<{ items: KubeObject[]; metadata: { resourceVersion?: string } }> {
    const answer = await this.http.request<{
      items?: KubeObject[];
      metadata?: { resourceVersion?: string };
    }>('GET', await this.path(apiVersion, kind, namespace), {
      query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
    });
    const items = answer.items ?? [];
    for (const item of items) {
      item.apiVersion = apiVersion;
      item.kind = kind;
    }
    return { items, metadata: answer.metadata ?? {} };
  }

  /** Watches a collection from a resourceVersion (see KubeHttp.watch). */
  async watch(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    query: Record<string, string | number | boolean | undefined>,
    handlers: WatchHandlers,
    idleMs: number,
  ): Promise<{ abort(): void }> {
    return this.http.watch(await this.path(apiVersion, kind, namespace), query, handlers, idleMs);
  }

  /** Replaces an object; its metadata.resourceVersion makes the write conditional (409 on a race). */
  async replace<T extends KubeObject>(object: T): Promise<T> {
    return this.http.request('PUT', await this.objectPath(object), { body: object });
  }

  /**
   * Merge-patches the status subresource of a custom resource. With a resourceVersion the write is
   * conditional: 409 Conflict when the object changed since it was read.
   */
  async patchStatus(
    ref: { group: string; version: string; plural: string; namespace: string; name: string },
    status: unknown,
    resourceVersion?: string,
  ): Promise<KubeObject & { metadata: ObjectMeta }> {
    const { group, version, plural, namespace, name } = ref;
    return this.http.request(
      'PATCH',
      `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}/status`,
      {
        body: resourceVersion ? { metadata: { resourceVersion }, status } : { status },
        contentType: 'application/merge-patch+json',
      },
    );
  }

  /** Merge-patches the status subresource of a core or built-in resource, e.g. a pod in tests. */
  async patchStatusRaw(
    groupVersion: string,
    plural: string,
    namespace: string,
    name: string,
    status: unknown,
  ): Promise<void> {
    if (groupVersion !== 'v1' || plural !== 'pods') throw new Error('patchStatusRaw supports v1 pods');
    await this.http.request(
      'PATCH',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/status`,
      { body: { status }, contentType: 'application/merge-patch+json' },
    );
  }

  /** Merge-patches an object's main resource (spec, metadata). */
  async mergePatch<T extends KubeObject>(object: T): Promise<T> {
    return this.http.request('PATCH', await this.objectPath(object), {
      body: object,
      contentType: 'application/merge-patch+json',
    });
  }

  /** Records a core/v1 Event about an object, as `kubectl describe` shows them. */
  async recordEvent(
    involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string },
    event: { type: 'Normal' | 'Warning'; reason: string; message: string },
    component: string,
  ): Promise<void> {
    const now = new Date().toISOString();
    await this.create({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${involved.name}.${randomBytes(8).toString('hex')}`, namespace: involved.namespace },
      involvedObject: involved,
      type: event.type,
      reason: event.reason,
      message: event.message.slice(0, 1024),
      source: { component },
      reportingComponent: component,
      reportingInstance: component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }

  /** Deletes with background propagation, and the object's own grace period unless given; a 404 counts as done. */
  async delete(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
    options: { gracePeriodSeconds?: number } = {},
  ): Promise<void> {
    try {
      await this.http.request(
        'DELETE',
        await this.path(apiVersion, kind, namespace ?? this.defaultNamespace, name),
        {
          query: { propagationPolicy: 'Background', gracePeriodSeconds: options.gracePeriodSeconds },
        },
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * A token for a ServiceAccount (TokenRequest API), e.g. to act as it in tests. Bound to a pod, as a
   * kubelet asks for one, it stops working when that pod is deleted.
   */
  async serviceAccountToken(
    namespace: string,
    name: string,
    expirationSeconds = 3600,
    boundPod?: { name: string; uid: string },
  ): Promise<string> {
    const answer = await this.http.request<{ status?: { token?: string } }>(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            audiences: [],
            expirationSeconds,
            ...(boundPod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', ...boundPod } } : {}),
          },
        },
      },
    );
    return answer.status?.token ?? '';
  }

  /**
   * The text of a kubeconfig for this server and CA that authenticates with `token` (a ServiceAccount's),
   * with `namespace` as its default when given. JSON, which every YAML reader reads.
   */
  tokenKubeconfig(token: string, namespace?: string): string {
    const { cluster } = this.connection;
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'cluster',
          cluster: {
            server: cluster.server,
            ...(cluster.ca ? { 'certificate-authority-data': cluster.ca.toString('base64') } : {}),
            ...(cluster.insecure ? { 'insecure-skip-tls-verify': true } : {}),
            ...(cluster.tlsServerName ? { 'tls-server-name': cluster.tlsServerName } : {}),
          },
        },
      ],
      users: [{ name: 'service-account', user: { token } }],
      contexts: [
        {
          name: 'ctx',
          context: { cluster: 'cluster', user: 'service-account', ...(namespace ? { namespace } : {}) },
        },
      ],
      'current-context': 'ctx',
    };
    return `${JSON.stringify(config, null, 2)}\n`;
  }

  /** GET on a raw API path such as /readyz or /version, with this config's credentials. */
  async raw(path: string): Promise<{ status: number; body: string }> {
    return this.http.send('GET', path, { timeoutMs: 5000 });
  }

  /**
   * What the SDK's exec and log clients read of a KubeConfig: the cluster, and the credentials as
   * request options (exec.ts hands this to them in place of a KubeConfig).
   */
  sdkConfig(): {
    getCurrentCluster(): { name: string; server: string; skipTLSVerify: boolean };
    applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
    applyToFetchOptions(options: object): Promise<{ agent?: http.Agent; headers: Headers }>;
  } {
    const { cluster } = this.connection;
    const connection = this.connection;
    return {
      getCurrentCluster: () => ({ name: 'cluster', server: cluster.server, skipTLSVerify: cluster.insecure }),
      async applyToHTTPSOptions(options) {
        const auth = await connection.authorize();
        Object.assign(options, auth.tls);
        options.headers = { ...(options.headers as Record<string, string>), ...auth.headers };
      },
      async applyToFetchOptions() {
        const auth = await connection.authorize();
        return { ...(auth.agent ? { agent: auth.agent } : {}), headers: new Headers(auth.headers) };
      },
    };
  }
}
