import type { EventInput, StoredEvent } from './event.js';
import type { Receipt, ReceiptInput, ReceiptQuery } from './inbound-receipt.js';

/**
 * The log: where events live and where resume comes from.
 *
 * Specification every implementation keeps (test/contract/event-store.contract.ts checks it):
 *
 * - **Positions.** `append` assigns each new event a `seq`, an integer > 0, strictly greater than
 *   every `seq` the store has ever assigned, including pruned ones: a position is never reused,
 *   so a client holding an old id can always tell whether it missed something.
 *   Each event's `id` is `<epoch>-<seq>` with the store's `epoch` (see `LogBounds.epoch`), which
 *   stays the same across restarts of a durable store and differs for every new log.
 * - **Atomic batches.** One `append` call is one transaction: either every input is stored (or
 *   found to be a duplicate) or none is, and the call rejects.
 * - **Durability.** When `append` resolves, the events survive the process being killed
 *   (SIGKILL). A memory store is exempt and says so in `durable`.
 * - **Idempotency.** An input whose `idempotencyKey` the store already holds (also earlier in
 *   the same batch) stores nothing and resolves to the first event with `duplicate: true` (when
 *   that event was pruned, the event carries the input's channel, type and data). A key is kept
 *   while its event is in the log, for at most `idempotencyTtlMs`; an input's own
 *   `idempotencyTtlMs` keeps it that long whatever happens to the event (inbound webhooks: a
 *   provider retries for days, and a retry must not publish twice). So keys never outnumber
 *   their events without a bound: `prune` deletes the keys of the events it deletes. A key holds
 *   a position, never the event itself.
 * - **Inbound receipts.** An input with a `receipt` gets it recorded in the same transaction as
 *   the event (or the duplicate match): a new event gives an `accepted` (or `replayed`) receipt
 *   with its body and `seq`; a duplicate gives a `duplicate` receipt without a body, pointing at
 *   the first event. The same holds for a receipt whose `digest` (of the signed bytes) matches
 *   an accepted receipt of the same source whose `keepUntil` has not passed (also earlier in the
 *   same batch): a replayed signed message is a duplicate whatever its unsigned id. Digests are
 *   kept until that `keepUntil`, whatever the per-source receipt cap deletes (a flood of forged
 *   arrivals must not push them out). So a webhook is acknowledged only when its event, its
 *   idempotency key and its receipt are all durable, or none is. `recordReceipts` writes receipts that append no
 *   event (rejected arrivals). Receipt ids are integers > 0, strictly increasing, never reused.
 *   `prune` deletes receipts past their `keepUntil` and, per source, beyond the newest
 *   `maxReceiptsPerSource`; it never deletes an idempotency key early because of it.
 * - **Stream positions.** An input with an `origin` (a record of an outside ordered stream, such
 *   as a Kafka partition) is stored only when `origin.offset` is above the highest offset already
 *   stored for `origin.stream` (also earlier in the same batch), and that new highest offset is
 *   written in the same transaction as the event. Otherwise it stores nothing and resolves with
 *   `duplicate: true` and the newest event stored from that stream. So a consumer that replays
 *   records after a crash or a rebalance (Kafka delivers at least once) puts each record in the
 *   log exactly once, provided it appends a stream's records in offset order. Positions are
 *   never pruned (one per stream) and are shared by every writer of the same store.
 * - **Reads** return events in `seq` order, only those with `seq > after`, at most `limit`.
 *   `readPage` does a bounded amount of work: it examines at most READ_SCAN_MAX_ROWS rows
 *   (core/limits.ts), matched or not, so it may return fewer than `limit` events, even none,
 *   before the end of the log; `through` says how far it looked. Its cost is linear in the rows
 *   examined (never a sort of everything that matches), and exact names and wildcard patterns
 *   with a literal first token are found through an index where the store has one. `read`
 *   repeats `readPage` until `limit` events or the end, turning the event loop between pages.
 * - **Retention.** `prune` deletes events older than `maxAgeMs` and beyond the newest
 *   `maxEvents`, and raises `prunedThrough`: the highest `seq` that may have been deleted.
 *   A reader whose position is below `prunedThrough` may have missed events and must be told
 *   (the hub sends a reset).
 * - **Identity.** `head().epoch` is made once, when the log is created (stored with a durable log,
 *   per process for a memory one), and never changes while the log exists: reopening a durable
 *   log gives the same epoch, a new log gives a new one.
 * - **close()** is idempotent, waits for nothing pending, and every call after it rejects with
 *   ClosedError.
 */
