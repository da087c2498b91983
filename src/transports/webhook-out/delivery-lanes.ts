/**
 * Lanes and capacity: what this node holds of each endpoint's deliveries (requests in flight,
 * leased deliveries waiting for a slot, places reserved for fresh ones being stored), the bounds
 * on all of it, and the order in which endpoints with waiting deliveries are served. Pure
 * bookkeeping: no store, no clock, no request.
 */
import type { Delivery, EndpointRecord } from '../../core/delivery-store.js';

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
export const REFILL_FRACTION = 0.25;

/** One endpoint's state on this node. */
export interface Lane {
  /** Requests in flight. */
  inflight: number;
  /** Leased deliveries waiting for a slot, in the order they were leased. */
  readonly ready: Delivery[];
  /** Fresh deliveries leased on the fast path whose rows are being stored. */
  reserved: number;
}

export interface LaneLimits {
  /** Requests in flight at once on this node. */
  concurrency: number;
  /** Requests in flight per parallel endpoint that sets no `maxConcurrency`. */
  endpointConcurrency: number;
}

/**
 * Every endpoint's lane on this node and the node's totals. Isolation between endpoints lives
 * here: each has its own slots (one for `ordered`) and its own waiting room, so a slow or dead
 * endpoint only ever fills its own.
 */
export class DeliveryLanes {
  readonly #limits: LaneLimits;
  readonly #lanes = new Map<string, Lane>();
  /** Endpoints with deliveries waiting, in the order they are served next. */
  readonly #waiting = new Set<string>();
  /** Requests in flight. */
  #total = 0;
  /** Deliveries waiting or reserved, and their body bytes. */
  #held = 0;
  #heldBytes = 0;

  constructor(limits: LaneLimits) {
    this.#limits = limits;
  }

  /** Requests in flight on this node. */
  get inFlight(): number {
    return this.#total;
  }

  /** Deliveries waiting or reserved on this node. */
  get held(): number {
    return this.#held;
  }

  /** True when the node may start no more requests. */
  get full(): boolean {
    return this.#total >= this.#limits.concurrency;
  }

  lane(id: string): Lane {
    let l = this.#lanes.get(id);
    if (!l) this.#lanes.set(id, (l = { inflight: 0, ready: [], reserved: 0 }));
    return l;
  }

  /** Requests the endpoint may have in flight at once. */
  limit(e: EndpointRecord): number {
    return e.ordering === 'ordered' ? 1 : (e.maxConcurrency ?? this.#limits.endpointConcurrency);
  }

  /** In flight, waiting and reserved together may reach this for a parallel endpoint. */
  capacity(e: EndpointRecord): number {
    return e.ordering === 'ordered' ? 1 : this.limit(e) * (1 + READY_PER_SLOT);
  }

  /** In flight, waiting and reserved, of one endpoint. */
  used(id: string): number {
    const l = this.lane(id);
    return l.inflight + l.ready.length + l.reserved;
  }

  /** Room for one more fresh delivery of `bodyBytes`: in the endpoint's lane and on the node. */
  hasRoom(e: EndpointRecord, bodyBytes: number): boolean {
    return this.used(e.id) < this.capacity(e) && this.#held < READY_MAX && this.#heldBytes + bodyBytes <= READY_MAX_BYTES;
  }

  /**
   * How many deliveries a claim should ask for the endpoint: its free room, or 0 while its
   * lane is fuller than REFILL_FRACTION allows (claims come in batches).
   */
  claimRoom(e: EndpointRecord): number {
    const cap = this.capacity(e);
    const used = this.used(e.id);
    const room = cap - used;
    if (room <= 0 || (used > 0 && room < Math.ceil(cap * REFILL_FRACTION))) return 0;
    return room;
  }

  /** What a claim may still bring onto this node: deliveries (slots free and room waiting) and bytes. */
  budget(): { count: number; bytes: number } {
    return { count: this.#limits.concurrency - this.#total + READY_MAX - this.#held, bytes: READY_MAX_BYTES - this.#heldBytes };
  }

  /** Reserves a place for a fresh delivery being stored already leased. */
  reserve(endpointId: string, bodyBytes: number): void {
    this.lane(endpointId).reserved++;
    this.#hold(bodyBytes);
  }

  /** Frees a reserved place (the delivery is stored and about to wait, or was never stored). */
  unreserve(endpointId: string, bodyBytes: number): void {
    this.lane(endpointId).reserved--;
    this.#release(bodyBytes);
  }

  /** A leased delivery waits for a slot of its endpoint. */
  enqueue(d: Delivery): void {
    this.lane(d.endpointId).ready.push(d);
    this.#hold(d.body.length);
    this.#waiting.add(d.endpointId);
  }

  /** Endpoints with deliveries waiting, in the order they are served now. */
  serveOrder(): string[] {
    return [...this.#waiting];
  }

  /** The endpoint's oldest waiting delivery, taken out of the waiting room. */
  take(endpointId: string): Delivery | undefined {
    const d = this.lane(endpointId).ready.shift();
    if (d) this.#release(d.body.length);
    return d;
  }

  /** Every waiting delivery of the endpoint, taken out of the waiting room. */
  takeAll(endpointId: string): Delivery[] {
    const all = this.lane(endpointId).ready.splice(0);
    for (const d of all) this.#release(d.body.length);
    return all;
  }

  /** The endpoint was served: to the back of the line if it still has deliveries waiting, so a busy node shares its slots in turn. */
  served(endpointId: string): void {
    this.#waiting.delete(endpointId);
    if (this.lane(endpointId).ready.length > 0) this.#waiting.add(endpointId);
  }

  /** A request of the endpoint starts: it holds one of its slots and one of the node's. */
  occupy(endpointId: string): void {
    this.lane(endpointId).inflight++;
    this.#total++;
  }

  /** A request of the endpoint is over: its slots serve the next one. */
  vacate(endpointId: string): void {
    this.#total--;
    this.lane(endpointId).inflight--;
  }

  /** Every waiting delivery on the node, taken out (shutdown). */
  drain(): Delivery[] {
    const out: Delivery[] = [];
    for (const id of this.#lanes.keys()) out.push(...this.takeAll(id));
    this.#waiting.clear();
    return out;
  }

  #hold(bytes: number): void {
    this.#held++;
    this.#heldBytes += bytes;
  }

  #release(bytes: number): void {
    this.#held--;
    this.#heldBytes -= bytes;
  }
}
