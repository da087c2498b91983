import { BROKER_RETRY_MS, type Broker } from './broker.js';
import type { StoredEvent } from './event.js';

export interface BrokerLinkOptions {
  /**
   * Called on every failed broker call (an announcement, or a retry while it is down); `first`
   * is true for the first failure of an outage, so it is logged once and counted every time.
   */
  onFailure?: ((err: unknown, first: boolean) => void) | undefined;
  /** Called when the broker works again after an outage. */
  onRecovered?: (() => void) | undefined;
}

/**
 * The hub's side of the broker: announces committed batches, and knows whether the broker works.
 *
 * A failed announcement marks the broker down (`ready` false: `/readyz` answers 503 with the
 * `broker` check) until a retry goes through. The retry sends the last batch that could not be
 * announced again, every BROKER_RETRY_MS: so no traffic is needed to notice the broker is back,
 * and other nodes hear that the log moved (they read what they missed from the log, and ignore
 * what they had).
 */
export class BrokerLink {
  readonly name = 'broker';
  /** `/readyz` lists it only while the broker is down (every node has one). */
  readonly listedOnlyWhenFailing = true;
  readonly #broker: Broker;
  readonly #o: BrokerLinkOptions;
  #down: { unsent: readonly StoredEvent[]; retry: NodeJS.Timeout | undefined } | undefined;
  #closed = false;

  constructor(broker: Broker, opts: BrokerLinkOptions = {}) {
    this.#broker = broker;
    this.#o = opts;
  }

  /** False while the broker is down. */
  get ready(): boolean {
    return this.#down === undefined;
  }

  get state(): string {
    return this.#down === undefined ? 'up' : 'unavailable';
  }

  /** Announces committed events; resolves false (never rejects) when the broker failed. */
  async announce(events: readonly StoredEvent[]): Promise<boolean> {
    try {
      await this.#broker.publish(events);
      return true;
    } catch (err) {
      this.#failed(err, events);
      return false;
    }
  }

  /** Stops retrying. The broker itself is closed by its owner. */
  close(): void {
    this.#closed = true;
    if (this.#down?.retry) clearTimeout(this.#down.retry);
  }

  #failed(err: unknown, unsent: readonly StoredEvent[]): void {
    const first = this.#down === undefined;
    const down = (this.#down ??= { unsent, retry: undefined });
    down.unsent = unsent;
    this.#o.onFailure?.(err, first);
    if (this.#closed || down.retry) return;
    // Not unref'd: the hub's close() clears it, and until then it is work the node has to do.
    down.retry = setTimeout(() => void this.#retry(), BROKER_RETRY_MS);
  }

  async #retry(): Promise<void> {
    const down = this.#down;
    if (!down || this.#closed) return;
    down.retry = undefined;
    try {
      await this.#broker.publish(down.unsent);
    } catch (err) {
      this.#failed(err, down.unsent);
      return;
    }
    this.#down = undefined;
    this.#o.onRecovered?.();
  }
}
