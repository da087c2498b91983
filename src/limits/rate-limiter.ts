/**
 * Token buckets keyed by a string (an API key's name, an identity, a client address). Each key
 * may spend `perSecond` tokens a second with bursts of up to one second's worth; `perSecond` 0
 * means no limit. Memory is bounded: a full bucket carries no information and is dropped, and past
 * `maxKeys` the oldest buckets go first (a flood of new keys cannot grow the map without bound).
 */
export class RateLimiter {
  readonly perSecond: number;
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perSecond: number, opts: { now?: () => number; maxKeys?: number } = {}) {
    this.perSecond = perSecond;
    this.#capacity = Math.max(1, perSecond);
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? RATE_LIMITER_MAX_KEYS;
  }

  /** Spends one token of `key`: 0 when allowed, else the seconds to wait (for `Retry-After`). */
  take(key: string): number {
    if (this.perSecond <= 0) return 0;
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#sweep(now);
      b = { tokens: this.#capacity, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#capacity, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    const fullAfterMs = (this.#capacity / this.perSecond) * 1000;
    for (const [k, b] of this.#buckets) if (now - b.at >= fullAfterMs) this.#buckets.delete(k);
    // Still full of live buckets: drop the oldest tenth (Map order is insertion order).
    let drop = this.#buckets.size >= this.#maxKeys ? Math.ceil(this.#maxKeys / 10) : 0;
    for (const k of this.#buckets.keys()) {
      if (drop-- <= 0) break;
      this.#buckets.delete(k);
    }
  }
}

/** Buckets one limiter keeps at most; past it full and then the oldest buckets are dropped. */
export const RATE_LIMITER_MAX_KEYS = 100_000;

/**
 * Counts what is open per key (connections per client address, per identity). `max` 0 means no
 * limit. A key's entry disappears when its count returns to zero.
 */
export class OpenCounter {
  readonly max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    this.max = max;
  }

  /** Counts one more for `key`, or returns false (and counts nothing) when it is at the limit. */
  acquire(key: string): boolean {
    const n = this.#open.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.#open.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.#open.get(key);
    if (n === undefined) return;
    if (n <= 1) this.#open.delete(key);
    else this.#open.set(key, n - 1);
  }

  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}
