import type { StoredEvent } from './event.js';

/**
 * How a node learns that the log moved: events any node (itself included) appended.
 *
 * The log is the order; the broker is only the news. Specification every implementation keeps
 * (test/contract/broker.contract.ts checks it, and checks that the hub copes when it does not):
 *
 * - **Publish after commit.** The hub calls `publish` once per committed batch, after the events
 *   are in the log (never for an event that was not stored), in log order on that node. A
 *   broker must not reorder a batch.
 * - **Delivery.** Every handler registered with `onEvents`, on every node, should receive each
 *   published batch once, in `seq` order. This is what keeps latency low; it is *not* what keeps
 *   events: the hub (core/log-follower.ts) knows the last `seq` it dispatched, ignores a batch
 *   entirely at or below it, and when a batch does not start right after it (a batch was
 *   dropped, delayed or reordered, or another node's notification was lost) reads the missing
 *   range from the log first. So a lost or late notification costs latency, never an event, and
 *   a duplicate costs nothing. A broker whose transport can stay silent after a failure (a
 *   pub/sub connection that stopped receiving) must probe it, since the hub fills a gap only
 *   when the next batch shows it.
 * - **Failure.** `publish` rejects when the broker could not take the batch. The events are
 *   stored, so the publish that made them is still acknowledged; the hub then reports the
 *   broker not ready (`/readyz` 503, check `broker`), refuses new publishes with
 *   BROKER_UNAVAILABLE (503) before they are appended, hands the events to its own subscribers
 *   itself, and sends the batch again every BROKER_RETRY_MS until it goes through.
 * - **Same node.** The memory broker delivers synchronously inside `publish`, so a single node
 *   dispatches in the same tick as the commit.
 * - `close()` is idempotent; `publish` after it rejects with ClosedError.
 */
export interface Broker {
  publish(events: readonly StoredEvent[]): Promise<void>;
  onEvents(handler: (events: readonly StoredEvent[]) => void): void;
  close(): Promise<void>;
}

/**
 * Milliseconds between attempts to reach a broker that failed: soon enough that a node is ready
 * again within a second of the broker coming back, rare enough to cost a down broker nothing.
 */
export const BROKER_RETRY_MS = 1_000;
