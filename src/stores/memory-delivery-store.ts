import { ClosedError } from '../core/errors.js';
import { newEpoch } from '../core/position.js';
import { claimWithin } from '../core/delivery-store.js';
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

type Row = { -readonly [K in keyof Delivery]: Delivery[K] };

/**
 * The delivery queue in process memory, beside the memory event log: lost on restart, like the
 * log it follows. Every call runs to completion synchronously, so claims are atomic.
 */
export class MemoryDeliveryStore implements DeliveryStore {
  readonly durable = false;
  readonly #logId: string;
  readonly #endpoints = new Map<string, EndpointRecord>();
  /** Insertion order is id order. */
  readonly #rows = new Map<number, Row>();
  readonly #attempts = new Map<number, Attempt[]>();
  /** Pending delivery ids by endpoint, so claims never scan finished history. */
  readonly #pendingIds = new Map<string, Set<number>>();
  #nextId = 1;
  #endpointsVersion = 0;
  #plannedThrough: number | undefined;
  readonly #leases = new Map<string, LeaseHolder>();
  #closed = false;

  /** `logId`: the epoch of the log it follows (the backend passes it), else a new random one. */
  constructor(opts: { logId?: string } = {}) {
    this.#logId = opts.logId ?? newEpoch();
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    return Promise.resolve(fn());
  }

  logId(): Promise<string> {
    return this.#run(() => this.#logId);
  }

