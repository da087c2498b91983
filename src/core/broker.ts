import type { StoredEvent } from './event.js';

/**
 * How a node hears events that any node (itself included) stored.
 *
 * Specification:
 * - `publish` is called by the hub after the events are in the log, in log order, once per
 *   committed batch. It must not reorder a batch.
 * - Every handler registered with `onEvents`, on every node, receives each published batch
 *   once, in commit (`seq`) order. A subscription treats anything at or below the last position
 *   it delivered as a duplicate (that is how replay and live events meet without a gap), so a
 *   broker that spans nodes must deliver in `seq` order, or the hub must reorder before
 *   dispatch (for example a short hold-back window keyed by `seq`, as a Redis-backed broker
 *   will need).
 * - The memory broker delivers synchronously inside `publish`, so a single node dispatches in the
 *   same tick as the commit.
 * - `close()` is idempotent; `publish` after it rejects with ClosedError.
 */
export interface Broker {
  publish(events: readonly StoredEvent[]): Promise<void>;
  onEvents(handler: (events: readonly StoredEvent[]) => void): void;
  close(): Promise<void>;
}
