import type { Redis } from 'ioredis';
import { ClosedError } from '../core/errors.js';
import { makeStoredEvent, type EventInput, type StoredEvent } from '../core/event.js';
import {
  readFilled,
  type AppendResult,
  type EventStore,
  type LogBounds,
  type ReadPage,
  type RetentionPolicy,
} from '../core/event-store.js';
import { makeReceipt, type Receipt, type ReceiptInput, type ReceiptQuery, type ReceiptStatus } from '../core/inbound-receipt.js';
import { READ_SCAN_MAX_ROWS } from '../core/limits.js';
import { newEpoch } from '../core/position.js';
import { channelMatcher } from '../core/subscriber-index.js';
import { decodeLogEntry, entryIdOf, redisLogKeys, type RedisLogEntry, type RedisLogKeys } from './redis-log-codec.js';
import {
  APPEND_ARGS_PER_INPUT,
  APPEND_SCRIPT,
  HEAD_SCRIPT,
  PRUNE_STEP_SCRIPT,
  RECORD_SCRIPT,
} from './redis-log-scripts.js';

export interface RedisEventStoreOptions {
  /** The client; owned by the caller (close() leaves it open). Configure it to fail fast. */
  readonly redis: Redis;
  /** Every key starts with it; a hash tag (`{herald}:`) keeps one log in one Cluster slot. */
  readonly prefix: string;
  /** Replicas that must acknowledge an append (Redis WAIT) before it resolves; 0 = off. */
  readonly waitReplicas?: number | undefined;
  /** milliseconds WAIT may take when `waitReplicas` > 0. */
  readonly waitTimeoutMs?: number | undefined;
  /**
   * milliseconds: the store-wide idempotency TTL (`retention.idempotencyTtlSeconds`), used as
   * the keys' Redis TTL (PX), a backstop behind `prune` (which deletes keys on its own clock).
   * Each prune's policy replaces it; until the first, default IDEMPOTENCY_KEY_BACKSTOP_TTL_MS.
   */
  readonly idempotencyTtlMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/** milliseconds WAIT waits for replicas by default. */
export const WAIT_TIMEOUT_DEFAULT_MS = 1_000;

/**
 * milliseconds a key lives in Redis when the store-wide TTL is not known yet (no option, no
 * prune run): long, since `prune` deletes keys on time; only a log never pruned relies on it.
 */
export const IDEMPOTENCY_KEY_BACKSTOP_TTL_MS = 7 * 86_400_000;

/**
 * Entries one prune step deletes of each kind: a script blocks every Redis client while it
 * runs, so retention goes in steps of a few milliseconds with other commands in between.
 */
export const REDIS_PRUNE_CHUNK_ROWS = 1_000;

/** Entries of the first XRANGE of a page: enough for a dense page without fetching 2,000 rows for one. */
const READ_FIRST_FETCH_ROWS = 200;

/**
 * An append was stored but fewer replicas than `waitReplicas` acknowledged it within
 * `waitTimeoutMs`. The events ARE in the log (on the primary): should the primary fail before
 * replicating them they may be lost. A retry with the same idempotency keys resolves to the
 * stored events (`duplicate: true`), so retrying is safe.
 */
export class ReplicationTimeoutError extends Error {
  readonly acknowledged: number;
  readonly wanted: number;
  constructor(acknowledged: number, wanted: number, timeoutMs: number) {
    super(`the append is stored, but only ${acknowledged} of ${wanted} Redis replicas acknowledged it within ${timeoutMs} ms`);
    this.name = 'ReplicationTimeoutError';
    this.acknowledged = acknowledged;
    this.wanted = wanted;
  }
}

/** The scripts, defined on the caller's client under these names (EVALSHA, loaded on first use). */
interface ScriptedRedis {
  heraldLogAppend(log: string, ...args: (string | number)[]): Promise<[string, AppendRow[]]>;
  heraldLogHead(log: string, ...args: (string | number)[]): Promise<[string, number, number]>;
  heraldLogPrune(log: string, ...args: (string | number)[]): Promise<[number, number]>;
  heraldLogRecord(log: string, ...args: (string | number)[]): Promise<number[]>;
}

/** One input's answer from the append script (see APPEND_SCRIPT). */
type AppendRow = [dup: number, seq: number, time: number, ref: number, channel: string, type: string, data: string, receiptId: number];

/**
 * The log on Redis, shared by every Herald node of a deployment. Events are a Redis Stream with
 * entry ids `<seq>-0` (redis-log-codec.ts); an append is one Lua script (redis-log-scripts.ts),
 * so an event, its idempotency key, its receipt and its stream position commit together.
 *
 * Durability is Redis's: `durable` holds with AOF `appendfsync always` (or `everysec` and the
 * second it may lose) and, across a failover, with `waitReplicas`. Redis must not evict keys
 * (`maxmemory-policy noeviction`).
 *
 * The epoch lives in Redis and is read back on every call that hands out positions. A log that
 * was lost (its keys gone) gets a new one; so does one whose counter went back below a seq this
 * handle saw (a replica promoted without the latest writes), so ids from the lost stretch get a
 * reset instead of naming other events. Seen counts what this handle appended or read and what
 * the node's broker handed to subscribers (`handedOver`). A node that never saw the lost seqs
 * cannot tell by itself; the broker of a node that did notices when the stream no longer holds
 * what it handed over, and replaces the epoch (src/brokers/redis-broker.ts). `waitReplicas` is
 * what keeps acknowledged events from being lost at all.
 */
export class RedisEventStore implements EventStore {
  readonly durable = true;
  readonly #redis: Redis & ScriptedRedis;
  readonly #prefix: string;
  readonly #keys: RedisLogKeys;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  readonly #now: () => number;
  #keyTtlMs: number;
  /** The epoch this handle last saw ('' before the first call). */
  #epoch = '';
  /** The highest seq this handle saw or assigned in `#epoch`: the counter must never go below it. */
  #seen = 0;
  #closed = false;

