import { HeraldClientError } from './errors.js';
import { isAfter, matches } from './ids.js';
import { Link, type LinkListener, type LinkOptions, type Status } from './link.js';
import type { EphemeralEventFrame, EventFrame, PresenceChangeFrame, PresenceMember, ResetReason } from './protocol.js';
import { canShareTabs, TabShare, type Backend } from './tabs.js';

/** Event types to the shape of their data, for typed handlers: `{ 'order.paid': { total: number } }`. */
export type EventMap = Record<string, unknown>;

/** One event as a handler gets it; with an EventMap, `type` narrows `data`. */
export type HeraldEvent<M extends EventMap = EventMap> = {
  [T in keyof M & string]: { id: string; channel: string; type: T; data: M[T]; time: string };
}[keyof M & string];

/** An ephemeral event (`client.signal`): delivered live, never stored, so it has no id. */
export type HeraldEphemeralEvent<M extends EventMap = EventMap> = {
  [T in keyof M & string]: { ephemeral: true; channel: string; type: T; data: M[T]; time: string };
}[keyof M & string];

/** The last id delivered per subscribed channel or pattern: persist it to resume after a reload. */
export type Position = Record<string, string>;

export interface PresenceChange {
  kind: 'join' | 'leave';
  channel: string;
  identity: string;
}

export interface Members {
  channel: string;
  members: PresenceMember[];
  anonymous: number;
}

export interface ConnectOptions extends LinkOptions {
  /** A position saved earlier (`client.position`): each subscription resumes after its id. */
  position?: Position | undefined;
  /** The server no longer has the events after a subscription's position: reload the app's state. */
  onReset?: ((channel: string, reason: ResetReason) => void) | undefined;
  /** Errors not tied to a call; `err.fatal` when the client stopped (credentials refused). */
  onError?: ((err: HeraldClientError) => void) | undefined;
  onStatus?: ((status: Status) => void) | undefined;
  /**
   * Share one connection among the tabs of this origin (default: in a browser page with Web
   * Locks and BroadcastChannel; never by default in Node). A string names the group, for several
   * clients on one origin.
   */
  shareAcrossTabs?: boolean | string | undefined;
}

export interface SubscribeOptions {
  /** Resume after this id (overrides the saved position of this channel). */
  since?: string | undefined;
  /** Receive presence changes of this channel in `onPresence`. */
  presence?: boolean | undefined;
  /** Also call the handler with the channel's ephemeral events (`signal`), which have no id. */
  ephemeral?: boolean | undefined;
}

export interface PublishOptions<T extends string = string> {
  type?: T | undefined;
  /** Publishing twice with one key stores one event (retry after a CONNECTION_LOST with it). */
  idempotencyKey?: string | undefined;
}

export interface Subscription {
  readonly channel: string;
  unsubscribe(): void;
}

type Handler<M extends EventMap> = (event: HeraldEvent<M>) => void;
type AnyHandler<M extends EventMap> = (event: HeraldEvent<M> | HeraldEphemeralEvent<M>) => void;

interface Channel<M extends EventMap> {
  /** Each handler, and whether it takes ephemeral events too. */
  handlers: Map<Handler<M>, boolean>;
  since: string | undefined;
  presence: boolean;
}

/** Herald's client: subscriptions that survive reconnects, publishes with acks, presence. */
export class HeraldClient<M extends EventMap = EventMap> {
  readonly #o: ConnectOptions;
  readonly #subs = new Map<string, Channel<M>>();
  readonly #presence = new Set<(c: PresenceChange) => void>();
  readonly #backend: Backend;
  #status: Status = 'connecting';

