import { randomBytes } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import { hostname } from 'node:os';
import type { Config } from '../../config/schema.js';
import { HeraldError } from '../../core/errors.js';
import { LIST_PAGE_MAX, REPLAY_PAGE_EVENTS } from '../../core/limits.js';
import type { Logger } from '../../observability/logger.js';
import type { OutboundLog } from './outbound-log.js';
import { DeliveryDispatcher, type DispatcherOptions } from './delivery-dispatcher.js';
import { DeliveryPlanner } from './delivery-planner.js';
import type { Delivery, DeliveryQuery, DeliveryStore, EndpointRecord, NewDelivery } from '../../core/delivery-store.js';
import { toEndpointInput, toEndpointPatch } from './endpoint-input.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { PLANNER_LEASE, PlannerLease } from './planner-lease.js';
import { RetrySchedule } from './retry-policy.js';
import { ThreadedWebhookSender } from './threaded-sender.js';
import { WebhookSender, type Sender } from './webhook-sender.js';

/** Deliveries one replay call may create; a bigger replay is continued from the position it returns. */
export const REPLAY_MAX_EVENTS = 10_000;
/** milliseconds between prunes of finished deliveries. */
const PRUNE_INTERVAL_MS = 60_000;

export interface OutboundWebhooksOptions {
  /** The log, through the wing's own narrow interface (the hub satisfies it). */
  hub: OutboundLog;
  store: DeliveryStore;
  config: Config['outbound'];
  log: Logger;
  now?: () => number;
  /** The resolver behind the SSRF guard (tests inject one). */
  lookup?: LookupFunction;
  /** Observes each recorded attempt (metrics, benchmarks). */
  onAttempt?: DispatcherOptions['onAttempt'];
}

/**
 * Outbound webhooks, assembled: the endpoint registry, the planner (log → deliveries) on the one
 * node holding the planner lease, the dispatcher (deliveries → HTTP) on every node, and the
 * operator operations the HTTP routes expose. See docs/outbound-webhooks.md.
 */
export class OutboundWebhooks {
  readonly registry: EndpointRegistry;
  readonly store: DeliveryStore;
  readonly #hub: OutboundLog;
  readonly #config: Config['outbound'];
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #schedule: RetrySchedule;
  readonly #planner: DeliveryPlanner;
  readonly #plannerLease: PlannerLease;
  readonly #dispatcher: DeliveryDispatcher;
  readonly #sender: Sender;
  #pruner: NodeJS.Timeout | undefined;
  #started = false;
  #closed: Promise<void> | undefined;

  /** This node's name on its leases: host, process id, and a random part for this start. */
  readonly #owner = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;