  constructor(opts: RedisEventStoreOptions) {
    this.#redis = opts.redis as Redis & ScriptedRedis;
    this.#prefix = opts.prefix;
    this.#keys = redisLogKeys(opts.prefix);
    this.#waitReplicas = opts.waitReplicas ?? 0;
    this.#waitTimeoutMs = opts.waitTimeoutMs ?? WAIT_TIMEOUT_DEFAULT_MS;
    this.#now = opts.now ?? Date.now;
    this.#keyTtlMs = opts.idempotencyTtlMs ?? IDEMPOTENCY_KEY_BACKSTOP_TTL_MS;
    const r = opts.redis;
    // Local only: each script is sent once per connection (EVALSHA, then EVAL on NOSCRIPT).
    r.defineCommand('heraldLogAppend', { numberOfKeys: 1, lua: APPEND_SCRIPT });
    r.defineCommand('heraldLogHead', { numberOfKeys: 1, lua: HEAD_SCRIPT });
    r.defineCommand('heraldLogPrune', { numberOfKeys: 1, lua: PRUNE_STEP_SCRIPT });
    r.defineCommand('heraldLogRecord', { numberOfKeys: 1, lua: RECORD_SCRIPT });
  }

  async append(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    this.#open();
    for (const input of inputs) checkInput(input);
    if (inputs.length === 0) return [];
    const now = this.#now();
    const args: (string | number)[] = [this.#prefix, now, this.#epoch, newEpoch(), this.#seen, this.#keyTtlMs, inputs.length];
    for (const input of inputs) pushInput(args, input);
    const [epoch, rows] = await this.#redis.heraldLogAppend(this.#keys.log, ...args);
    this.#saw(epoch, 0);
    const results: AppendResult[] = [];
    for (let i = 0; i < rows.length; i++) {
      const [dup, seq, time, ref, channel, type, data, receiptId] = rows[i]!;
      const from = ref > 0 ? inputs[ref - 1]! : { channel, type, data };
      const event = makeStoredEvent(seq, from.channel, from.type, from.data, time, epoch);
      this.#saw(epoch, seq);
      results.push({ event, duplicate: dup === 1, receiptId: receiptId > 0 ? receiptId : undefined });
    }
    if (this.#waitReplicas > 0) {
      const acked = await this.#redis.wait(this.#waitReplicas, this.#waitTimeoutMs);
      if (acked < this.#waitReplicas) throw new ReplicationTimeoutError(acked, this.#waitReplicas, this.#waitTimeoutMs);
    }
    return results;
  }

  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    return readFilled((a, n) => this.readPage(patterns, a, n), after, limit);
  }

  async readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage> {
    this.#open();
    const match = channelMatcher(patterns);
    const out: StoredEvent[] = [];
    let through = after;
    let examined = 0;
    let epoch: string | undefined;
    let lastSeq = 0;
    for (;;) {
      const want = examined === 0 ? Math.min(READ_SCAN_MAX_ROWS, Math.max(limit, READ_FIRST_FETCH_ROWS)) : READ_SCAN_MAX_ROWS - examined;
      // The epoch, the counter and the entries in one transaction: ids name the log they came from.
      const replies = await this.#redis
        .multi()
        .hget(this.#keys.meta, 'epoch')
        .get(this.#keys.seq)
        .xrange(this.#keys.log, entryIdOf(through + 1), '+', 'COUNT', want)
        .exec();
      if (!replies) throw new Error('the Redis transaction of a read was aborted');
      for (const [err] of replies) if (err) throw err;
      const pageEpoch = (replies[0]![1] as string | null) ?? (await this.head()).epoch;
      if (epoch !== undefined && pageEpoch !== epoch) return { events: out, through, end: false };
      epoch = pageEpoch;
      lastSeq = Number(replies[1]![1] ?? 0);
      this.#saw(epoch, 0);
      const entries = replies[2]![1] as RedisLogEntry[];
      for (const entry of entries) {
        examined++;
        const e = decodeLogEntry(entry, epoch);
        through = e.seq;
        if (match(e.channel)) {
          out.push(e);
          if (out.length >= limit) break;
        }
      }
      this.#saw(epoch, through);
      if (out.length >= limit) return { events: out, through, end: through >= lastSeq };
      if (entries.length < want) return { events: out, through: Math.max(through, lastSeq), end: true };
      if (examined >= READ_SCAN_MAX_ROWS) return { events: out, through, end: false };
    }
  }

  async head(): Promise<LogBounds> {
    this.#open();
    const [epoch, lastSeq, prunedThrough] = await this.#redis.heraldLogHead(this.#keys.log, this.#prefix, this.#epoch, newEpoch(), this.#seen);
    this.#saw(epoch, lastSeq);
    return { lastSeq, prunedThrough, epoch };
  }

  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    this.#open();
    if (policy.idempotencyTtlMs > 0) this.#keyTtlMs = policy.idempotencyTtlMs;
    let deleted = 0;
    for (;;) {
      const [n, more] = await this.#redis.heraldLogPrune(
        this.#keys.log,
        this.#prefix,
        now,
        policy.maxAgeMs,
        policy.maxEvents,
        policy.idempotencyTtlMs,
        policy.maxReceiptsPerSource ?? 0,
        REDIS_PRUNE_CHUNK_ROWS,
      );
      deleted += n;
      if (more === 0) return deleted;
      this.#open();
    }
  }

  async recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]> {
    this.#open();
    if (receipts.length === 0) return [];
    const args: (string | number)[] = [this.#prefix, receipts.length];
    for (const r of receipts) {
      args.push(r.source, r.status, r.keepUntil, r.status === 'accepted' ? (r.body?.toString('base64') ?? '') : '', receiptJson(r));
    }
    const ids = await this.#redis.heraldLogRecord(this.#keys.log, ...args);
    return receipts.map((r, i) => makeReceipt(ids[i]!, r, r.status, undefined));
  }

  async listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]> {
    this.#open();
    const index =
      query.status === undefined ? `${this.#prefix}receipt-ids:${source}` : `${this.#prefix}receipt-status:${source}:${query.status}`;
    const max = query.before > 0 ? `(${query.before}` : '+inf';
    const ids = await this.#redis.zrevrangebyscore(index, max, '-inf', 'LIMIT', 0, query.limit);
    if (ids.length === 0) return [];
    const values = await this.#redis.hmget(`${this.#prefix}receipts:${source}`, ...ids);
    const out: Receipt[] = [];
    for (let i = 0; i < ids.length; i++) {
      const v = values[i];
      if (v) out.push(decodeReceipt(Number(ids[i]), source, v));
    }
    return out;
  }

  async getReceipt(source: string, id: number): Promise<Receipt | undefined> {
    this.#open();
    const v = await this.#redis.hget(`${this.#prefix}receipts:${source}`, String(id));
    return v ? decodeReceipt(id, source, v) : undefined;
  }

  /**
   * Tells the log that this node handed the events of `epoch` through `seq` to its subscribers
   * (they came from the stream, not from this handle's own appends or reads). From then on this
   * handle treats them as seen: should the counter go back below `seq` (a replica promoted
   * without them), its next call gives the log a new epoch instead of handing those ids out
   * again for other events, which subscribers holding them would skip.
   */
  handedOver(epoch: string, seq: number): void {
    this.#saw(epoch, seq);
  }

  /**
   * A write that touches nothing of the log, acknowledged as an append must be (by
   * `waitReplicas` replicas): rejects while an append would fail. For `/readyz` after failed
   * appends (StoreHealth).
   */
  async writeProbe(): Promise<void> {
    this.#open();
    await this.#redis.set(`${this.#prefix}write-probe`, String(this.#now()));
    if (this.#waitReplicas > 0) {
      const acked = await this.#redis.wait(this.#waitReplicas, this.#waitTimeoutMs);
      if (acked < this.#waitReplicas) throw new ReplicationTimeoutError(acked, this.#waitReplicas, this.#waitTimeoutMs);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw new ClosedError('The event store');
  }

  /** Notes what Redis said: a new epoch forgets the seqs of the old one. */
  #saw(epoch: string, seq: number): void {
    if (epoch !== this.#epoch) {
      this.#epoch = epoch;
      this.#seen = 0;
    }
    if (seq > this.#seen) this.#seen = seq;
  }
}

/** The trust line is before the hub: this only keeps a malformed input from reaching a script. */
function checkInput(input: EventInput): void {
  if (typeof input.channel !== 'string' || typeof input.type !== 'string' || typeof input.data !== 'string') {
    throw new TypeError('an event input needs a string channel, type and data');
  }
  if (input.origin && !Number.isSafeInteger(input.origin.offset)) throw new TypeError('origin.offset must be an integer');
}

function pushInput(args: (string | number)[], input: EventInput): void {
  const key = input.idempotencyKey;
  const origin = input.origin;
  const r = input.receipt;
  const flags = (key !== undefined ? 'k' : '') + (origin ? 'o' : '') + (r ? 'r' : '');
  const start = args.length;
  args.push(flags, input.channel, input.type, input.data, key ?? '', input.idempotencyTtlMs ?? 0);
  args.push(origin?.stream ?? '', origin?.offset ?? 0);
  if (r) args.push(r.source, r.status, r.digest ?? '', r.keepUntil, r.body?.toString('base64') ?? '', receiptJson(r));
  else args.push('', '', '', 0, '', '');
  if (args.length - start !== APPEND_ARGS_PER_INPUT) throw new Error('append arguments out of step with the script');
}

/** What a receipt keeps besides its id, status, seq and body. */
interface ReceiptFields {
  receivedAt: number;
  keepUntil: number;
  providerId?: string | undefined;
  type?: string | undefined;
  headers: Record<string, string>;
  error?: { code: string; message: string } | undefined;
  replayOf?: number | undefined;
}

function receiptJson(r: ReceiptInput): string {
  const f: ReceiptFields = {
    receivedAt: r.receivedAt,
    keepUntil: r.keepUntil,
    providerId: r.providerId,
    type: r.type,
    headers: { ...r.headers },
    error: r.error && { code: r.error.code, message: r.error.message },
    replayOf: r.replayOf,
  };
  return JSON.stringify(f);
}

/** A receipt from its stored value `status\nseq\nbody-base64\njson`. */
function decodeReceipt(id: number, source: string, value: string): Receipt {
  const a = value.indexOf('\n');
  const b = value.indexOf('\n', a + 1);
  const c = value.indexOf('\n', b + 1);
  const status = value.slice(0, a) as ReceiptStatus;
  const seq = value.slice(a + 1, b);
  const body = value.slice(b + 1, c);
  const f = JSON.parse(value.slice(c + 1)) as ReceiptFields;
  return {
    id,
    source,
    status,
    receivedAt: f.receivedAt,
    keepUntil: f.keepUntil,
    providerId: f.providerId,
    type: f.type,
    headers: f.headers,
    body: status === 'accepted' && body !== '' ? Buffer.from(body, 'base64') : undefined,
    error: f.error,
    seq: seq === '' ? undefined : Number(seq),
    replayOf: f.replayOf,
  };
}

