import { eventJsonText, type StoredEvent } from '../../core/event.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../core/subscription.js';
import type { Logger } from '../../observability/logger.js';
import type { OutboundLog } from './outbound-log.js';
import type { DeliveryHandOff } from './delivery-dispatcher.js';
import type { DeliveryStore, NewDelivery } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';

/** Bytes of events the planner may hold before it falls back to reading the log itself. */
export const PLANNER_BACKLOG_MAX_BYTES = 16 * 1_048_576;
/** milliseconds before the planner tries again after the store refused its rows. */
const PLANNER_RETRY_DELAY_MS = 1_000;
/**
 * milliseconds the planner may leave its stored cursor behind while no endpoint exists: a batch
 * with nothing to deliver is then not a write of its own (on SQLite and Postgres a second commit
 * after every publish); the cursor is stored with the first batch past this long, or with rows.
 */
export const PLANNER_IDLE_CURSOR_MS = 1_000;

export interface DeliveryPlannerOptions {
  /** The log, through the wing's own narrow interface (the hub satisfies it). */
  hub: OutboundLog;
  store: DeliveryStore;
  registry: EndpointRegistry;
  log: Logger;
  now: () => number;
  /** milliseconds before the first attempt (the first entry of the retry schedule, jittered). */
  firstDelayMs: () => number;
  /**
   * Where planned deliveries go (the dispatcher): it stores them with the cursor and starts
   * sending. The planner hands over and never hears back, except that the store refused.
   */
  handOff: DeliveryHandOff;
}

/**
 * Turns every event that matches an endpoint into a delivery row.
 *
 * The planner is a subscriber of every channel (`>`), resuming from its own cursor, the newest log
 * position already planned, which is stored in the same transaction as the rows it produced. That
 * is the transactional outbox with the log itself as the outbox: the publish path stays one
 * append, a crash between the append and the planning loses nothing (on start the hub replays
 * from the cursor, exactly as it does for an SSE client's `Last-Event-ID`), and no event is
 * planned twice. If the planner falls behind by more than its buffer, the hub cuts it off like a
 * slow client and it resumes from the cursor, reading the log in pages: memory stays bounded.
 */
export class DeliveryPlanner {
  readonly #opts: DeliveryPlannerOptions;
  #sub: PlannerSubscription | undefined;
  #queue: StoredEvent[] = [];
  #queuedBytes = 0;
  #draining: Promise<void> | undefined;
  #logId = '';
  #cursor = 0;
  /** When the cursor was last stored (the planner's clock). */
  #storedAt = 0;
  /** A position the next drain moves the cursor to, after a reset. */
  #skipTo: number | undefined;
  #closed = false;
  /** Raised by every start and close, so a resume left over from an earlier run does nothing. */
  #run = 0;

  constructor(opts: DeliveryPlannerOptions) {
    this.#opts = opts;
  }

  /** The newest log position turned into deliveries. */
  get cursor(): number {
    return this.#cursor;
  }

  /**
   * Starts (or, after `close`, starts again) from the cursor in the store: a node that takes the
   * planner lease over resumes where the previous holder stopped.
   */
  async start(): Promise<void> {
    const { store, hub } = this.#opts;
    this.#closed = false;
    const run = ++this.#run;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#skipTo = undefined;
    await this.loadLogId();
    let cursor = await store.plannedThrough();
    if (cursor === undefined) {
      // First start on this store: nothing before now is owed to anyone (endpoints start at
      // the head when they are created).
      cursor = (await hub.head()).lastSeq;
      await store.enqueue([], cursor);
    }
    this.#cursor = cursor;
    this.#storedAt = this.#opts.now();
    await this.#subscribe(run);
  }

  async #subscribe(run: number): Promise<void> {
    if (this.#closed || run !== this.#run) return;
    const sub = new PlannerSubscription(this);
    this.#sub = sub;
    await this.#opts.hub.subscribe(sub, { seq: this.#cursor });
  }

  /** Reads the log's id that message ids carry (a node that replays without planning needs it). */
  async loadLogId(): Promise<void> {
    this.#logId = await this.#opts.store.logId();
  }

  /** The message id of an event: the same for every endpoint, attempt and resend. */
  msgId(seq: number): string {
    return `msg_${this.#logId}_${seq}`;
  }

