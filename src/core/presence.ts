/** A member of a channel: one identity, however many connections (tabs) it has open. */
export interface PresenceMember {
  identity: string;
  connections: number;
}

export interface PresenceSnapshot {
  channel: string;
  members: PresenceMember[];
  /** Connections without an identity (anonymous subscribers of a public channel). */
  anonymous: number;
}

export interface PresenceChange {
  kind: 'join' | 'leave';
  channel: string;
  identity: string;
}

export type PresenceWatcher = (change: PresenceChange) => void;

/**
 * Who is subscribed to each presence-enabled channel (`presence.channels`): part of the backend
 * set (src/stores/backend.ts), because with several nodes the members of a channel are the union
 * of every node's connections.
 *
 * Specification every implementation keeps:
 *
 * - **Members are identities.** Three connections of one identity are one member with
 *   `connections: 3`; connections without an identity only count in `anonymous`.
 * - **join / leave.** `join` counts one connection and returns the function that takes it away
 *   again (idempotent: a connection that ends twice leaves once). A channel `enabled` does not
 *   match is not tracked: `join` returns a no-op and its snapshot stays empty.
 * - **Changes.** Watchers of a channel get `join` when an identity's first connection arrives
 *   and `leave` when its last one is gone, each exactly once per transition, in that order per
 *   identity. A leave waits `presence.leaveDelaySeconds`: a connection of the same identity
 *   within that window (a page reload) cancels it, and watchers see neither the leave nor a
 *   second join. A member waiting out that window is still in the snapshot.
 * - **Snapshot.** `snapshot` lists the members sorted by identity (byte order).
 * - **Dead nodes.** A connection counts only while the node holding it lives. The in-process
 *   store needs nothing for this: its entries die with the process. A shared store keeps each
 *   entry with its node and an expiry the node renews while it runs (a TTL), so the members of a
 *   node that died (killed, partitioned) leave, with their `leave` changes, once it lapses,
 *   instead of staying forever.
 * - **close()** is idempotent: pending leaves are dropped, joins after it are no-ops.
 */
export interface PresenceStore {
  /** True when `channel` (a name, not a pattern) tracks presence. */
  enabled(channel: string): boolean;
  /** Counts one connection of `identity` (undefined: anonymous); returns its leave function. */
  join(channel: string, identity: string | undefined): () => void;
  /** The members of `channel`, sorted by identity. */
  snapshot(channel: string): PresenceSnapshot;
  /** Calls `watcher` on every join and leave of `channel`; returns the unwatch function. */
  watch(channel: string, watcher: PresenceWatcher): () => void;
  close(): void;
}

/**
 * The watchers of each channel, for a PresenceStore: `watch` returns the unwatch function (the
 * channel's entry goes with its last watcher), `emit` calls a channel's watchers in the order
 * they came (a watcher that unwatches while called does not disturb the others).
 */
export class PresenceWatchers {
  readonly #byChannel = new Map<string, Set<PresenceWatcher>>();

  watch(channel: string, watcher: PresenceWatcher): () => void {
    let set = this.#byChannel.get(channel);
    if (!set) this.#byChannel.set(channel, (set = new Set()));
    set.add(watcher);
    return () => {
      const s = this.#byChannel.get(channel);
      if (!s) return;
      s.delete(watcher);
      if (s.size === 0) this.#byChannel.delete(channel);
    };
  }

  emit(change: PresenceChange): void {
    const set = this.#byChannel.get(change.channel);
    if (!set) return;
    for (const w of [...set]) w(change);
  }

  clear(): void {
    this.#byChannel.clear();
  }
}
