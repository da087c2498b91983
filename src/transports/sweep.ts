/** Slices a sweep period is cut into, at most (see `Sweep`). */
export const SWEEP_SLICES = 15;
/** milliseconds between two slices, at least: a short period is cut into fewer slices. */
export const SWEEP_SLICE_MIN_MS = 100;

/**
 * Visits every member of a collection once per period (heartbeats, pings), a slice at a time:
 * the period is cut into up to `SWEEP_SLICES` ticks and each tick visits its share of the
 * members. At 10,000 connections a visit that writes to a socket costs ~10 µs, so one visit of
 * all of them at once is a 100 ms stall of the event loop once per period: every event published
 * meanwhile waits for it, which is what a p99 latency shows. Spread out, it is a few
 * milliseconds per tick.
 *
 * Members are taken at the start of each period, in the collection's order, so each one is
 * visited once per period at about the same point of it; a member added during a period is
 * visited from the next one on. `visit` must skip members that have gone since.
 */
export class Sweep<T> {
  readonly #members: () => Iterable<T>;
  readonly #visit: (member: T) => void;
  readonly #slices: number;
  readonly #timer: NodeJS.Timeout;
  #round: T[] = [];
  #pos = 0;
  #tick = 0;

  constructor(periodMs: number, members: () => Iterable<T>, visit: (member: T) => void) {
    this.#members = members;
    this.#visit = visit;
    this.#slices = Math.max(1, Math.min(SWEEP_SLICES, Math.floor(periodMs / SWEEP_SLICE_MIN_MS)));
    this.#timer = setInterval(() => this.#next(), periodMs / this.#slices);
    this.#timer.unref();
  }

  #next(): void {
    if (this.#tick === 0) {
      this.#round = [...this.#members()];
      this.#pos = 0;
    }
    this.#tick = (this.#tick + 1) % this.#slices;
    // The last tick of a period takes whatever is left, so every member is visited in it.
    const end = this.#tick === 0 ? this.#round.length : Math.min(this.#round.length, this.#pos + Math.ceil(this.#round.length / this.#slices));
    for (let i = this.#pos; i < end; i++) this.#visit(this.#round[i]!);
    this.#pos = end;
    if (this.#tick === 0) this.#round = [];
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#round = [];
  }
}
