/**
 * Remembers recent X-GitHub-Delivery ids and the answer each got, in a bounded LRU, so that a redelivery
 * (GitHub's "Redeliver" button, a proxy's retry, a replay) is answered without touching the apiserver.
 * Concurrent copies of one delivery share a single handling. Only successful answers are remembered: a
 * failed delivery, or one whose outcome may still change, must be handled again when it comes back.
 */
import type { Answer } from './answer.js';

export class ReplayCache {
  private readonly done = new Map<string, Answer>();
  private readonly inFlight = new Map<string, Promise<Answer>>();

  constructor(private readonly capacity: number) {}

  /** The answer for `id`: remembered, shared with a copy in flight, or from `handle`. */
  async answer(id: string | undefined, handle: () => Promise<Answer>): Promise<Answer & { replay: boolean }> {
    if (!id) return { ...(await handle()), replay: false };
    const remembered = this.done.get(id);
    if (remembered) {
      this.done.delete(id); // refresh its place in the LRU order
      this.done.set(id, remembered);
      return { ...remembered, replay: true };
    }
    const running = this.inFlight.get(id);
    if (running) return { ...(await running), replay: true };
    const handling = handle();
    this.inFlight.set(id, handling);
    try {
      const answer = await handling;
      if (answer.status < 300 && answer.final !== false) this.remember(id, answer);
      return { ...answer, replay: false };
    } finally {
      this.inFlight.delete(id);
    }
  }

  private remember(id: string, answer: Answer): void {
    this.done.set(id, answer);
    while (this.done.size > this.capacity) {
      const oldest = this.done.keys().next().value as string;
      this.done.delete(oldest);
    }
  }

  get size(): number {
    return this.done.size;
  }
}
