import type { Logger } from '../../observability/logger.js';
import type { Delivery, DeliveryStore, DisabledReason, EndpointRecord, FinishedAttempt, Outcome } from './delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { CircuitBreaker, type CircuitState, type RetrySchedule } from './retry-policy.js';
import { standardHeaders } from './signer.js';
import type { SendResult, WebhookSender } from './webhook-sender.js';

/** Sent on every request, so receivers can tell Herald's traffic apart. */
const USER_AGENT = 'Herald-Webhooks/1';
/**
 * Outcomes are written in batches: at most this many milliseconds after the first one, or at
 * once when FLUSH_BATCH are waiting. A commit costs about the same for 1 row as for 100.
 */
const FLUSH_DELAY_MS = 2;
const FLUSH_BATCH = 64;
/**
 * A busy parallel endpoint is topped up only once this share of its slots is free, so claims
 * come in batches instead of one transaction per finished request.
 */
const REFILL_FRACTION = 0.25;

export interface DispatcherOptions {
  store: DeliveryStore;
  registry: EndpointRegistry;
  sender: WebhookSender;
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

type Done = { kind: 'finish'; endpointId: string; delivery: Delivery; result: FinishedAttempt } | { kind: 'release'; endpointId: string; delivery: Delivery };

/**
 * The worker pool. It claims due deliveries from the store (leases, so several workers and
 * several nodes can share one queue), sends them, and writes the outcomes back in batches.
 *
 * Isolation between endpoints: each endpoint has its own concurrency (one at a time for
 * `ordered`), its own circuit breaker, and claims are made per endpoint, starting from a rotating
 * position, so a slow or dead endpoint only ever occupies its own slots and never delays another.
 *
 * The store is the source of truth. What this class keeps in memory (counters, breakers, a timer
 * for the next due delivery) only decides when to look; a sweep every `sweepIntervalMs` looks
 * anyway, which also picks up deliveries whose lease ran out because a worker died.
 */
export class DeliveryDispatcher {
  readonly #o: DispatcherOptions;
  readonly #inflight = new Map<string, number>();
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #running = new Set<Promise<void>>();
  #total = 0;
  #done: Done[] = [];
  #flushing: Promise<void> | undefined;
  #pumping = false;
  #pumpAgain = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #sweeper: NodeJS.Timeout | undefined;
  #rotation = 0;
  #closed = false;
  /**
   * Endpoints whose last claim came back short: nothing else of theirs was due in the store.
   * Only for these may a fresh delivery skip the queue (`leaseFresh`); any sign of due work in
   * the store (a row stored unleased, a retry coming due, a sweep, an outside change) clears it.
   */
  readonly #caughtUp = new Set<string>();
  /** Raised whenever an endpoint leaves #caughtUp, so a claim's answer that crossed it is not trusted. */
  #uncaught = 0;

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
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

  circuit(endpointId: string): CircuitState {
    return this.#breakers.get(endpointId)?.state(this.#o.now()) ?? 'closed';
  }

  /** Look for due work soon: something outside changed the queue (retry, replay, an endpoint). */
  wake(): void {
    this.#caughtUp.clear();
    this.#uncaught++;
    this.#wakeUp();
  }