export interface EventStore {
  /** True when an acknowledged append survives a process crash. */
  readonly durable: boolean;

  append(inputs: readonly EventInput[]): Promise<AppendResult[]>;

  /**
   * Events with `seq > after` whose channel matches one of `patterns` (names or wildcard
   * patterns; see core/channel.ts), oldest first, at most `limit`.
   */
  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]>;

  /**
   * One bounded slice of `read`: events with `seq > after` matching `patterns`, oldest first, at
   * most `limit`, after examining at most READ_SCAN_MAX_ROWS rows. Continue from `through`
   * until `end`.
   */
  readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage>;

  /** The position of the newest event ever appended (0 when none), the prune watermark, the epoch. */
  head(): Promise<LogBounds>;

  /** Applies retention; resolves to the number of events deleted. */
  prune(policy: RetentionPolicy, now: number): Promise<number>;

  /** Records receipts that append no event (rejected arrivals), in one transaction. */
  recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]>;

  /** One source's receipts, newest first (see ReceiptQuery). */
  listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]>;

  /** One receipt of `source`, or undefined when it does not exist (or was pruned). */
  getReceipt(source: string, id: number): Promise<Receipt | undefined>;

  close(): Promise<void>;
}

export interface AppendResult {
  readonly event: StoredEvent;
  /**
   * True when an idempotency key matched an earlier event, or the input's `origin` was already
   * stored: nothing new was stored.
   */
  readonly duplicate: boolean;
  /** The id of the receipt recorded with this input, when it carried one. */
  readonly receiptId?: number | undefined;
}

export interface ReadPage {
  readonly events: StoredEvent[];
  /**
   * Every matching event with `after < seq <= through` is in `events`: the next page starts
   * after `through`. At least the last event's `seq`; equal to `after` only when nothing more is
   * visible.
   */
  readonly through: number;
  /** True when nothing after `through` was visible when the page was read. */
  readonly end: boolean;
}

/**
 * `read` for any store: `readPage` repeated until `limit` events or the end, with the event loop
 * turning between pages (setImmediate), so even a read that scans a long log lets timers, I/O
 * and other clients through every READ_SCAN_MAX_ROWS rows.
 */
export async function readFilled(
  readPage: (after: number, limit: number) => Promise<ReadPage>,
  after: number,
  limit: number,
): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for (let first = true; ; first = false) {
    if (!first) await new Promise((resolve) => setImmediate(resolve));
    const page = await readPage(after, limit - out.length);
    for (const e of page.events) out.push(e);
    if (page.end || out.length >= limit) return out;
    after = page.through;
  }
}

export interface LogBounds {
  /** The newest `seq` ever assigned; 0 for an empty log. */
  readonly lastSeq: number;
  /** Every event with `seq <= prunedThrough` may be gone; 0 when nothing was ever pruned. */
  readonly prunedThrough: number;
  /**
   * The log's identity: made (core/position.ts `newEpoch`) when the log is created, the same for
   * as long as the log lives, new when it was lost or rebuilt. Event ids carry it
   * (`<epoch>-<seq>`), so a position from another log is recognised instead of mistaken for one
   * of this log.
   */
  readonly epoch: string;
}

export interface RetentionPolicy {
  /** Events older than this are deleted; 0 keeps events of any age. */
  readonly maxAgeMs: number;
  /** Only the newest this many events are kept; 0 keeps any number. */
  readonly maxEvents: number;
  /** Idempotency keys are remembered at least this long. */
  readonly idempotencyTtlMs: number;
  /** Inbound receipts kept per source, newest first; 0 or undefined keeps any number. */
  readonly maxReceiptsPerSource?: number | undefined;
}
