import { HeraldClientError } from './errors.js';
import { platform, type BroadcastChannelLike } from './env.js';
import { Link, type LinkListener, type LinkOptions, type Status } from './link.js';
import type { PresenceSnapshotFrame } from './protocol.js';

/** What the client asks of its connection, whether it holds it or another tab does. */
export interface Backend {
  readonly status: Status;
  want(pattern: string, since: string | undefined, presence: boolean): void;
  drop(pattern: string): void;
  /** Resolves with the stored id; with `ephemeral`, with undefined (nothing is stored). */
  publish(channel: string, data: unknown, type?: string, idempotencyKey?: string, ephemeral?: boolean): Promise<string | undefined>;
  members(channel: string): Promise<PresenceSnapshotFrame>;
  close(): void;
}

/** The subscriptions of this tab, with their positions (read when a new leader asks). */
export type Positions = () => ReadonlyMap<string, { since: string | undefined; presence: boolean }>;

/** Messages between the tabs of one origin (BroadcastChannel: structured clones). */
type Msg =
  | { k: 'hello' }
  | { k: 'hi' }
  | { k: 'want'; from: string; p: string; since: string | undefined; presence: boolean }
  | { k: 'drop'; from: string; p: string }
  | { k: 'bye'; from: string }
  | { k: 'ask'; from: string; rid: number; op: 'pub' | 'mem'; args: unknown[] }
  | { k: 'reply'; to: string; rid: number; v?: unknown; err?: { code: HeraldClientError['code']; message: string; status?: number } }
  | { k: 'ev'; e: Parameters<LinkListener['event']>[0] }
  | { k: 'reset'; p: string; reason: Parameters<LinkListener['reset']>[1]; head: string }
  | { k: 'pres'; c: Parameters<LinkListener['presence']>[0] }
  | { k: 'status'; s: Status }
  | { k: 'error'; code: HeraldClientError['code']; message: string; status?: number; fatal: boolean };

/**
 * True where tabs can share one connection: a browser page (Node 24 has Web Locks and
 * BroadcastChannel too, but its clients in one process are not tabs, and must not wait on a
 * leader among themselves), with Web Locks and BroadcastChannel.
 */
export function canShareTabs(): boolean {
  return platform.document !== undefined && platform.navigator?.locks !== undefined && platform.BroadcastChannel !== undefined;
}

/**
 * One connection per browser: the tabs of one origin elect a leader with a Web Lock (held until
 * the tab closes, then granted to the next tab waiting); the leader holds the connection and
 * relays events, resets, presence and status over a BroadcastChannel, and answers the other
 * tabs' publishes. A new leader asks every tab for its subscriptions and their positions and
 * resumes each from there, so a tab sees no gap when the leader goes.
 */
export class TabShare implements Backend {
  readonly #bc: BroadcastChannelLike;
  readonly #id = Math.random().toString(36).slice(2);
  readonly #opts: LinkOptions;
  readonly #to: LinkListener;
  readonly #positions: Positions;
  /** Leader only: which tabs want each pattern. */
  readonly #owners = new Map<string, Set<string>>();
  readonly #asks = new Map<number, { op: 'pub' | 'mem'; args: unknown[]; ok: (v: unknown) => void; fail: (e: HeraldClientError) => void }>();
  #rid = 0;
  #link: Link | undefined;
  #release: (() => void) | undefined;
  #status: Status = 'connecting';
  #closed = false;

