import { matches } from '../core/channel.js';
import { ClosedError } from '../core/errors.js';
import { makeStoredEvent, type EventInput, type StoredEvent } from '../core/event.js';
import type { AppendResult, EventStore, LogBounds, RetentionPolicy } from '../core/event-store.js';

/**
 * The log in process memory: for tests and for deployments that accept losing history on
 * restart. Not durable. Events are kept in an array in `seq` order, so reads are a binary search
 * and a scan.
 */
export class MemoryEventStore implements EventStore {
  readonly durable = false;
  #events: StoredEvent[] = [];
  #lastSeq = 0;
  #prunedThrough = 0;
  readonly #keys = new Map<string, { event: StoredEvent; at: number }>();
  readonly #now: () => number;
  #closed = false;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  append(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const now = this.#now();
    const results: AppendResult[] = [];
    for (const input of inputs) {
      const key = input.idempotencyKey;
      const known = key === undefined ? undefined : this.#keys.get(key);
      if (known) {
        results.push({ event: known.event, duplicate: true });
        continue;
      }
      const event = makeStoredEvent(++this.#lastSeq, input.channel, input.type, input.data, now);
      this.#events.push(event);
      if (key !== undefined) this.#keys.set(key, { event, at: now });
      results.push({ event, duplicate: false });
    }
    return Promise.resolve(results);
  }

  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const out: StoredEvent[] = [];
    const events = this.#events;
    for (let i = firstAfter(events, after); i < events.length && out.length < limit; i++) {
      const e = events[i]!;
      if (patterns.some((p) => matches(p, e.channel))) out.push(e);
    }
    return Promise.resolve(out);
  }

  head(): Promise<LogBounds> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve({ lastSeq: this.#lastSeq, prunedThrough: this.#prunedThrough });
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
    const keyCutoff = now - policy.idempotencyTtlMs;
    for (const [k, v] of this.#keys) if (v.at < keyCutoff) this.#keys.delete(k);
    return Promise.resolve(drop);
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