  putEndpoint(e: EndpointRecord): Promise<void> {
    return this.#run(() => {
      this.#endpoints.set(e.id, structuredClone(e));
      this.#endpointsVersion++;
    });
  }

  deleteEndpoint(id: string): Promise<boolean> {
    return this.#run(() => {
      for (const [rid, r] of this.#rows) {
        if (r.endpointId === id) {
          this.#rows.delete(rid);
          this.#attempts.delete(rid);
        }
      }
      this.#pendingIds.delete(id);
      this.#endpointsVersion++;
      return this.#endpoints.delete(id);
    });
  }

  listEndpoints(): Promise<EndpointRecord[]> {
    return this.#run(() =>
      [...this.#endpoints.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((e) => structuredClone(e)),
    );
  }

  endpointsVersion(): Promise<number> {
    return this.#run(() => this.#endpointsVersion);
  }

  plannedThrough(): Promise<number | undefined> {
    return this.#run(() => this.#plannedThrough);
  }

  enqueue(rows: readonly NewDelivery[], plannedThrough?: number): Promise<Delivery[]> {
    return this.#run(() => {
      const leased: Delivery[] = [];
      for (const { lease, ...r } of rows) {
        const id = this.#nextId++;
        const row: Row = {
          ...r,
          status: 'held',
          id,
          attempts: 0,
          scheduleStart: 0,
          claims: 0,
          leaseOwner: null,
          updatedAt: r.createdAt,
          lastStatus: null,
          lastError: null,
        };
        if (lease && r.status === 'pending') {
          row.nextAt = lease.until;
          row.claims = 1;
          row.leaseOwner = lease.owner;
        }
        this.#rows.set(id, row);
        this.#setStatus(row, r.status);
        if (row.claims > 0) leased.push({ ...row });
      }
      if (plannedThrough !== undefined) this.#plannedThrough = plannedThrough;
      return leased;
    });
  }

  /** The endpoint's pending rows in id order. */
  #pending(endpointId: string): Row[] {
    const ids = this.#pendingIds.get(endpointId);
    if (!ids) return [];
    return [...ids].sort((a, b) => a - b).map((id) => this.#rows.get(id)!);
  }

  #setStatus(r: Row, status: Row['status']): void {
    if (r.status === 'pending' && status !== 'pending') this.#pendingIds.get(r.endpointId)?.delete(r.id);
    if (status === 'pending') {
      let ids = this.#pendingIds.get(r.endpointId);
      if (!ids) this.#pendingIds.set(r.endpointId, (ids = new Set()));
      ids.add(r.id);
    }
    r.status = status;
  }

  claim(
    requests: readonly ClaimRequest[],
    now: number,
    leaseMs: number,
    owner: string,
    max = Infinity,
    maxBytes = Infinity,
  ): Promise<ClaimResult> {
    return this.#run(() =>
      claimWithin<Row>(requests, max, maxBytes, {
        due: (req, limit) => {
          const pending = this.#pending(req.endpointId);
          if (req.ordered) {
            const head = pending[0];
            return head && head.nextAt <= now ? [head] : [];
          }
          return pending
            .filter((r) => r.nextAt <= now)
            .sort((a, b) => a.nextAt - b.nextAt || a.id - b.id)
            .slice(0, limit);
        },
        bodyBytes: (r) => r.body.length,
        lease: (r) => {
          r.nextAt = now + leaseMs;
          r.claims++;
          r.leaseOwner = owner;
          return { ...r };
        },
        nextDue: (endpointId) => {
          let at: number | undefined;
          for (const r of this.#pending(endpointId)) if (at === undefined || r.nextAt < at) at = r.nextAt;
          return at;
        },
      }),
    );
  }

  leaseOwners(): Promise<string[]> {
    return this.#run(() => {
      const owners = new Set<string>();
      for (const r of this.#rows.values()) if (r.status === 'pending' && r.leaseOwner !== null) owners.add(r.leaseOwner);
      return [...owners];
    });
  }

  releaseOwners(owners: readonly string[], now: number): Promise<number> {
    return this.#run(() => {
      const dead = new Set(owners);
      let n = 0;
      for (const r of this.#rows.values()) {
        if (r.status !== 'pending' || r.leaseOwner === null || !dead.has(r.leaseOwner)) continue;
        r.nextAt = now;
        r.leaseOwner = null;
        r.updatedAt = now;
        n++;
      }
      return n;
    });
  }

  acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    return this.#run(() => {
      const held = this.#leases.get(name);
      if (held && held.owner !== owner && held.until > now) return false;
      this.#leases.set(name, { owner, until: now + ttlMs });
      return true;
    });
  }

  releaseLease(name: string, owner: string): Promise<void> {
    return this.#run(() => {
      if (this.#leases.get(name)?.owner === owner) this.#leases.delete(name);
    });
  }

  leaseHolder(name: string, now: number): Promise<LeaseHolder | undefined> {
    return this.#run(() => {
      const held = this.#leases.get(name);
      return held && held.until > now ? { ...held } : undefined;
    });
  }

  finish(results: readonly FinishedAttempt[]): Promise<void> {
    return this.#run(() => {
      for (const { id, claim, attempt, outcome } of results) {
        const r = this.#rows.get(id);
        if (!r) continue;
        const list = this.#attempts.get(id) ?? [];
        list.push({ ...attempt });
        this.#attempts.set(id, list);
        if (r.claims !== claim) continue;
        const end = attempt.at + attempt.durationMs;
        this.#setStatus(r, outcome.status);
        r.nextAt = outcome.status === 'pending' ? outcome.nextAt : end;
        r.attempts++;
        r.leaseOwner = null;
        r.updatedAt = end;
        r.lastStatus = attempt.status;
        r.lastError = attempt.error;
      }
    });
  }

  release(claims: readonly { id: number; claim: number }[], now: number): Promise<void> {
    return this.#run(() => {
      for (const c of claims) {
        const r = this.#rows.get(c.id);
        if (!r || r.claims !== c.claim || r.status !== 'pending') continue;
        r.nextAt = now;
        r.leaseOwner = null;
        r.updatedAt = now;
      }
    });
  }

  hold(endpointId: string, now: number): Promise<number> {
    return this.#run(() => {
      const pending = this.#pending(endpointId);
      for (const r of pending) {
        this.#setStatus(r, 'held');
        r.leaseOwner = null;
        r.updatedAt = now;
      }
      this.#endpointsVersion++;
      return pending.length;
    });
  }

  unhold(endpointId: string, now: number): Promise<number> {
    return this.#run(() => {
      let n = 0;
      for (const r of this.#rows.values()) {
        if (r.endpointId !== endpointId || r.status !== 'held') continue;
        this.#setStatus(r, 'pending');
        r.nextAt = now;
        r.updatedAt = now;
        n++;
      }
      this.#endpointsVersion++;
      return n;
    });
  }

  retry(id: number, now: number): Promise<Delivery | undefined> {
    return this.#run(() => {
      const r = this.#rows.get(id);
      if (!r) return undefined;
      if (r.status !== 'pending' || r.leaseOwner === null) {
        this.#setStatus(r, 'pending');
        r.nextAt = now;
        r.scheduleStart = r.attempts;
        r.leaseOwner = null;
        r.updatedAt = now;
      }
      return { ...r };
    });
  }

  getDelivery(id: number): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined> {
    return this.#run(() => {
      const r = this.#rows.get(id);
      return r && { delivery: { ...r }, attempts: (this.#attempts.get(id) ?? []).map((a) => ({ ...a })) };
    });
  }

  listDeliveries(endpointId: string, q: DeliveryQuery): Promise<Delivery[]> {
    return this.#run(() => {
      const before = q.before ?? Number.MAX_SAFE_INTEGER;
      const out: Delivery[] = [];
      const rows = [...this.#rows.values()];
      for (let i = rows.length - 1; i >= 0 && out.length < q.limit; i--) {
        const r = rows[i]!;
        if (r.endpointId === endpointId && r.id < before && (!q.status || r.status === q.status)) out.push({ ...r });
      }
      return out;
    });
  }

  prune(before: number): Promise<number> {
    return this.#run(() => {
      let n = 0;
      for (const [id, r] of this.#rows) {
        if ((r.status === 'delivered' || r.status === 'dead') && r.createdAt < before) {
          this.#rows.delete(id);
          this.#attempts.delete(id);
          n++;
        }
      }
      return n;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