  constructor(name: string, opts: LinkOptions, to: LinkListener, positions: Positions) {
    this.#opts = opts;
    this.#to = to;
    this.#positions = positions;
    this.#bc = new platform.BroadcastChannel!(name);
    this.#bc.onmessage = (m) => this.#message(m.data as Msg);
    void platform.navigator!.locks!.request(name, () => new Promise<void>((release) => this.#lead(release)));
    this.#post({ k: 'hi' });
    // A closing tab hands over at once: the leader its lock, a follower its subscriptions.
    platform.addEventListener?.('pagehide', () => this.close());
  }

  get status(): Status {
    return this.#link?.status ?? this.#status;
  }

  /** True while this tab holds the connection. */
  get leader(): boolean {
    return this.#link !== undefined;
  }

  want(p: string, since: string | undefined, presence: boolean): void {
    if (this.#link) this.#own(this.#id, p, since, presence);
    else this.#post({ k: 'want', from: this.#id, p, since, presence });
  }

  drop(p: string): void {
    if (this.#link) this.#unown(this.#id, p);
    else this.#post({ k: 'drop', from: this.#id, p });
  }

  publish(channel: string, data: unknown, type?: string, key?: string, ephemeral?: boolean): Promise<string | undefined> {
    return this.#link
      ? this.#link.publish(channel, data, type, key, ephemeral)
      : (this.#ask('pub', [channel, data, type, key, ephemeral]) as Promise<string | undefined>);
  }

  members(channel: string): Promise<PresenceSnapshotFrame> {
    return this.#link ? this.#link.members(channel) : (this.#ask('mem', [channel]) as Promise<PresenceSnapshotFrame>);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#link) this.#post({ k: 'bye', from: this.#id });
    this.#link?.close();
    this.#link = undefined;
    this.#release?.();
    this.#bc.close();
    this.#failAsks('CLOSED');
  }

  #lead(release: () => void): void {
    if (this.#closed) return release();
    this.#release = release;
    const bc = (m: Msg) => this.#post(m);
    const to = this.#to;
    this.#link = new Link(this.#opts, {
      event: (e) => (to.event(e), bc({ k: 'ev', e })),
      reset: (p, reason, head) => (to.reset(p, reason, head), bc({ k: 'reset', p, reason, head })),
      presence: (c) => (to.presence(c), bc({ k: 'pres', c })),
      status: (s) => (to.status(s), bc({ k: 'status', s })),
      error: (e) => (to.error(e), bc({ k: 'error', code: e.code, message: e.message, status: e.status, fatal: e.fatal })),
    });
    for (const [p, w] of this.#positions()) this.#own(this.#id, p, w.since, w.presence);
    this.#failAsks('CONNECTION_LOST'); // asked of the leader that went: their outcome is unknown
    this.#post({ k: 'hello' });
  }

  #own(from: string, p: string, since: string | undefined, presence: boolean): void {
    let set = this.#owners.get(p);
    if (!set) this.#owners.set(p, (set = new Set()));
    set.add(from);
    this.#link!.want(p, since, presence);
  }

  #unown(from: string, p: string): void {
    const set = this.#owners.get(p);
    set?.delete(from);
    if (set?.size === 0) {
      this.#owners.delete(p);
      this.#link!.drop(p);
    }
  }

  #message(m: Msg): void {
    if (this.#closed) return;
    const link = this.#link;
    if (link) {
      if (m.k === 'want') this.#own(m.from, m.p, m.since, m.presence);
      else if (m.k === 'drop') this.#unown(m.from, m.p);
      else if (m.k === 'bye') for (const p of [...this.#owners.keys()]) this.#unown(m.from, p);
      else if (m.k === 'hi') this.#post({ k: 'status', s: link.status });
      else if (m.k === 'ask') {
        const [a, b, c, d, e] = m.args as [string, unknown, string | undefined, string | undefined, boolean | undefined];
        (m.op === 'pub' ? link.publish(a, b, c, d, e) : link.members(a)).then(
          (v) => this.#post({ k: 'reply', to: m.from, rid: m.rid, v }),
          (e: HeraldClientError) => this.#post({ k: 'reply', to: m.from, rid: m.rid, err: { code: e.code, message: e.message, status: e.status } }),
        );
      }
      return;
    }
    const to = this.#to;
    if (m.k === 'ev') to.event(m.e);
    else if (m.k === 'reset') to.reset(m.p, m.reason, m.head);
    else if (m.k === 'pres') to.presence(m.c);
    else if (m.k === 'status') to.status((this.#status = m.s));
    else if (m.k === 'error') to.error(new HeraldClientError(m.code, m.message, m.status, m.fatal));
    else if (m.k === 'hello') {
      this.#failAsks('CONNECTION_LOST');
      for (const [p, w] of this.#positions()) this.#post({ k: 'want', from: this.#id, p, since: w.since, presence: w.presence });
    } else if (m.k === 'reply' && m.to === this.#id) {
      const a = this.#asks.get(m.rid);
      this.#asks.delete(m.rid);
      if (m.err) a?.fail(new HeraldClientError(m.err.code, m.err.message, m.err.status));
      else a?.ok(m.v);
    }
  }

  #ask(op: 'pub' | 'mem', args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new HeraldClientError('CLOSED', 'the client is closed'));
    return new Promise((ok, fail) => {
      const rid = ++this.#rid;
      this.#asks.set(rid, { op, args, ok, fail });
      this.#post({ k: 'ask', from: this.#id, rid, op, args });
    });
  }

  /**
   * The leader changed (or this client closed): a publish asked of the old leader may or may not
   * have been sent, so it fails; a members query only reads, so it is asked again of the new one
   * (this tab's own connection when it is the new leader: the first tab of an origin asks before
   * its lock is granted, of a leader that does not exist yet).
   */
  #failAsks(code: 'CONNECTION_LOST' | 'CLOSED'): void {
    const asks = [...this.#asks.values()];
    this.#asks.clear();
    for (const a of asks) {
      if (code === 'CONNECTION_LOST' && a.op === 'mem') this.members(a.args[0] as string).then(a.ok, a.fail);
      else a.fail(new HeraldClientError(code, 'the tab holding the connection went before answering'));
    }
  }

  #post(m: Msg): void {
    if (!this.#closed) this.#bc.postMessage(m);
  }
}
