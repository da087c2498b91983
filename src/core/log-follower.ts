import type { StoredEvent } from './event.js';
import type { ReadPage } from './event-store.js';
import { REPLAY_PAGE_EVENTS } from './limits.js';

/** Every channel: a gap is filled with whatever the log holds, local subscribers pick theirs. */
const ALL_CHANNELS = ['>'];

export interface LogFollowerOptions {
  /** The newest `seq` of the log now (where following starts) and the log's epoch. */
  head(): Promise<{ readonly lastSeq: number; readonly epoch: string }>;
  /** One bounded page of the log (EventStore.readPage) over every channel. */
  readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage>;
  /** Receives the events, in log order, each once. */
  deliver(events: readonly StoredEvent[]): void;
  /** A read that should have filled a gap failed; the next notification tries again. */
  onError(err: unknown): void;
  /**
   * The log was replaced by a new one (epoch `epoch`: a shared backend lost it, or a replica
   * without the latest writes was promoted). Called once, before the new log's first events are
   * handed on from seq 1: whoever holds positions of the old log must be reset now.
   */
  onNewLog?(epoch: string): void;
}

/**
 * One node's view of the log: turns the broker's notifications into events handed on in log
 * order, each once. The broker says that the log moved; the log says what is in it ("the log is
 * the order", see the Broker specification in core/broker.ts).
 *
 * It knows the last `seq` it handed on. A batch that starts right after it (the usual case, and
 * always with the memory broker) goes out at once, in the same tick. A batch entirely at or below
 * it is a duplicate and is ignored. A batch that leaves a hole (its predecessor was dropped,
 * delayed or reordered by the broker) is not trusted: the missing range is read from the log
 * through the store's bounded `readPage`, handed on in order, and only then the rest of the
 * batch. Batches that arrive while a gap is being filled wait their turn, so order holds. A lost
 * notification therefore costs latency (until the next one arrives), never an event.
 *
 * A log may leave holes in `seq` (a sequence that skips values); filling one finds nothing and
 * costs one read, never an event.
 *
 * Every event id carries its log's epoch. A batch from another epoch is taken as news of a new
 * log only when the log itself says so (its head has that epoch); otherwise it is a stale
 * notification of the old one and is dropped. On a new log the follower calls `onNewLog` and
 * hands on the new log from its first event, read from the log.
 */
export class LogFollower {
  readonly #o: LogFollowerOptions;
  /** The last `seq` handed on; undefined until the head is known. */
  #last: number | undefined;
  /** The epoch of the log being followed; undefined until the head is known. */
  #epoch: string | undefined;
  /** Batches waiting while the head is read or a gap is filled, oldest first. */
  #waiting: (readonly StoredEvent[])[] = [];
  #busy = false;
  /**
   * Settles once the head was read (or could not be). The node's own appends wait for it: an
   * append committed before the head read returns would be counted as already handed on, and
   * its batch dropped as a duplicate.
   */
  readonly started: Promise<void>;

  constructor(opts: LogFollowerOptions) {
    this.#o = opts;
    this.#busy = true;
    this.started = this.#run(() => this.#start());
  }

  /** The last `seq` handed on (undefined until the head is known). */
  get last(): number | undefined {
    return this.#last;
  }

  /** Hands on `events` (one broker batch, in `seq` order) in log order, filling any gap first. */
  receive(events: readonly StoredEvent[]): void {
    if (events.length === 0) return;
    if (this.#busy) {
      this.#waiting.push(events);
      return;
    }
    // The head could not be read at start (reported): follow from this batch on.
    if (this.#last === undefined) {
      this.#last = events[0]!.seq - 1;
      this.#epoch = epochOf(events[0]!);
    }
    if (epochOf(events[0]!) !== this.#epoch) {
      this.#busy = true;
      void this.#run(() => this.#switchLog(events));
      return;
    }
    if (this.#follows(events)) {
      this.#handOn(events);
      return;
    }
    if (events[events.length - 1]!.seq <= this.#last) return; // all seen: a duplicate
    this.#busy = true;
    void this.#run(() => this.#fill(events));
  }

  /** True when the events not yet handed on continue the log without a hole. */
  #follows(events: readonly StoredEvent[]): boolean {
    let expect = this.#last! + 1;
    for (const e of events) {
      if (e.seq < expect) continue;
      if (e.seq !== expect) return false;
      expect++;
    }
    return true;
  }

  #handOn(events: readonly StoredEvent[]): void {
    const last = this.#last!;
    const fresh = events[0]!.seq > last ? events : events.filter((e) => e.seq > last);
    if (fresh.length === 0) return;
    this.#last = fresh[fresh.length - 1]!.seq;
    this.#o.deliver(fresh);
  }

  async #start(): Promise<void> {
    const head = await this.#o.head();
    this.#last = head.lastSeq;
    this.#epoch = head.epoch;
  }

  /** A batch of another epoch: a new log when the log says so (then read it from its start). */
  async #switchLog(events: readonly StoredEvent[]): Promise<void> {
    const head = await this.#o.head();
    const epoch = epochOf(events[0]!);
    if (head.epoch !== epoch) return; // a stale notification of a log no longer followed
    this.#epoch = epoch;
    this.#last = 0;
    this.#o.onNewLog?.(epoch);
    await this.#fill(events);
  }

  /** Reads the log from the last `seq` handed on through the batch's last, then the batch's rest. */
  async #fill(events: readonly StoredEvent[]): Promise<void> {
    const target = events[events.length - 1]!.seq;
    for (;;) {
      const after = this.#last!;
      const page = await this.#o.readPage(ALL_CHANNELS, after, REPLAY_PAGE_EVENTS);
      if (page.events.length > 0) this.#handOn(page.events);
      // Nothing with after < seq <= through is missing from the page (EventStore.readPage).
      if (page.through > this.#last!) this.#last = page.through;
      if (page.end || this.#last! >= target) break;
    }
    // What the log did not show yet, the broker vouches for (it announces committed events).
    this.#handOn(events);
  }

  /** Runs `step`, then whatever waited meanwhile, in arrival order. */
  async #run(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.#o.onError(err);
    }
    this.#busy = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    // receive() may set #busy again (another gap): the rest queue behind it, in order.
    for (const batch of waiting) this.receive(batch);
  }
}

/** The epoch part of an event's id (`<epoch>-<seq>`). */
function epochOf(e: StoredEvent): string {
  return e.id.slice(0, e.id.lastIndexOf('-'));
}
