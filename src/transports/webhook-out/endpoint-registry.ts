import { randomBytes } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';
import type { StoredEvent } from '../../core/event.js';
import { SubscriberIndex } from '../../core/subscriber-index.js';
import type { DeliveryStore, DisabledReason, EndpointRecord } from '../../core/delivery-store.js';
import type { EndpointInput, EndpointPatch } from './endpoint-input.js';
import { generateSecret } from './signer.js';

export interface EndpointRegistryOptions {
  store: DeliveryStore;
  /** milliseconds the previous secret keeps signing after a rotation. */
  rotationOverlapMs: number;
  now: () => number;
}

/**
 * The endpoints, cached in memory (every event is matched against them) and written through to
 * the delivery store. Channel patterns are indexed like subscriptions (exact names in a Map,
 * wildcards in a token trie), so matching an event costs one walk however many endpoints exist.
 */
export class EndpointRegistry {
  readonly #store: DeliveryStore;
  readonly #opts: EndpointRegistryOptions;
  readonly #byId = new Map<string, EndpointRecord>();
  readonly #index = new SubscriberIndex<string>();

  constructor(opts: EndpointRegistryOptions) {
    this.#opts = opts;
    this.#store = opts.store;
  }

  /**
   * Makes the cache what the store holds: every endpoint it lists, none it does not. Called at
   * start, and again when other processes write endpoints to the same store (workers).
   */
  async load(): Promise<void> {
    const listed = await this.#store.listEndpoints();
    const ids = new Set(listed.map((e) => e.id));
    for (const id of [...this.#byId.keys()]) if (!ids.has(id)) this.#unset(id);
    for (const e of listed) this.#set(e);
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
    await this.#store.putEndpoint(e);
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