  /** Rows for one event, for every matching endpoint (held when the endpoint is disabled). */
  rowsFor(event: StoredEvent, endpoints = this.#opts.registry.matching(event), now = this.#opts.now()): NewDelivery[] {
    if (endpoints.length === 0) return [];
    const body = eventJsonText(event);
    const msgId = this.msgId(event.seq);
    return endpoints.map((e) => ({
      endpointId: e.id,
      eventSeq: event.seq,
      msgId,
      body,
      status: e.enabled ? 'pending' : 'held',
      nextAt: now + this.#opts.firstDelayMs(),
      createdAt: now,
    }));
  }

  /** Subscription side: events in log order, live or replayed. */
  accept(events: readonly StoredEvent[]): void {
    for (const e of events) {
      this.#queue.push(e);
      this.#queuedBytes += e.data.length + 128;
    }
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  get backlogBytes(): number {
    return this.#queuedBytes;
  }

  /** Resolves when every accepted event is stored (paces the hub's replay of a long backlog). */
  async drained(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Subscription side: the log no longer holds the cursor's position. */
  skipTo(reason: ResetReason, head: number): void {
    this.#opts.log.error(
      { reason, from: this.#cursor, to: head },
      'outbound webhooks: events were pruned before they were planned; they are not delivered',
    );
    this.#skipTo = head;
    this.accept([]);
  }

  /** Subscription side: cut off (too far behind); resume from the cursor once drained. */
  cutOff(reason: DisconnectReason, delayMs = 0): void {
    if (reason !== 'slow' || this.#closed) return;
    const run = this.#run;
    this.#opts.log.warn({ cursor: this.#cursor }, 'outbound webhooks: planner fell behind; reading from the log');
    void (async () => {
      await this.#draining;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      await this.#subscribe(run);
    })().catch((err: unknown) => this.#opts.log.error({ err }, 'outbound webhooks: planner could not resume'));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#skipTo !== undefined) {
      const batch = this.#queue;
      this.#queue = [];
      let through = this.#skipTo ?? this.#cursor;
      this.#skipTo = undefined;
      try {
        // Endpoints created, changed or deleted on another node before this batch was taken are
        // applied first: the batch is planned with them, not with a cache up to a poll behind.
        await this.#opts.registry.refresh();
        const now = this.#opts.now();
        const rows: NewDelivery[] = [];
        for (const e of batch) {
          if (e.seq <= through) continue;
          for (const r of this.rowsFor(e, this.#opts.registry.matching(e), now)) rows.push(r);
          through = e.seq;
        }
        // With no endpoint at all, nothing planned can ever be owed: an endpoint created later
        // starts after the log's head at its creation (`fromSeq`), which is past every event
        // planned here. So the cursor may lag a little; after a restart (or on the node that
        // takes the lease over) those events are planned again, to nothing.
        const idle = rows.length === 0 && this.#opts.registry.size === 0 && now - this.#storedAt < PLANNER_IDLE_CURSOR_MS;
        if (!idle) {
          await this.#opts.handOff.handOver(rows, through, now);
          this.#storedAt = now;
        }
      } catch (err) {
        // Nothing was stored and the cursor did not move: the events are planned again after
        // a restart (or when the planner resumes), never lost.
        this.#opts.log.error({ err }, 'outbound webhooks: could not store deliveries');
        this.#queue = [];
        this.#queuedBytes = 0;
        const sub = this.#sub;
        if (sub && !sub.closed) {
          this.#opts.hub.unsubscribe(sub);
          this.cutOff('slow', PLANNER_RETRY_DELAY_MS);
        }
        return;
      }
      this.#queuedBytes = Math.max(0, this.#queuedBytes - batch.reduce((n, e) => n + e.data.length + 128, 0));
      this.#cursor = through;
    }
  }

  /** Stops listening and waits for what is being stored. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#run++;
    if (this.#sub) this.#opts.hub.unsubscribe(this.#sub);
    await this.#draining;
  }
}

/** The planner's seat among the hub's subscribers. */
class PlannerSubscription extends Subscription {
  readonly maxBacklogBytes = PLANNER_BACKLOG_MAX_BYTES;
  readonly #planner: DeliveryPlanner;

  constructor(planner: DeliveryPlanner) {
    super(['>']);
    this.#planner = planner;
  }

  protected write(events: readonly StoredEvent[]): void {
    this.#planner.accept(events);
  }

  protected writeReset(reason: ResetReason, _headId: string): void {
    // The subscription stands at the head now (Subscription.reset).
    this.#planner.skipTo(reason, this.lastSeq);
  }

  backlogBytes(): number {
    return this.#planner.backlogBytes;
  }

  drained(): Promise<void> {
    return this.#planner.drained();
  }

  protected disconnect(reason: DisconnectReason): void {
    this.#planner.cutOff(reason);
  }
}
