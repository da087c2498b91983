/**
 * Sending: one leased delivery becomes one signed request to its endpoint (Standard Webhooks
 * headers over the stored body, the endpoint's own headers, Herald's user agent), sent with the
 * `Sender` (`webhook-sender.ts`, in this thread or in sender threads). It answers what came back
 * and when the request started; what that answer means is the outcome policy's business.
 */
import type { Delivery, EndpointRecord } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { standardHeaders } from './signer.js';
import type { SendResult, Sender } from './webhook-sender.js';

/** Sent on every request, so receivers can tell Herald's traffic apart. */
export const USER_AGENT = 'Herald-Webhooks/1';

export interface DeliverySenderOptions {
  registry: EndpointRegistry;
  sender: Sender;
  now: () => number;
}

/** A request that was made: to which endpoint, when it started, and its answer. */
export interface SentRequest {
  endpoint: EndpointRecord;
  at: number;
  response: SendResult;
}

export class DeliverySender {
  readonly #o: DeliverySenderOptions;

  constructor(opts: DeliverySenderOptions) {
    this.#o = opts;
  }

  /**
   * Sends `d` to its endpoint. Undefined when no attempt was made: the endpoint is gone or
   * disabled, or `close()` aborted the request (its lease is to be given back, no attempt counted).
   */
  async send(d: Delivery): Promise<SentRequest | undefined> {
    const e = this.#o.registry.get(d.endpointId);
    if (!e || !e.enabled) return undefined;
    const now = this.#o.now();
    const headers: Record<string, string> = {
      ...e.headers,
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      // The custom headers come first: an endpoint can never replace the signature or framing.
      ...standardHeaders(d.msgId, d.body, this.#o.registry.signingSecrets(e, now), now),
    };
    const r = await this.#o.sender.send(e.url, headers, d.body);
    if (r.aborted) return undefined;
    return { endpoint: e, at: now, response: r };
  }

  /** Aborts requests in flight (they answer as aborted) and closes every connection. */
  close(): Promise<void> {
    return this.#o.sender.close();
  }
}
