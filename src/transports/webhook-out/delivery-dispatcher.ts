/**
 * The worker pool, assembled: it takes planned deliveries from the planner (`handOver`), and
 * moves every leased delivery through the parts that each own one behaviour:
 *
 *   delivery-lanes.ts    lanes and capacity: who waits for which slot, and the bounds
 *   delivery-claimer.ts  claiming: claims from the store, the fast path, when to look again
 *   delivery-sender.ts   sending: one signed request per delivery
 *   outcome-policy.ts    what an answer means: retry schedule, breaker, 410, disable
 *   outcome-writer.ts    outcomes written in batches, then slots freed
 *
 * This file holds the loop that joins them (when to claim, what to send next) and shutdown.
 */
import type { Logger } from '../../observability/logger.js';
import { DeliveryClaimer, DueTimer } from './delivery-claimer.js';
import { DeliveryLanes } from './delivery-lanes.js';
import { DeliverySender } from './delivery-sender.js';
import type { Delivery, DeliveryStore, EndpointRecord, FinishedAttempt, NewDelivery } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { OutcomePolicy } from './outcome-policy.js';
import { OutcomeWriter, type Done } from './outcome-writer.js';
import type { CircuitState, RetrySchedule } from './retry-policy.js';
import type { Sender } from './webhook-sender.js';

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
 * Where the planner hands its deliveries: the one call between planner and dispatcher, and it
 * goes one way. The dispatcher stores the rows (the fresh ones it can send at once already
 * leased to itself) and starts sending; the planner is never called back.
 */
export interface DeliveryHandOff {
  /**
   * Stores `rows` and raises the planning cursor to `plannedThrough` in one transaction
   * (`DeliveryStore.enqueue`), at `now`. Rejects, having stored nothing, when the store refused.
   */
  handOver(rows: readonly NewDelivery[], plannedThrough: number, now: number): Promise<void>;
}

/**
 * The store is the source of truth. What the dispatcher keeps in memory (lanes, breakers, leased
 * deliveries waiting, a timer for the next due delivery) only decides when to look and what to
 * send next; whatever it holds is leased, so after a crash it is due again when the lease ends,
 * and a sweep every `sweepIntervalMs` looks anyway, which also finds deliveries whose lease ran
 * out because a worker died.
 */
