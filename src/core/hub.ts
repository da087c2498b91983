import type { Broker } from './broker.js';
import { BrokerLink } from './broker-link.js';
import { ClosedError, HeraldError } from './errors.js';
import { makeEphemeralEvent, type EventInput, type StoredEvent } from './event.js';
import type { AppendResult, EventStore, LogBounds } from './event-store.js';
import { REPLAY_PAGE_EVENTS, WRITE_SLICE_SUBSCRIBERS } from './limits.js';
import { LogFollower } from './log-follower.js';
import { formatEventId, inLog, type Position } from './position.js';
import { ReplaySlots } from './replay-slots.js';
import { SubscriberIndex } from './subscriber-index.js';
import type { Subscription } from './subscription.js';

export interface HubOptions {
  store: EventStore;
  broker: Broker;
  /** Called once per committed publish call with its latency in seconds. */
  onPublished?: (events: number, seconds: number) => void;
  /** Called when an append failed (the publishers get STORE_UNAVAILABLE) and when one committed. */
  onAppendFailed?: (err: unknown) => void;
  onAppended?: () => void;
  /** Called with every batch of the log this node dispatches, in log order (channel rates). */
  onDispatch?: (events: readonly StoredEvent[]) => void;
  /** Called when a dispatch wrote `count` events to subscribers. */
  onDelivered?: (count: number) => void;
  /**
   * milliseconds: a subscriber write follows the previous one by at least this much; events that
   * come sooner wait and go out together (0: every dispatch is written at once). See `dispatch`.
   */
  writeWindowMs?: number;
  /** Replays (resumes and history reads) running at once on this node; 0 or absent: no limit. */
  maxConcurrentReplays?: number;
  /**
   * Called on every failed broker call (a publish, or a retry while it is down); `first` is true
   * for the first failure of an outage, so it is logged once and counted every time.
   */
  onBrokerFailure?: (err: unknown, first: boolean) => void;
  /** Called when the broker works again after an outage. */
  onBrokerRecovered?: () => void;
  /** Called when reading the log to fill a gap the broker left failed (the next batch retries). */
  onGapFillFailure?: (err: unknown) => void;
  /** Called when the log was replaced by a new one (epoch `epoch`) and every subscriber was reset. */
  onNewLog?: (epoch: string) => void;
}

interface PendingPublish {
  inputs: readonly EventInput[];
  started: bigint;
  resolve: (r: AppendResult[]) => void;
  reject: (e: unknown) => void;
}

/**
 * The core: stores, then fans out.
 *
 * Publishing is group-committed: every publish that arrives in the same tick goes to the store
 * in one `append` (one SQLite transaction), and the committed events are dispatched as one batch,
 * so each subscriber gets one write per tick instead of one per event. Only one append is in
 * flight at a time, which keeps dispatch in log order on this node.
 */
export class Hub {
  /**
   * The log. Private: readers get what they need through the methods below (history by position,
   * head, readiness), so no transport or adapter can write to it, prune it, or depend on a store.
   */
  readonly #store: EventStore;
  readonly #index = new SubscriberIndex<Subscription>();
  readonly #opts: HubOptions;
  #queue: PendingPublish[] = [];
  #flushScheduled = false;
  #inFlight: Promise<void> | undefined;
  #closed = false;
  /** Subscriptions with offered events not yet written, and when the last write round started. */
  #touched: Subscription[] = [];
  #lastWrite = -Infinity;
  #writeTimer: NodeJS.Timeout | undefined;
  /** The write round in progress: its subscriptions, and the next one to write. */
  #round: Subscription[] | undefined;
  #roundPos = 0;
  /** Who may read history now: a node-wide limit, one replay per connection (see ReplaySlots). */
  readonly replays: ReplaySlots;
  /** Bumped when the log is replaced by a new one: a replay in progress stops reading the old. */
  #logGeneration = 0;
  /** Hands the broker's batches to `dispatch` in log order, filling gaps from the log. */
  readonly #follower: LogFollower;
  /** Announces committed batches; knows whether the broker works (see BrokerLink). */
  readonly #link: BrokerLink;
  /** What a cut-off subscription calls: one function for all of them, not a closure each. */
  readonly #onCutOff = (s: Subscription): void => this.unsubscribe(s);

