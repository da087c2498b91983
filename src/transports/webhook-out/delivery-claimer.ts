/**
 * Claiming: how deliveries come to be leased to this node. Two ways: a claim, which takes a
 * batch of due rows from the store in one transaction, endpoint by endpoint from a rotating
 * start; and the fast path, where a fresh delivery of an endpoint with nothing older due is
 * stored already leased, so the common case (an event sent as soon as it is stored) costs no
 * claim at all. It also owns the timer that says when something in the store comes due.
 */
import type { DeliveryLanes } from './delivery-lanes.js';
import type { Delivery, DeliveryStore, EndpointRecord } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import type { OutcomePolicy } from './outcome-policy.js';

export interface ClaimerOptions {
  store: DeliveryStore;
  registry: EndpointRegistry;
  lanes: DeliveryLanes;
  /** Whose breakers say which endpoints may be sent to. */
  policy: OutcomePolicy;
  /** Armed for the next due delivery, or an open circuit's next probe. */
  timer: DueTimer;
  /** This worker's name on its leases. */
  owner: string;
  leaseMs: number;
}

export class DeliveryClaimer {
  readonly #o: ClaimerOptions;
  /**
   * Endpoints whose last claim came back short: nothing else of theirs was due in the store.
   * Only these get fresh deliveries leased as they are stored, and claims skip them; any sign of
   * due work in the store (a row stored unleased, a retry, a lease given back, a timer, a sweep,
   * an outside change) takes an endpoint out.
   */
  readonly #caughtUp = new Set<string>();
  /** Raised whenever an endpoint leaves #caughtUp, so a claim's answer that crossed it is not trusted. */
  #uncaught = 0;
  #rotation = 0;
  #stopped = false;

  constructor(opts: ClaimerOptions) {
    this.#o = opts;
  }

  /**
   * The fast path for a fresh delivery that is due now: when its endpoint is parallel, enabled,
   * with a closed circuit, room in its lane, and nothing older due in the store, it is to be
   * stored already leased to this worker (in the transaction that stores it), so it costs no
   * claim. Its place in the lane is reserved by the caller. Undefined: store it unleased, and
   * the next claim looks for it before any fresh one skips it.
   */
  leaseFresh(e: EndpointRecord, nextAt: number, bodyBytes: number, now: number): { owner: string; until: number } | undefined {
    const ok =
      !this.#stopped &&
      e.enabled &&
      e.ordering === 'parallel' &&
      nextAt <= now &&
      this.#caughtUp.has(e.id) &&
      this.#o.lanes.hasRoom(e, bodyBytes) &&
      this.#o.policy.breaker(e.id).state(now) === 'closed';
    if (!ok) {
      this.behind(e.id);
      return undefined;
    }
    return { owner: this.#o.owner, until: now + this.#o.leaseMs };
  }

  /** Something of the endpoint may be due in the store: the next claim looks. */
  behind(endpointId: string): void {
    this.#caughtUp.delete(endpointId);
    this.#uncaught++;
  }

  /** Anything may be due in the store (an outside change, a timer, a sweep): every endpoint is looked at. */
  forgetAll(): void {
    this.#caughtUp.clear();
    this.#uncaught++;
  }

  /** Claims no more (shutdown). */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Claims due deliveries for the endpoints with room in their lanes, within what the node may
   * still hold. Resolves to what was leased, in the order the store gave it.
   */
  async claim(now: number): Promise<Delivery[]> {
    if (this.#stopped) return [];
    const { lanes, policy, timer } = this.#o;
    const budget = lanes.budget();
    if (budget.count <= 0 || budget.bytes <= 0) return [];
    const endpoints = this.#o.registry.list().filter((e) => e.enabled);
    if (endpoints.length === 0) return [];
    // Round robin: this claim starts after the last endpoint the previous one served.
    const start = this.#rotation % endpoints.length;
    const requests = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[(start + i) % endpoints.length]!;
      // Nothing of it is due in the store (its fresh deliveries come by the fast path).
      if (this.#caughtUp.has(e.id)) continue;
      const room = lanes.claimRoom(e);
      if (room <= 0) continue;
      const breaker = policy.breaker(e.id);
      const state = breaker.state(now);
      if (state === 'open') {
        timer.arm(breaker.reopensAt);
        continue;
      }
      // Half open: one probe, claimed only when nothing of the endpoint is in flight or waiting.
      const limit = state === 'half-open' ? (lanes.used(e.id) === 0 ? 1 : 0) : room;
      if (limit <= 0) continue;
      requests.push({ endpointId: e.id, limit, ordered: e.ordering === 'ordered' });
    }
    if (requests.length === 0) return [];
    // The store serves the requests in order until the budget is claimed; endpoints with nothing
    // due cost a look-up, not a share of the budget.
    const uncaught = this.#uncaught;
    const { claimed, nextDueAt, cut } = await this.#o.store.claim(requests, now, this.#o.leaseMs, this.#o.owner, budget.count, budget.bytes);
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
    if (nextDueAt !== undefined && nextDueAt > now) timer.arm(nextDueAt);
    return claimed;
  }
}

/** One wake-up at the earliest time asked for; it calls `onDue` when that time comes. */
export class DueTimer {
  readonly #now: () => number;
  readonly #onDue: () => void;
  #timer: NodeJS.Timeout | undefined;
  #at = Infinity;
  #stopped = false;

  constructor(now: () => number, onDue: () => void) {
    this.#now = now;
    this.#onDue = onDue;
  }

  /** When the timer fires next (Infinity when it is not armed). */
  get at(): number {
    return this.#at;
  }

  /** A wake-up at `at`; an earlier one already armed wins. */
  arm(at: number): void {
    if (this.#stopped || at >= this.#at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.#onDue();
    }, Math.max(0, at - this.#now()));
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
