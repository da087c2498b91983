import type { EventInput, StoredEvent } from '../../core/event.js';
import type { AppendResult, LogBounds } from '../../core/event-store.js';
import type { Position } from '../../core/position.js';
import type { Subscription } from '../../core/subscription.js';

/**
 * What the outbound wing needs of the log, and nothing more: the planner follows it as a
 * subscriber and reads its head, an operator's replay reads it by position, and a disabled
 * endpoint is announced by a publish. The hub (src/core/hub.ts) satisfies it; the wing never sees
 * the hub's other powers nor the store behind it, so a test or another host can hand it any log.
 */
export interface OutboundLog {
  /** The newest position, the prune watermark and the epoch (see EventStore `head`). */
  head(): Promise<LogBounds>;
  /** Events after `after` matching `patterns`, oldest first, at most `limit`. */
  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]>;
  /** Joins `sub` to the live events, after replaying from `since` (see Hub `subscribe`). */
  subscribe(sub: Subscription, since?: Position): Promise<void>;
  /** Takes `sub` out of the live events. Idempotent. */
  unsubscribe(sub: Subscription): void;
  /** Appends events, as any publisher does (the `endpoint.disabled` announcement). */
  publish(inputs: readonly EventInput[]): Promise<AppendResult[]>;
}