  /**
   * The fast path for a fresh delivery that is due now: when its endpoint is parallel, enabled,
   * with a closed circuit, a free slot, and nothing older due in the store, the planner stores
   * the delivery already leased to this worker (in the transaction that stores it) and hands it
   * over with `adopt`, so it costs no claim transaction. The slot is taken now; `abandon` gives
   * it back if the rows could not be stored. Undefined: store it unleased for a claim to find.
   */
  leaseFresh(e: EndpointRecord, nextAt: number, now: number): { owner: string; until: number } | undefined {
    const ok =
      !this.#closed &&
      e.enabled &&
      e.ordering === 'parallel' &&
      nextAt <= now &&
      this.#total < this.#o.concurrency &&
      this.#caughtUp.has(e.id) &&
      (this.#inflight.get(e.id) ?? 0) < (e.maxConcurrency ?? this.#o.endpointConcurrency) &&
      this.#breaker(e.id).state(now) === 'closed';
    if (!ok) {
      // It will wait in the store: the next claim must look for it before any fresh one skips it.
      this.#behind(e.id);
      return undefined;
    }
    this.#total++;
    this.#inflight.set(e.id, (this.#inflight.get(e.id) ?? 0) + 1);
    return { owner: this.#o.owner, until: now + this.#o.leaseMs };
  }

  /**
   * New deliveries are stored: sends those stored with a lease from `leaseFresh` (their slots
   * are already taken) and looks for the others (rows stored unleased made their endpoints
   * leave the fast path in `leaseFresh`, so the claim finds them).
   */
  planned(leased: readonly Delivery[]): void {
    const now = this.#o.now();
    for (const d of leased) this.#start(d, now);
    this.#wakeUp();
  }

  /** Gives back the slots `leaseFresh` took for rows that were never stored. */
  abandon(endpointIds: readonly string[]): void {
    for (const id of endpointIds) this.#free(id);
    this.#wakeUp();
  }

  #behind(endpointId: string): void {
    this.#caughtUp.delete(endpointId);
    this.#uncaught++;
  }

  #free(endpointId: string): void {
    this.#total--;
    const n = (this.#inflight.get(endpointId) ?? 1) - 1;
    if (n === 0) this.#inflight.delete(endpointId);
    else this.#inflight.set(endpointId, n);
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
        await this.#claimAndSend();
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

  async #claimAndSend(): Promise<void> {
    if (this.#closed) return;
    const now = this.#o.now();
    const budget = this.#o.concurrency - this.#total;
    if (budget <= 0) return;
    const endpoints = this.#o.registry.list().filter((e) => e.enabled);
    if (endpoints.length === 0) return;
    // Round robin: this pump starts after the last endpoint the previous one served.
    const start = this.#rotation % endpoints.length;
    const requests = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[(start + i) % endpoints.length]!;
      // Nothing of it is due in the store (its fresh deliveries come by the fast path).
      if (this.#caughtUp.has(e.id)) continue;
      const busy = this.#inflight.get(e.id) ?? 0;
      const room = e.ordering === 'ordered' ? (busy > 0 ? 0 : 1) : (e.maxConcurrency ?? this.#o.endpointConcurrency) - busy;
      if (room <= 0) continue;
      if (busy > 0 && e.ordering === 'parallel' && room < Math.ceil(((e.maxConcurrency ?? this.#o.endpointConcurrency)) * REFILL_FRACTION)) {
        continue;
      }
      const breaker = this.#breaker(e.id);
      const limit = breaker.allowance(now, Math.min(room, budget));
      if (limit <= 0) {
        if (breaker.reopensAt > now) this.#arm(breaker.reopensAt);
        continue;
      }
      requests.push({ endpointId: e.id, limit, ordered: e.ordering === 'ordered' });
    }
    if (requests.length === 0) return;
    // The store serves the requests in order until `budget` deliveries are claimed; endpoints
    // with nothing due cost a look-up, not a share of the budget.
    const uncaught = this.#uncaught;
    const { claimed, nextDueAt } = await this.#o.store.claim(requests, now, this.#o.leaseMs, this.#o.owner, budget);
    const last = claimed.length > 0 ? endpoints.findIndex((e) => e.id === claimed[claimed.length - 1]!.endpointId) : -1;
    this.#rotation = last >= 0 ? last + 1 : start + 1;
    // An endpoint that got fewer than it asked for has nothing more due; one that got all it
    // asked for may have more waiting (as may one the budget ran out before).
    const got = new Map<string, number>();
    for (const d of claimed) got.set(d.endpointId, (got.get(d.endpointId) ?? 0) + 1);
    let left = budget;
    for (const r of requests) {
      const n = got.get(r.endpointId) ?? 0;
      if (left > 0 && n < Math.min(r.limit, left) && uncaught === this.#uncaught) this.#caughtUp.add(r.endpointId);
      else this.#caughtUp.delete(r.endpointId);
      left -= n;
    }
    for (const d of claimed) this.#send(d, now);
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

  #send(d: Delivery, now: number): void {
    this.#total++;
    this.#inflight.set(d.endpointId, (this.#inflight.get(d.endpointId) ?? 0) + 1);
    this.#start(d, now);
  }

  /** Sends a claimed delivery whose slot is already counted. */
  #start(d: Delivery, now: number): void {
    this.#breaker(d.endpointId).started(now);
    const p = this.#attempt(d).then(
      (done) => this.#finished(done),
      (err: unknown) => {
        // Never expected (send() does not throw), but a worker must survive anything: the lease
        // runs out and the delivery is tried again.
        this.#o.log.error({ err, delivery: d.id }, 'outbound webhooks: attempt failed unexpectedly');
        this.#finished({ kind: 'release', endpointId: d.endpointId, delivery: d });
      },
    );
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  async #attempt(d: Delivery): Promise<Done> {
    const e = this.#o.registry.get(d.endpointId);
    if (!e || !e.enabled) return { kind: 'release', endpointId: d.endpointId, delivery: d };
    const now = this.#o.now();
    const headers: Record<string, string> = {
      ...e.headers,
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...standardHeaders(d.msgId, d.body, this.#o.registry.signingSecrets(e, now), now),
    };
    const r = await this.#o.sender.send(e.url, headers, d.body);
    if (r.aborted) return { kind: 'release', endpointId: d.endpointId, delivery: d };
    const outcome = await this.#decide(e, d, r, now + r.durationMs);
    const result: FinishedAttempt = {
      id: d.id,
      claim: d.claims,
      attempt: { deliveryId: d.id, at: now, durationMs: r.durationMs, status: r.status, responseBody: r.responseBody, error: r.error },
      outcome,
    };
    return { kind: 'finish', endpointId: d.endpointId, delivery: d, result };
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
  #flushSoon: (() => void) | undefined;

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
        this.#free(x.endpointId);
        if (x.kind === 'finish') {
          // A retry or a held delivery now waits in the store.
          if (x.result.outcome.status !== 'delivered') this.#behind(x.endpointId);
          this.#o.onAttempt?.(x.delivery, x.result);
        } else {
          this.#behind(x.endpointId);
        }
      }
    }
    this.#wakeUp();
  }

  /**
   * Stops claiming, gives requests in flight up to `drainMs` to finish, aborts the rest (their
   * deliveries are released, due at once, without counting an attempt) and records everything.
   */
  async close(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#timer) clearTimeout(this.#timer);
    const all = () => Promise.allSettled([...this.#running]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    await this.#o.sender.close();
    await all();
    while (this.#flushing) await this.#flushing;
  }
}
