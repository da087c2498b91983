import type { Redis } from 'ioredis';
import type { Broker } from '../core/broker.js';
import { ClosedError } from '../core/errors.js';
import type { StoredEvent } from '../core/event.js';
import { newEpoch } from '../core/position.js';
import { decodeLogEntry, redisLogKeys, seqOfEntryId, type RedisLogEntry, type RedisLogKeys } from '../stores/redis-log-codec.js';
import { REPLACE_EPOCH_SCRIPT } from '../stores/redis-log-scripts.js';

export interface RedisBrokerOptions {
  /** The node's client (owned by the caller); the broker reads on a duplicate of it. */
  readonly redis: Redis;
  /** The prefix of the log the nodes share (the RedisEventStore's). */
  readonly prefix: string;
  /** Turns a stream entry of the log into an event of the log `epoch`; default: the store's codec. */
  readonly decode?: ((entry: RedisLogEntry, epoch: string) => StoredEvent) | undefined;
  /** milliseconds one blocking read waits for news; the probe and the check for a replaced log run at this pace. */
  readonly probeIntervalMs?: number | undefined;
  /**
   * Told, before the handlers, the epoch and last seq of each batch handed over: the log must
   * never hand those ids out again for other events (RedisEventStore.handedOver).
   */
  readonly onHandOver?: ((epoch: string, seq: number) => void) | undefined;
}

/** milliseconds a blocking read waits for new entries by default. */
export const REDIS_BROKER_BLOCK_MS = 1_000;

/**
 * milliseconds past its block time after which a read that has not come back is taken for a
 * dead connection (a failover behind it, a silent network drop): the connection is replaced.
 */
export const REDIS_BROKER_PROBE_GRACE_MS = 2_000;

/** Events one read hands over at most: bounds one batch's memory and the time one dispatch takes. */
export const REDIS_BROKER_READ_MAX_EVENTS = 500;

/** milliseconds between attempts while Redis cannot be read. */
export const REDIS_BROKER_RETRY_MS = 250;

/**
 * This node's own events handed over before the stream was read back through them, kept to be
 * checked against the stream; past this many the oldest go unchecked (the read loop is far behind).
 */
export const REDIS_BROKER_UNCONFIRMED_MAX_EVENTS = 10_000;

/** The id the loop starts from when the log was replaced: the new log from its first entry. */
const LOG_START = '0-0';

/** A read that did not come back within its deadline. */
class ReadDeadline extends Error {}

/**
 * The broker for nodes that share a RedisEventStore. The log stream is the news: every node
 * follows it with a blocking XREAD on a connection of its own and hands what it reads (its own
 * appends included) to its handlers in order; no pub/sub, so a node that was away reads what it
 * missed from where it stopped. `publish` hands the batch to this node's handlers at once (the
 * events are already in the stream, which is how the other nodes hear of them).
 *
 * Within one log, each event reaches the handlers at most once, in increasing `seq`: an event at
 * or below the last one handed over is not handed over again (the hub's follower fills any hole
 * from the log). A replaced log is handed over again from its start.
 *
 * A read that does not return within its block time and a grace is a dead connection: it is
 * replaced and the loop goes on from its last id. When the stream's last id falls below the
 * loop's (the log was lost or rebuilt), or the log's epoch changes, the loop starts again from
 * the new log's first entry and hands those events over with the new epoch in their ids.
 *
 * A log that went back (a replica promoted without the latest writes) may already hold other
 * events under seqs this node handed over, appended by a node that never saw the lost ones. So
 * before each read the entry at the loop's last id is compared with the one read there, and
 * this node's own events with the entries the stream brings back at their seqs; a stream shorter
 * than what was handed over, or an entry that differs, gives the log a new epoch (unless another
 * node did so already): every node then resets its subscribers with `epoch_changed` instead of
 * letting them skip the other events or take them for the lost ones.
 */
