import type { Logger } from '../../observability/logger.js';
import type { Delivery, DeliveryStore, DisabledReason, EndpointRecord, FinishedAttempt, Outcome } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { CircuitBreaker, type CircuitState, type RetrySchedule } from './retry-policy.js';
import { standardHeaders } from './signer.js';
import type { SendResult, Sender } from './webhook-sender.js';

/** Sent on every request, so receivers can tell Herald's traffic apart. */
const USER_AGENT = 'Herald-Webhooks/1';
/**
 * Outcomes are written in batches: at most this many milliseconds after the first one, or at
 * once when FLUSH_BATCH are waiting. A commit costs about the same for 1 row as for 100. The
 * wait delays no request: a parallel endpoint's slot is free as soon as its answer is in.
 */
const FLUSH_DELAY_MS = 10;
const FLUSH_BATCH = 256;
/**
 * Leased deliveries a parallel endpoint may have waiting in memory, per slot of its
 * concurrency, beyond those in flight: claims come in batches of this size instead of one
 * transaction per finished request, and a burst of fresh deliveries is leased as it is stored.
 */
export const READY_PER_SLOT = 8;
/** Leased deliveries waiting in memory on this node, at most, over every endpoint. */
export const READY_MAX = 4_096;
/** Bytes of request bodies waiting in memory on this node, at most. */
export const READY_MAX_BYTES = 32 * 1_048_576;
/**
 * An endpoint's waiting room is topped up only once this share of it is free, so claims come in
 * batches instead of one transaction per finished request.
 */
const REFILL_FRACTION = 0.25;
/**
 * A waiting delivery is sent only while its lease outlasts the request timeout by this much (or
 * by half of what the lease has over the timeout, if less); otherwise it is given back to the
 * store, so a lease never runs out during a request.
 */
const LEASE_SAFETY_MS = 5_000;

export interface DispatcherOptions {
  store: DeliveryStore;
  registry: EndpointRegistry;
  sender: Sender;
  schedule: RetrySchedule;
  log: Logger;
  now: () => number;
  /** This worker's name on its leases. */
  owner: string;
  /** Requests in flight at once on this node. */
  concurrency: number;
  /** Requests in flight per parallel endpoint that sets no `maxConcurrency`. */
  endpointConcurrency: number;
  leaseMs: number;
  /** The sender's timeout for one request. */
  requestTimeoutMs: number;
  sweepIntervalMs: number;
  maxRetryAfterMs: number;
  disableAfterFailingMs: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  /** Herald disabled an endpoint (410, or failing too long). */
  onDisabled: (endpoint: EndpointRecord) => void;
  /** Called after every recorded attempt (metrics, benchmarks). */
  onAttempt?: (delivery: Delivery, attempt: FinishedAttempt) => void;
}

/**
 * What became of a leased delivery: an attempt to record, or the lease to give back (due at
 * once, no attempt counted). `sent` says whether it held one of the endpoint's slots.
 */
type Done =
  | { kind: 'finish'; sent: true; delivery: Delivery; result: FinishedAttempt }
  | { kind: 'release'; sent: boolean; delivery: Delivery };

/** One endpoint's state on this node. */
interface Lane {
  /** Requests in flight. */
  inflight: number;
  /** Leased deliveries waiting for a slot, in the order they were leased. */
  ready: Delivery[];
  /** Fresh deliveries leased by `leaseFresh` whose rows are being stored. */
  reserved: number;
}

/**
 * The worker pool. It leases due deliveries from the store (claims, so several workers and
 * several nodes can share one queue), sends them, and writes the outcomes back in batches.
 *
 * Per endpoint, leased deliveries wait in memory (at most READY_PER_SLOT per slot, and
 * READY_MAX / READY_MAX_BYTES on the node) until one of its slots is free. They come from two
 * places: claims, which take a batch of due rows in one transaction; and the planner, which for
 * an endpoint with nothing older due stores a fresh delivery already leased (`leaseFresh`), so
 * the common case, an event sent as soon as it is stored, costs no claim at all.
 *
 * Isolation between endpoints: each endpoint has its own concurrency (one at a time for
 * `ordered`), its own circuit breaker and its own waiting room, and claims are made per
 * endpoint, starting from a rotating position, so a slow or dead endpoint only ever occupies
 * its own slots and never delays another.
 *
 * The store is the source of truth. What this class keeps in memory (counters, breakers, leased
 * deliveries waiting, a timer for the next due delivery) only decides when to look and what to
 * send next; whatever it holds is leased, so after a crash it is due again when the lease ends,
 * and a sweep every `sweepIntervalMs` looks anyway, which also finds deliveries whose lease ran
 * out because a worker died.
 */