  constructor(opts: OutboundWebhooksOptions) {
    ownersHere.add(this.#owner);
    const c = (this.#config = opts.config);
    this.#hub = opts.hub;
    this.store = opts.store;
    this.#log = opts.log;
    const now = (this.#now = opts.now ?? Date.now);
    this.#schedule = new RetrySchedule(c.retryScheduleSeconds, c.retryJitter);
    this.registry = new EndpointRegistry({
      store: opts.store,
      now,
      rotationOverlapMs: c.secretRotationOverlapSeconds * 1000,
      // An endpoint enabled elsewhere has deliveries due again; one created elsewhere may get some.
      onRefresh: () => this.#dispatcher.wake(),
      onRefreshError: (err) => {
        if (err === undefined) opts.log.info('outbound webhooks: endpoint changes are read again');
        else opts.log.error({ err }, 'outbound webhooks: could not read endpoint changes; using the endpoints known');
      },
    });
    const senderOptions = { timeoutMs: c.timeoutSeconds * 1000, allowPrivateTargets: c.allowPrivateTargets };
    // An injected resolver or clock (tests) cannot cross into a thread: those send from here.
    this.#sender =
      c.senderThreads > 0 && !opts.lookup && !opts.now
        ? new ThreadedWebhookSender(senderOptions, c.senderThreads, opts.log)
        : new WebhookSender({ ...senderOptions, lookup: opts.lookup, now });
    this.#dispatcher = new DeliveryDispatcher({
      store: opts.store,
      registry: this.registry,
      sender: this.#sender,
      schedule: this.#schedule,
      log: opts.log,
      now,
      owner: this.#owner,
      concurrency: c.concurrency,
      endpointConcurrency: c.maxConcurrencyPerEndpoint,
      leaseMs: c.leaseSeconds * 1000,
      requestTimeoutMs: c.timeoutSeconds * 1000,
      sweepIntervalMs: c.sweepIntervalSeconds * 1000,
      maxRetryAfterMs: c.maxRetryAfterSeconds * 1000,
      disableAfterFailingMs: c.disableAfterFailingSeconds * 1000,
      breakerFailures: c.circuitBreakerFailures,
      breakerCooldownMs: c.circuitBreakerCooldownSeconds * 1000,
      onDisabled: (e) => this.#announceDisabled(e),
      onAttempt: opts.onAttempt,
    });
    this.#planner = new DeliveryPlanner({
      hub: opts.hub,
      store: opts.store,
      registry: this.registry,
      log: opts.log,
      now,
      firstDelayMs: () => this.#schedule.delayBefore(0) ?? 0,
      handOff: this.#dispatcher,
    });
    this.#plannerLease = new PlannerLease({
      store: opts.store,
      owner: this.#owner,
      ttlMs: c.plannerLeaseSeconds * 1000,
      now,
      log: opts.log,
      gained: () => this.#planner.start(),
      lost: () => this.#planner.close(),
    });
  }

  /** Loads endpoints, catches up on events not yet planned, and starts the workers. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.registry.load();
    this.registry.watch();
    await this.#recoverLeases();
    await this.#planner.loadLogId();
    await this.#plannerLease.start();
    if (this.#config.send) this.#dispatcher.start();
    const retentionMs = this.#config.deliveryRetentionSeconds * 1000;
    this.#pruner = setInterval(() => {
      this.store.prune(this.#now() - retentionMs).then(
        (n) => n > 0 && this.#log.info({ deleted: n }, 'outbound webhooks: pruned finished deliveries'),
        (err: unknown) => this.#log.error({ err }, 'outbound webhooks: prune failed'),
      );
    }, PRUNE_INTERVAL_MS);
    this.#pruner.unref();
  }

  /**
   * Leases held by a process of this host that is gone (killed, crashed) are given back at once,
   * so what it had in flight or waiting in memory is sent now instead of when each lease runs out.
   * A process is gone when no process has its id, or when its id is ours (a restart that got the
   * same id, as in a container where Herald is process 1). Other hosts' leases run out as usual.
   */
  async #recoverLeases(): Promise<void> {
    const planner = await this.store.leaseHolder(PLANNER_LEASE, this.#now());
    if (planner && planner.owner !== this.#owner && isGoneLocalOwner(planner.owner)) {
      await this.store.releaseLease(PLANNER_LEASE, planner.owner);
      this.#log.info({ owner: planner.owner }, 'outbound webhooks: took back the planner lease of a stopped process');
    }
    const dead = (await this.store.leaseOwners()).filter((o) => o !== this.#owner && isGoneLocalOwner(o));
    if (dead.length === 0) return;
    const n = await this.store.releaseOwners(dead, this.#now());
    if (n > 0) this.#log.info({ released: n, owners: dead }, 'outbound webhooks: took back the leases of a stopped process');
  }

  /** This node's name on its leases (the planner lease's holder names the node that plans). */
  get owner(): string {
    return this.#owner;
  }

  /** Requests in flight on this node. */
  get inFlight(): number {
    return this.#dispatcher.inFlight;
  }

  /** Leased deliveries waiting in memory for a slot on this node. */
  get waiting(): number {
    return this.#dispatcher.waiting;
  }

  /** Stops planning and sending (requests in flight get up to `drainMs`). Idempotent. */
  close(drainMs = 5_000): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#pruner);
      this.registry.unwatch();
      await this.#plannerLease.close();
      await this.#dispatcher.close(drainMs);
      ownersHere.delete(this.#owner);
      await this.store.close();
    })();
    return this.#closed;
  }

  /** The newest log position planned: this node's planner's, or the store's when another node plans. */
  async #plannedThrough(): Promise<number> {
    return this.#plannerLease.held ? this.#planner.cursor : ((await this.store.plannedThrough()) ?? 0);
  }

  /** Tells the system channel that Herald disabled an endpoint (never its URL: it may hold a token). */
  #announceDisabled(e: EndpointRecord): void {
    const data = JSON.stringify({
      endpointId: e.id,
      reason: e.disabledReason,
      failingSince: e.failingSince === null ? null : new Date(e.failingSince).toISOString(),
      disabledAt: new Date(e.updatedAt).toISOString(),
    });
    this.#hub.publish([{ channel: this.#config.systemChannel, type: 'endpoint.disabled', data }]).catch((err: unknown) => {
      this.#log.error({ err, endpoint: e.id }, 'outbound webhooks: could not announce a disabled endpoint');
    });
  }

  circuit(endpointId: string) {
    return this.#dispatcher.circuit(endpointId);
  }

  // ---- operator operations (behind guard.operator in the routes) ----

  async createEndpoint(body: unknown): Promise<EndpointRecord> {
    const input = toEndpointInput(body, this.#config.allowPrivateTargets);
    // Deliveries start after the newest event the planner has seen: the endpoint gets what is
    // published from now on, and history only by an explicit replay.
    const head = Math.max(await this.#plannedThrough(), (await this.#hub.head()).lastSeq);
    return this.registry.create(input, head);
  }

  /**
   * Operator reads start from what every node wrote, where several share the store (workers, a
   * Redis backend): one read of the endpoints version, and a reload when it moved.
   */
  async endpointsUpToDate(): Promise<void> {
    await this.registry.refresh();
  }

  async updateEndpoint(id: string, body: unknown): Promise<EndpointRecord> {
    // Changes made on other nodes first, so a patch never writes back fields older than them.
    await this.registry.refresh();
    this.registry.require(id);
    const e = await this.registry.update(id, toEndpointPatch(body, this.#config.allowPrivateTargets));
    this.#dispatcher.wake();
    return e;
  }

  async deleteEndpoint(id: string): Promise<void> {
    await this.registry.refresh();
    await this.registry.remove(id);
  }

  async rotateSecret(id: string): Promise<EndpointRecord> {
    await this.registry.refresh();
    return this.registry.rotateSecret(id);
  }

  async listDeliveries(endpointId: string, q: DeliveryQuery): Promise<Delivery[]> {
    await this.registry.refresh();
    this.registry.require(endpointId);
    return this.store.listDeliveries(endpointId, q);
  }

  async getDelivery(id: number) {
    const found = await this.store.getDelivery(id);
    if (!found) throw new HeraldError('DELIVERY_NOT_FOUND', `no delivery has the id ${id}`);
    return found;
  }

  /** Sends a delivery again now, with a fresh retry schedule (also a dead or delivered one). */
  async retryDelivery(id: number): Promise<Delivery> {
    const d = await this.store.retry(id, this.#now());
    if (!d) throw new HeraldError('DELIVERY_NOT_FOUND', `no delivery has the id ${id}`);
    this.#dispatcher.wake();
    return d;
  }

  /**
   * Sends up to `max` of the endpoint's dead deliveries again, newest first, each with a fresh
   * retry schedule. `more`: dead deliveries were left for another call.
   */
  async retryDead(endpointId: string, max: number): Promise<{ retried: number; more: boolean }> {
    await this.registry.refresh();
    this.registry.require(endpointId);
    let retried = 0;
    while (retried < max) {
      // A retried delivery is no longer dead, so each page starts again from the newest.
      const page = await this.store.listDeliveries(endpointId, { status: 'dead', limit: Math.min(LIST_PAGE_MAX, max - retried) });
      if (page.length === 0) break;
      const before = retried;
      for (const d of page) if (await this.store.retry(d.id, this.#now())) retried++;
      if (retried === before) break; // gone meanwhile (deleted elsewhere): nothing left to do here
    }
    if (retried > 0) this.#dispatcher.wake();
    const left = retried < max ? [] : await this.store.listDeliveries(endpointId, { status: 'dead', limit: 1 });
    return { retried, more: left.length > 0 };
  }

  /**
   * Queues the endpoint's events after log position `after` again (new deliveries, the same
   * `webhook-id` per event). Covers what the planner has already planned; at most
   * REPLAY_MAX_EVENTS per call, `next` says where to continue.
   */
  async replay(id: string, after: number): Promise<{ queued: number; through: number; next: number | null; prunedThrough: number }> {
    await this.registry.refresh();
    const e = this.registry.require(id);
    const bounds = await this.#hub.head();
    // Up to what the planner has planned (what follows, it plans itself), and at least up to
    // where the endpoint starts: the planner never plans an event at or before `fromSeq` for it,
    // however far behind the stored cursor is (it may lag while no endpoint exists).
    const until = Math.max(await this.#plannedThrough(), e.fromSeq);
    const now = this.#now();
    let cursor = after;
    let queued = 0;
    let more = false;
    while (cursor < until) {
      const page = await this.#hub.read(e.channels, cursor, REPLAY_PAGE_EVENTS);
      const rows: NewDelivery[] = [];
      for (const ev of page) {
        if (ev.seq > until) break;
        if (queued + rows.length >= REPLAY_MAX_EVENTS) {
          more = true;
          break;
        }
        cursor = ev.seq;
        if (e.types === null || e.types.includes(ev.type)) rows.push(...this.#planner.rowsFor(ev, [e], now));
      }
      await this.store.enqueue(rows);
      queued += rows.length;
      if (more || page.length < REPLAY_PAGE_EVENTS || page[page.length - 1]!.seq > until) break;
    }
    if (!more) cursor = Math.max(cursor, until);
    this.#dispatcher.wake();
    return { queued, through: cursor, next: more ? cursor : null, prunedThrough: bounds.prunedThrough };
  }
}

/** Lease owners of the instances running in this process. */
const ownersHere = new Set<string>();

/** True for a lease owner (`host/pid/random`) on this host whose process no longer runs. */
export function isGoneLocalOwner(owner: string): boolean {
  const parts = owner.split('/');
  if (parts.length < 3) return false;
  const pid = Number(parts[parts.length - 2]);
  const host = parts.slice(0, -2).join('/');
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  // Our own id: another instance in this process, or a process before us that had our id.
  if (pid === process.pid) return !ownersHere.has(owner);
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