export class DeliveryDispatcher implements DeliveryHandOff {
  readonly #o: DispatcherOptions;
  readonly #lanes: DeliveryLanes;
  readonly #policy: OutcomePolicy;
  readonly #timer: DueTimer;
  readonly #claimer: DeliveryClaimer;
  readonly #sending: DeliverySender;
  readonly #writer: OutcomeWriter;
  readonly #running = new Set<Promise<void>>();
  #pumping = false;
  #pumpAgain = false;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** Set by start(): until then (and on a node that sends nothing, `outbound.send: false`) nothing is claimed. */
  #started = false;
  /** Lease time a delivery must have left to be sent: one request, and a margin. */
  readonly #leaseNeeded: number;

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
    this.#leaseNeeded = opts.requestTimeoutMs + Math.min(LEASE_SAFETY_MS, (opts.leaseMs - opts.requestTimeoutMs) / 2);
    this.#lanes = new DeliveryLanes({ concurrency: opts.concurrency, endpointConcurrency: opts.endpointConcurrency });
    this.#policy = new OutcomePolicy(opts);
    this.#timer = new DueTimer(opts.now, () => this.wake()); // something in the store came due
    this.#claimer = new DeliveryClaimer({ ...opts, lanes: this.#lanes, policy: this.#policy, timer: this.#timer });
    this.#sending = new DeliverySender(opts);
    this.#writer = new OutcomeWriter({
      store: opts.store,
      log: opts.log,
      now: opts.now,
      onWritten: (batch) => this.#written(batch),
      onDrained: () => {
        this.#startReady();
        this.#wakeUp();
      },
    });
  }

  start(): void {
    this.#started = true;
    // A sweep also finds what no signal announced (a lease of a dead worker that ran out).
    this.#sweeper = setInterval(() => this.wake(), this.#o.sweepIntervalMs);
    this.#sweeper.unref();
    this.wake();
  }

  /** Requests in flight on this node. */
  get inFlight(): number {
    return this.#lanes.inFlight;
  }

  /** Leased deliveries waiting in memory for a slot on this node. */
  get waiting(): number {
    return this.#lanes.held;
  }

  circuit(endpointId: string): CircuitState {
    return this.#policy.circuit(endpointId, this.#o.now());
  }

  /** Look for due work soon: something outside changed the queue (retry, replay, an endpoint). */
  wake(): void {
    this.#claimer.forgetAll();
    this.#wakeUp();
  }

  async handOver(rows: readonly NewDelivery[], plannedThrough: number, now: number): Promise<void> {
    const toStore: NewDelivery[] = [];
    const reserved: NewDelivery[] = [];
    for (const r of rows) {
      const e = r.status === 'pending' ? this.#o.registry.get(r.endpointId) : undefined;
      const lease = e ? this.#claimer.leaseFresh(e, r.nextAt, r.body.length, now) : undefined;
      if (lease) {
        this.#lanes.reserve(r.endpointId, r.body.length);
        reserved.push(r);
        toStore.push({ ...r, lease });
      } else {
        toStore.push(r);
      }
    }
    let leased: Delivery[];
    try {
      leased = await this.#o.store.enqueue(toStore, plannedThrough);
    } catch (err) {
      if (reserved.length > 0) {
        // The rows were never stored: their reserved places are free again.
        for (const r of reserved) this.#lanes.unreserve(r.endpointId, r.body.length);
        this.#wakeUp();
      }
      throw err;
    }
    if (rows.length === 0) return;
    // Those stored leased join their endpoints' waiting rooms; rows stored unleased made their
    // endpoints leave the fast path in `leaseFresh`, so the claim finds them.
    for (const d of leased) {
      this.#lanes.unreserve(d.endpointId, d.body.length);
      this.#enqueueReady(d);
    }
    this.#startReady();
    this.#wakeUp();
  }

  #enqueueReady(d: Delivery): void {
    if (this.#closed) this.#giveBack(d, false);
    else this.#lanes.enqueue(d);
  }

  /** Look for due work soon (new deliveries, freed capacity). */
  #wakeUp(): void {
    if (this.#closed || !this.#started) return;
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
        if (!this.#closed) {
          const claimed = await this.#claimer.claim(this.#o.now());
          for (const d of claimed) this.#enqueueReady(d);
          this.#startReady();
        }
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

  /**
   * Sends waiting deliveries while their endpoints and the node have free slots, endpoint by
   * endpoint in turn. A delivery whose endpoint's circuit opened, or whose lease is too short
   * for one more request, is given back to the store.
   */
  #startReady(): void {
    if (this.#closed) return;
    const lanes = this.#lanes;
    const now = this.#o.now();
    for (const id of lanes.serveOrder()) {
      if (lanes.full) return;
      const lane = lanes.lane(id);
      const e = this.#o.registry.get(id);
      const breaker = this.#policy.breaker(id);
      const limit = e ? lanes.limit(e) : 0;
      while (lane.ready.length > 0 && lane.inflight < limit && !lanes.full) {
        if (breaker.allowance(now, 1) <= 0) break;
        const d = lanes.take(id)!;
        if (d.nextAt - now < this.#leaseNeeded) {
          this.#giveBack(d, false);
          continue;
        }
        lanes.occupy(id);
        this.#start(d, now);
      }
      if (lane.ready.length > 0 && (!e || !e.enabled || breaker.state(now) === 'open')) {
        // Not to be sent from here for a while: due again in the store, for whoever can.
        for (const d of lanes.takeAll(id)) this.#giveBack(d, false);
        if (breaker.reopensAt > now) this.#timer.arm(breaker.reopensAt);
      }
      lanes.served(id);
    }
  }

  /** Sends a leased delivery whose slot is already counted. */
  #start(d: Delivery, now: number): void {
    this.#policy.breaker(d.endpointId).started(now);
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

  async #attempt(d: Delivery): Promise<Done> {
    const sent = await this.#sending.send(d);
    if (!sent) return { kind: 'release', sent: true, delivery: d };
    const { endpoint, at, response: r } = sent;
    // The answer is in now: retries count from here (the request may have waited for a thread).
    const outcome = await this.#policy.decide(endpoint, d, r, Math.max(at + r.durationMs, this.#o.now()));
    const result: FinishedAttempt = {
      id: d.id,
      claim: d.claims,
      attempt: { deliveryId: d.id, at, durationMs: r.durationMs, status: r.status, responseBody: r.responseBody, error: r.error },
      outcome,
    };
    return { kind: 'finish', sent: true, delivery: d, result };
  }

  /** Gives a lease back to the store (due at once, no attempt counted), with the next batch. */
  #giveBack(d: Delivery, sent: boolean): void {
    this.#claimer.behind(d.endpointId);
    this.#finished({ kind: 'release', sent, delivery: d });
  }

  #finished(done: Done): void {
    if (done.sent && this.#o.registry.get(done.delivery.endpointId)?.ordering !== 'ordered') {
      // The request is over: its slot serves the next one while the outcome waits for the batch
      // (the lease still covers the delivery). An ordered endpoint's next delivery waits for the
      // outcome instead: a failed head must block it.
      this.#lanes.vacate(done.delivery.endpointId);
      done = { ...done, sent: false };
      this.#startReady();
    }
    this.#writer.push(done);
  }

  /** A batch of outcomes is in the store: slots still held are freed. */
  #written(batch: readonly Done[]): void {
    for (const x of batch) {
      const id = x.delivery.endpointId;
      if (x.sent) this.#lanes.vacate(id);
      if (x.kind === 'finish') {
        // A retry or a held delivery now waits in the store.
        if (x.result.outcome.status !== 'delivered') this.#claimer.behind(id);
        this.#o.onAttempt?.(x.delivery, x.result);
      } else {
        this.#claimer.behind(id);
      }
    }
  }

  /**
   * Stops claiming, gives back what waits in memory, gives requests in flight up to `drainMs`
   * to finish, aborts the rest (their deliveries are released, due at once, without counting
   * an attempt) and records everything.
   */
  async close(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#claimer.stop();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#timer.stop();
    for (const d of this.#lanes.drain()) this.#giveBack(d, false);
    const all = () => Promise.allSettled([...this.#running]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    await this.#sending.close();
    await all();
    await this.#writer.idle();
  }
}
