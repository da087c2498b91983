import { ReplyError, type Redis } from 'ioredis';
import { ClosedError, HeraldError } from '../core/errors.js';
import { PRUNE_CHUNK_ROWS } from '../core/limits.js';
import { claimedOnEnqueue } from '../core/delivery-store.js';
import type {
  Attempt,
  ClaimRequest,
  ClaimResult,
  Delivery,
  DeliveryQuery,
  DeliveryStore,
  EndpointRecord,
  FinishedAttempt,
  LeaseHolder,
  NewDelivery,
} from '../core/delivery-store.js';
import { DELIVERY_SCRIPTS, scriptSource, type DeliveryScript } from './redis-delivery-scripts.js';

/**
 * milliseconds a call may wait for Redis before it rejects: past it the node reports the store
 * unavailable instead of stalling the planner, the claims and the API behind a dead connection.
 */
export const REDIS_DELIVERY_TIMEOUT_MS = 2_000;
/** Finished deliveries deleted per prune script, so one prune never blocks Redis for long. */
const PRUNE_CHUNK_DELIVERIES = PRUNE_CHUNK_ROWS / 2;
/** Client states in which a command would only wait in ioredis's offline queue. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

export interface RedisDeliveryStoreOptions {
  /** The client; owned by the caller, who connects and quits it. */
  redis: Redis;
  /** Every key starts with it; a hash tag (`{herald}:`) keeps every key in one Cluster slot. */
  prefix: string;
  /** The epoch of the log the store follows (message ids carry it). */
  logId: () => Promise<string>;
}

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/** A nullable string as a script takes it ('-' or '+value'). */
const nullable = (v: string | number | null): string => (v === null ? '-' : `+${v}`);

function toDelivery(flat: string[]): Delivery {
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return {
    id: Number(h.id),
    endpointId: h.endpointId!,
    eventSeq: Number(h.eventSeq),
    msgId: h.msgId!,
    body: h.body!,
    status: h.status as Delivery['status'],
    attempts: Number(h.attempts),
    scheduleStart: Number(h.scheduleStart),
    nextAt: Number(h.nextAt),
    claims: Number(h.claims),
    leaseOwner: h.leaseOwner ?? null,
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    lastStatus: h.lastStatus === undefined ? null : Number(h.lastStatus),
    lastError: h.lastError ?? null,
  };
}

/**
 * The delivery queue in Redis, shared by every Herald node pointed at the same prefix. Each step
 * the specification calls atomic is one Lua script (redis-delivery-scripts.ts): Redis runs
 * scripts one at a time, which serialises claims, outcomes and leases across all nodes as SQLite's
 * write lock does across processes. Plain reads (lists, a delivery, a lease holder) are single
 * commands or pipelines. Durable as far as the server's persistence (AOF) is configured to be.
 */
export class RedisDeliveryStore implements DeliveryStore {
  readonly durable = true;
  readonly #redis: Redis;
  readonly #p: string;
  /** The key every script names, so a Cluster client routes it to the prefix's slot. */
  readonly #key: string;
  readonly #logIdOf: () => Promise<string>;
  #logId: Promise<string> | undefined;
  #closed = false;

  constructor(opts: RedisDeliveryStoreOptions) {
    this.#redis = opts.redis;
    this.#p = opts.prefix;
    this.#key = opts.prefix + 'ep';
    this.#logIdOf = opts.logId;
    for (const name of Object.keys(DELIVERY_SCRIPTS) as DeliveryScript[]) {
      opts.redis.defineCommand(name, { numberOfKeys: 1, lua: scriptSource(name) });
    }
  }

