/**
 * The only module (with exec.ts) that touches @kubernetes/client-node. Everything else sees plain
 * Kubernetes objects and the small `Kube` surface below, and asks `isNotFound`/`isConflict`/... instead
 * of reading SDK error shapes.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  loadYaml,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import https from 'node:https';
import { isNotFound } from './kubeErrors.js';

export {
  isConflict,
  isForbidden,
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

export interface KubeTarget {
  /** Path to a kubeconfig; default as kubectl: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

/**
 * The SDK serializes built-in kinds from its own TypeScript field names (xKubernetesValidations), and
 * silently drops wire names (x-kubernetes-validations) it does not know. Round-tripping through its YAML
 * loader turns wire-format JSON into the typed form, so nothing is lost on writes.
 */
function typed<T extends KubeObject>(object: T): KubernetesObject {
  return loadYaml<KubernetesObject>(JSON.stringify(object));
}

/**
 * @kubernetes/client-node 1.4 builds a new https.Agent for every request, so every call pays a TCP and TLS
 * handshake: measured, about 65 creates/s against about 175/s over kept-alive connections, which capped
 * the webhook's acknowledgements. One keep-alive agent per TLS identity (server, CA, client certificate)
 * restores connection reuse; a rotated certificate gets a new agent.
 */
function reuseConnections(config: KubeConfig): void {
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
      options.timeout,
    ]
      .map((part) => String(part ?? ''))
      .join('\0');
    const key = createHash('sha256').update(identity).digest('hex');
    let agent = agents.get(key);
    if (!agent) {
      agent = create(cluster, { ...options, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
}

export class Kube {
  readonly config: KubeConfig;
  private readonly objects: KubernetesObjectApi;

  constructor(config: KubeConfig) {
    this.config = config;
    reuseConnections(config);
    this.objects = KubernetesObjectApi.makeApiClient(config);
  }

  static load(target: KubeTarget = {}): Kube {
    const config = new KubeConfig();
    if (target.kubeconfig) config.loadFromFile(target.kubeconfig);
    else config.loadFromDefault();
    if (target.context) config.setCurrentContext(target.context);
    return new Kube(config);
  }

  /** Wraps a bearer token for the same server and CA, e.g. a ServiceAccount's. */
  withToken(token: string, user = 'token-user'): Kube {
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [cluster],
      users: [{ name: user, token }],
      contexts: [{ name: 'ctx', cluster: cluster.name, user }],
      currentContext: 'ctx',
    });
    return new Kube(config);
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '';
  }

  get defaultNamespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace ?? 'default';
  }

  /** Server-side apply, forcing ownership of the fields we set; `dryRun` validates without storing. */
  async apply<T extends KubeObject>(
    object: T,
    fieldManager = 'codemate',
    options: { dryRun?: boolean } = {},
  ): Promise<T & { metadata: ObjectMeta }> {
    return (await this.objects.patch(
      typed(object),
      undefined,
      options.dryRun ? 'All' : undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    )) as T & { metadata: ObjectMeta };
  }

  async create<T extends KubeObject>(object: T): Promise<T & { metadata: ObjectMeta }> {
    return (await this.objects.create(typed(object))) as T & { metadata: ObjectMeta };
  }

  async get<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T> {
    return (await this.objects.read({ apiVersion, kind, metadata: { name, namespace } })) as unknown as T;
  }

  async list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: { labelSelector?: string | undefined; fieldSelector?: string | undefined } = {},
  ): Promise<T[]> {
    return (await this.listWithVersion(apiVersion, kind, namespace, options)).items as T[];
  }

  /** Replaces an object; its metadata.resourceVersion makes the write conditional (409 on a race). */
  async replace<T extends KubeObject>(object: T): Promise<T> {
    return (await this.objects.replace(typed(object))) as T;
  }

  /** Merge-patches the status subresource of a custom resource. */
  /**
   * Merge-patches the status subresource of a custom resource. With a resourceVersion the write is
   * conditional: 409 Conflict when the object changed since it was read.
   */
  async patchStatus(
    ref: { group: string; version: string; plural: string; namespace: string; name: string },
    status: unknown,
    resourceVersion?: string,
  ): Promise<KubeObject & { metadata: ObjectMeta }> {
    return (await this.config
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObjectStatus(
        { ...ref, body: resourceVersion ? { metadata: { resourceVersion }, status } : { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as KubeObject & { metadata: ObjectMeta };
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
    await this.config
      .makeApiClient(CoreV1Api)
      .patchNamespacedPodStatus(
        { name, namespace, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
  }

  /** Merge-patches an object's main resource (spec, metadata). */
  async mergePatch<T extends KubeObject>(object: T): Promise<T> {
    return (await this.objects.patch(
      typed(object),
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    )) as T;
  }

  /** Records a core/v1 Event about an object, as `kubectl describe` shows them. */
  async recordEvent(
    involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string },
    event: { type: 'Normal' | 'Warning'; reason: string; message: string },
    component: string,
  ): Promise<void> {
    const now = new Date().toISOString();
    await this.objects.create({
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
    } as KubernetesObject);
  }

  /** A list with its resourceVersion, as informers need it. */
  async listWithVersion(
    apiVersion: string,
    kind: string,
    namespace?: string,
    options: { labelSelector?: string | undefined; fieldSelector?: string | undefined } = {},
  ): Promise<{ items: KubeObject[]; metadata: { resourceVersion?: string } }> {
    const result = await this.objects.list(
      apiVersion,
      kind,
      namespace,
      undefined,
      undefined,
      undefined,
      options.fieldSelector,
      options.labelSelector,
    );
    return result as unknown as { items: KubeObject[]; metadata: { resourceVersion?: string } };
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
      await this.objects.delete(
        { apiVersion, kind, metadata: { name, namespace } },
        undefined,
        undefined,
        options.gracePeriodSeconds,
        undefined,
        'Background',
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
    const response = await this.config.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      namespace,
      name,
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: [],
          expirationSeconds,
          ...(boundPod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', ...boundPod } } : {}),
        },
      },
    });
    return response.status?.token ?? '';
  }

  /**
   * The text of a kubeconfig for this server and CA that authenticates with `token` (a ServiceAccount's),
   * with `namespace` as its default when given.
   */
  tokenKubeconfig(token: string, namespace?: string): string {
    const config = this.withToken(token, 'service-account').config;
    const context = config.getContextObject(config.getCurrentContext())!;
    if (namespace) config.contexts = [{ ...context, namespace }];
    return config.exportConfig();
  }

  /** GET on a raw API path such as /readyz or /version, with this config's credentials. */
  async raw(path: string): Promise<{ status: number; body: string }> {
    const options: https.RequestOptions = {};
    await this.config.applyToHTTPSOptions(options);
    const url = new URL(path, this.server);
    return new Promise((resolve, reject) => {
      const req = https.request(url, { ...options, method: 'GET', timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${url.href} timed out`)));
      req.on('error', reject);
      req.end();
    });
  }
}
