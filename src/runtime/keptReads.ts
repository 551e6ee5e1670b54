/**
 * Reads kept for a while, by key: the same read asked for again within `keepMs` gets the one in flight
 * or done, instead of another request. A failed read is not kept, nor one that `keep` refuses (e.g. a
 * Secret not found, so that creating it is seen at once). The operator keeps its Secret reads here
 * (controller.ts, githubClients.ts).
 */
export class KeptReads<T> {
  private readonly reads = new Map<string, { at: number; read: Promise<T> }>();

  constructor(
    private readonly keepMs: number,
    private readonly keep: (value: T) => boolean = () => true,
    private readonly max = 10_000,
  ) {}

  get(key: string, read: () => Promise<T>): Promise<T> {
    const kept = this.reads.get(key);
    if (kept && performance.now() - kept.at < this.keepMs) return kept.read;
    if (this.reads.size >= this.max) this.reads.clear();
    const fresh = read();
    this.reads.set(key, { at: performance.now(), read: fresh });
    const drop = () => {
      if (this.reads.get(key)?.read === fresh) this.reads.delete(key);
    };
    fresh.then((value) => {
      if (!this.keep(value)) drop();
    }, drop);
    return fresh;
  }

  forget(key: string): void {
    this.reads.delete(key);
  }

  clear(): void {
    this.reads.clear();
  }
}
