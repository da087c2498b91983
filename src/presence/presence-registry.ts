import { matches } from '../core/channel.js';
import { PresenceWatchers, type PresenceMember, type PresenceSnapshot, type PresenceStore, type PresenceChange, type PresenceWatcher } from '../core/presence.js';

interface Member {
  connections: number;
  /** Set while the last connection is gone and the leave waits out the debounce. */
  leaveTimer: NodeJS.Timeout | undefined;
}

/**
 * The in-process PresenceStore (src/core/presence.ts): who is subscribed to each presence-enabled
 * channel (`presence.channels`) on this node. It is the whole truth for the memory and SQLite
 * backends, whose nodes share no presence; its entries die with the process, so it needs no TTL.
 *
 * A member is an identity: three tabs of one user are one member with three connections. When an
 * identity's last connection goes (closed, or dropped by the heartbeat when its peer vanished),
 * its `leave` waits `leaveDelayMs`: a reconnect within that window (a page reload, a network
 * blip) cancels it, so watchers see no leave/join pair.
 */
export class PresenceRegistry implements PresenceStore {
  readonly #patterns: readonly string[];
  readonly #leaveDelayMs: number;
  readonly #channels = new Map<string, Map<string, Member>>();
  readonly #anonymous = new Map<string, number>();
  readonly #watchers = new PresenceWatchers();
  #closed = false;

  constructor(opts: { patterns: readonly string[]; leaveDelayMs: number }) {
    this.#patterns = opts.patterns;
    this.#leaveDelayMs = opts.leaveDelayMs;
  }

  /** True when `channel` (a name, not a pattern) tracks presence. */
  enabled(channel: string): boolean {
    for (const p of this.#patterns) if (matches(p, channel)) return true;
    return false;
  }

  /**
   * Counts one connection of `identity` (undefined: anonymous) on `channel`. Returns the function
   * that takes it away again (idempotent). Channels without presence return a no-op.
   */
  join(channel: string, identity: string | undefined): () => void {
    if (this.#closed || !this.enabled(channel)) return noop;
    if (identity === undefined) {
      this.#anonymous.set(channel, (this.#anonymous.get(channel) ?? 0) + 1);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const n = (this.#anonymous.get(channel) ?? 1) - 1;
        if (n <= 0) this.#anonymous.delete(channel);
        else this.#anonymous.set(channel, n);
      };
    }
    let members = this.#channels.get(channel);
    if (!members) this.#channels.set(channel, (members = new Map()));
    const m = members.get(identity);
    if (m) {
      m.connections++;
      if (m.leaveTimer) {
        // Back within the debounce window: the member never left.
        clearTimeout(m.leaveTimer);
        m.leaveTimer = undefined;
      }
    } else {
      members.set(identity, { connections: 1, leaveTimer: undefined });
      this.#emit({ kind: 'join', channel, identity });
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#leave(channel, identity);
    };
  }

  #leave(channel: string, identity: string): void {
    const members = this.#channels.get(channel);
    const m = members?.get(identity);
    if (!members || !m) return;
    m.connections--;
    if (m.connections > 0 || this.#closed) return;
    const gone = () => {
      members.delete(identity);
      if (members.size === 0) this.#channels.delete(channel);
      this.#emit({ kind: 'leave', channel, identity });
    };
    if (this.#leaveDelayMs <= 0) return gone();
    m.leaveTimer = setTimeout(gone, this.#leaveDelayMs);
    m.leaveTimer.unref();
  }

  /** The members of `channel`, sorted by identity. A member in its leave window still counts. */
  snapshot(channel: string): PresenceSnapshot {
    const members: PresenceMember[] = [];
    for (const [identity, m] of this.#channels.get(channel) ?? []) members.push({ identity, connections: m.connections });
    members.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
    return { channel, members, anonymous: this.#anonymous.get(channel) ?? 0 };
  }

  /** Calls `watcher` on every join and leave of `channel`; returns the unwatch function. */
  watch(channel: string, watcher: PresenceWatcher): () => void {
    return this.#watchers.watch(channel, watcher);
  }

  #emit(change: PresenceChange): void {
    this.#watchers.emit(change);
  }

  /** Drops every pending leave timer; idempotent. */
  close(): void {
    this.#closed = true;
    for (const members of this.#channels.values()) for (const m of members.values()) clearTimeout(m.leaveTimer);
    this.#channels.clear();
    this.#watchers.clear();
  }
}

function noop(): void {}
