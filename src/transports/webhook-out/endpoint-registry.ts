import { randomBytes } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';
import type { StoredEvent } from '../../core/event.js';
import { SubscriberIndex } from '../../core/subscriber-index.js';
import type { DeliveryStore, DisabledReason, EndpointRecord } from '../../core/delivery-store.js';
import type { EndpointInput, EndpointPatch } from './endpoint-input.js';
import { generateSecret } from './signer.js';

/**
 * milliseconds between looks at the store's endpoints version: how soon an endpoint created,
 * changed or deleted on another node (or another process on the same file) is used here.
 */
export const ENDPOINT_REFRESH_MS = 1_000;

export interface EndpointRegistryOptions {
  store: DeliveryStore;
  /** milliseconds the previous secret keeps signing after a rotation. */
  rotationOverlapMs: number;
  now: () => number;
  /** Called after a refresh brought in changes made elsewhere (the dispatcher looks for due work). */
  onRefresh?: () => void;
  /** Called when a periodic refresh failed, and with undefined when one succeeds again. */
  onRefreshError?: (err: unknown) => void;
}

/**
 * The endpoints, cached in memory (every event is matched against them) and written through to
 * the delivery store. Channel patterns are indexed like subscriptions (exact names in a Map,
 * wildcards in a token trie), so matching an event costs one walk however many endpoints exist.
 *
 * Other nodes sharing the store change endpoints too: `watch` polls the store's endpoints version
 * every ENDPOINT_REFRESH_MS and reloads the cache when it moved, and the planner calls `refresh`
 * before it plans each batch, so what it plans uses every change committed before that.
 */
export class EndpointRegistry {
  readonly #store: DeliveryStore;
  readonly #opts: EndpointRegistryOptions;
  readonly #byId = new Map<string, EndpointRecord>();
  readonly #index = new SubscriberIndex<string>();
  /** The store's endpoints version the cache reflects; undefined before the first load. */
  #version: number | undefined;
  /** Raised by every change made through this registry, so a reload that overlapped one is dropped. */
  #localWrites = 0;
  /** The refresh running now (refreshes run one after another). */
  #refreshing: Promise<boolean> = Promise.resolve(false);
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #failing = false;

  constructor(opts: EndpointRegistryOptions) {
    this.#opts = opts;
    this.#store = opts.store;
  }

  /** Reads every endpoint from the store into the cache. */
  async load(): Promise<void> {
    await this.#reload();
  }

