import type { DeliveryStore } from '../../core/delivery-store.js';
import type { Logger } from '../../observability/logger.js';

/** The name of the lease whose holder plans deliveries (DeliveryStore.acquireLease). */
export const PLANNER_LEASE = 'planner';
/**
 * Renewals per lease period: the holder renews every third of it, so one slow renewal (a busy
 * disk, a long GC pause) does not lose the lease, and a dead holder is replaced within one period.
 */
export const PLANNER_LEASE_RENEWALS = 3;

export interface PlannerLeaseOptions {
  store: DeliveryStore;
  /** This node's lease owner name (`host/pid/random`). */
  owner: string;
  /** milliseconds a lease lasts unless renewed (outbound.plannerLeaseSeconds). */
  ttlMs: number;
  now: () => number;
  log: Logger;
  /** The lease was won: start planning (from the cursor in the store). */
  gained: () => Promise<void>;
  /** The lease was lost or is being given back: stop planning, and resolve once nothing is in flight. */
  lost: () => Promise<void>;
}

/**
 * One planner per delivery store, whichever nodes share it: two planners would turn every event
 * into two deliveries. The node holding the `planner` lease plans; the others try to take it at
 * every renewal, and one of them does once the holder stops renewing (it died, or its store
 * writes fail). A holder that cannot renew in time stops planning before its lease can expire.
 * A holder stalled past its whole lease (frozen process) can overlap with its successor for at
 * most one batch: that batch's events are then delivered twice with the same `webhook-id`, which
 * at-least-once delivery allows and receivers deduplicate.
 */
export class PlannerLease {
  readonly #opts: PlannerLeaseOptions;
  #timer: NodeJS.Timeout | undefined;
  /** When the lease we hold runs out by our clock; undefined while we do not hold it. */
  #until: number | undefined;
  #tick: Promise<void> | undefined;
  #closed = false;

  constructor(opts: PlannerLeaseOptions) {
    this.#opts = opts;
  }

  /** True while this node holds the lease and plans. */
  get held(): boolean {
    return this.#until !== undefined;
  }

  /**
   * Tries to take the lease (and plans when it got it), then keeps trying or renewing. A planner
   * that fails to start here rejects, as a store that cannot be read fails the node's start.
   */
  async start(): Promise<void> {
    // Through #tick, so a close() during the first attempt waits for it.
    this.#tick = this.#attempt(true).finally(() => (this.#tick = undefined));
    await this.#tick;
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.#try(), this.#opts.ttlMs / PLANNER_LEASE_RENEWALS);
    this.#timer.unref();
  }

  #try(): Promise<void> {
    // One attempt at a time: a slow store must not stack renewals up.
    this.#tick ??= this.#attempt(false).finally(() => (this.#tick = undefined));
    return this.#tick;
  }

  async #attempt(rethrow: boolean): Promise<void> {
    if (this.#closed) return;
    const { store, owner, ttlMs, now, log } = this.#opts;
    const at = now();
    let got: boolean;
    try {
      got = await store.acquireLease(PLANNER_LEASE, owner, at, ttlMs);
    } catch (err) {
      log.error({ err }, 'outbound webhooks: could not take or renew the planner lease');
      // What we hold stays ours until it runs out; past the next renewal it might not be.
      got = this.#until !== undefined && now() + ttlMs / PLANNER_LEASE_RENEWALS < this.#until;
      if (got) return;
    }
    if (this.#closed) {
      // Closed while the store answered: a lease just taken is given back, not left to run out.
      if (got && this.#until === undefined) await store.releaseLease(PLANNER_LEASE, owner).catch(() => {});
      return;
    }
    if (got) {
      const was = this.#until;
      this.#until = at + ttlMs;
      if (was !== undefined) return;
      log.info('outbound webhooks: this node plans deliveries (it holds the planner lease)');
      try {
        await this.#opts.gained();
      } catch (err) {
        // Tried again at the next renewal; meanwhile the lease is held but nothing is planned.
        this.#until = undefined;
        await this.#opts.lost().catch(() => {});
        if (rethrow) throw err;
        log.error({ err }, 'outbound webhooks: the planner could not start');
      }
    } else if (this.#until !== undefined) {
      this.#until = undefined;
      log.warn('outbound webhooks: stopped planning (the planner lease was taken over or could not be renewed)');
      await this.#opts.lost().catch((err: unknown) => log.error({ err }, 'outbound webhooks: the planner did not stop cleanly'));
    }
  }

  /** Stops planning and gives the lease back, so another node takes over at once. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#tick;
    if (this.#until === undefined) return;
    this.#until = undefined;
    await this.#opts.lost();
    await this.#opts.store.releaseLease(PLANNER_LEASE, this.#opts.owner).catch((err: unknown) => {
      this.#opts.log.error({ err }, 'outbound webhooks: could not give the planner lease back; it runs out instead');
    });
  }
}
