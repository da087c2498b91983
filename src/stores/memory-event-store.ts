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
import { READ_SCAN_MAX_ROWS } from '../core/limits.js';
import { newEpoch } from '../core/position.js';
import { channelMatcher } from '../core/subscriber-index.js';
import { makeReceipt, type Receipt, type ReceiptInput, type ReceiptQuery } from '../core/inbound-receipt.js';

/**
 * The log in process memory: for tests and for deployments that accept losing history on
 * restart. Not durable. Events are kept in an array in `seq` order, so reads are a binary search
 * and a bounded scan. Idempotency keys hold the position of their event, never the event: a
 * pruned event is garbage once the log lets go of it.
 */
export class MemoryEventStore implements EventStore {
  readonly durable = false;
  #events: StoredEvent[] = [];
  #lastSeq = 0;
  #prunedThrough = 0;
  readonly #keys = new Map<string, { seq: number; at: number; keepUntil: number }>();
  /** Receipts per source, oldest first. */
  readonly #receipts = new Map<string, Receipt[]>();
  #lastReceiptId = 0;
  /**
   * Digests of accepted arrivals' signed bytes, by `source + '\n' + digest`, until their
   * receipt's `keepUntil`. Only the seq is held: the event itself may leave the log first.
   */
  readonly #digests = new Map<string, { seq: number; at: number; keepUntil: number }>();
  /** Per outside stream (`EventInput.origin`), the highest offset stored and its event. */
  readonly #streams = new Map<string, { offset: number; event: StoredEvent }>();
  readonly #now: () => number;
  /** The log's identity: a memory log lives and dies with its process, so each gets a new one. */
  readonly #epoch: string;
  #closed = false;

  constructor(opts: { now?: () => number; epoch?: string } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#epoch = opts.epoch ?? newEpoch();
  }

  append(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const now = this.#now();
    const results: AppendResult[] = [];
    for (const input of inputs) {
      const origin = input.origin;
      const mark = origin && this.#streams.get(origin.stream);
      if (origin && mark && origin.offset <= mark.offset) {
        results.push({ event: mark.event, duplicate: true });
        continue;
      }
      const key = input.idempotencyKey;
      const known = key === undefined ? undefined : this.#keys.get(key);
      if (known) {
        // The first event, or, once it was pruned, what this input would have stored (as SQLite).
        const event =
          this.#eventAt(known.seq) ?? makeStoredEvent(known.seq, input.channel, input.type, input.data, known.at, this.#epoch);
        const receiptId = input.receipt && this.#addReceipt(input.receipt, 'duplicate', known.seq).id;
        results.push({ event, duplicate: true, receiptId });
        continue;
      }
      const digestKey = input.receipt?.digest === undefined ? undefined : `${input.receipt.source}\n${input.receipt.digest}`;
      const signed = digestKey === undefined ? undefined : this.#digests.get(digestKey);
      if (signed && signed.keepUntil >= now) {
        const event = this.#eventAt(signed.seq) ?? makeStoredEvent(signed.seq, input.channel, input.type, input.data, signed.at, this.#epoch);
        const receiptId = this.#addReceipt(input.receipt!, 'duplicate', signed.seq).id;
        results.push({ event, duplicate: true, receiptId });
        continue;
      }
      const event = makeStoredEvent(++this.#lastSeq, input.channel, input.type, input.data, now, this.#epoch);
      this.#events.push(event);
      if (origin) this.#streams.set(origin.stream, { offset: origin.offset, event });
      if (key !== undefined) this.#keys.set(key, { seq: event.seq, at: now, keepUntil: now + (input.idempotencyTtlMs ?? 0) });
      const receiptId = input.receipt && this.#addReceipt(input.receipt, input.receipt.status, event.seq).id;
      if (digestKey !== undefined && input.receipt!.status === 'accepted') {
        this.#digests.set(digestKey, { seq: event.seq, at: now, keepUntil: input.receipt!.keepUntil });
      }
      results.push({ event, duplicate: false, receiptId });
    }
    return Promise.resolve(results);
  }

  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    return readFilled((a, n) => this.readPage(patterns, a, n), after, limit);
  }

  readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const match = channelMatcher(patterns);
    const out: StoredEvent[] = [];
    const events = this.#events;
    let i = firstAfter(events, after);
    const stop = Math.min(events.length, i + READ_SCAN_MAX_ROWS);
    let through = after;
    for (; i < stop && out.length < limit; i++) {
      const e = events[i]!;
      through = e.seq;
      if (match(e.channel)) out.push(e);
    }
    const end = i >= events.length;
    if (end) through = Math.max(after, this.#lastSeq);
    return Promise.resolve({ events: out, through, end });
  }

  head(): Promise<LogBounds> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve({ lastSeq: this.#lastSeq, prunedThrough: this.#prunedThrough, epoch: this.#epoch });
  }

  prune(policy: RetentionPolicy, now: number): Promise<number> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const events = this.#events;
    let drop = 0;
    if (policy.maxEvents > 0 && events.length > policy.maxEvents) drop = events.length - policy.maxEvents;
    if (policy.maxAgeMs > 0) {
      const cutoff = now - policy.maxAgeMs;
      while (drop < events.length && events[drop]!.time < cutoff) drop++;
    }
    if (drop > 0) {
      this.#prunedThrough = Math.max(this.#prunedThrough, events[drop - 1]!.seq);
      this.#events = events.slice(drop);
    }
    // A key goes with its event, or after the TTL; an input's own longer TTL outlives both.
    const keyCutoff = now - policy.idempotencyTtlMs;
    const gone = this.#prunedThrough;
    for (const [k, v] of this.#keys) {
      if (v.keepUntil < now && (v.at < keyCutoff || v.seq <= gone)) this.#keys.delete(k);
    }
    for (const [k, v] of this.#digests) if (v.keepUntil < now) this.#digests.delete(k);
    const cap = policy.maxReceiptsPerSource ?? 0;
    for (const [source, list] of this.#receipts) {
      let kept = list.filter((r) => r.keepUntil >= now);
      if (cap > 0 && kept.length > cap) kept = kept.slice(kept.length - cap);
      if (kept.length === 0) this.#receipts.delete(source);
      else this.#receipts.set(source, kept);
    }
    return Promise.resolve(drop);
  }

  recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve(receipts.map((r) => this.#addReceipt(r, r.status, undefined)));
  }

  listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const list = this.#receipts.get(source) ?? [];
    const out: Receipt[] = [];
    for (let i = list.length - 1; i >= 0 && out.length < query.limit; i--) {
      const r = list[i]!;
      if (query.before > 0 && r.id >= query.before) continue;
      if (query.status === undefined || r.status === query.status) out.push(r);
    }
    return Promise.resolve(out);
  }

  getReceipt(source: string, id: number): Promise<Receipt | undefined> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve(this.#receipts.get(source)?.find((r) => r.id === id));
  }

  /** The event at `seq` while it is in the log. */
  #eventAt(seq: number): StoredEvent | undefined {
    const e = this.#events[firstAfter(this.#events, seq - 1)];
    return e?.seq === seq ? e : undefined;
  }

  #addReceipt(input: ReceiptInput, status: Receipt['status'], seq: number | undefined): Receipt {
    const receipt = makeReceipt(++this.#lastReceiptId, input, status, seq);
    let list = this.#receipts.get(input.source);
    if (!list) this.#receipts.set(input.source, (list = []));
    list.push(receipt);
    return receipt;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/** Index of the first event with seq > after (events are sorted by seq). */
function firstAfter(events: readonly StoredEvent[], after: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid]!.seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
