import type { EphemeralEvent, StoredEvent } from './event.js';
import type { ResetReason } from './protocol.js';

/** Why a subscription was cut off by Herald; transports map these to close codes. */
export type DisconnectReason = 'slow' | 'shutdown' | 'closed';

/**
 * Why a resume position could not be honoured: the client must reload its state.
 * `position_pruned`: retention deleted events after it; `position_unknown`: it is past the head
 * of the log; `epoch_changed`: it is from another log (one that was lost or rebuilt).
 */
export type { ResetReason };

/**
 * Several subscriptions of one connection (the WebSocket case) share a group, so an event that
 * matches two of them in the same dispatch is written once.
 */
export interface DispatchGroup {
  lastDispatched: number;
}

/**
 * One connection's interest in a set of channel patterns, read from one resume position.
 *
 * The hub drives it through a small state machine: *replaying* (live events are queued while the
 * log is read), then *live* (events go straight to the transport), then *closed*. `#lastSeq` is
 * the position of the newest event handed to the transport: anything at or below it is a
 * duplicate and is dropped, which is what closes the seam between replay and live events. That
 * is safe only because the hub offers live events in log order, each once, whatever the broker
 * did (core/log-follower.ts fills the gaps a broker leaves before dispatching).
 *
 * Transports implement the four abstract members; they never see the state machine.
 */
export abstract class Subscription {
  readonly patterns: readonly string[];
  readonly group: DispatchGroup | undefined;
  #live = false;
  #closed = false;
  #lastSeq = 0;
  /**
   * Live events queued during the replay, and events offered since the last flush. Made when the
   * first event comes: an idle subscription holds neither (two arrays per connection at 10,000
   * idle connections are over half a megabyte).
   */
  #queue: StoredEvent[] | undefined;
  #queuedBytes = 0;
  #pending: StoredEvent[] | undefined;
  /** Set by the hub while this subscription waits for the end of a dispatch batch. */
  scheduled = false;

  constructor(patterns: readonly string[], group?: DispatchGroup) {
    this.patterns = patterns;
    this.group = group;
  }

  /** Writes events (in order) to the client. Must not block; buffers are the transport's. */
  protected abstract write(events: readonly StoredEvent[]): void;
  /** Tells the client its position is gone and it must reload; `headId` is where it resumes. */
  protected abstract writeReset(reason: ResetReason, headId: string): void;
  /** Bytes accepted but not yet handed to the kernel. */
  abstract backlogBytes(): number;
  /** The largest backlog the client may have before it is cut off as slow. */
  abstract readonly maxBacklogBytes: number;
  /** Resolves when the backlog is empty or the connection is gone: paces a long replay. */
  abstract drained(): Promise<void>;
  /** Closes the client's connection (or this subscription) for `reason`. */
  protected abstract disconnect(reason: DisconnectReason): void;

  /**
   * Writes an ephemeral event; returns false when this transport does not carry them (the
   * default: the seed routes, whose pages know only logged events).
   */
  protected writeEphemeral(_event: EphemeralEvent): boolean {
    return false;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get live(): boolean {
    return this.#live;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Hub side: offers a live event. Returns true when it was added to the pending batch. */
  offer(event: StoredEvent): boolean {
    if (this.#closed || event.seq <= this.#lastSeq) return false;
    if (!this.#live) {
      // The hub offers an event once per matching pattern (`c.x` and `c.>` both match `c.x`),
      // and `#lastSeq` stays put until the replay ends: the queue's tail is what drops the
      // second offer, else it went out twice after the replay. Dispatch is in log order.
      const queue = (this.#queue ??= []);
      const tail = queue.at(-1);
      if (tail && event.seq <= tail.seq) return false;
      queue.push(event);
      this.#queuedBytes += event.data.length + 64;
      if (this.#queuedBytes > this.maxBacklogBytes) this.cutOff('slow');
      return false;
    }
    this.#lastSeq = event.seq;
    (this.#pending ??= []).push(event);
    return true;
  }

  /** Hub side: writes the events offered since the last flush, then checks the backlog. */
  flush(): void {
    const batch = this.#pending;
    if (batch === undefined || batch.length === 0 || this.#closed) return;
    this.#pending = undefined;
    this.#writeBounded(batch);
  }

  /**
   * Hub side: an ephemeral event goes out at once, to a live subscription only. It is never
   * queued: one that is still replaying, or whose backlog is past its bound, does not get it
   * (an ephemeral event is worth nothing late, and must never be what cuts a client off). It
   * does not move the position, and may overtake logged events waiting for their write window.
   */
  signal(event: EphemeralEvent): boolean {
    if (this.#closed || !this.#live || this.backlogBytes() > this.maxBacklogBytes) return false;
    return this.writeEphemeral(event);
  }

  /** Hub side, during replay: writes events read from the log. */
  replay(events: readonly StoredEvent[]): void {
    if (this.#closed || events.length === 0) return;
    this.#lastSeq = events[events.length - 1]!.seq;
    this.#writeBounded(events);
  }

  /**
   * The bound is checked before a write: a client whose earlier bytes are still unsent when
   * the next batch comes is slow and is cut off; a healthy client drains between ticks, however
   * large one batch is. A connection holds at most the bound plus one batch.
   */
  #writeBounded(events: readonly StoredEvent[]): void {
    if (this.backlogBytes() > this.maxBacklogBytes) {
      this.cutOff('slow');
      return;
    }
    this.write(events);
  }

  /** Hub side: starts from `position` with no replay (a fresh subscription, or after a reset). */
  startAt(position: number): void {
    this.#lastSeq = Math.max(this.#lastSeq, position);
  }

  /** Hub side: the position is not honoured; the client resumes from `head` (its id: `headId`). */
  reset(reason: ResetReason, head: number, headId: string): void {
    if (this.#closed) return;
    this.#lastSeq = head;
    this.writeReset(reason, headId);
  }

  /**
   * Hub side: the log was replaced by a new one (core/log-follower.ts `onNewLog`). Every position
   * this subscription held is of the old log: it gets the `epoch_changed` reset (`headId`: the new
   * log's start) and follows the new log from its first event. Events queued or pending from the
   * old log are dropped; the client reloads its state on the reset.
   */
  newLog(headId: string): void {
    if (this.#closed) return;
    this.#lastSeq = 0;
    this.#queue = undefined;
    this.#queuedBytes = 0;
    this.#pending = undefined;
    this.writeReset('epoch_changed', headId);
  }

  /** Hub side: replay is done; queued live events past the replay go out, the rest are dropped. */
  goLive(): void {
    if (this.#closed || this.#live) return;
    this.#live = true;
    const queue = this.#queue;
    this.#queue = undefined;
    this.#queuedBytes = 0;
    if (queue === undefined) return;
    const queued = queue.filter((e) => e.seq > this.#lastSeq);
    if (queued.length > 0) this.replay(queued);
  }

  /** Marks the subscription closed; the hub drops it from its index. Idempotent. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#queue = undefined;
    this.#pending = undefined;
    return true;
  }

  /** Herald ends this subscription: closed for good, and the transport is told why. */
  cutOff(reason: DisconnectReason): void {
    if (!this.markClosed()) return;
    this.onCutOff?.(this);
    this.disconnect(reason);
  }

  /** Set by the hub so a cut-off subscription leaves the index at once. */
  onCutOff: ((s: Subscription) => void) | undefined;
}
