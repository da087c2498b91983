import type { Redis } from 'ioredis';
import { matches } from '../core/channel.js';
import { PresenceWatchers, type PresenceChange, type PresenceMember, type PresenceSnapshot, type PresenceStore, type PresenceWatcher } from '../core/presence.js';
import { BEAT_LUA, DELTA_LUA, FULL_LUA, SYNC_LUA, presenceKeys, runScript, type PresenceKeys } from './redis-presence-scripts.js';

/** milliseconds a dead node's entries outlive its last heartbeat (renewed every third of it). */
export const PRESENCE_NODE_TTL_MS = 15_000;
/**
 * milliseconds between full reads of every node's entries: announcements keep the mirror current
 * and a gap in their sequence forces a read at once; this catches a lost last announcement.
 */
export const PRESENCE_RESYNC_INTERVAL_MS = 30_000;
/** milliseconds: the smallest TTL, so a heartbeat (every third of it) is not a busy loop. */
const MIN_NODE_TTL_MS = 30;

export interface RedisPresenceOptions {
  /** The client for commands; owned by the caller. The store subscribes on a duplicate of it. */
  redis: Redis;
  /** Every key starts with it, e.g. `{herald}:`. */
  prefix: string;
  /** This node's unique id (no `|`). */
  node: string;
  /** Channel names and patterns that track presence (`presence.channels`). */
  patterns: readonly string[];
  /** milliseconds a member stays after its last connection everywhere. */
  leaveDelayMs: number;
  /** milliseconds after which a dead node's entries lapse; PRESENCE_NODE_TTL_MS by default. */
  ttlMs?: number;
}

/** One node's connections on one channel. */
interface NodeCounts {
  members: Map<string, number>;
  anonymous: number;
}

/** [channel, identity (null: anonymous), connections] */
type Entry = [string, string | null, number];

/** SYNC_LUA's answer: the seq it read at, the live nodes, each channel's hash as a flat list. */
type SyncReply = [number, string[], ...[string, string[]][]];

type Announcement = { t: 'd' | 'f'; n: string; e: Entry[] } | { t: 'r'; nodes: string[] };

/** The pending leave of a member whose last connection is gone everywhere. */
interface Present {
  leaveTimer: NodeJS.Timeout | undefined;
}

/**
 * The PresenceStore (src/core/presence.ts) shared by the nodes of one Redis deployment.
 *
 * The interface answers at once, so every node keeps a mirror of every other node's counts per
 * presence-enabled channel and answers from it plus its own connections. Its own counts it
 * writes to Redis (one script per batch, which also announces the change on `<prefix>presence`);
 * the other nodes apply the announcements, and read everything again periodically, after a
 * reconnect, and when the announcements' sequence shows a gap. Each node decides joins and
 * leaves for its own watchers from the cluster-wide count of each identity, so each watching node
 * sees each transition once, whichever node caused it.
 *
 * A node renews a heartbeat key (PX ttlMs) every third of the TTL; any node finding a heartbeat
 * gone removes that node's entries in one script (so a dead node is reaped, and announced, once).
 * Without Redis a node keeps answering from its mirror and its own connections, and writes its
 * whole state again when Redis is back.
 */
export class RedisPresenceStore implements PresenceStore {
  readonly #redis: Redis;
  readonly #sub: Redis;
  readonly #node: string;
  readonly #patterns: readonly string[];
  readonly #leaveDelayMs: number;
  readonly #ttlMs: number;
  readonly #keys: PresenceKeys;
  readonly #own = new Map<string, NodeCounts>();
  readonly #remote = new Map<string, Map<string, NodeCounts>>();
  readonly #present = new Map<string, Map<string, Present>>();
  readonly #watchers = new PresenceWatchers();
  readonly #timer: NodeJS.Timeout;
  readonly #onReady = () => this.#reconnected();
  #closed = false;

