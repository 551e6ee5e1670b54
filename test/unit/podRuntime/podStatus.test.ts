import { describe, expect, it } from 'vitest';
import { statusPatch, StatusWritePacer, type ObservedPod } from '../../../src/podRuntime/podStatus.js';

const now = new Date('2030-01-01T00:00:10Z');
const earlier = '2030-01-01T00:00:00Z';
const running = { state: 'running', ready: true, startedAt: earlier } as const;

/** A session pod as kwok's pod-ready stage leaves it, then changed by `status`. */
function pod(status: Partial<NonNullable<ObservedPod['status']>> = {}, ready = true): ObservedPod {
  const flag = ready ? 'True' : 'False';
  return {
    spec: { containers: [{ name: 'session', image: 'codemate-session:dev' }] },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: earlier },
        { type: 'Initialized', status: 'True', lastTransitionTime: earlier },
        { type: 'Ready', status: flag, lastTransitionTime: earlier },
        { type: 'ContainersReady', status: flag, lastTransitionTime: earlier },
      ],
      containerStatuses: [
        {
          name: 'session',
          image: 'codemate-session:dev',
          ready,
          restartCount: 0,
          state: { running: { startedAt: earlier } },
        },
      ],
      ...status,
    },
  };
}

describe('statusPatch', () => {
  it('writes nothing when the pod already tells the truth', () => {
    expect(statusPatch(pod(), running, now)).toBeUndefined();
    expect(statusPatch(pod({}, false), { ...running, ready: false }, now)).toBeUndefined();
  });

  it('reasserts Ready after the node-lifecycle controller marked the pod not ready', () => {
    // MarkPodsNotReady flips the Ready condition only.
    const marked = pod();
    marked.status!.conditions![2] = { type: 'Ready', status: 'False', lastTransitionTime: earlier };
    const patch = statusPatch(marked, running, now) as {
      conditions: Array<{ type: string; status: string; lastTransitionTime: string }>;
    };
    expect(patch).toBeDefined();
    expect(patch).not.toHaveProperty('phase');
    // Every other condition is kept (a merge patch replaces the list), in order, with its times.
    expect(patch.conditions.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['PodScheduled', 'True', earlier],
      ['Initialized', 'True', earlier],
      ['Ready', 'True', now.toISOString()],
      ['ContainersReady', 'True', earlier],
    ]);
  });

  it('corrects the readiness kwok claims before the session has passed its probe', () => {
    const patch = statusPatch(pod(), { ...running, ready: false }, now) as {
      conditions: Array<{ type: string; status: string }>;
      containerStatuses: Array<{ ready: boolean; started: boolean; state: object }>;
    };
    expect(patch.conditions.filter((c) => c.status === 'False').map((c) => c.type)).toEqual([
      'Ready',
      'ContainersReady',
    ]);
    expect(patch.containerStatuses).toEqual([
      expect.objectContaining({ ready: false, started: true, state: { running: { startedAt: earlier } } }),
    ]);
  });

  it('adds the readiness conditions and container status a pod does not have yet', () => {
    const patch = statusPatch(
      pod({ conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: [] }),
      running,
      now,
    ) as { conditions: Array<{ type: string }>; containerStatuses: Array<{ image: string }> };
    expect(patch.conditions.map((c) => c.type)).toEqual(['PodScheduled', 'Ready', 'ContainersReady']);
    expect(patch.containerStatuses[0]!.image).toBe('codemate-session:dev');
  });

  it('reports an exit once, as a kubelet would: phase, reason and the last line', () => {
    const exited = {
      state: 'exited',
      exitCode: 12,
      message: 'codemate: cannot clone x',
      finishedAt: now.toISOString(),
    } as const;
    const patch = statusPatch(pod(), exited, now) as {
      phase: string;
      containerStatuses: Array<{ ready: boolean; state: { terminated: object } }>;
    };
    expect(patch.phase).toBe('Failed');
    expect(patch.containerStatuses[0]!.ready).toBe(false);
    expect(patch.containerStatuses[0]!.state.terminated).toEqual({
      exitCode: 12,
      reason: 'Error',
      message: 'codemate: cannot clone x',
      finishedAt: now.toISOString(),
    });
    expect(statusPatch(pod({ phase: 'Failed' }), exited, now)).toBeUndefined();
    expect((statusPatch(pod(), { ...exited, exitCode: 0 }, now) as { phase: string }).phase).toBe(
      'Succeeded',
    );
  });

  it('reports a container it cannot run as waiting with CreateContainerError, never ready, and once', () => {
    const unsupported = { state: 'unsupported', message: 'not this image' } as const;
    const patch = statusPatch(pod(), unsupported, now) as {
      phase?: string;
      conditions: Array<{ type: string; status: string }>;
      containerStatuses: Array<{ name: string; ready: boolean; started: boolean; state: object }>;
    };
    expect(patch.phase).toBeUndefined();
    expect(patch.conditions.find((c) => c.type === 'Ready')?.status).toBe('False');
    expect(patch.containerStatuses).toEqual([
      expect.objectContaining({
        name: 'session',
        ready: false,
        started: false,
        state: { waiting: { reason: 'CreateContainerError', message: 'not this image' } },
      }),
    ]);
    expect(statusPatch(pod(patch as object, false), unsupported, now)).toBeUndefined();
    expect(statusPatch(pod(patch as object, false), { ...unsupported, message: 'other' }, now)).toBeDefined();
  });
});

describe('StatusWritePacer', () => {
  it('lets a single correction through at once and spaces out a fight, up to the cap', () => {
    const pacer = new StatusWritePacer(30_000, 60_000);
    let t = 0;
    const gaps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const wait = pacer.waitMs('ns/pod', t);
      gaps.push(wait);
      t += wait;
      pacer.wrote('ns/pod', t);
    }
    expect(gaps).toEqual([0, 0, 1000, 2000, 4000, 8000, 16_000, 30_000]);
  });

  it('starts over after a quiet minute, and per pod', () => {
    const pacer = new StatusWritePacer(30_000, 60_000);
    pacer.wrote('a', 0);
    pacer.wrote('a', 10);
    expect(pacer.waitMs('a', 20)).toBe(990);
    expect(pacer.waitMs('b', 20)).toBe(0);
    pacer.wrote('a', 100_000);
    expect(pacer.waitMs('a', 100_000)).toBe(0);
  });
});
