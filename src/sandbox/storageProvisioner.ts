/**
 * The sandbox's storage: a default StorageClass, `codemate-hostpath`, and the provisioner behind it, which
 * gives each claim a directory under the sandbox's state directory as a standard hostPath
 * PersistentVolume. A real kubelet mounts that volume itself, and the local pod runtime runs the session
 * in its directory, so a PVC-backed session keeps its workspace in both runtimes.
 *
 * It speaks the external-provisioner protocol that kube-controller-manager's PV binder drives (as
 * sig-storage-lib-external-provisioner does): the binder names the provisioner in the claim's
 * `volume.kubernetes.io/storage-provisioner` annotation once the claim needs a volume, this creates the
 * volume with a claimRef to the claim, and the binder binds the two. When the claim goes, the binder marks
 * the volume Released; with reclaimPolicy Delete this removes the directory, then the volume.
 *
 * WaitForFirstConsumer, not Immediate: a hostPath volume lives on one node. The scheduler picks the node
 * first (`volume.kubernetes.io/selected-node`), the volume gets node affinity to it, and every later pod of
 * the claim (a resumed session) is placed where its files are, whichever nodes the sandbox has.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isConflict, Kube, statusMessage, type KubeObject } from '../clients/kube.js';
import { createLogger, type Logger } from '../observability/log.js';
import { on, runController, type RunningController } from '../runtime/controller.js';
import { PermanentError } from '../runtime/errors.js';
import { informerSupervision, watch, type Watched } from '../runtime/informers.js';
import { WorkQueue } from '../runtime/queue.js';
import { terminationSignal } from '../runtime/shutdown.js';

const storageClassName = 'codemate-hostpath';
export const provisionerName = 'codemate.io/hostpath';

const storageClass = {
  apiVersion: 'storage.k8s.io/v1',
  kind: 'StorageClass',
  metadata: {
    name: storageClassName,
    annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
  },
  provisioner: provisionerName,
  reclaimPolicy: 'Delete',
  volumeBindingMode: 'WaitForFirstConsumer',
};

const hostnameLabel = 'kubernetes.io/hostname';

const annotations = {
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  betaStorageProvisioner: 'volume.beta.kubernetes.io/storage-provisioner',
  selectedNode: 'volume.kubernetes.io/selected-node',
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
} as const;

export type Claim = KubeObject & {
  spec: {
    accessModes?: string[];
    resources?: { requests?: { storage?: string } };
    storageClassName?: string;
    volumeName?: string;
    volumeMode?: string;
  };
};

export type HostPathVolume = KubeObject & {
  spec: {
    capacity: { storage: string };
    accessModes: string[];
    persistentVolumeReclaimPolicy: string;
    storageClassName: string;
    volumeMode: 'Filesystem';
    hostPath: { path: string; type: 'Directory' };
    claimRef: {
      apiVersion: 'v1';
      kind: 'PersistentVolumeClaim';
      namespace: string;
      name: string;
      uid: string;
    };
    nodeAffinity?: {
      required: {
        nodeSelectorTerms: Array<{
          matchExpressions: Array<{ key: string; operator: 'In'; values: string[] }>;
        }>;
      };
    };
  };
  status?: { phase?: string };
};

/** The binder has handed this claim to us, and it has no volume yet. */
export function wantsVolume(claim: Claim): boolean {
  const provisioner =
    claim.metadata.annotations?.[annotations.storageProvisioner] ??
    claim.metadata.annotations?.[annotations.betaStorageProvisioner];
  return provisioner === provisionerName && !claim.spec.volumeName && !claim.metadata.deletionTimestamp;
}

/** `pvc-<claim uid>`, as external provisioners name volumes: one per claim, so creating it is idempotent. */
function volumeNameOf(claim: Claim): string {
  return `pvc-${claim.metadata.uid}`;
}

/** The node the scheduler chose for the claim's first pod (WaitForFirstConsumer); none with Immediate binding. */
export function selectedNodeOf(claim: Claim): string | undefined {
  return claim.metadata.annotations?.[annotations.selectedNode] || undefined;
}

/**
 * The volume for a claim: its directory under `root`, its size and access modes, bound to it by claimRef,
 * and on the node whose `kubernetes.io/hostname` label is `nodeHostname` (the label, not the node's name:
 * the scheduler matches a volume's node affinity against labels only).
 */
export function hostPathVolume(
  claim: Claim,
  {
    root,
    reclaimPolicy,
    nodeHostname,
  }: { root: string; reclaimPolicy: string; nodeHostname?: string | undefined },
): HostPathVolume {
  const name = volumeNameOf(claim);
  const { namespace = '', name: claimName = '', uid = '' } = claim.metadata;
  if (claim.spec.volumeMode === 'Block') throw new PermanentError('hostPath volumes are filesystems only');
  const storage = claim.spec.resources?.requests?.storage;
  if (!storage) throw new PermanentError('the claim requests no storage size');
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, annotations: { [annotations.provisionedBy]: provisionerName } },
    spec: {
      capacity: { storage },
      accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: reclaimPolicy,
      storageClassName: claim.spec.storageClassName ?? storageClassName,
      volumeMode: 'Filesystem',
      // Directory, not DirectoryOrCreate: a directory that is gone is lost data, and a pod that silently
      // started on an empty one would hide it.
      hostPath: { path: path.join(root, `${name}_${namespace}_${claimName}`), type: 'Directory' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: claimName, uid },
      ...(nodeHostname
        ? {
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: hostnameLabel, operator: 'In', values: [nodeHostname] }] },
                ],
              },
            },
          }
        : {}),
    },
  };
}

