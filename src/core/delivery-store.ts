/**
 * Where outbound webhook endpoints and the deliveries owed to them live.
 *
 * Specification every implementation keeps (test/contract/delivery-store.contract.ts checks it):
 *
 * - **Source of truth.** Every pending delivery is in the store; a worker's in-memory state is
 *   only an accelerator. After a crash, everything pending is found again by `claim`.
 * - **Planning is exactly once.** `enqueue(rows, plannedThrough)` adds the rows and raises the
 *   planning cursor in one atomic step, so a crash either keeps both or neither: the planner
 *   resumes from `plannedThrough()` and never plans an event twice or skips one. A row given a
 *   `lease` is stored already claimed (its first claim, token 1, held by `lease.owner` until
 *   `lease.until`), exactly as if `claim` had taken it the moment it was stored: the worker that
 *   planned it sends it without a claim transaction of its own. `enqueue` returns those rows.
 * - **Claims are leases.** `claim` hands a due `pending` delivery to one caller and makes it
 *   invisible to every other caller until the lease ends (`nextAt` is moved to the lease's end,
 *   so an expired lease simply makes the delivery due again: no separate recovery step). Each
 *   claim raises the delivery's `claims` counter, the fencing token: `finish` and `release` only
 *   change a delivery whose counter still equals the token they were given, so a worker whose
 *   lease ran out can never overwrite the outcome of the worker that claimed it next. Two
 *   callers, in one process or several sharing the store, never hold the same delivery at once.
 * - **Order.** For an `ordered` request only the endpoint's oldest pending delivery (lowest id,
 *   which is log order) may be claimed, and only when it is due: a failing head blocks the rest.
 *   Parallel requests take due deliveries oldest `nextAt` first.
 * - **Attempts are history.** `finish` always records the attempt, even when the token is stale.
 * - **Held** deliveries belong to a disabled endpoint: kept, never claimed, released to
 *   `pending` (due at once) by `unhold` when the endpoint is enabled again.
 * - **Named leases** say which node does work that must run on one node at a time (the
 *   planner: two planners of one store would plan every event twice). `acquireLease` gives the
 *   lease to `owner` until `now + ttlMs` when it is free, expired (`until <= now`) or already
 *   `owner`'s (a renewal), atomically across every handle on the store, and resolves to whether
 *   `owner` holds it; so two owners never hold one lease at once, by their clocks. A holder that
 *   dies stops renewing and the lease is taken over once it expires; `releaseLease` gives it back
 *   at once (graceful stop), and only when `owner` still holds it.
 * - **Endpoint changes are announced.** `endpointsVersion()` changes whenever a `putEndpoint`,
 *   `deleteEndpoint`, `hold` or `unhold` commits, in the same atomic step, seen by every handle on
 *   the store: a node that caches endpoints polls it (cheaply) and reloads when it moved, so an
 *   endpoint created, changed or deleted on one node reaches the others.
 * - **close()** is idempotent; the store does not own a shared database connection.
 */
export interface DeliveryStore {
  /** True when what is stored survives a process crash. */
  readonly durable: boolean;

  /**
   * A random id of this store, fixed for its lifetime, so message ids of a new log never collide.
   * The backend makes it the epoch of the log the store follows (EventStore `head().epoch`).
   */
  logId(): Promise<string>;

  putEndpoint(endpoint: EndpointRecord): Promise<void>;
  /** Deletes the endpoint and every delivery and attempt of it. False when it did not exist. */
  deleteEndpoint(id: string): Promise<boolean>;
  listEndpoints(): Promise<EndpointRecord[]>;
  /**
   * A number that changes with every change to endpoints (see the specification above); 0 before
   * the first. Only equality means anything: read it before `listEndpoints`, and a later read
   * that differs says the list may have changed since.
   */
  endpointsVersion(): Promise<number>;

  /** The newest log position the planner has turned into deliveries; undefined before the first plan. */
  plannedThrough(): Promise<number | undefined>;
  /**
   * Adds deliveries; with `plannedThrough`, raises the planning cursor in the same transaction.
   * Resolves to the rows stored with a lease, in the order given, as claimed deliveries.
   */
  enqueue(rows: readonly NewDelivery[], plannedThrough?: number): Promise<Delivery[]>;

