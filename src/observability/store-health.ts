import type { Logger } from './logger.js';

/**
 * milliseconds: while appends fail, `/readyz` tries a write of its own at most this often, and
 * no sooner than this after the last failed append. A node that answers 503 is taken out of
 * rotation and gets no publishes, so without a probe of its own it would never see a write
 * succeed again; probing sooner would let a small probe that still fits on a nearly full disk
 * flip readiness back while real appends keep failing, and a probe per `/readyz` call would let
 * a busy health checker hammer the disk.
 */
export const STORE_WRITE_PROBE_INTERVAL_MS = 5_000;

/** A write that commits nothing of the log (e.g. one row in a scratch table); rejects when the store cannot write. */
export type WriteProbe = () => void | Promise<void>;

/**
 * Whether the log can take writes. A failed append (a full disk: SQLITE_FULL, ENOSPC; an I/O
 * error; a file made read-only) marks the store failing: one error line for the burst, not one
 * per request, and `/readyz` answers 503 so a load balancer sends publishes to another node. The
 * next successful write (an append, or the probe) ends the burst with one line saying so.
 */
export class StoreHealth {
  readonly #log: Logger;
  readonly #probe: WriteProbe | undefined;
  readonly #now: () => number;
  #failingSince: number | undefined;
  #failures = 0;
  /** When an append last failed or the probe last ran: the next probe waits an interval from it. */
  #lastTry = -Infinity;

  constructor(opts: { log: Logger; probe?: WriteProbe; now?: () => number }) {
    this.#log = opts.log;
    this.#probe = opts.probe;
    this.#now = opts.now ?? Date.now;
  }

  get writable(): boolean {
    return this.#failingSince === undefined;
  }

  /** An append failed with `err`. */
  failed(err: unknown): void {
    this.#failures++;
    this.#lastTry = this.#now();
    if (this.#failingSince !== undefined) return;
    this.#failingSince = this.#lastTry;
    const e = err as { code?: string; message?: string };
    this.#log.error(
      { code: e.code, cause: e.message },
      'store: an append failed (disk full or not writable?); publishes answer 503 and /readyz 503 until a write succeeds',
    );
  }

  /** An append committed. */
  succeeded(): void {
    if (this.#failingSince === undefined) return;
    this.#log.warn({ failedAppends: this.#failures, failingMs: this.#now() - this.#failingSince }, 'store: writes succeed again');
    this.#failingSince = undefined;
    this.#failures = 0;
  }

  /** For `/readyz`: whether the store takes writes, probing (at most once an interval) while it did not. */
  async check(): Promise<boolean> {
    if (this.writable || this.#probe === undefined) return this.writable;
    const now = this.#now();
    if (now - this.#lastTry < STORE_WRITE_PROBE_INTERVAL_MS) return false;
    this.#lastTry = now;
    try {
      await this.#probe();
      this.succeeded();
    } catch {
      /* still failing: the first failure was logged */
    }
    return this.writable;
  }
}
