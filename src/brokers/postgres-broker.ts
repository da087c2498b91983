import pg from 'pg';
import type { Broker } from '../core/broker.js';
import { ClosedError } from '../core/errors.js';
import type { StoredEvent } from '../core/event.js';
import type { EventStore } from '../core/event-store.js';
import { POSTGRES_DEFAULT_SCHEMA, quoteSchema } from '../stores/postgres-migrations.js';
import { poolBackendPids } from '../stores/postgres-connection.js';
import { postgresLogChannel } from '../stores/postgres-event-store.js';

export interface PostgresBrokerOptions {
  /**
   * The node's pool (owned by the caller). The broker listens on a connection of its own, made
   * with the pool's settings, outside the pool.
   */
  readonly pool: pg.Pool;
  /** The schema of the log the nodes share (the PostgresEventStore's); default `herald`. */
  readonly schema?: string | undefined;
  /** The log itself (this node's PostgresEventStore on that schema): what is new is read from it. */
  readonly store: EventStore;
  /** milliseconds between reads of the log when no notification came; default POSTGRES_BROKER_POLL_MS. */
  readonly pollIntervalMs?: number | undefined;
}

/**
 * milliseconds between reads of the log without a notification: what a lost NOTIFY, a dropped
 * LISTEN connection or a pooler that cannot LISTEN (PgBouncer in transaction mode) costs in latency.
 */
export const POSTGRES_BROKER_POLL_MS = 1_000;

/** Events one read hands over at most: bounds one batch's memory and the time one dispatch takes. */
export const POSTGRES_BROKER_READ_MAX_EVENTS = 500;

/** milliseconds between attempts while the log cannot be read. */
export const POSTGRES_BROKER_RETRY_MS = 250;

/** milliseconds before the first attempt to listen again after the listening connection failed; doubles per failure. */
export const POSTGRES_LISTEN_BACKOFF_MIN_MS = 100;

/** milliseconds the wait between attempts to listen again grows to at most. */
export const POSTGRES_LISTEN_BACKOFF_MAX_MS = 5_000;

/** Every channel: the broker hands on the whole log. */
const ALL = ['>'];

/**
 * The broker for nodes that share a PostgresEventStore. The log is the news: each append
 * NOTIFYs the schema's channel inside its transaction (delivered at commit), and every node
 * LISTENs on a connection of its own. A notification carries nothing: it only wakes the node,
 * which reads from the log what follows the last seq it read and hands it to its handlers in
 * order (its own appends included; they were handed over by `publish` already and are skipped,
 * and a notification sent by a connection of the node's own pool does not wake it at all).
 * Without a notification the node reads the log every `pollIntervalMs` anyway, so a lost
 * notification, a dropped LISTEN connection (it is opened again, with backoff) or a pooler that
 * cannot LISTEN costs latency, never an event.
 *
 * Within one log, each event reaches the handlers at most once, in increasing `seq` (the hub's
 * follower fills a hole from the log). A log whose epoch changed (dropped and made again) is
 * followed from its start and handed over again under its new epoch.
 */
export class PostgresBroker implements Broker {
  readonly #pool: pg.Pool;
  readonly #store: EventStore;
  readonly #channel: string;
  readonly #pollMs: number;
  readonly #handlers: ((events: readonly StoredEvent[]) => void)[] = [];
  /** The last event handed to the handlers: its log's epoch and its seq. */
  #deliveredEpoch: string | undefined;
  #deliveredSeq = 0;
  /** How far the loop read the log, undefined until it started; and the epoch it read under. */
  #readThrough: number | undefined;
  #epoch: string | undefined;
  #listener: pg.Client | undefined;
  #woken = false;
  /** The next round reads the head first (set after a failure, or a page from another epoch). */
  #checkHead = false;
  #wake: (() => void) | undefined;
  #stopListening: (() => void) | undefined;
  #listenPause: (() => void) | undefined;
  #closed = false;
  readonly #loops: Promise<void>[];
  #started!: () => void;
  #listening!: () => void;
  /**
   * Settles once the loop knows where it follows from (the log's head when it first reached
   * Postgres) and the first attempt to listen is over: every event appended after that is handed over.
   */
  readonly started: Promise<void>;