  /**
   * Claims due deliveries for `leaseMs`, endpoint by endpoint in the order requested, at most
   * `max` in all and bodies of at most `maxBytes` in all (always at least one delivery); once a
   * bound is reached, later endpoints get nothing and `cut` is true. See the specification above.
   */
  claim(
    requests: readonly ClaimRequest[],
    now: number,
    leaseMs: number,
    owner: string,
    max?: number,
    maxBytes?: number,
  ): Promise<ClaimResult>;
  /** Records attempts and applies their outcomes (only where the fencing token still holds). */
  finish(results: readonly FinishedAttempt[]): Promise<void>;
  /** Gives claimed deliveries back, due at `now`, without counting an attempt (graceful stop). */
  release(claims: readonly { id: number; claim: number }[], now: number): Promise<void>;

  /** The workers holding leases on pending deliveries. */
  leaseOwners(): Promise<string[]>;
  /**
   * Gives back every lease held by `owners` (due at `now`, no attempt counted, the fencing
   * counter unchanged), for workers known to be dead. Resolves to how many were given back.
   */
  releaseOwners(owners: readonly string[], now: number): Promise<number>;

  /** Takes or renews the lease `name` for `owner` until `now + ttlMs`; true when `owner` holds it. */
  acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease `name` back when `owner` holds it, so another owner may take it at once. */
  releaseLease(name: string, owner: string): Promise<void>;
  /** Who holds the lease `name` at `now`, and until when; undefined when it is free or expired. */
  leaseHolder(name: string, now: number): Promise<LeaseHolder | undefined>;

  /** Moves an endpoint's pending deliveries to `held`. Resolves to how many moved. */
  hold(endpointId: string, now: number): Promise<number>;
  /** Moves an endpoint's held deliveries back to `pending`, due at `now`. */
  unhold(endpointId: string, now: number): Promise<number>;
  /** Makes a delivery pending and due at `now` with a fresh retry schedule. */
  retry(id: number, now: number): Promise<Delivery | undefined>;

  getDelivery(id: number): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined>;
  /** Newest first; `before` is a delivery id to page back from. */
  listDeliveries(endpointId: string, query: DeliveryQuery): Promise<Delivery[]>;

  /** Deletes delivered and dead deliveries (and their attempts) created before `before`. */
  prune(before: number): Promise<number>;

  close(): Promise<void>;
}

export type Ordering = 'parallel' | 'ordered';

/** The holder of a named lease (DeliveryStore.acquireLease). */
export interface LeaseHolder {
  readonly owner: string;
  /** Milliseconds since the epoch when the lease expires unless renewed. */
  readonly until: number;
}

/** Why an endpoint is disabled: by an operator, by a 410 answer, or after failing too long. */
export type DisabledReason = 'operator' | 'gone' | 'failing';

