import type Database from 'better-sqlite3';
import { makeStoredEvent, type EventInput, type StoredEvent } from '../core/event.js';

interface MarkRow {
  last_offset: number;
  seq: number;
  channel: string | null;
  type: string | null;
  data: string | null;
  time: number | null;
}

/**
 * Per outside stream (a Kafka partition), the highest offset the log holds: the table behind
 * `EventInput.origin` (see the EventStore specification). One row per stream, written inside the
 * store's append transaction, so a record's event and its position are durable together or not
 * at all; that is what makes a replayed record a no-op.
 */
export class SqliteStreamPositions {
  readonly #find: Database.Statement;
  readonly #record: Database.Statement;
  readonly #epoch: string;

  constructor(db: Database.Database, epoch: string) {
    this.#epoch = epoch;
    this.#find = db.prepare(
      `SELECT p.last_offset, p.seq, e.channel, e.type, e.data, e.time
         FROM stream_positions p LEFT JOIN events e ON e.seq = p.seq WHERE p.stream = ?`,
    );
    this.#record = db.prepare(
      `INSERT INTO stream_positions (stream, last_offset, seq) VALUES (?, ?, ?)
       ON CONFLICT (stream) DO UPDATE SET last_offset = excluded.last_offset, seq = excluded.seq`,
    );
  }

  /**
   * When the log already holds `offset` of `stream` (or a later one), the newest event stored
   * from that stream (its fields taken from `input` when retention has deleted it); else
   * undefined. Call inside the append transaction.
   */
  replayed(stream: string, offset: number, input: EventInput, now: number): StoredEvent | undefined {
    const row = this.#find.get(stream) as MarkRow | undefined;
    if (!row || offset > row.last_offset) return undefined;
    return makeStoredEvent(
      row.seq,
      row.channel ?? input.channel,
      row.type ?? input.type,
      row.data ?? input.data,
      row.time ?? now,
      this.#epoch,
    );
  }

  /** Records `offset` as the highest of `stream`, stored as event `seq`. Call inside the transaction. */
  record(stream: string, offset: number, seq: number): void {
    this.#record.run(stream, offset, seq);
  }
}