export class DeliveryDispatcher {
  readonly #o: DispatcherOptions;
  readonly #lanes = new Map<string, Lane>();
  /** Endpoints with deliveries waiting, in the order they are served next. */
  readonly #waiting = new Set<string>();
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #running = new Set<Promise<void>>();
  /** Requests in flight. */
  #total = 0;
  /** Deliveries waiting or reserved, and their body bytes. */
  #held = 0;
  #heldBytes = 0;
  #done: Done[] = [];
  #flushing: Promise<void> | undefined;
  #flushSoon: (() => void) | undefined;
  #pumping = false;
  #pumpAgain = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #sweeper: NodeJS.Timeout | undefined;
  #rotation = 0;
  #closed = false;
  /**
   * Endpoints whose last claim came back short: nothing else of theirs was due in the store.
   * Only these get fresh deliveries leased as they are stored, and claims skip them; any sign of
   * due work in the store (a row stored unleased, a retry, a lease given back, a timer, a sweep,
   * an outside change) takes an endpoint out.
   */
  readonly #caughtUp = new Set<string>();
  /** Raised whenever an endpoint leaves #caughtUp, so a claim's answer that crossed it is not trusted. */
  #uncaught = 0;

  /** Lease time a delivery must have left to be sent: one request, and a margin. */
  readonly #leaseNeeded: number;

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
    this.#leaseNeeded = opts.requestTimeoutMs + Math.min(LEASE_SAFETY_MS, (opts.leaseMs - opts.requestTimeoutMs) / 2);
  }

  start(): void {
    // A sweep also finds what no signal announced (a lease of a dead worker that ran out).
    this.#sweeper = setInterval(() => this.wake(), this.#o.sweepIntervalMs);
    this.#sweeper.unref();
    this.wake();
  }

  /** Requests in flight on this node. */
  get inFlight(): number {
    return this.#total;
  }

  /** Leased deliveries waiting in memory for a slot on this node. */
  get waiting(): number {
    return this.#held;
  }

  circuit(endpointId: string): CircuitState {
    return this.#breakers.get(endpointId)?.state(this.#o.now()) ?? 'closed';
  }

  /** Look for due work soon: something outside changed the queue (retry, replay, an endpoint). */
  wake(): void {
    this.#caughtUp.clear();
    this.#uncaught++;
    this.#wakeUp();
  }

  #lane(id: string): Lane {
    let l = this.#lanes.get(id);
    if (!l) this.#lanes.set(id, (l = { inflight: 0, ready: [], reserved: 0 }));
    return l;
  }

  #limit(e: EndpointRecord): number {
    return e.ordering === 'ordered' ? 1 : (e.maxConcurrency ?? this.#o.endpointConcurrency);
  }

  /** In flight, waiting and reserved together may reach this for a parallel endpoint. */
  #capacity(e: EndpointRecord): number {
    return e.ordering === 'ordered' ? 1 : this.#limit(e) * (1 + READY_PER_SLOT);
  }

  /**
   * The fast path for a fresh delivery that is due now: when its endpoint is parallel, enabled,
   * with a closed circuit, room in its lane, and nothing older due in the store, the planner
   * stores the delivery already leased to this worker (in the transaction that stores it) and
   * hands it over with `planned`, so it costs no claim. Its place is reserved now; `abandon`
   * gives it back if the rows could not be stored. Undefined: store it unleased for a claim.
   */
  leaseFresh(e: EndpointRecord, nextAt: number, bodyBytes: number, now: number): { owner: string; until: number } | undefined {
    const lane = this.#lane(e.id);
    const ok =
      !this.#closed &&
      e.enabled &&
      e.ordering === 'parallel' &&
      nextAt <= now &&
      this.#caughtUp.has(e.id) &&
      lane.inflight + lane.ready.length + lane.reserved < this.#capacity(e) &&
      this.#held < READY_MAX &&
      this.#heldBytes + bodyBytes <= READY_MAX_BYTES &&
      this.#breaker(e.id).state(now) === 'closed';
    if (!ok) {
      // It will wait in the store: the next claim must look for it before any fresh one skips it.
      this.#behind(e.id);
      return undefined;
    }
    lane.reserved++;
    this.#hold(bodyBytes);
    return { owner: this.#o.owner, until: now + this.#o.leaseMs };
  }

  /**
   * New deliveries are stored: those stored with a lease from `leaseFresh` join their
   * endpoints' waiting rooms, and the rest are looked for (rows stored unleased made their
   * endpoints leave the fast path in `leaseFresh`, so the claim finds them).
   */
  planned(leased: readonly Delivery[]): void {
    for (const d of leased) {
      const lane = this.#lane(d.endpointId);
      lane.reserved--;
      this.#release(d.body.length);
      this.#enqueueReady(lane, d);
    }
    this.#startReady();
    this.#wakeUp();
  }

  /** The rows `leaseFresh` reserved places for were never stored. */
  abandon(rows: readonly { endpointId: string; body: string }[]): void {
    for (const r of rows) {
      this.#lane(r.endpointId).reserved--;
      this.#release(r.body.length);
    }
    this.#wakeUp();
  }

  #enqueueReady(lane: Lane, d: Delivery): void {
    if (this.#closed) {
      this.#giveBack(d, false);
      return;
    }
    lane.ready.push(d);
    this.#hold(d.body.length);
    this.#waiting.add(d.endpointId);
  }

  /** Counts a delivery (and its body) held in memory, waiting or reserved. */
  #hold(bytes: number): void {
    this.#held++;
    this.#heldBytes += bytes;
  }

  #release(bytes: number): void {
    this.#held--;
    this.#heldBytes -= bytes;
  }

  #behind(endpointId: string): void {
    this.#caughtUp.delete(endpointId);
    this.#uncaught++;
  }

  /** Look for due work soon (new deliveries, freed capacity). */
  #wakeUp(): void {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    setImmediate(() => void this.#pump());
  }

  async #pump(): Promise<void> {
    for (;;) {
      this.#pumpAgain = false;
      try {
        this.#startReady();
        await this.#claim();
      } catch (err) {
        this.#o.log.error({ err }, 'outbound webhooks: claiming deliveries failed');
      }
      // Decided and cleared in the same synchronous step: a wake() that came during the claim
      // is never lost between the check and the flag.
      if (!this.#pumpAgain || this.#closed) {
        this.#pumping = false;
        return;
      }
    }
  }

  #breaker(id: string): CircuitBreaker {
    let b = this.#breakers.get(id);
    if (!b) this.#breakers.set(id, (b = new CircuitBreaker(this.#o.breakerFailures, this.#o.breakerCooldownMs)));
    return b;
  }

  /**
   * Sends waiting deliveries while their endpoints and the node have free slots, endpoint by
   * endpoint in turn. A delivery whose endpoint's circuit opened, or whose lease is too short
   * for one more request, is given back to the store.
   */
  #startReady(): void {
    if (this.#closed) return;
    const now = this.#o.now();
    for (const id of [...this.#waiting]) {
      if (this.#total >= this.#o.concurrency) return;
      const lane = this.#lane(id);
      const e = this.#o.registry.get(id);
      const breaker = this.#breaker(id);
      const limit = e ? this.#limit(e) : 0;
      while (lane.ready.length > 0 && lane.inflight < limit && this.#total < this.#o.concurrency) {
        if (breaker.allowance(now, 1) <= 0) break;
        const d = lane.ready.shift()!;
        this.#release(d.body.length);
        if (d.nextAt - now < this.#leaseNeeded) {
          this.#giveBack(d, false);
          continue;
        }
        lane.inflight++;
        this.#total++;
        this.#start(d, now);
      }
      if (lane.ready.length > 0 && (!e || !e.enabled || breaker.state(now) === 'open')) {
        // Not to be sent from here for a while: due again in the store, for whoever can.
        for (const d of lane.ready.splice(0)) {
          this.#release(d.body.length);
          this.#giveBack(d, false);
        }
        if (breaker.reopensAt > now) this.#arm(breaker.reopensAt);
      }
      this.#waiting.delete(id);
      // Served: to the back of the line, so a busy node shares its slots in turn.
      if (lane.ready.length > 0) this.#waiting.add(id);
    }
  }

  /** Claims due deliveries from the store into the waiting rooms of endpoints with room. */
  async #claim(): Promise<void> {
    if (this.#closed) return;
    const now = this.#o.now();
    const budget = this.#o.concurrency - this.#total + READY_MAX - this.#held;
    const budgetBytes = READY_MAX_BYTES - this.#heldBytes;
    if (budget <= 0 || budgetBytes <= 0) return;
    const endpoints = this.#o.registry.list().filter((e) => e.enabled);
    if (endpoints.length === 0) return;
    // Round robin: this pump starts after the last endpoint the previous one served.
    const start = this.#rotation % endpoints.length;
    const requests = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[(start + i) % endpoints.length]!;
      // Nothing of it is due in the store (its fresh deliveries come by the fast path).
      if (this.#caughtUp.has(e.id)) continue;
      const lane = this.#lane(e.id);
      const cap = this.#capacity(e);
      const used = lane.inflight + lane.ready.length + lane.reserved;
      const room = cap - used;
      if (room <= 0 || (used > 0 && room < Math.ceil(cap * REFILL_FRACTION))) continue;
      const breaker = this.#breaker(e.id);
      const state = breaker.state(now);
      if (state === 'open') {
        this.#arm(breaker.reopensAt);
        continue;
      }
      // Half open: one probe, claimed only when nothing of the endpoint is in flight or waiting.
      const limit = state === 'half-open' ? (used === 0 ? 1 : 0) : room;
      if (limit <= 0) continue;
      requests.push({ endpointId: e.id, limit, ordered: e.ordering === 'ordered' });
    }
    if (requests.length === 0) return;
    // The store serves the requests in order until the budget is claimed; endpoints with nothing
    // due cost a look-up, not a share of the budget.
    const uncaught = this.#uncaught;
    const { claimed, nextDueAt, cut } = await this.#o.store.claim(requests, now, this.#o.leaseMs, this.#o.owner, budget, budgetBytes);
    const last = claimed.length > 0 ? endpoints.findIndex((e) => e.id === claimed[claimed.length - 1]!.endpointId) : -1;
    this.#rotation = last >= 0 ? last + 1 : start + 1;
    // An endpoint that got fewer than it asked for has nothing more due; one that got all it
    // asked for may have more waiting (as may any, when the budget cut the claim short).
    const got = new Map<string, number>();
    for (const d of claimed) got.set(d.endpointId, (got.get(d.endpointId) ?? 0) + 1);
    for (const r of requests) {
      if (!cut && (got.get(r.endpointId) ?? 0) < r.limit && uncaught === this.#uncaught) this.#caughtUp.add(r.endpointId);
      else this.#caughtUp.delete(r.endpointId);
    }
    for (const d of claimed) this.#enqueueReady(this.#lane(d.endpointId), d);
    this.#startReady();
    if (nextDueAt !== undefined && nextDueAt > now) this.#arm(nextDueAt);
  }

  /** A wake-up at `at` (the earliest wins). */
  #arm(at: number): void {
    if (this.#closed || at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.wake(); // something in the store came due
    }, Math.max(0, at - this.#o.now()));
    this.#timer.unref();
  }

  /** Sends a leased delivery whose slot is already counted. */
  #start(d: Delivery, now: number): void {
    this.#breaker(d.endpointId).started(now);
    const p = this.#attempt(d).then(
      (done) => this.#finished(done),
      (err: unknown) => {
        // Never expected (send() does not throw), but a worker must survive anything: the lease
        // is given back and the delivery is tried again.
        this.#o.log.error({ err, delivery: d.id }, 'outbound webhooks: attempt failed unexpectedly');
        this.#finished({ kind: 'release', sent: true, delivery: d });
      },
    );
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  /** Gives a lease back to the store (due at once, no attempt counted), with the next batch. */
  #giveBack(d: Delivery, sent: boolean): void {
    this.#behind(d.endpointId);
    this.#finished({ kind: 'release', sent, delivery: d });
  }

  async #attempt(d: Delivery): Promise<Done> {
    const e = this.#o.registry.get(d.endpointId);
    if (!e || !e.enabled) return { kind: 'release', sent: true, delivery: d };
    const now = this.#o.now();
    const headers: Record<string, string> = {
      ...e.headers,
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...standardHeaders(d.msgId, d.body, this.#o.registry.signingSecrets(e, now), now),
    };
    const r = await this.#o.sender.send(e.url, headers, d.body);
    if (r.aborted) return { kind: 'release', sent: true, delivery: d };
    // The answer is in now: retries count from here (the request may have waited for a thread).
    const outcome = await this.#decide(e, d, r, Math.max(now + r.durationMs, this.#o.now()));
    const result: FinishedAttempt = {
      id: d.id,
      claim: d.claims,
      attempt: { deliveryId: d.id, at: now, durationMs: r.durationMs, status: r.status, responseBody: r.responseBody, error: r.error },
      outcome,
    };
    return { kind: 'finish', sent: true, delivery: d, result };
  }

  async #decide(e: EndpointRecord, d: Delivery, r: SendResult, end: number): Promise<Outcome> {
    const status = r.status;
    const breaker = this.#breaker(e.id);
    if (status !== null && status >= 200 && status < 300) {
      breaker.succeeded();
      await this.#o.registry.markHealthy(e.id);
      return { status: 'delivered' };
    }
    breaker.failed(end);
    // RFC 9110 §15.5.11: 410 Gone means the target is gone for good; stop sending to it.
    if (status === 410) {
      await this.#disable(e.id, 'gone');
      return { status: 'held' };
    }
    if (this.#o.registry.get(e.id)?.enabled === false) return { status: 'held' };
    const failing = await this.#o.registry.markFailing(e.id, end);
    if (failing?.failingSince != null && end - failing.failingSince >= this.#o.disableAfterFailingMs) {
      await this.#disable(e.id, 'failing');
      return { status: 'held' };
    }
    let delay = this.#o.schedule.delayBefore(d.attempts - d.scheduleStart + 1);
    if (delay === undefined) return { status: 'dead' };
    // RFC 9110 §10.2.3 and RFC 6585 §4: the receiver says when it can take more; honoured up to
    // a bound, so a hostile value cannot park a delivery for years.
    if ((status === 429 || status === 503) && r.retryAfterMs !== undefined) {
      delay = Math.min(r.retryAfterMs, this.#o.maxRetryAfterMs);
    }
    return { status: 'pending', nextAt: end + delay };
  }

  async #disable(id: string, reason: DisabledReason): Promise<void> {
    const e = await this.#o.registry.disable(id, reason);
    if (!e) return;
    this.#o.log.warn({ endpoint: id, reason }, 'outbound webhooks: endpoint disabled');
    this.#o.onDisabled(e);
  }

  #finished(done: Done): void {
    if (done.sent && this.#o.registry.get(done.delivery.endpointId)?.ordering !== 'ordered') {
      // The request is over: its slot serves the next one while the outcome waits for the batch
      // (the lease still covers the delivery). An ordered endpoint's next delivery waits for the
      // outcome instead: a failed head must block it.
      this.#total--;
      this.#lane(done.delivery.endpointId).inflight--;
      done = { ...done, sent: false } as Done;
      this.#startReady();
    }
    this.#done.push(done);
    if (this.#done.length >= FLUSH_BATCH) this.#flushSoon?.();
    if (this.#flushing) return;
    this.#flushing = new Promise<void>((resolve) => {
      const timer = setTimeout(go, FLUSH_DELAY_MS);
      function go() {
        clearTimeout(timer);
        resolve();
      }
      this.#flushSoon = go;
    })
      .then(() => {
        this.#flushSoon = undefined;
        return this.#flush();
      })
      .finally(() => (this.#flushing = undefined));
  }

  /** Writes a tick's outcomes in one transaction, then frees their slots. */
  async #flush(): Promise<void> {
    while (this.#done.length > 0) {
      const batch = this.#done;
      this.#done = [];
      const finished: FinishedAttempt[] = [];
      const released: { id: number; claim: number }[] = [];
      for (const x of batch) {
        if (x.kind === 'finish') finished.push(x.result);
        else released.push({ id: x.delivery.id, claim: x.delivery.claims });
      }
      try {
        if (finished.length > 0) await this.#o.store.finish(finished);
        if (released.length > 0) await this.#o.store.release(released, this.#o.now());
      } catch (err) {
        // The leases run out and these deliveries are sent again: at least once, never lost.
        this.#o.log.error({ err }, 'outbound webhooks: could not record attempts');
      }
      for (const x of batch) {
        const id = x.delivery.endpointId;
        if (x.sent) {
          this.#total--;
          this.#lane(id).inflight--;
        }
        if (x.kind === 'finish') {
          // A retry or a held delivery now waits in the store.
          if (x.result.outcome.status !== 'delivered') this.#behind(id);
          this.#o.onAttempt?.(x.delivery, x.result);
        } else {
          this.#behind(id);
        }
      }
    }
    this.#startReady();
    this.#wakeUp();
  }

  /**
   * Stops claiming, gives back what waits in memory, gives requests in flight up to `drainMs`
   * to finish, aborts the rest (their deliveries are released, due at once, without counting
   * an attempt) and records everything.
   */
  async close(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#timer) clearTimeout(this.#timer);
    for (const lane of this.#lanes.values()) {
      for (const d of lane.ready.splice(0)) this.#giveBack(d, false);
    }
    this.#waiting.clear();
    const all = () => Promise.allSettled([...this.#running]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    await this.#o.sender.close();
    await all();
    while (this.#flushing) await this.#flushing;
  }
}