export class RedisBroker implements Broker {
  readonly #redis: Redis;
  readonly #keys: RedisLogKeys;
  readonly #decode: (entry: RedisLogEntry, epoch: string) => StoredEvent;
  readonly #blockMs: number;
  readonly #handlers: ((events: readonly StoredEvent[]) => void)[] = [];
  /** The last event handed to the handlers: its log's epoch and its seq. */
  #deliveredEpoch: string | undefined;
  #deliveredSeq = 0;
  /** The stream id the loop read through, undefined until it started; and the epoch it read under. */
  #lastId: string | undefined;
  #epoch: string | undefined;
  #conn: Redis | undefined;
  readonly #onHandOver: ((epoch: string, seq: number) => void) | undefined;
  /** The entry at #lastId as it was read, to find it replaced. */
  #lastEntry: RedisLogEntry | undefined;
  /** This node's own events handed over above #lastId (by seq), until the stream brings them back. */
  readonly #unconfirmed = new Map<number, StoredEvent>();
  readonly #loop: Promise<void>;
  #wake: (() => void) | undefined;
  #closed = false;
  #started!: () => void;
  /**
   * Settles once the loop knows where it follows from (the stream's newest entry when it first
   * reached Redis): every event appended after that is handed over.
   */
  readonly started: Promise<void> = new Promise((resolve) => (this.#started = resolve));

  constructor(opts: RedisBrokerOptions) {
    this.#redis = opts.redis;
    this.#keys = redisLogKeys(opts.prefix);
    this.#decode = opts.decode ?? decodeLogEntry;
    this.#blockMs = opts.probeIntervalMs ?? REDIS_BROKER_BLOCK_MS;
    this.#onHandOver = opts.onHandOver;
    this.#loop = this.#follow();
  }

  /**
   * Hands a committed batch to this node's handlers. It never needs Redis: the events are in the
   * stream already, which is how the other nodes hear of them (and a node that cannot reach Redis
   * is reported by the backend's own health check, not by refusing what was stored).
   */
  publish(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The broker'));
    this.#deliver(events);
    this.#remember(events);
    return Promise.resolve();
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#loop;
    this.#closed = true;
    this.#wake?.();
    this.#conn?.disconnect();
    await this.#loop;
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
    this.#onHandOver?.(epoch, this.#deliveredSeq);
    for (const h of this.#handlers) h(fresh);
  }

  /** Keeps this node's own events to check them against the stream when it reads them back. */
  #remember(events: readonly StoredEvent[]): void {
    if (this.#lastId === undefined || events.length === 0 || epochOf(events[0]!) !== this.#epoch) return;
    const read = seqOfEntryId(this.#lastId);
    for (const e of events) if (e.seq > read) this.#unconfirmed.set(e.seq, e);
    for (const seq of this.#unconfirmed.keys()) {
      if (this.#unconfirmed.size <= REDIS_BROKER_UNCONFIRMED_MAX_EVENTS) break;
      this.#unconfirmed.delete(seq);
    }
  }

  async #follow(): Promise<void> {
    while (!this.#closed) {
      try {
        const conn = await this.#connection();
        if (this.#lastId === undefined) await this.#start(conn);
        await this.#readOnce(conn);
      } catch (err) {
        if (this.#closed) break;
        // A read that hung: the connection is silently dead. A new one goes on from #lastId.
        if (err instanceof ReadDeadline) this.#dropConnection();
        await this.#pause(REDIS_BROKER_RETRY_MS);
      }
    }
    this.#dropConnection();
    this.#started();
  }

  /** Where following starts: after the newest entry now in the stream. */
  async #start(conn: Redis): Promise<void> {
    const replies = await this.#deadline(conn.pipeline().xrevrange(this.#keys.log, '+', '-', 'COUNT', 1).hget(this.#keys.meta, 'epoch').exec());
    const top = result<RedisLogEntry[]>(replies, 0);
    this.#epoch = result<string | null>(replies, 1) ?? undefined;
    this.#lastId = top[0]?.[0] ?? LOG_START;
    this.#lastEntry = top[0];
    this.#started();
  }

  async #readOnce(conn: Redis): Promise<void> {
    const last = this.#lastId!;
    const replies = await this.#deadline(
      conn
        .pipeline()
        .xrange(this.#keys.log, last, last)
        .xread('COUNT', REDIS_BROKER_READ_MAX_EVENTS, 'BLOCK', this.#blockMs, 'STREAMS', this.#keys.log, last)
        .hget(this.#keys.meta, 'epoch')
        .exec(),
    );
    if (this.#closed) return;
    const there = result<RedisLogEntry[]>(replies, 0)[0];
    const read = result<[string, RedisLogEntry[]][] | null>(replies, 1);
    const epoch = result<string | null>(replies, 2) ?? undefined;
    if (epoch !== this.#epoch) {
      const replaced = this.#epoch !== undefined;
      this.#epoch = epoch;
      // Another log now: what it holds from its start is news, under its own epoch.
      if (replaced) {
        this.#restart();
        return;
      }
    }
    // The entry we read through is another one now: the log went back and was written again.
    if (there !== undefined && this.#lastEntry !== undefined && !sameFields(there[1], this.#lastEntry[1])) {
      await this.#wentBack(conn);
      return;
    }
    const entries = read?.[0]?.[1] ?? [];
    if (entries.length === 0) {
      await this.#checkReplaced(conn, last);
      return;
    }
    if (epoch === undefined) return; // entries of a log without an identity yet: the next read has it
    const events = entries.map((e) => this.#decode(e, epoch));
    for (const e of events) {
      const own = this.#unconfirmed.get(e.seq);
      if (own !== undefined && !sameEvent(own, e)) {
        await this.#wentBack(conn);
        return;
      }
    }
    const lastEntry = entries[entries.length - 1]!;
    this.#lastId = lastEntry[0];
    this.#lastEntry = lastEntry;
    const through = seqOfEntryId(lastEntry[0]);
    for (const seq of this.#unconfirmed.keys()) if (seq <= through) this.#unconfirmed.delete(seq);
    this.#deliver(events);
  }

  /** After a quiet read: a stream whose last id is below ours was lost or rebuilt, and XREAD would wait forever. */
  async #checkReplaced(conn: Redis, last: string): Promise<void> {
    if (last === LOG_START) return;
    // What was handed over before the question is sent is in the stream already (this node's
    // own batches are handed over after Redis stored them); a batch handed over while the
    // answer is on its way may lie above the top it reports, and is no sign of a loss.
    const handed = this.#handedOverSeq();
    const info = await this.#deadline(conn.pipeline().exists(this.#keys.log).xrevrange(this.#keys.log, '+', '-', 'COUNT', 1).exec());
    const exists = result<number>(info, 0) === 1;
    const top = result<RedisLogEntry[]>(info, 1)[0];
    // An empty stream that still exists was pruned to nothing: its last id is unknown here but
    // never goes back, so only a stream that is gone or whose top lies below ours is news.
    if (!exists) this.#restart();
    else if (top !== undefined && seqOfEntryId(top[0]) < Math.max(seqOfEntryId(last), handed)) await this.#wentBack(conn);
  }

  /** The last seq handed over in the log being read (0 when none). */
  #handedOverSeq(): number {
    return this.#deliveredEpoch !== undefined && this.#deliveredEpoch === this.#epoch ? this.#deliveredSeq : 0;
  }

  /**
   * The log no longer holds what this node handed over: it gets a new epoch (unless another node
   * gave it one already), and the loop follows it from its start.
   */
  async #wentBack(conn: Redis): Promise<void> {
    if (this.#epoch !== undefined) {
      const now = await this.#deadline(conn.eval(REPLACE_EPOCH_SCRIPT, 1, this.#keys.meta, this.#epoch, newEpoch()) as Promise<string | null>);
      this.#epoch = now ?? undefined;
    }
    this.#restart();
  }

  /** Follows the log from its first entry, handing its events over even where their seqs were handed over before. */
  #restart(): void {
    this.#lastId = LOG_START;
    this.#lastEntry = undefined;
    this.#unconfirmed.clear();
    this.#deliveredEpoch = undefined;
    this.#deliveredSeq = 0;
  }

  /** The loop's connection, connected. */
  async #connection(): Promise<Redis> {
    let conn = this.#conn;
    if (!conn) {
      conn = this.#conn = this.#redis.duplicate();
      conn.on('error', () => undefined); // failures surface as rejected reads, retried by the loop
    }
    if (conn.status === 'ready') return conn;
    if (conn.status === 'wait') void conn.connect().catch(() => undefined);
    const ready = new Promise<void>((resolve, reject) => {
      const onReady = () => {
        conn.off('end', onEnd);
        resolve();
      };
      const onEnd = () => {
        conn.off('ready', onReady);
        reject(new Error('the Redis connection ended'));
      };
      conn.once('ready', onReady);
      conn.once('end', onEnd);
    });
    await this.#deadline(ready);
    return conn;
  }

  #dropConnection(): void {
    this.#conn?.disconnect();
    this.#conn = undefined;
  }

  /** `p`, or a ReadDeadline once a read could have blocked its full time and the grace. */
  #deadline<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ReadDeadline('a Redis read did not come back')), this.#blockMs + REDIS_BROKER_PROBE_GRACE_MS);
    });
    return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** The epoch in an event's id (`<epoch>-<seq>`). */
function epochOf(e: StoredEvent): string {
  return e.id.slice(0, e.id.lastIndexOf('-'));
}

/** Whether two stream entries hold the same fields. */
function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Whether the stream's event at a seq is the one this node appended there. */
function sameEvent(own: StoredEvent, read: StoredEvent): boolean {
  return own.channel === read.channel && own.type === read.type && own.data === read.data && own.time === read.time;
}

/** Reply `i` of a pipeline, or its error thrown. */
function result<T>(replies: [Error | null, unknown][] | null, i: number): T {
  const r = replies?.[i];
  if (!r) throw new Error('a Redis pipeline was aborted');
  if (r[0]) throw r[0];
  return r[1] as T;
}