  /**
   * Reloads the cache when the store's endpoints version moved since the last load. Resolves to
   * whether it reloaded. Each call reads the version after every earlier call finished, so a
   * caller sees every change committed before it called.
   */
  refresh(): Promise<boolean> {
    const next = this.#refreshing.catch(() => false).then(async () => {
      const version = await this.#store.endpointsVersion();
      if (version === this.#version) return false;
      return this.#reload(version);
    });
    this.#refreshing = next;
    return next;
  }

  /** Polls for changes made elsewhere every ENDPOINT_REFRESH_MS until `unwatch`. */
  watch(intervalMs = ENDPOINT_REFRESH_MS): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#poll(), intervalMs);
    this.#timer.unref();
  }

  unwatch(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return; // a slow store does not stack polls up
    this.#polling = true;
    try {
      if (await this.refresh()) this.#opts.onRefresh?.();
      if (this.#failing) this.#opts.onRefreshError?.(undefined);
      this.#failing = false;
    } catch (err) {
      if (!this.#timer) return; // stopped while it ran (the store is closing): nothing to report
      if (!this.#failing) this.#opts.onRefreshError?.(err);
      this.#failing = true;
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Replaces the cache with the store's endpoints. The version is read before the list, so a
   * change committed in between is reloaded again next time; a change made here while the list
   * was read leaves the cache alone (the next refresh reloads).
   */
  async #reload(known?: number): Promise<boolean> {
    const writes = this.#localWrites;
    const version = known ?? (await this.#store.endpointsVersion());
    const endpoints = await this.#store.listEndpoints();
    if (writes !== this.#localWrites) return false;
    const keep = new Set(endpoints.map((e) => e.id));
    for (const id of [...this.#byId.keys()]) if (!keep.has(id)) this.#unset(id);
    for (const e of endpoints) this.#set(e);
    this.#version = version;
    return true;
  }

  get(id: string): EndpointRecord | undefined {
    return this.#byId.get(id);
  }

  /** Like `get`, but an unknown id is a 404 for the API. */
  require(id: string): EndpointRecord {
    const e = this.#byId.get(id);
    if (!e) throw new HeraldError('ENDPOINT_NOT_FOUND', `no endpoint has the id ${JSON.stringify(id.slice(0, 100))}`);
    return e;
  }

  list(): EndpointRecord[] {
    return [...this.#byId.values()];
  }

  /** Endpoints in the cache (enabled or not). */
  get size(): number {
    return this.#byId.size;
  }

  /** Endpoints (enabled or not) that want this event: channel, type, and created before it. */
  matching(event: StoredEvent): EndpointRecord[] {
    const out: EndpointRecord[] = [];
    const seen = new Set<string>();
    this.#index.forEachMatch(event.channel, (id) => {
      if (seen.has(id)) return;
      seen.add(id);
      const e = this.#byId.get(id);
      if (!e || event.seq <= e.fromSeq) return;
      if (e.types !== null && !e.types.includes(event.type)) return;
      out.push(e);
    });
    return out;
  }

  /** The secrets that sign a request now: the current one, and the previous during its overlap. */
  signingSecrets(e: EndpointRecord, now: number): string[] {
    if (e.previousSecret !== null && e.previousSecretExpiresAt !== null && now < e.previousSecretExpiresAt) {
      return [e.secret, e.previousSecret];
    }
    return [e.secret];
  }

  /** Creates an endpoint that receives events after log position `fromSeq`. */
  async create(input: EndpointInput, fromSeq: number): Promise<EndpointRecord> {
    const now = this.#opts.now();
    const e: EndpointRecord = {
      id: 'ep_' + randomBytes(10).toString('hex'),
      ...input,
      secret: generateSecret(),
      previousSecret: null,
      previousSecretExpiresAt: null,
      enabled: true,
      disabledReason: null,
      fromSeq,
      failingSince: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.#put(e);
    return e;
  }

  /** Applies a validated patch; enabling releases held deliveries, disabling holds pending ones. */
  async update(id: string, patch: EndpointPatch): Promise<EndpointRecord> {
    const old = this.require(id);
    const now = this.#opts.now();
    const { enabled, ...fields } = patch;
    let e: EndpointRecord = { ...old, ...fields, updatedAt: now };
    if (enabled === true && !old.enabled) e = { ...e, enabled: true, disabledReason: null, failingSince: null };
    if (enabled === false && old.enabled) e = { ...e, enabled: false, disabledReason: 'operator' };
    await this.#put(e);
    if (e.enabled && !old.enabled) await this.#store.unhold(id, now);
    if (!e.enabled && old.enabled) await this.#store.hold(id, now);
    return e;
  }

  async remove(id: string): Promise<void> {
    this.require(id);
    this.#localWrites++;
    this.#unset(id);
    await this.#store.deleteEndpoint(id);
  }

  /** A new secret; the old one keeps signing for the configured overlap. */
  async rotateSecret(id: string): Promise<EndpointRecord> {
    const old = this.require(id);
    const now = this.#opts.now();
    const e: EndpointRecord = {
      ...old,
      secret: generateSecret(),
      previousSecret: old.secret,
      previousSecretExpiresAt: now + this.#opts.rotationOverlapMs,
      updatedAt: now,
    };
    await this.#put(e);
    return e;
  }

  /** Disables an endpoint Herald gave up on; its pending deliveries are held for a later replay. */
  async disable(id: string, reason: DisabledReason): Promise<EndpointRecord | undefined> {
    const old = this.#byId.get(id);
    if (!old || !old.enabled) return undefined;
    const now = this.#opts.now();
    const e: EndpointRecord = { ...old, enabled: false, disabledReason: reason, updatedAt: now };
    await this.#put(e);
    await this.#store.hold(id, now);
    return e;
  }

  /** Records a failure; resolves to the record (with `failingSince` set). */
  async markFailing(id: string, now: number): Promise<EndpointRecord | undefined> {
    const e = this.#byId.get(id);
    if (!e || e.failingSince !== null) return e;
    const next = { ...e, failingSince: now };
    await this.#put(next);
    return next;
  }

  async markHealthy(id: string): Promise<void> {
    const e = this.#byId.get(id);
    if (e && e.failingSince !== null) await this.#put({ ...e, failingSince: null });
  }

  async #put(e: EndpointRecord): Promise<void> {
    this.#localWrites++;
    await this.#store.putEndpoint(e);
    this.#localWrites++;
    this.#set(e);
  }

  #set(e: EndpointRecord): void {
    this.#unset(e.id);
    this.#byId.set(e.id, e);
    for (const p of e.channels) this.#index.add(p, e.id);
  }

  #unset(id: string): void {
    const old = this.#byId.get(id);
    if (!old) return;
    for (const p of old.channels) this.#index.remove(p, id);
    this.#byId.delete(id);
  }
}
