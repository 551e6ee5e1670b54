/**
 * What the local pod runtime reports about a session pod, as pure functions of the pod and the truth
 * about its process. A kubelet does not set a pod's status once: its status manager compares what it
 * knows with what the apiserver holds and writes again whenever they differ. The node-lifecycle
 * controller marks every pod on a node not ready when the node's lease goes stale, and kwok's pod-ready
 * stage marks pods ready before anything runs in them; both are overwritten here with the truth.
 */
export interface PodCondition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ContainerStatus {
  name: string;
  image?: string;
  imageID?: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: {
    running?: { startedAt?: string };
    terminated?: { exitCode: number; reason?: string; message?: string; finishedAt?: string };
    waiting?: { reason?: string; message?: string };
  };
}

export interface ObservedPod {
  spec: { containers: Array<{ name: string; image?: string }> };
  status?: { phase?: string; conditions?: PodCondition[]; containerStatuses?: ContainerStatus[] };
}

/**
 * The pod's process as the runtime knows it: running (ready or not), exited, or never started because the
 * runtime cannot run its container (hostPrograms.ts), which a kubelet reports as CreateContainerError.
 */
export type SessionTruth =
  | { state: 'running'; ready: boolean; startedAt: string }
  | { state: 'exited'; exitCode: number; message: string; finishedAt: string }
  | { state: 'unsupported'; message: string };

const notCreated = 'CreateContainerError';

const readinessConditions = ['Ready', 'ContainersReady'];

export function isTerminal(phase: string | undefined): boolean {
  return phase === 'Failed' || phase === 'Succeeded';
}

/**
 * The merge patch for the pod's status that makes it tell the truth, or undefined when it already does.
 * JSON merge patches replace lists, so the patch carries the whole conditions and container status lists,
 * with the other entries as observed.
 */
export function statusPatch(pod: ObservedPod, truth: SessionTruth, now: Date): object | undefined {
  const status = pod.status ?? {};
  // The runtime runs pods of one container.
  const container = pod.spec.containers[0];
  const observed = status.containerStatuses?.find((c) => c.name === container?.name);
  const ready = truth.state === 'running' && truth.ready;
  const conditionStatus = ready ? 'True' : 'False';
  const conditionsAgree = readinessConditions.every(
    (type) => status.conditions?.find((c) => c.type === type)?.status === conditionStatus,
  );
  if (truth.state === 'running') {
    const containerAgrees = observed?.ready === ready && observed.state?.running !== undefined;
    if (conditionsAgree && containerAgrees) return undefined;
  } else if (truth.state === 'unsupported') {
    const waiting = observed?.state?.waiting;
    if (conditionsAgree && waiting?.reason === notCreated && waiting.message === truth.message)
      return undefined;
  } else if (isTerminal(status.phase)) return undefined;

  const at = now.toISOString();
  const conditions = (status.conditions ?? []).filter((c) => !readinessConditions.includes(c.type));
  for (const type of readinessConditions) {
    const previous = status.conditions?.find((c) => c.type === type);
    conditions.push({
      type,
      status: conditionStatus,
      lastTransitionTime: previous?.status === conditionStatus ? (previous.lastTransitionTime ?? at) : at,
    });
  }
  const containerStatus: ContainerStatus = {
    name: container?.name ?? '',
    image: observed?.image ?? container?.image ?? 'local',
    imageID: observed?.imageID ?? '',
    ready,
    started: truth.state === 'running',
    restartCount: observed?.restartCount ?? 0,
    state:
      truth.state === 'running'
        ? { running: { startedAt: observed?.state?.running?.startedAt ?? truth.startedAt } }
        : truth.state === 'unsupported'
          ? { waiting: { reason: notCreated, message: truth.message } }
          : {
              terminated: {
                exitCode: truth.exitCode,
                reason: truth.exitCode === 0 ? 'Completed' : 'Error',
                message: truth.message.slice(0, 1024),
                finishedAt: truth.finishedAt,
              },
            },
  };
  const containerStatuses = [
    ...(status.containerStatuses ?? []).filter((c) => c.name !== containerStatus.name),
    containerStatus,
  ];
  return {
    ...(truth.state === 'exited' ? { phase: truth.exitCode === 0 ? 'Succeeded' : 'Failed' } : {}),
    conditions,
    containerStatuses,
  };
}

/**
 * Paces status writes for one pod. A single correction goes out at once; corrections that keep coming
 * (another writer fighting over the same fields) are spaced out, doubling from 1 s up to `maxMs`, so that a
 * fight costs one write per `maxMs` instead of a hot loop. A pod that stays quiet for `quietMs` starts over.
 */
export class StatusWritePacer {
  private readonly writes = new Map<string, { at: number; delayMs: number }>();

  constructor(
    private readonly maxMs = 30_000,
    private readonly quietMs = 60_000,
  ) {}

  /** How long to wait before the next write for `key` may go out; 0 means now. */
  waitMs(key: string, now: number): number {
    const last = this.writes.get(key);
    return last ? Math.max(0, last.at + last.delayMs - now) : 0;
  }

  wrote(key: string, now: number): void {
    const last = this.writes.get(key);
    const delayMs =
      last && now - last.at < this.quietMs ? Math.min(this.maxMs, Math.max(1000, last.delayMs * 2)) : 0;
    this.writes.set(key, { at: now, delayMs });
  }

  forget(key: string): void {
    this.writes.delete(key);
  }
}
