import type Database from 'better-sqlite3';
import { isPattern, literalPrefix } from '../core/channel.js';
import { makeStoredEvent, type StoredEvent } from '../core/event.js';
import type { ReadPage } from '../core/event-store.js';
import { READ_SCAN_MAX_ROWS } from '../core/limits.js';
import { channelMatcher } from '../core/subscriber-index.js';

/**
 * Channel names one read looks up through the `(channel, seq)` index. A pattern set that covers
 * more (or has a leading wildcard, which no index can serve) is read in position order instead,
 * by rowid range: past this many names, one index seek per name per window costs more than
 * reading the window's rows.
 */
export const INDEX_MAX_CHANNELS = 64;

/** Prepared read statements kept, keyed by how many names they look up. */
const STATEMENT_CACHE = 64;

/** An `events` row as SQLite returns it. */
export interface EventRow {
  seq: number;
  channel: string;
  type: string;
  data: string;
  time: number;
}

/** How to find a pattern set's rows: by name through the index, or by scanning positions. */
type Plan = { kind: 'names'; names: string[] } | { kind: 'scan'; match: (channel: string) => boolean };

/**
 * `readPage` for the SQLite log: bounded work, linear in what it examines.
 *
 * Why not one `WHERE channel IN (...) OR channel BETWEEN ... ORDER BY seq LIMIT n`: SQLite
 * answers it from the `(channel, seq)` index, so it must sort every matching row after the
 * position to return the first n, and a replay that reads page after page sorts the rest of the
 * log each time: quadratic (a `orders.>` resume over 100,000 events held the event loop 8 s).
 * Here every query is bounded in positions (`seq > ? AND seq <= ?`, a window of at most
 * READ_SCAN_MAX_ROWS positions), so each sorts at most one window:
 *
 * - one name: a range of the index, already in `seq` order, at most `limit` rows;
 * - a few names (exact, or the names a prefix pattern such as `orders.>` or `orders.*` covers,
 *   found with one index seek per name): one seek per name into the window;
 * - otherwise (leading wildcards like `*.42`, or too many names): the window's rows by rowid,
 *   filtered with one trie walk per row.
 *
 * Windows start at the number of events still wanted and double while they come back short, so a
 * dense pattern reads what it returns and a sparse one crosses the log in few queries.
 */
export class SqliteLogReader {
  readonly #db: Database.Database;
  readonly #maxSeq: Database.Statement;
  readonly #nextName: Database.Statement;
  readonly #one: Database.Statement;
  readonly #scan: Database.Statement;
  readonly #byNames = new Map<number, Database.Statement>();
  readonly #epoch: string;

  constructor(db: Database.Database, epoch: string) {
    this.#db = db;
    this.#epoch = epoch;
    this.#maxSeq = db.prepare('SELECT MAX(seq) AS seq FROM events');
    // Skip-scan over the index: the next distinct name in [from, to), one seek each.
    this.#nextName = db.prepare('SELECT channel FROM events WHERE channel > ? AND channel < ? ORDER BY channel LIMIT 1');
    this.#one = db.prepare(
      `SELECT seq, channel, type, data, time FROM events
        WHERE channel = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
    );
    this.#scan = db.prepare(
      'SELECT seq, channel, type, data, time FROM events NOT INDEXED WHERE seq > ? AND seq <= ? ORDER BY seq',
    );
  }

  /** Reads one page; nothing at or above `visibleBelow` is shown (its fsync is still running). */
  page(patterns: readonly string[], after: number, limit: number, visibleBelow: number): ReadPage {
    const max = (this.#maxSeq.get() as { seq: number | null }).seq ?? 0;
    const last = Math.min(max, visibleBelow - 1);
    if (after >= last) return { events: [], through: Math.max(after, last), end: true };
    const plan = this.#plan(patterns);
    if (plan.kind === 'names' && plan.names.length === 0) return { events: [], through: last, end: true };
    if (plan.kind === 'names' && plan.names.length === 1) {
      const want = Math.min(limit, READ_SCAN_MAX_ROWS);
      const rows = this.#one.all(plan.names[0], after, last, want) as EventRow[];
      const full = rows.length === want;
      const through = full ? rows[rows.length - 1]!.seq : last;
      return { events: rows.map((r) => toEvent(r, this.#epoch)), through, end: through >= last };
    }
    const out: StoredEvent[] = [];
    let lo = after;
    let budget = READ_SCAN_MAX_ROWS;
    let window = Math.max(1, limit);
    while (lo < last && budget > 0 && out.length < limit) {
      const hi = Math.min(last, lo + Math.min(window, budget));
      budget -= hi - lo;
      if (plan.kind === 'names') {
        const want = limit - out.length;
        const rows = this.#namesStatement(plan.names.length).all(...plan.names, lo, hi, want) as EventRow[];
        for (const r of rows) out.push(toEvent(r, this.#epoch));
        if (rows.length === want) {
          const through = rows[rows.length - 1]!.seq;
          return { events: out, through, end: through >= last };
        }
      } else {
        for (const r of this.#scan.iterate(lo, hi) as IterableIterator<EventRow>) {
          if (!plan.match(r.channel)) continue;
          out.push(toEvent(r, this.#epoch));
          if (out.length === limit) {
            const through = r.seq;
            // Leaves the iterator early: better-sqlite3 resets the statement on return().
            return { events: out, through, end: through >= last };
          }
        }
      }
      lo = hi;
      window *= 2;
    }
    return { events: out, through: lo, end: lo >= last };
  }

  /** Names through the index when the patterns cover few, else a filtered scan by position. */
  #plan(patterns: readonly string[]): Plan {
    const names = new Set<string>();
    const wildcards: string[] = [];
    for (const p of patterns) {
      if (isPattern(p)) wildcards.push(p);
      else names.add(p);
    }
    const scan: Plan = { kind: 'scan', match: channelMatcher(patterns) };
    if (wildcards.length === 0) return names.size <= INDEX_MAX_CHANNELS ? { kind: 'names', names: [...names] } : scan;
    const matchWildcard = channelMatcher(wildcards);
    let seeks = 0;
    for (const prefix of new Set(wildcards.map(literalPrefix))) {
      // A leading wildcard has no literal prefix: every row is a candidate.
      if (prefix === '') return scan;
      // Channel tokens never hold '/', the character after '.', so [prefix, prefix + '/') is
      // exactly the names starting with prefix: an index range.
      const to = prefix.slice(0, -1) + '/';
      let from = prefix;
      for (;;) {
        if (++seeks > INDEX_MAX_CHANNELS) return scan;
        const row = this.#nextName.get(from, to) as { channel: string } | undefined;
        if (!row) break;
        if (matchWildcard(row.channel)) names.add(row.channel);
        if (names.size > INDEX_MAX_CHANNELS) return scan;
        from = row.channel;
      }
    }
    return { kind: 'names', names: [...names] };
  }

  #namesStatement(count: number): Database.Statement {
    let stmt = this.#byNames.get(count);
    if (!stmt) {
      stmt = this.#db.prepare(
        `SELECT seq, channel, type, data, time FROM events INDEXED BY events_by_channel
          WHERE channel IN (${Array.from({ length: count }, () => '?').join(',')}) AND seq > ? AND seq <= ?
          ORDER BY seq LIMIT ?`,
      );
      if (this.#byNames.size >= STATEMENT_CACHE) this.#byNames.clear();
      this.#byNames.set(count, stmt);
    }
    return stmt;
  }
}

function toEvent(r: EventRow, epoch: string): StoredEvent {
  return makeStoredEvent(r.seq, r.channel, r.type, r.data, r.time, epoch);
}