  constructor(o: ConnectOptions) {
    this.#o = o;
    const to: LinkListener = {
      event: (e) => this.#event(e),
      reset: (p, reason, head) => this.#reset(p, reason, head),
      presence: (c: PresenceChangeFrame) => {
        for (const h of this.#presence) h({ kind: c.op, channel: c.channel, identity: c.identity });
      },
      status: (s) => {
        this.#status = s;
        o.onStatus?.(s);
      },
      error: (e) => o.onError?.(e),
    };
    const share = o.shareAcrossTabs ?? canShareTabs();
    this.#backend =
      share !== false && canShareTabs()
        ? new TabShare(typeof share === 'string' ? share : `herald:${o.url}`, o, to, () => this.#subs)
        : new Link(o, to);
  }

  get status(): Status {
    return this.#status;
  }

  /** The last id delivered per subscription; save it, and pass it to `connect` to resume there. */
  get position(): Position {
    const p: Position = {};
    for (const [channel, c] of this.#subs) if (c.since !== undefined) p[channel] = c.since;
    return p;
  }

  /**
   * Calls `handler` for every event of `channel` (a name or a pattern) until unsubscribed; with
   * `ephemeral: true`, for its ephemeral events too.
   */
  subscribe(channel: string, handler: AnyHandler<M>, opts: SubscribeOptions & { ephemeral: true }): Subscription;
  subscribe(channel: string, handler: Handler<M>, opts?: SubscribeOptions): Subscription;
  subscribe(channel: string, handler: Handler<M>, opts: SubscribeOptions = {}): Subscription {
    let c = this.#subs.get(channel);
    const since = opts.since ?? this.#o.position?.[channel];
    const presence = opts.presence ?? false;
    if (!c || (presence && !c.presence) || (opts.since !== undefined && isAfter(c.since ?? opts.since, opts.since))) {
      c ??= { handlers: new Map(), since, presence };
      if (opts.since !== undefined) c.since = opts.since;
      c.presence ||= presence;
      this.#subs.set(channel, c);
      this.#backend.want(channel, c.since, c.presence);
    }
    c.handlers.set(handler, opts.ephemeral ?? false);
    return { channel, unsubscribe: () => this.unsubscribe(channel, handler) };
  }

  /** Stops `handler` (or every handler) of `channel`; the last one ends the subscription. */
  unsubscribe(channel: string, handler?: Handler<M> | AnyHandler<M>): void {
    const c = this.#subs.get(channel);
    if (!c) return;
    if (handler) c.handlers.delete(handler as Handler<M>);
    else c.handlers.clear();
    if (c.handlers.size > 0) return;
    this.#subs.delete(channel);
    this.#backend.drop(channel);
  }

  /** Publishes one event; resolves with its stored id, or rejects with the server's code. */
  publish<T extends keyof M & string>(channel: string, data: M[T], opts: PublishOptions<T> = {}): Promise<string> {
    return this.#backend.publish(channel, data, opts.type, opts.idempotencyKey) as Promise<string>;
  }

  /**
   * Sends an ephemeral event (typing indicators, cursors): Herald hands it to the subscribers
   * connected at that moment and stores nothing, so there is no id, no replay, no history.
   * Resolves once Herald took it.
   */
  async signal<T extends keyof M & string>(channel: string, data: M[T], opts: { type?: T | undefined } = {}): Promise<void> {
    await this.#backend.publish(channel, data, opts.type, undefined, true);
  }

  /** The members of a channel that tracks presence (`presence.channels` on the server). */
  async members(channel: string): Promise<Members> {
    const { members, anonymous } = await this.#backend.members(channel);
    return { channel, members, anonymous };
  }

  /** Calls `handler` on every join and leave of the channels subscribed with `presence: true`. */
  onPresence(handler: (change: PresenceChange) => void): () => void {
    this.#presence.add(handler);
    return () => this.#presence.delete(handler);
  }

  /** Ends the connection (or gives it to another tab) and every subscription. */
  close(): void {
    this.#backend.close();
    this.#subs.clear();
    this.#status = 'closed';
  }

  #event(e: EventFrame | EphemeralEventFrame): void {
    const ephemeral = e.id === undefined;
    for (const [channel, c] of this.#subs) {
      if (!matches(channel, e.channel)) continue;
      if (e.id !== undefined) {
        if (!isAfter(e.id, c.since)) continue;
        c.since = e.id;
      }
      for (const [h, takesEphemeral] of c.handlers) {
        if (ephemeral && !takesEphemeral) continue;
        try {
          h(e as unknown as HeraldEvent<M>);
        } catch (err) {
          // One handler's bug must not stop the others, nor hide itself.
          void Promise.reject(err);
        }
      }
    }
  }

  #reset(channel: string, reason: ResetReason, head: string): void {
    const c = this.#subs.get(channel);
    if (!c) return;
    c.since = head;
    this.#o.onReset?.(channel, reason);
  }
}

/** Connects to the Herald at `url` (`http(s)://host:port`). */
export function connect<M extends EventMap = EventMap>(options: ConnectOptions): HeraldClient<M> {
  return new HeraldClient<M>(options);
}
