import type { Broker } from '../core/broker.js';
import { ClosedError } from '../core/errors.js';
import type { StoredEvent } from '../core/event.js';
import type { EventStore } from '../core/event-store.js';
import { REPLAY_PAGE_EVENTS } from '../core/limits.js';

/**
 * milliseconds between two looks at the log's head: a worker that missed a wake-up (a lost IPC
 * message, a primary that restarted a worker meanwhile) hears of the events within this long.
 */
export const IPC_PROBE_INTERVAL_MS = 1_000;

/** Every channel: local subscribers pick theirs (as the log follower does). */
const ALL_CHANNELS = ['>'];

/** The one message workers and the primary exchange: the log's head moved to `seq`. */
export interface HeadMoved {
  readonly type: 'herald.head';
  readonly seq: number;
}

/** True when `m` is a HeadMoved message (IPC carries anything a process sends). */
export function isHeadMoved(m: unknown): m is HeadMoved {
  const o = m as HeadMoved | null;
  return typeof o === 'object' && o !== null && o.type === 'herald.head' && Number.isSafeInteger(o.seq);
}

export interface IpcBrokerOptions {
  /** The log every worker shares: where the events are read from. */
  readonly log: Pick<EventStore, 'head' | 'readPage'>;
  /** Sends a message to the primary (cluster IPC); resolves once sent, rejects when it could not be. */
  send(message: HeadMoved): Promise<void>;
  /** Registers the listener for the primary's messages; returns what removes it. */
  listen(listener: (message: unknown) => void): () => void;
  /** A read of the log failed (the next wake-up or probe tries again). */
  onError?: ((err: unknown) => void) | undefined;
  probeIntervalMs?: number | undefined;
}

/**
 * The broker of one worker of `herald --workers N`: the workers share one SQLite log, and hear
 * through the primary (node:cluster IPC) that another worker appended to it.
 *
 * What travels is a wake-up, not the events: `{ type: 'herald.head', seq }` after each committed
 * batch, which the primary relays to the other workers. Each reads what it has not handed on
 * from the log (bounded pages, `EventStore.readPage`) and hands it to its hub. The log is the
 * order and holds the bytes; a wake-up costs the same whatever the events weigh, the primary
 * parses a few bytes per batch instead of every event once per worker, and a worker's reads hit
 * pages SQLite just wrote.
 *
 * A lost or late wake-up costs latency, never an event: every IPC_PROBE_INTERVAL_MS the worker
 * compares the log's head with the last `seq` it handed on and reads what it missed. The hub's
 * log follower fills any hole a batch shows and drops what it already had (see core/broker.ts).
 */
export class IpcBroker implements Broker {
  readonly #o: IpcBrokerOptions;
  readonly #handlers: ((events: readonly StoredEvent[]) => void)[] = [];
  /** The newest `seq` handed to the handlers; undefined until the first batch or wake-up. */
  #handedOn: number | undefined;
  /** The newest head a wake-up or the probe reported. */
  #target = 0;
  #reading = false;
  readonly #probe: NodeJS.Timeout;
  readonly #unlisten: () => void;
  #closed = false;

  constructor(opts: IpcBrokerOptions) {
    this.#o = opts;
    this.#unlisten = opts.listen((m) => {
      if (isHeadMoved(m)) this.#wake(m.seq);
    });
    this.#probe = setInterval(() => {
      opts.log.head().then(
        (h) => this.#wake(h.lastSeq),
        (err: unknown) => opts.onError?.(err),
      );
    }, opts.probeIntervalMs ?? IPC_PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  /** Hands the batch to this worker's handlers at once, then tells the others. */
  publish(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The broker'));
    if (events.length === 0) return Promise.resolve();
    this.#deliver(events);
    // A read that stopped below this batch (the log hid what lay past this worker's own append
    // until its fsync ended) goes on now instead of at the next probe.
    this.#wake(this.#target);
    return this.#o.send({ type: 'herald.head', seq: events[events.length - 1]!.seq });
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#handlers.push(handler);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#probe);
    this.#unlisten();
    return Promise.resolve();
  }

  #deliver(events: readonly StoredEvent[]): void {
    const last = events[events.length - 1]!.seq;
    if (this.#handedOn === undefined || last > this.#handedOn) this.#handedOn = last;
    for (const h of this.#handlers) h(events);
  }

  /** The log reached `seq`: reads what was not handed on yet, one read at a time. */
  #wake(seq: number): void {
    if (seq > this.#target) this.#target = seq;
    if (this.#reading || this.#closed || (this.#handedOn !== undefined && this.#handedOn >= this.#target)) return;
    this.#reading = true;
    this.#catchUp().then(
      () => (this.#reading = false),
      (err: unknown) => {
        this.#reading = false;
        this.#o.onError?.(err);
      },
    );
  }

  async #catchUp(): Promise<void> {
    while (!this.#closed) {
      const handedOn = this.#handedOn;
      if (handedOn !== undefined && handedOn >= this.#target) return;
      // Nothing handed on yet: the newest event alone is news enough, the hub's follower reads
      // whatever lies between its own start and it.
      const after = handedOn ?? this.#target - 1;
      const page = await this.#o.log.readPage(ALL_CHANNELS, after, REPLAY_PAGE_EVENTS);
      if (this.#closed) return;
      if (page.events.length > 0) this.#deliver(page.events);
      // Positions up to `through` hold nothing more (holes in seq, or pruned).
      if (this.#handedOn === undefined || page.through > this.#handedOn) this.#handedOn = page.through;
      // Not visible here yet (this worker's own append is still being fsync'd): the probe returns.
      if (page.end) return;
    }
  }
}