  /**
   * Runs `fn` against Redis: rejects at once when closed or disconnected, and after the timeout.
   * Whatever the connection throws (refused, closed, out of retries) is BACKEND_UNAVAILABLE; an
   * error Redis answered (a script's) is passed on as it is.
   */
  #run<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    if (DOWN.has(this.#redis.status)) return Promise.reject(unavailable());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(unavailable()), REDIS_DELIVERY_TIMEOUT_MS);
      fn(this.#redis).then(
        (v) => (clearTimeout(timer), resolve(v)),
        (err: unknown) => (clearTimeout(timer), reject(err instanceof ReplyError ? err : unavailable(err))),
      );
    });
  }

  #script(name: DeliveryScript, ...args: (string | number)[]): Promise<unknown> {
    return this.#run((r) => (r as unknown as Record<DeliveryScript, Script>)[name](this.#key, this.#p, ...args));
  }

  logId(): Promise<string> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    const id = (this.#logId ??= this.#logIdOf());
    id.catch(() => {
      if (this.#logId === id) this.#logId = undefined;
    });
    return id;
  }

  async putEndpoint(e: EndpointRecord): Promise<void> {
    await this.#script('heraldDeliveryPutEndpoint', e.id, JSON.stringify(e));
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    return (await this.#script('heraldDeliveryDeleteEndpoint', id)) === 1;
  }

  async listEndpoints(): Promise<EndpointRecord[]> {
    const docs = await this.#run((r) => r.hvals(this.#p + 'ep'));
    return docs.map((d) => JSON.parse(d) as EndpointRecord).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async endpointsVersion(): Promise<number> {
    return Number((await this.#run((r) => r.get(this.#p + 'epv'))) ?? 0);
  }

  async plannedThrough(): Promise<number | undefined> {
    const v = await this.#run((r) => r.hget(this.#p + 'meta', 'plannedThrough'));
    return v === null ? undefined : Number(v);
  }

  async enqueue(rows: readonly NewDelivery[], plannedThrough?: number): Promise<Delivery[]> {
    const args: (string | number)[] = [plannedThrough ?? ''];
    for (const r of rows) {
      const lease = r.status === 'pending' ? r.lease : undefined;
      args.push(r.endpointId, r.eventSeq, r.msgId, r.body, r.status, r.nextAt, r.createdAt, r.body.length, lease?.owner ?? '', lease?.until ?? 0);
    }
    const ids = (await this.#script('heraldDeliveryEnqueue', ...args)) as number[];
    const leased: Delivery[] = [];
    rows.forEach((r, i) => {
      const lease = r.status === 'pending' ? r.lease : undefined;
      if (!lease) return;
      leased.push(claimedOnEnqueue(ids[i]!, r, lease));
    });
    return leased;
  }

  async claim(
    requests: readonly ClaimRequest[],
    now: number,
    leaseMs: number,
    owner: string,
    max = Infinity,
    maxBytes = Infinity,
  ): Promise<ClaimResult> {
    if (this.#closed) throw new ClosedError('The delivery store');
    if (requests.length === 0) return { claimed: [], nextDueAt: undefined, cut: false };
    const args: (string | number)[] = [now, leaseMs, owner, Number.isFinite(max) ? max : '', Number.isFinite(maxBytes) ? maxBytes : ''];
    for (const r of requests) args.push(r.endpointId, r.limit, r.ordered ? '1' : '0');
    const [cut, hasNext, next, claimed] = (await this.#script('heraldDeliveryClaim', ...args)) as [number, number, number, string[][]];
    return {
      claimed: claimed.map(toDelivery),
      nextDueAt: hasNext === 1 ? Number(next) : undefined,
      cut: cut === 1,
    };
  }

  async finish(results: readonly FinishedAttempt[]): Promise<void> {
    if (results.length === 0) return this.#run(async () => undefined);
    const args: (string | number)[] = [];
    for (const { id, claim, attempt: a, outcome } of results) {
      const end = a.at + a.durationMs;
      const nextAt = outcome.status === 'pending' ? outcome.nextAt : end;
      args.push(id, claim, JSON.stringify({ ...a, deliveryId: id }), outcome.status, nextAt, end, nullable(a.status), nullable(a.error));
    }
    await this.#script('heraldDeliveryFinish', ...args);
  }

  async release(claims: readonly { id: number; claim: number }[], now: number): Promise<void> {
    await this.#script('heraldDeliveryRelease', now, ...claims.flatMap((c) => [c.id, c.claim]));
  }

  leaseOwners(): Promise<string[]> {
    return this.#run((r) => r.smembers(this.#p + 'owners'));
  }

  async releaseOwners(owners: readonly string[], now: number): Promise<number> {
    return (await this.#script('heraldDeliveryReleaseOwners', now, ...owners)) as number;
  }

  async acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    return (await this.#script('heraldDeliveryAcquireLease', name, owner, now, ttlMs)) === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.#script('heraldDeliveryReleaseLease', name, owner);
  }

  async leaseHolder(name: string, now: number): Promise<LeaseHolder | undefined> {
    const [owner, until] = await this.#run((r) => r.hmget(this.#p + 'lease:' + name, 'owner', 'until'));
    if (owner === null || owner === undefined || until === null || until === undefined) return undefined;
    return Number(until) > now ? { owner, until: Number(until) } : undefined;
  }

  async hold(endpointId: string, now: number): Promise<number> {
    return (await this.#script('heraldDeliveryHold', endpointId, now)) as number;
  }

  async unhold(endpointId: string, now: number): Promise<number> {
    return (await this.#script('heraldDeliveryUnhold', endpointId, now)) as number;
  }

  async retry(id: number, now: number): Promise<Delivery | undefined> {
    const flat = (await this.#script('heraldDeliveryRetry', id, now)) as string[];
    return flat.length === 0 ? undefined : toDelivery(flat);
  }

  async getDelivery(id: number): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined> {
    const replies = await this.#run((r) =>
      r.multi().hgetall(this.#p + 'd:' + id).lrange(this.#p + 'a:' + id, 0, -1).exec(),
    );
    const [[e1, hash], [e2, list]] = replies as [[Error | null, Record<string, string>], [Error | null, string[]]];
    if (e1 || e2) throw e1 ?? e2;
    if (Object.keys(hash).length === 0) return undefined;
    const delivery = toDelivery(Object.entries(hash).flat());
    return { delivery, attempts: list.map((a) => JSON.parse(a) as Attempt) };
  }

  async listDeliveries(endpointId: string, q: DeliveryQuery): Promise<Delivery[]> {
    const key = q.status ? `${this.#p}s:${q.status}:${endpointId}` : `${this.#p}all:${endpointId}`;
    const max = q.before === undefined ? '+inf' : `(${q.before}`;
    return this.#run(async (r) => {
      const ids = await r.zrevrangebyscore(key, max, '-inf', 'LIMIT', 0, q.limit);
      if (ids.length === 0) return [];
      const pipe = r.pipeline();
      for (const id of ids) pipe.hgetall(this.#p + 'd:' + id);
      const replies = (await pipe.exec()) ?? [];
      const out: Delivery[] = [];
      replies.forEach(([err, hash]) => {
        if (err) throw err;
        const h = hash as Record<string, string>;
        // Deleted (pruned) between the two reads: left out, as a later read would.
        if (Object.keys(h).length > 0) out.push(toDelivery(Object.entries(h).flat()));
      });
      return out;
    });
  }

  async prune(before: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const n = (await this.#script('heraldDeliveryPrune', before, PRUNE_CHUNK_DELIVERIES)) as number;
      deleted += n;
      if (n < PRUNE_CHUNK_DELIVERIES) return deleted;
    }
  }

  /** Idempotent; the client stays open (its owner quits it). */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

function unavailable(cause?: unknown): HeraldError {
  const err = new HeraldError('BACKEND_UNAVAILABLE', 'The delivery store (Redis) is unreachable.');
  if (cause !== undefined) err.cause = cause;
  return err;
}