export interface EndpointRecord {
  readonly id: string;
  readonly url: string;
  readonly channels: readonly string[];
  /** Event types to deliver; null delivers every type. */
  readonly types: readonly string[] | null;
  readonly description: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly ordering: Ordering;
  /** Requests in flight at once for a parallel endpoint; null uses the configured default. */
  readonly maxConcurrency: number | null;
  /** `whsec_` + base64 of the key. Never logged, never listed. */
  readonly secret: string;
  /** The secret before the last rotation, still signing until `previousSecretExpiresAt`. */
  readonly previousSecret: string | null;
  readonly previousSecretExpiresAt: number | null;
  readonly enabled: boolean;
  readonly disabledReason: DisabledReason | null;
  /** Events with `seq > fromSeq` are delivered: the log head when the endpoint was created. */
  readonly fromSeq: number;
  /** Milliseconds since the epoch of the first failure since the last success; null when healthy. */
  readonly failingSince: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'held';

export interface NewDelivery {
  readonly endpointId: string;
  readonly eventSeq: number;
  /** The `webhook-id` header: the same on every attempt and every resend of this event. */
  readonly msgId: string;
  /** The JSON body sent, built once per event. */
  readonly body: string;
  readonly status: 'pending' | 'held';
  readonly nextAt: number;
  readonly createdAt: number;
  /** Stored already claimed by `owner` until `until` (a pending row due now; see `enqueue`). */
  readonly lease?: { readonly owner: string; readonly until: number } | undefined;
}

/**
 * The delivery a row given a `lease` becomes when `enqueue` stores it (id `id`): pending,
 * claimed once (token 1) by the lease's owner until the lease's end, no attempt yet. Every store
 * answers `enqueue` with exactly this.
 */
export function claimedOnEnqueue(id: number, row: NewDelivery, lease: { readonly owner: string; readonly until: number }): Delivery {
  return {
    id,
    endpointId: row.endpointId,
    eventSeq: row.eventSeq,
    msgId: row.msgId,
    body: row.body,
    status: 'pending',
    attempts: 0,
    scheduleStart: 0,
    nextAt: lease.until,
    claims: 1,
    leaseOwner: lease.owner,
    createdAt: row.createdAt,
    updatedAt: row.createdAt,
    lastStatus: null,
    lastError: null,
  };
}

export interface Delivery extends Omit<NewDelivery, 'status' | 'lease'> {
  readonly id: number;
  readonly status: DeliveryStatus;
  /** Attempts made so far. */
  readonly attempts: number;
  /** Attempts made before the current retry schedule started (a manual retry restarts it). */
  readonly scheduleStart: number;
  /** Fencing token: raised by every claim. */
  readonly claims: number;
  /** Who holds the current lease (a worker id), for the delivery log. */
  readonly leaseOwner: string | null;
  readonly updatedAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
}

export interface ClaimRequest {
  readonly endpointId: string;
  readonly limit: number;
  readonly ordered: boolean;
}

export interface ClaimResult {
  readonly claimed: Delivery[];
  /** The earliest `nextAt` of a pending delivery of the requested endpoints still in the store. */
  readonly nextDueAt: number | undefined;
  /** `max` or `maxBytes` stopped the claim: requests may have got less than was due. */
  readonly cut: boolean;
}

export interface Attempt {
  readonly deliveryId: number;
  /** Milliseconds since the epoch when the request started. */
  readonly at: number;
  readonly durationMs: number;
  /** The HTTP status, or null when no response came (refused, timeout, reset, SSRF guard). */
  readonly status: number | null;
  /** The first 4 KiB of the response body, as text. */
  readonly responseBody: string;
  readonly error: string | null;
}

export type Outcome =
  | { readonly status: 'delivered' }
  | { readonly status: 'pending'; readonly nextAt: number }
  | { readonly status: 'dead' }
  | { readonly status: 'held' };

export interface FinishedAttempt {
  readonly id: number;
  /** The fencing token the claim returned. */
  readonly claim: number;
  readonly attempt: Attempt;
  readonly outcome: Outcome;
}

export interface DeliveryQuery {
  readonly status?: DeliveryStatus | undefined;
  readonly before?: number | undefined;
  readonly limit: number;
}

/** How one store finds and leases rows; `claimWithin` applies the claim rules over it. */
export interface ClaimSource<R> {
  /** Due rows of one request, oldest first, at most `limit` (only the due head when ordered). */
  due(req: ClaimRequest, limit: number): readonly R[];
  bodyBytes(row: R): number;
  /** Leases the row and returns it as claimed. */
  lease(row: R): Delivery;
  /** The earliest `nextAt` of the endpoint's pending rows, if any. */
  nextDue(endpointId: string): number | undefined;
}

/**
 * The claim walk every store shares: requests in order, at most `max` deliveries and `maxBytes`
 * of bodies in all (always at least one), `cut` when a bound stopped it, and the earliest due
 * time of an endpoint that had nothing more due.
 */
export function claimWithin<R>(requests: readonly ClaimRequest[], max: number, maxBytes: number, src: ClaimSource<R>): ClaimResult {
  const claimed: Delivery[] = [];
  let nextDueAt: number | undefined;
  let bytes = 0;
  for (const req of requests) {
    const limit = Math.min(req.limit, max - claimed.length);
    if (limit <= 0) return { claimed, nextDueAt, cut: true };
    const rows = src.due(req, limit);
    for (const r of rows) {
      const size = src.bodyBytes(r);
      if (claimed.length > 0 && bytes + size > maxBytes) return { claimed, nextDueAt, cut: true };
      bytes += size;
      claimed.push(src.lease(r));
    }
    if (rows.length === limit) continue; // more may be due: the caller comes back anyway
    const next = src.nextDue(req.endpointId);
    if (next !== undefined && (nextDueAt === undefined || next < nextDueAt)) nextDueAt = next;
  }
  return { claimed, nextDueAt, cut: false };
}
