import type { StoredEvent } from './event.js';

/**
 * How a node hears events that any node (itself included) stored.
 *
 * Specification:
 * - `publish` is called by the hub after the events are in the log, in log order, once per
 *   committed batch. It must not reorder a batch.
 * - Every handler registered with `onEvents`, on every node, receives each published batch at
 *   most once, in the order published by that node. Across nodes no order is promised; the hub
 *   orders what a subscriber sees by `seq` (a late event is still delivered, never dropped).
 * - The memory broker delivers synchronously inside `publish`, so a single node dispatches in the
 *   same tick as the commit.
 * - `close()` is idempotent; `publish` after it rejects with ClosedError.
 */
export interface Broker {
  publish(events: readonly StoredEvent[]): Promise<void>;
  onEvents(handler: (events: readonly StoredEvent[]) => void): void;
  close(): Promise<void>;
}