  constructor(opts: PostgresBrokerOptions) {
    this.#pool = opts.pool;
    this.#store = opts.store;
    const schema = opts.schema ?? POSTGRES_DEFAULT_SCHEMA;
    quoteSchema(schema);
    this.#channel = postgresLogChannel(schema);
    this.#pollMs = opts.pollIntervalMs ?? POSTGRES_BROKER_POLL_MS;
    const followed = new Promise<void>((resolve) => (this.#started = resolve));
    const listened = new Promise<void>((resolve) => (this.#listening = resolve));
    this.started = Promise.all([followed, listened]).then(() => undefined);
    this.#loops = [this.#follow(), this.#listen()];
  }

  /**
   * Hands a committed batch to this node's handlers. It never needs Postgres: the events are in
   * the log already, which is how the other nodes hear of them.
   */
  publish(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The broker'));
    this.#deliver(events);
    return Promise.resolve();
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#wakeUp();
      this.#stopListening?.();
      this.#listenPause?.();
    }
    await Promise.all(this.#loops);
  }

  /** Hands the events not handed over yet to every handler. */
  #deliver(events: readonly StoredEvent[]): void {
    if (events.length === 0) return;
    const epoch = epochOf(events[0]!);
    if (epoch !== this.#deliveredEpoch) {
      this.#deliveredEpoch = epoch;
      this.#deliveredSeq = 0;
    }
    const after = this.#deliveredSeq;
    const fresh = events[0]!.seq > after ? events : events.filter((e) => e.seq > after);
    if (fresh.length === 0) return;
    this.#deliveredSeq = fresh[fresh.length - 1]!.seq;
    for (const h of this.#handlers) h(fresh);
  }

  /** Reads the log after each wake-up or poll interval, until closed. */
  async #follow(): Promise<void> {
    let woken = false;
    while (!this.#closed) {
      try {
        // A wake-up reads the new events only; the first read, a poll and a retry also read the
        // head (its epoch tells a log that was replaced).
        await (woken && !this.#checkHead ? this.#readNew() : this.#catchUp());
      } catch {
        if (this.#closed) break;
        woken = await this.#pause(POSTGRES_BROKER_RETRY_MS);
        this.#checkHead = true;
        continue;
      }
      woken = await this.#pause(this.#pollMs);
    }
    this.#started();
  }

  /**
   * After a notification: the page after #readThrough, in one statement (no read of the head
   * first). A page from another epoch (the log was replaced) is not handed over: the next round
   * reads the head, at once.
   */
  async #readNew(): Promise<void> {
    this.#woken = false;
    if (this.#deliveredEpoch === this.#epoch && this.#deliveredSeq > this.#readThrough!) this.#readThrough = this.#deliveredSeq;
    while (!this.#closed) {
      const page = await this.#store.readPage(ALL, this.#readThrough!, POSTGRES_BROKER_READ_MAX_EVENTS);
      const first = page.events[0];
      if (first && epochOf(first) !== this.#epoch) {
        this.#checkHead = true;
        this.#wakeUp();
        return;
      }
      this.#readThrough = page.through;
      this.#deliver(page.events);
      if (page.end) return;
    }
  }

  /** Reads and hands over everything after #readThrough (from the head, the first time). */
  async #catchUp(): Promise<void> {
    this.#woken = false;
    this.#checkHead = false;
    const head = await this.#store.head();
    if (this.#readThrough === undefined) {
      this.#readThrough = head.lastSeq;
      this.#epoch = head.epoch;
      this.#started();
      return;
    }
    if (head.epoch !== this.#epoch) this.#restart(head.epoch);
    // What this node handed over itself (its own appends, through `publish`) is not read back:
    // #deliver would drop it, and any event below it that this node never saw as well (the
    // hub's follower reads such a hole from the log). A node that mostly publishes reads nothing.
    if (this.#deliveredEpoch === this.#epoch && this.#deliveredSeq > this.#readThrough) {
      this.#readThrough = Math.min(this.#deliveredSeq, head.lastSeq);
    }
    while (!this.#closed && head.lastSeq > this.#readThrough) {
      const page = await this.#store.readPage(ALL, this.#readThrough, POSTGRES_BROKER_READ_MAX_EVENTS);
      const first = page.events[0];
      // The log was replaced between the head and this read: the next round starts it over.
      if (first && epochOf(first) !== this.#epoch) return;
      this.#readThrough = page.through;
      this.#deliver(page.events);
      if (page.end) return;
    }
  }

  /** Follows a new log from its first event, handing its events over even where their seqs were handed over before. */
  #restart(epoch: string): void {
    this.#epoch = epoch;
    this.#readThrough = 0;
    this.#deliveredEpoch = undefined;
    this.#deliveredSeq = 0;
  }

  /** Keeps a LISTEN connection open, opening it again with backoff when it fails. */
  async #listen(): Promise<void> {
    let backoff = POSTGRES_LISTEN_BACKOFF_MIN_MS;
    while (!this.#closed) {
      const client = (this.#listener = new pg.Client(this.#pool.options));
      const ended = new Promise<void>((resolve) => {
        this.#stopListening = resolve;
        client.on('error', () => resolve());
        client.on('end', () => resolve());
      });
      try {
        await client.connect();
        await client.query(`LISTEN "${this.#channel}"`);
        // A commit of this node's own pool was handed over by `publish` (once the append
        // returned): reading the log for it would find nothing new, at a query per publish.
        // Anything else wakes the node; the poll still reads whatever an own commit's caller
        // never handed over (a reply lost after the commit).
        const own = poolBackendPids(this.#pool);
        client.on('notification', (msg) => {
          if (!own.has(msg.processId)) this.#wakeUp();
        });
        backoff = POSTGRES_LISTEN_BACKOFF_MIN_MS;
        this.#listening();
        // Whatever was committed while nobody listened is read now.
        this.#wakeUp();
        await ended;
      } catch {
        this.#listening();
      }
      this.#listener = undefined;
      await client.end().catch(() => undefined);
      if (this.#closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, backoff);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.#listenPause = undefined;
          resolve();
        }
        this.#listenPause = done;
      });
      backoff = Math.min(backoff * 2, POSTGRES_LISTEN_BACKOFF_MAX_MS);
    }
  }

  #wakeUp(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /**
   * Waits `ms`, or less when woken (at once when a wake-up came since the last read). Resolves
   * to whether a wake-up ended it (false: the time ran out).
   */
  #pause(ms: number): Promise<boolean> {
    if (this.#woken || this.#closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const self = this;
      const timer = setTimeout(() => done(false), ms);
      function done(woken: boolean) {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve(woken);
      }
      this.#wake = () => done(true);
    });
  }
}

/** The epoch in an event's id (`<epoch>-<seq>`). */
function epochOf(e: StoredEvent): string {
  return e.id.slice(0, e.id.lastIndexOf('-'));
}
