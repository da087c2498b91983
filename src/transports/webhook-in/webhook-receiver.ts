import type { IncomingHttpHeaders } from 'node:http';
import { Counter } from 'prom-client';
import { ClosedError, HeraldError } from '../../core/errors.js';
import { CONTROL_CHARACTER, isEventType, type EventInput } from '../../core/event.js';
import type { Hub } from '../../core/hub.js';
import type { Receipt, ReceiptInput, ReceiptQuery } from '../../core/inbound-receipt.js';
import { TYPE_MAX_BYTES } from '../../core/limits.js';
import type { SourceConfig } from '../../config/sources-schema.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { channelFor } from './channel-template.js';
import type { InboundLog } from './inbound-log.js';
import { createVerifier } from './verifiers.js';
import type { InboundRequest, VerifiedWebhook, WebhookVerifier } from './verifier.js';

/** Bytes of a provider event id: the id is part of an idempotency key (255 bytes at most). */
export const PROVIDER_ID_MAX_BYTES = 180;
/** Bytes kept of each audited header value in a receipt. */
export const AUDIT_HEADER_MAX_BYTES = 1_024;
/** Receipts kept per source, newest first: bounds the log under a flood of forged requests. */
export const RECEIPTS_MAX_PER_SOURCE = 100_000;
/**
 * seconds a rejected arrival's receipt is kept (24 h), or the source's `retentionSeconds` when
 * shorter: long enough to debug a misconfigured provider, short enough that a flood of forged
 * requests does not fill the disk for days. A constant, not a config key: no one has needed
 * another value, and the per-source cap (RECEIPTS_MAX_PER_SOURCE) bounds them anyway.
 */
export const REJECTED_RETENTION_SECONDS = 86_400;
/** Rejected receipts waiting for their batched write; past it they are counted, not kept. */
export const REJECTED_QUEUE_MAX = 10_000;

export interface Source {
  readonly name: string;
  readonly config: SourceConfig;
  readonly verifier: WebhookVerifier;
}

/** What the endpoint answers: the event stored (or matched), or a handshake to echo. */
export type Receipted =
  | { readonly kind: 'event'; readonly eventId: string; readonly duplicate: boolean; readonly receiptId: number }
  | { readonly kind: 'challenge'; readonly challenge: string };

/**
 * Inbound webhooks, from raw request to event: verify with the source's provider scheme, map to
 * a channel, and hand the hub one input that carries its idempotency key (`webhook:<source>:<id>`,
 * kept `retentionSeconds`) and its receipt with the digest of the signed bytes (a re-sent
 * signed message is a duplicate even under a new, unsigned id), so the store writes event, key
 * and receipt in one transaction and the provider is answered only after that commit (DESIGN guarantees 1 and 4).
 * Rejections append nothing: their receipts are written in batches, off the answer's path.
 */
