/**
 * Outcome writing: what became of leased deliveries (an attempt and its outcome, or a lease
 * given back) is written to the store in batches, one transaction for many, and reported back
 * once it is in the store so the slots it held can serve the next delivery.
 */
import type { Logger } from '../../observability/logger.js';
import type { Delivery, DeliveryStore, FinishedAttempt } from '../../core/delivery-store.js';

/**
 * Outcomes are written in batches: at most this many milliseconds after the first one, or at
 * once when FLUSH_BATCH are waiting. A commit costs about the same for 1 row as for 100. The
 * wait delays no request: a parallel endpoint's slot is free as soon as its answer is in.
 */
export const FLUSH_DELAY_MS = 10;
export const FLUSH_BATCH = 256;

/**
 * What became of a leased delivery: an attempt to record, or the lease to give back (due at
 * once, no attempt counted). `sent` says whether it still holds one of the endpoint's slots,
 * to be freed once it is written.
 */
export type Done =
  | { kind: 'finish'; sent: boolean; delivery: Delivery; result: FinishedAttempt }
  | { kind: 'release'; sent: boolean; delivery: Delivery };

export interface OutcomeWriterOptions {
  store: DeliveryStore;
  log: Logger;
  now: () => number;
  /** A batch is in the store (or could not be written: its leases run out instead). */
  onWritten: (batch: readonly Done[]) => void;
  /** Nothing more is waiting to be written. */
  onDrained: () => void;
}

export class OutcomeWriter {
  readonly #o: OutcomeWriterOptions;
  #done: Done[] = [];
  #flushing: Promise<void> | undefined;
  #flushSoon: (() => void) | undefined;

  constructor(opts: OutcomeWriterOptions) {
    this.#o = opts;
  }

  /** Queues an outcome; it is written with the next batch. */
  push(done: Done): void {
    this.#done.push(done);
    if (this.#done.length >= FLUSH_BATCH) this.#flushSoon?.();
    this.#schedule();
  }

  /**
   * Starts the next flush unless one runs. A flush that ends looks again: what was queued after
   * its last batch (from `onDrained`, say) would otherwise wait for an unrelated outcome.
   */
  #schedule(): void {
    if (this.#flushing || this.#done.length === 0) return;
    this.#flushing = new Promise<void>((resolve) => {
      const timer = setTimeout(go, FLUSH_DELAY_MS);
      function go() {
        clearTimeout(timer);
        resolve();
      }
      this.#flushSoon = go;
    })
      .then(() => {
        this.#flushSoon = undefined;
        return this.#flush();
      })
      .finally(() => {
        this.#flushing = undefined;
        this.#schedule();
      });
  }

  /** Resolves once every queued outcome is written. */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Writes a tick's outcomes in one transaction each for attempts and for leases given back. */
  async #flush(): Promise<void> {
    while (this.#done.length > 0) {
      const batch = this.#done;
      this.#done = [];
      const finished: FinishedAttempt[] = [];
      const released: { id: number; claim: number }[] = [];
      for (const x of batch) {
        if (x.kind === 'finish') finished.push(x.result);
        else released.push({ id: x.delivery.id, claim: x.delivery.claims });
      }
      try {
        if (finished.length > 0) await this.#o.store.finish(finished);
        if (released.length > 0) await this.#o.store.release(released, this.#o.now());
      } catch (err) {
        // The leases run out and these deliveries are sent again: at least once, never lost.
        this.#o.log.error({ err }, 'outbound webhooks: could not record attempts');
      }
      this.#o.onWritten(batch);
    }
    this.#o.onDrained();
  }
}