/** A volume of ours whose claim is gone and whose class says to delete it, with its directory under root. */
export function isReclaimable(volume: HostPathVolume, root: string): boolean {
  const dir = volume.spec.hostPath?.path;
  return (
    volume.metadata.annotations?.[annotations.provisionedBy] === provisionerName &&
    volume.status?.phase === 'Released' &&
    volume.spec.persistentVolumeReclaimPolicy === 'Delete' &&
    !volume.metadata.deletionTimestamp &&
    // Never remove a directory outside the provisioner's own, whatever a volume object says.
    dir !== undefined &&
    path.dirname(path.resolve(dir)) === root
  );
}

interface StorageProvisionerOptions {
  kube: Kube;
  /** Where volume directories live. */
  dir: string;
  logger: Logger;
}

/** Two controllers on one pair of caches: claims that want a volume, and volumes to reclaim. */
class StorageProvisioner {
  private readonly claims: Watched<Claim>;
  private readonly volumes: Watched<HostPathVolume>;
  private running: RunningController[] = [];

  constructor(private readonly options: StorageProvisionerOptions) {
    const supervision = informerSupervision(options.logger);
    this.claims = watch<Claim>(
      options.kube,
      { apiVersion: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims' },
      supervision,
    );
    this.volumes = watch<HostPathVolume>(
      options.kube,
      { apiVersion: 'v1', kind: 'PersistentVolume', plural: 'persistentvolumes' },
      supervision,
    );
  }

  async start(): Promise<void> {
    const { kube, logger } = this.options;
    await kube.apply(storageClass, 'codemate-sandbox');
    this.running.push(
      await runController({
        keyField: 'claim',
        what: 'provisioning',
        logger,
        queue: new WorkQueue(),
        sources: [
          on(this.claims, (_event, claim) =>
            wantsVolume(claim) ? `${claim.metadata.namespace}/${claim.metadata.name}` : undefined,
          ),
        ],
        reconcile: (key) => this.provision(key),
        onError: async ({ key, error, failures }) => {
          if (failures > 1) return;
          const [namespace = '', name = ''] = key.split('/');
          await kube.recordEvent(
            { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name, namespace },
            { type: 'Warning', reason: 'ProvisioningFailed', message: statusMessage(error) },
            'codemate-storage-provisioner',
          );
        },
        workers: 2,
        waitForSync: true,
      }),
      await runController({
        keyField: 'volume',
        what: 'reclaim',
        logger,
        queue: new WorkQueue(),
        sources: [on(this.volumes, (_event, volume) => volume.metadata.name)],
        reconcile: (name) => this.reclaim(name),
        workers: 1,
        waitForSync: true,
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.running.map((r) => r.stop()));
  }

  private async provision(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const claim = this.claims.get(name, namespace);
    if (!claim || !wantsVolume(claim) || this.volumes.get(volumeNameOf(claim))) return;
    const className = claim.spec.storageClassName ?? storageClassName;
    const claimClass = await this.options.kube.get<KubeObject & { reclaimPolicy?: string }>(
      'storage.k8s.io/v1',
      'StorageClass',
      className,
    );
    const nodeName = selectedNodeOf(claim);
    const node = nodeName ? await this.options.kube.get<KubeObject>('v1', 'Node', nodeName) : undefined;
    const volume = hostPathVolume(claim, {
      root: this.options.dir,
      reclaimPolicy: claimClass.reclaimPolicy ?? 'Delete',
      nodeHostname: node && (node.metadata.labels?.[hostnameLabel] ?? nodeName),
    });
    await mkdir(volume.spec.hostPath.path, { recursive: true });
    // Writable by any uid, as local-path-provisioner does: a hostPath volume gets no fsGroup ownership, and
    // a session container runs as uid 1000 while the sandbox may run as root.
    await chmod(volume.spec.hostPath.path, 0o777);
    try {
      await this.options.kube.create(volume);
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    this.options.logger.info(
      { claim: key, volume: volume.metadata.name, dir: volume.spec.hostPath.path },
      'provisioned a hostPath volume',
    );
  }

  private async reclaim(name: string): Promise<void> {
    const volume = this.volumes.get(name);
    if (!volume || !isReclaimable(volume, this.options.dir)) return;
    await rm(volume.spec.hostPath.path, { recursive: true, force: true, maxRetries: 5 });
    await this.options.kube.delete('v1', 'PersistentVolume', name);
    this.options.logger.info({ volume: name, dir: volume.spec.hostPath.path }, 'deleted a released volume');
  }
}

/** `codemate dev storage-provisioner`: runs until SIGTERM. */
export async function runStorageProvisioner(options: {
  dir: string;
  kubeconfig?: string | undefined;
  context?: string | undefined;
}): Promise<void> {
  const logger = createLogger({ name: 'codemate-storage-provisioner' });
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const kube = Kube.load({ kubeconfig: options.kubeconfig, context: options.context });
  const provisioner = new StorageProvisioner({ kube, dir, logger });
  await provisioner.start();
  await writeFile(path.join(dir, '.ready'), `${process.pid}\n`);
  logger.info({ dir, storageClass: storageClassName }, 'storage provisioner started');
  await terminationSignal();
  await provisioner.stop();
  logger.info('storage provisioner stopped');
}