export class WebhookReceiver {
  readonly sources: ReadonlyMap<string, Source>;
  readonly #hub: Hub;
  readonly #inbound: InboundLog;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #counter: Counter<'source' | 'status'>;
  #rejected: ReceiptInput[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(opts: {
    hub: Hub;
    /** Where receipts are kept (the backend's inbound log). */
    inbound: InboundLog;
    log: Logger;
    metrics: Metrics;
    sources: Readonly<Record<string, SourceConfig>>;
    now?: () => number;
  }) {
    this.#hub = opts.hub;
    this.#inbound = opts.inbound;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    const sources = new Map<string, Source>();
    for (const [name, config] of Object.entries(opts.sources)) {
      sources.set(name, { name, config, verifier: createVerifier(name, config) });
      if (config.provider === 'none') {
        opts.log.warn({ source: name }, `webhook source "${name}" has provider "none": its requests are not verified`);
      }
    }
    this.sources = sources;
    this.#counter = new Counter({
      name: 'herald_webhooks_received_total',
      help: 'Inbound webhook requests, by source and outcome (accepted, duplicate, rejected).',
      labelNames: ['source', 'status'],
      registers: [opts.metrics.registry],
    });
  }

  /** The source named `name`, or SOURCE_UNKNOWN (404). */
  source(name: string): Source {
    const s = this.sources.get(name);
    if (!s) throw new HeraldError('SOURCE_UNKNOWN', `no webhook source is named "${name}"`);
    return s;
  }

  /** Verifies, stores and publishes one request; resolves only after the durable write. */
  async receive(source: Source, body: Buffer, headers: IncomingHttpHeaders): Promise<Receipted> {
    if (this.#closed) throw new ClosedError('The webhook receiver');
    const req: InboundRequest = { body, headers, receivedAt: this.#now() };
    let input: EventInput;
    try {
      const v = await source.verifier.verify(req);
      if (v.challenge !== undefined) return { kind: 'challenge', challenge: v.challenge };
      input = this.#toInput(source, req, v);
    } catch (err) {
      if (err instanceof HeraldError) this.reject(source, headers, err, req.receivedAt);
      throw err;
    }
    const [result] = await this.#hub.publish([input]);
    this.#counter.inc({ source: source.name, status: result!.duplicate ? 'duplicate' : 'accepted' });
    return { kind: 'event', eventId: result!.event.id, duplicate: result!.duplicate, receiptId: result!.receiptId! };
  }

  #toInput(source: Source, req: InboundRequest, v: VerifiedWebhook): EventInput {
    const { id, type, payload } = v;
    // The publish API's rule (core/event.ts): an empty type used to pass here.
    if (!isEventType(type)) {
      throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', `the event type must be 1-${TYPE_MAX_BYTES} bytes without control characters`);
    }
    if (id !== undefined && (Buffer.byteLength(id) > PROVIDER_ID_MAX_BYTES || CONTROL_CHARACTER.test(id))) {
      throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', `the event id must be 1-${PROVIDER_ID_MAX_BYTES} bytes without control characters`);
    }
    const retentionMs = source.config.retentionSeconds * 1000;
    return {
      channel: channelFor(source.config.channel, { type, source: source.name }),
      type,
      data: JSON.stringify(payload),
      idempotencyKey: id === undefined ? undefined : `webhook:${source.name}:${id}`,
      idempotencyTtlMs: retentionMs,
      receipt: {
        source: source.name,
        status: 'accepted',
        receivedAt: req.receivedAt,
        keepUntil: req.receivedAt + retentionMs,
        providerId: id,
        type,
        headers: audit(req.headers, source.verifier.auditHeaders),
        body: req.body,
        digest: v.signedDigest,
      },
    };
  }

  /**
   * Records a rejected request (without its payload) in the inbound log. Batched: a flood of
   * forged requests costs one transaction per tick, and the queue is bounded.
   */
  reject(source: Source, headers: IncomingHttpHeaders, err: HeraldError, receivedAt = this.#now()): void {
    this.#counter.inc({ source: source.name, status: 'rejected' });
    this.#log.debug({ source: source.name, code: err.code }, 'webhook rejected');
    if (this.#closed || this.#rejected.length >= REJECTED_QUEUE_MAX) return;
    const keepSeconds = Math.min(source.config.retentionSeconds, REJECTED_RETENTION_SECONDS);
    this.#rejected.push({
      source: source.name,
      status: 'rejected',
      receivedAt,
      keepUntil: receivedAt + keepSeconds * 1000,
      headers: audit(headers, source.verifier.auditHeaders),
      error: { code: err.code, message: err.message },
    });
    if (!this.#flushing) {
      this.#flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    while (this.#rejected.length > 0) {
      const batch = this.#rejected;
      this.#rejected = [];
      try {
        await this.#inbound.recordReceipts(batch);
      } catch (err) {
        this.#log.error({ err, count: batch.length }, 'webhook: recording rejected receipts failed');
      }
    }
    this.#flushing = undefined;
  }

  /** One source's inbound log, newest first. */
  list(source: Source, query: ReceiptQuery): Promise<Receipt[]> {
    return this.#inbound.listReceipts(source.name, query);
  }

  /**
   * Publishes an accepted arrival's payload again, as a new event (no idempotency key: the
   * operator asked for it), with a `replayed` receipt pointing at the original.
   */
  async replay(source: Source, receiptId: number): Promise<{ eventId: string; receiptId: number }> {
    const original = await this.#inbound.getReceipt(source.name, receiptId);
    if (!original) throw new HeraldError('RECEIPT_NOT_FOUND', `source "${source.name}" has no receipt ${receiptId}`);
    if (original.status !== 'accepted' || original.body === undefined) {
      throw new HeraldError('RECEIPT_NOT_REPLAYABLE', `receipt ${receiptId} is ${original.status}; only accepted ones keep their payload`);
    }
    const seq = original.seq ?? 0;
    const [event] = seq > 0 ? await this.#hub.read(['>'], seq - 1, 1) : [];
    let channel: string;
    let data: string;
    const type = original.type ?? 'webhook';
    if (event && event.seq === seq) {
      channel = event.channel;
      data = event.data;
    } else {
      // The event left the log (its retention is shorter than the receipt's): rebuild it from
      // the stored raw body, which every JSON provider's event is made of.
      try {
        data = JSON.stringify(JSON.parse(original.body.toString('utf8')));
      } catch {
        throw new HeraldError('RECEIPT_NOT_REPLAYABLE', `receipt ${receiptId}'s event was pruned and its body is not JSON`);
      }
      channel = channelFor(source.config.channel, { type, source: source.name });
    }
    const now = this.#now();
    const [result] = await this.#hub.publish([
      {
        channel,
        type,
        data,
        receipt: {
          source: source.name,
          status: 'replayed',
          receivedAt: now,
          keepUntil: now + source.config.retentionSeconds * 1000,
          providerId: original.providerId,
          type,
          headers: {},
          replayOf: original.id,
        },
      },
    ]);
    return { eventId: result!.event.id, receiptId: result!.receiptId! };
  }

  /** Writes the rejected receipts still queued, then refuses new requests. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
  }
}

/** The audited headers present on the request, each cut to AUDIT_HEADER_MAX_BYTES. */
function audit(headers: IncomingHttpHeaders, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = headers[name];
    const s = Array.isArray(v) ? v.join(', ') : v;
    if (s !== undefined) out[name] = s.length > AUDIT_HEADER_MAX_BYTES ? s.slice(0, AUDIT_HEADER_MAX_BYTES) : s;
  }
  return out;
}
