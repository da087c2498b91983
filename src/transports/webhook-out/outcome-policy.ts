/**
 * Outcome policy: what an answer means for a delivery and its endpoint. It owns each endpoint's
 * circuit breaker and decides, from one response, whether the delivery is delivered, due again
 * (the retry schedule, or the receiver's `Retry-After` up to a bound), dead (the schedule is
 * spent) or held (410 Gone, or an endpoint failing for too long, which disables the endpoint).
 * It writes nothing of the delivery itself: the outcome writer records what it decides.
 */
import type { Logger } from '../../observability/logger.js';
import type { Delivery, DisabledReason, EndpointRecord, Outcome } from '../../core/delivery-store.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { CircuitBreaker, type CircuitState, type RetrySchedule } from './retry-policy.js';
import type { SendResult } from './webhook-sender.js';

export interface OutcomePolicyOptions {
  registry: EndpointRegistry;
  schedule: RetrySchedule;
  log: Logger;
  /** The longest `Retry-After` honoured, in milliseconds. */
  maxRetryAfterMs: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterFailingMs: number;
  /** Consecutive failures that open an endpoint's circuit. */
  breakerFailures: number;
  breakerCooldownMs: number;
  /** Herald disabled an endpoint (410, or failing too long). */
  onDisabled: (endpoint: EndpointRecord) => void;
}

export class OutcomePolicy {
  readonly #o: OutcomePolicyOptions;
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(opts: OutcomePolicyOptions) {
    this.#o = opts;
  }

  /** The endpoint's circuit breaker (closed until it has failed). */
  breaker(endpointId: string): CircuitBreaker {
    let b = this.#breakers.get(endpointId);
    if (!b) this.#breakers.set(endpointId, (b = new CircuitBreaker(this.#o.breakerFailures, this.#o.breakerCooldownMs)));
    return b;
  }

  circuit(endpointId: string, now: number): CircuitState {
    return this.#breakers.get(endpointId)?.state(now) ?? 'closed';
  }

  /**
   * What becomes of delivery `d` after endpoint `e` answered `r`, the answer complete at `end`
   * (retries count from there). Updates the breaker and the endpoint's health on the way.
   */
  async decide(e: EndpointRecord, d: Delivery, r: SendResult, end: number): Promise<Outcome> {
    const status = r.status;
    const breaker = this.breaker(e.id);
    if (status !== null && status >= 200 && status < 300) {
      breaker.succeeded();
      await this.#o.registry.markHealthy(e.id);
      return { status: 'delivered' };
    }
    breaker.failed(end);
    // RFC 9110 §15.5.11: 410 Gone means the target is gone for good; stop sending to it.
    if (status === 410) {
      await this.#disable(e.id, 'gone');
      return { status: 'held' };
    }
    if (this.#o.registry.get(e.id)?.enabled === false) return { status: 'held' };
    const failing = await this.#o.registry.markFailing(e.id, end);
    if (failing?.failingSince != null && end - failing.failingSince >= this.#o.disableAfterFailingMs) {
      await this.#disable(e.id, 'failing');
      return { status: 'held' };
    }
    let delay = this.#o.schedule.delayBefore(d.attempts - d.scheduleStart + 1);
    if (delay === undefined) return { status: 'dead' };
    // RFC 9110 §10.2.3 and RFC 6585 §4: the receiver says when it can take more; honoured up to
    // a bound, so a hostile value cannot park a delivery for years.
    if ((status === 429 || status === 503) && r.retryAfterMs !== undefined) {
      delay = Math.min(r.retryAfterMs, this.#o.maxRetryAfterMs);
    }
    return { status: 'pending', nextAt: end + delay };
  }

  async #disable(id: string, reason: DisabledReason): Promise<void> {
    const e = await this.#o.registry.disable(id, reason);
    if (!e) return;
    this.#o.log.warn({ endpoint: id, reason }, 'outbound webhooks: endpoint disabled');
    this.#o.onDisabled(e);
  }
}