  // Writing this node's state: one script at a time, in order.
  readonly #dirty = new Map<string, [string, string | undefined]>();
  #needFull = true;
  #beatDue = false;
  #writing = false;

  // Reading the others': announcements apply in seq order; a read buffers those that cross it.
  #lastSeq: number | undefined;
  #buffer: { seq: number; body: string }[] | undefined;
  #resyncWanted = true;
  #lastResyncAt = 0;
  #syncing = false;
  /** Nodes in the mirror but not in Redis at the last read, since when (ms since the epoch). */
  readonly #absentSince = new Map<string, number>();

  constructor(opts: RedisPresenceOptions) {
    if (opts.node === '' || opts.node.includes('|')) throw new TypeError(`presence node id must be non-empty and without '|': ${opts.node}`);
    if (opts.ttlMs !== undefined && !(opts.ttlMs >= MIN_NODE_TTL_MS)) throw new TypeError(`presence ttlMs must be at least ${MIN_NODE_TTL_MS}: ${opts.ttlMs}`);
    // The scripts build most key names from the prefix; a client-side keyPrefix would reach
    // only the keys passed as KEYS and split the layout in two.
    if (opts.redis.options.keyPrefix) throw new TypeError('the presence client must have no keyPrefix: pass the prefix as `prefix`');
    this.#redis = opts.redis;
    this.#node = opts.node;
    this.#patterns = opts.patterns;
    this.#leaveDelayMs = opts.leaveDelayMs;
    this.#ttlMs = opts.ttlMs ?? PRESENCE_NODE_TTL_MS;
    this.#keys = presenceKeys(opts.prefix);
    this.#redis.on('ready', this.#onReady);
    this.#sub = this.#redis.duplicate();
    this.#sub.on('error', () => undefined);
    this.#sub.on('message', (_channel: string, message: string) => this.#onMessage(message));
    this.#sub.on('ready', () => {
      this.#resyncWanted = true;
      this.#sync();
    });
    this.#sub.subscribe(this.#keys.announce).then(
      () => {
        // Read everything once the announcements flow, so none falls between the read and them.
        this.#resyncWanted = true;
        this.#sync();
      },
      () => undefined,
    );
    this.#timer = setInterval(() => this.#tick(), Math.max(1, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
    this.#kick();
  }

  /** True when `channel` (a name, not a pattern) tracks presence. */
  enabled(channel: string): boolean {
    for (const p of this.#patterns) if (matches(p, channel)) return true;
    return false;
  }

  /** Counts one connection of `identity` (undefined: anonymous); returns its leave function. */
  join(channel: string, identity: string | undefined): () => void {
    if (this.#closed || !this.enabled(channel)) return noop;
    this.#change(channel, identity, 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (!this.#closed) this.#change(channel, identity, -1);
    };
  }

  #change(channel: string, identity: string | undefined, by: 1 | -1): void {
    let own = this.#own.get(channel);
    if (!own) this.#own.set(channel, (own = { members: new Map(), anonymous: 0 }));
    if (identity === undefined) own.anonymous += by;
    else {
      const n = (own.members.get(identity) ?? 0) + by;
      if (n > 0) own.members.set(identity, n);
      else own.members.delete(identity);
    }
    if (own.anonymous === 0 && own.members.size === 0) this.#own.delete(channel);
    this.#dirty.set(JSON.stringify([channel, identity ?? null]), [channel, identity]);
    if (identity !== undefined) this.#settle(channel, identity);
    this.#kick();
  }

  /** The members of `channel` across live nodes, sorted by identity; a leaving one counts 0. */
  snapshot(channel: string): PresenceSnapshot {
    const members: PresenceMember[] = [];
    for (const identity of this.#present.get(channel)?.keys() ?? []) members.push({ identity, connections: this.#total(channel, identity) });
    members.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
    let anonymous = this.#own.get(channel)?.anonymous ?? 0;
    for (const c of this.#remote.get(channel)?.values() ?? []) anonymous += c.anonymous;
    return { channel, members, anonymous };
  }

  /** Calls `watcher` on every join and leave of `channel`; returns the unwatch function. */
  watch(channel: string, watcher: PresenceWatcher): () => void {
    return this.#watchers.watch(channel, watcher);
  }

  /**
   * Removes this node's entries from Redis (its members leave on the other nodes, after their
   * leave delay) and stops timers and the subscription; idempotent. The removal is queued on the
   * caller's client before this returns, so closing that client afterwards still sends it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#redis.off('ready', this.#onReady);
    this.#sub.disconnect();
    for (const members of this.#present.values()) for (const p of members.values()) clearTimeout(p.leaveTimer);
    this.#present.clear();
    this.#watchers.clear();
    const k = this.#keys;
    runScript(this.#redis, SYNC_LUA, [k.nodes, k.seq], [k.hbPrefix, k.ncPrefix, k.chPrefix, k.announce, this.#node, this.#node, '0']).catch(() => undefined);
  }

  // ---- membership and changes -------------------------------------------------------------

  #total(channel: string, identity: string): number {
    let n = this.#own.get(channel)?.members.get(identity) ?? 0;
    for (const c of this.#remote.get(channel)?.values() ?? []) n += c.members.get(identity) ?? 0;
    return n;
  }

  /** Brings `identity`'s join/leave state in line with its count across the cluster. */
  #settle(channel: string, identity: string): void {
    if (this.#closed) return;
    let members = this.#present.get(channel);
    const p = members?.get(identity);
    if (this.#total(channel, identity) > 0) {
      if (p) {
        // Back within the leave window (on any node): the member never left.
        clearTimeout(p.leaveTimer);
        p.leaveTimer = undefined;
        return;
      }
      if (!members) this.#present.set(channel, (members = new Map()));
      members.set(identity, { leaveTimer: undefined });
      this.#emit({ kind: 'join', channel, identity });
      return;
    }
    if (!members || !p || p.leaveTimer) return;
    const gone = () => {
      members.delete(identity);
      if (members.size === 0) this.#present.delete(channel);
      this.#emit({ kind: 'leave', channel, identity });
    };
    if (this.#leaveDelayMs <= 0) return gone();
    p.leaveTimer = setTimeout(gone, this.#leaveDelayMs);
    p.leaveTimer.unref();
  }

  #emit(change: PresenceChange): void {
    this.#watchers.emit(change);
  }

  // ---- writing this node's state ----------------------------------------------------------

  #tick(): void {
    this.#beatDue = true;
    this.#kick();
    if (this.#absentSince.size > 0 || Date.now() - this.#lastResyncAt >= PRESENCE_RESYNC_INTERVAL_MS) this.#resyncWanted = true;
    this.#sync();
  }

  #reconnected(): void {
    this.#needFull = true;
    this.#resyncWanted = true;
    this.#kick();
    this.#sync();
  }

  #kick(): void {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    queueMicrotask(() => void this.#drain());
  }

  /** Sends this node's changes, one script at a time, until none is left or Redis fails. */
  async #drain(): Promise<void> {
    const k = this.#keys;
    const closed = () => this.#closed;
    const hb = k.hbPrefix + this.#node;
    const nc = k.ncPrefix + this.#node;
    try {
      while (!this.#closed && (this.#needFull || this.#dirty.size > 0 || this.#beatDue)) {
        this.#beatDue = false;
        if (this.#needFull) {
          this.#needFull = false;
          this.#dirty.clear();
          const entries = this.#ownEntries();
          await runScript(this.#redis, FULL_LUA, [hb, nc, k.seq, k.nodes], this.#writeArgs('f', entries), closed);
        } else if (this.#dirty.size > 0) {
          const entries: Entry[] = [];
          for (const [channel, identity] of this.#dirty.values()) entries.push([channel, identity ?? null, this.#ownCount(channel, identity)]);
          this.#dirty.clear();
          const r = await runScript(this.#redis, DELTA_LUA, [hb, nc, k.seq], this.#writeArgs('d', entries), closed);
          if (r === -1) this.#needFull = true;
        } else {
          if ((await runScript(this.#redis, BEAT_LUA, [hb], [this.#ttlMs], closed)) === 0) this.#needFull = true;
        }
      }
    } catch {
      // Redis is away: the whole state is written again on the next tick or reconnect.
      this.#needFull = true;
    } finally {
      this.#writing = false;
    }
  }

  #ownCount(channel: string, identity: string | undefined): number {
    const own = this.#own.get(channel);
    return (identity === undefined ? own?.anonymous : own?.members.get(identity)) ?? 0;
  }

  #ownEntries(): Entry[] {
    const entries: Entry[] = [];
    for (const [channel, own] of this.#own) {
      if (own.anonymous > 0) entries.push([channel, null, own.anonymous]);
      for (const [identity, n] of own.members) entries.push([channel, identity, n]);
    }
    return entries;
  }

  #writeArgs(t: 'd' | 'f', entries: Entry[]): (string | number)[] {
    const args: (string | number)[] = [this.#ttlMs, this.#node, this.#keys.chPrefix, this.#keys.announce, JSON.stringify({ t, n: this.#node, e: entries })];
    for (const [channel, identity, n] of entries) args.push(channel, identity === null ? this.#node : `${this.#node}|${identity}`, n);
    return args;
  }

  // ---- reading the other nodes' state -----------------------------------------------------

  /** Reaps dead nodes and, when wanted, reads every node's state again. One at a time. */
  #sync(): void {
    if (this.#syncing || this.#closed) return;
    this.#syncing = true;
    const read = this.#resyncWanted;
    if (read) {
      this.#resyncWanted = false;
      this.#buffer = [];
    }
    const k = this.#keys;
    runScript(this.#redis, SYNC_LUA, [k.nodes, k.seq], [k.hbPrefix, k.ncPrefix, k.chPrefix, k.announce, this.#node, '', read ? '1' : '0']).then(
      (reply) => {
        this.#syncing = false;
        if (this.#closed) return;
        if (read) this.#resynced(reply as SyncReply);
        // A read asked for while this one ran (a gap, a reconnect) runs now, not a tick later.
        if (this.#resyncWanted) this.#sync();
      },
      () => {
        this.#syncing = false;
        if (!read) return;
        this.#resyncWanted = true;
        const buffered = this.#buffer ?? [];
        this.#buffer = undefined;
        for (const m of buffered) this.#apply(m.seq, m.body);
      },
    );
  }

  /** Replaces the mirror with what Redis held at `seq`, then applies what was announced since. */
  #resynced([seq, liveNodes, ...channels]: SyncReply): void {
    const now = Date.now();
    this.#lastResyncAt = now;
    const next = new Map<string, Map<string, NodeCounts>>();
    for (const [channel, flat] of channels) {
      if (!this.enabled(channel)) continue;
      const nodes = new Map<string, NodeCounts>();
      for (let i = 0; i < flat.length; i += 2) {
        const field = flat[i]!;
        const bar = field.indexOf('|');
        const node = bar < 0 ? field : field.slice(0, bar);
        if (node === this.#node) continue;
        let c = nodes.get(node);
        if (!c) nodes.set(node, (c = { members: new Map(), anonymous: 0 }));
        if (bar < 0) c.anonymous = Number(flat[i + 1]);
        else c.members.set(field.slice(bar + 1), Number(flat[i + 1]));
      }
      if (nodes.size > 0) next.set(channel, nodes);
    }
    // A node missing from Redis altogether (its removal unannounced, or Redis restarted empty)
    // keeps its entries for one TTL: a live node writes its state again within that time.
    const live = new Set(liveNodes);
    for (const node of live) this.#absentSince.delete(node);
    for (const [channel, nodes] of this.#remote) {
      for (const [node, c] of nodes) {
        if (live.has(node)) continue;
        const since = this.#absentSince.get(node) ?? now;
        if (now - since >= this.#ttlMs) continue;
        this.#absentSince.set(node, since);
        let kept = next.get(channel);
        if (!kept) next.set(channel, (kept = new Map()));
        kept.set(node, c);
      }
    }
    for (const node of this.#absentSince.keys()) if (!live.has(node) && now - this.#absentSince.get(node)! >= this.#ttlMs) this.#absentSince.delete(node);
    const touched = [...this.#identities(this.#remote), ...this.#identities(next)];
    this.#remote.clear();
    for (const [channel, nodes] of next) this.#remote.set(channel, nodes);
    const buffered = this.#buffer ?? [];
    this.#buffer = undefined;
    this.#lastSeq = seq;
    // The mirror is whole again before anyone is judged joined or gone.
    for (const m of buffered) this.#apply(m.seq, m.body, touched);
    for (const [channel, identity] of touched) this.#settle(channel, identity);
  }

  *#identities(mirror: Map<string, Map<string, NodeCounts>>): Iterable<[string, string]> {
    for (const [channel, nodes] of mirror) for (const c of nodes.values()) for (const identity of c.members.keys()) yield [channel, identity];
  }

  #onMessage(message: string): void {
    const space = message.indexOf(' ');
    const seq = Number(message.slice(0, space));
    const body = message.slice(space + 1);
    if (this.#buffer) this.#buffer.push({ seq, body });
    else this.#apply(seq, body);
  }

  /** Applies one announcement to the mirror; settles the identities it touched unless `into` collects them. */
  #apply(seq: number, body: string, into?: [string, string][]): void {
    if (this.#closed) return;
    if (this.#lastSeq !== undefined && seq <= this.#lastSeq) return; // already in the mirror
    if (this.#lastSeq === undefined || seq > this.#lastSeq + 1) {
      // A message was lost (or none came before): its content is read again.
      this.#resyncWanted = true;
      queueMicrotask(() => this.#sync());
    }
    this.#lastSeq = seq;
    let a: Announcement;
    try {
      a = JSON.parse(body) as Announcement;
    } catch {
      return;
    }
    const touched = into ?? [];
    if (a.t === 'r') {
      for (const node of a.nodes) {
        this.#absentSince.delete(node);
        if (node === this.#node) {
          // Reaped as dead (a pause longer than the TTL): write the whole state again.
          this.#needFull = true;
          this.#kick();
        } else this.#dropNode(node, touched);
      }
    } else if (a.n !== this.#node) {
      this.#absentSince.delete(a.n);
      if (a.t === 'f') this.#dropNode(a.n, touched);
      for (const [channel, identity, n] of a.e) {
        if (!this.enabled(channel)) continue;
        let nodes = this.#remote.get(channel);
        if (!nodes) this.#remote.set(channel, (nodes = new Map()));
        let c = nodes.get(a.n);
        if (!c) nodes.set(a.n, (c = { members: new Map(), anonymous: 0 }));
        if (identity === null) c.anonymous = n;
        else {
          if (n > 0) c.members.set(identity, n);
          else c.members.delete(identity);
          touched.push([channel, identity]);
        }
        if (c.anonymous === 0 && c.members.size === 0) nodes.delete(a.n);
        if (nodes.size === 0) this.#remote.delete(channel);
      }
    }
    if (!into) for (const [channel, identity] of touched) this.#settle(channel, identity);
  }

  #dropNode(node: string, touched: [string, string][]): void {
    for (const [channel, nodes] of this.#remote) {
      const c = nodes.get(node);
      if (!c) continue;
      nodes.delete(node);
      if (nodes.size === 0) this.#remote.delete(channel);
      for (const identity of c.members.keys()) touched.push([channel, identity]);
    }
  }
}

function noop(): void {}
