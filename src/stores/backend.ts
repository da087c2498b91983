import { accessSync, constants as fsConstants } from 'node:fs';
import { dirname } from 'node:path';
import type { DeliveryStore } from '../core/delivery-store.js';
import type { EventStore } from '../core/event-store.js';
import type { Receipt, ReceiptInput, ReceiptQuery } from '../core/inbound-receipt.js';
import { newEpoch } from '../core/position.js';
import type { PresenceStore } from '../core/presence.js';
import { PresenceRegistry } from '../presence/presence-registry.js';
import { MemoryDeliveryStore } from './memory-delivery-store.js';
import { MemoryEventStore } from './memory-event-store.js';
import { SqliteDeliveryStore } from './sqlite-delivery-store.js';
import { SqliteEventStore } from './sqlite-event-store.js';
import { sqliteWriteProbe } from './sqlite-write-probe.js';

/** The `backend` config union (src/config/schema.ts): one case per kind of backend. */
export type BackendOptions =
  | { readonly type: 'sqlite'; readonly file: string; readonly synchronous: 'full' | 'normal' }
  | { readonly type: 'memory' };

/** What every backend's presence store needs (the `presence` config section). */
export interface PresenceOptions {
  /** Channel names and patterns that track presence (`presence.channels`). */
  readonly patterns: readonly string[];
  /** milliseconds a member stays after its last connection (`presence.leaveDelaySeconds`). */
  readonly leaveDelayMs: number;
}

/**
 * Everything that must live together, from one backend: what is written in one transaction
 * (an event, its idempotency key, its inbound receipt, its Kafka offset) and what is owed from
 * it (outbound deliveries, their leases, the planner's cursor and lease) survive or vanish
 * together; presence and coordination are shared by exactly the nodes that share the log.
 */
export interface BackendSet {
  readonly type: BackendOptions['type'];
  /** The log, with idempotency keys and stream positions (EventStore); lent to the hub only. */
  readonly log: EventStore;
  /** Inbound receipts, for the webhook receiver (its InboundLog interface). */
  readonly inbound: {
    recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]>;
    listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]>;
    getReceipt(source: string, id: number): Promise<Receipt | undefined>;
  };
  /**
   * Outbound endpoints, deliveries and their leases, the planner's cursor, and the named leases
   * that coordinate the nodes (`planner`: the one node that plans deliveries).
   */
  readonly deliveries: DeliveryStore;
  /**
   * Who is connected to each presence-enabled channel. Memory and SQLite keep it in process:
   * presence is about this node's live connections, and no other node shares it; a shared
   * backend (Redis) brings its own, with a TTL on each node's entries.
   */
  readonly presence: PresenceStore;
  /**
   * A small write that proves the backend takes writes again after a failed append (a full disk),
   * without touching the log; none where a failed append cannot come back by itself.
   */
  readonly writeProbe?: () => void;
  /** Closes presence and the log (the delivery store is closed by the outbound wing, before this). */
  close(): Promise<void>;
}

/**
 * The one place that knows every backend. A new backend (Redis, Postgres) is one new case here,
 * returning its own implementation of each interface, each passing the same contract suites.
 */
export function createBackend(opts: BackendOptions, presenceOptions: PresenceOptions = NO_PRESENCE): BackendSet {
  switch (opts.type) {
    case 'memory': {
      // Message ids of the delivery queue carry the log's epoch, as in SQLite.
      const epoch = newEpoch();
      const log = new MemoryEventStore({ epoch });
      const deliveries = new MemoryDeliveryStore({ logId: epoch });
      const presence = new PresenceRegistry(presenceOptions);
      return { type: opts.type, log, inbound: log, deliveries, presence, close: closeAll(presence, log) };
    }
    case 'sqlite': {
      // One file: its migrations (sqlite-migrations.ts) make every table; the delivery queue
      // shares the log's connection, and its acknowledged writes wait for the log's fsync.
      const log = openSqlite(opts);
      const deliveries = new SqliteDeliveryStore(log.database, { sync: () => log.sync() });
      const writeProbe = sqliteWriteProbe(log.database);
      const presence = new PresenceRegistry(presenceOptions);
      return { type: opts.type, log, inbound: log, deliveries, presence, writeProbe, close: closeAll(presence, log) };
    }
  }
}

/** No channel tracks presence (a backend made without the presence config, as in some tests). */
const NO_PRESENCE: PresenceOptions = { patterns: [], leaveDelayMs: 0 };

function closeAll(presence: PresenceStore, log: EventStore): () => Promise<void> {
  return () => {
    presence.close();
    return log.close();
  };
}

/**
 * Herald cannot start for a reason the operator can fix (a database it cannot open). The message
 * is one line that names the config key or file and the cause; the CLI prints it without a stack.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

function openSqlite(opts: Extract<BackendOptions, { type: 'sqlite' }>): SqliteEventStore {
  try {
    return new SqliteEventStore({ file: opts.file, synchronous: opts.synchronous });
  } catch (err) {
    // A corrupt file (SQLITE_NOTADB), a read-only one (SQLITE_READONLY), a folder we may not
    // write (EACCES): the operator needs the path and the cause, not a stack trace.
    const e = err as { message?: string; code?: string };
    const code = e.code !== undefined && !String(e.message).includes(e.code) ? ` (${e.code})` : '';
    throw new StartupError(
      `cannot open the database file ${opts.file} (backend.file): ${e.message ?? String(err)}${code}${writeProblem(opts.file)}`,
      { cause: err },
    );
  }
}

/**
 * Why SQLite may not write `file` or its folder (it needs both: the WAL and the shared-memory
 * file sit beside the database), as a clause to append to an error; '' when both are writable.
 */
function writeProblem(file: string): string {
  for (const path of [file, dirname(file)]) {
    try {
      accessSync(path, fsConstants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') return `; ${path} is not writable (${e.code ?? e.message})`;
    }
  }
  return '';
}
