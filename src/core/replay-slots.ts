/**
 * Who may read the log's history now: at most `max` replays (resumes and `GET /v1/events`) run
 * at once on this node, and at most one per owner (a connection). The rest wait in arrival
 * order. A thundering herd of resumes after a restart, or one client asking for many, then
 * shares the node with everyone else instead of multiplying the reads that hold the event loop.
 */
export class ReplaySlots {
  readonly max: number;
  #running = 0;
  /** Owners with a replay running. */
  readonly #busy = new Set<object>();
  readonly #waiting: { owner: object; start: () => void }[] = [];

  /** `max` 0 means no node-wide limit (one per owner still holds). */
  constructor(max: number) {
    this.max = max;
  }

  /** Replays running now. */
  get running(): number {
    return this.#running;
  }

  /** Replays waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves, in turn, to the release of a slot for `owner`; call it exactly once when done. */
  acquire(owner: object): Promise<() => void> {
    return new Promise((resolve) => {
      this.#waiting.push({ owner, start: () => resolve(this.#releaser(owner)) });
      this.#startWaiting();
    });
  }

  #releaser(owner: object): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      this.#busy.delete(owner);
      this.#startWaiting();
    };
  }

  /** Starts the oldest waiting replays whose owner is free, while slots are. */
  #startWaiting(): void {
    for (let i = 0; i < this.#waiting.length && (this.max === 0 || this.#running < this.max); ) {
      const w = this.#waiting[i]!;
      if (this.#busy.has(w.owner)) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#running++;
      this.#busy.add(w.owner);
      w.start();
    }
  }
}