  constructor(opts: HubOptions) {
    this.#opts = opts;
    this.#store = opts.store;
    this.replays = new ReplaySlots(opts.maxConcurrentReplays ?? 0);
    this.#follower = new LogFollower({
      head: () => this.#store.head(),
      readPage: (patterns, after, limit) => this.#store.readPage(patterns, after, limit),
      deliver: (events) => this.dispatch(events),
      onError: (err) => opts.onGapFillFailure?.(err),
      onNewLog: (epoch) => this.#newLog(epoch),
    });
    opts.broker.onEvents((events) => this.#follower.receive(events));
    this.#link = new BrokerLink(opts.broker, { onFailure: opts.onBrokerFailure, onRecovered: opts.onBrokerRecovered });
  }

  /**
   * The log was replaced (a shared backend lost it or was rebuilt, so it has a new epoch): every
   * subscription gets the `epoch_changed` reset and follows the new log from its start, which the
   * follower hands on next. Called by the follower, once per new log.
   */
  #newLog(epoch: string): void {
    this.#logGeneration++;
    const headId = formatEventId(epoch, 0);
    this.#index.forEachSubscriber((sub) => {
      if (sub.group) sub.group.lastDispatched = 0;
      sub.newLog(headId);
    });
    this.#opts.onNewLog?.(epoch);
  }

  /** For `/readyz`: the `broker` check, not ready (503) while the broker is down. */
  get brokerCheck(): { readonly name: string; readonly ready: boolean; readonly state: string; readonly listedOnlyWhenFailing: boolean } {
    return this.#link;
  }

  /**
   * The last seq of the log this node handed to its subscribers (every event of the log passes
   * through, subscribed or not); undefined until the head was read at start. The log's head minus
   * this is how far this node's delivery is behind (`GET /v1/nodes`).
   */
  get dispatchedSeq(): number | undefined {
    return this.#follower.last;
  }

  /** Number of (subscription, pattern) entries in the index. */
  get subscriptionCount(): number {
    return this.#index.size;
  }

  /**
   * Appends the inputs atomically and resolves once they are in the log (before any subscriber
   * sees them). Duplicates (known idempotency keys) resolve to the first event and are not
   * dispatched again.
   */
  publish(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The hub'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ inputs, started: process.hrtime.bigint(), resolve, reject });
      this.#scheduleFlush();
    });
  }

  /**
   * Hands an ephemeral event (typing indicators, cursors: see EphemeralEvent) to the matching
   * subscriptions of this node that are live now, and returns how many took it. Nothing is
   * appended and the broker is not told (it carries news of the log, and this is not in it), so
   * subscribers connected to other nodes do not get it. A connection with several matching
   * subscriptions gets it once.
   */
  signal(input: EventInput): number {
    if (this.#closed) throw new ClosedError('The hub');
    const event = makeEphemeralEvent(input, Date.now());
    const seen = new Set<object>();
    let n = 0;
    this.#index.forEachMatch(event.channel, (sub) => {
      const owner = sub.group ?? sub;
      if (seen.has(owner) || !sub.signal(event)) return;
      seen.add(owner);
      n++;
    });
    return n;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#inFlight) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#inFlight = this.#flush().finally(() => {
        this.#inFlight = undefined;
        if (this.#queue.length > 0) this.#scheduleFlush();
      });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    // With the broker down, other nodes would not hear of the event: refused before the append,
    // so nothing is stored that the publisher was told failed.
    if (!this.#link.ready) {
      const down = new HeraldError('BROKER_UNAVAILABLE');
      for (const p of batch) p.reject(down);
      return;
    }
    await this.#follower.started; // once, at start: see LogFollower.started
    const all: EventInput[] = [];
    for (const p of batch) for (const i of p.inputs) all.push(i);
    let results: AppendResult[];
    try {
      results = await this.#store.append(all);
    } catch (err) {
      this.#opts.onAppendFailed?.(err);
      const cause = err instanceof HeraldError ? err : new HeraldError('STORE_UNAVAILABLE');
      for (const p of batch) p.reject(cause);
      return;
    }
    this.#opts.onAppended?.();
    const fresh: StoredEvent[] = [];
    for (const r of results) if (!r.duplicate) fresh.push(r.event);
    if (fresh.length > 0) {
      // The events are durable now: a broker failure must not turn an accepted publish into an
      // error. It makes the node not ready and refuses the next publishes until the broker is
      // back; this node's subscribers get the events at once, other nodes from the log when the
      // broker's next batch shows them the gap.
      if (!(await this.#link.announce(fresh))) this.#follower.receive(fresh);
    }
    const end = process.hrtime.bigint();
    let offset = 0;
    for (const p of batch) {
      const mine = results.slice(offset, offset + p.inputs.length);
      offset += p.inputs.length;
      this.#opts.onPublished?.(p.inputs.length, Number(end - p.started) / 1e9);
      p.resolve(mine);
    }
  }

  /**
   * Delivers events heard from the broker (in log order: see LogFollower) to local subscribers,
   * one write per subscriber.
   *
   * With a write window, a write round starts at once when the previous one started at least
   * `writeWindowMs` ago, and otherwise when it will have: events that arrive faster than that
   * are written together. At a low rate nothing waits; at a high rate each subscriber gets one
   * write (one system call for the server, one read for the client) per window instead of one
   * per event, which is what keeps the latency flat when a core is shared by many connections.
   * Delay added: at most the window.
   *
   * A round is written in slices (see WRITE_SLICE_SUBSCRIBERS) with the event loop turning
   * between them. An event that arrives during a round joins the pending writes of the
   * subscribers the round has not reached yet (they are still scheduled), and waits for the next
   * round only where the round has passed. So no subscriber waits longer than one round for an
   * event, where a round written in one go made the last subscribers wait for the rest of the
   * current round and then their turn in the next (up to two rounds: 20 ms each at 1,000
   * subscribers here, 100 ms at 10,000).
   */
  dispatch(events: readonly StoredEvent[]): void {
    this.#opts.onDispatch?.(events);
    let delivered = 0;
    const touched = this.#touched;
    for (const event of events) {
      this.#index.forEachMatch(event.channel, (sub) => {
        const g = sub.group;
        if (g) {
          if (g.lastDispatched === event.seq) return;
          g.lastDispatched = event.seq;
        }
        if (sub.offer(event)) {
          delivered++;
          if (!sub.scheduled) {
            sub.scheduled = true;
            touched.push(sub);
          }
        }
      });
    }
    if (delivered > 0) this.#opts.onDelivered?.(delivered);
    this.#scheduleRound();
  }

  /** Starts the next write round now, or arms the timer for when the window allows it. */
  #scheduleRound(): void {
    if (this.#touched.length === 0 || this.#writeTimer || this.#round) return;
    const wait = (this.#opts.writeWindowMs ?? 0) - (performance.now() - this.#lastWrite);
    if (wait <= 0) this.#writeRound();
    else this.#writeTimer = setTimeout(() => this.#writeRound(), wait);
  }

  /** Starts a round: writes what every touched subscription was offered since its last write. */
  #writeRound(): void {
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
    this.#lastWrite = performance.now();
    this.#round = this.#touched;
    this.#roundPos = 0;
    this.#touched = [];
    this.#writeSlice();
  }

  /** Writes the next slice of the round; the rest follows after the event loop has turned. */
  #writeSlice(): void {
    const round = this.#round;
    if (!round) return;
    const end = Math.min(round.length, this.#roundPos + WRITE_SLICE_SUBSCRIBERS);
    flushEach(round, this.#roundPos, end);
    this.#roundPos = end;
    if (end < round.length) {
      setImmediate(() => this.#writeSlice());
      return;
    }
    this.#round = undefined;
    this.#scheduleRound();
  }

  /** Writes everything offered and not yet written, at once (shutdown). */
  #writeAll(): void {
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
    if (this.#round) flushEach(this.#round, this.#roundPos, this.#round.length);
    flushEach(this.#touched, 0, this.#touched.length);
    this.#round = undefined;
    this.#touched = [];
  }

  /**
   * Registers a subscription and brings it up to date: with `since` (a resume position) it
   * replays what the log holds after it, then goes live with no gap and no duplicate; without,
   * it goes live from now. A position the log no longer covers gets a reset.
   *
   * A replay first waits for a slot (ReplaySlots: per node, and one at a time per connection),
   * and only then joins the index, so live events do not pile up in a subscription that waits.
   * It reads the log in bounded pages (EventStore.readPage) with the event loop turning between
   * them, so however long the log, other clients are served every few milliseconds.
   */
  async subscribe(sub: Subscription, since?: Position): Promise<void> {
    if (this.#closed) throw new ClosedError('The hub');
    const release = since === undefined ? undefined : await this.replays.acquire(sub.group ?? sub);
    try {
      // Closed while it waited for its turn: nothing to register.
      if (sub.closed) return;
      if (this.#closed) throw new ClosedError('The hub');
      for (const p of sub.patterns) this.#index.add(p, sub);
      sub.onCutOff = this.#onCutOff;
      // A live start begins after the last event this node dispatched before the subscription
      // joined the index: everything dispatched from now on is newer, so the client misses
      // nothing published after it was told it is subscribed. (The log's head can be ahead of
      // this node's dispatch on a shared backend: events another node appended, not yet heard.)
      const liveFrom = since === undefined ? this.#follower.last : undefined;
      await this.#bringUpToDate(sub, since, liveFrom);
    } catch (err) {
      this.unsubscribe(sub);
      throw err;
    } finally {
      release?.();
    }
  }

  async #bringUpToDate(sub: Subscription, since: Position | undefined, liveFrom: number | undefined): Promise<void> {
    const generation = this.#logGeneration;
    const head = await this.#store.head();
    // The log was replaced while its head was read: the subscription was reset with the rest.
    if (generation !== this.#logGeneration) return sub.goLive();
    const headId = formatEventId(head.epoch, head.lastSeq);
    if (since === undefined) {
      sub.startAt(liveFrom ?? head.lastSeq);
    } else if (!inLog(since, head.epoch)) {
      // An id from a log that was lost or rebuilt: its seq means nothing here, whether above
      // the head (it would wait for events it already has) or below it (it would skip some).
      sub.reset('epoch_changed', head.lastSeq, headId);
    } else if (since.seq > head.lastSeq) {
      sub.reset('position_unknown', head.lastSeq, headId);
    } else if (since.seq < head.prunedThrough) {
      sub.reset('position_pruned', head.lastSeq, headId);
    } else {
      sub.startAt(since.seq);
      let after = since.seq;
      for (;;) {
        const page = await this.#store.readPage(sub.patterns, after, REPLAY_PAGE_EVENTS);
        if (sub.closed) return;
        // Replaced meanwhile: the reset was sent, the new log comes through dispatch.
        if (generation !== this.#logGeneration) return sub.goLive();
        // A page of a new log the follower has not heard of yet: never shown under old
        // positions. The client reconnects and gets the reset from the new head.
        if (page.events.some((e) => !e.id.startsWith(`${head.epoch}-`))) return sub.cutOff('closed');
        sub.replay(page.events);
        if (page.end) break;
        after = page.through;
        // Read the next page only once the client has taken most of this one, so a long
        // replay is paced by the client instead of tripping its backlog bound; and never in
        // the same turn of the event loop, so timers, I/O and other replays get through.
        if (sub.backlogBytes() > sub.maxBacklogBytes / 2) await sub.drained();
        else await nextTurn();
        if (sub.closed) return;
        if (generation !== this.#logGeneration) return sub.goLive();
      }
    }
    sub.goLive();
  }

  /**
   * History for `GET /v1/events`: events after `after` matching `patterns`, at most `limit`,
   * read under the same replay slots as resumes (`owner`: the client's connection).
   */
  async history(patterns: readonly string[], after: Position, limit: number, owner: object): Promise<StoredEvent[]> {
    if (this.#closed) throw new ClosedError('The hub');
    const seq = await this.seqOf(after);
    const release = await this.replays.acquire(owner);
    try {
      return await this.#store.read(patterns, seq, limit);
    } finally {
      release();
    }
  }

  /**
   * The log's bounds and identity: the newest position, the prune watermark and the epoch.
   * Rejects while the log cannot answer (closed, or a failed fsync): `/readyz` asks this.
   */
  head(): Promise<LogBounds> {
    return this.#store.head();
  }

  /**
   * Events after `after` matching `patterns`, oldest first, at most `limit`, for this node's own
   * readers (an operator's replay of inbound or outbound webhooks). Client reads go through
   * `history`, under the replay slots.
   */
  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The hub'));
    return this.#store.read(patterns, after, limit);
  }

  /**
   * The seq of a position a client sent back, in this log; EPOCH_CHANGED when it names another
   * log (one that was lost or rebuilt), where reading from its seq would skip or repeat events.
   */
  async seqOf(p: Position): Promise<number> {
    if (p.epoch === undefined) return p.seq;
    const { epoch } = await this.#store.head();
    if (!inLog(p, epoch)) throw new HeraldError('EPOCH_CHANGED');
    return p.seq;
  }

  /** The log's epoch: what every event id this node emits starts with (`<epoch>-<seq>`). */
  async epoch(): Promise<string> {
    return (await this.#store.head()).epoch;
  }

  /** Removes a subscription from the index. Idempotent. */
  unsubscribe(sub: Subscription): void {
    sub.markClosed();
    for (const p of sub.patterns) this.#index.remove(p, sub);
  }

  /** Waits for in-flight publishes, then refuses new ones. The store is closed by its owner. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#link.close();
    while (this.#inFlight || this.#queue.length > 0 || this.#flushScheduled) {
      await (this.#inFlight ?? new Promise((r) => setImmediate(r)));
    }
    // Events waiting for their write window, or for their slice of a round, go out before the
    // transports close.
    this.#writeAll();
  }
}

/** Resolves after the event loop has turned once (timers and I/O of the turn have run). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Writes what each of `subs[from..to)` was offered, and marks it unscheduled. */
function flushEach(subs: readonly Subscription[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const sub = subs[i]!;
    sub.scheduled = false;
    sub.flush();
  }
}
